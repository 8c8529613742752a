//! The default destination: one SQLite file (rusqlite, bundled SQLite).
//!
//! Tables are `<connector>__<stream>` (`qlik_sense__users`), keyed by `_instance` and
//! the stream's primary key, and listed in `_tables`. Full-refresh streams load into a
//! staging table of their instance and replace the instance's rows (`DELETE` and
//! `INSERT … SELECT`) in the run's final transaction; incremental streams upsert into
//! their table and commit each checkpoint (in `_state`) in the same transaction as the
//! rows before it. Write transactions are short (a batch), so runs of other instances
//! can load the same file at the same time; WAL mode lets readers query throughout.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use connector_api::{Error, ErrorKind, Result, State, SyncMode, ViewDescriptor};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, ToSql, params};
use serde_json::Value;

use super::lock::{InstanceLock, held_by_another_run, instance_tag};
use super::schema::{Cell, ColumnType, INSTANCE, reconcile, sql_name};
use super::{
    BATCH_ROWS, CommitPolicy, Destination, LoadStats, RunInfo, RunOutcome, RunRecord, RunStatus, StreamPlan,
    dest_error, foreign_table, now_rfc3339, unselected_stream,
};

/// How long a write waits for another run's write transaction to finish.
const BUSY_TIMEOUT_MS: u32 = 60_000;

/// A transaction older than this is committed when the source has nothing ready, so
/// another run's writes (or its refusal) wait at most about this long.
const IDLE_COMMIT: std::time::Duration = std::time::Duration::from_millis(100);

/// An SQLite database file.
pub struct SqliteDestination {
    path: String,
    conn: Connection,
    lock: Option<InstanceLock>,
    run: Option<ActiveRun>,
}

struct Target {
    plan: StreamPlan,
    table: String,
    staging: Option<String>,
    insert_sql: String,
    rows_before: u64,
}

struct ActiveRun {
    info: RunInfo,
    targets: HashMap<String, Target>,
    /// Incremental rows written since the last commit: while set, only a checkpoint may
    /// commit, so those rows land together with their checkpoint.
    pending_incremental: bool,
    rows_since_commit: usize,
    policy: CommitPolicy,
    final_states: BTreeMap<String, Value>,
    extracted_at: String,
}

impl ToSql for Cell<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Cell::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Cell::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Cell::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Cell::Bool(b) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*b))),
            Cell::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Cell::Json(s) | Cell::Owned(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

/// Why inserting `record` into `target` failed: a primary key sent twice is the
/// source's fault and names the key; anything else is the database's.
fn insert_error(target: &Target, stream: &str, record: &Value, e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => {
            let key: Vec<String> = target
                .plan
                .primary_key
                .iter()
                .map(|k| record.get(k).map(|v| v.to_string()).unwrap_or_default())
                .collect();
            Error::new(
                ErrorKind::Source,
                format!(
                    "stream {stream}: the source sent primary key ({}) twice in one full refresh",
                    key.join(", ")
                ),
            )
            .with_context("stream", stream.to_string())
        }
        _ => dest_error(format!("SQLite: inserting into {}", target.table), e),
    }
}

/// The declared SQLite type of a column type; read back to detect type changes.
fn sql_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Text => "TEXT",
        ColumnType::Integer => "INTEGER",
        ColumnType::Real => "REAL",
        ColumnType::Boolean => "BOOLEAN",
        ColumnType::Timestamp => "TIMESTAMP",
        ColumnType::Json => "JSON",
    }
}

/// Quotes an SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"a", "b"`: quoted identifiers joined for a column list.
pub(crate) fn ident_list<S: AsRef<str>>(names: &[S]) -> String {
    names.iter().map(|n| ident(n.as_ref())).collect::<Vec<_>>().join(", ")
}

fn sqlite_err(what: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| dest_error(format!("SQLite: {what}"), e)
}

/// Runs `f`, which may wait for another connection's write lock in SQLite's busy handler:
/// a blocking sleep of up to [`BUSY_TIMEOUT_MS`]. Many tenants of one `run` share a few
/// runtime threads, and the run holding the lock needs one of them to commit it; on a
/// multi-threaded runtime this thread is handed over first (`block_in_place`), so a
/// waiting tenant never starves the tenant it waits for.
pub(crate) fn may_wait<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Opens a write transaction unless one is open. Transactions open only when there is
/// something to write, so runs of other instances get their turn in between.
fn begin_if_idle(conn: &Connection) -> Result<()> {
    if conn.is_autocommit() {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(sqlite_err("starting a transaction"))?;
    }
    Ok(())
}

