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
use connector_api::{Error, LogLevel, Message, Record, Result, SyncMode};
use futures::StreamExt;
use serde::Serialize;

use super::{choose_dest, table, write_err};
use crate::cli::RunArgs;
use crate::config_file::ConfigFile;
use crate::exit::Exit;
use crate::progress::{Progress, ProgressMode};
use crate::sink::{self, Destination, LoadStats, RunInfo, RunOutcome, StreamPlan, now_rfc3339};

/// Most messages the pump forwards in one chunk.
const CHUNK: usize = 512;

/// Chunks buffered between the connector and the destination: with [`CHUNK`], at most
/// 4,096 messages are in flight.
const CHANNEL: usize = 8;

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Streams to read (all when `None`).
    pub streams: Option<Vec<String>>,
    /// Read incremental streams in full, ignoring checkpoints.
    pub full_refresh: bool,
}

/// The outcome of one stream.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSummary {
    /// Stream name.
    pub stream: String,
    /// `full_refresh` or `incremental`.
    pub sync_mode: &'static str,
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
    /// What the load changed (absent when the run failed).
    pub load: Option<LoadStats>,
}

/// The outcome of a run, printed as a table or (`--json`) as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Run id.
    pub run_id: String,
    /// Connector id.
    pub connector: String,
    /// Connector instance whose state was used.
    pub instance: String,
    /// Where the data went.
    pub destination: String,
    /// `succeeded` or `failed`.
    pub status: &'static str,
    /// Total records received.
    pub records: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Per stream.
    pub streams: Vec<StreamSummary>,
    /// Why the run failed.
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
                let change = match &s.load {
                    Some(LoadStats { inserted: Some(i), updated: Some(u), .. }) => {
                        format!("{i} new, {u} updated")
                    }
                    Some(LoadStats { rows_before: 0, .. }) => "new table".to_string(),
                    Some(l) => format!("replaced {} rows", l.rows_before),
                    None => "not loaded".to_string(),
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
        match self.status {
            "succeeded" => {
                writeln!(
                    out,
                    "Run {} succeeded: {} records in {:.1}s ({:.0} records/s) into {}.",
                    self.run_id,
                    self.records,
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
                "Run {} failed; {} still holds the data and checkpoints of the last successful load.",
                self.run_id, self.destination
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
    let options = RunOptions { streams: args.streams, full_refresh: args.full_refresh };
    let mut progress = Progress::new(ProgressMode::detect(args.quiet || args.json));
    let (summary, error) = sync(&config, dest.as_mut(), &options, &mut progress).await;
    report(&summary, error, args.quiet, args.json, out)
}

/// Prints `summary` as asked and turns the error, if any, into the exit status.
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
    match error {
        Some(e) => Err(e),
        None => Ok(Exit::Ok),
    }
}

/// Reads `config`'s connector into `dest`: the whole run, from discovery to the final
/// commit (or the abort that keeps the previous data). Returns the summary and, when
/// the run failed, why.
pub async fn sync(
    config: &ConfigFile,
    dest: &mut dyn Destination,
    options: &RunOptions,
    progress: &mut Progress,
) -> (RunSummary, Option<Error>) {
    let clock = Instant::now();
    let run_id = uuid::Uuid::now_v7().to_string();
    let mut summary = RunSummary {
        run_id: run_id.clone(),
        connector: config.connector_id().to_string(),
        instance: config.instance(),
        destination: dest.describe(),
        status: "failed",
        records: 0,
        seconds: 0.0,
        streams: Vec::new(),
        error: None,
        sample_query: None,
    };
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut plans: Vec<StreamPlan> = Vec::new();
    let result = load(config, dest, options, progress, &run_id, &mut plans, &mut counts).await;
    progress.finish();
    let stats = match result {
        Ok(stats) => {
            summary.status = "succeeded";
            Some(stats)
        }
        Err(e) => {
            tracing::error!(run_id = %run_id, error = %e.message(), "Run failed");
            summary.error = Some(e.to_string());
            summary.seconds = clock.elapsed().as_secs_f64();
            summary.streams = stream_summaries(&plans, &counts, progress, None);
            summary.records = counts.values().sum();
            return (summary, Some(e));
        }
    };
    summary.seconds = clock.elapsed().as_secs_f64();
    summary.streams = stream_summaries(&plans, &counts, progress, stats.as_ref());
    summary.records = counts.values().sum();
    // Point at the stream with the most records: the table a person most likely wants.
    summary.sample_query = plans
        .iter()
        .max_by_key(|p| counts.get(&p.stream).copied().unwrap_or(0))
        .map(|p| dest.sample_query(p));
    (summary, None)
}

fn stream_summaries(
    plans: &[StreamPlan],
    counts: &BTreeMap<String, u64>,
    progress: &Progress,
    stats: Option<&BTreeMap<String, LoadStats>>,
) -> Vec<StreamSummary> {
    plans
        .iter()
        .map(|p| {
            let prog = progress.get(&p.stream);
            StreamSummary {
                stream: p.stream.clone(),
                sync_mode: p.sync_mode.as_str(),
                records: counts.get(&p.stream).copied().unwrap_or(0),
                pages: prog.map_or(0, |s| s.pages),
                retries: prog.map_or(0, |s| s.retries),
                throttled_ms: prog.map_or(0, |s| s.throttled.as_millis() as u64),
                seconds: prog.map_or(0.0, |s| s.duration().as_secs_f64()),
                load: stats.and_then(|s| s.get(&p.stream).cloned()),
            }
        })
        .collect()
}

async fn load(
    config: &ConfigFile,
    dest: &mut dyn Destination,
    options: &RunOptions,
    progress: &mut Progress,
    run_id: &str,
    plans: &mut Vec<StreamPlan>,
    counts: &mut BTreeMap<String, u64>,
) -> Result<BTreeMap<String, LoadStats>> {
    let connector = config.connector();
    let catalog = connector.discover(config.config()).await?;
    let configured = catalog.configure(options.streams.as_deref(), options.full_refresh)?;
    *plans = configured.streams.iter().map(|s| StreamPlan::new(config.connector_id(), s)).collect();
    for p in plans.iter() {
        counts.insert(p.stream.clone(), 0);
    }
    let instance = config.instance();
    let mut state = dest.load_state(&instance).await?;
    // Only streams read incrementally resume; a forced full refresh starts over.
    state
        .streams
        .retain(|name, _| configured.stream(name).is_some_and(|s| s.sync_mode == SyncMode::Incremental));
    let info = RunInfo {
        run_id: run_id.to_string(),
        connector: config.connector_id().to_string(),
        instance,
        config_fingerprint: config.fingerprint(),
        started_at: now_rfc3339(),
    };
    tracing::info!(run_id, connector = %info.connector, instance = %info.instance, destination = %dest.describe(), streams = plans.len(), "Run started");
    let outcome = |counts: &BTreeMap<String, u64>, error: Option<&Error>| RunOutcome {
        run_id: run_id.to_string(),
        finished_at: now_rfc3339(),
        records: counts.clone(),
        error: error.map(|e| e.to_string()),
    };
    if let Err(e) = dest.begin(&info, plans).await {
        if let Err(abort) = dest.abort(&outcome(counts, Some(&e))).await {
            tracing::warn!(error = %abort, "Could not record the failed run");
        }
        return Err(e);
    }
    let streamed = async {
        let messages = connector.read(config.config(), &configured, &state).await?;
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
        let stop = stop_signal();
        tokio::pin!(stop);
        let mut batch = Batch::default();
        let mut failure: Option<Error> = None;
        loop {
            let chunk = tokio::select! {
                chunk = rx.recv() => match chunk {
                    Some(chunk) => chunk,
                    None => break,
                },
                signal = &mut stop => {
                    return Err(Error::internal(format!("interrupted by {signal}; the previous data and checkpoints are kept")));
                }
            };
            for message in chunk {
                let message = match message? {
                    Message::Record(r) if batch.takes(&r.stream) => {
                        batch.push(r);
                        continue;
                    }
                    message => message,
                };
                batch.write(dest, progress, counts).await?;
                match message {
                    Message::Record(r) => batch.push(r),
                    Message::State(c) => dest.checkpoint(&c.stream, c.value).await?,
                    Message::Status(s) => {
                        if failure.is_none() {
                            failure = s.event.error();
                        }
                        progress.event(&s.stream, &s.event)
                    }
                    Message::Log(l) => match l.level {
                        LogLevel::Debug => tracing::debug!(connector = %info.connector, "{}", l.message),
                        LogLevel::Info => tracing::info!(connector = %info.connector, "{}", l.message),
                        LogLevel::Warn => tracing::warn!(connector = %info.connector, "{}", l.message),
                        LogLevel::Error => tracing::error!(connector = %info.connector, "{}", l.message),
                    },
                }
            }
            batch.write(dest, progress, counts).await?;
        }
        failure.map_or(Ok(()), Err)
    }
    .await;
    match streamed {
        Ok(()) => {
            let stats = dest.commit(&outcome(counts, None)).await;
            if let Err(e) = &stats
                && let Err(abort) = dest.abort(&outcome(counts, Some(e))).await
            {
                tracing::warn!(error = %abort, "Could not record the failed run");
            }
            stats
        }
        Err(e) => {
            if let Err(abort) = dest.abort(&outcome(counts, Some(&e))).await {
                tracing::warn!(error = %abort, "Could not record the failed run");
            }
            Err(e)
        }
    }
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

    /// Counts the batch's records and writes them, leaving the batch empty.
    async fn write(
        &mut self,
        dest: &mut dyn Destination,
        progress: &mut Progress,
        counts: &mut BTreeMap<String, u64>,
    ) -> Result<()> {
        if self.records.is_empty() {
            return Ok(());
        }
        let n = self.records.len() as u64;
        progress.records(&self.stream, n);
        if let Some(count) = counts.get_mut(&self.stream) {
            *count += n;
        }
        dest.write(&self.stream, std::mem::take(&mut self.records)).await
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
