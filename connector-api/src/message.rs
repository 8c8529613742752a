//! What [`Connector::read`](crate::Connector::read) emits.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ErrorKind;

/// One item of a read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// A row of a stream.
    Record(Record),
    /// A checkpoint covering every record of its stream emitted before it.
    State(Checkpoint),
    /// Something the operator may want to read.
    Log(LogMessage),
    /// Progress of one stream, for progress bars and run summaries.
    Status(StreamStatus),
}

impl Message {
    /// A record of `stream`.
    pub fn record(stream: impl Into<String>, data: Value) -> Self {
        Message::Record(Record { stream: stream.into(), data })
    }

    /// A checkpoint of `stream`.
    pub fn state(stream: impl Into<String>, value: Value) -> Self {
        Message::State(Checkpoint { stream: stream.into(), value })
    }

    /// A status event of `stream`.
    pub fn status(stream: impl Into<String>, event: StreamEvent) -> Self {
        Message::Status(StreamStatus { stream: stream.into(), event })
    }

    /// A log line.
    pub fn log(level: LogLevel, message: impl Into<String>) -> Self {
        Message::Log(LogMessage { level, message: message.into() })
    }
}

/// A row of a stream: a JSON object matching the stream's schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Stream name.
    pub stream: String,
    /// The row.
    pub data: Value,
}

/// A stream's checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Stream name.
    pub stream: String,
    /// Opaque to hosts; handed back in [`State`](crate::State) on the next read.
    pub value: Value,
}

/// Severity of a [`LogMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Detail for debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something the operator should look at.
    Warn,
    /// Something failed.
    Error,
}

/// A log line from the connector. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogMessage {
    /// Severity.
    pub level: LogLevel,
    /// The line.
    pub message: String,
}

/// Progress of one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamStatus {
    /// Stream name.
    pub stream: String,
    /// What happened.
    pub event: StreamEvent,
}

/// A step in the life of a stream during a read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The stream started reading.
    Started,
    /// A page arrived and its `records` were emitted.
    PageFetched {
        /// Records on this page.
        records: u64,
    },
    /// A request failed and will be retried after `wait`.
    Retrying {
        /// Why (`HTTP 503`, `connection reset` …).
        reason: String,
        /// How long we wait before the next attempt.
        #[serde(with = "duration_ms")]
        wait: Duration,
    },
    /// The client-side rate limiter held a request back for `wait`.
    Throttled {
        /// How long the request waited.
        #[serde(with = "duration_ms")]
        wait: Duration,
    },
    /// The stream finished; `records` were emitted in all.
    Completed {
        /// Total records emitted for the stream.
        records: u64,
    },
    /// The stream failed after retries. The read goes on with the other streams: a host
    /// commits every stream that completed and keeps this one's previous data.
    Failed {
        /// What went wrong (never holds a secret).
        message: String,
        /// The failure's class, which hosts map to exit codes.
        kind: ErrorKind,
        /// What the operator should do about it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
        /// Where it happened (`endpoint`, `status` …), as in [`crate::Error::context`].
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        context: Vec<(String, String)>,
    },
}

impl StreamEvent {
    /// The `Failed` event of `err`, carrying everything [`StreamEvent::error`] needs to
    /// give the error back.
    pub fn failed(err: &crate::Error) -> Self {
        StreamEvent::Failed {
            message: err.message().to_string(),
            kind: err.kind(),
            hint: err.hint().map(str::to_string),
            context: err.context().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    /// The error a `Failed` event reports; `None` for every other event.
    pub fn error(&self) -> Option<crate::Error> {
        let StreamEvent::Failed { message, kind, hint, context } = self else { return None };
        let mut err = crate::Error::new(*kind, message.clone());
        for (k, v) in context {
            err = err.with_context(k.clone(), v.clone());
        }
        Some(match hint {
            Some(h) => err.with_hint(h.clone()),
            None => err,
        })
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
