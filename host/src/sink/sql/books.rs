//! The hub's own tables, written once for every dialect: `_runs` (every run and how it
//! ended), `_state` (checkpoints per instance and stream) and `_tables` (the tables and
//! views connector-host made, so it never replaces someone else's).

use std::collections::BTreeMap;

use connector_api::{Result, State};
use serde_json::Value;

use super::{Store, Table, ident};
use crate::sink::schema::{ColumnType, INSTANCE};
use crate::sink::{RunInfo, RunOutcome, RunRecord, RunStatus, dest_error, now_rfc3339};

/// The bookkeeping table `name`, in the store's bookkeeping schema if it has one.
fn book_table<S: Store>(name: &str) -> Table {
    Table { schema: S::BOOKS.map(str::to_string), name: name.to_string() }
}

/// [`book_table`] quoted.
fn book<S: Store>(name: &str) -> String {
    book_table::<S>(name).quoted()
}

/// Columns `_runs` gained after it was first made, with their definitions (the JSON type
/// goes in `{json}`), in the order they came: hubs made before them get them in place.
/// `warnings` is nullable: runs recorded before it, and runs without warnings, have none.
const ADDED_RUN_COLUMNS: [(&str, &str); 2] =
    [("failed", "{json} NOT NULL DEFAULT '{}'"), ("warnings", "{json}")];

/// Creates the bookkeeping tables a new hub lacks, and the `_runs` columns hubs from
/// before them lack ([`ADDED_RUN_COLUMNS`]). A hub that has them is only read: creating
/// takes the write lock, which a run of another instance may hold for a moment. The
/// timestamps have defaults because hosts of older versions, loading the same hub, leave
/// them out.
pub async fn prepare<S: Store>(store: &mut S) -> Result<()> {
    let added = ADDED_RUN_COLUMNS.map(|(column, _)| ("_runs", column));
    if has_columns(store, &[("_state", "value"), ("_tables", "table_name")]).await?
        && has_columns(store, &added).await?
    {
        return Ok(());
    }
    let ty = S::type_name;
    let (text, ts, json) = (ty(ColumnType::Text), ty(ColumnType::Timestamp), ty(ColumnType::Json));
    let (schema_col, schema_key) = match S::BOOKS {
        Some(_) => (format!("schema_name {text} NOT NULL,"), "schema_name, "),
        None => (String::new(), ""),
    };
    let schema = S::BOOKS.map(|s| format!("CREATE SCHEMA IF NOT EXISTS {};", ident(s))).unwrap_or_default();
    let sql = format!(
        "{schema}
         CREATE TABLE IF NOT EXISTS {runs} (run_id {text} PRIMARY KEY, connector {text} NOT NULL,
             instance {text} NOT NULL, config_fingerprint {text} NOT NULL, started_at {ts} NOT NULL,
             finished_at {ts}, status {text} NOT NULL, records {json} NOT NULL DEFAULT '{{}}', error {text});
         CREATE TABLE IF NOT EXISTS {state} (instance {text} NOT NULL, stream {text} NOT NULL,
             value {json} NOT NULL, run_id {text}, updated_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP,
             PRIMARY KEY (instance, stream));
         CREATE TABLE IF NOT EXISTS {tables} ({schema_col} table_name {text} NOT NULL, connector {text} NOT NULL,
             stream {text} NOT NULL, created_at {ts} NOT NULL DEFAULT CURRENT_TIMESTAMP, created_by_run {text},
             PRIMARY KEY ({schema_key}table_name));",
        runs = book::<S>("_runs"),
        state = book::<S>("_state"),
        tables = book::<S>("_tables"),
    );
    store.execute(S::BEGIN).await?;
    let made = async {
        store.lock_table_changes().await?;
        store.execute(&sql).await?;
        for (column, definition) in ADDED_RUN_COLUMNS {
            if !has_columns(store, &[("_runs", column)]).await? {
                let definition = definition.replace("{json}", json);
                let alter = format!("ALTER TABLE {} ADD COLUMN {column} {definition}", book::<S>("_runs"));
                store.execute(&alter).await?;
            }
        }
        store.execute("COMMIT").await
    }
    .await;
    if made.is_err() {
        store.rollback().await;
    }
    made
}

