//! Destinations: where `run` loads records, and where runs and checkpoints are kept.
//!
//! Each kind of store is a folder (`sql/sqlite.rs`, `sql/postgres.rs`, `files/`) that
//! implements [`Destination`] and declares its [`Registration`]; [`registry`] lists
//! them and opens the one a `--dest` spec names (docs/writing-a-destination.md).
//!
//! Every destination honours the same contract (docs/data-contract.md), so several
//! tenants share one hub and a failed, killed or concurrent run never leaves
//! half-written data behind:
//! - every row carries its connector instance (`_instance`, part of the primary key),
//!   and a run touches only its own instance's rows of the streams it was asked for;
//! - one run per instance and destination at a time ([`Destination::lock`]);
//! - a full-refresh stream is loaded into a staging area and, when the stream
//!   completed, replaces the instance's rows in place (delete and insert in one
//!   transaction: the table is never dropped, so views and grants on it survive);
//! - an incremental stream is upserted by primary key, and each checkpoint is committed
//!   in the same transaction as the records before it, so state never runs ahead of
//!   data and a rerun neither skips nor duplicates. Checkpoints are committed once
//!   [`BATCH_ROWS`] rows or [`COMMIT_INTERVAL`] have passed since the last commit, so a
//!   crash loses at most that much progress;
//! - a stream that failed keeps its previous rows (and its checkpointed progress);
//!   every stream that completed is committed;
//! - a table with our name that our bookkeeping (`_tables`) does not list is not ours,
//!   and the run stops rather than replace it; so does one it lists that is no longer
//!   the table we made (a view, a table without `_instance` in its key).

pub mod checkpoints;
pub mod files;
pub mod lock;
pub mod registry;
pub mod schema;
pub mod sql;

use std::collections::BTreeMap;

use async_trait::async_trait;
use connector_api::{Error, ErrorKind, Result, State};
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

pub use schema::{Column, ColumnType, StreamPlan};

/// Records buffered per write batch.
pub const BATCH_ROWS: usize = 5_000;

/// For a database that lets one writer in at a time (SQLite): a transaction older than
/// this is committed while the source has nothing ready ([`Destination::idle`], which the
/// engine calls again at this interval for as long as the source stays silent), so
/// another run's writes (or its refusal) wait at most about this long.
pub const IDLE_COMMIT: std::time::Duration = std::time::Duration::from_millis(100);

/// When an incremental checkpoint is committed: once `BATCH_ROWS` rows or
/// `COMMIT_INTERVAL` have passed since the last commit. Checkpoints in between are kept
/// in the open transaction with their rows, so a crash loses at most that much progress
/// and never commits a checkpoint without the rows before it.
pub const COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Tracks rows and time since the last commit (see [`COMMIT_INTERVAL`]).
#[derive(Debug)]
pub struct CommitPolicy {
    rows: usize,
    since: std::time::Instant,
}

impl Default for CommitPolicy {
    fn default() -> Self {
        CommitPolicy { rows: 0, since: std::time::Instant::now() }
    }
}

impl CommitPolicy {
    /// Counts `n` written rows.
    pub fn rows(&mut self, n: usize) {
        self.rows += n;
    }

    /// Whether enough rows or time have passed to commit at the next checkpoint.
    pub fn due(&self) -> bool {
        self.rows >= BATCH_ROWS || self.since.elapsed() >= COMMIT_INTERVAL
    }

    /// Time since the last commit.
    pub fn age(&self) -> std::time::Duration {
        self.since.elapsed()
    }

    /// Whether rows were counted since the last commit.
    pub fn pending(&self) -> bool {
        self.rows > 0
    }

    /// Restarts the count after a commit.
    pub fn committed(&mut self) {
        *self = CommitPolicy::default();
    }
}

