//! Reading a successful response's body as JSON, and saying plainly what came back when it
//! is not.
//!
//! A body that starts as JSON and breaks off was cut short or mangled on the way, and
//! another attempt may get it whole. A body that is complete but not JSON at all (an
//! HTML login page from a proxy, a 204, an empty 200, Latin-1 text) will be the same next
//! time: retrying it only wastes the retry budget and ends in a misleading timeout. So
//! [`parse`] fails such a body at once with what came back (status, content type, size
//! and the first bytes, made printable) and what to check.

use reqwest::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use super::Fetched;
use crate::{Error, ErrorKind, HttpFailure, Result, secret};

/// How deep JSON may nest: `serde_json`'s recursion limit, which guards its parser's
/// stack. Deeper input is refused with an error naming this limit.
pub const NESTING_LIMIT: usize = 128;

/// How much of a body an error quotes.
const SAMPLE_CHARS: usize = 120;

/// How much of a body is scrubbed before the sample is cut from it.
const SCRUBBED_HEAD: usize = 64 * 1024;

/// What to check when something other than the API answered.
pub const NOT_JSON_HINT: &str = "Something other than the API answered: check that the configured URL is the API's address (not a web page or a sign-in portal), and whether a proxy or captive portal in between answers with a login page";

/// What to check when JSON comes in another encoding than UTF-8.
pub const NOT_UTF8_HINT: &str = "JSON is UTF-8 text (RFC 8259), and another attempt gets the same bytes: something re-encodes the answer (a proxy or gateway in between converting it to Latin-1 or another charset). Check what sits between here and the source; if the source itself sends it, report the response to its operators";

/// What to do about JSON nested past [`NESTING_LIMIT`].
pub const TOO_DEEP_HINT: &str = "No real answer nests that deep: check that the configured URL is the API's address; if it is, report the response to the source's operators";

/// Parses the body of `fetched` as `T`: the value when it is JSON of that shape, a
/// retryable [`ErrorKind::Transient`] error ([`HttpFailure::Body`]) when it starts as JSON
/// but breaks off, an [`ErrorKind::Source`] error that is not retried otherwise.
/// `endpoint` names the request in errors.
pub fn parse<T: DeserializeOwned>(fetched: &Fetched, endpoint: &str) -> Result<T> {
    let error = match serde_json::from_slice(&fetched.body) {
        Ok(value) => return Ok(value),
        Err(error) => error,
    };
    let content_type = fetched.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let fail = |message: String, hint: Option<&str>| {
        let mut err = Error::new(ErrorKind::Source, message)
            .with_context("endpoint", endpoint.to_string())
            .with_context("status", fetched.status.as_u16().to_string());
        if let Some(hint) = hint {
            err = err.with_hint(hint);
        }
        if let Some(content_type) = content_type {
            err = err.with_context("content_type", content_type.to_string());
        }
        Err(err.with_retryable(false))
    };
    if is_nesting_limit(&error) {
        return fail(too_deep(endpoint), Some(TOO_DEEP_HINT));
    }
    if let Some(at) = invalid_utf8_inside_json(&error, &fetched.body) {
        return fail(not_utf8(fetched, endpoint, content_type, at), Some(NOT_UTF8_HINT));
    }
    if error.is_data() {
        // The connector knows its API best: it adds the hint for a broken contract.
        return fail(format!("{endpoint} answered JSON of an unexpected shape: {error}"), None);
    }
    let declared_json = content_type.is_none_or(|t| t.to_ascii_lowercase().contains("json"));
    let starts_as_json =
        fetched.body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| matches!(b, b'{' | b'['));
    if declared_json && starts_as_json {
        let what = if error.is_eof() { "response body cut off" } else { "malformed JSON" };
        return Err(Error::new(ErrorKind::Transient, what).with_http_failure(HttpFailure::Body));
    }
    fail(not_json(fetched, endpoint, content_type), Some(NOT_JSON_HINT))
}

/// Where the first byte that is not UTF-8 sits in `body`, when that is what `error`
/// refuses: `serde_json` reached the end of a string holding it (it reports such bytes,
/// and escapes of no character, as an invalid code point; it exposes no code for it, only
/// its message). Such a body came whole, since the string around the bytes was closed,
/// and another attempt gets the same bytes. A body that breaks off inside a character,
/// or is mangled before a string closes, fails on something else first and is retried.
fn invalid_utf8_inside_json(error: &serde_json::Error, body: &[u8]) -> Option<usize> {
    if !error.to_string().starts_with("invalid unicode code point") {
        return None;
    }
    std::str::from_utf8(body).err().map(|e| e.valid_up_to())
}

