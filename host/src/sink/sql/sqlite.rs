//! The default destination: one SQLite file (rusqlite, bundled SQLite).
//!
//! Tables are `<connector>__<stream>` (`qlik_sense__users`), keyed by `_instance` and
//! the stream's primary key, and listed in `_tables`. Full-refresh streams load into a
//! staging table of their instance and replace the instance's rows (`DELETE` and
//! `INSERT … SELECT`) in the run's final transaction; incremental streams upsert into
//! their table and commit each checkpoint (in `_state`) in the same transaction as the
//! rows before it. Write transactions are short (a batch), so runs of other instances
//! can load the same file at the same time; WAL mode lets readers query throughout.
//! The run itself is [`SqlDestination`]'s; this module is SQLite's [`Store`].

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use connector_api::{Error, ErrorKind, Result, SyncMode};
use futures::future::BoxFuture;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};

use super::{
    Batch, SqlDestination, Store, Table, books, column_defs, ident, ident_list, statement, upsert_clause,
};
use crate::sink::lock::{InstanceLock, instance_tag};
use crate::sink::schema::{Cell, ColumnType};
use crate::sink::{Destination, Registration, Spec, StreamPlan, dest_error, must_exist};

/// SQLite's page cache, in KiB. It fills as a hub grows and counts in the host's memory:
/// at 32 MiB a 20,000-user tenant took the run past 100 MB, and 8 MiB loads as fast
/// (appends to B-trees touch few pages; the WAL absorbs the writes).
const CACHE_KIB: u32 = 8 * 1024;

/// How long a write waits for another run's write transaction to finish.
const BUSY_TIMEOUT_MS: u32 = 60_000;

/// An SQLite database file as a hub.
pub type SqliteDestination = SqlDestination<Sqlite>;

/// An SQLite database file: the [`Store`] of [`SqliteDestination`].
pub struct Sqlite {
    path: String,
    conn: Connection,
    /// The instance lock this connection holds, and its instance.
    lock: Option<(InstanceLock, String)>,
}

/// How a stream's rows are inserted: into its staging table (full refresh) or its
/// table (incremental, upserted), by one statement prepared once and reused per batch.
pub struct SqliteLoad {
    staging: Option<String>,
    insert_sql: String,
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

/// How many of its findings a quick check reports.
const FINDINGS: usize = 3;

/// What `PRAGMA quick_check` finds wrong with the database `conn` holds; `None` when it
/// finds it sound. It reads every page, which on a large hub costs more than a small
/// tenant's whole run (docs/data-contract.md gives the figures), so it runs only where a
/// run has reason to doubt the file: after a run of the instance ended uncleanly, and when
/// SQLite reported an error.
fn damage(conn: &Connection) -> Option<String> {
    let sql = format!("PRAGMA quick_check({FINDINGS})");
    let found: rusqlite::Result<Vec<String>> =
        conn.prepare(&sql).and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect());
    match found {
        Ok(findings) if findings == ["ok"] => None,
        Ok(findings) => Some(named_trees(conn, &findings)),
        Err(e) => Some(e.to_string()),
    }
}

/// Quick-check `findings` on one line, each B-tree named by its table or index
/// (`Tree 8 page 26: …` becomes `qlik_sense__users page 26: …`) where the schema
/// still reads.
fn named_trees(conn: &Connection, findings: &[String]) -> String {
    let roots: Vec<(i64, String)> = conn
        .prepare("SELECT rootpage, name FROM sqlite_master WHERE rootpage > 0")
        .and_then(|mut stmt| stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect())
        .unwrap_or_default();
    let name = |line: &str| {
        let named = roots.iter().find_map(|(root, name)| {
            line.strip_prefix(&format!("Tree {root} ")).map(|rest| format!("{name} {rest}"))
        });
        named.unwrap_or_else(|| line.to_string())
    };
    let lines = findings.iter().flat_map(|f| f.lines()).filter(|l| !l.starts_with("***"));
    lines.map(name).collect::<Vec<_>>().join("; ")
}

