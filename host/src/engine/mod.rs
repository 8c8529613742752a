//! The sync engine: one run of one connector instance into one destination, from
//! discovery to the final commit (or the abort that keeps the previous data), as the
//! hub's data contract (docs/data-contract.md) requires. `run`, `demo` and runs of many
//! tenants call [`sync`]; nothing here prints.
//!
//! - [`pump`]: the connector's messages into the destination, in batches;
//! - [`summary`]: what a run did, per stream, for people and scripts;
//! - [`warnings`]: what the connector warned of during the run, for the summary and `_runs`;
//! - [`signal`]: Ctrl-C and SIGTERM, raced against every phase that may wait.

mod pump;
mod signal;
pub mod summary;
mod warnings;

use std::collections::BTreeMap;
use std::time::Instant;

use connector_api::{ConfiguredCatalog, Error, ErrorKind, Result, SyncMode};

use crate::config_file::ConfigFile;
use crate::progress::Progress;
use crate::sink::schema::SeenKeys;
use crate::sink::{Destination, LoadStats, RunInfo, RunOutcome, RunStatus, StreamPlan, now_rfc3339};
use signal::{interrupted, stop_signal};
pub use summary::{RunSummary, StreamResult, StreamSummary};
use warnings::Warnings;

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
        locked: false,
        warnings: Warnings::default(),
    };
    let result = load(config, dest, options, progress, &mut run).await;
    progress.finish();
    let (status, stats, error) = match result {
        Ok((status, stats)) => (status, Some(stats), run.first_failure()),
        Err(e) => {
            let status = match e.kind() {
                ErrorKind::Interrupted => RunStatus::Interrupted,
                ErrorKind::Conflict if !run.locked => RunStatus::Refused,
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
        warnings: run.warnings.list(),
        sample_query,
    };
    (summary, error)
}

/// A run in progress: who it is, what it reads, and how each stream ended.
pub(crate) struct Run {
    info: RunInfo,
    plans: Vec<StreamPlan>,
    counts: BTreeMap<String, u64>,
    /// Streams that ended: `None` when completed, the error when failed.
    ended: BTreeMap<String, Option<Error>>,
    /// Keys seen per full-refresh stream, to refuse a key sent twice.
    keys: BTreeMap<String, SeenKeys>,
    /// Whether the run holds its instance's lock (a run refused never does).
    locked: bool,
    /// What the connector warned of.
    warnings: Warnings,
}

impl Run {
    fn failed(&self, stream: &str) -> bool {
        matches!(self.ended.get(stream), Some(Some(_)))
    }

    /// Marks `stream` failed with `err` unless it already ended.
    fn fail(&mut self, stream: &str, err: Error) {
        if !self.ended.contains_key(stream) {
            tracing::error!(stream, kind = %err.kind(), error = %err.message(), hint = err.hint().unwrap_or_default(), "Stream failed; its previous rows are kept");
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
            warnings: self.warnings.list(),
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
                let failure = self.ended.get(&p.stream).and_then(Option::as_ref);
                let error = failure.map(Error::without_hint);
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
                    hint: failure.and_then(|e| e.hint().map(str::to_string)),
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
    dest.lock(&run.info).await?;
    run.locked = true;
    let stop = stop_signal();
    tokio::pin!(stop);
    // Every phase that may wait (a lock held by a report, a slow source) is raced
    // against Ctrl-C and SIGTERM, and every failure from here on is recorded in `_runs`.
    let prepared = tokio::select! {
        prepared = async {
            let catalog = connector.discover(config.config()).await?;
            let configured = select(connector.as_ref(), &catalog, options)?;
            run.plans = configured.streams.iter().map(|s| StreamPlan::new(config.connector_id(), s)).collect();
            for p in &run.plans {
                run.counts.insert(p.stream.clone(), 0);
            }
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
        Ok(messages) => pump::pump(messages, dest, progress, run, &mut stop).await,
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
    // A commit waiting on a lock is still stopped by a signal, and aborted like any
    // other phase: the destination cancels what waits on the server and rolls back.
    let committed = tokio::select! {
        committed = dest.commit(&outcome) => committed,
        signal = &mut stop => {
            let err = interrupted(signal);
            record_abort(dest, &run.outcome(RunStatus::Interrupted, Some(&err))).await;
            return Err(err);
        }
    };
    match committed {
        Ok(stats) => {
            // The data is committed whatever happens to the views; a view that cannot
            // be made is reported, not a failed run.
            if let Err(e) = dest.ensure_views(config.connector_id(), &connector.views()).await {
                tracing::warn!(error = %e, "Could not create or update the connector's views");
            }
            Ok((status, stats))
        }
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
