//! Where a read's messages go: one bounded channel shared by every stream, filtered to the
//! selected streams and counting their records.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::http::HttpEvent;
use crate::{Error, LogLevel, Message, Result, StreamEvent};

/// The sending side of a read: what the engine and a stream's plan emit.
///
/// Messages of streams the caller did not select are dropped here, so a source that feeds
/// several streams (users with their roles and groups) never needs to ask which of them
/// are wanted.
#[derive(Clone)]
pub struct Emitter {
    tx: mpsc::Sender<Result<Message>>,
    selected: Arc<HashSet<String>>,
    counts: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl Emitter {
    pub(crate) fn new(tx: mpsc::Sender<Result<Message>>, selected: HashSet<String>) -> Emitter {
        Emitter { tx, selected: Arc::new(selected), counts: Arc::default() }
    }

    /// Whether `stream` was selected.
    pub fn wants(&self, stream: &str) -> bool {
        self.selected.contains(stream)
    }

    async fn send(&self, message: Message) -> Result<()> {
        self.tx.send(Ok(message)).await.map_err(|_| Error::internal("the reader stopped listening"))
    }

    /// Emits a record of `stream` if it was selected.
    pub async fn record(&self, stream: &'static str, data: Value) -> Result<()> {
        if !self.wants(stream) {
            return Ok(());
        }
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()).entry(stream).or_default() += 1;
        self.send(Message::record(stream, data)).await
    }

    /// Emits a status event of `stream` if it was selected.
    pub async fn status(&self, stream: &str, event: StreamEvent) -> Result<()> {
        if !self.wants(stream) {
            return Ok(());
        }
        self.send(Message::status(stream, event)).await
    }

    /// Reports retries and throttling while fetching for `stream`; waits in the rate
    /// limiter are summed into one `Throttled` event.
    pub async fn http_events(&self, stream: &str, events: &[HttpEvent]) -> Result<()> {
        let mut throttled = Duration::ZERO;
        for event in events {
            match event {
                HttpEvent::Throttled(wait) => throttled += *wait,
                retrying => self.status(stream, retrying.to_stream_event()).await?,
            }
        }
        if !throttled.is_zero() {
            self.status(stream, StreamEvent::Throttled { wait: throttled }).await?;
        }
        Ok(())
    }

    /// Emits a log line for the operator.
    pub async fn log(&self, level: LogLevel, message: impl Into<String>) -> Result<()> {
        self.send(Message::log(level, message)).await
    }

    /// Emits a checkpoint of `stream`.
    pub async fn state(&self, stream: &str, value: Value) -> Result<()> {
        if !self.wants(stream) {
            return Ok(());
        }
        self.send(Message::state(stream, value)).await
    }

    /// Records emitted so far for `stream`.
    pub fn count(&self, stream: &str) -> u64 {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).get(stream).copied().unwrap_or(0)
    }
}