/// The error for the damaged database at `path`, with what was found.
fn damaged(path: &str, finding: &str) -> Error {
    Error::new(
        ErrorKind::Destination,
        format!("SQLite database {path} is damaged ({finding}); connector-host does not write into a damaged hub"),
    )
    .with_hint(format!(
        "Stop every run that loads it, then recover what SQLite can still read into a new file: `sqlite3 {path} .recover | sqlite3 {path}.recovered`, check that with `sqlite3 {path}.recovered 'PRAGMA integrity_check'` and move it in place of {path} (removing {path}-wal and {path}-shm); or restore {path} from a backup. Then rerun each tenant with --full-refresh"
    ))
}

/// The error for a file at `path` that SQLite cannot read as a database.
fn not_a_database(path: &str, e: &rusqlite::Error) -> Error {
    Error::new(ErrorKind::Destination, format!("{path} is not an SQLite database ({e})")).with_hint(format!(
        "Check --dest (or `destination` in the config file): sqlite:PATH names the hub's SQLite file, which the first run creates. If {path} was a hub, its first page is damaged: restore it from a backup"
    ))
}

/// A failure of `sql` on `conn`, the database at `path`, as a destination error naming
/// the statement. A file SQLite calls damaged or not a database is named as such; after
/// any other error but a wait for the write lock, a quick check tells whether the file
/// is damaged, and the error then says so and how to recover.
fn failure(conn: &Connection, path: &str, sql: &str, e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt) => return damaged(path, &e.to_string()),
        Some(ErrorCode::NotADatabase) => return not_a_database(path, &e),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) | None => {}
        Some(_) => {
            if let Some(finding) = damage(conn) {
                return damaged(path, &finding);
            }
        }
    }
    dest_error(format!("SQLite: {}", statement(sql)), e)
}

/// Runs `f`, which may wait for another connection's write lock in SQLite's busy handler:
/// a blocking sleep of up to [`BUSY_TIMEOUT_MS`]. Many tenants of one `run` share a few
/// runtime threads, and the run holding the lock needs one of them to commit it; on a
/// multi-threaded runtime this thread is handed over first (`block_in_place`), so a
/// waiting tenant never starves the tenant it waits for.
fn may_wait<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The prefix of `instance`'s staging tables: a run holding the instance's lock owns
/// every table with it, so leftovers of a killed run can be dropped safely.
fn staging_prefix(instance: &str) -> String {
    format!("_stg_{}__", instance_tag(instance))
}

/// `sqlite:PATH`, the default destination.
pub const DESTINATION: Registration = Registration {
    schemes: &["sqlite:"],
    form: "sqlite:PATH",
    description: "An SQLite database file, created by the first run",
    example: "sqlite:./datahub.db",
    open,
    open_existing: |spec| {
        Box::pin(async move {
            must_exist(spec.path())?;
            open(spec).await
        })
    },
};

