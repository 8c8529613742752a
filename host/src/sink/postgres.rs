//! PostgreSQL destination for hubs many people and machines share (tokio-postgres).
//!
//! Each connector gets a schema (`qlik_sense`) holding one table per stream (`users`);
//! runs and checkpoints live in `datahub._runs` and `datahub._state`. Rows travel with
//! `COPY … FROM STDIN` in text format, 5,000 per batch. Full-refresh streams are copied
//! into `_staging__<stream>` and renamed over their table in the run's final
//! transaction; incremental streams are copied into a temporary table and merged with
//! `INSERT … ON CONFLICT DO UPDATE`, each checkpoint committed with the rows before it.
//!
//! TLS is used when the server offers it (`sslmode=prefer`, the default) or required
//! with `sslmode=require` / `verify-full`; certificates are checked against the Mozilla
//! roots. A password missing from the URL is taken from `PGPASSWORD`. Passwords never
//! appear in messages.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use connector_api::{Error, ErrorKind, Result, State, SyncMode};
use futures::SinkExt;
use serde_json::Value;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::schema::{Cell, ColumnType, sql_name};
use super::sqlite::ident;
use super::{
    BATCH_ROWS, CommitPolicy, Destination, LoadStats, RunInfo, RunOutcome, RunRecord, StreamPlan, dest_error,
    now_rfc3339, redact_destination, unselected_stream,
};

