//! The HTTP client every request of the connector goes through.
//!
//! It wraps the shared [`RetryingClient`] (rate limit, retries, backoff) and adds the
//! Qlik specifics: the bearer key or OAuth access token, sent only to the tenant's origin
//! (a token Qlik answers 401 to is replaced once and the request sent again); JSON bodies that
//! are retried when cut off; redirects (`users/me` → `users/{id}`) followed by hand so
//! the key never follows one to another origin; Qlik's error envelopes mapped by
//! [`crate::error`]. Every request names the API release in `qlik-api-version`, and every
//! response is read for the deprecations Qlik announces ([`crate::api_version`]).

use std::sync::Arc;

use connector_api::http::{
    ClientOptions, Fetched, HttpEvent, OriginGuard, RateLimiter, RetryPolicy, RetryingClient, build_client,
    json_body,
};
use connector_api::{Error, ErrorKind, Result};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, LOCATION};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::api_version::{self, Notices};
use crate::auth::{Credentials, KeyClaims};
use crate::config::{Auth, Settings};
use crate::error;
use crate::oauth::TokenSource;

/// `User-Agent` of every request, so Qlik's operators can tell who is calling.
pub const USER_AGENT: &str = concat!("data-hub-qlik-sense/", env!("CARGO_PKG_VERSION"));

/// The longest chain of redirects followed for one request.
const MAX_REDIRECTS: usize = 3;

/// The tenant's HTTP client, shared by every stream of a read.
#[derive(Debug, Clone)]
pub struct QlikClient {
    http: RetryingClient,
    guard: OriginGuard,
    tenant: Url,
    bearer: Bearer,
    notices: Arc<Notices>,
}

/// What signs the requests.
#[derive(Debug, Clone)]
enum Bearer {
    /// `Bearer <key>`, marked sensitive so `Debug` of the header map hides it.
    Key(HeaderValue),
    /// An OAuth client's tokens, shared by every clone of the client.
    OAuth(Arc<TokenSource>),
}

/// How a client signs in: an API key's credentials or an OAuth client's token source.
#[derive(Debug)]
pub enum SignIn {
    /// An API key.
    Key(Credentials),
    /// An OAuth machine-to-machine client.
    OAuth(TokenSource),
}

impl SignIn {
    /// The sign-in the config asks for; an API key is checked and registered as a secret.
    pub fn from_settings(settings: &Settings) -> Result<SignIn> {
        Ok(match &settings.auth {
            Auth::ApiKey(key) => SignIn::Key(Credentials::from_secret(key)?),
            Auth::OAuthClient { client_id, client_secret } => {
                SignIn::OAuth(TokenSource::new(&settings.tenant, client_id.clone(), client_secret.clone()))
            }
        })
    }

    /// The API key's claims; `None` for an OAuth client or a key that is not a JWT.
    pub fn key_claims(&self) -> Option<&KeyClaims> {
        match self {
            SignIn::Key(credentials) => credentials.claims.as_ref(),
            SignIn::OAuth(_) => None,
        }
    }
}

/// What a successful request returned.
#[derive(Debug)]
pub enum Reply<T = Value> {
    /// A JSON body read as `T`, and the URL that answered it (links resolve against it).
    Json(Url, T),
    /// A redirect to `Location`, not yet followed.
    Redirect(String),
}

impl QlikClient {
    /// Builds the client for `settings`, with its own rate limiter: the run's budget in
    /// any window of the configured length, shared by every clone of the client.
    pub fn new(settings: &Settings, sign_in: SignIn) -> Result<Self> {
        let limiter = Arc::new(RateLimiter::new(settings.rate_budget(), settings.rate_window));
        Self::with_limiter(settings, sign_in, limiter, RetryPolicy::default())
    }

    /// Builds the client with a given limiter and retry policy.
    pub fn with_limiter(
        settings: &Settings,
        sign_in: SignIn,
        limiter: Arc<RateLimiter>,
        policy: RetryPolicy,
    ) -> Result<Self> {
        let mut options = ClientOptions::new(USER_AGENT);
        options.request_timeout = settings.request_timeout;
        options.pool_max_idle_per_host = settings.max_concurrency * 2;
        options.default_headers = version_header(&settings.api_version)?;
        let http = RetryingClient::new(build_client(&options)?, policy).with_limiter(limiter);
        Ok(QlikClient {
            http,
            guard: OriginGuard::new(&settings.tenant).with_path_prefix("/api"),
            tenant: settings.tenant.clone(),
            bearer: match sign_in {
                SignIn::Key(credentials) => Bearer::Key(credentials.header),
                SignIn::OAuth(source) => Bearer::OAuth(Arc::new(source)),
            },
            notices: Arc::new(Notices::new(&settings.api_version)),
        })
    }

