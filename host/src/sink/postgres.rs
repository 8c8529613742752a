//! PostgreSQL destination for hubs many people and machines share (tokio-postgres).
//!
//! Each connector gets a schema (`qlik_sense`) holding one table per stream (`users`),
//! keyed by `_instance` and the stream's primary key; runs, checkpoints and the tables
//! we own live in `datahub._runs`, `datahub._state` and `datahub._tables`. Rows travel
//! with `COPY … FROM STDIN` in text format, 5,000 per batch. Full-refresh streams are
//! copied into a temporary staging table and replace the instance's rows (`DELETE`,
//! `INSERT … SELECT`) in the run's final transaction, so the table itself, and the
//! views and grants on it, stay; incremental streams are copied into a temporary table
//! and merged with `INSERT … ON CONFLICT DO UPDATE`, each checkpoint committed with the
//! rows before it. Temporary tables vanish with the session, so a killed run leaves
//! nothing behind.
//!
//! One run per instance: a session advisory lock keyed by the instance, which the
//! server releases when the connection ends. Table changes (create, add column) are
//! serialised between runs by a transaction advisory lock, so runs of different
//! instances never deadlock; every lock wait is bounded by `lock_timeout`.
//!
//! TLS is used when the server offers it (`sslmode=prefer`, the default) or required
//! with `sslmode=require` / `verify-full`; certificates are checked against the Mozilla
//! roots. A password missing from the URL is taken from `PGPASSWORD`. Passwords never
//! appear in messages.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use connector_api::{Error, ErrorKind, Result, State, SyncMode, ViewDescriptor};
use futures::SinkExt;
use serde_json::Value;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::lock::held_by_another_run;
use super::schema::{Cell, ColumnType, INSTANCE, reconcile, sql_name};
use super::sqlite::{ident, ident_list};
use super::{
    BATCH_ROWS, CommitPolicy, Destination, LoadStats, RunInfo, RunOutcome, RunRecord, RunStatus, StreamPlan,
    foreign_table, now_rfc3339, redact_destination, unselected_stream,
};

/// How long any statement waits for a lock another session holds (a report's `LOCK
/// TABLE`, a long `ALTER`) before the run fails with a message saying so; a URL's
/// `options=-c lock_timeout=…` overrides it.
const LOCK_TIMEOUT: &str = "60s";

/// How long a run keeps trying for its instance's lock before it is refused.
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The transaction advisory lock that serialises table changes between runs.
const DDL_LOCK: i64 = 0x6461_7461_6875_6231;

/// A PostgreSQL database.
pub struct PostgresDestination {
    shown_url: String,
    client: Arc<Client>,
    inflight: Inflight,
    run: Option<PgRun>,
    in_tx: bool,
    /// The instance whose advisory lock this session holds.
    locked: Option<String>,
}

/// The batch being loaded in the background, if any.
type Inflight = Option<tokio::task::JoinHandle<Result<()>>>;

/// Waits for the batch in flight and returns its outcome.
async fn settle(inflight: &mut Inflight) -> Result<()> {
    match inflight.take() {
        Some(handle) => {
            handle.await.map_err(|e| Error::internal(format!("PostgreSQL loader task failed: {e}")))?
        }
        None => Ok(()),
    }
}

struct PgTarget {
    plan: StreamPlan,
    schema: String,
    table: String,
    /// For full refresh: the temporary table holding the run's rows until the swap.
    staging: Option<String>,
    copy_sql: String,
    merge_sql: Option<String>,
    buf: Vec<u8>,
    rows_in_buf: usize,
    ord: u64,
    rows_before: u64,
}

struct PgRun {
    info: RunInfo,
    targets: HashMap<String, PgTarget>,
    final_states: BTreeMap<String, Value>,
    /// Incremental checkpoints not committed yet (see [`CommitPolicy`]).
    pending_states: BTreeMap<String, Value>,
    policy: CommitPolicy,
    extracted_at: String,
    rows_since_stamp: usize,
}

fn pg_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Text => "text",
        ColumnType::Integer => "bigint",
        ColumnType::Real => "double precision",
        ColumnType::Boolean => "boolean",
        ColumnType::Timestamp => "timestamp with time zone",
        ColumnType::Json => "jsonb",
    }
}

