//! `connector-host run`: read the selected streams and load them into a destination.
//!
//! The connector's message stream is pumped by its own task into a bounded channel, so
//! the source's network I/O overlaps the destination's writes while memory stays flat.
//! The pump forwards whatever messages are ready as one chunk, and consecutive records
//! of a stream reach the destination as one batch: per-message costs (a channel
//! operation, a statement lookup) are paid per chunk, not per record.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use connector_api::registry::Registry;
use connector_api::{
    ConfiguredCatalog, Error, ErrorKind, LogLevel, Message, Record, Result, StreamEvent, SyncMode,
};
use futures::StreamExt;
use serde::Serialize;

use super::{choose_dest, table, write_err};
use crate::cli::RunArgs;
use crate::config_file::ConfigFile;
use crate::exit::Exit;
use crate::progress::{Progress, ProgressMode};
use crate::sink::schema::SeenKeys;
use crate::sink::{self, Destination, LoadStats, RunInfo, RunOutcome, RunStatus, StreamPlan, now_rfc3339};

/// Most messages the pump forwards in one chunk.
const CHUNK: usize = 512;

/// Chunks buffered between the connector and the destination: with [`CHUNK`], at most
/// 4,096 messages are in flight.
const CHANNEL: usize = 8;

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Streams to read (all the config allows when `None`); can only narrow the config.
    pub streams: Option<Vec<String>>,
    /// Read incremental streams in full, ignoring checkpoints.
    pub full_refresh: bool,
    /// All or nothing: when any stream fails, commit none (checkpointed incremental
    /// progress aside).
    pub atomic: bool,
}

/// How one stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamResult {
    /// Read to the end and committed.
    Committed,
    /// Failed; its previous rows (and checkpointed progress) are kept.
    Failed,
    /// Read to the end, but not committed because the run failed as a whole.
    NotCommitted,
}

/// The outcome of one stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSummary {
    /// Stream name.
    pub stream: String,
    /// `full_refresh` or `incremental`.
    pub sync_mode: &'static str,
    /// How it ended.
    pub result: StreamResult,
    /// Records received.
    pub records: u64,
    /// Pages fetched.
    pub pages: u64,
    /// Retried requests.
    pub retries: u64,
    /// Time the rate limiter held requests back, in milliseconds.
    pub throttled_ms: u64,
    /// Seconds from the stream's start to its end.
    pub seconds: f64,
    /// What the load changed (absent when nothing was committed).
    pub load: Option<LoadStats>,
    /// Why the stream failed.
    pub error: Option<String>,
}

/// The outcome of a run, printed as a table or (`--json`) as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Run id.
    pub run_id: String,
    /// Connector id.
    pub connector: String,
    /// Connector instance: whose rows the run replaced.
    pub instance: String,
    /// Where the data went.
    pub destination: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Total records received.
    pub records: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Per stream.
    pub streams: Vec<StreamSummary>,
    /// Why the run (or its first failed stream) failed.
    pub error: Option<String>,
    /// How to look at the data.
    pub sample_query: Option<String>,
}

impl RunSummary {
    /// Writes the human-readable summary.
    pub fn print(&self, out: &mut (dyn Write + Send)) -> std::io::Result<()> {
        let rows: Vec<Vec<String>> = self
            .streams
            .iter()
            .map(|s| {
                let change = match (&s.result, &s.load) {
                    (StreamResult::Failed, _) => "FAILED, previous rows kept".to_string(),
                    (_, Some(LoadStats { inserted: Some(i), updated: Some(u), .. })) => {
                        format!("{i} new, {u} updated")
                    }
                    (_, Some(LoadStats { appended: Some(a), .. })) => format!("{a} appended"),
                    (_, Some(LoadStats { rows_before: 0, .. })) => "new rows".to_string(),
                    (_, Some(l)) => format!("replaced {} rows", l.rows_before),
                    (_, None) => "not committed".to_string(),
                };
                vec![
                    s.stream.clone(),
                    s.sync_mode.to_string(),
                    s.records.to_string(),
                    change,
                    format!("{:.1}s", s.seconds),
                ]
            })
            .collect();
        writeln!(out)?;
        out.write_all(table(&["STREAM", "MODE", "RECORDS", "NEW/UPDATED", "DURATION"], &rows).as_bytes())?;
        writeln!(out)?;
        let failures: Vec<&StreamSummary> =
            self.streams.iter().filter(|s| s.result == StreamResult::Failed).collect();
        for s in &failures {
            writeln!(out, "Stream {} failed: {}", s.stream, s.error.as_deref().unwrap_or("unknown error"))?;
        }
        match self.status {
            RunStatus::Succeeded | RunStatus::Partial => {
                let committed = self.streams.len() - failures.len();
                let what = if self.status == RunStatus::Succeeded {
                    "succeeded".to_string()
                } else {
                    format!(
                        "partly succeeded: {committed} of {} streams committed; the {} failed kept their previous rows and checkpoints",
                        self.streams.len(),
                        failures.len()
                    )
                };
                writeln!(
                    out,
                    "Run {} {what}: {} records of {} in {:.1}s ({:.0} records/s) into {}.",
                    self.run_id,
                    self.records,
                    self.instance,
                    self.seconds,
                    self.records as f64 / self.seconds.max(0.001),
                    self.destination
                )?;
                if let Some(q) = &self.sample_query {
                    writeln!(out, "Look at the data:  {q}")?;
                }
            }
            _ => writeln!(
                out,
                "Run {} {}: no table of {} was replaced in {}; incremental streams keep what they committed up to their last checkpoint and resume from there.",
                self.run_id,
                self.status.as_str(),
                self.instance,
                self.destination
            )?,
        }
        Ok(())
    }
}