    /// The deprecations Qlik announced to this client and its clones so far.
    pub fn notices(&self) -> Arc<Notices> {
        self.notices.clone()
    }

    /// The same client with another retry policy (quick probes in `check`).
    pub fn with_policy(&self, policy: RetryPolicy) -> Self {
        QlikClient { http: self.http.with_policy(policy), ..self.clone() }
    }

    /// The tenant's origin.
    pub fn tenant(&self) -> &Url {
        &self.tenant
    }

    /// The guard deciding which links may carry the key.
    pub fn guard(&self) -> &OriginGuard {
        &self.guard
    }

    /// `path_and_query` (e.g. `api/v1/users?limit=1`) on the tenant.
    pub fn url(&self, path: &str) -> Url {
        let mut url = self.tenant.clone();
        url.set_path(path);
        url
    }

    /// The `Authorization` value to send, a new token if `rejected` is the current one.
    async fn authorization(
        &self,
        rejected: Option<&HeaderValue>,
        events: &mut Vec<HttpEvent>,
    ) -> Result<HeaderValue> {
        match &self.bearer {
            Bearer::Key(header) => Ok(header.clone()),
            Bearer::OAuth(source) => source.header(&self.http, rejected, events).await,
        }
    }

    /// Gets the OAuth client's first token, so that credentials Qlik refuses fail the read
    /// once, before any stream starts, instead of once per stream; a key needs nothing.
    pub async fn sign_in(&self) -> Result<()> {
        self.authorization(None, &mut Vec::new()).await.map(drop)
    }

    /// GETs `url` with the key or token, retrying transient failures; 2xx JSON (read as
    /// `T`) and 3xx come back as a [`Reply`], anything else as an error naming the
    /// endpoint. An OAuth token answered with 401 is replaced once.
    pub async fn get<T: DeserializeOwned>(&self, url: &Url, events: &mut Vec<HttpEvent>) -> Result<Reply<T>> {
        let auth = self.authorization(None, events).await?;
        match self.get_with(url, &auth, events).await {
            Err(err) if err.kind() == ErrorKind::Auth && matches!(self.bearer, Bearer::OAuth(_)) => {
                let renewed = self.authorization(Some(&auth), events).await?;
                self.get_with(url, &renewed, events).await
            }
            result => result,
        }
    }

    async fn get_with<T: DeserializeOwned>(
        &self,
        url: &Url,
        auth: &HeaderValue,
        events: &mut Vec<HttpEvent>,
    ) -> Result<Reply<T>> {
        if !self.guard.is_same_origin(url) {
            return Err(Error::internal(format!(
                "refusing to send the API key to {}, which is not the tenant {}",
                url.origin().ascii_serialization(),
                self.guard.origin()
            )));
        }
        let path = url.path().to_string();
        let endpoint = format!("GET {path}");
        self.http
            .execute(
                &endpoint,
                |client| client.get(url.clone()).header(AUTHORIZATION, auth.clone()),
                |fetched| {
                    self.notices.observe(&fetched.headers, &endpoint);
                    interpret(fetched, &path)
                },
                events,
            )
            .await
            .map_err(error::with_remediation)
    }

    /// Sends one GET to the tenant's origin *without* the key, to learn whether the
    /// host answers HTTP over a trusted TLS connection. Any status counts as reachable.
    pub async fn reach(&self) -> Result<u16> {
        let url = self.tenant.clone();
        let mut events = Vec::new();
        self.http
            .execute(
                "GET /",
                |client| client.get(url.clone()),
                |f| {
                    self.notices.observe(&f.headers, "GET /");
                    Ok(f.status.as_u16())
                },
                &mut events,
            )
            .await
            .map_err(error::with_remediation)
    }

    /// GETs `url`, following up to three redirects on the tenant's origin (a redirect
    /// to another origin is rebased onto the tenant, never followed with the key).
    pub async fn get_json(&self, url: &Url, events: &mut Vec<HttpEvent>) -> Result<(Url, Value)> {
        let mut current = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            match self.get::<Value>(&current, events).await? {
                Reply::Json(at, value) => return Ok((at, value)),
                Reply::Redirect(location) => {
                    let target = self.guard.resolve_link(&current, &location)?;
                    if let connector_api::http::LinkTarget::Rebased { from, .. } = &target {
                        tracing::debug!(endpoint = current.path(), from = %from, "Rebased a redirect onto the tenant");
                    }
                    current = target.into_url();
                }
            }
        }
        Err(Error::new(
            ErrorKind::Source,
            format!("{} redirected more than {MAX_REDIRECTS} times", url.path()),
        )
        .with_context("endpoint", url.path().to_string())
        .with_hint(crate::remediation::SOURCE_PROTOCOL))
    }
}

