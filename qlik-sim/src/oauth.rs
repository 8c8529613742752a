//! The OAuth token endpoint (`POST /oauth/token`, https://qlik.dev/apis/rest/oauth): the
//! tenant's machine-to-machine client (OAuth client 0 of the listing) exchanges its id and
//! secret (`grant_type=client_credentials`, JSON or form body) for an opaque access token
//! that expires after the token lifetime (6 hours, Qlik's default, unless a test shortens
//! it); an expired or unknown token gets 401. The token acts as a bot with Tenant Admin
//! rights.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::http::{ApiError, Reply};
use super::synth::{Kind, alnum, rfc3339_ms};
use super::tenant::Tenant;

/// Qlik's default access token lifetime.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(6 * 3600);

/// Issued tokens and when each expires.
#[derive(Debug)]
pub(crate) struct Tokens {
    lifetime_ms: AtomicU64,
    issued: Mutex<HashMap<String, Instant>>,
    counter: AtomicU64,
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens {
            lifetime_ms: AtomicU64::new(DEFAULT_LIFETIME.as_millis() as u64),
            issued: Mutex::default(),
            counter: AtomicU64::new(0),
        }
    }
}

/// The machine-to-machine client's secret.
pub(crate) fn client_secret(t: &Tenant) -> String {
    alnum(t.seed, Kind::OAuthClient, 0, 9, 40)
}

impl Tokens {
    /// Sets the lifetime of tokens issued from now on.
    pub(crate) fn set_lifetime(&self, lifetime: Duration) {
        self.lifetime_ms.store(lifetime.as_millis() as u64, Ordering::Relaxed);
    }

    /// Expires every token issued so far.
    pub(crate) fn expire_all(&self) {
        let now = Instant::now();
        self.issued.lock().expect("tokens lock").values_mut().for_each(|at| *at = now);
    }

    /// `None` when `token` was never issued here; else whether it is still valid.
    pub(crate) fn check(&self, token: &str) -> Option<Result<(), ApiError>> {
        let expires = *self.issued.lock().expect("tokens lock").get(token)?;
        Some(if Instant::now() < expires {
            Ok(())
        } else {
            Err(ApiError::new(401, "Unauthorized", "The access token has expired."))
        })
    }

    /// Answers a token request with `body` (JSON or form-encoded).
    pub(crate) fn exchange(&self, t: &Tenant, body: &[u8]) -> Reply {
        let fields: HashMap<String, String> = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(m)) => {
                m.into_iter().filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string()))).collect()
            }
            _ => url::form_urlencoded::parse(body).into_owned().collect(),
        };
        let field = |name: &str| fields.get(name).map(String::as_str);
        let refused = |status, title, detail: &str| {
            ApiError::new(status, title, detail).into_reply(super::http::Service::Identity)
        };
        if field("grant_type") != Some("client_credentials") {
            return refused(400, "Bad Request", "grant_type must be client_credentials.");
        }
        let secret = client_secret(t);
        if field("client_id") != Some(t.oauth_client_id(0).as_str())
            || field("client_secret") != Some(secret.as_str())
        {
            return refused(401, "Unauthorized", "Invalid client credentials.");
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let token = format!("{}{n:06}", alnum(t.seed, Kind::OAuthClient, n, 11, 48));
        let lifetime = Duration::from_millis(self.lifetime_ms.load(Ordering::Relaxed));
        self.issued.lock().expect("tokens lock").insert(token.clone(), Instant::now() + lifetime);
        let expires_at = std::time::SystemTime::now() + lifetime;
        let expires_ms =
            expires_at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
        Reply::ok(json!({
            "access_token": token,
            "token_type": "bearer",
            "expires_in": lifetime.as_secs(),
            "expires_at": rfc3339_ms(expires_ms),
            "scope": field("scope").unwrap_or("user_default"),
        }))
    }
}