fn pg_err(what: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| pg_error(format!("PostgreSQL: {what}"), &e)
}

/// A PostgreSQL failure as an error saying what the server said: its message, SQLSTATE
/// and hint (tokio-postgres' own text for them is just "db error"). A lock wait that
/// timed out names the lock timeout.
fn pg_error(what: impl std::fmt::Display, e: &tokio_postgres::Error) -> Error {
    let Some(db) = e.as_db_error() else {
        let cause = std::error::Error::source(e).map(|s| format!(": {s}")).unwrap_or_default();
        return Error::new(ErrorKind::Destination, format!("{what}: {e}{cause}"));
    };
    let mut err = Error::new(
        ErrorKind::Destination,
        format!("{what}: {} (SQLSTATE {})", db.message(), db.code().code()),
    );
    if let Some(detail) = db.detail() {
        err = err.with_context("detail", detail.to_string());
    }
    if *db.code() == SqlState::LOCK_NOT_AVAILABLE {
        err = err.with_hint(format!(
            "Another session held a lock on a hub table for longer than the lock timeout ({LOCK_TIMEOUT} unless the URL sets `options=-c lock_timeout=…`): a long report, a LOCK TABLE, an ALTER. Find it in pg_locks / pg_stat_activity and rerun when it is done"
        ));
    } else if let Some(hint) = db.hint() {
        err = err.with_hint(hint.to_string());
    }
    err
}

/// `text` as an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The advisory lock key of `instance`: 64 bits of its SHA-256.
fn advisory_key(instance: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(instance.as_bytes());
    i64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
}

/// Appends `s` to a COPY text-format buffer, escaping what COPY treats specially.
fn push_escaped(buf: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            _ => buf.push(b),
        }
    }
}

fn push_cell(buf: &mut Vec<u8>, c: &Cell<'_>) {
    match c {
        Cell::Null => buf.extend_from_slice(b"\\N"),
        Cell::Int(i) => buf.extend_from_slice(i.to_string().as_bytes()),
        Cell::Real(f) => buf.extend_from_slice(f.to_string().as_bytes()),
        Cell::Bool(b) => buf.push(if *b { b't' } else { b'f' }),
        Cell::Text(s) => push_escaped(buf, s),
        Cell::Json(s) | Cell::Owned(s) => push_escaped(buf, s),
    }
}