/// `connector-host run`.
pub async fn run(registry: &Registry, args: RunArgs, out: &mut (dyn Write + Send)) -> Result<Exit> {
    let config = ConfigFile::load(&args.config, registry)?;
    let dest_spec = choose_dest(args.dest.as_deref(), &config);
    let mut dest = sink::open(&dest_spec).await?;
    let options = RunOptions { streams: args.streams, full_refresh: args.full_refresh, atomic: args.atomic };
    let mut progress = Progress::new(ProgressMode::detect(args.quiet || args.json));
    let (summary, error) = sync(&config, dest.as_mut(), &options, &mut progress).await;
    report(&summary, error, args.quiet, args.json, out)
}

/// Prints `summary` as asked and turns its outcome into the exit status: the error of
/// a failed run, [`Exit::Partial`] when some streams failed and the others committed.
pub(crate) fn report(
    summary: &RunSummary,
    error: Option<Error>,
    quiet: bool,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<Exit> {
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(summary).unwrap_or_default()).map_err(write_err)?;
    } else if !quiet {
        summary.print(out).map_err(write_err)?;
    }
    match (summary.status, error) {
        (RunStatus::Partial, _) => Ok(Exit::Partial),
        (_, Some(e)) => Err(e),
        (_, None) => Ok(Exit::Ok),
    }
}

/// Reads `config`'s connector into `dest`: the whole run, from discovery to the final
/// commit (or the abort that keeps the previous data). Returns the summary and, when
/// the run failed, or some of its streams did, the first error.
pub async fn sync(
    config: &ConfigFile,
    dest: &mut dyn Destination,
    options: &RunOptions,
    progress: &mut Progress,
) -> (RunSummary, Option<Error>) {
    let clock = Instant::now();
    let mut run = Run {
        info: RunInfo {
            run_id: uuid::Uuid::now_v7().to_string(),
            connector: config.connector_id().to_string(),
            instance: config.instance(),
            config_fingerprint: config.fingerprint(),
            started_at: now_rfc3339(),
        },
        plans: Vec::new(),
        counts: BTreeMap::new(),
        ended: BTreeMap::new(),
        keys: BTreeMap::new(),
    };
    let result = load(config, dest, options, progress, &mut run).await;
    progress.finish();
    let (status, stats, error) = match result {
        Ok((status, stats)) => (status, Some(stats), run.first_failure()),
        Err(e) => {
            let status = match e.kind() {
                ErrorKind::Interrupted => RunStatus::Interrupted,
                ErrorKind::Conflict if run.plans.is_empty() => RunStatus::Refused,
                _ => RunStatus::Failed,
            };
            tracing::error!(run_id = %run.info.run_id, error = %e.message(), "Run {}", status.as_str());
            (status, None, Some(e))
        }
    };
    let streams = run.summaries(progress, stats.as_ref(), status);
    let records = run.counts.values().sum();
    // Point at the stream with the most records: the table a person most likely wants.
    let sample_query = stats.as_ref().and_then(|_| {
        run.plans
            .iter()
            .max_by_key(|p| run.counts.get(&p.stream).copied().unwrap_or(0))
            .map(|p| dest.sample_query(p))
    });
    let summary = RunSummary {
        run_id: run.info.run_id.clone(),
        connector: run.info.connector.clone(),
        instance: run.info.instance.clone(),
        destination: dest.describe(),
        status,
        records,
        seconds: clock.elapsed().as_secs_f64(),
        streams,
        error: error.as_ref().map(Error::to_string),
        sample_query,
    };
    (summary, error)
}

/// A run in progress: who it is, what it reads, and how each stream ended.
struct Run {
    info: RunInfo,
    plans: Vec<StreamPlan>,
    counts: BTreeMap<String, u64>,
    /// Streams that ended: `None` when completed, the error when failed.
    ended: BTreeMap<String, Option<Error>>,
    /// Keys seen per full-refresh stream, to refuse a key sent twice.
    keys: BTreeMap<String, SeenKeys>,
}