/// The header every request carries: `qlik-api-version: <version>`, set on the HTTP client
/// itself so that no request (the OAuth token's included) goes without it.
fn version_header(version: &str) -> Result<HeaderMap> {
    let value = HeaderValue::from_str(version)
        .map_err(|_| Error::config("api_version", format!("`{version}` cannot be sent in a header")))?;
    Ok(HeaderMap::from_iter([(HeaderName::from_static(api_version::HEADER), value)]))
}

/// Classifies a response: an error status by [`error::from_response`] (429 and 5xx are
/// retried, the rest final), a JSON body that breaks off is retried, a complete body that
/// is not JSON (a proxy's login page, an empty 200) or JSON of another shape than `T`
/// fails at once, saying what came back ([`json_body::parse`]).
fn interpret<T: DeserializeOwned>(fetched: Fetched, path: &str) -> Result<Reply<T>> {
    let status = fetched.status;
    if status.is_redirection() {
        return match fetched.headers.get(LOCATION).and_then(|l| l.to_str().ok()) {
            Some(location) => Ok(Reply::Redirect(location.to_string())),
            None => Err(Error::new(
                ErrorKind::Source,
                format!("{path} answered HTTP {} without a Location", status.as_u16()),
            )),
        };
    }
    if !status.is_success() {
        return Err(error::from_response(status.as_u16(), &fetched.body, path));
    }
    json_body::parse(&fetched, path).map(|value| Reply::Json(fetched.url, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn never_sends_the_key_off_the_tenant() {
        let settings =
            Settings::from_json(&json!({"tenant_url": "http://127.0.0.1:9", "api_key": "canary"})).unwrap();
        let client = QlikClient::new(&settings, SignIn::from_settings(&settings).unwrap()).unwrap();
        let mut events = Vec::new();
        for foreign in [
            "http://evil.example/api/v1/users",
            "http://127.0.0.1:10/api/v1/users",
            "https://127.0.0.1:9/api",
        ] {
            let err = client.get::<Value>(&Url::parse(foreign).unwrap(), &mut events).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Internal, "{foreign}");
            assert!(err.message().contains("refusing to send the API key"), "{err}");
        }
        assert!(events.is_empty(), "nothing was attempted");
        assert!(!format!("{client:?}").contains("canary"));
    }

    #[test]
    fn interpret_retries_cut_off_json_and_fails_html() {
        let fetched = |status: u16, body: &str| Fetched {
            url: Url::parse("http://127.0.0.1/api/v1/users").unwrap(),
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            headers: Default::default(),
            body: body.as_bytes().to_vec(),
        };
        let cut = interpret::<Value>(fetched(200, r#"{"data":[{"id":"#), "/p").unwrap_err();
        assert!(cut.is_retryable(), "{cut}");
        let html = interpret::<Value>(fetched(200, "<html>"), "/p").unwrap_err();
        assert!(!html.is_retryable() && html.hint() == Some(json_body::NOT_JSON_HINT), "{html}");
        assert!(matches!(interpret::<Value>(fetched(200, r#"{"data":[]}"#), "/p"), Ok(Reply::Json(..))));
        let denied = interpret::<Value>(fetched(403, ""), "/api/v1/licenses/overview").unwrap_err();
        assert!(denied.kind() == ErrorKind::Permission && !denied.is_retryable());
        for (status, kind) in
            [(429, ErrorKind::RateLimited), (503, ErrorKind::Transient), (408, ErrorKind::Transient)]
        {
            let err = interpret::<Value>(fetched(status, ""), "/p").unwrap_err();
            assert!(err.kind() == kind && err.is_retryable(), "{status}: {err}");
        }
    }

    #[test]
    fn interpret_fails_json_of_another_shape_without_retrying() {
        let fetched = Fetched {
            url: Url::parse("http://127.0.0.1/api/v1/users").unwrap(),
            status: reqwest::StatusCode::OK,
            headers: Default::default(),
            body: br#"{"data": 7}"#.to_vec(),
        };
        let err = interpret::<Vec<u32>>(fetched, "/api/v1/users").unwrap_err();
        assert!(!err.is_retryable(), "another shape is not retried");
        assert_eq!(err.kind(), ErrorKind::Source);
        assert_eq!(err.context_value("endpoint"), Some("/api/v1/users"));
    }
}
