//! The SCIM connector's configuration.
//!
//! The doc comments on the fields are the user documentation: `schemars` turns them
//! into the `description`s of the JSON Schema that `connector-host spec scim` prints.

use std::time::Duration;

use connector_api::secret::Secret;
use connector_api::{Error, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

/// Largest `count` the connector asks for; servers cap pages lower anyway.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// How to reach a SCIM 2.0 service provider.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimConfig {
    /// The SCIM base URL, the one `/Users` and `/Groups` hang off
    /// (e.g. `https://example.okta.com/scim/v2`). Must be HTTPS, except on loopback.
    #[schemars(url)]
    pub base_url: String,

    /// The Bearer token the service provider issued for SCIM access.
    pub token: Secret,

    /// Resources per page (`count`). The server may return fewer; the connector then
    /// follows the server's page size.
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 1000))]
    pub page_size: u32,

    /// Requests per minute across every stream of a read, to stay under the provider's
    /// rate limit. Leave unset for no client-side limit.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub requests_per_minute: Option<u32>,

    /// How far before the saved checkpoint an incremental `users` read starts again
    /// (`1h` by default; `30m`, `2h`, `0s` for none). SCIM servers list users unsorted, so
    /// a user changed during a read, on a page already read, can be older than the
    /// checkpoint that read saves; the overlap reads such changes next time. Make it longer
    /// than a read of the directory takes. Users read again are updated in place.
    #[serde(default = "default_lookback")]
    pub lookback: String,
}

fn default_page_size() -> u32 {
    100
}

fn default_lookback() -> String {
    "1h".to_string()
}

impl ScimConfig {
    /// Parses and checks the JSON config a host hands over.
    pub fn from_json(config: &serde_json::Value) -> Result<Self> {
        let parsed: ScimConfig = connector_api::config::parse(config)?;
        parsed.base_url()?;
        if !(1..=MAX_PAGE_SIZE).contains(&parsed.page_size) {
            return Err(Error::config("page_size", format!("must be between 1 and {MAX_PAGE_SIZE}")));
        }
        if parsed.requests_per_minute == Some(0) {
            return Err(Error::config("requests_per_minute", "must be at least 1"));
        }
        parsed.lookback()?;
        Ok(parsed)
    }

    /// The look-back, parsed.
    pub fn lookback(&self) -> Result<Duration> {
        connector_api::config::lookback("lookback", &self.lookback)
    }

    /// The base URL, parsed: https (plain http only on loopback, where the token would
    /// not cross the network in clear text), no user name or password.
    pub fn base_url(&self) -> Result<Url> {
        connector_api::config::source_url(
            "base_url",
            &self.base_url,
            "token",
            "https://example.okta.com/scim/v2",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector_api::ErrorKind;
    use serde_json::json;

    #[test]
    fn debug_hides_the_token() {
        let config = ScimConfig::from_json(
            &json!({"base_url": "https://idp.example/scim/v2", "token": "tok-canary-1"}),
        )
        .unwrap();
        assert_eq!(config.page_size, 100);
        assert!(!format!("{config:?}").contains("tok-canary-1"));
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let parse = |url: &str| ScimConfig::from_json(&json!({"base_url": url, "token": "t"}));
        assert!(parse("http://127.0.0.1:8080/scim/v2").is_ok());
        assert!(parse("http://localhost/scim/v2").is_ok());
        let err = parse("http://idp.example/scim/v2").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(err.context_value("field"), Some("base_url"));
    }

    #[test]
    fn bad_fields_are_named() {
        let err = ScimConfig::from_json(&json!({"base_url": "https://x", "token": "t", "page_size": 0}))
            .unwrap_err();
        assert_eq!(err.context_value("field"), Some("page_size"));
        let err = ScimConfig::from_json(&json!({"base_url": "https://x", "token": "t", "pagesize": 5}))
            .unwrap_err();
        assert!(err.message().contains("unknown field `pagesize`"), "{err}");
        let err = ScimConfig::from_json(&json!({"base_url": "https://x"})).unwrap_err();
        assert!(err.message().contains("missing field `token`"), "{err}");
    }
}