/// Identity of a run, handed to [`Destination::begin`].
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Unique run id (UUID v7, so ids sort by start time).
    pub run_id: String,
    /// Connector id.
    pub connector: String,
    /// Connector instance whose state is read and written.
    pub instance: String,
    /// Fingerprint of the config without secrets.
    pub config_fingerprint: String,
    /// RFC 3339 start time.
    pub started_at: String,
}

/// Where a run is, or how it ended, as `_runs.status` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Reading and loading.
    Running,
    /// Every selected stream was committed.
    Succeeded,
    /// Some streams failed and kept their previous data; the others were committed.
    Partial,
    /// Nothing but checkpointed incremental progress was committed.
    Failed,
    /// Stopped by a signal, or found unfinished by a later run of its instance.
    Interrupted,
    /// Did not start: another run of the same instance held the destination.
    Refused,
}

impl RunStatus {
    /// The lowercase name stored in `_runs.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Refused => "refused",
        }
    }
}

/// How a run ended, handed to [`Destination::commit`] or [`Destination::abort`].
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run's id.
    pub run_id: String,
    /// RFC 3339 end time.
    pub finished_at: String,
    /// `Succeeded` or `Partial` for a commit; `Failed` or `Interrupted` for an abort.
    pub status: RunStatus,
    /// Records received per stream.
    pub records: BTreeMap<String, u64>,
    /// Why the run (or its first failed stream) failed (never holds secrets).
    pub error: Option<String>,
    /// Streams that failed, with why: a commit keeps their previous rows.
    pub failed: BTreeMap<String, String>,
    /// What the connector warned of during the run, each distinct warning once.
    pub warnings: Vec<String>,
}

/// What a stream's load changed, from [`Destination::commit`].
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LoadStats {
    /// Rows in the table after the run.
    pub rows: u64,
    /// Rows in the table before the run.
    pub rows_before: u64,
    /// For incremental streams: rows that did not exist before.
    pub inserted: Option<u64>,
    /// For incremental streams: rows that existed and were overwritten.
    pub updated: Option<u64>,
}

/// The error for a record or checkpoint of a stream the run did not select: the
/// connector broke the contract, so the run fails rather than invent a table.
pub(crate) fn unselected_stream(what: &str, stream: &str) -> Error {
    Error::new(ErrorKind::Source, format!("the connector sent a {what} for unselected stream `{stream}`"))
}

/// The error for a table (or file) with our name that our bookkeeping does not list:
/// someone else's, or left by a connector-host older than the `_instance` column.
pub(crate) fn foreign_table(table: &str, destination: &str) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!("{table} in {destination} was not created by connector-host (it is not listed in _tables); it is not ours to replace"),
    )
    .with_hint(format!(
        "Rename {table} (or drop it if nothing needs it) and rerun; tables from connector-host before 0.2 lack the _instance column and must be reloaded this way"
    ))
}

impl LoadStats {
    /// Stats of a committed stream: `rows` now in its table, `rows_before` the run,
    /// `received` records delivered. A staged (full-refresh) stream replaced its table, so
    /// new/updated do not apply; an upserted one inserted what the table grew by and
    /// updated the rest of what it received.
    pub fn after_commit(rows: u64, rows_before: u64, received: u64, staged: bool) -> Self {
        let (inserted, updated) = if staged {
            (None, None)
        } else {
            let inserted = rows.saturating_sub(rows_before);
            (Some(inserted), Some(received.saturating_sub(inserted)))
        };
        LoadStats { rows, rows_before, inserted, updated }
    }
}

/// A row of `_runs`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct RunRecord {
    /// Run id.
    pub run_id: String,
    /// Connector id.
    pub connector: String,
    /// Connector instance.
    pub instance: String,
    /// Config fingerprint without secrets.
    pub config_fingerprint: String,
    /// Start time.
    pub started_at: String,
    /// End time, if it ended.
    pub finished_at: Option<String>,
    /// `running`, `succeeded`, `partial`, `failed`, `interrupted` or `refused` (see
    /// [`RunStatus`]).
    pub status: String,
    /// Records per stream.
    pub records: BTreeMap<String, u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Streams that failed, with why.
    #[serde(default)]
    pub failed: BTreeMap<String, String>,
    /// What the connector warned of during the run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A store `run` loads into.
