//! The connector's configuration: what an operator writes, and the validated
//! [`Settings`] the rest of the crate uses.

use std::time::Duration;

use connector_api::secret::Secret;
use connector_api::{Error, Result};
use schemars::JsonSchema;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use crate::streams;

/// Default requests per minute: Qlik's Tier 1 limit, which every endpoint read uses.
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 1000;
/// Default window, in seconds, the limit is evaluated over: Qlik evaluates Tier 1 "over a
/// 5-minute window to support bursts of requests" (<https://qlik.dev/apis/rest/rate-limiting>).
pub const DEFAULT_RATE_WINDOW_SECONDS: u32 = 300;
/// The share of the user's limit, in percent, one run spends. Qlik counts the limit per
/// user, across every key and integration of the key's owner; the rest is left to them
/// (500 of Tier 1's 5,000 requests in 5 minutes), and absorbs the difference between when
/// a request leaves this host and when Qlik counts it.
pub const RATE_BUDGET_PERCENT: u64 = 90;
/// Default number of streams read at once.
pub const DEFAULT_MAX_CONCURRENCY: usize = 8;
/// Default per-request timeout, in seconds.
pub const DEFAULT_REQUEST_TIMEOUT: u64 = 60;
/// Default look-back of an incremental `license_consumption` or `user_sessions` sync.
pub const DEFAULT_CONSUMPTION_LOOKBACK: &str = "48h";

