//! One mapping from a SCIM error response to [`connector_api::Error`] kinds.
//!
//! The kind decides whether the shared retry loop tries again (429 → rate limited, 408
//! and 5xx → transient, both retried) and, once it gives up or for a final answer, what
//! the host tells the operator and which exit code it uses.

use connector_api::{Error, ErrorKind};
use reqwest::StatusCode;
use serde::Deserialize;

/// The error body of RFC 7644 §3.12. Every field is optional: providers differ.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScimError {
    detail: Option<String>,
    scim_type: Option<String>,
}

/// Longest server-provided detail quoted in an error, so an HTML error page does not
/// flood the log.
const MAX_DETAIL: usize = 200;

/// Turns a non-success response of `endpoint` into an error of the right kind.
pub fn parse_error(endpoint: &str, status: StatusCode, body: &[u8]) -> Error {
    let scim: ScimError = serde_json::from_slice(body).unwrap_or_default();
    let detail = scim
        .detail
        .map(|d| d.chars().take(MAX_DETAIL).collect::<String>())
        .map(|d| format!(": {d}"))
        .unwrap_or_default();
    let (kind, message, hint) = match status {
        StatusCode::UNAUTHORIZED => (
            ErrorKind::Auth,
            format!("the SCIM server rejected the token{detail}"),
            "Check `token`: it may be mistyped, expired or revoked; issue a new one in the provider's SCIM settings",
        ),
        StatusCode::FORBIDDEN => (
            ErrorKind::Permission,
            format!("the token may not read {endpoint}{detail}"),
            "Grant the token's client read access to users and groups",
        ),
        StatusCode::NOT_FOUND => (
            ErrorKind::NotFound,
            format!("{endpoint} does not exist on this server{detail}"),
            "Check `base_url`: it must be the SCIM base, the URL `/Users` hangs off (often ending in /scim/v2)",
        ),
        StatusCode::BAD_REQUEST if scim.scim_type.as_deref() == Some("invalidFilter") => (
            ErrorKind::Source,
            format!("the server does not support the incremental filter on meta.lastModified{detail}"),
            "Read the users stream with --full-refresh",
        ),
        StatusCode::TOO_MANY_REQUESTS => (
            ErrorKind::RateLimited,
            format!("the SCIM server throttled {endpoint}{detail}"),
            "Lower `requests_per_minute` so the connector paces itself below the server's limit",
        ),
        s if s == StatusCode::REQUEST_TIMEOUT || s.is_server_error() => (
            ErrorKind::Transient,
            format!("the SCIM server failed to answer {endpoint} (HTTP {}){detail}", s.as_u16()),
            "The server had a temporary problem; run again later, and tell its operators if it persists",
        ),
        s if s.is_redirection() => (
            ErrorKind::Config,
            format!("{endpoint} redirected (HTTP {})", s.as_u16()),
            "Set `base_url` to the URL the server redirects to",
        ),
        s => (
            ErrorKind::Source,
            format!("{endpoint} answered HTTP {}{detail}", s.as_u16()),
            "The server refused the request; its detail above says why",
        ),
    };
    Error::new(kind, message).with_hint(hint).with_context("endpoint", endpoint.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_status() {
        let body = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401","detail":"Bad token"}"#;
        let err = parse_error("GET /Users", StatusCode::UNAUTHORIZED, body);
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert_eq!(err.message(), "the SCIM server rejected the token: Bad token");
        assert_eq!(parse_error("GET /Users", StatusCode::FORBIDDEN, b"").kind(), ErrorKind::Permission);
        assert_eq!(parse_error("GET /Users", StatusCode::NOT_FOUND, b"<html>").kind(), ErrorKind::NotFound);
        let filter = br#"{"status":"400","scimType":"invalidFilter"}"#;
        assert_eq!(parse_error("GET /Users", StatusCode::BAD_REQUEST, filter).kind(), ErrorKind::Source);
        assert_eq!(parse_error("GET /Users", StatusCode::MOVED_PERMANENTLY, b"").kind(), ErrorKind::Config);
    }

    #[test]
    fn long_details_are_cut() {
        let body = serde_json::json!({"detail": "x".repeat(5000)}).to_string();
        let err = parse_error("GET /Groups", StatusCode::CONFLICT, body.as_bytes());
        assert!(err.message().len() < 300, "{}", err.message().len());
        assert_eq!(err.context_value("endpoint"), Some("GET /Groups"));
    }
}