/// Whether every bookkeeping table of `wanted` has its column.
async fn has_columns<S: Store>(store: &mut S, wanted: &[(&str, &str)]) -> Result<bool> {
    for (table, column) in wanted {
        if !existing_columns(store, &book_table::<S>(table)).await?.iter().any(|(name, _)| name == column) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `table`'s columns: name and declared type.
pub async fn existing_columns<S: Store>(store: &mut S, table: &Table) -> Result<Vec<(String, String)>> {
    let rows = store.query(S::COLUMNS, &[table.schema.as_deref().unwrap_or_default(), &table.name]).await?;
    Ok(rows
        .into_iter()
        .map(|mut r| (r[0].take().unwrap_or_default(), r[1].take().unwrap_or_default()))
        .collect())
}

/// Whether a table or view `table` exists, and whether `_tables` lists it.
pub async fn table_status<S: Store>(store: &mut S, table: &Table) -> Result<(bool, bool)> {
    let schema = if S::BOOKS.is_some() { "schema_name = $1 AND " } else { "" };
    let sql = format!(
        "SELECT {}, EXISTS (SELECT 1 FROM {} WHERE {schema}table_name = $2)",
        S::EXISTS,
        book::<S>("_tables")
    );
    let rows = store.query(&sql, &[table.schema.as_deref().unwrap_or_default(), &table.name]).await?;
    let yes = |i: usize| rows.first().and_then(|r| r[i].as_deref()) == Some("1");
    Ok((yes(0), yes(1)))
}

/// Lists `table` in `_tables` as `connector`'s, for `stream`, made by `run_id` if a run
/// made it; a listing left by a table an operator dropped is replaced.
pub async fn register<S: Store>(
    store: &mut S,
    table: &Table,
    connector: &str,
    stream: &str,
    run_id: Option<&str>,
) -> Result<()> {
    let (schema_col, schema_arg) = if S::BOOKS.is_some() { ("schema_name, ", "$1, ") } else { ("", "") };
    let sql = format!(
        "INSERT INTO {} ({schema_col}table_name, connector, stream, created_at, created_by_run)
         VALUES ({schema_arg}$2, $3, $4, {}, NULLIF($6, ''))
         ON CONFLICT ({schema_col}table_name) DO UPDATE SET connector = EXCLUDED.connector,
             stream = EXCLUDED.stream, created_at = EXCLUDED.created_at, created_by_run = EXCLUDED.created_by_run",
        book::<S>("_tables"),
        S::cast("$5", ColumnType::Timestamp)
    );
    let schema = table.schema.as_deref().unwrap_or_default();
    let args = [schema, &table.name, connector, stream, &now_rfc3339(), run_id.unwrap_or_default()];
    store.exec(&sql, &args).await.map(drop)
}

/// Rows of `instance` in `table`.
pub async fn count<S: Store>(store: &mut S, table: &Table, instance: &str) -> Result<u64> {
    let sql = format!("SELECT count(*) FROM {} WHERE {} = $1", table.quoted(), ident(INSTANCE));
    let rows = store.query(&sql, &[instance]).await?;
    Ok(rows.first().and_then(|r| r[0].as_deref()?.parse().ok()).unwrap_or(0))
}

/// The last committed checkpoint of every stream of `instance`.
pub async fn load_state<S: Store>(store: &mut S, instance: &str) -> Result<State> {
    let value = S::text("value", ColumnType::Json);
    let sql = format!("SELECT stream, {value} FROM {} WHERE instance = $1", book::<S>("_state"));
    let mut state = State::default();
    for mut row in store.query(&sql, &[instance]).await? {
        let value = serde_json::from_str(row[1].as_deref().unwrap_or_default())
            .map_err(|e| dest_error(format!("{}: corrupt _state value", store.describe()), e))?;
        state.set(row[0].take().unwrap_or_default(), value);
    }
    Ok(state)
}

/// Saves `value` as `stream`'s checkpoint of `run`'s instance.
pub async fn save_state<S: Store>(store: &mut S, run: &RunInfo, stream: &str, value: &Value) -> Result<()> {
    let sql = format!(
        "INSERT INTO {} (instance, stream, value, run_id, updated_at) VALUES ($1, $2, {}, $4, {})
         ON CONFLICT (instance, stream) DO UPDATE SET value = EXCLUDED.value, run_id = EXCLUDED.run_id, updated_at = EXCLUDED.updated_at",
        book::<S>("_state"),
        S::cast("$3", ColumnType::Json),
        S::cast("$5", ColumnType::Timestamp)
    );
    let args = [run.instance.as_str(), stream, &value.to_string(), &run.run_id, &now_rfc3339()];
    store.exec(&sql, &args).await.map(drop)
}

/// Forgets the checkpoints of `instance` (only `streams` when given); how many went.
pub async fn reset_state<S: Store>(store: &mut S, instance: &str, streams: Option<&[String]>) -> Result<u64> {
    let state = book::<S>("_state");
    let Some(streams) = streams else {
        return store.exec(&format!("DELETE FROM {state} WHERE instance = $1"), &[instance]).await;
    };
    let mut n = 0;
    for stream in streams {
        n += store
            .exec(&format!("DELETE FROM {state} WHERE instance = $1 AND stream = $2"), &[instance, stream])
            .await?;
    }
    Ok(n)
}

/// Adds `run` to `_runs` with `status` (a run that ends as it starts, refused, ends
/// when it started).
pub async fn insert_run<S: Store>(
    store: &mut S,
    run: &RunInfo,
    status: RunStatus,
    error: Option<&str>,
) -> Result<()> {
    let started = S::cast("$5", ColumnType::Timestamp);
    let sql = format!(
        "INSERT INTO {} (run_id, connector, instance, config_fingerprint, started_at, status, finished_at, error)
         VALUES ($1, $2, $3, $4, {started}, $6, CASE WHEN $6 = 'running' THEN NULL ELSE {started} END, NULLIF($7, ''))",
        book::<S>("_runs")
    );
    let args = [
        run.run_id.as_str(),
        &run.connector,
        &run.instance,
        &run.config_fingerprint,
        &run.started_at,
        status.as_str(),
        error.unwrap_or_default(),
    ];
    store.exec(&sql, &args).await.map(drop)
}

/// Records how `outcome`'s run ended; its warnings as a JSON array, NULL when there were
/// none.
pub async fn record_outcome<S: Store>(store: &mut S, outcome: &RunOutcome) -> Result<()> {
    let sql = format!(
        "UPDATE {} SET status = $2, finished_at = {}, records = {}, error = NULLIF($5, ''), failed = {},
             warnings = {} WHERE run_id = $1",
        book::<S>("_runs"),
        S::cast("$3", ColumnType::Timestamp),
        S::cast("$4", ColumnType::Json),
        S::cast("$6", ColumnType::Json),
        S::cast("NULLIF($7, '')", ColumnType::Json)
    );
    let warnings = match outcome.warnings.is_empty() {
        true => String::new(),
        false => serde_json::to_string(&outcome.warnings).unwrap_or_default(),
    };
    let args = [
        outcome.run_id.as_str(),
        outcome.status.as_str(),
        &outcome.finished_at,
        &json_text(&outcome.records),
        outcome.error.as_deref().unwrap_or_default(),
        &json_text(&outcome.failed),
        &warnings,
    ];
    store.exec(&sql, &args).await.map(drop)
}

/// Holding `instance`'s lock, no other run of it is alive: what one left `running` was
/// killed.
pub async fn interrupt_killed<S: Store>(store: &mut S, instance: &str) -> Result<()> {
    let sql = format!(
        "UPDATE {} SET status = 'interrupted' WHERE instance = $1 AND status = 'running'",
        book::<S>("_runs")
    );
    store.exec(&sql, &[instance]).await.map(drop)
}

/// The run of `instance` recorded `running` (`run … (started …)`), if any.
pub async fn running_run<S: Store>(store: &mut S, instance: &str) -> Result<Option<String>> {
    let sql = format!(
        "SELECT 'run ' || run_id || ' (started ' || {} || ')' FROM {} WHERE instance = $1 AND status = 'running'
         ORDER BY started_at DESC LIMIT 1",
        S::text("started_at", ColumnType::Timestamp),
        book::<S>("_runs")
    );
    Ok(store.query(&sql, &[instance]).await?.into_iter().next().and_then(|mut r| r[0].take()))
}

/// The `limit` most recent runs, newest first.
pub async fn recent_runs<S: Store>(store: &mut S, limit: usize) -> Result<Vec<RunRecord>> {
    let sql = format!(
        "SELECT run_id, connector, instance, config_fingerprint, {}, {}, status, {}, error, {}, {}
         FROM {} ORDER BY started_at DESC, run_id DESC LIMIT {limit}",
        S::text("started_at", ColumnType::Timestamp),
        S::text("finished_at", ColumnType::Timestamp),
        S::text("records", ColumnType::Json),
        S::text("failed", ColumnType::Json),
        S::text("warnings", ColumnType::Json),
        book::<S>("_runs")
    );
    let rows = store.query(&sql, &[]).await?;
    Ok(rows
        .into_iter()
        .map(|mut r| {
            let mut take = |i: usize| r[i].take();
            RunRecord {
                run_id: take(0).unwrap_or_default(),
                connector: take(1).unwrap_or_default(),
                instance: take(2).unwrap_or_default(),
                config_fingerprint: take(3).unwrap_or_default(),
                started_at: take(4).unwrap_or_default(),
                finished_at: take(5),
                status: take(6).unwrap_or_default(),
                records: parse(take(7)),
                error: take(8),
                failed: parse(take(9)),
                warnings: parse(take(10)),
            }
        })
        .collect())
}

/// JSON `text` read back, or the default if it is missing or unreadable.
fn parse<T: serde::de::DeserializeOwned + Default>(text: Option<String>) -> T {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

/// A map as JSON text.
fn json_text<V: serde::Serialize>(map: &BTreeMap<String, V>) -> String {
    serde_json::to_string(map).unwrap_or_default()
}
