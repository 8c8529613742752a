//! What SQLite and PostgreSQL hubs share: one run state machine ([`SqlDestination`],
//! in [`run`]) over a [`Store`], the few things each database does its own way (its
//! SQL dialect, its driver, how rows travel and how a run holds its instance's lock).
//!
//! The state machine makes every decision the data contract promises
//! (docs/data-contract.md): which table and staging area each stream gets, when a
//! transaction commits, what a checkpoint commits with it, what the final commit
//! swaps and keeps, what an abort leaves, what `_runs` records. A store only carries
//! them out, so both databases keep the same promises by construction.

pub mod books;
pub mod postgres;
pub mod run;
pub mod shape;
pub mod sqlite;

use async_trait::async_trait;
use connector_api::Result;
use serde_json::Value;

use super::schema::{ColumnType, INSTANCE};
use super::{RunInfo, StreamPlan};

pub use run::SqlDestination;

/// A table (or view) of the hub: in a schema of its own (PostgreSQL keeps one per
/// connector) or in the database's single namespace (SQLite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The schema, if the database has them.
    pub schema: Option<String>,
    /// The table's name.
    pub name: String,
}

impl Table {
    /// The name quoted for SQL: `"schema"."name"` or `"name"`.
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", ident(schema), ident(&self.name)),
            None => ident(&self.name),
        }
    }
}

impl std::fmt::Display for Table {
    /// The name as people write it: `schema.name` or `name`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A batch of one stream's records, with the values their rows take from the run:
/// `_instance` first, `_extracted_at` and `_run_id` last (see [`StreamPlan::load_columns`]).
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// The stream's plan.
    pub plan: &'a StreamPlan,
    /// The records, in the order the connector sent them.
    pub records: &'a [Value],
    /// The run: its instance and id.
    pub run: &'a RunInfo,
    /// When the run read the records.
    pub extracted_at: &'a str,
}

/// One database under the run state machine: its dialect (the constants and the
/// functions without `self`) and its I/O. Every method does what the state machine
/// asked, in the transaction it opened (or in none); none decides when to commit or
/// what to keep. SQL handed to [`Store::exec`] and [`Store::query`] writes parameters
/// `$1`, `$2`…, all text.
#[async_trait]
pub trait Store: Send {
    /// How a stream's rows reach the database until they land in its table: a staging
    /// table, a prepared statement, a buffer being copied.
    type Load: Send + Sync;

    /// Whether the database lets one writer in at a time (SQLite): a run then commits
    /// whenever it may (every [`super::BATCH_ROWS`] staged rows, and while the source
    /// keeps it waiting), so runs of other instances take turns.
    const ONE_WRITER: bool;

    /// The schema of the bookkeeping tables (`_runs`, `_state`, `_tables`), if the
    /// database has schemas; `_tables` then lists tables with theirs.
    const BOOKS: Option<&'static str>;

    /// Opens a write transaction.
    const BEGIN: &'static str;

    /// Whether a table or view `$1.$2` exists (`$1` is empty without schemas).
    const EXISTS: &'static str;

    /// The columns of table `$1.$2`: name and declared type, in order.
    const COLUMNS: &'static str;

    /// What object `$1.$2` is, as one row if it exists: its kind as the database names
    /// it (`table` for a plain table only), and `1` when `_instance` is a column of its
    /// primary key (see [`shape`]).
    const SHAPE: &'static str;

    /// Where the data goes, for people; never holds a password.
    fn describe(&self) -> String;

    /// The shell command that runs a query given after it (`sqlite3 ./datahub.db`).
    fn shell(&self) -> String;

    /// The table of `stream` of `connector`, both already [`super::schema::sql_name`]s.
    fn table(connector: &str, stream: &str) -> Table;

    /// The declared type of a column type, as the database reports it back (so type
    /// changes are found by comparing names).
    fn type_name(ty: ColumnType) -> &'static str;

    /// The text parameter `param` as a value of type `ty`.
    fn cast(param: &str, ty: ColumnType) -> String;

    /// `column`, of type `ty`, as text: timestamps in RFC 3339.
    fn text(column: &str, ty: ColumnType) -> String;

    /// SQL that makes `view` show `sql`, replacing an older version of it.
    fn replace_view(view: &Table, sql: &str) -> String;

    /// The dialect's name, which connectors key their views' SQL by
    /// ([`connector_api::ViewDescriptor::dialects`]); a new SQL destination names its own and says so in
    /// its documentation.
    const DIALECT: &'static str;