fn tls_connector() -> tokio_postgres_rustls::MakeRustlsConnect {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

impl PostgresDestination {
    /// Connects to `url` and prepares the bookkeeping tables.
    pub async fn connect(url: &str) -> Result<Self> {
        let shown_url = redact_destination(url);
        // tokio-postgres knows disable/prefer/require; certificates are always verified,
        // so the libpq names for verified TLS mean `require` here.
        let normalised = url
            .replace("sslmode=verify-full", "sslmode=require")
            .replace("sslmode=verify-ca", "sslmode=require");
        let mut config: tokio_postgres::Config = normalised.parse().map_err(|_| {
            Error::config("dest", format!("invalid PostgreSQL URL {shown_url}"))
                .with_hint("Use postgres://user@host:5432/database (password from PGPASSWORD or the URL)")
        })?;
        if config.get_password().is_none()
            && let Ok(password) = std::env::var("PGPASSWORD")
        {
            connector_api::secret::register(&password);
            config.password(password);
        }
        if config.get_user().is_none()
            && let Ok(user) = std::env::var("PGUSER")
        {
            config.user(user);
        }
        // `?options=-c lock_timeout=5s` in the URL wins over the default.
        let lock_timeout = if config.get_options().is_some_and(|o| o.contains("lock_timeout")) {
            String::new()
        } else {
            format!("SET lock_timeout = '{LOCK_TIMEOUT}';")
        };
        let (client, connection) = config.connect(tls_connector()).await.map_err(|e| {
            let err = pg_error(format!("cannot connect to PostgreSQL at {shown_url}"), &e);
            match e.code() {
                Some(c)
                    if *c == SqlState::INVALID_PASSWORD
                        || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
                {
                    err.with_hint(
                        "Check the user and password (in the URL or PGPASSWORD) the hub's PostgreSQL expects",
                    )
                }
                _ => err,
            }
        })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::error!(error = %e, "PostgreSQL connection closed");
            }
        });
        client
            .batch_execute(&format!(
                "{lock_timeout}
                 BEGIN;
                 SELECT pg_advisory_xact_lock({DDL_LOCK});
                 CREATE SCHEMA IF NOT EXISTS datahub;
                 CREATE TABLE IF NOT EXISTS datahub._runs (
                     run_id text PRIMARY KEY,
                     connector text NOT NULL,
                     instance text NOT NULL,
                     config_fingerprint text NOT NULL,
                     started_at timestamptz NOT NULL,
                     finished_at timestamptz,
                     status text NOT NULL,
                     records jsonb NOT NULL DEFAULT '{{}}',
                     error text
                 );
                 ALTER TABLE datahub._runs ADD COLUMN IF NOT EXISTS failed jsonb NOT NULL DEFAULT '{{}}';
                 CREATE TABLE IF NOT EXISTS datahub._state (
                     instance text NOT NULL,
                     stream text NOT NULL,
                     value jsonb NOT NULL,
                     run_id text,
                     updated_at timestamptz NOT NULL DEFAULT now(),
                     PRIMARY KEY (instance, stream)
                 );
                 CREATE TABLE IF NOT EXISTS datahub._tables (
                     schema_name text NOT NULL,
                     table_name text NOT NULL,
                     connector text NOT NULL,
                     stream text NOT NULL,
                     created_at timestamptz NOT NULL DEFAULT now(),
                     created_by_run text,
                     PRIMARY KEY (schema_name, table_name)
                 );
                 COMMIT;"
            ))
            .await
            .map_err(pg_err("preparing bookkeeping tables"))?;
        Ok(PostgresDestination {
            shown_url,
            client: Arc::new(client),
            inflight: None,
            run: None,
            in_tx: false,
            locked: None,
        })
    }

    async fn existing_columns(&self, schema: &str, table: &str) -> Result<Vec<(String, String)>> {
        let rows = self
            .client
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&schema, &table],
            )
            .await
            .map_err(pg_err("reading table columns"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Rows of `instance` in `schema.table`.
    async fn count(&self, schema: &str, table: &str, instance: &str) -> Result<u64> {
        let row = self
            .client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}.{} WHERE {} = $1",
                    ident(schema),
                    ident(table),
                    ident(INSTANCE)
                ),
                &[&instance],
            )
            .await
            .map_err(pg_err("counting rows"))?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    /// Whether a relation called `schema.table` exists, and whether `_tables` lists it.
    async fn table_status(&self, schema: &str, table: &str) -> Result<(bool, bool)> {
        let row = self
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                                WHERE n.nspname = $1 AND c.relname = $2),
                        EXISTS (SELECT 1 FROM datahub._tables WHERE schema_name = $1 AND table_name = $2)",
                &[&schema, &table],
            )
            .await
            .map_err(pg_err("looking up a table"))?;
        Ok((row.get(0), row.get(1)))
    }

    async fn insert_run(&self, run: &RunInfo, status: RunStatus, error: Option<&str>) -> Result<()> {
        self.client
            .execute(
                "INSERT INTO datahub._runs (run_id, connector, instance, config_fingerprint, started_at, status, finished_at, error)
                 VALUES ($1, $2, $3, $4, $5::text::timestamptz, $6, CASE WHEN $6 = 'running' THEN NULL ELSE now() END, $7)",
                &[&run.run_id, &run.connector, &run.instance, &run.config_fingerprint, &run.started_at, &status.as_str(), &error],
            )
            .await
            .map_err(pg_err("recording the run"))?;
        Ok(())
    }

    async fn record_outcome(&self, outcome: &RunOutcome) -> Result<()> {
        let records = serde_json::to_value(&outcome.records).unwrap_or_default();
        let failed = serde_json::to_value(&outcome.failed).unwrap_or_default();
        self.client
            .execute(
                "UPDATE datahub._runs SET status = $2, finished_at = $3::text::timestamptz, records = $4, error = $5, failed = $6
                 WHERE run_id = $1",
                &[&outcome.run_id, &outcome.status.as_str(), &outcome.finished_at, &records, &outcome.error, &failed],
            )
            .await
            .map_err(pg_err("recording the run"))?;
        Ok(())
    }

    /// Lets go of the instance's advisory lock, if this session holds it.
    async fn unlock(&mut self) {
        if let Some(instance) = self.locked.take()
            && let Err(e) =
                self.client.execute("SELECT pg_advisory_unlock($1)", &[&advisory_key(&instance)]).await
        {
            tracing::warn!(error = %e, "Could not release the instance lock; it ends with the connection");
        }
    }

    /// Creates or updates `plan`'s table and the session's temporary table its rows
    /// are copied into, inside the open transaction.
    async fn prepare_target(&self, run: &RunInfo, plan: &StreamPlan, n: usize) -> Result<PgTarget> {
        let schema = plan.connector.clone();
        let table = sql_name(&plan.stream);
        let (exists, ours) = self.table_status(&schema, &table).await?;
        if exists && !ours {
            return Err(foreign_table(&format!("{schema}.{table}"), &self.describe()));
        }
        let q = format!("{}.{}", ident(&schema), ident(&table));
        let mut defs: Vec<String> = vec![format!("{} text NOT NULL", ident(INSTANCE))];
        defs.extend(plan.columns.iter().map(|c| format!("{} {}", ident(&c.name), pg_type(c.ty))));
        defs.push("\"_extracted_at\" timestamptz NOT NULL".into());
        defs.push("\"_run_id\" text NOT NULL".into());
        let key = ident_list(&plan.table_key());
        let exec = |sql: String| async move { self.client.batch_execute(&sql).await };
        if exists {
            let existing = self.existing_columns(&schema, &table).await?;
            let changes = reconcile(&format!("{schema}.{table}"), plan, &existing, pg_type)?;
            for (name, ty) in &changes.add {
                tracing::info!(table = %format!("{schema}.{table}"), column = %name, "Adding new column");
                exec(format!("ALTER TABLE {q} ADD COLUMN {} {ty};", ident(name)))
                    .await
                    .map_err(pg_err("adding column"))?;
            }
            for (name, _) in &changes.kept {
                tracing::info!(table = %format!("{schema}.{table}"), column = %name, "Keeping a column the connector no longer sends");
            }
        } else {
            exec(format!("CREATE TABLE {q} ({}, PRIMARY KEY ({key}));", defs.join(", ")))
                .await
                .map_err(pg_err("creating table"))?;
            self.client
                .execute(
                    "INSERT INTO datahub._tables (schema_name, table_name, connector, stream, created_by_run) VALUES ($1, $2, $3, $4, $5)",
                    &[&schema, &table, &run.connector, &plan.stream, &run.run_id],
                )
                .await
                .map_err(pg_err("registering a table"))?;
        }
        let rows_before = if exists { self.count(&schema, &table, &run.instance).await? } else { 0 };
        let names = plan.load_columns();
        let columns = ident_list(&names);
        let load = format!("_load_{n}");
        let mut load_defs = defs.clone();
        load_defs.push("\"_ord\" bigint NOT NULL".into());
        exec(format!(
            "DROP TABLE IF EXISTS pg_temp.{l}; CREATE TEMP TABLE {l} ({});",
            load_defs.join(", "),
            l = ident(&load)
        ))
        .await
        .map_err(pg_err("creating load table"))?;
        let copy_sql = format!("COPY {} ({columns}, \"_ord\") FROM STDIN", ident(&load));
        let (staging, merge_sql) = match plan.sync_mode {
            // Rows stay in the load table until the final transaction replaces the
            // instance's rows with them.
            SyncMode::FullRefresh => (Some(load.clone()), None),
            SyncMode::Incremental => {
                let table_key = plan.table_key();
                let updates: Vec<String> = names
                    .iter()
                    .filter(|n| !table_key.iter().any(|k| k == *n))
                    .map(|n| format!("{c} = EXCLUDED.{c}", c = ident(n)))
                    .collect();
                let merge = format!(
                    "INSERT INTO {q} ({columns}) SELECT DISTINCT ON ({key}) {columns} FROM {l} ORDER BY {key}, \"_ord\" DESC
                     ON CONFLICT ({key}) DO UPDATE SET {}; TRUNCATE {l};",
                    updates.join(", "),
                    l = ident(&load)
                );
                (None, Some(merge))
            }
        };
        Ok(PgTarget {
            copy_sql,
            merge_sql,
            plan: plan.clone(),
            schema,
            table,
            staging,
            buf: Vec::new(),
            rows_in_buf: 0,
            ord: 0,
            rows_before,
        })
    }

    /// Sends `target`'s buffered rows (COPY, then the merge for incremental streams) on
    /// a task of its own, so the next batch is built while the server loads this one.
    /// Batches go one at a time, in order: the previous one is awaited first.
    async fn flush(client: &Arc<Client>, inflight: &mut Inflight, target: &mut PgTarget) -> Result<()> {
        if target.rows_in_buf == 0 {
            return Ok(());
        }
        settle(inflight).await?;
        let data = Bytes::from(std::mem::take(&mut target.buf));
        target.rows_in_buf = 0;
        let stream = target.plan.stream.clone();
        let copy_sql = target.copy_sql.clone();
        let merge_sql = target.merge_sql.clone();
        let client = Arc::clone(client);
        *inflight = Some(tokio::spawn(async move {
            let copy_failed = |e: tokio_postgres::Error| match e.code() {
                Some(c) if c.code().starts_with("22") => Error::new(
                    ErrorKind::Source,
                    format!("stream {stream}: a record does not fit its column: {e}"),
                )
                .with_context("stream", stream.clone()),
                _ => pg_error(format!("PostgreSQL: loading stream {stream}"), &e),
            };
            let sink = client.copy_in::<_, Bytes>(&copy_sql).await.map_err(&copy_failed)?;
            futures::pin_mut!(sink);
            sink.send(data).await.map_err(&copy_failed)?;
            sink.as_mut().finish().await.map_err(&copy_failed)?;
            if let Some(merge) = &merge_sql {
                client.batch_execute(merge).await.map_err(&copy_failed)?;
            }
            Ok(())
        }));
        Ok(())
    }

    async fn rollback_if_open(&mut self) {
        if let Err(e) = settle(&mut self.inflight).await {
            tracing::debug!(error = %e, "A batch failed before the rollback");
        }
        if self.in_tx {
            self.in_tx = false;
            if let Err(e) = self.client.batch_execute("ROLLBACK").await {
                tracing::warn!(error = %e, "PostgreSQL rollback failed");
            }
        }
    }

    /// Drops `run`'s temporary tables; they would vanish with the session anyway.
    async fn drop_load_tables(&self, run: &PgRun) {
        let tables: Vec<String> = (0..run.targets.len()).map(|n| format!("pg_temp._load_{n}")).collect();
        if let Err(e) =
            self.client.batch_execute(&format!("DROP TABLE IF EXISTS {}", tables.join(", "))).await
        {
            tracing::debug!(error = %e, "Could not drop temporary tables; they go with the session");
        }
    }

    async fn save_state(&self, instance: &str, stream: &str, value: &Value, run_id: &str) -> Result<()> {
        self.client
            .execute(
                "INSERT INTO datahub._state (instance, stream, value, run_id, updated_at) VALUES ($1, $2, $3, $4, now())
                 ON CONFLICT (instance, stream) DO UPDATE SET value = EXCLUDED.value, run_id = EXCLUDED.run_id, updated_at = now()",
                &[&instance, &stream, value, &run_id],
            )
            .await
            .map_err(pg_err("saving a checkpoint"))?;
        Ok(())
    }
}