/// The prefix of `instance`'s staging tables: a run holding the instance's lock owns
/// every table with it, so leftovers of a killed run can be dropped safely.
fn staging_prefix(instance: &str) -> String {
    format!("_stg_{}__", instance_tag(instance))
}

impl SqliteDestination {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &str) -> Result<Self> {
        if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| dest_error(format!("cannot create directory {}", parent.display()), e))?;
        }
        let conn = Connection::open(path)
            .map_err(|e| dest_error(format!("cannot open SQLite database {path}"), e))?;
        conn.execute_batch(&format!(
            "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA cache_size = -32000;
             PRAGMA wal_autocheckpoint = 10000;"
        ))
        .map_err(sqlite_err("opening the database"))?;
        // Creating the bookkeeping takes the write lock, which a run of another tenant
        // may hold for a moment: only a new hub needs it.
        let ready: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('_runs', '_state', '_tables')",
                [],
                |r| r.get(0),
            )
            .map_err(sqlite_err("reading the bookkeeping tables"))?;
        if ready < 3 {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS _runs (
                 run_id TEXT PRIMARY KEY,
                 connector TEXT NOT NULL,
                 instance TEXT NOT NULL,
                 config_fingerprint TEXT NOT NULL,
                 started_at TIMESTAMP NOT NULL,
                 finished_at TIMESTAMP,
                 status TEXT NOT NULL,
                 records JSON NOT NULL DEFAULT '{}',
                 error TEXT,
                 failed JSON NOT NULL DEFAULT '{}'
             );
             CREATE TABLE IF NOT EXISTS _state (
                 instance TEXT NOT NULL,
                 stream TEXT NOT NULL,
                 value JSON NOT NULL,
                 run_id TEXT,
                 updated_at TIMESTAMP NOT NULL,
                 PRIMARY KEY (instance, stream)
             );
             CREATE TABLE IF NOT EXISTS _tables (
                 table_name TEXT PRIMARY KEY,
                 connector TEXT NOT NULL,
                 stream TEXT NOT NULL,
                 created_at TIMESTAMP NOT NULL,
                 created_by_run TEXT
             );",
            )
            .map_err(sqlite_err("preparing bookkeeping tables"))?;
        }
        let dest = SqliteDestination { path: path.to_string(), conn, lock: None, run: None };
        if !dest.existing_columns("_runs")?.iter().any(|(n, _)| n == "failed") {
            dest.conn
                .execute_batch("ALTER TABLE _runs ADD COLUMN failed JSON NOT NULL DEFAULT '{}'")
                .map_err(sqlite_err("upgrading _runs"))?;
        }
        Ok(dest)
    }

    /// The folder of this database's instance lock files: `<file>-locks` beside it.
    fn lock_dir(&self) -> PathBuf {
        PathBuf::from(format!("{}-locks", self.path))
    }

    fn existing_columns(&self, table: &str) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare(&format!("PRAGMA table_info({})", ident(table)))
            .map_err(sqlite_err("reading table columns"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(sqlite_err("reading table columns"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sqlite_err("reading table columns"))
    }

    /// Rows of `instance` in `table`.
    fn count(&self, table: &str, instance: &str) -> Result<u64> {
        self.conn
            .query_row(
                &format!("SELECT count(*) FROM {} WHERE {} = ?1", ident(table), ident(INSTANCE)),
                [instance],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(sqlite_err("counting rows"))
    }

    /// Whether a table or view called `name` exists, and whether `_tables` lists it.
    fn table_status(&self, name: &str) -> Result<(bool, bool)> {
        let exists: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = ?1)",
                [name],
                |r| r.get(0),
            )
            .map_err(sqlite_err("looking up a table"))?;
        let ours: bool = self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM _tables WHERE table_name = ?1)", [name], |r| r.get(0))
            .map_err(sqlite_err("looking up a table"))?;
        Ok((exists, ours))
    }

    /// Creates or updates `plan`'s table and its staging table, inside the open
    /// transaction.
    fn prepare_target(&self, run: &RunInfo, plan: &StreamPlan) -> Result<Target> {
        let table = plan.flat_table();
        let (exists, ours) = self.table_status(&table)?;
        if exists && !ours {
            return Err(foreign_table(&table, &self.describe()));
        }
        let key = ident_list(&plan.table_key());
        let mut defs: Vec<String> = vec![format!("{} TEXT NOT NULL", ident(INSTANCE))];
        defs.extend(plan.columns.iter().map(|c| format!("{} {}", ident(&c.name), sql_type(c.ty))));
        defs.push("\"_extracted_at\" TIMESTAMP NOT NULL".into());
        defs.push("\"_run_id\" TEXT NOT NULL".into());
        defs.push(format!("PRIMARY KEY ({key})"));
        if exists {
            let existing = self.existing_columns(&table)?;
            let changes = reconcile(&table, plan, &existing, sql_type)?;
            for (name, ty) in &changes.add {
                tracing::info!(table = %table, column = %name, "Adding new column");
                self.conn
                    .execute_batch(&format!("ALTER TABLE {} ADD COLUMN {} {ty};", ident(&table), ident(name)))
                    .map_err(sqlite_err("adding column"))?;
            }
            for (name, _) in &changes.kept {
                tracing::info!(table = %table, column = %name, "Keeping a column the connector no longer sends");
            }
        } else {
            self.conn
                .execute_batch(&format!("CREATE TABLE {} ({});", ident(&table), defs.join(", ")))
                .map_err(sqlite_err("creating table"))?;
            self.conn
                .execute(
                    "INSERT INTO _tables (table_name, connector, stream, created_at, created_by_run) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![table, run.connector, plan.stream, now_rfc3339(), run.run_id],
                )
                .map_err(sqlite_err("registering a table"))?;
        }
        let rows_before = if exists { self.count(&table, &run.instance)? } else { 0 };
        let staging = match plan.sync_mode {
            SyncMode::FullRefresh => {
                let staging = format!("{}{table}", staging_prefix(&run.instance));
                self.conn
                    .execute_batch(&format!(
                        "DROP TABLE IF EXISTS {s}; CREATE TABLE {s} ({});",
                        defs.join(", "),
                        s = ident(&staging)
                    ))
                    .map_err(sqlite_err("creating staging table"))?;
                Some(staging)
            }
            SyncMode::Incremental => None,
        };
        let names = plan.load_columns();
        let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let mut insert_sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            ident(staging.as_deref().unwrap_or(&table)),
            ident_list(&names),
            placeholders.join(", ")
        );
        if staging.is_none() {
            let table_key = plan.table_key();
            let updates: Vec<String> = names
                .iter()
                .filter(|n| !table_key.iter().any(|k| k == *n))
                .map(|n| format!("{c} = excluded.{c}", c = ident(n)))
                .collect();
            insert_sql.push_str(&format!(" ON CONFLICT ({key}) DO UPDATE SET {}", updates.join(", ")));
        }
        Ok(Target { plan: plan.clone(), table, staging, insert_sql, rows_before })
    }

    /// Saves `value` as `stream`'s checkpoint for the run's instance, in the open
    /// transaction.
    fn save_state(conn: &Connection, info: &RunInfo, stream: &str, value: &Value) -> Result<()> {
        conn.execute(
            "INSERT OR REPLACE INTO _state (instance, stream, value, run_id, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![info.instance, stream, value.to_string(), info.run_id, now_rfc3339()],
        )
        .map(drop)
        .map_err(sqlite_err("saving a checkpoint"))
    }

    fn ensure_tx(&self) -> Result<()> {
        begin_if_idle(&self.conn)
    }

    fn commit_tx(&self) -> Result<()> {
        if self.conn.is_autocommit() {
            return Ok(());
        }
        self.conn.execute_batch("COMMIT").map_err(sqlite_err("committing a batch"))
    }

    fn rollback_if_open(&self) {
        if !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(error = %e, "SQLite rollback failed");
        }
    }

    /// Records how `outcome`'s run ended, in the open transaction if there is one.
    fn record_outcome(&self, outcome: &RunOutcome) -> Result<()> {
        self.conn
            .execute(
                "UPDATE _runs SET status = ?2, finished_at = ?3, records = ?4, error = ?5, failed = ?6 WHERE run_id = ?1",
                params![
                    outcome.run_id,
                    outcome.status.as_str(),
                    outcome.finished_at,
                    serde_json::to_string(&outcome.records).unwrap_or_default(),
                    outcome.error,
                    serde_json::to_string(&outcome.failed).unwrap_or_default(),
                ],
            )
            .map(drop)
            .map_err(sqlite_err("recording the run"))
    }

    fn insert_run(&self, run: &RunInfo, status: RunStatus, error: Option<&str>) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO _runs (run_id, connector, instance, config_fingerprint, started_at, status, finished_at, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN ?6 = 'running' THEN NULL ELSE ?5 END, ?7)",
                params![run.run_id, run.connector, run.instance, run.config_fingerprint, run.started_at, status.as_str(), error],
            )
            .map(drop)
            .map_err(sqlite_err("recording the run"))
    }

    fn drop_tables(&self, names: &[String]) -> Result<()> {
        for name in names {
            self.conn
                .execute_batch(&format!("DROP TABLE IF EXISTS {}", ident(name)))
                .map_err(sqlite_err("dropping a staging table"))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Destination for SqliteDestination {
    fn describe(&self) -> String {
        format!("SQLite database {}", self.path)
    }

    fn sample_query(&self, plan: &StreamPlan) -> String {
        format!("sqlite3 {} 'select _instance, count(*) from {} group by 1'", self.path, plan.flat_table())
    }

    async fn load_state(&mut self, instance: &str) -> Result<State> {
        may_wait(|| {
            let mut stmt = self
                .conn
                .prepare("SELECT stream, value FROM _state WHERE instance = ?1")
                .map_err(sqlite_err("reading state"))?;
            let rows = stmt
                .query_map([instance], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sqlite_err("reading state"))?;
            let mut state = State::default();
            for row in rows {
                let (stream, value) = row.map_err(sqlite_err("reading state"))?;
                let value = serde_json::from_str(&value)
                    .map_err(|e| dest_error("SQLite: corrupt _state value", e))?;
                state.set(stream, value);
            }
            Ok(state)
        })
    }

    async fn reset_state(&mut self, instance: &str, streams: Option<&[String]>) -> Result<u64> {
        may_wait(|| {
            let n = match streams {
                None => self.conn.execute("DELETE FROM _state WHERE instance = ?1", [instance]),
                Some(streams) => {
                    let mut n = 0;
                    for s in streams {
                        n += self
                            .conn
                            .execute(
                                "DELETE FROM _state WHERE instance = ?1 AND stream = ?2",
                                [instance, s.as_str()],
                            )
                            .map_err(sqlite_err("resetting state"))?;
                    }
                    Ok(n)
                }
            }
            .map_err(sqlite_err("resetting state"))?;
            Ok(n as u64)
        })
    }

    async fn recent_runs(&mut self, limit: usize) -> Result<Vec<RunRecord>> {
        may_wait(|| {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT run_id, connector, instance, config_fingerprint, started_at, finished_at, status, records, error, failed
                     FROM _runs ORDER BY started_at DESC, run_id DESC LIMIT ?1",
                )
                .map_err(sqlite_err("reading runs"))?;
            let rows = stmt
                .query_map([limit as i64], |r| {
                    Ok(RunRecord {
                        run_id: r.get(0)?,
                        connector: r.get(1)?,
                        instance: r.get(2)?,
                        config_fingerprint: r.get(3)?,
                        started_at: r.get(4)?,
                        finished_at: r.get(5)?,
                        status: r.get(6)?,
                        records: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or_default(),
                        error: r.get(8)?,
                        failed: serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or_default(),
                    })
                })
                .map_err(sqlite_err("reading runs"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sqlite_err("reading runs"))
        })
    }

    async fn lock(&mut self, run: &RunInfo) -> Result<()> {
        may_wait(|| {
            let Some(lock) = InstanceLock::try_acquire(&self.lock_dir(), &run.instance)? else {
                let other: Option<String> = self
                    .conn
                    .query_row(
                        "SELECT 'run ' || run_id || ' (started ' || started_at || ')' FROM _runs
                         WHERE instance = ?1 AND status = 'running' ORDER BY started_at DESC LIMIT 1",
                        [&run.instance],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sqlite_err("reading runs"))?;
                let err = held_by_another_run(&run.instance, &self.describe(), other);
                self.insert_run(run, RunStatus::Refused, Some(&err.to_string()))?;
                return Err(err);
            };
            self.lock = Some(lock);
            // Holding the lock, no other run of this instance is alive: whatever it left
            // `running`, and its staging tables, are a killed run's.
            self.conn
                .execute(
                    "UPDATE _runs SET status = 'interrupted' WHERE instance = ?1 AND status = 'running'",
                    [&run.instance],
                )
                .map_err(sqlite_err("recording the run"))?;
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, length(?1)) = ?1",
                )
                .map_err(sqlite_err("finding staging leftovers"))?;
            let leftovers = stmt
                .query_map([staging_prefix(&run.instance)], |r| r.get::<_, String>(0))
                .map_err(sqlite_err("finding staging leftovers"))?
                .collect::<rusqlite::Result<Vec<String>>>()
                .map_err(sqlite_err("finding staging leftovers"))?;
            drop(stmt);
            self.drop_tables(&leftovers)?;
            self.insert_run(run, RunStatus::Running, None)
        })
    }

    async fn begin(&mut self, run: &RunInfo, plans: &[StreamPlan]) -> Result<()> {
        may_wait(|| {
            self.ensure_tx()?;
            let mut targets = HashMap::new();
            for plan in plans {
                match self.prepare_target(run, plan) {
                    Ok(t) => {
                        targets.insert(plan.stream.clone(), t);
                    }
                    Err(e) => {
                        self.rollback_if_open();
                        return Err(e);
                    }
                }
            }
            self.commit_tx()?;
            self.run = Some(ActiveRun {
                info: run.clone(),
                targets,
                pending_incremental: false,
                rows_since_commit: 0,
                policy: CommitPolicy::default(),
                final_states: BTreeMap::new(),
                extracted_at: now_rfc3339(),
            });
            Ok(())
        })
    }

    async fn write(&mut self, stream: &str, records: Vec<Value>) -> Result<()> {
        may_wait(|| {
            let run = self.run.as_mut().ok_or_else(|| Error::internal("write outside a run"))?;
            let Some(target) = run.targets.get(stream) else {
                return Err(unselected_stream("record", stream));
            };
            begin_if_idle(&self.conn)?;
            let mut stmt =
                self.conn.prepare_cached(&target.insert_sql).map_err(sqlite_err("preparing insert"))?;
            let mut cells = Vec::with_capacity(target.plan.columns.len() + 3);
            for record in &records {
                cells.clear();
                cells.push(Cell::Text(&run.info.instance));
                for col in &target.plan.columns {
                    cells.push(col.cell_of(stream, record)?);
                }
                cells.push(Cell::Text(&run.extracted_at));
                cells.push(Cell::Text(&run.info.run_id));
                if let Err(e) = stmt.execute(rusqlite::params_from_iter(cells.iter())) {
                    return Err(insert_error(target, stream, record, e));
                }
            }
            drop(cells);
            drop(stmt);
            if target.staging.is_none() {
                run.pending_incremental = true;
                run.policy.rows(records.len());
            }
            run.rows_since_commit += records.len();
            if run.rows_since_commit >= BATCH_ROWS && !run.pending_incremental {
                run.rows_since_commit = 0;
                run.extracted_at = now_rfc3339();
                self.conn.execute_batch("COMMIT").map_err(sqlite_err("committing a batch"))?;
            }
            Ok(())
        })
    }

    async fn idle(&mut self) -> Result<()> {
        may_wait(|| {
            // Every checkpoint in the open transaction follows the rows it covers, so the
            // transaction may end here.
            if let Some(run) = self.run.as_mut()
                && !self.conn.is_autocommit()
                && run.policy.age() >= IDLE_COMMIT
            {
                run.pending_incremental = false;
                run.rows_since_commit = 0;
                run.policy.committed();
                self.conn.execute_batch("COMMIT").map_err(sqlite_err("committing a batch"))?;
            }
            Ok(())
        })
    }

    async fn checkpoint(&mut self, stream: &str, value: Value) -> Result<()> {
        may_wait(|| {
            let run = self.run.as_mut().ok_or_else(|| Error::internal("checkpoint outside a run"))?;
            let Some(target) = run.targets.get(stream) else {
                return Err(unselected_stream("checkpoint", stream));
            };
            if target.staging.is_some() {
                run.final_states.insert(stream.to_string(), value);
                return Ok(());
            }
            begin_if_idle(&self.conn)?;
            Self::save_state(&self.conn, &run.info, stream, &value)?;
            if !run.policy.due() {
                return Ok(());
            }
            run.pending_incremental = false;
            run.rows_since_commit = 0;
            run.policy.committed();
            run.extracted_at = now_rfc3339();
            self.conn.execute_batch("COMMIT").map_err(sqlite_err("committing a checkpoint"))
        })
    }

    async fn commit(&mut self, outcome: &RunOutcome) -> Result<BTreeMap<String, LoadStats>> {
        may_wait(|| {
            let run = self.run.take().ok_or_else(|| Error::internal("commit outside a run"))?;
            let instance = run.info.instance.clone();
            let result = (|| -> Result<()> {
                self.ensure_tx()?;
                for target in run.targets.values() {
                    let Some(staging) = &target.staging else { continue };
                    if outcome.failed.contains_key(&target.plan.stream) {
                        continue;
                    }
                    let columns = ident_list(&target.plan.load_columns());
                    self.conn
                        .execute(
                            &format!("DELETE FROM {} WHERE {} = ?1", ident(&target.table), ident(INSTANCE)),
                            [&instance],
                        )
                        .map_err(sqlite_err("replacing the instance's rows"))?;
                    self.conn
                        .execute_batch(&format!(
                            "INSERT INTO {t} ({columns}) SELECT {columns} FROM {s};",
                            t = ident(&target.table),
                            s = ident(staging)
                        ))
                        .map_err(sqlite_err("replacing the instance's rows"))?;
                }
                for (stream, value) in &run.final_states {
                    if !outcome.failed.contains_key(stream) {
                        Self::save_state(&self.conn, &run.info, stream, value)?;
                    }
                }
                self.record_outcome(outcome)?;
                self.conn.execute_batch("COMMIT").map_err(sqlite_err("committing the run"))
            })();
            let staging: Vec<String> = run.targets.values().filter_map(|t| t.staging.clone()).collect();
            if let Err(e) = result {
                self.rollback_if_open();
                self.run = Some(run);
                return Err(e);
            }
            if let Err(e) = self.drop_tables(&staging) {
                tracing::warn!(error = %e, "Could not drop a staging table; the next run of this instance drops it");
            }
            self.lock = None;
            let mut stats = BTreeMap::new();
            for (stream, target) in &run.targets {
                let rows = self.count(&target.table, &instance)?;
                let received = outcome.records.get(stream).copied().unwrap_or(0);
                stats.insert(
                    stream.clone(),
                    LoadStats::after_commit(rows, target.rows_before, received, target.staging.is_some()),
                );
            }
            Ok(stats)
        })
    }

    async fn ensure_views(&mut self, connector: &str, views: &[ViewDescriptor]) -> Result<()> {
        may_wait(|| {
            let table = |stream: &str| format!("{}__{}", sql_name(connector), sql_name(stream));
            for view in views {
                let name = table(view.name);
                let mut missing = Vec::new();
                for stream in view.requires {
                    if self.table_status(&table(stream))? != (true, true) {
                        missing.push(*stream);
                    }
                }
                if !missing.is_empty() {
                    tracing::debug!(view = %name, missing = %missing.join(","), "View waits for its streams' tables");
                    continue;
                }
                let (exists, ours) = self.table_status(&name)?;
                if exists && !ours {
                    return Err(foreign_table(&name, &self.describe()));
                }
                let sql = view.render(view.sqlite, |s| ident(&table(s)));
                self.ensure_tx()?;
                let made = self
                    .conn
                    .execute_batch(&format!("DROP VIEW IF EXISTS {v}; CREATE VIEW {v} AS {sql};", v = ident(&name)))
                    .map_err(sqlite_err("creating a view"))
                    .and_then(|()| {
                        if ours {
                            return Ok(());
                        }
                        self.conn
                            .execute(
                                "INSERT INTO _tables (table_name, connector, stream, created_at) VALUES (?1, ?2, ?3, ?4)",
                                params![name, connector, view.name, now_rfc3339()],
                            )
                            .map(drop)
                            .map_err(sqlite_err("registering a view"))
                    });
                match made {
                    Ok(()) => self.commit_tx()?,
                    Err(e) => {
                        self.rollback_if_open();
                        return Err(e);
                    }
                }
            }
            Ok(())
        })
    }

    async fn abort(&mut self, outcome: &RunOutcome) -> Result<()> {
        may_wait(|| {
            self.rollback_if_open();
            if let Some(run) = self.run.take() {
                let staging: Vec<String> = run.targets.values().filter_map(|t| t.staging.clone()).collect();
                self.drop_tables(&staging)?;
            }
            let recorded = self.record_outcome(outcome);
            self.lock = None;
            recorded
        })
    }
}