/// Configuration of the Qlik Sense (Qlik Cloud) connector.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Qlik Sense (Qlik Cloud)")]
pub struct QlikConfig {
    /// Address of the Qlik Cloud tenant, e.g. `https://acme.eu.qlikcloud.com` or a custom
    /// domain. Trailing slashes and a pasted `/api/v1/...` path are ignored. `http://` is
    /// accepted only for loopback hosts (a local simulator).
    pub tenant_url: String,
    /// API key generated under Profile settings > API keys by a user with the "Manage API
    /// keys" permission. The key acts with its creator's rights: licence streams need a
    /// Tenant Admin. Never logged or stored by the connector. Give either this or an OAuth
    /// client (`client_id` and `client_secret`).
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Client id of an OAuth machine-to-machine client (Administration activity center >
    /// OAuth), used instead of `api_key`: the connector exchanges it with `client_secret`
    /// for short-lived access tokens. The client acts as a bot with Tenant Admin rights and
    /// belongs to no person.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Client secret of the OAuth client named by `client_id`, shown once when the client
    /// was created. Never logged or stored by the connector.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Streams to read; every stream when omitted.
    #[serde(default)]
    pub streams: Option<Vec<String>>,
    /// Records per request. Capped at each endpoint's maximum (100, or 200 for
    /// licence consumption); the maximum when omitted.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub page_size: Option<u32>,
    /// Listings read at the same time: streams, the `endTime` slices `license_consumption`
    /// is read in, the two ends `users` is read from, and each space's assignments. 1 reads
    /// one listing after another, each in one sequential chain of pages.
    #[serde(default = "default_max_concurrency")]
    #[schemars(range(min = 1, max = 64))]
    pub max_concurrency: usize,
    /// The key's user's request limit per minute, evaluated over `rate_window_seconds`.
    /// Qlik's Tier 1 limit is 1000 per minute per user, per tenant, over 5 minutes, shared
    /// by every key of the key's owner. All streams of a run together send at most 90% of
    /// `requests_per_minute` × `rate_window_seconds` / 60 requests in any window of
    /// `rate_window_seconds` (4,500 in any 5 minutes by default), leaving the rest to the
    /// user's other integrations: a run that needs fewer is never slowed down, a larger one
    /// waits only for its oldest requests to leave the window.
    #[serde(default = "default_requests_per_minute")]
    #[schemars(range(min = 1))]
    pub requests_per_minute: u32,
    /// Seconds of the window `requests_per_minute` is evaluated over: 300, as Qlik evaluates
    /// Tier 1 over 5 minutes to support bursts. 60 makes the budget a per-minute one.
    #[serde(default = "default_rate_window_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub rate_window_seconds: u32,
    /// Seconds one request may take before it is abandoned and retried.
    #[serde(default = "default_request_timeout")]
    #[schemars(range(min = 1, max = 600))]
    pub request_timeout: u64,
    /// How far back the first `license_consumption` sync reaches: an RFC 3339 timestamp
    /// (`2025-01-01T00:00:00Z`) or a date (`2025-01-01`). All history when omitted.
    /// Later syncs resume from the saved cursor.
    #[serde(default)]
    pub consumption_start: Option<String>,
    /// How far before the saved cursor an incremental `license_consumption` sync starts
    /// again: a number with a unit, `s`, `m`, `h` or `d` (`48h`, `2d`; `0s` for none). Qlik
    /// records some events after later ones, and sessions end in the same second; the
    /// overlap picks those up, and rows already loaded are updated in place (the stream is
    /// keyed by `id`), not duplicated.
    #[serde(default = "default_consumption_lookback")]
    pub consumption_lookback: String,
    /// Find out which licence assignments are orphans (`orphans=true`): their subject has no
    /// user on this tenant (an entitlement can serve several tenants and client-managed
    /// sites). Every assignment is listed either way; this sets `orphan` to true or false
    /// instead of leaving it null.
    #[serde(default)]
    pub include_orphans: bool,
    /// How far back the first `user_sessions` sync reaches: an RFC 3339 timestamp or a date.
    /// Qlik keeps audit events online for 90 days; days before that are read from the audit
    /// archive (`/api/v1/audits/archive`), one request per day, where the tenant archives
    /// them. The online 90 days when omitted. Later syncs resume from the saved cursor.
    #[serde(default)]
    pub sessions_start: Option<String>,
    /// How far before the saved cursor an incremental `user_sessions` sync starts again
    /// (`48h` by default, same format as `consumption_lookback`): Qlik may record an audit
    /// event after later ones; rows read again are updated in place, keyed by event id.
    #[serde(default = "default_consumption_lookback")]
    pub sessions_lookback: String,
    /// The Qlik Cloud API release every request names in its `qlik-api-version` header
    /// (`YYYY-MM`: 2026-05, 2026-08, 2026-11 …). Qlik answers deprecations of what that
    /// release relies on in response headers, which the run summary, `_runs` and `check`
    /// show. 2026-11, the release this connector is tested against, when omitted; set it
    /// only to hear of deprecations announced to another release.
    #[serde(default)]
    pub api_version: Option<String>,
}

fn default_max_concurrency() -> usize {
    DEFAULT_MAX_CONCURRENCY
}

fn default_requests_per_minute() -> u32 {
    DEFAULT_REQUESTS_PER_MINUTE
}

fn default_rate_window_seconds() -> u32 {
    DEFAULT_RATE_WINDOW_SECONDS
}

fn default_request_timeout() -> u64 {
    DEFAULT_REQUEST_TIMEOUT
}

fn default_consumption_lookback() -> String {
    DEFAULT_CONSUMPTION_LOOKBACK.to_string()
}

/// A validated configuration.
#[derive(Debug)]
pub struct Settings {
    /// The tenant's origin (`https://acme.eu.qlikcloud.com/`), path stripped.
    pub tenant: Url,
    /// How the connector signs in.
    pub auth: Auth,
    /// Streams the config allows, in catalog order.
    pub streams: Vec<&'static str>,
    /// Requested page size, before each endpoint's cap.
    pub page_size: Option<u32>,
    /// Concurrent streams and fan-out requests.
    pub max_concurrency: usize,
    /// The user's request limit per minute, as configured.
    pub requests_per_minute: u32,
    /// The window the limit is evaluated over.
    pub rate_window: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Lower bound of the first consumption sync, RFC 3339.
    pub consumption_start: Option<String>,
    /// How far before the saved cursor an incremental consumption sync starts.
    pub consumption_lookback: Duration,
    /// Lower bound of the first `user_sessions` sync, RFC 3339.
    pub sessions_start: Option<String>,
    /// How far before the saved cursor an incremental `user_sessions` sync starts.
    pub sessions_lookback: Duration,
    /// Whether to run the `orphans=true` assignments pass.
    pub include_orphans: bool,
    /// The API release sent in `qlik-api-version` ([`crate::api_version`]).
    pub api_version: String,
}

/// How the connector signs in: exactly one of an API key and an OAuth client.
#[derive(Debug)]
pub enum Auth {
    /// A user's API key (`api_key`).
    ApiKey(SecretString),
    /// An OAuth machine-to-machine client (`client_id`, `client_secret`).
    OAuthClient {
        /// The client id; not a secret, it names the client in messages.
        client_id: String,
        /// The client secret.
        client_secret: SecretString,
    },
}

impl Auth {
    /// Picks the method from the config's fields, refusing none, both, or half a client.
    /// The client secret is registered so it is masked in any output.
    fn from_fields(
        api_key: Option<SecretString>,
        client_id: Option<String>,
        client_secret: Option<SecretString>,
    ) -> Result<Auth> {
        use secrecy::ExposeSecret;
        const ONE_OF: &str = "give either api_key or an OAuth client (client_id and client_secret)";
        match (api_key, client_id, client_secret) {
            (Some(key), None, None) => Ok(Auth::ApiKey(key)),
            (None, Some(client_id), Some(client_secret)) => {
                connector_api::secret::register(client_secret.expose_secret());
                if client_id.trim().is_empty() {
                    return Err(Error::config("client_id", "is blank"));
                }
                if client_secret.expose_secret().trim().is_empty() {
                    return Err(Error::config("client_secret", "is blank"));
                }
                Ok(Auth::OAuthClient { client_id: client_id.trim().to_string(), client_secret })
            }
            (Some(_), _, _) => {
                Err(Error::config("api_key", format!("is given beside an OAuth client; {ONE_OF}")))
            }
            (None, None, None) => Err(Error::config("api_key", format!("is missing; {ONE_OF}"))),
            (None, Some(_), None) => {
                Err(Error::config("client_secret", "is missing; client_id needs its client_secret"))
            }
            (None, None, Some(_)) => {
                Err(Error::config("client_id", "is missing; client_secret needs its client_id"))
            }
        }
    }

