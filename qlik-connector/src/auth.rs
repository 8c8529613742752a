//! What an API key says about itself.
//!
//! Qlik Cloud API keys are JWTs. Their claims are read, not verified (only Qlik can
//! verify them), so the connector can refuse an expired key before sending it anywhere
//! and warn about one that is about to expire. Claims are never logged: `sub` and
//! `tenantId` identify the key's owner.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use connector_api::{Error, ErrorKind, Result};
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::remediation;

/// How long before expiry `check` starts warning.
pub const EXPIRY_WARNING: Duration = Duration::days(14);

/// The claims of a key the connector uses.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct KeyClaims {
    /// Expiry, Unix seconds.
    pub exp: Option<i64>,
    /// The key's subject (its owner's user id).
    pub sub: Option<String>,
    /// The tenant the key was issued for.
    #[serde(rename = "tenantId")]
    pub tenant_id: Option<String>,
}

impl std::fmt::Debug for KeyClaims {
    /// Shows only whether claims are present: they identify the key's owner.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyClaims")
            .field("exp", &self.exp.map(|_| "<set>"))
            .field("sub", &self.sub.as_ref().map(|_| "<set>"))
            .field("tenant_id", &self.tenant_id.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// What the key's expiry means for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyExpiry {
    /// No `exp` claim, or the key is not a JWT.
    Unknown,
    /// Valid beyond [`EXPIRY_WARNING`].
    Valid(OffsetDateTime),
    /// Valid, but expires within [`EXPIRY_WARNING`].
    ExpiresSoon(OffsetDateTime),
    /// Expired at this time.
    Expired(OffsetDateTime),
}

/// What the connector needs from the API key: the `Authorization` header value and
/// the key's claims.
#[derive(Clone)]
pub struct Credentials {
    /// `Bearer <key>`, marked sensitive so `Debug` of a header map hides it.
    pub header: HeaderValue,
    /// The key's claims, if it is a JWT.
    pub claims: Option<KeyClaims>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("header", &"<redacted>").field("claims", &self.claims).finish()
    }
}

impl Credentials {
    /// The one place the API key is exposed: it is registered with
    /// [`connector_api::secret`] (with its JWT parts) so no text the process writes can
    /// show it, becomes the header value, and its claims are read, without verification.
    pub fn from_secret(key: &SecretString) -> Result<Credentials> {
        let key = key.expose_secret().trim();
        connector_api::secret::register(key);
        if key.is_empty() {
            return Err(Error::config("api_key", "is blank; give the key Qlik showed when you generated it"));
        }
        let mut header = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
            Error::config("api_key", "contains characters that cannot be sent in an HTTP header")
        })?;
        header.set_sensitive(true);
        Ok(Credentials { header, claims: read_claims(key) })
    }
}

/// Reads the claims of `key` without verifying its signature. `None` when the key is
/// not a JWT with a JSON payload.
pub fn read_claims(key: &str) -> Option<KeyClaims> {
    let payload = key.trim().split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl KeyClaims {
    /// Classifies the expiry relative to `now`.
    pub fn expiry(&self, now: OffsetDateTime) -> KeyExpiry {
        let Some(at) = self.exp.and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok()) else {
            return KeyExpiry::Unknown;
        };
        if at <= now {
            KeyExpiry::Expired(at)
        } else if at - now <= EXPIRY_WARNING {
            KeyExpiry::ExpiresSoon(at)
        } else {
            KeyExpiry::Valid(at)
        }
    }
}

/// Formats a timestamp for messages (`2026-03-01T12:00:00Z`).
pub fn show(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// The error for an expired key, raised before any request.
pub fn expired_error(at: OffsetDateTime) -> Error {
    Error::new(ErrorKind::Auth, format!("The API key expired on {}", show(at)))
        .with_context("field", "api_key")
        .with_hint(remediation::KEY_EXPIRED)
}

/// Fails with [`expired_error`] when the key's claims say it has expired.
pub fn ensure_not_expired(claims: Option<&KeyClaims>, now: OffsetDateTime) -> Result<()> {
    match claims.map(|c| c.expiry(now)) {
        Some(KeyExpiry::Expired(at)) => Err(expired_error(at)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwt(claims: serde_json::Value) -> String {
        format!(
            "{}.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"ES384","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[test]
    fn reads_claims_without_verifying() {
        let key = jwt(json!({"exp": 1_900_000_000, "sub": "user-1", "tenantId": "t-1", "subType": "user"}));
        let c = read_claims(&key).unwrap();
        assert_eq!(c.exp, Some(1_900_000_000));
        assert_eq!(c.sub.as_deref(), Some("user-1"));
        assert_eq!(c.tenant_id.as_deref(), Some("t-1"));
        assert!(!format!("{c:?}").contains("user-1"), "Debug hides the owner");
        assert_eq!(read_claims("not-a-jwt"), None);
        assert_eq!(read_claims("a.%%%.c"), None);
    }

    #[test]
    fn credentials_hide_the_key() {
        let key = jwt(json!({"exp": 1_900_000_000, "sub": "canary-sub"}));
        let c = Credentials::from_secret(&SecretString::from(format!("  {key}\n"))).unwrap();
        assert_eq!(c.header.to_str().unwrap(), format!("Bearer {key}"));
        assert!(c.header.is_sensitive());
        let shown = format!("{c:?}");
        assert!(!shown.contains(&key) && !shown.contains("canary-sub"), "{shown}");
        assert_eq!(c.claims.unwrap().exp, Some(1_900_000_000));
        let err = Credentials::from_secret(&SecretString::from("bad\nkey")).unwrap_err();
        assert_eq!(err.context_value("field"), Some("api_key"));
        let err = Credentials::from_secret(&SecretString::from("   ")).unwrap_err();
        assert_eq!((err.kind(), err.context_value("field")), (ErrorKind::Config, Some("api_key")));
        assert_eq!(
            connector_api::secret::scrub(&format!("echo {key}")),
            "echo ****",
            "the key is registered"
        );
    }

    #[test]
    fn classifies_expiry() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let at = |secs: i64| KeyClaims { exp: Some(secs), sub: None, tenant_id: None };
        assert!(matches!(at(1_800_000_000 - 1).expiry(now), KeyExpiry::Expired(_)));
        assert!(matches!(at(1_800_000_000 + 5 * 86_400).expiry(now), KeyExpiry::ExpiresSoon(_)));
        assert!(matches!(at(1_800_000_000 + 30 * 86_400).expiry(now), KeyExpiry::Valid(_)));
        assert_eq!(KeyClaims { exp: None, sub: None, tenant_id: None }.expiry(now), KeyExpiry::Unknown);
    }

    #[test]
    fn expired_error_names_the_date() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let claims = KeyClaims { exp: Some(1_767_225_600), sub: None, tenant_id: None };
        let err = ensure_not_expired(Some(&claims), now).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert!(err.message().contains("2026-01-01T00:00:00Z"), "{err}");
        assert_eq!(err.hint(), Some(remediation::KEY_EXPIRED));
    }
}