#[async_trait]
impl Destination for PostgresDestination {
    fn describe(&self) -> String {
        format!("PostgreSQL database {}", self.shown_url)
    }

    fn sample_query(&self, plan: &StreamPlan) -> String {
        format!(
            "psql '{}' -c 'select _instance, count(*) from {}.{} group by 1'",
            self.shown_url,
            plan.connector,
            sql_name(&plan.stream)
        )
    }

    async fn load_state(&mut self, instance: &str) -> Result<State> {
        let rows = self
            .client
            .query("SELECT stream, value FROM datahub._state WHERE instance = $1", &[&instance])
            .await
            .map_err(pg_err("reading state"))?;
        let mut state = State::default();
        for row in rows {
            state.set(row.get::<_, String>(0), row.get::<_, Value>(1));
        }
        Ok(state)
    }

    async fn reset_state(&mut self, instance: &str, streams: Option<&[String]>) -> Result<u64> {
        let n = match streams {
            None => self.client.execute("DELETE FROM datahub._state WHERE instance = $1", &[&instance]).await,
            Some(streams) => {
                let streams: Vec<String> = streams.to_vec();
                self.client
                    .execute(
                        "DELETE FROM datahub._state WHERE instance = $1 AND stream = ANY($2)",
                        &[&instance, &streams],
                    )
                    .await
            }
        }
        .map_err(pg_err("resetting state"))?;
        Ok(n)
    }