fn open(spec: Spec<'_>) -> BoxFuture<'_, Result<Box<dyn Destination>>> {
    Box::pin(async move {
        if spec.path().is_empty() {
            return Err(Error::config("dest", format!("sqlite: needs a file, e.g. {}", DESTINATION.example)));
        }
        Ok(Box::new(SqliteDestination::open(spec.path()).await?) as Box<dyn Destination>)
    })
}

impl SqliteDestination {
    /// Opens (creating if needed) the database at `path`.
    pub async fn open(path: &str) -> Result<Self> {
        Sqlite::open(path).await.map(SqlDestination::new)
    }
}

impl Sqlite {
    async fn open(path: &str) -> Result<Self> {
        if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| dest_error(format!("cannot create directory {}", parent.display()), e))?;
        }
        let conn = Connection::open(path)
            .map_err(|e| dest_error(format!("cannot open SQLite database {path}"), e))?;
        let pragmas = format!(
            "PRAGMA busy_timeout = {BUSY_TIMEOUT_MS};
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA cache_size = -{CACHE_KIB};
             PRAGMA wal_autocheckpoint = 10000;"
        );
        may_wait(|| conn.execute_batch(&pragmas)).map_err(|e| failure(&conn, path, &pragmas, e))?;
        let mut store = Sqlite { path: path.to_string(), conn, lock: None };
        books::prepare(&mut store).await?;
        Ok(store)
    }

    /// Runs statements without parameters, which may wait for the write lock.
    fn batch(&self, sql: &str) -> Result<()> {
        may_wait(|| self.conn.execute_batch(sql)).map_err(|e| self.failed(sql, e))
    }

    /// A failure of `sql` as an error (see [`failure`]).
    fn failed(&self, sql: &str, e: rusqlite::Error) -> Error {
        failure(&self.conn, &self.path, sql, e)
    }
}

#[async_trait]
impl Store for Sqlite {
    type Load = SqliteLoad;
    const ONE_WRITER: bool = true;
    const BOOKS: Option<&'static str> = None;
    const BEGIN: &'static str = "BEGIN IMMEDIATE";
    const EXISTS: &'static str =
        "EXISTS (SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') AND name = $2)";
    const COLUMNS: &'static str = "SELECT name, type FROM pragma_table_info($2)";
    const SHAPE: &'static str =
        "SELECT CASE WHEN sql LIKE 'CREATE VIRTUAL%' THEN 'virtual table' ELSE type END,
        EXISTS (SELECT 1 FROM pragma_table_info($2) WHERE name = '_instance' AND pk > 0)
        FROM sqlite_master WHERE name = $2 AND type IN ('table', 'view')";

    fn describe(&self) -> String {
        format!("SQLite database {}", self.path)
    }

    fn shell(&self) -> String {
        format!("sqlite3 {}", self.path)
    }

    fn table(connector: &str, stream: &str) -> Table {
        Table { schema: None, name: format!("{connector}__{stream}") }
    }