    /// Runs `sql` with `args`; how many rows it changed.
    async fn exec(&mut self, sql: &str, args: &[&str]) -> Result<u64>;

    /// Runs `sql` with `args`; every row's values as text (NULL as `None`, booleans as
    /// `1` and `0`).
    async fn query(&mut self, sql: &str, args: &[&str]) -> Result<Vec<Vec<Option<String>>>>;

    /// Runs `sql`, statements without parameters.
    async fn execute(&mut self, sql: &str) -> Result<()>;

    /// Stops what a call the run gave up on (a signal dropped it while it waited) may
    /// still be doing on the server, so the rollback that follows can run and the
    /// locks go with it.
    async fn cancel(&mut self) {}

    /// Rolls the open transaction back (a failure is only logged: the database rolls
    /// back a transaction whose session ends, too).
    async fn rollback(&mut self) {
        if let Err(e) = self.execute("ROLLBACK").await {
            tracing::warn!(error = %e, "Rollback failed");
        }
    }

    /// Serialises table changes with other runs until the transaction ends (SQLite's
    /// write transaction already does).
    async fn lock_table_changes(&mut self) -> Result<()> {
        Ok(())
    }

    /// Takes `instance`'s lock; false when another run holds it.
    async fn try_lock(&mut self, instance: &str) -> Result<bool>;

    /// Lets go of the instance lock, if held.
    async fn unlock(&mut self);

    /// Checks, where that is cheap enough, that the database came through a run of the
    /// instance that ended uncleanly (SQLite's quick check); a damaged database is a
    /// destination error saying how to recover. A server database looks after itself.
    async fn check_sound(&mut self) -> Result<()> {
        Ok(())
    }

    /// Holding `instance`'s lock: removes what a killed run of it left behind.
    async fn drop_leftovers(&mut self, instance: &str) -> Result<()> {
        let _ = instance;
        Ok(())
    }

    /// Prepares loading `plan`'s rows into `table`, the run's `n`th stream, holding
    /// the instance's lock (its columns: [`column_defs`]).
    async fn prepare_load(&mut self, plan: &StreamPlan, table: &Table, n: usize) -> Result<Self::Load>;

    /// Writes `batch`, in order; a store that sends rows in batches of its own may keep
    /// them until [`Store::flush`].
    async fn write(&mut self, load: &mut Self::Load, batch: Batch<'_>) -> Result<()>;

    /// Sends what `load` keeps; it may still be on its way (see [`Store::settle`]).
    async fn flush(&mut self, load: &mut Self::Load) -> Result<()> {
        let _ = load;
        Ok(())
    }

    /// Waits until everything sent is written, and reports whether it was.
    async fn settle(&mut self) -> Result<()> {
        Ok(())
    }

    /// The table holding `load`'s staged rows, quoted, if it stages them.
    fn staging(load: &Self::Load) -> Option<&str>;

    /// Drops what the run's loads left (a failure is only logged: the next run, or
    /// the session's end, removes it).
    async fn drop_loads(&mut self, loads: Vec<&Self::Load>);
}

/// `sql` for an error message: its start, on one line.
pub(crate) fn statement(sql: &str) -> String {
    let line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
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

/// The column definitions of `plan`'s table in the order rows are loaded
/// ([`StreamPlan::load_columns`]), typed by `type_name`.
pub fn column_defs(plan: &StreamPlan, type_name: fn(ColumnType) -> &'static str) -> Vec<String> {
    let (text, timestamp) = (type_name(ColumnType::Text), type_name(ColumnType::Timestamp));
    let mut defs = vec![format!("{} {text} NOT NULL", ident(INSTANCE))];
    defs.extend(plan.columns.iter().map(|c| format!("{} {}", ident(&c.name), type_name(c.ty))));
    defs.push(format!("\"_extracted_at\" {timestamp} NOT NULL"));
    defs.push(format!("\"_run_id\" {text} NOT NULL"));
    defs
}

/// `ON CONFLICT (key) DO UPDATE SET …`: how an incremental row replaces the row with
/// its key (both dialects spell it the same).
pub fn upsert_clause(plan: &StreamPlan) -> String {
    let key = plan.table_key();
    let updates: Vec<String> = plan
        .load_columns()
        .iter()
        .filter(|n| !key.iter().any(|k| k == *n))
        .map(|n| format!("{c} = EXCLUDED.{c}", c = ident(n)))
        .collect();
    format!("ON CONFLICT ({}) DO UPDATE SET {}", ident_list(&key), updates.join(", "))
}
