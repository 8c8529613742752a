//! One mapping from Qlik's HTTP answers to the connector's error kinds.
//!
//! Qlik's services disagree on their error envelopes: `errors[].code` is a string in
//! some and a number in others, `status` likewise, and older services still send the
//! deprecated top-level `error` / `message`. [`Envelope::parse`] reads all of them
//! leniently; [`from_response`] turns status + envelope into an [`Error`] with the
//! right kind and the operator's next step.

use connector_api::{Error, ErrorKind, HttpFailure};
use serde_json::Value;

use crate::remediation;

/// What a Qlik error body says, whichever shape it came in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// Qlik's error code (`HTTP-401`, `LICENSES-0003`, `10013` …).
    pub code: Option<String>,
    /// Short description.
    pub title: Option<String>,
    /// Longer description.
    pub detail: Option<String>,
}

impl Envelope {
    /// Parses any of Qlik's error shapes; `None` for a body that says nothing usable.
    pub fn parse(body: &[u8]) -> Option<Envelope> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let first = value.get("errors").and_then(Value::as_array).and_then(|e| e.first());
        let envelope = match first {
            Some(e) => Envelope {
                code: e.get("code").and_then(scalar),
                title: e.get("title").and_then(scalar),
                detail: e.get("detail").and_then(scalar),
            },
            None => Envelope {
                code: value.get("code").and_then(scalar),
                title: value.get("error").and_then(scalar),
                detail: value.get("message").and_then(scalar),
            },
        };
        (envelope != Envelope::default()).then_some(envelope)
    }

    /// `title (code): detail`, with whatever parts are present, shortened.
    pub fn summary(&self) -> String {
        let mut out = self.title.clone().unwrap_or_default();
        if let Some(code) = &self.code {
            if out.is_empty() {
                out = code.clone();
            } else {
                out = format!("{out} ({code})");
            }
        }
        if let Some(detail) = self.detail.as_ref().filter(|d| Some(*d) != self.title.as_ref()) {
            out = if out.is_empty() { detail.clone() } else { format!("{out}: {detail}") };
        }
        // Scrubbed before it is shortened: a cut would leave a prefix of an echoed secret
        // that no longer matches it.
        shorten(&connector_api::secret::scrub(&out), 300)
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Whether `path` is a licence endpoint, where 403 means "not a Tenant Admin".
pub fn is_licence_endpoint(path: &str) -> bool {
    path.contains("/v1/licenses")
}

/// The error for a final (non-retried) HTTP answer `status` with `body` from `path`.
pub fn from_response(status: u16, body: &[u8], path: &str) -> Error {
    let said = Envelope::parse(body).map(|e| format!(": {}", e.summary())).unwrap_or_default();
    let (kind, message, hint) = match status {
        401 => (
            ErrorKind::Auth,
            format!("Qlik Cloud rejected the API key (HTTP 401{said})"),
            remediation::KEY_REJECTED,
        ),
        403 if is_licence_endpoint(path) => (
            ErrorKind::Permission,
            format!("The API key may not read licence data (HTTP 403{said})"),
            remediation::LICENCE_NEEDS_TENANT_ADMIN,
        ),
        403 => (
            ErrorKind::Permission,
            format!("The API key may not read {path} (HTTP 403{said})"),
            remediation::PERMISSION_DENIED,
        ),
        404 => (
            ErrorKind::NotFound,
            format!("{path} was not found (HTTP 404{said})"),
            remediation::WRONG_TENANT_URL,
        ),
        429 => (
            ErrorKind::RateLimited,
            format!("Qlik Cloud throttled the request (HTTP 429{said})"),
            remediation::RATE_LIMITED,
        ),
        408 | 500..=599 => (
            ErrorKind::Transient,
            format!("Qlik Cloud failed to answer (HTTP {status}{said})"),
            remediation::SOURCE_UNAVAILABLE,
        ),
        _ => (
            ErrorKind::Source,
            format!("Qlik Cloud answered HTTP {status}{said}"),
            remediation::SOURCE_PROTOCOL,
        ),
    };
    Error::new(kind, message)
        .with_context("endpoint", path.to_string())
        .with_context("status", status.to_string())
        .with_hint(hint)
}

/// Adds the operator's next step to an error from the HTTP layer (retries exhausted,
/// connection failures, paging loops) that has none yet.
pub fn with_remediation(err: Error) -> Error {
    if err.hint().is_some() {
        return err;
    }
    let hint = match err.kind() {
        ErrorKind::RateLimited => remediation::RATE_LIMITED,
        ErrorKind::Transient if err.http_failure() == Some(HttpFailure::Connect) => {
            remediation::TENANT_UNREACHABLE
        }
        ErrorKind::Transient => remediation::SOURCE_UNAVAILABLE,
        ErrorKind::Source => remediation::SOURCE_PROTOCOL,
        _ => return err,
    };
    err.with_hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_envelope_shape() {
        let e = Envelope::parse(br#"{"errors":[{"code":"HTTP-401","title":"Unauthorized","status":"401"}]}"#)
            .unwrap();
        assert_eq!(e.summary(), "Unauthorized (HTTP-401)");
        let e = Envelope::parse(
            br#"{"errors":[{"code":10013,"title":"Forbidden","detail":"Not a tenant admin","status":403}]}"#,
        )
        .unwrap();
        assert_eq!(e.summary(), "Forbidden (10013): Not a tenant admin");
        let e = Envelope::parse(br#"{"error":"Forbidden","message":"missing permission"}"#).unwrap();
        assert_eq!(e.summary(), "Forbidden: missing permission");
        assert_eq!(Envelope::parse(b"<html>oops</html>"), None);
        assert_eq!(Envelope::parse(br#"{"errors":[]}"#), None);
    }

    #[test]
    fn maps_statuses_to_kinds_and_hints() {
        let body = br#"{"errors":[{"code":"LICENSES-0003","title":"Forbidden"}]}"#;
        let e = from_response(403, body, "/api/v1/licenses/overview");
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert_eq!(e.hint(), Some(remediation::LICENCE_NEEDS_TENANT_ADMIN));
        assert!(e.message().contains("LICENSES-0003"), "{e}");
        assert_eq!(from_response(403, b"", "/api/v1/api-keys").hint(), Some(remediation::PERMISSION_DENIED));
        let e = from_response(401, b"", "/api/v1/users/me");
        assert_eq!((e.kind(), e.hint()), (ErrorKind::Auth, Some(remediation::KEY_REJECTED)));
        assert_eq!(e.context_value("endpoint"), Some("/api/v1/users/me"));
        assert_eq!(from_response(404, b"", "/api/v1/tenants/me").kind(), ErrorKind::NotFound);
        assert_eq!(from_response(418, b"", "/x").kind(), ErrorKind::Source);
    }

    #[test]
    fn every_auth_hint_covers_today_and_the_old_process() {
        for hint in [
            remediation::KEY_REJECTED,
            remediation::LICENCE_NEEDS_TENANT_ADMIN,
            remediation::PERMISSION_DENIED,
        ] {
            assert!(hint.contains("Manage API keys"), "{hint}");
            assert!(hint.contains("Profile settings > API keys > Generate new key"), "{hint}");
            assert!(hint.contains("Developer role"), "{hint}");
        }
        assert!(remediation::KEY_REJECTED.contains("26 January 2026"));
        assert!(remediation::KEY_REJECTED.contains("Enable API keys"));
    }
}
