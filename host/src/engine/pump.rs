//! The connector's messages into the destination.
//!
//! The connector's message stream is pumped by its own task into a bounded channel, so
//! the source's network I/O overlaps the destination's writes while memory stays flat.
//! The pump forwards whatever messages are ready as one chunk, and consecutive records
//! of a stream reach the destination as one batch: per-message costs (a channel
//! operation, a statement lookup) are paid per chunk, not per record.

use std::collections::BTreeMap;

use connector_api::{Error, ErrorKind, LogLevel, Message, Record, Result, StreamEvent, SyncMode};
use futures::StreamExt;

use super::signal::interrupted;
use super::{Run, clone_error};
use crate::progress::Progress;
use crate::sink::{self, Destination, StreamPlan};

/// Most messages the pump forwards in one chunk.
const CHUNK: usize = 512;

/// Chunks buffered between the connector and the destination: with [`CHUNK`], at most
/// 4,096 messages are in flight.
const CHANNEL: usize = 8;

/// Moves the connector's messages into `dest` until the read ends: records in batches,
/// checkpoints after the records they cover, per-stream endings into `run`. A stream
/// that fails (at the source, or with a record that does not fit its table) is
/// recorded and its later records and checkpoints are dropped; the others go on. Every
/// warning the connector logs is kept for the summary and `_runs`.
pub(super) async fn pump(
    messages: connector_api::MessageStream,
    dest: &mut dyn Destination,
    progress: &mut Progress,
    run: &mut Run,
    stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = &'static str>>,
) -> Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(CHANNEL);
    let pump = tokio::spawn(async move {
        let mut chunks = messages.ready_chunks(CHUNK);
        while let Some(chunk) = chunks.next().await {
            let end = chunk.iter().any(Result::is_err);
            if tx.send(chunk).await.is_err() || end {
                break;
            }
        }
    });
    let _abort_pump = AbortOnDrop(pump);
    let plans: BTreeMap<String, StreamPlan> =
        run.plans.iter().map(|p| (p.stream.clone(), p.clone())).collect();
    let mut batch = Batch::default();
    'messages: loop {
        if let Some(signal) = futures::FutureExt::now_or_never(stop.as_mut()) {
            return Err(interrupted(signal));
        }
        let chunk = match rx.try_recv() {
            Ok(chunk) => chunk,
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
            // The source is slower than the destination: let other writers in, and go on
            // letting them in for as long as it stays silent. A destination may decline
            // at first (a transaction younger than its idle age), so it is asked again
            // every `sink::IDLE_COMMIT` rather than only once per silence.
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => loop {
                dest.idle().await?;
                tokio::select! {
                    chunk = rx.recv() => match chunk {
                        Some(chunk) => break chunk,
                        None => break 'messages,
                    },
                    signal = stop.as_mut() => return Err(interrupted(signal)),
                    () = tokio::time::sleep(sink::IDLE_COMMIT) => {}
                }
            },
        };
        for message in chunk {
            let message = match message {
                Ok(Message::Record(r)) if run.failed(&r.stream) => continue,
                Ok(Message::Record(r)) if batch.takes(&r.stream) => {
                    batch.push(r);
                    continue;
                }
                Ok(message) => message,
                Err(e) => {
                    // The read ended: every stream that did not complete failed with it.
                    batch.write(dest, progress, run, &plans).await?;
                    for p in &plans {
                        run.fail(p.0, clone_error(&e));
                    }
                    return Ok(());
                }
            };
            batch.write(dest, progress, run, &plans).await?;
            match message {
                Message::Record(r) => batch.push(r),
                Message::State(c) if run.failed(&c.stream) => {}
                Message::State(c) => dest.checkpoint(&c.stream, c.value).await?,
                Message::Status(s) => {
                    match &s.event {
                        StreamEvent::Completed { .. } if !run.ended.contains_key(&s.stream) => {
                            run.ended.insert(s.stream.clone(), None);
                        }
                        StreamEvent::Failed { .. } => {
                            if let Some(err) = s.event.error() {
                                run.fail(&s.stream, err);
                            }
                        }
                        _ => {}
                    }
                    progress.event(&s.stream, &s.event)
                }
                Message::Log(l) => match l.level {
                    LogLevel::Debug => tracing::debug!(connector = %run.info.connector, "{}", l.message),
                    LogLevel::Info => tracing::info!(connector = %run.info.connector, "{}", l.message),
                    LogLevel::Warn => {
                        tracing::warn!(connector = %run.info.connector, "{}", l.message);
                        run.warnings.add(&l.message);
                    }
                    LogLevel::Error => tracing::error!(connector = %run.info.connector, "{}", l.message),
                },
            }
        }
        batch.write(dest, progress, run, &plans).await?;
    }
    for p in &run.plans.clone() {
        run.fail(
            &p.stream,
            Error::new(
                ErrorKind::Source,
                format!("the connector's read ended before stream {} completed", p.stream),
            ),
        );
    }
    Ok(())
}

/// Consecutive records of one stream, handed to the destination in one call.
#[derive(Default)]
struct Batch {
    stream: String,
    records: Vec<serde_json::Value>,
}

impl Batch {
    /// Whether a record of `stream` joins this batch (it is empty or of that stream).
    fn takes(&self, stream: &str) -> bool {
        self.records.is_empty() || self.stream == stream
    }

    /// Adds `record`; an empty batch becomes a batch of its stream.
    fn push(&mut self, record: Record) {
        if self.records.is_empty() && self.stream != record.stream {
            self.stream = record.stream;
        }
        self.records.push(record.data);
    }

    /// Counts the batch's records and writes them, leaving the batch empty. A record
    /// that cannot be stored (no primary key, a value of the wrong type) fails its
    /// stream, not the run.
    async fn write(
        &mut self,
        dest: &mut dyn Destination,
        progress: &mut Progress,
        run: &mut Run,
        plans: &BTreeMap<String, StreamPlan>,
    ) -> Result<()> {
        if self.records.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.records);
        let n = records.len() as u64;
        let before = run.counts.get(&self.stream).copied().unwrap_or(0);
        progress.records(&self.stream, n);
        if let Some(count) = run.counts.get_mut(&self.stream) {
            *count += n;
        }
        let Some(plan) = plans.get(&self.stream) else {
            return Err(sink::unselected_stream("record", &self.stream));
        };
        let mut checked = plan.check_records(&records, before);
        if checked.is_ok() && plan.sync_mode == SyncMode::FullRefresh {
            checked = run.keys.entry(self.stream.clone()).or_default().add(plan, &records, before);
        }
        if let Err(e) = checked {
            run.fail(&self.stream, e);
            return Ok(());
        }
        match dest.write(&self.stream, records).await {
            // A value the destination cannot store fails its stream, not the run.
            Err(e)
                if e.kind() == ErrorKind::Source
                    && e.context_value("stream") == Some(self.stream.as_str()) =>
            {
                run.fail(&self.stream, e);
                Ok(())
            }
            written => written,
        }
    }
}

/// Stops the pump task when the run ends early, so the connector stops reading.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