impl Run {
    fn failed(&self, stream: &str) -> bool {
        matches!(self.ended.get(stream), Some(Some(_)))
    }

    /// Marks `stream` failed with `err` unless it already ended.
    fn fail(&mut self, stream: &str, err: Error) {
        if !self.ended.contains_key(stream) {
            tracing::warn!(stream, kind = %err.kind(), error = %err.message(), "Stream failed; its previous rows are kept");
            self.ended.insert(stream.to_string(), Some(err));
        }
    }

    /// The streams that failed, with why, for `_runs`.
    fn failures(&self) -> BTreeMap<String, String> {
        self.ended.iter().filter_map(|(s, e)| e.as_ref().map(|e| (s.clone(), e.to_string()))).collect()
    }

    /// The first failed stream's error, in plan order.
    fn first_failure(&self) -> Option<Error> {
        self.plans.iter().find_map(|p| self.ended.get(&p.stream)?.as_ref().map(clone_error))
    }

    fn outcome(&self, status: RunStatus, error: Option<&Error>) -> RunOutcome {
        RunOutcome {
            run_id: self.info.run_id.clone(),
            finished_at: now_rfc3339(),
            status,
            records: self.counts.clone(),
            error: error.map(Error::to_string),
            failed: self.failures(),
        }
    }

    fn summaries(
        &self,
        progress: &Progress,
        stats: Option<&BTreeMap<String, LoadStats>>,
        status: RunStatus,
    ) -> Vec<StreamSummary> {
        self.plans
            .iter()
            .map(|p| {
                let prog = progress.get(&p.stream);
                let error = self.ended.get(&p.stream).and_then(|e| e.as_ref().map(Error::to_string));
                let result = if error.is_some() {
                    StreamResult::Failed
                } else if matches!(status, RunStatus::Succeeded | RunStatus::Partial) {
                    StreamResult::Committed
                } else {
                    StreamResult::NotCommitted
                };
                StreamSummary {
                    stream: p.stream.clone(),
                    sync_mode: p.sync_mode.as_str(),
                    result,
                    records: self.counts.get(&p.stream).copied().unwrap_or(0),
                    pages: prog.map_or(0, |s| s.pages),
                    retries: prog.map_or(0, |s| s.retries),
                    throttled_ms: prog.map_or(0, |s| s.throttled.as_millis() as u64),
                    seconds: prog.map_or(0.0, |s| s.duration().as_secs_f64()),
                    load: (result == StreamResult::Committed)
                        .then(|| stats.and_then(|s| s.get(&p.stream).cloned()))
                        .flatten(),
                    error,
                }
            })
            .collect()
    }
}

/// A copy of `err` with its kind, message, hint and context.
fn clone_error(err: &Error) -> Error {
    connector_api::StreamEvent::failed(err)
        .error()
        .unwrap_or_else(|| Error::internal(err.message().to_string()))
}

/// The streams to read: the ones the config allows (the connector's catalog), narrowed
/// by `--streams`. Naming a stream the config excludes is a usage error, never a run
/// that would empty its table.
fn select(
    connector: &dyn connector_api::Connector,
    catalog: &connector_api::Catalog,
    options: &RunOptions,
) -> Result<ConfiguredCatalog> {
    if let Some(asked) = &options.streams {
        let allowed: Vec<&str> = catalog.streams.iter().map(|s| s.name.as_str()).collect();
        let known: Vec<String> = connector
            .static_catalog()
            .map(|c| c.streams.into_iter().map(|s| s.name).collect())
            .unwrap_or_default();
        for name in asked {
            if !allowed.contains(&name.as_str()) && known.contains(name) {
                return Err(Error::config(
                    "streams",
                    format!(
                        "--streams asks for `{name}`, which the config's `streams` excludes (it allows: {}); --streams can only narrow that list",
                        allowed.join(", ")
                    ),
                )
                .with_hint(format!(
                    "Add `{name}` to `streams` in the config file, or leave it out of --streams. Every stream the connector knows: {}",
                    known.join(", ")
                )));
            }
        }
    }
    catalog.configure(options.streams.as_deref(), options.full_refresh)
}