/// Whether `error` is `serde_json` refusing input nested past [`NESTING_LIMIT`].
/// `serde_json` exposes no code for it, only its message.
pub fn is_nesting_limit(error: &serde_json::Error) -> bool {
    error.to_string().starts_with("recursion limit exceeded")
}

/// The message for JSON from `endpoint` nested past [`NESTING_LIMIT`].
fn too_deep(endpoint: &str) -> String {
    format!(
        "{endpoint} answered JSON nested more than {NESTING_LIMIT} levels deep, past serde_json's recursion limit"
    )
}

/// `/p answered HTTP 200 with application/json, 77 bytes of JSON that is not UTF-8 text
/// (the first invalid byte at offset 32): "{'data':[{'name':'Jos\u{FFFD}…"`.
fn not_utf8(fetched: &Fetched, endpoint: &str, content_type: Option<&str>, at: usize) -> String {
    format!(
        "{endpoint} answered HTTP {} with {}, {} bytes of JSON that is not UTF-8 text (the first invalid byte at offset {at}): \"{}\"",
        fetched.status.as_u16(),
        content_type.unwrap_or("no content type"),
        fetched.body.len(),
        sample(&fetched.body)
    )
}

/// `/p answered HTTP 200 with text/html, 1234 bytes, not JSON: "<!DOCTYPE html>…"`.
fn not_json(fetched: &Fetched, endpoint: &str, content_type: Option<&str>) -> String {
    let status = fetched.status.as_u16();
    if fetched.body.iter().all(u8::is_ascii_whitespace) {
        let what = if fetched.body.is_empty() { "an empty body" } else { "a blank body" };
        return format!("{endpoint} answered HTTP {status} with {what} where JSON was expected");
    }
    let content_type = content_type.unwrap_or("no content type");
    let encoding = if std::str::from_utf8(&fetched.body).is_err() { ", not UTF-8 text" } else { "" };
    format!(
        "{endpoint} answered HTTP {status} with {content_type}, {} bytes{encoding}, not JSON: \"{}\"",
        fetched.body.len(),
        sample(&fetched.body)
    )
}

