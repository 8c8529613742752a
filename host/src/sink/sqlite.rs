//! The default destination: one SQLite file (rusqlite, bundled SQLite).
//!
//! Tables are `<connector>__<stream>` (`qlik_sense__users`). Full-refresh streams load
//! into `_staging__<table>` and are renamed over their table in the run's final
//! transaction; incremental streams upsert into their table and commit each checkpoint
//! (in `_state`) in the same transaction as the rows before it. WAL mode lets readers
//! query the old snapshot while a run writes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use async_trait::async_trait;
use connector_api::{Error, ErrorKind, Result, State, SyncMode};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql, params};
use serde_json::Value;

use super::schema::{Cell, ColumnType};
use super::{
    BATCH_ROWS, CommitPolicy, Destination, LoadStats, RunInfo, RunOutcome, RunRecord, StreamPlan, dest_error,
    now_rfc3339, unselected_stream,
};

/// An SQLite database file.
pub struct SqliteDestination {
    path: String,
    conn: Connection,
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
            Cell::Json(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
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

fn sqlite_err(what: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| dest_error(format!("SQLite: {what}"), e)
}

impl SqliteDestination {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &str) -> Result<Self> {
        if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| dest_error(format!("cannot create directory {}", parent.display()), e))?;
        }
        let conn = Connection::open(path).map_err(|e| {
            Error::new(ErrorKind::Config, format!("cannot open SQLite database {path}: {e}"))
                .with_context("field", "dest")
        })?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 10000;
             PRAGMA cache_size = -32000;
             PRAGMA wal_autocheckpoint = 10000;
             CREATE TABLE IF NOT EXISTS _runs (
                 run_id TEXT PRIMARY KEY,
                 connector TEXT NOT NULL,
                 instance TEXT NOT NULL,
                 config_fingerprint TEXT NOT NULL,
                 started_at TIMESTAMP NOT NULL,
                 finished_at TIMESTAMP,
                 status TEXT NOT NULL,
                 records JSON NOT NULL DEFAULT '{}',
                 error TEXT
             );
             CREATE TABLE IF NOT EXISTS _state (
                 instance TEXT NOT NULL,
                 stream TEXT NOT NULL,
                 value JSON NOT NULL,
                 run_id TEXT,
                 updated_at TIMESTAMP NOT NULL,
                 PRIMARY KEY (instance, stream)
             );",
        )
        .map_err(sqlite_err("preparing bookkeeping tables"))?;
        Ok(SqliteDestination { path: path.to_string(), conn, run: None })
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

    fn count(&self, table: &str) -> Result<u64> {
        self.conn
            .query_row(&format!("SELECT count(*) FROM {}", ident(table)), [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(sqlite_err("counting rows"))
    }

    fn prepare_target(&self, plan: &StreamPlan) -> Result<Target> {
        let table = plan.flat_table();
        let existing = self.existing_columns(&table)?;
        let mut changed = Vec::new();
        for col in &plan.columns {
            if let Some((_, declared)) = existing.iter().find(|(n, _)| *n == col.name)
                && !declared.eq_ignore_ascii_case(sql_type(col.ty))
            {
                changed.push(format!("{} was {declared}, is now {}", col.name, sql_type(col.ty)));
            }
        }
        if !changed.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                format!("table {table}: column type changed: {}", changed.join("; ")),
            )
            .with_context("stream", plan.stream.clone())
            .with_hint(format!(
                "The connector's schema changed. Check what reads {table}, then drop the table (or rename it) and rerun to reload it"
            )));
        }
        let mut defs: Vec<String> =
            plan.columns.iter().map(|c| format!("{} {}", ident(&c.name), sql_type(c.ty))).collect();
        defs.push("\"_extracted_at\" TIMESTAMP NOT NULL".into());
        defs.push("\"_run_id\" TEXT NOT NULL".into());
        // A column the connector no longer sends is kept (NULL in new rows), never dropped.
        for (name, declared) in &existing {
            if !plan.columns.iter().any(|c| c.name == *name) && name != "_extracted_at" && name != "_run_id" {
                tracing::info!(table = %table, column = %name, "Keeping a column the connector no longer sends");
                defs.push(format!("{} {declared}", ident(name)));
            }
        }
        if !plan.primary_key.is_empty() {
            let pk: Vec<String> = plan.primary_key.iter().map(|k| ident(k)).collect();
            defs.push(format!("PRIMARY KEY ({})", pk.join(", ")));
        }
        let rows_before = if existing.is_empty() { 0 } else { self.count(&table)? };
        let staging = match plan.sync_mode {
            SyncMode::FullRefresh => {
                let staging = format!("_staging__{table}");
                self.conn
                    .execute_batch(&format!(
                        "DROP TABLE IF EXISTS {s}; CREATE TABLE {s} ({});",
                        defs.join(", "),
                        s = ident(&staging)
                    ))
                    .map_err(sqlite_err("creating staging table"))?;
                Some(staging)
            }
            _ => {
                if existing.is_empty() {
                    self.conn
                        .execute_batch(&format!("CREATE TABLE {} ({});", ident(&table), defs.join(", ")))
                        .map_err(sqlite_err("creating table"))?;
                } else {
                    let mut add: Vec<(String, &str)> = plan
                        .columns
                        .iter()
                        .filter(|c| !existing.iter().any(|(n, _)| *n == c.name))
                        .map(|c| (c.name.clone(), sql_type(c.ty)))
                        .collect();
                    for meta in ["_extracted_at", "_run_id"] {
                        if !existing.iter().any(|(n, _)| n == meta) {
                            add.push((
                                meta.to_string(),
                                if meta == "_run_id" { "TEXT" } else { "TIMESTAMP" },
                            ));
                        }
                    }
                    for (name, ty) in add {
                        tracing::info!(table = %table, column = %name, "Adding new column");
                        self.conn
                            .execute_batch(&format!(
                                "ALTER TABLE {} ADD COLUMN {} {ty};",
                                ident(&table),
                                ident(&name)
                            ))
                            .map_err(sqlite_err("adding column"))?;
                    }
                }
                None
            }
        };
        let write_table = staging.as_deref().unwrap_or(&table);
        let mut names: Vec<String> = plan.columns.iter().map(|c| ident(&c.name)).collect();
        names.push("\"_extracted_at\"".into());
        names.push("\"_run_id\"".into());
        let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let mut insert_sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            ident(write_table),
            names.join(", "),
            placeholders.join(", ")
        );
        if staging.is_none() && !plan.primary_key.is_empty() {
            let pk: Vec<String> = plan.primary_key.iter().map(|k| ident(k)).collect();
            let updates: Vec<String> =
                names.iter().filter(|n| !pk.contains(n)).map(|n| format!("{n} = excluded.{n}")).collect();
            insert_sql.push_str(&format!(
                " ON CONFLICT ({}) DO UPDATE SET {}",
                pk.join(", "),
                updates.join(", ")
            ));
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

    fn commit_and_begin(&self) -> Result<()> {
        self.conn.execute_batch("COMMIT; BEGIN IMMEDIATE;").map_err(sqlite_err("committing a batch"))
    }

    fn rollback_if_open(&self) {
        if !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(error = %e, "SQLite rollback failed");
        }
    }
}

