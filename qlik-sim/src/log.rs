//! The request log tests read to assert what a client sent.

use std::sync::Mutex;

/// One request as the simulator saw it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LoggedRequest {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Raw query string (without `?`).
    pub query: String,
    /// Status answered; 0 when the connection was dropped without a response.
    pub status: u16,
    /// Whether an `Authorization` header was present (its value is never logged).
    pub authorized: bool,
    /// The `Host` header.
    pub host: String,
    /// The `qlik-api-version` header as sent, if it was.
    pub api_version: Option<String>,
}

/// Every request since the last clear.
#[derive(Debug, Default)]
pub(crate) struct RequestLog(Mutex<Vec<LoggedRequest>>);

impl RequestLog {
    /// Appends one request.
    pub(crate) fn push(&self, r: LoggedRequest) {
        self.0.lock().expect("request log lock").push(r);
    }

    /// A copy of the log.
    pub(crate) fn snapshot(&self) -> Vec<LoggedRequest> {
        self.0.lock().expect("request log lock").clone()
    }

    /// Empties the log.
    pub(crate) fn clear(&self) {
        self.0.lock().expect("request log lock").clear();
    }
}
