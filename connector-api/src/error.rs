//! The one error type every connector returns.
//!
//! An [`Error`] says what went wrong in words an operator understands
//! ([`Error::message`]), what to do about it ([`Error::hint`]), where it happened
//! ([`Error::context`]: stream, endpoint, field …) and whether trying again may help
//! ([`Error::is_retryable`]). It never carries a secret: build messages from names and
//! statuses, never from config values or request headers. Text a source sends back may
//! still echo one (a 401 quoting the `Authorization` header), so message, hint and
//! context are [scrubbed](crate::secret::scrub) of every registered secret when they are
//! set. Scrubbing at construction means every way out sees the same clean text:
//! `Display`, `Debug`, the accessors a host prints as JSON or stores in its run log, and
//! [`StreamEvent::failed`](crate::StreamEvent::failed), which copies them. `Display` scrubs
//! once more, for secrets registered after the error was built.

use std::borrow::Cow;
use std::fmt;

use crate::secret::scrub_owned;

/// What class of failure an [`Error`] is. Hosts map kinds to exit codes.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The configuration is invalid: a missing, mistyped or unknown field, a bad URL.
    Config,
    /// The source rejected the credentials (HTTP 401, an expired or revoked key).
    Auth,
    /// The credentials are valid but lack a right the request needs (HTTP 403).
    Permission,
    /// The requested resource does not exist (HTTP 404, a wrong tenant URL).
    NotFound,
    /// The source throttled us and retrying within our budget did not get through.
    RateLimited,
    /// A temporary failure: timeouts, connection resets, 5xx, truncated bodies.
    Transient,
    /// The source answered something we cannot use: malformed JSON, a paging loop,
    /// a link to a foreign host.
    Source,
    /// The destination cannot be opened, reached, authenticated to or written (a wrong
    /// database password, a read-only folder, a full disk).
    Destination,
    /// Another run holds what this run needs (the same tenant is being synced into the
    /// same destination), or a table with our name is not ours to replace.
    Conflict,
    /// The run was stopped by a signal (Ctrl-C, SIGTERM) and rolled back.
    Interrupted,
    /// A bug or an environment failure inside the connector or host.
    Internal,
}

impl ErrorKind {
    /// Whether errors of this kind are worth retrying by default.
    pub fn is_retryable_by_default(self) -> bool {
        matches!(self, ErrorKind::RateLimited | ErrorKind::Transient)
    }

    /// A short lowercase label (`auth`, `rate_limited` …) for logs and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Auth => "auth",
            ErrorKind::Permission => "permission",
            ErrorKind::NotFound => "not_found",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Transient => "transient",
            ErrorKind::Source => "source",
            ErrorKind::Destination => "destination",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What failed at the HTTP level: set by the HTTP layer on transport failures and by a
/// connector's classifier of a response, so the retry loop and the connector's advice to
/// the operator decide on a type, never on a message's words.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFailure {
    /// No connection could be made: the name does not resolve, nothing listens, TLS
    /// failed.
    Connect,
    /// The request took longer than its timeout.
    Timeout,
    /// The connection broke while the request was sent or answered.
    Connection,
    /// The body arrived cut off or mangled (JSON that breaks off).
    Body,
    /// The source answered with this status.
    Status(u16),
}

impl fmt::Display for HttpFailure {
    /// The short reason retry events and final errors show (`HTTP 503`, `timed out`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpFailure::Connect => f.write_str("could not connect"),
            HttpFailure::Timeout => f.write_str("timed out"),
            HttpFailure::Connection => f.write_str("connection failed"),
            HttpFailure::Body => f.write_str("response body cut off"),
            HttpFailure::Status(status) => write!(f, "HTTP {status}"),
        }
    }
}