#[async_trait]
impl Destination for SqliteDestination {
    fn describe(&self) -> String {
        format!("SQLite database {}", self.path)
    }

    fn sample_query(&self, plan: &StreamPlan) -> String {
        format!("sqlite3 {} 'select count(*) from {}'", self.path, plan.flat_table())
    }

    async fn load_state(&mut self, instance: &str) -> Result<State> {
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
            let value =
                serde_json::from_str(&value).map_err(|e| dest_error("SQLite: corrupt _state value", e))?;
            state.set(stream, value);
        }
        Ok(state)
    }

    async fn reset_state(&mut self, instance: &str, streams: Option<&[String]>) -> Result<u64> {
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
    }

    async fn recent_runs(&mut self, limit: usize) -> Result<Vec<RunRecord>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT run_id, connector, instance, config_fingerprint, started_at, finished_at, status, records, error
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
                })
            })
            .map_err(sqlite_err("reading runs"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sqlite_err("reading runs"))
    }

    async fn begin(&mut self, run: &RunInfo, plans: &[StreamPlan]) -> Result<()> {
        self.conn
            .execute(
                "UPDATE _runs SET status = 'interrupted' WHERE instance = ?1 AND status = 'running'",
                [&run.instance],
            )
            .map_err(sqlite_err("recording the run"))?;
        self.conn
            .execute(
                "INSERT INTO _runs (run_id, connector, instance, config_fingerprint, started_at, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running')",
                params![run.run_id, run.connector, run.instance, run.config_fingerprint, run.started_at],
            )
            .map_err(sqlite_err("recording the run"))?;
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(sqlite_err("starting a transaction"))?;
        let mut targets = HashMap::new();
        for plan in plans {
            match self.prepare_target(plan) {
                Ok(t) => {
                    targets.insert(plan.stream.clone(), t);
                }
                Err(e) => {
                    self.rollback_if_open();
                    return Err(e);
                }
            }
        }
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
    }

    async fn write(&mut self, stream: &str, records: Vec<Value>) -> Result<()> {
        let run = self.run.as_mut().ok_or_else(|| Error::internal("write outside a run"))?;
        let Some(target) = run.targets.get(stream) else {
            return Err(unselected_stream("record", stream));
        };
        let mut stmt =
            self.conn.prepare_cached(&target.insert_sql).map_err(sqlite_err("preparing insert"))?;
        let mut cells = Vec::with_capacity(target.plan.columns.len() + 2);
        for record in &records {
            cells.clear();
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
            self.commit_and_begin()?;
        }
        Ok(())
    }

    async fn checkpoint(&mut self, stream: &str, value: Value) -> Result<()> {
        let run = self.run.as_mut().ok_or_else(|| Error::internal("checkpoint outside a run"))?;
        let Some(target) = run.targets.get(stream) else {
            return Err(unselected_stream("checkpoint", stream));
        };
        if target.staging.is_some() {
            run.final_states.insert(stream.to_string(), value);
            return Ok(());
        }
        Self::save_state(&self.conn, &run.info, stream, &value)?;
        if !run.policy.due() {
            return Ok(());
        }
        run.pending_incremental = false;
        run.rows_since_commit = 0;
        run.policy.committed();
        run.extracted_at = now_rfc3339();
        self.commit_and_begin()
    }

    async fn commit(&mut self, outcome: &RunOutcome) -> Result<BTreeMap<String, LoadStats>> {
        let run = self.run.take().ok_or_else(|| Error::internal("commit outside a run"))?;
        let result = (|| -> Result<()> {
            for target in run.targets.values() {
                if let Some(staging) = &target.staging {
                    self.conn
                        .execute_batch(&format!(
                            "DROP TABLE IF EXISTS {t}; ALTER TABLE {s} RENAME TO {t};",
                            t = ident(&target.table),
                            s = ident(staging)
                        ))
                        .map_err(sqlite_err("swapping in the new snapshot"))?;
                }
            }
            for (stream, value) in &run.final_states {
                Self::save_state(&self.conn, &run.info, stream, value)?;
            }
            self.conn
                .execute(
                    "UPDATE _runs SET status = 'succeeded', finished_at = ?2, records = ?3, error = NULL WHERE run_id = ?1",
                    params![run.info.run_id, outcome.finished_at, serde_json::to_string(&outcome.records).unwrap_or_default()],
                )
                .map_err(sqlite_err("recording the run"))?;
            self.conn.execute_batch("COMMIT").map_err(sqlite_err("committing the run"))
        })();
        if let Err(e) = result {
            self.rollback_if_open();
            return Err(e);
        }
        let mut stats = BTreeMap::new();
        for (stream, target) in &run.targets {
            let rows = self.count(&target.table)?;
            let received = outcome.records.get(stream).copied().unwrap_or(0);
            stats.insert(
                stream.clone(),
                LoadStats::after_commit(rows, target.rows_before, received, target.staging.is_some()),
            );
        }
        Ok(stats)
    }

    async fn abort(&mut self, outcome: &RunOutcome) -> Result<()> {
        self.rollback_if_open();
        let run = self.run.take();
        if let Some(run) = &run {
            for target in run.targets.values() {
                if let Some(staging) = &target.staging {
                    self.conn
                        .execute_batch(&format!("DROP TABLE IF EXISTS {}", ident(staging)))
                        .map_err(sqlite_err("dropping a staging table"))?;
                }
            }
        }
        self.conn
                .execute(
                    "UPDATE _runs SET status = 'failed', finished_at = ?2, records = ?3, error = ?4 WHERE run_id = ?1",
                    params![
                        outcome.run_id,
                        outcome.finished_at,
                        serde_json::to_string(&outcome.records).unwrap_or_default(),
                        outcome.error
                    ],
                )
                .map_err(sqlite_err("recording the run"))?;
        Ok(())
    }
}