    async fn recent_runs(&mut self, limit: usize) -> Result<Vec<RunRecord>> {
        let rows = self
            .client
            .query(
                "SELECT run_id, connector, instance, config_fingerprint, to_json(started_at)#>>'{}',
                        to_json(finished_at)#>>'{}', status, records, error, failed
                 FROM datahub._runs ORDER BY started_at DESC, run_id DESC LIMIT $1",
                &[&(limit as i64)],
            )
            .await
            .map_err(pg_err("reading runs"))?;
        Ok(rows
            .iter()
            .map(|r| RunRecord {
                run_id: r.get(0),
                connector: r.get(1),
                instance: r.get(2),
                config_fingerprint: r.get(3),
                started_at: r.get(4),
                finished_at: r.get(5),
                status: r.get(6),
                records: serde_json::from_value(r.get::<_, Value>(7)).unwrap_or_default(),
                error: r.get(8),
                failed: serde_json::from_value(r.get::<_, Value>(9)).unwrap_or_default(),
            })
            .collect())
    }

    async fn lock(&mut self, run: &RunInfo) -> Result<()> {
        // A killed run's session lets go of the lock only when its server process
        // notices the connection is gone, which may take a moment after the kill: try
        // for LOCK_GRACE before refusing.
        let deadline = std::time::Instant::now() + LOCK_GRACE;
        let got = loop {
            let got: bool = self
                .client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&advisory_key(&run.instance)])
                .await
                .map_err(pg_err("taking the instance lock"))?
                .get(0);
            if got || std::time::Instant::now() >= deadline {
                break got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        if !got {
            let other = self
                .client
                .query_opt(
                    "SELECT 'run ' || run_id || ' (started ' || (to_json(started_at)#>>'{}') || ')' FROM datahub._runs
                     WHERE instance = $1 AND status = 'running' ORDER BY started_at DESC LIMIT 1",
                    &[&run.instance],
                )
                .await
                .map_err(pg_err("reading runs"))?
                .map(|r| r.get::<_, String>(0));
            let err = held_by_another_run(&run.instance, &self.describe(), other);
            self.insert_run(run, RunStatus::Refused, Some(&err.to_string())).await?;
            return Err(err);
        }
        self.locked = Some(run.instance.clone());
        // Holding the lock, no other run of this instance is alive: what it left
        // `running` is a killed run's.
        self.client
            .execute(
                "UPDATE datahub._runs SET status = 'interrupted' WHERE instance = $1 AND status = 'running'",
                &[&run.instance],
            )
            .await
            .map_err(pg_err("recording the run"))?;
        self.insert_run(run, RunStatus::Running, None).await
    }