    /// The method's name, for `check`.
    pub fn describe(&self) -> String {
        match self {
            Auth::ApiKey(_) => "API key".to_string(),
            Auth::OAuthClient { client_id, .. } => {
                format!("OAuth machine-to-machine client {client_id} (client credentials)")
            }
        }
    }
}

impl Settings {
    /// The tenant's host as `tenant_url` names it, with its port if it has one: the
    /// identity that keeps this tenant's rows apart from others' in the hub.
    pub fn tenant_host(&self) -> String {
        let host = self.tenant.host_str().unwrap_or_default();
        match self.tenant.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }

    /// Parses and validates a config, naming the offending field on failure.
    pub fn from_json(config: &Value) -> Result<Self> {
        let raw: QlikConfig = connector_api::config::parse(config)?;
        Self::from_config(raw)
    }

    /// Validates a parsed config.
    pub fn from_config(raw: QlikConfig) -> Result<Self> {
        let tenant = normalize_tenant_url(&raw.tenant_url)?;
        let auth = Auth::from_fields(
            raw.api_key.map(Secret::into_inner),
            raw.client_id,
            raw.client_secret.map(Secret::into_inner),
        )?;
        let streams = select_streams(raw.streams.as_deref())?;
        if raw.page_size == Some(0) {
            return Err(Error::config("page_size", "must be at least 1"));
        }
        if !(1..=64).contains(&raw.max_concurrency) {
            return Err(Error::config("max_concurrency", "must be between 1 and 64"));
        }
        if raw.requests_per_minute == 0 {
            return Err(Error::config("requests_per_minute", "must be at least 1"));
        }
        if !(1..=3600).contains(&raw.rate_window_seconds) {
            return Err(Error::config("rate_window_seconds", "must be between 1 and 3600"));
        }
        if !(1..=600).contains(&raw.request_timeout) {
            return Err(Error::config("request_timeout", "must be between 1 and 600 seconds"));
        }
        let start = |field, value: Option<&str>| value.map(|v| parse_start(field, v)).transpose();
        let consumption_start = start("consumption_start", raw.consumption_start.as_deref())?;
        let consumption_lookback =
            connector_api::config::lookback("consumption_lookback", &raw.consumption_lookback)?;
        let sessions_start = start("sessions_start", raw.sessions_start.as_deref())?;
        let sessions_lookback = connector_api::config::lookback("sessions_lookback", &raw.sessions_lookback)?;
        let api_version = match raw.api_version.as_deref() {
            Some(v) => crate::api_version::validate(v)?,
            None => crate::api_version::API_VERSION.to_string(),
        };
        Ok(Settings {
            tenant,
            auth,
            streams,
            page_size: raw.page_size,
            max_concurrency: raw.max_concurrency,
            requests_per_minute: raw.requests_per_minute,
            rate_window: Duration::from_secs(raw.rate_window_seconds.into()),
            request_timeout: Duration::from_secs(raw.request_timeout),
            consumption_start,
            consumption_lookback,
            sessions_start,
            sessions_lookback,
            include_orphans: raw.include_orphans,
            api_version,
        })
    }