    fn type_name(ty: ColumnType) -> &'static str {
        match ty {
            ColumnType::Text => "TEXT",
            ColumnType::Integer => "INTEGER",
            ColumnType::Real => "REAL",
            ColumnType::Boolean => "BOOLEAN",
            ColumnType::Timestamp => "TIMESTAMP",
            ColumnType::Json => "JSON",
        }
    }

    fn cast(param: &str, _: ColumnType) -> String {
        param.to_string()
    }

    fn text(column: &str, _: ColumnType) -> String {
        column.to_string()
    }

    fn replace_view(view: &Table, sql: &str) -> String {
        format!("DROP VIEW IF EXISTS {v}; CREATE VIEW {v} AS {sql}", v = view.quoted())
    }

    const DIALECT: &'static str = "sqlite";

    // `$n` is SQLite's `?n`; the SQL handed here has no other `$` (its names are
    // `sql_name`s and its values parameters).
    async fn exec(&mut self, sql: &str, args: &[&str]) -> Result<u64> {
        let run = || self.conn.execute(&sql.replace('$', "?"), rusqlite::params_from_iter(args));
        may_wait(run).map(|n| n as u64).map_err(|e| self.failed(sql, e))
    }

    async fn query(&mut self, sql: &str, args: &[&str]) -> Result<Vec<Vec<Option<String>>>> {
        let text = |v: ValueRef<'_>| match v {
            ValueRef::Null => None,
            ValueRef::Integer(i) => Some(i.to_string()),
            ValueRef::Real(f) => Some(f.to_string()),
            ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
        };
        let mut stmt = self.conn.prepare(&sql.replace('$', "?")).map_err(|e| self.failed(sql, e))?;
        let width = stmt.column_count();
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            (0..width).map(|i| Ok(text(r.get_ref(i)?))).collect()
        });
        rows.and_then(Iterator::collect).map_err(|e| self.failed(sql, e))
    }

    async fn execute(&mut self, sql: &str) -> Result<()> {
        self.batch(sql)
    }

    async fn try_lock(&mut self, instance: &str) -> Result<bool> {
        let lock = InstanceLock::try_acquire(&PathBuf::from(format!("{}-locks", self.path)), instance)?;
        self.lock = lock.map(|lock| (lock, instance.to_string()));
        Ok(self.lock.is_some())
    }

    async fn unlock(&mut self) {
        self.lock = None;
    }

    async fn check_sound(&mut self) -> Result<()> {
        match may_wait(|| damage(&self.conn)) {
            Some(finding) => Err(damaged(&self.path, &finding)),
            None => Ok(()),
        }
    }

    async fn drop_leftovers(&mut self, instance: &str) -> Result<()> {
        let sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, length($1)) = $1";
        let leftovers = self.query(sql, &[&staging_prefix(instance)]).await?;
        drop_tables(self, leftovers.into_iter().filter_map(|mut r| Some(ident(&r[0].take()?))).collect())
    }

    async fn prepare_load(&mut self, plan: &StreamPlan, table: &Table, _: usize) -> Result<SqliteLoad> {
        let instance = self.lock.as_ref().map(|(_, instance)| instance.as_str()).unwrap_or_default();
        let staging = (plan.sync_mode == SyncMode::FullRefresh)
            .then(|| ident(&format!("{}{}", staging_prefix(instance), table.name)));
        if let Some(staging) = &staging {
            let (columns, key) =
                (column_defs(plan, Self::type_name).join(", "), ident_list(&plan.table_key()));
            self.batch(&format!(
                "DROP TABLE IF EXISTS {staging}; CREATE TABLE {staging} ({columns}, PRIMARY KEY ({key}));"
            ))?;
        }
        let names = plan.load_columns();
        let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let into = staging.clone().unwrap_or_else(|| table.quoted());
        let insert =
            format!("INSERT INTO {into} ({}) VALUES ({})", ident_list(&names), placeholders.join(", "));
        let insert_sql = if staging.is_some() { insert } else { format!("{insert} {}", upsert_clause(plan)) };
        Ok(SqliteLoad { staging, insert_sql })
    }

    async fn write(&mut self, load: &mut SqliteLoad, batch: Batch<'_>) -> Result<()> {
        let plan = batch.plan;
        may_wait(|| {
            let mut stmt =
                self.conn.prepare_cached(&load.insert_sql).map_err(|e| self.failed(&load.insert_sql, e))?;
            let mut cells = Vec::with_capacity(plan.columns.len() + 3);
            for record in batch.records {
                cells.clear();
                cells.push(Cell::Text(&batch.run.instance));
                for col in &plan.columns {
                    cells.push(col.cell_of(&plan.stream, record)?);
                }
                cells.push(Cell::Text(batch.extracted_at));
                cells.push(Cell::Text(&batch.run.run_id));
                stmt.execute(rusqlite::params_from_iter(cells.iter()))
                    .map_err(|e| self.failed(&load.insert_sql, e))?;
            }
            Ok(())
        })
    }

    fn staging(load: &SqliteLoad) -> Option<&str> {
        load.staging.as_deref()
    }

    async fn drop_loads(&mut self, loads: Vec<&SqliteLoad>) {
        let staging = loads.into_iter().filter_map(|l| l.staging.clone()).collect();
        if let Err(e) = drop_tables(self, staging) {
            tracing::warn!(error = %e, "Could not drop a staging table; the next run of this instance drops it");
        }
    }
}

/// Drops the tables `names` (quoted).
fn drop_tables(store: &Sqlite, names: Vec<String>) -> Result<()> {
    names.iter().try_for_each(|name| store.batch(&format!("DROP TABLE IF EXISTS {name}")))
}