    async fn begin(&mut self, run: &RunInfo, plans: &[StreamPlan]) -> Result<()> {
        self.client
            .batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({DDL_LOCK});"))
            .await
            .map_err(pg_err("starting a transaction"))?;
        self.in_tx = true;
        let mut targets = HashMap::new();
        let mut prepared = async {
            if let Some(plan) = plans.first() {
                self.client
                    .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", ident(&plan.connector)))
                    .await
                    .map_err(pg_err("creating schema"))?;
            }
            for (n, plan) in plans.iter().enumerate() {
                targets.insert(plan.stream.clone(), self.prepare_target(run, plan, n).await?);
            }
            Ok::<_, Error>(())
        }
        .await;
        if prepared.is_ok() {
            prepared =
                self.client.batch_execute("COMMIT; BEGIN").await.map_err(pg_err("committing table changes"));
        }
        if let Err(e) = prepared {
            self.rollback_if_open().await;
            return Err(e);
        }
        self.run = Some(PgRun {
            info: run.clone(),
            targets,
            final_states: BTreeMap::new(),
            pending_states: BTreeMap::new(),
            policy: CommitPolicy::default(),
            extracted_at: now_rfc3339(),
            rows_since_stamp: 0,
        });
        Ok(())
    }

    async fn write(&mut self, stream: &str, records: Vec<Value>) -> Result<()> {
        let run = self.run.as_mut().ok_or_else(|| Error::internal("write outside a run"))?;
        let Some(target) = run.targets.get_mut(stream) else {
            return Err(unselected_stream("record", stream));
        };
        let buf = &mut target.buf;
        for record in &records {
            let row_start = buf.len();
            push_escaped(buf, &run.info.instance);
            buf.push(b'\t');
            for col in &target.plan.columns {
                match col.cell_of(stream, record) {
                    Ok(cell) => push_cell(buf, &cell),
                    Err(e) => {
                        // Never leave half a row for COPY: the rows before it stay.
                        buf.truncate(row_start);
                        return Err(e);
                    }
                }
                buf.push(b'\t');
            }
            push_escaped(buf, &run.extracted_at);
            buf.push(b'\t');
            push_escaped(buf, &run.info.run_id);
            target.ord += 1;
            buf.push(b'\t');
            buf.extend_from_slice(target.ord.to_string().as_bytes());
            buf.push(b'\n');
        }
        target.rows_in_buf += records.len();
        run.rows_since_stamp += records.len();
        if target.staging.is_none() {
            run.policy.rows(records.len());
        }
        if run.rows_since_stamp >= BATCH_ROWS {
            run.rows_since_stamp = 0;
            run.extracted_at = now_rfc3339();
        }
        if target.rows_in_buf >= BATCH_ROWS {
            Self::flush(&self.client, &mut self.inflight, target).await?;
        }
        Ok(())
    }

