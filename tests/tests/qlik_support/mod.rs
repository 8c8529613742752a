//! Shared helpers of the `qlik_*` integration tests: configs for the simulator, a full
//! read collected per stream, and key digests comparable with the simulator's ground
//! truth.
#![allow(dead_code)]

use std::collections::BTreeMap;

use connector_api::{Catalog, Checkpoint, Connector, Error, LogMessage, Message, State, StreamStatus};
use futures::StreamExt;
use qlik_connector::QlikConnector;
use serde_json::{Value, json};
use tests::digest::{KeyDigest, key_digest};
use tests::qlik_sim::Simulator;

/// A config for `sim` with `key`, merged with `extra` fields.
pub fn config(sim: &Simulator, key: &str, extra: Value) -> Value {
    let mut c = json!({"tenant_url": sim.base_url(), "api_key": key, "requests_per_minute": 1_000_000});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

/// Everything a read emitted, by kind.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Records per stream, in arrival order.
    pub records: BTreeMap<String, Vec<Value>>,
    /// Checkpoints, in order, with the number of records of their stream before each.
    pub states: Vec<(Checkpoint, usize)>,
    /// Status events.
    pub statuses: Vec<StreamStatus>,
    /// Log lines.
    pub logs: Vec<LogMessage>,
    /// The error that ended the read, if any.
    pub error: Option<Error>,
}

impl Outcome {
    /// Records of `stream` (empty when none).
    pub fn stream(&self, stream: &str) -> &[Value] {
        self.records.get(stream).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The last checkpoint emitted, as a `State` for the next read.
    pub fn final_state(&self) -> State {
        let mut state = State::default();
        for (cp, _) in &self.states {
            state.set(cp.stream.clone(), cp.value.clone());
        }
        state
    }

    /// Everything emitted, as one string, to search for secrets.
    pub fn dump(&self) -> String {
        let mut s = serde_json::to_string(&self.records).unwrap();
        for (cp, _) in &self.states {
            s.push_str(&cp.value.to_string());
        }
        s.push_str(&format!("{:?}{:?}", self.statuses, self.logs));
        if let Some(e) = &self.error {
            s.push_str(&format!("{e}\n{e:?}"));
        }
        s
    }
}

/// Reads `config` (streams selected by `streams`, all when `None`) from `state`.
pub async fn read(config: &Value, streams: Option<&[&str]>, state: &State, full_refresh: bool) -> Outcome {
    let connector = QlikConnector;
    let catalog = connector.static_catalog().unwrap();
    let selection: Option<Vec<String>> = streams.map(|s| s.iter().map(|x| x.to_string()).collect());
    let configured = catalog.configure(selection.as_deref(), full_refresh).unwrap();
    let mut outcome = Outcome::default();
    let mut messages = match connector.read(config, &configured, state).await {
        Ok(m) => m,
        Err(e) => {
            outcome.error = Some(e);
            return outcome;
        }
    };
    while let Some(item) = messages.next().await {
        match item {
            Ok(Message::Record(r)) => outcome.records.entry(r.stream).or_default().push(r.data),
            Ok(Message::State(cp)) => {
                let before = outcome.stream(&cp.stream).len();
                outcome.states.push((cp, before));
            }
            Ok(Message::Status(s)) => {
                // A stream's failure does not end the read; the first one is the outcome's
                // error, as the host would report it.
                if outcome.error.is_none() {
                    outcome.error = s.event.error();
                }
                outcome.statuses.push(s)
            }
            Ok(Message::Log(l)) => outcome.logs.push(l),
            Err(e) => {
                outcome.error = Some(e);
                break;
            }
        }
    }
    outcome
}

/// The catalog.
pub fn catalog() -> Catalog {
    QlikConnector.static_catalog().unwrap()
}

/// The key digest of `records` of `stream`, by its primary key in catalog order.
pub fn digest(stream: &str, records: &[Value]) -> KeyDigest {
    let catalog = catalog();
    let pk = &catalog.stream(stream).unwrap().primary_key;
    key_digest(records.iter().map(|r| {
        pk.iter()
            .map(|k| match &r[k.as_str()] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
    }))
}

/// Asserts every stream in `streams` landed exactly the simulator's ground truth.
pub fn assert_exact(sim: &Simulator, outcome: &Outcome, streams: &[&str], context: &str) {
    assert!(outcome.error.is_none(), "{context}: read failed: {}", outcome.error.as_ref().unwrap());
    for s in streams {
        let truth = sim.ground_truth().stream(s);
        let got = digest(s, outcome.stream(s));
        assert_eq!(&got, truth, "{context}: stream {s}");
    }
}
