//! Turning the JSON a host hands over into a connector's typed config, and the rules every
//! connector applies to the address it sends credentials to.

use std::net::IpAddr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use url::{Host, Url};

use crate::{Error, ErrorKind, Result};

/// Parses the address of a source from what an operator wrote in `field`, before any
/// credential is sent to it: a bare host gets `https://`; the URL must name a host, carry
/// no user name or password (the credential belongs in `credential`, where it is a
/// secret), and use https, except on a loopback host, where a local simulator or test
/// server answers plain http. `example` shows a good value in every message.
pub fn source_url(field: &str, input: &str, credential: &str, example: &str) -> Result<Url> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(Error::config(field, format!("is empty; give the address, e.g. {example}")));
    }
    if !trimmed.contains("://")
        && let Some((scheme, rest)) = trimmed.split_once(':')
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !rest.split('/').next().is_some_and(|port| port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Error::config(
            field,
            format!("uses `{scheme}:`, which is not a web address; give the address, e.g. {example}"),
        ));
    }
    let with_scheme =
        if trimmed.contains("://") { trimmed.to_string() } else { format!("https://{trimmed}") };
    let url = Url::parse(&with_scheme)
        .map_err(|e| Error::config(field, format!("is not a URL ({e}); expected e.g. {example}")))?;
    let Some(host) = url.host() else {
        return Err(Error::config(field, format!("has no host name; expected e.g. {example}")));
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::config(
            field,
            format!("must not contain a user name or password; put the credential in {credential}"),
        ));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&host) => Ok(url),
        "http" => Err(Error::config(
            field,
            format!(
                "uses http://, which would send {credential} unencrypted; use https:// (http:// is allowed only for loopback hosts)"
            ),
        )),
        other => Err(Error::config(field, format!("uses `{other}://`; use https://"))),
    }
}

/// Whether `host` is this machine.
fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// The longest look-back a connector accepts: a year, past which a "look-back" is a full
/// refresh in disguise.
const MAX_LOOKBACK: Duration = Duration::from_secs(366 * 86_400);

/// Reads `value` of config field `field` as a look-back, how far before its saved cursor
/// an incremental stream starts again: a duration such as `48h`, `2d`, `90m`, `1h 30m` or
/// `0s` (humantime's format), at most a year.
pub fn lookback(field: &str, value: &str) -> Result<Duration> {
    match humantime::parse_duration(value.trim()) {
        Ok(d) if d <= MAX_LOOKBACK => Ok(d),
        _ => Err(Error::config(
            field,
            "is not a duration of at most a year written as numbers with units s, m, h or d (48h, 2d, 1h 30m, 0s)",
        )),
    }
}

/// Parses `config` into `T`, naming the offending field on failure.
///
/// Declare `T` with `#[serde(deny_unknown_fields)]` so a misspelt option is an error
/// rather than silently ignored. The error message names the field path
/// (`streams[2]`, `api_key` …) and serde's reason, never the value, so a secret in a
/// mistyped field cannot leak through the error.
pub fn parse<T: DeserializeOwned>(config: &Value) -> Result<T> {
    serde_path_to_error::deserialize(config).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { "config".to_string() } else { path };
        let reason = redact_reason(&err.inner().to_string());
        Error::new(ErrorKind::Config, format!("{field}: {reason}")).with_context("field", field)
    })
}

/// serde_json reports `invalid type: string "…", expected …`, quoting the value. Values
/// may be secrets, so keep only the shape of the complaint.
fn redact_reason(reason: &str) -> String {
    let Some(start) = reason.find('"') else {
        return reason.to_string();
    };
    let Some(len) = reason[start + 1..].find("\", ") else {
        return reason.to_string();
    };
    let end = start + 1 + len + 1;
    format!("{}{}", &reason[..start].trim_end(), &reason[end..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[test]
    fn a_lookback_is_numbers_with_units_up_to_a_year() {
        assert_eq!(lookback("f", "48h").unwrap(), Duration::from_secs(48 * 3600));
        assert_eq!(lookback("f", " 2d").unwrap(), Duration::from_secs(2 * 86_400));
        assert_eq!(lookback("f", "0s").unwrap(), Duration::ZERO);
        assert_eq!(lookback("f", "1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(lookback("f", "1.5h").unwrap(), Duration::from_secs(5400));
        for bad in ["", "48", "h", "-1h", "2 weeks ago", "400d"] {
            assert_eq!(lookback("f", bad).unwrap_err().context_value("field"), Some("f"), "{bad}");
        }
    }

    #[test]
    fn a_source_url_is_https_unless_loopback_and_carries_no_credentials() {
        let url = |input: &str| source_url("base_url", input, "token", "https://idp.example/scim/v2");
        assert_eq!(url("idp.example/scim/v2").unwrap().as_str(), "https://idp.example/scim/v2");
        assert!(url("http://127.0.0.1:8080/scim").is_ok());
        assert!(url("http://[::1]/scim").is_ok());
        assert!(url("http://LOCALHOST/scim").is_ok());
        for (bad, says) in [
            ("http://idp.example/scim", "would send token unencrypted"),
            ("https://user:pw@idp.example/scim", "put the credential in token"),
            ("javascript:alert(1)", "is not a web address"),
            ("ftp://idp.example", "use https://"),
            ("  ", "is empty"),
        ] {
            let err = url(bad).unwrap_err();
            assert_eq!(err.context_value("field"), Some("base_url"), "{bad}");
            assert!(err.message().contains(says), "{bad}: {err}");
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        url: String,
        #[serde(default)]
        page_size: Option<u32>,
    }

    #[test]
    fn missing_field_is_named() {
        let err = parse::<Sample>(&json!({})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains("missing field `url`"), "{err}");
    }

    #[test]
    fn wrong_type_names_field_without_value() {
        let err = parse::<Sample>(&json!({"url": "x", "page_size": "hunter2"})).unwrap_err();
        assert_eq!(err.context_value("field"), Some("page_size"));
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.message().contains("invalid type: string"), "{err}");
    }

    #[test]
    fn unknown_field_is_named() {
        let err = parse::<Sample>(&json!({"url": "x", "pagesize": 3})).unwrap_err();
        assert!(err.message().contains("unknown field `pagesize`"), "{err}");
    }
}
