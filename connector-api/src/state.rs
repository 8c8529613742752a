//! Per-stream checkpoints that let incremental streams resume.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The last committed checkpoint of each stream, as the connector emitted it in
/// [`Message::State`](crate::Message::State). Opaque to hosts: only the connector
/// reads its contents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct State {
    /// Checkpoint value per stream name.
    pub streams: BTreeMap<String, Value>,
}

impl State {
    /// The checkpoint of `stream`, if any.
    pub fn get(&self, stream: &str) -> Option<&Value> {
        self.streams.get(stream)
    }

    /// Records `value` as the checkpoint of `stream`.
    pub fn set(&mut self, stream: impl Into<String>, value: Value) {
        self.streams.insert(stream.into(), value);
    }
}
