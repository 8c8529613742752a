//! API keys: JWT-shaped tokens carrying the claims a real Qlik key carries.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::synth::{Kind, object_id, uuid};

/// The keys the simulator issues, one per authentication outcome a client must handle.
#[derive(Clone, Debug)]
pub struct ApiKeys {
    /// A valid key of a Tenant Admin: every endpoint answers 200.
    pub admin: String,
    /// A valid key of a user without TenantAdmin: 403 on `/licenses/*` and `/api-keys`.
    pub non_admin: String,
    /// A key whose `exp` is in the past: 401.
    pub expired: String,
    /// A key revoked in the tenant: 401.
    pub revoked: String,
    /// A key that relied on the Developer role Qlik removed on 26 January 2026: 401.
    pub legacy_developer: String,
    /// A valid Tenant Admin key expiring in 5 days.
    pub expiring_soon: String,
}

/// Which issued key a request carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Admin,
    NonAdmin,
    Expired,
    Revoked,
    LegacyDeveloper,
    ExpiringSoon,
}

impl KeyKind {
    /// The issued keys in the order they head the `/api-keys` listing.
    pub(crate) const ALL: [KeyKind; 6] = [
        KeyKind::Admin,
        KeyKind::NonAdmin,
        KeyKind::Expired,
        KeyKind::Revoked,
        KeyKind::LegacyDeveloper,
        KeyKind::ExpiringSoon,
    ];

    /// Index of the key's creator among the users.
    pub(crate) fn user_index(self) -> u64 {
        match self {
            KeyKind::Admin | KeyKind::ExpiringSoon => 0,
            KeyKind::NonAdmin => 1,
            KeyKind::Expired => 2,
            KeyKind::Revoked => 3,
            KeyKind::LegacyDeveloper => 4,
        }
    }

    /// Index of the key in the `/api-keys` listing.
    pub(crate) fn list_index(self) -> u64 {
        KeyKind::ALL.iter().position(|k| *k == self).expect("listed") as u64
    }

    /// Whether the key acts with Tenant Admin rights.
    pub(crate) fn is_admin(self) -> bool {
        matches!(self, KeyKind::Admin | KeyKind::ExpiringSoon)
    }

    /// `(iat, exp)` in Unix seconds relative to `now`.
    pub(crate) fn lifetime(self, now: i64) -> (i64, i64) {
        const DAY: i64 = 86_400;
        match self {
            KeyKind::Admin | KeyKind::NonAdmin => (now - 30 * DAY, now + 300 * DAY),
            KeyKind::Expired => (now - 400 * DAY, now - 10 * DAY),
            KeyKind::Revoked => (now - 60 * DAY, now + 200 * DAY),
            // Created 1 June 2025, while the Developer role still existed.
            KeyKind::LegacyDeveloper => (1_748_736_000, now + 100 * DAY),
            KeyKind::ExpiringSoon => (now - 25 * DAY, now + 5 * DAY),
        }
    }

    /// The `/api-keys` status of the key.
    pub(crate) fn status(self) -> &'static str {
        match self {
            KeyKind::Expired => "expired",
            KeyKind::Revoked => "revoked",
            _ => "active",
        }
    }
}

/// Mints a JWT-shaped key: base64url header, base64url claims, and a 96-byte signature-like
/// tail (ES384-sized). It is not verifiable; the simulator recognises its keys by value.
pub(crate) fn mint(seed: u64, tenant_id: &str, kind: KeyKind, now: i64) -> String {
    let (iat, exp) = kind.lifetime(now);
    let header = serde_json::json!({
        "alg": "ES384",
        "kid": uuid(seed, Kind::ApiKey, kind.list_index(), 9),
        "typ": "JWT",
    });
    let claims = serde_json::json!({
        "sub": object_id(seed, Kind::User, kind.user_index()),
        "subType": "user",
        "tenantId": tenant_id,
        "jti": object_id(seed, Kind::ApiKey, kind.list_index()),
        "aud": "qlik.api",
        "iss": "qlik.api.internal/api-keys",
        "iat": iat,
        "exp": exp,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = Vec::with_capacity(96);
    for block in 0u8..3 {
        let mut hasher = Sha256::new();
        hasher.update(seed.to_le_bytes());
        hasher.update([block]);
        hasher.update(signing_input.as_bytes());
        signature.extend_from_slice(&hasher.finalize());
    }
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}