    /// The most requests a run sends in any window of [`Settings::rate_window`]: its
    /// [`RATE_BUDGET_PERCENT`] share of the user's limit over that window, at least 1.
    pub fn rate_budget(&self) -> u64 {
        let limit = u64::from(self.requests_per_minute) * self.rate_window.as_secs();
        (limit * RATE_BUDGET_PERCENT / (60 * 100)).max(1)
    }

    /// The page size for an endpoint whose maximum `limit` is `max`.
    pub fn limit(&self, max: u32) -> u32 {
        self.page_size.unwrap_or(max).clamp(1, max)
    }
}

/// Reduces what an operator pastes to the tenant's origin.
///
/// Accepts a bare host (`acme.eu.qlikcloud.com`), drops any path (a pasted
/// `/api/v1/users`, the hub's `/hub/home`), query and fragment, and refuses plain HTTP
/// except on loopback hosts, where the simulator runs.
pub fn normalize_tenant_url(input: &str) -> Result<Url> {
    let mut url =
        connector_api::config::source_url("tenant_url", input, "api_key", "https://acme.eu.qlikcloud.com")?;
    url.set_path("/");
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

fn select_streams(selection: Option<&[String]>) -> Result<Vec<&'static str>> {
    let known = streams::names();
    let Some(selection) = selection else {
        return Ok(known);
    };
    if selection.is_empty() {
        return Err(Error::config("streams", "is empty; omit it to read every stream")
            .with_hint(format!("Known streams: {}", known.join(", "))));
    }
    for name in selection {
        if !known.contains(&name.as_str()) {
            return Err(Error::config("streams", format!("unknown stream `{name}`"))
                .with_hint(format!("Known streams: {}", known.join(", "))));
        }
    }
    Ok(known.iter().copied().filter(|k| selection.iter().any(|s| s == k)).collect())
}

fn parse_start(field: &'static str, value: &str) -> Result<String> {
    let value = value.trim();
    let parsed = OffsetDateTime::parse(value, &Rfc3339).or_else(|_| {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(value, &format).map(|d| d.midnight().assume_utc())
    });
    let at = parsed.map_err(|_| {
        Error::config(field, "is not an RFC 3339 timestamp (2025-01-01T00:00:00Z) or a date (2025-01-01)")
    })?;
    at.format(&Rfc3339).map_err(|e| Error::config(field, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector_api::ErrorKind;
    use serde_json::json;

    #[test]
    fn tenant_url_is_normalised() {
        for input in [
            "https://acme.eu.qlikcloud.com",
            "https://acme.eu.qlikcloud.com/",
            "https://acme.eu.qlikcloud.com///",
            "  https://acme.eu.qlikcloud.com/api/v1/users?limit=5 ",
            "acme.eu.qlikcloud.com",
            "https://ACME.eu.qlikcloud.com/hub/home#x",
        ] {
            assert_eq!(
                normalize_tenant_url(input).unwrap().as_str(),
                "https://acme.eu.qlikcloud.com/",
                "{input}"
            );
        }
        assert_eq!(
            normalize_tenant_url("https://analytics.example.com:8443/api").unwrap().as_str(),
            "https://analytics.example.com:8443/"
        );
    }

    #[test]
    fn http_only_for_loopback() {
        for ok in ["http://127.0.0.1:4000", "http://localhost:4000/api/v1", "http://[::1]:9"] {
            assert_eq!(normalize_tenant_url(ok).unwrap().scheme(), "http", "{ok}");
        }
        let err = normalize_tenant_url("http://acme.eu.qlikcloud.com").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(err.context_value("field"), Some("tenant_url"));
        assert!(err.message().contains("use https://"), "{err}");
    }

    #[test]
    fn bad_urls_name_the_field() {
        for bad in ["", "ftp://acme.example", "https://user:pw@acme.example", "https://"] {
            let err = normalize_tenant_url(bad).unwrap_err();
            assert_eq!(err.context_value("field"), Some("tenant_url"), "{bad}: {err}");
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
        let err = normalize_tenant_url("javascript:alert(1)").unwrap_err();
        assert_eq!(
            err.message(),
            "tenant_url: uses `javascript:`, which is not a web address; give the address, e.g. https://acme.eu.qlikcloud.com"
        );
    }

    #[test]
    fn defaults_and_caps() {
        let s = Settings::from_json(&json!({"tenant_url": "https://a.eu.qlikcloud.com", "api_key": "k"}))
            .unwrap();
        assert_eq!(s.requests_per_minute, 1000);
        assert_eq!(s.rate_window, Duration::from_secs(300));
        assert_eq!(s.rate_budget(), 4_500, "90% of Tier 1's 5,000 requests in 5 minutes");
        assert_eq!(s.streams, streams::names());
        assert_eq!(s.limit(100), 100);
        let s = Settings::from_json(
            &json!({"tenant_url": "https://a.eu.qlikcloud.com", "api_key": "k", "page_size": 150}),
        )
        .unwrap();
        assert_eq!((s.limit(100), s.limit(200)), (100, 150));
    }

    #[test]
    fn api_version_defaults_to_the_tested_release_and_is_validated() {
        let with = |v: Value| {
            let mut c = json!({"tenant_url": "https://a.eu.qlikcloud.com", "api_key": "k"});
            if !v.is_null() {
                c["api_version"] = v;
            }
            Settings::from_json(&c)
        };
        assert_eq!(with(Value::Null).unwrap().api_version, crate::api_version::API_VERSION);
        assert_eq!(with(json!("2026-08")).unwrap().api_version, "2026-08");
        let err = with(json!("2026-09")).unwrap_err();
        assert_eq!(err.context_value("field"), Some("api_version"));
        assert!(err.message().contains("`2026-09` is not a Qlik API release"), "{err}");
    }

    #[test]
    fn the_rate_budget_is_a_share_of_the_limit_over_the_window() {
        let settings = |extra: Value| {
            let mut config = json!({"tenant_url": "https://a.eu.qlikcloud.com", "api_key": "k"});
            config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            Settings::from_json(&config)
        };
        let per_minute = settings(json!({"requests_per_minute": 100, "rate_window_seconds": 60})).unwrap();
        assert_eq!((per_minute.rate_budget(), per_minute.rate_window), (90, Duration::from_secs(60)));
        let tiny = settings(json!({"requests_per_minute": 1, "rate_window_seconds": 1})).unwrap();
        assert_eq!(tiny.rate_budget(), 1, "never a budget of nothing");
        let huge = settings(json!({"requests_per_minute": u32::MAX, "rate_window_seconds": 3600})).unwrap();
        assert_eq!(huge.rate_budget(), u64::from(u32::MAX) * 60 * 9 / 10);
        for bad in [0, 3601] {
            let err = settings(json!({"rate_window_seconds": bad})).unwrap_err();
            assert_eq!(err.context_value("field"), Some("rate_window_seconds"), "{bad}: {err}");
        }
    }

    #[test]
    fn unknown_fields_and_streams_are_named() {
        let err = Settings::from_json(
            &json!({"tenant_url": "https://a.qlikcloud.com", "api_key": "k", "pagesize": 3}),
        )
        .unwrap_err();
        assert!(err.message().contains("unknown field `pagesize`"), "{err}");
        let err = Settings::from_json(
            &json!({"tenant_url": "https://a.qlikcloud.com", "api_key": "k", "streams": ["userz"]}),
        )
        .unwrap_err();
        assert_eq!(err.context_value("field"), Some("streams"));
        assert!(err.hint().unwrap().contains("users"), "{err}");
    }

    #[test]
    fn consumption_start_accepts_dates() {
        assert_eq!(parse_start("consumption_start", "2025-01-01").unwrap(), "2025-01-01T00:00:00Z");
        assert_eq!(
            parse_start("consumption_start", "2025-03-04T05:06:07+01:00").unwrap(),
            "2025-03-04T05:06:07+01:00"
        );
        assert_eq!(
            parse_start("consumption_start", "last year").unwrap_err().context_value("field"),
            Some("consumption_start")
        );
    }

    #[test]
    fn consumption_lookback_defaults_to_48_hours() {
        let s = Settings::from_json(&json!({"tenant_url": "https://a.eu.qlikcloud.com", "api_key": "k"}))
            .unwrap();
        assert_eq!(s.consumption_lookback, Duration::from_secs(48 * 3600));
        let err = Settings::from_json(
            &json!({"tenant_url": "https://a.eu.qlikcloud.com", "api_key": "k", "sessions_lookback": "2 weeks ago"}),
        )
        .unwrap_err();
        assert_eq!(err.context_value("field"), Some("sessions_lookback"));
    }

    #[test]
    fn exactly_one_sign_in_is_given() {
        let with = |extra: serde_json::Value| {
            let mut c = json!({"tenant_url": "https://a.eu.qlikcloud.com"});
            c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            Settings::from_json(&c)
        };
        let field = |extra| with(extra).unwrap_err().context_value("field").map(str::to_string);
        assert!(matches!(with(json!({"api_key": "k"})).unwrap().auth, Auth::ApiKey(_)));
        let oauth = with(json!({"client_id": " id-1 ", "client_secret": "client-secret-canary"})).unwrap();
        assert!(matches!(&oauth.auth, Auth::OAuthClient { client_id, .. } if client_id == "id-1"));
        assert!(!format!("{oauth:?}").contains("client-secret-canary"));
        assert_eq!(connector_api::secret::scrub("x client-secret-canary"), "x ****");
        assert_eq!(field(json!({})).as_deref(), Some("api_key"));
        assert_eq!(
            field(json!({"api_key": "k", "client_id": "i", "client_secret": "s1234"})).as_deref(),
            Some("api_key")
        );
        assert_eq!(field(json!({"client_id": "i"})).as_deref(), Some("client_secret"));
        assert_eq!(field(json!({"client_secret": "s1234"})).as_deref(), Some("client_id"));
        assert_eq!(field(json!({"client_id": " ", "client_secret": "s1234"})).as_deref(), Some("client_id"));
    }

    #[test]
    fn debug_hides_the_key() {
        let raw: QlikConfig = connector_api::config::parse(
            &json!({"tenant_url": "https://a.qlikcloud.com", "api_key": "canary-key-123"}),
        )
        .unwrap();
        assert!(!format!("{raw:?}").contains("canary-key-123"));
        let s = Settings::from_config(raw).unwrap();
        assert!(!format!("{s:?}").contains("canary-key-123"));
    }
}