/// A PostgreSQL database.
pub struct PostgresDestination {
    shown_url: String,
    client: Arc<Client>,
    inflight: Inflight,
    run: Option<PgRun>,
    in_tx: bool,
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
    staging: Option<String>,
    load_table: Option<String>,
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
    move |e| dest_error(format!("PostgreSQL: {what}"), e)
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
        Cell::Json(s) => push_escaped(buf, s),
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
            config.password(password);
        }
        if config.get_user().is_none()
            && let Ok(user) = std::env::var("PGUSER")
        {
            config.user(user);
        }
        let (client, connection) = config.connect(tls_connector()).await.map_err(|e| {
            let kind = match e.code() {
                Some(c)
                    if *c == SqlState::INVALID_PASSWORD
                        || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
                {
                    ErrorKind::Auth
                }
                _ => ErrorKind::Internal,
            };
            Error::new(kind, format!("cannot connect to PostgreSQL at {shown_url}: {e}"))
        })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::error!(error = %e, "PostgreSQL connection closed");
            }
        });
        client
            .batch_execute(
                "CREATE SCHEMA IF NOT EXISTS datahub;
                 CREATE TABLE IF NOT EXISTS datahub._runs (
                     run_id text PRIMARY KEY,
                     connector text NOT NULL,
                     instance text NOT NULL,
                     config_fingerprint text NOT NULL,
                     started_at timestamptz NOT NULL,
                     finished_at timestamptz,
                     status text NOT NULL,
                     records jsonb NOT NULL DEFAULT '{}',
                     error text
                 );
                 CREATE TABLE IF NOT EXISTS datahub._state (
                     instance text NOT NULL,
                     stream text NOT NULL,
                     value jsonb NOT NULL,
                     run_id text,
                     updated_at timestamptz NOT NULL DEFAULT now(),
                     PRIMARY KEY (instance, stream)
                 );",
            )
            .await
            .map_err(pg_err("preparing bookkeeping tables"))?;
        Ok(PostgresDestination {
            shown_url,
            client: Arc::new(client),
            inflight: None,
            run: None,
            in_tx: false,
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

    async fn count(&self, schema: &str, table: &str) -> Result<u64> {
        let row = self
            .client
            .query_one(&format!("SELECT count(*) FROM {}.{}", ident(schema), ident(table)), &[])
            .await
            .map_err(pg_err("counting rows"))?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn prepare_target(&self, plan: &StreamPlan, n: usize) -> Result<PgTarget> {
        let schema = plan.connector.clone();
        let table = sql_name(&plan.stream);
        let existing = self.existing_columns(&schema, &table).await?;
        let changed: Vec<String> = plan
            .columns
            .iter()
            .filter_map(|c| {
                let (_, declared) = existing.iter().find(|(n, _)| *n == c.name)?;
                (declared != pg_type(c.ty))
                    .then(|| format!("{} was {declared}, is now {}", c.name, pg_type(c.ty)))
            })
            .collect();
        if !changed.is_empty() {
            return Err(Error::new(
                ErrorKind::Config,
                format!("table {schema}.{table}: column type changed: {}", changed.join("; ")),
            )
            .with_context("stream", plan.stream.clone())
            .with_hint(format!(
                "The connector's schema changed. Check what reads {schema}.{table}, then drop the table (or rename it) and rerun to reload it"
            )));
        }
        let q = |t: &str| format!("{}.{}", ident(&schema), ident(t));
        let mut defs: Vec<String> =
            plan.columns.iter().map(|c| format!("{} {}", ident(&c.name), pg_type(c.ty))).collect();
        defs.push("\"_extracted_at\" timestamptz NOT NULL".into());
        defs.push("\"_run_id\" text NOT NULL".into());
        // A column the connector no longer sends is kept (NULL in new rows), never dropped.
        for (name, declared) in &existing {
            if !plan.columns.iter().any(|c| c.name == *name) && name != "_extracted_at" && name != "_run_id" {
                tracing::info!(table = %format!("{schema}.{table}"), column = %name, "Keeping a column the connector no longer sends");
                defs.push(format!("{} {declared}", ident(name)));
            }
        }
        let mut names: Vec<String> = plan.columns.iter().map(|c| ident(&c.name)).collect();
        names.push("\"_extracted_at\"".into());
        names.push("\"_run_id\"".into());
        let pk: Vec<String> = plan.primary_key.iter().map(|k| ident(k)).collect();
        let rows_before = if existing.is_empty() { 0 } else { self.count(&schema, &table).await? };
        let exec = |sql: String| async move { self.client.batch_execute(&sql).await };
        match plan.sync_mode {
            SyncMode::FullRefresh => {
                let staging = format!("_staging__{table}");
                exec(format!(
                    "DROP TABLE IF EXISTS {s}; CREATE TABLE {s} ({});",
                    defs.join(", "),
                    s = q(&staging)
                ))
                .await
                .map_err(pg_err("creating staging table"))?;
                Ok(PgTarget {
                    copy_sql: format!("COPY {} ({}) FROM STDIN", q(&staging), names.join(", ")),
                    plan: plan.clone(),
                    schema,
                    table,
                    staging: Some(staging),
                    load_table: None,
                    merge_sql: None,
                    buf: Vec::new(),
                    rows_in_buf: 0,
                    ord: 0,
                    rows_before,
                })
            }
            _ => {
                if existing.is_empty() {
                    let mut all = defs.clone();
                    if !pk.is_empty() {
                        all.push(format!("PRIMARY KEY ({})", pk.join(", ")));
                    }
                    exec(format!("CREATE TABLE {} ({});", q(&table), all.join(", ")))
                        .await
                        .map_err(pg_err("creating table"))?;
                } else {
                    for (col, def) in plan
                        .columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .chain(["_extracted_at", "_run_id"])
                        .zip(&defs)
                    {
                        if !existing.iter().any(|(n, _)| n == col) {
                            tracing::info!(table = %format!("{schema}.{table}"), column = %col, "Adding new column");
                            let def = def.replace(" NOT NULL", "");
                            exec(format!("ALTER TABLE {} ADD COLUMN {def};", q(&table)))
                                .await
                                .map_err(pg_err("adding column"))?;
                        }
                    }
                }
                let load = format!("_load_{n}");
                let mut load_defs = defs.clone();
                load_defs.push("\"_ord\" bigint NOT NULL".into());
                exec(format!(
                    "DROP TABLE IF EXISTS {l}; CREATE TEMP TABLE {l} ({});",
                    load_defs.join(", "),
                    l = ident(&load)
                ))
                .await
                .map_err(pg_err("creating load table"))?;
                let select = if pk.is_empty() {
                    format!("SELECT {} FROM {}", names.join(", "), ident(&load))
                } else {
                    format!(
                        "SELECT DISTINCT ON ({pk}) {} FROM {} ORDER BY {pk}, \"_ord\" DESC",
                        names.join(", "),
                        ident(&load),
                        pk = pk.join(", ")
                    )
                };
                let conflict = if pk.is_empty() {
                    String::new()
                } else {
                    let updates: Vec<String> = names
                        .iter()
                        .filter(|n| !pk.contains(n))
                        .map(|n| format!("{n} = EXCLUDED.{n}"))
                        .collect();
                    format!(" ON CONFLICT ({}) DO UPDATE SET {}", pk.join(", "), updates.join(", "))
                };
                let mut copy_names = names.clone();
                copy_names.push("\"_ord\"".into());
                Ok(PgTarget {
                    copy_sql: format!("COPY {} ({}) FROM STDIN", ident(&load), copy_names.join(", ")),
                    merge_sql: Some(format!(
                        "INSERT INTO {} ({}) {select}{conflict}; TRUNCATE {};",
                        q(&table),
                        names.join(", "),
                        ident(&load)
                    )),
                    plan: plan.clone(),
                    schema,
                    table,
                    staging: None,
                    load_table: Some(load),
                    buf: Vec::new(),
                    rows_in_buf: 0,
                    ord: 0,
                    rows_before,
                })
            }
        }
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
                _ => dest_error(format!("PostgreSQL: loading stream {stream}"), e),
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
            "psql '{}' -c 'select count(*) from {}.{}'",
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
                        to_json(finished_at)#>>'{}', status, records, error
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
            })
            .collect())
    }

    async fn begin(&mut self, run: &RunInfo, plans: &[StreamPlan]) -> Result<()> {
        self.client
            .execute(
                "UPDATE datahub._runs SET status = 'interrupted' WHERE instance = $1 AND status = 'running'",
                &[&run.instance],
            )
            .await
            .map_err(pg_err("recording the run"))?;
        self.client
            .execute(
                "INSERT INTO datahub._runs (run_id, connector, instance, config_fingerprint, started_at, status)
                 VALUES ($1, $2, $3, $4, $5::text::timestamptz, 'running')",
                &[&run.run_id, &run.connector, &run.instance, &run.config_fingerprint, &run.started_at],
            )
            .await
            .map_err(pg_err("recording the run"))?;
        self.client.batch_execute("BEGIN").await.map_err(pg_err("starting a transaction"))?;
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
                targets.insert(plan.stream.clone(), self.prepare_target(plan, n).await?);
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
            for col in &target.plan.columns {
                push_cell(buf, &col.cell_of(stream, record)?);
                buf.push(b'\t');
            }
            push_escaped(buf, &run.extracted_at);
            buf.push(b'\t');
            push_escaped(buf, &run.info.run_id);
            if target.load_table.is_some() {
                target.ord += 1;
                buf.push(b'\t');
                buf.extend_from_slice(target.ord.to_string().as_bytes());
            }
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
        let result = async {
            for target in run.targets.values_mut() {
                Self::flush(&self.client, &mut self.inflight, target).await?;
            }
            settle(&mut self.inflight).await?;
            for target in run.targets.values() {
                let Some(staging) = &target.staging else { continue };
                let q = |t: &str| format!("{}.{}", ident(&target.schema), ident(t));
                if !target.plan.primary_key.is_empty() {
                    let pk: Vec<String> = target.plan.primary_key.iter().map(|k| ident(k)).collect();
                    self.client
                        .batch_execute(&format!(
                            "ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})",
                            q(staging),
                            ident(&format!("{staging}_pkey")),
                            pk.join(", ")
                        ))
                        .await
                        .map_err(|e| match e.code() {
                            Some(c) if *c == SqlState::UNIQUE_VIOLATION => Error::new(
                                ErrorKind::Source,
                                format!("stream {}: the source sent the same primary key twice in one full refresh", target.plan.stream),
                            )
                            .with_context("stream", target.plan.stream.clone()),
                            _ => dest_error("PostgreSQL: adding the primary key", e),
                        })?;
                }
                let mut sql = format!(
                    "DROP TABLE IF EXISTS {t}; ALTER TABLE {s} RENAME TO {tn};",
                    t = q(&target.table),
                    s = q(staging),
                    tn = ident(&target.table)
                );
                if !target.plan.primary_key.is_empty() {
                    sql.push_str(&format!(
                        " ALTER TABLE {t} RENAME CONSTRAINT {old} TO {new};",
                        t = q(&target.table),
                        old = ident(&format!("{staging}_pkey")),
                        new = ident(&format!("{}_pkey", target.table))
                    ));
                }
                self.client.batch_execute(&sql).await.map_err(pg_err("swapping in the new snapshot"))?;
            }
            for (stream, value) in run.final_states.iter().chain(&run.pending_states) {
                self.save_state(&run.info.instance, stream, value, &run.info.run_id).await?;
            }
            let records = serde_json::to_value(&outcome.records).unwrap_or_default();
            self.client
                .execute(
                    "UPDATE datahub._runs SET status = 'succeeded', finished_at = $2::text::timestamptz, records = $3, error = NULL
                     WHERE run_id = $1",
                    &[&run.info.run_id, &outcome.finished_at, &records],
                )
                .await
                .map_err(pg_err("recording the run"))?;
            self.client.batch_execute("COMMIT").await.map_err(pg_err("committing the run"))
        }
        .await;
        match result {
            Ok(()) => self.in_tx = false,
            Err(e) => {
                self.rollback_if_open().await;
                return Err(e);
            }
        }
        let mut stats = BTreeMap::new();
        for (stream, target) in &run.targets {
            let rows = self.count(&target.schema, &target.table).await?;
            let received = outcome.records.get(stream).copied().unwrap_or(0);
            stats.insert(
                stream.clone(),
                LoadStats::after_commit(rows, target.rows_before, received, target.staging.is_some()),
            );
        }
        Ok(stats)
    }

    async fn abort(&mut self, outcome: &RunOutcome) -> Result<()> {
        self.rollback_if_open().await;
        if let Some(run) = self.run.take() {
            for target in run.targets.values() {
                if let Some(staging) = &target.staging {
                    self.client
                        .batch_execute(&format!(
                            "DROP TABLE IF EXISTS {}.{}",
                            ident(&target.schema),
                            ident(staging)
                        ))
                        .await
                        .map_err(pg_err("dropping a staging table"))?;
                }
            }
        }
        let records = serde_json::to_value(&outcome.records).unwrap_or_default();
        self.client
            .execute(
                "UPDATE datahub._runs SET status = 'failed', finished_at = $2::text::timestamptz, records = $3, error = $4
                 WHERE run_id = $1",
                &[&outcome.run_id, &outcome.finished_at, &records, &outcome.error],
            )
            .await
            .map_err(pg_err("recording the run"))?;
        Ok(())
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