#[async_trait]
pub trait Destination: Send {
    /// Where the data goes, for people (`SQLite database ./datahub.db`); never holds a
    /// password.
    fn describe(&self) -> String;

    /// How to look at `plan`'s data (e.g. a sample query), printed after a run.
    fn sample_query(&self, plan: &StreamPlan) -> String;

    /// The last committed checkpoint of every stream of `instance`.
    async fn load_state(&mut self, instance: &str) -> Result<State>;

    /// Forgets the checkpoints of `instance` (only `streams` when given); returns how
    /// many were removed.
    async fn reset_state(&mut self, instance: &str, streams: Option<&[String]>) -> Result<u64>;

    /// The most recent runs, newest first.
    async fn recent_runs(&mut self, limit: usize) -> Result<Vec<RunRecord>>;

    /// Takes the run's instance lock before anything of the instance is read or
    /// written, holds it until the run is committed or aborted, and records the run as
    /// `running`. When another run holds it, records this run as `refused` and fails
    /// with [`ErrorKind::Conflict`] at once. Holding the lock, marks the instance's runs
    /// left `running` by a killed process as `interrupted` and removes their staging
    /// leftovers; before that, a database that checks itself cheaply (SQLite's quick
    /// check) is checked, and a damaged one stops the run before anything is written.
    async fn lock(&mut self, run: &RunInfo) -> Result<()>;

    /// Prepares tables (refusing tables that are not ours, checking column types
    /// against earlier runs, adding new columns).
    async fn begin(&mut self, run: &RunInfo, plans: &[StreamPlan]) -> Result<()>;

    /// Writes `records` of `stream`, in the order the connector sent them. The host
    /// hands over consecutive records of a stream together, so per-statement work
    /// (finding a prepared statement, checking whether to commit) is done per batch.
    async fn write(&mut self, stream: &str, records: Vec<Value>) -> Result<()>;

    /// The source has nothing ready: a destination that lets one writer at a time in
    /// (SQLite) commits what it holds once it is [`IDLE_COMMIT`] old, so runs of other
    /// tenants get their turn while this one waits on the network. Called again every
    /// [`IDLE_COMMIT`] while the source stays silent. Rows may land before their
    /// checkpoint, never the other way round.
    async fn idle(&mut self) -> Result<()> {
        Ok(())
    }

    /// Records a checkpoint of `stream`: for incremental streams it is committed
    /// together with every record written before it (at the latest once
    /// [`CommitPolicy::due`]); for full refresh it waits for the final swap.
    async fn checkpoint(&mut self, stream: &str, value: Value) -> Result<()>;

    /// Replaces the instance's rows of every full-refresh stream that did not fail,
    /// saves their checkpoints and records the run's outcome, all in one transaction;
    /// streams in `outcome.failed` keep their previous rows. Releases the lock.
    async fn commit(&mut self, outcome: &RunOutcome) -> Result<BTreeMap<String, LoadStats>>;

    /// Creates or updates `connector`'s views (see [`connector_api::ViewDescriptor`])
    /// whose tables all exist, after a commit; destinations without SQL have none.
    async fn ensure_views(&mut self, connector: &str, views: &[connector_api::ViewDescriptor]) -> Result<()> {
        let _ = (connector, views);
        Ok(())
    }

    /// Discards everything not committed and records the run's outcome (the run may
    /// have failed anywhere after [`Destination::lock`]). Releases the lock.
    async fn abort(&mut self, outcome: &RunOutcome) -> Result<()>;
}

/// How a destination is opened from what follows its scheme: [`Registration::open`]
/// and [`Registration::open_existing`].
pub type Open = for<'a> fn(Spec<'a>) -> BoxFuture<'a, Result<Box<dyn Destination>>>;