/// The first [`SAMPLE_CHARS`] characters of `body`, scrubbed and printable: invalid UTF-8 becomes
/// `\u{FFFD}`, control characters and runs of whitespace become one space, quotes are
/// kept from closing the message's own quotes.
pub fn sample(body: &[u8]) -> String {
    // Scrubbed before it is cut, so a cut cannot leave a piece of a secret unmatched: the
    // head scrubbed reaches far beyond the sample, past the end of any secret (a key that
    // starts in the sample is a few KiB at most).
    let head = &body[..body.len().min(SCRUBBED_HEAD)];
    let text = String::from_utf8_lossy(head);
    let text = secret::scrub(&text);
    let mut out = String::new();
    let mut chars = 0;
    let mut last_space = false;
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else if c == '"' {
            '\''
        } else {
            c
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        if chars == SAMPLE_CHARS {
            out.push('…');
            return out.trim().to_string();
        }
        out.push(c);
        chars += 1;
    }
    if head.len() < body.len() {
        out.push('…');
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::{HeaderMap, HeaderValue};
    use serde_json::Value;

    fn fetched(status: u16, content_type: Option<&str>, body: &[u8]) -> Fetched {
        let mut headers = HeaderMap::new();
        if let Some(t) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_str(t).unwrap());
        }
        Fetched {
            url: url::Url::parse("http://127.0.0.1/api/v1/users").unwrap(),
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: body.to_vec(),
        }
    }

    fn failure(f: &Fetched) -> Error {
        let err = parse::<Value>(f, "/api/v1/users").unwrap_err();
        assert!(!err.is_retryable(), "retried: {err}");
        err
    }

    #[test]
    fn json_is_accepted_whatever_its_content_type() {
        assert!(parse::<Value>(&fetched(200, Some("text/plain"), b"{}"), "/p").is_ok());
    }

    #[test]
    fn json_that_breaks_off_is_retried() {
        let cut = fetched(200, Some("application/json"), br#"{"data":[{"id":"#);
        let err = parse::<Value>(&cut, "/p").unwrap_err();
        assert!(err.is_retryable() && err.http_failure() == Some(HttpFailure::Body));
        assert_eq!(err.message(), "response body cut off");
        let mangled = fetched(200, None, b"{\"data\":[\x00<!-- upstream timeout -->");
        let err = parse::<Value>(&mangled, "/p").unwrap_err();
        assert!(err.is_retryable());
        assert_eq!(err.message(), "malformed JSON");
    }

    #[test]
    fn an_html_page_says_what_came_back_and_what_to_check() {
        let page = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>\n\t<body>Please \"log in\"</body></html>";
        let err = failure(&fetched(200, Some("text/html; charset=utf-8"), page));
        assert_eq!(err.kind(), ErrorKind::Source);
        assert!(!err.is_retryable());
        assert_eq!(
            err.message(),
            format!(
                "/api/v1/users answered HTTP 200 with text/html; charset=utf-8, {} bytes, not JSON: \"<!DOCTYPE html> <html><head><title>Sign in</title></head> <body>Please 'log in'</body></html>\"",
                page.len()
            )
        );
        assert_eq!(err.hint(), Some(NOT_JSON_HINT));
        assert_eq!(err.context_value("content_type"), Some("text/html; charset=utf-8"));
        assert_eq!(err.context_value("status"), Some("200"));
    }

    #[test]
    fn empty_and_latin1_bodies_are_named() {
        let err = failure(&fetched(204, None, b""));
        assert_eq!(
            err.message(),
            "/api/v1/users answered HTTP 204 with an empty body where JSON was expected"
        );
        let err = failure(&fetched(200, Some("application/json"), b" \r\n"));
        assert!(err.message().contains("with a blank body"), "{err}");
        let err = failure(&fetched(200, Some("text/plain; charset=iso-8859-1"), b"caf\xe9 ferm\xe9"));
        assert!(err.message().contains("not UTF-8 text, not JSON: \"caf\u{FFFD} ferm\u{FFFD}\""), "{err}");
    }

    #[test]
    fn complete_json_that_is_not_utf8_fails_at_once_naming_where() {
        let body = b"{\"data\":[{\"id\":\"u-1\",\"name\":\"Jos\xe9 Garc\xeda\"}],\"links\":{}}";
        let err = failure(&fetched(200, Some("application/json"), body));
        assert_eq!(err.kind(), ErrorKind::Source);
        assert_eq!(
            err.message(),
            format!(
                "/api/v1/users answered HTTP 200 with application/json, {} bytes of JSON that is not UTF-8 text (the first invalid byte at offset 32): \"{{'data':[{{'id':'u-1','name':'Jos\u{FFFD} Garc\u{FFFD}a'}}],'links':{{}}}}\"",
                body.len()
            )
        );
        assert_eq!(err.hint(), Some(NOT_UTF8_HINT));
        // A body cut inside a character, or mangled before its string closes, is retried.
        for broken in
            [&b"{\"data\":[{\"name\":\"Jos\xc3"[..], b"{\"data\":[{\"name\":\"Jos\xc3\x00<!-- upstream"]
        {
            let err = parse::<Value>(&fetched(200, Some("application/json"), broken), "/p").unwrap_err();
            assert!(err.is_retryable(), "{err}");
        }
    }

    #[test]
    fn deep_nesting_names_the_limit() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let err = failure(&fetched(200, Some("application/json"), deep.as_bytes()));
        assert!(
            err.message().contains("more than 128 levels deep, past serde_json's recursion limit"),
            "{err}"
        );
        assert_eq!(err.hint(), Some(TOO_DEEP_HINT));
    }

    #[test]
    fn samples_are_short_and_printable() {
        let long = "x".repeat(1000);
        let s = sample(long.as_bytes());
        assert_eq!(s.chars().count(), SAMPLE_CHARS + 1);
        assert!(s.ends_with('…'));
        assert_eq!(sample(b"a\x1b[31mb\x07c"), "a [31mb c");
    }

    #[test]
    fn a_long_secret_running_past_the_sample_is_masked_whole() {
        let key = format!("eyJ{}", "k".repeat(600));
        secret::register(&key);
        let shown = sample(format!("<p>token {key} is expired</p>").as_bytes());
        assert_eq!(shown, "<p>token **** is expired</p>");
    }
}