async fn load(
    config: &ConfigFile,
    dest: &mut dyn Destination,
    options: &RunOptions,
    progress: &mut Progress,
    run: &mut Run,
) -> Result<(RunStatus, BTreeMap<String, LoadStats>)> {
    let connector = config.connector();
    let catalog = connector.discover(config.config()).await?;
    let configured = select(connector.as_ref(), &catalog, options)?;
    dest.lock(&run.info).await?;
    run.plans = configured.streams.iter().map(|s| StreamPlan::new(config.connector_id(), s)).collect();
    for p in &run.plans {
        run.counts.insert(p.stream.clone(), 0);
    }
    let stop = stop_signal();
    tokio::pin!(stop);
    // Every phase that may wait (a lock held by a report, a slow source) is raced
    // against Ctrl-C and SIGTERM.
    let prepared = tokio::select! {
        prepared = async {
            let mut state = dest.load_state(&run.info.instance).await?;
            // Only streams read incrementally resume; a forced full refresh starts over.
            state
                .streams
                .retain(|name, _| configured.stream(name).is_some_and(|s| s.sync_mode == SyncMode::Incremental));
            tracing::info!(run_id = %run.info.run_id, connector = %run.info.connector, instance = %run.info.instance, destination = %dest.describe(), streams = run.plans.len(), "Run started");
            dest.begin(&run.info, &run.plans).await?;
            connector.read(config.config(), &configured, &state).await
        } => prepared,
        signal = &mut stop => Err(interrupted(signal)),
    };
    let loaded = match prepared {
        Ok(messages) => pump(messages, dest, progress, run, &mut stop).await,
        Err(e) => Err(e),
    };
    if let Err(e) = loaded {
        let status =
            if e.kind() == ErrorKind::Interrupted { RunStatus::Interrupted } else { RunStatus::Failed };
        record_abort(dest, &run.outcome(status, Some(&e))).await;
        return Err(e);
    }
    let failures = run.failures();
    let everything_failed = !run.plans.is_empty() && failures.len() == run.plans.len();
    if !failures.is_empty() && (options.atomic || everything_failed) {
        let first = run.first_failure().unwrap_or_else(|| Error::internal("a stream failed"));
        record_abort(dest, &run.outcome(RunStatus::Failed, Some(&first))).await;
        return Err(first);
    }
    let status = if failures.is_empty() { RunStatus::Succeeded } else { RunStatus::Partial };
    let first = run.first_failure();
    let outcome = run.outcome(status, first.as_ref());
    // A commit waiting on a lock is still stopped by a signal; the database rolls the
    // transaction back when the connection closes, and the next run of this instance
    // marks this one interrupted.
    let committed = tokio::select! {
        committed = dest.commit(&outcome) => committed,
        signal = &mut stop => return Err(interrupted(signal)),
    };
    match committed {
        Ok(stats) => Ok((status, stats)),
        Err(e) => {
            record_abort(dest, &run.outcome(RunStatus::Failed, Some(&e))).await;
            Err(e)
        }
    }
}

/// How long rolling back and recording a failed run may take: a run stopped while a
/// statement waits on a lock must still exit; the database rolls back when the
/// connection closes, and the next run of the instance marks this one interrupted.
const ABORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Rolls back what `dest` holds of the run and records `outcome`, within
/// [`ABORT_TIMEOUT`]; a failure to do so is logged, since the run's own error matters more.
async fn record_abort(dest: &mut dyn Destination, outcome: &RunOutcome) {
    match tokio::time::timeout(ABORT_TIMEOUT, dest.abort(outcome)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "Could not record the failed run"),
        Err(_) => tracing::warn!(
            "Gave up recording the failed run after 5 s; the next run of this instance marks it interrupted"
        ),
    }
}

fn interrupted(signal: &str) -> Error {
    Error::new(
        ErrorKind::Interrupted,
        format!("interrupted by {signal}; nothing of this run was committed beyond its checkpoints"),
    )
}

/// Moves the connector's messages into `dest` until the read ends: records in batches,
/// checkpoints after the records they cover, per-stream endings into `run`. A stream
/// that fails (at the source, or with a record that does not fit its table) is
/// recorded and its later records and checkpoints are dropped; the others go on.
async fn pump(
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
    loop {
        if let Some(signal) = futures::FutureExt::now_or_never(stop.as_mut()) {
            return Err(interrupted(signal));
        }
        let chunk = match rx.try_recv() {
            Ok(chunk) => chunk,
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                // The source is slower than the destination: let other writers in.
                dest.idle().await?;
                tokio::select! {
                    chunk = rx.recv() => match chunk {
                        Some(chunk) => chunk,
                        None => break,
                    },
                    signal = stop.as_mut() => return Err(interrupted(signal)),
                }
            }
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
                    LogLevel::Warn => tracing::warn!(connector = %run.info.connector, "{}", l.message),
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
        dest.write(&self.stream, records).await
    }
}

/// Resolves with the signal's name on Ctrl-C (SIGINT) or SIGTERM (a scheduler stopping
/// the job), so the run can roll back and record itself as failed before exiting.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut int), Ok(mut term)) => tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending().await,
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