    async fn checkpoint(&mut self, stream: &str, value: Value) -> Result<()> {
        let run = self.run.as_mut().ok_or_else(|| Error::internal("checkpoint outside a run"))?;
        let Some(target) = run.targets.get_mut(stream) else {
            return Err(unselected_stream("checkpoint", stream));
        };
        if target.staging.is_some() {
            run.final_states.insert(stream.to_string(), value);
            return Ok(());
        }
        run.pending_states.insert(stream.to_string(), value);
        if !run.policy.due() {
            return Ok(());
        }
        // Every incremental stream's rows go in before the checkpoints that cover them.
        for target in run.targets.values_mut().filter(|t| t.staging.is_none()) {
            Self::flush(&self.client, &mut self.inflight, target).await?;
        }
        settle(&mut self.inflight).await?;
        let pending = std::mem::take(&mut run.pending_states);
        run.policy.committed();
        let (instance, run_id) = (run.info.instance.clone(), run.info.run_id.clone());
        for (stream, value) in &pending {
            self.save_state(&instance, stream, value, &run_id).await?;
        }
        self.client.batch_execute("COMMIT; BEGIN").await.map_err(pg_err("committing a checkpoint"))
    }

    async fn commit(&mut self, outcome: &RunOutcome) -> Result<BTreeMap<String, LoadStats>> {
        let mut run = self.run.take().ok_or_else(|| Error::internal("commit outside a run"))?;
        let instance = run.info.instance.clone();
        let result = async {
            for target in run.targets.values_mut() {
                Self::flush(&self.client, &mut self.inflight, target).await?;
            }
            settle(&mut self.inflight).await?;
            for target in run.targets.values() {
                let Some(staging) = &target.staging else { continue };
                if outcome.failed.contains_key(&target.plan.stream) {
                    continue;
                }
                let columns = ident_list(&target.plan.load_columns());
                let q = format!("{}.{}", ident(&target.schema), ident(&target.table));
                self.client
                    .execute(&format!("DELETE FROM {q} WHERE {} = $1", ident(INSTANCE)), &[&instance])
                    .await
                    .map_err(pg_err("replacing the instance's rows"))?;
                self.client
                    .batch_execute(&format!(
                        "INSERT INTO {q} ({columns}) SELECT {columns} FROM {}",
                        ident(staging)
                    ))
                    .await
                    .map_err(pg_err("replacing the instance's rows"))?;
            }
            let finals = run.final_states.iter().filter(|(s, _)| !outcome.failed.contains_key(*s));
            for (stream, value) in finals.chain(&run.pending_states) {
                self.save_state(&instance, stream, value, &run.info.run_id).await?;
            }
            self.record_outcome(outcome).await?;
            self.client.batch_execute("COMMIT").await.map_err(pg_err("committing the run"))
        }
        .await;
        match result {
            Ok(()) => self.in_tx = false,
            Err(e) => {
                self.rollback_if_open().await;
                self.run = Some(run);
                return Err(e);
            }
        }
        self.drop_load_tables(&run).await;
        self.unlock().await;
        let mut stats = BTreeMap::new();
        for (stream, target) in &run.targets {
            let rows = self.count(&target.schema, &target.table, &instance).await?;
            let received = outcome.records.get(stream).copied().unwrap_or(0);
            stats.insert(
                stream.clone(),
                LoadStats::after_commit(rows, target.rows_before, received, target.staging.is_some()),
            );
        }
        Ok(stats)
    }