/// A connector failure: kind, message, optional remediation hint, context, retryability.
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
    context: Vec<(Cow<'static, str>, String)>,
    retryable: bool,
    http: Option<HttpFailure>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Creates an error of `kind`; retryability defaults from the kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: scrub_owned(message.into()),
            hint: None,
            context: Vec::new(),
            retryable: kind.is_retryable_by_default(),
            http: None,
            source: None,
        }
    }

    /// A [`ErrorKind::Config`] error naming the offending field.
    pub fn config(field: &str, message: impl fmt::Display) -> Self {
        Error::new(ErrorKind::Config, format!("{field}: {message}")).with_context("field", field)
    }

    /// An [`ErrorKind::Internal`] error.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    /// Adds what the operator should do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(scrub_owned(hint.into()));
        self
    }

    /// Adds a key/value pair of context (`stream`, `endpoint`, `status`, `field` …).
    /// A key given twice keeps its first value, so outer layers cannot hide where an
    /// error really happened.
    pub fn with_context(mut self, key: impl Into<Cow<'static, str>>, value: impl Into<String>) -> Self {
        let key = key.into();
        if !self.context.iter().any(|(k, _)| *k == key) {
            self.context.push((key, scrub_owned(value.into())));
        }
        self
    }

    /// Overrides whether retrying may help.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Records what failed at the HTTP level; the first one recorded stays.
    pub fn with_http_failure(mut self, failure: HttpFailure) -> Self {
        self.http.get_or_insert(failure);
        self
    }

    /// Keeps the underlying error for `source()` chains. Its text is not scrubbed (only
    /// `Debug` shows it, scrubbed), so it must not contain secrets (reqwest errors do not
    /// include headers).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The class of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What went wrong, for a person.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What to do about it, if known.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// Where it happened, as key/value pairs in the order they were added.
    pub fn context(&self) -> impl Iterator<Item = (&str, &str)> {
        self.context.iter().map(|(k, v)| (k.as_ref(), v.as_str()))
    }

    /// The value of one context key.
    pub fn context_value(&self, key: &str) -> Option<&str> {
        self.context.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Whether trying the same operation again may succeed. The HTTP layer retries a
    /// request exactly when its error says so.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// `message (key: value, …)` without the hint, scrubbed: what a report that lists each
    /// distinct hint once (`check`) shows beside the hint.
    pub fn without_hint(&self) -> String {
        let mut text = self.message.clone();
        let shown: Vec<_> = self
            .context
            .iter()
            .filter(|(k, v)| !(*k == "field" && self.message.starts_with(v.as_str())))
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        if !shown.is_empty() {
            text.push_str(&format!(" ({})", shown.join(", ")));
        }
        crate::secret::scrub(&text).into_owned()
    }

    /// What failed at the HTTP level, when the error came from a request.
    pub fn http_failure(&self) -> Option<HttpFailure> {
        self.http
    }
}

impl fmt::Display for Error {
    /// `message (key: value, …)`, then `Hint: …` on its own line when there is one;
    /// scrubbed again, for a secret registered after the error was built (a licence token
    /// read later in the run).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.without_hint();
        if let Some(hint) = &self.hint {
            text.push_str(&format!("\nHint: {hint}"));
        }
        f.write_str(&crate::secret::scrub(&text))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("hint", &self.hint)
            .field("context", &self.context)
            .field("retryable", &self.retryable)
            .field("http", &self.http)
            .field("source", &self.source.as_ref().map(|s| scrub_owned(s.to_string())))
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shows_context_and_hint() {
        let err = Error::new(ErrorKind::Auth, "The API key was rejected")
            .with_context("endpoint", "/api/v1/users/me")
            .with_context("status", "401")
            .with_hint("Generate a new key");
        assert_eq!(
            err.to_string(),
            "The API key was rejected (endpoint: /api/v1/users/me, status: 401)\nHint: Generate a new key"
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn first_context_value_wins() {
        let err = Error::new(ErrorKind::Transient, "timeout")
            .with_context("stream", "users")
            .with_context("stream", "outer");
        assert_eq!(err.context_value("stream"), Some("users"));
        assert!(err.is_retryable());
    }

    #[test]
    fn registered_secrets_never_reach_message_hint_or_context() {
        crate::secret::register("error-canary-8e41");
        let err = Error::new(ErrorKind::Auth, "token Bearer error-canary-8e41 is expired")
            .with_hint("do not paste error-canary-8e41")
            .with_context("detail", "error-canary-8e41")
            .with_source(std::io::Error::other("echo error-canary-8e41"));
        assert_eq!(err.message(), "token Bearer **** is expired");
        assert_eq!(err.hint(), Some("do not paste ****"));
        assert_eq!(err.context_value("detail"), Some("****"));
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains("error-canary-8e41"), "{shown}");
        }
    }

    #[test]
    fn display_masks_a_secret_registered_after_the_error_was_built() {
        let err = Error::new(ErrorKind::Source, "overview said late-canary-9d2f");
        crate::secret::register("late-canary-9d2f");
        assert_eq!(err.to_string(), "overview said ****");
    }

    #[test]
    fn config_error_names_field_once() {
        let err = Error::config("tenant_url", "must start with https://");
        assert_eq!(err.to_string(), "tenant_url: must start with https://");
        assert_eq!(err.context_value("field"), Some("tenant_url"));
    }
}