/// A destination as `--dest` names it, split at its scheme.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    /// The whole spec as written (`postgres://hub@db/hub`), which a URL needs whole.
    pub full: &'a str,
    /// What follows the scheme (`./datahub.db` of `sqlite:./datahub.db`).
    pub rest: &'a str,
}

impl Spec<'_> {
    /// What follows the scheme as a local path: a leading `//` (`sqlite://x.db`) is
    /// dropped.
    pub fn path(&self) -> &str {
        self.rest.trim_start_matches("//")
    }
}

/// A kind of destination: its entry in [`registry::DESTINATIONS`], declared beside its
/// store, from which `open`, `--help`, `list` and the unknown-scheme error all read.
#[derive(Debug)]
pub struct Registration {
    /// The schemes that select it, as `--dest` starts (`sqlite:`, `postgres://`).
    pub schemes: &'static [&'static str],
    /// Its spec in the abstract, for help and hints (`sqlite:PATH`).
    pub form: &'static str,
    /// What it is, in one line, for `list`.
    pub description: &'static str,
    /// A spec to copy (`sqlite:./datahub.db`).
    pub example: &'static str,
    /// Opens it for `run`, creating what a first run needs.
    pub open: Open,
    /// Opens it for commands that only look at (or tidy) what runs left, which must
    /// not create an empty hub where a mistyped name points.
    pub open_existing: Open,
}

/// For [`Registration::open_existing`] of a local destination: an error when `path`
/// (a file or folder) does not exist, so a typo is reported rather than created empty.
///
/// An empty file is no hub either: SQLite would take it for a new database and the
/// reading command would write one into it.
pub fn must_exist(path: &str) -> Result<()> {
    let metadata = std::fs::metadata(path);
    let what = match &metadata {
        _ if path.is_empty() => return Ok(()),
        Ok(m) if m.is_file() && m.len() == 0 => "the file is empty",
        Ok(_) => return Ok(()),
        Err(_) => "nothing was loaded there yet",
    };
    Err(Error::config("dest", format!("there is no hub at {path}: {what}"))
        .with_hint("Check --dest (or `destination` in the config file): it names where `run` loaded"))
}

/// `spec` with any password replaced by `****`, safe to print: the URL's user-info
/// password and `…password=` query values, found without a URL parser so multi-host
/// URLs (`postgres://hub:PW@h1,h2/hub`), bad ports and unparseable URLs are masked too,
/// then every other registered secret. Everything else is shown as written.
pub fn redact_destination(spec: &str) -> String {
    let mut shown = spec.to_string();
    for range in connector_api::secret::url_credentials(spec).into_iter().rev() {
        shown.replace_range(range, connector_api::secret::MASK);
    }
    connector_api::secret::scrub_owned(shown)
}

/// A destination failure, as an [`ErrorKind::Destination`] error naming what failed.
pub(crate) fn dest_error(what: impl std::fmt::Display, err: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Destination, format!("{what}: {err}"))
}

/// The current time as RFC 3339.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_destination("postgres://u:hunter2@h:5432/db"), "postgres://u:****@h:5432/db");
        assert_eq!(
            redact_destination("postgres://u@h/db?password=hunter2"),
            "postgres://u@h/db?password=****"
        );
        assert_eq!(redact_destination("sqlite:./x.db"), "sqlite:./x.db");
        assert_eq!(redact_destination("postgres://hub:hunter2@h1,h2/hub"), "postgres://hub:****@h1,h2/hub");
        assert_eq!(
            redact_destination("postgres://hub:hunter2@h:99999/hub"),
            "postgres://hub:****@h:99999/hub"
        );
        assert_eq!(
            redact_destination("postgresql://hub:hun/ter@2@[::1/hub"),
            "postgresql://hub:****@[::1/hub"
        );
    }
}
