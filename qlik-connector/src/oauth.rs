//! OAuth machine-to-machine sign-in: the client's id and secret are exchanged at
//! `POST /oauth/token` (`grant_type=client_credentials`) for an access token
//! (https://qlik.dev/authenticate/oauth/create/create-oauth-client/,
//! https://qlik.dev/apis/rest/oauth). The token is opaque (never decoded): it is kept
//! until shortly before its `expires_in` (or `expires_at`) says it ends, then fetched
//! again, and fetched again at once when Qlik answers 401 to it. Secret and token are
//! registered with [`connector_api::secret`], so no output shows them.

use std::time::{Duration, Instant};

use connector_api::http::{Fetched, HttpEvent, RetryingClient, json_body};
use connector_api::{Error, ErrorKind, Result};
use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;
use url::Url;

use crate::{error, remediation};

/// Scopes asked for: `user_default` to read as a user, `admin_classic` for the
/// administrative endpoints (licences, audits, OAuth clients) a Tenant Admin reads
/// (https://qlik.dev/authenticate/oauth/scopes/).
pub const SCOPES: &str = "user_default admin_classic";

/// Lifetime assumed when the token answer states none: Qlik's default, 6 hours.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(6 * 3600);

/// A token is replaced this long before it expires (a tenth of its lifetime if shorter),
/// so no request carries a token that runs out on the way.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Fetches and caches the access tokens of one OAuth client.
pub struct TokenSource {
    token_url: Url,
    client_id: String,
    client_secret: SecretString,
    cached: Mutex<Option<Token>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// A cached token: the `Authorization` value and when to replace it.
struct Token {
    header: HeaderValue,
    replace_at: Instant,
}

/// The token endpoint's answer (`oauth-token-response`, plus the standard `expires_in`).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
    expires_at: Option<String>,
}

impl TokenSource {
    /// A source for the client `client_id` of the tenant at `tenant`.
    pub fn new(tenant: &Url, client_id: String, client_secret: SecretString) -> TokenSource {
        let mut token_url = tenant.clone();
        token_url.set_path("/oauth/token");
        TokenSource { token_url, client_id, client_secret, cached: Mutex::new(None) }
    }

    /// The `Authorization` value to send: the cached token unless it is due for
    /// replacement or is `rejected` (the value Qlik just answered 401 to), in which case a
    /// new one is fetched. Concurrent callers wait for one fetch and share its token.
    pub async fn header(
        &self,
        http: &RetryingClient,
        rejected: Option<&HeaderValue>,
        events: &mut Vec<HttpEvent>,
    ) -> Result<HeaderValue> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.replace_at
            && rejected.is_none_or(|r| r != token.header)
        {
            return Ok(token.header.clone());
        }
        let token = self.fetch(http, events).await?;
        let header = token.header.clone();
        *cached = Some(token);
        Ok(header)
    }

    async fn fetch(&self, http: &RetryingClient, events: &mut Vec<HttpEvent>) -> Result<Token> {
        let body = serde_json::json!({
            "client_id": self.client_id,
            "client_secret": self.client_secret.expose_secret(),
            "grant_type": "client_credentials",
            "scope": SCOPES,
        });
        let asked = Instant::now();
        let answer: TokenAnswer = http
            .execute(
                "POST /oauth/token",
                |client| client.post(self.token_url.clone()).json(&body),
                interpret,
                events,
            )
            .await?;
        connector_api::secret::register(&answer.access_token);
        let lifetime = lifetime(&answer, OffsetDateTime::now_utc());
        let margin = REFRESH_MARGIN.min(lifetime / 10);
        let mut header = HeaderValue::from_str(&format!("Bearer {}", answer.access_token)).map_err(|_| {
            Error::new(
                ErrorKind::Source,
                "POST /oauth/token returned a token that cannot be sent in a header",
            )
            .with_hint(remediation::SOURCE_PROTOCOL)
        })?;
        header.set_sensitive(true);
        Ok(Token { header, replace_at: asked + lifetime - margin })
    }
}

/// How long a token lives: `expires_in` seconds, else until `expires_at`, else
/// [`DEFAULT_LIFETIME`].
fn lifetime(answer: &TokenAnswer, now: OffsetDateTime) -> Duration {
    if let Some(seconds) = answer.expires_in {
        return Duration::from_secs(seconds);
    }
    answer
        .expires_at
        .as_deref()
        .and_then(|at| OffsetDateTime::parse(at, &Rfc3339).ok())
        .and_then(|at| Duration::try_from(at - now).ok())
        .unwrap_or(DEFAULT_LIFETIME)
}

/// A 2xx JSON token answer, or the error: 400, 401 and 403 mean the client's credentials
/// or rights were refused.
fn interpret(fetched: Fetched) -> Result<TokenAnswer> {
    const PATH: &str = "/oauth/token";
    match fetched.status.as_u16() {
        200..=299 => json_body::parse(&fetched, PATH),
        status @ (400 | 401 | 403) => {
            let said = error::Envelope::parse(&fetched.body)
                .map(|e| format!(": {}", e.summary()))
                .unwrap_or_default();
            Err(Error::new(
                ErrorKind::Auth,
                format!("Qlik Cloud refused the OAuth client's credentials (HTTP {status}{said})"),
            )
            .with_context("field", "client_secret")
            .with_hint(remediation::OAUTH_CLIENT_REJECTED))
        }
        status => Err(error::from_response(status, &fetched.body, PATH)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_reads_expires_in_then_expires_at() {
        let now = OffsetDateTime::parse("2026-11-29T00:00:00Z", &Rfc3339).unwrap();
        let answer = |expires_in: Option<u64>, expires_at: Option<&str>| TokenAnswer {
            access_token: "t".into(),
            expires_in,
            expires_at: expires_at.map(str::to_string),
        };
        assert_eq!(lifetime(&answer(Some(900), Some("2026-11-30T00:00:00Z")), now), Duration::from_secs(900));
        assert_eq!(lifetime(&answer(None, Some("2026-11-29T01:00:00.000Z")), now), Duration::from_secs(3600));
        assert_eq!(lifetime(&answer(None, Some("2020-01-01T00:00:00Z")), now), DEFAULT_LIFETIME);
        assert_eq!(lifetime(&answer(None, None), now), DEFAULT_LIFETIME);
    }
}