    async fn ensure_views(&mut self, connector: &str, views: &[ViewDescriptor]) -> Result<()> {
        let schema = sql_name(connector);
        for view in views {
            let name = sql_name(view.name);
            let mut missing = Vec::new();
            for stream in view.requires {
                if self.table_status(&schema, &sql_name(stream)).await? != (true, true) {
                    missing.push(*stream);
                }
            }
            if !missing.is_empty() {
                tracing::debug!(view = %name, missing = %missing.join(","), "View waits for its streams' tables");
                continue;
            }
            let (exists, ours) = self.table_status(&schema, &name).await?;
            if exists && !ours {
                return Err(foreign_table(&format!("{schema}.{name}"), &self.describe()));
            }
            let sql = view.render(view.postgres, |s| format!("{}.{}", ident(&schema), ident(&sql_name(s))));
            let register = if ours {
                String::new()
            } else {
                format!(
                    "INSERT INTO datahub._tables (schema_name, table_name, connector, stream) VALUES ({}, {}, {}, {});",
                    literal(&schema),
                    literal(&name),
                    literal(connector),
                    literal(view.name)
                )
            };
            // A view whose columns changed cannot be replaced in place; an operator's
            // view on it would have to go first, which is theirs to decide.
            let made = self
                .client
                .batch_execute(&format!(
                    "BEGIN; CREATE OR REPLACE VIEW {}.{} AS {sql}; {register} COMMIT;",
                    ident(&schema),
                    ident(&name)
                ))
                .await;
            if let Err(e) = made {
                let _ = self.client.batch_execute("ROLLBACK").await;
                return Err(pg_error(format!("PostgreSQL: creating view {schema}.{name}"), &e));
            }
        }
        Ok(())
    }

    async fn abort(&mut self, outcome: &RunOutcome) -> Result<()> {
        self.rollback_if_open().await;
        if let Some(run) = self.run.take() {
            self.drop_load_tables(&run).await;
        }
        let recorded = self.record_outcome(outcome).await;
        self.unlock().await;
        recorded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_specials() {
        let mut buf = Vec::new();
        push_escaped(&mut buf, "a\tb\\c\nd");
        assert_eq!(buf, b"a\\tb\\\\c\\nd");
        let mut buf = Vec::new();
        push_cell(&mut buf, &Cell::Null);
        push_cell(&mut buf, &Cell::Bool(true));
        assert_eq!(buf, b"\\Nt");
    }
}
