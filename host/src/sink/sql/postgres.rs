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
//! The run itself is [`SqlDestination`]'s; this module is PostgreSQL's [`Store`].

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use connector_api::{Error, ErrorKind, Result, SyncMode};
use futures::SinkExt;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};

use super::{
    Batch, SqlDestination, Store, Table, books, column_defs, ident, ident_list, statement, upsert_clause,
};
use crate::sink::schema::{Cell, ColumnType};
use crate::sink::{BATCH_ROWS, Destination, Registration, Spec, StreamPlan, redact_destination};

/// How long any statement waits for a lock another session holds (a report's `LOCK
/// TABLE`, a long `ALTER`) before the run fails with a message saying so; a URL's
/// `options=-c lock_timeout=…` overrides it.
const LOCK_TIMEOUT: &str = "60s";

/// How long a run keeps trying for its instance's lock before it is refused.
const LOCK_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The transaction advisory lock that serialises table changes between runs.
const DDL_LOCK: i64 = 0x6461_7461_6875_6231;

/// A PostgreSQL database as a hub.
pub type PostgresDestination = SqlDestination<Postgres>;

/// A PostgreSQL database: the [`Store`] of [`PostgresDestination`].
pub struct Postgres {
    shown_url: String,
    client: Arc<Client>,
    inflight: Inflight,
    /// The instance whose advisory lock this session holds.
    locked: Option<String>,
    /// A statement was sent and its answer not read: set around every statement, and
    /// left set when the run stopped waiting for it (a signal drops the call), so
    /// [`Store::cancel`] knows the server may still be running it.
    sent: bool,
}

/// The batch being loaded in the background, if any.
type Inflight = Option<tokio::task::JoinHandle<Result<()>>>;

/// How a stream's rows are loaded: buffered as COPY text, copied 5,000 at a time into
/// the session's temporary load table, and for incremental streams merged from there.
pub struct PgLoad {
    stream: String,
    /// The temporary table rows are copied into; for full refresh it holds them until
    /// the swap.
    table: String,
    staged: bool,
    copy_sql: String,
    merge_sql: Option<String>,
    buf: Vec<u8>,
    rows_in_buf: usize,
    /// Rows copied so far: the merge keeps a key's last row.
    ord: u64,
}

/// A failure of `sql` as a destination error naming the statement.
fn pg_err(sql: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| pg_error(format!("PostgreSQL: {}", statement(sql)), &e)
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

/// `postgres://` (or `postgresql://`), a server many people and machines share.
pub const DESTINATION: Registration = Registration {
    schemes: &["postgres://", "postgresql://"],
    form: "postgres://user@host/db",
    description: "A PostgreSQL database, a schema per connector",
    example: "postgres://hub@db.example.com/hub",
    open: |spec| Box::pin(open(spec)),
    open_existing: |spec| Box::pin(open(spec)),
};

async fn open(spec: Spec<'_>) -> Result<Box<dyn Destination>> {
    Ok(Box::new(PostgresDestination::connect(spec.full).await?))
}

impl PostgresDestination {
    /// Connects to `url` and prepares the bookkeeping tables.
    pub async fn connect(url: &str) -> Result<Self> {
        Postgres::connect(url).await.map(SqlDestination::new)
    }
}

impl Postgres {
    /// Awaits `call`, a statement on this session, marked [`Postgres::sent`] until it
    /// answers.
    async fn answer<T>(&mut self, call: impl Future<Output = T>) -> T {
        self.sent = true;
        let answer = call.await;
        self.sent = false;
        answer
    }

    /// Connects to `url` and prepares the bookkeeping tables.
    async fn connect(url: &str) -> Result<Self> {
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
        if !lock_timeout.is_empty() {
            client.batch_execute(&lock_timeout).await.map_err(pg_err(&lock_timeout))?;
        }
        let mut store =
            Postgres { shown_url, client: Arc::new(client), inflight: None, locked: None, sent: false };
        books::prepare(&mut store).await?;
        Ok(store)
    }
}

#[async_trait]
impl Store for Postgres {
    type Load = PgLoad;
    const ONE_WRITER: bool = false;
    const BOOKS: Option<&'static str> = Some("datahub");
    const BEGIN: &'static str = "BEGIN";
    const EXISTS: &'static str = "EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n
        ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)";
    const COLUMNS: &'static str = "SELECT column_name::text, data_type::text FROM information_schema.columns
        WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position";
    const SHAPE: &'static str =
        "SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
            WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table'
            WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' ELSE 'relation of kind ' || c.relkind::text END,
        EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a
            ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
            WHERE i.indrelid = c.oid AND i.indisprimary AND a.attname = '_instance')
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2";

    fn describe(&self) -> String {
        format!("PostgreSQL database {}", self.shown_url)
    }

    fn shell(&self) -> String {
        format!("psql '{}' -c", self.shown_url)
    }

    fn table(connector: &str, stream: &str) -> Table {
        Table { schema: Some(connector.to_string()), name: stream.to_string() }
    }

    fn type_name(ty: ColumnType) -> &'static str {
        match ty {
            ColumnType::Text => "text",
            ColumnType::Integer => "bigint",
            ColumnType::Real => "double precision",
            ColumnType::Boolean => "boolean",
            ColumnType::Timestamp => "timestamp with time zone",
            ColumnType::Json => "jsonb",
        }
    }

    fn cast(param: &str, ty: ColumnType) -> String {
        format!("{param}::text::{}", Self::type_name(ty))
    }

    fn text(column: &str, ty: ColumnType) -> String {
        match ty {
            ColumnType::Timestamp => format!("(to_json({column})#>>'{{}}')"),
            _ => format!("{column}::text"),
        }
    }

    fn replace_view(view: &Table, sql: &str) -> String {
        // A view whose columns changed cannot be replaced in place; an operator's view
        // on it would have to go first, which is theirs to decide.
        format!("CREATE OR REPLACE VIEW {} AS {sql}", view.quoted())
    }

    const DIALECT: &'static str = "postgres";

    async fn exec(&mut self, sql: &str, args: &[&str]) -> Result<u64> {
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        let client = Arc::clone(&self.client);
        self.answer(client.execute(sql, &params)).await.map_err(pg_err(sql))
    }

    async fn query(&mut self, sql: &str, args: &[&str]) -> Result<Vec<Vec<Option<String>>>> {
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        let client = Arc::clone(&self.client);
        let rows = self.answer(client.query(sql, &params)).await.map_err(pg_err(sql))?;
        let text = |row: &tokio_postgres::Row, i: usize| match *row.columns()[i].type_() {
            Type::BOOL => row.get::<_, Option<bool>>(i).map(|b| if b { "1" } else { "0" }.to_string()),
            Type::INT8 => row.get::<_, Option<i64>>(i).map(|n| n.to_string()),
            _ => row.get(i),
        };
        Ok(rows.iter().map(|row| (0..row.len()).map(|i| text(row, i)).collect()).collect())
    }

    async fn execute(&mut self, sql: &str) -> Result<()> {
        let client = Arc::clone(&self.client);
        self.answer(client.batch_execute(sql)).await.map_err(pg_err(sql))
    }

    /// Sends a cancel request when a statement may still run on the server: one the run
    /// stopped waiting for, or a batch loading in the background. A statement waiting
    /// on another session's lock would otherwise keep waiting (up to `lock_timeout`)
    /// after this process exits, holding the instance's lock and the transaction's
    /// locks, and the rollback queued behind it could not run. The server ignores a
    /// cancel that reaches an idle session.
    async fn cancel(&mut self) {
        let loading = self.inflight.as_ref().is_some_and(|h| !h.is_finished());
        if !(std::mem::take(&mut self.sent) || loading) {
            return;
        }
        tracing::info!("Cancelling the statement the run left waiting on the server");
        if let Err(e) = self.client.cancel_token().cancel_query(tls_connector()).await {
            tracing::warn!(error = %pg_error("PostgreSQL: cancel request", &e), "Could not cancel the waiting statement; the server ends it at lock_timeout");
        }
    }

    async fn lock_table_changes(&mut self) -> Result<()> {
        self.execute(&format!("SELECT pg_advisory_xact_lock({DDL_LOCK})")).await
    }

    async fn try_lock(&mut self, instance: &str) -> Result<bool> {
        // A killed run's session lets go of the lock only when its server process
        // notices the connection is gone, which may take a moment after the kill: try
        // for LOCK_GRACE before refusing.
        let (deadline, sql) = (std::time::Instant::now() + LOCK_GRACE, "SELECT pg_try_advisory_lock($1)");
        loop {
            let got: bool =
                self.client.query_one(sql, &[&advisory_key(instance)]).await.map_err(pg_err(sql))?.get(0);
            if got {
                self.locked = Some(instance.to_string());
            }
            if got || std::time::Instant::now() >= deadline {
                return Ok(got);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    async fn unlock(&mut self) {
        if let Some(instance) = self.locked.take()
            && let Err(e) =
                self.client.execute("SELECT pg_advisory_unlock($1)", &[&advisory_key(&instance)]).await
        {
            tracing::warn!(error = %e, "Could not release the instance lock; it ends with the connection");
        }
    }

    async fn prepare_load(&mut self, plan: &StreamPlan, table: &Table, n: usize) -> Result<PgLoad> {
        let (columns, load) = (column_defs(plan, Self::type_name).join(", "), ident(&format!("_load_{n}")));
        let create = format!("CREATE TEMP TABLE {load} ({columns}, \"_ord\" bigint NOT NULL)");
        self.execute(&format!("DROP TABLE IF EXISTS pg_temp.{load}; {create}")).await?;
        let names = ident_list(&plan.load_columns());
        let staged = plan.sync_mode == SyncMode::FullRefresh;
        // A full refresh's rows stay in the load table until the final transaction
        // replaces the instance's rows with them.
        let merge_sql = (!staged).then(|| {
            let key = ident_list(&plan.table_key());
            format!(
                "INSERT INTO {} ({names}) SELECT DISTINCT ON ({key}) {names} FROM {load} ORDER BY {key}, \"_ord\" DESC {}; TRUNCATE {load};",
                table.quoted(),
                upsert_clause(plan)
            )
        });
        Ok(PgLoad {
            stream: plan.stream.clone(),
            copy_sql: format!("COPY {load} ({names}, \"_ord\") FROM STDIN"),
            table: load,
            staged,
            merge_sql,
            buf: Vec::new(),
            rows_in_buf: 0,
            ord: 0,
        })
    }

    async fn write(&mut self, load: &mut PgLoad, batch: Batch<'_>) -> Result<()> {
        let plan = batch.plan;
        let buf = &mut load.buf;
        for record in batch.records {
            let row_start = buf.len();
            push_escaped(buf, &batch.run.instance);
            buf.push(b'\t');
            for col in &plan.columns {
                match col.cell_of(&plan.stream, record) {
                    Ok(cell) => push_cell(buf, &cell),
                    Err(e) => {
                        // Never leave half a row for COPY: the rows before it stay.
                        buf.truncate(row_start);
                        return Err(e);
                    }
                }
                buf.push(b'\t');
            }
            push_escaped(buf, batch.extracted_at);
            buf.push(b'\t');
            push_escaped(buf, &batch.run.run_id);
            load.ord += 1;
            buf.push(b'\t');
            buf.extend_from_slice(load.ord.to_string().as_bytes());
            buf.push(b'\n');
            load.rows_in_buf += 1;
        }
        if load.rows_in_buf >= BATCH_ROWS {
            self.flush(load).await?;
        }
        Ok(())
    }

    /// Sends `load`'s buffered rows (COPY, then the merge for incremental streams) on
    /// a task of its own, so the next batch is built while the server loads this one.
    /// Batches go one at a time, in order: the previous one is awaited first.
    async fn flush(&mut self, load: &mut PgLoad) -> Result<()> {
        if load.rows_in_buf == 0 {
            return Ok(());
        }
        self.settle().await?;
        let data = Bytes::from(std::mem::take(&mut load.buf));
        load.rows_in_buf = 0;
        let stream = load.stream.clone();
        let copy_sql = load.copy_sql.clone();
        let merge_sql = load.merge_sql.clone();
        let client = Arc::clone(&self.client);
        self.inflight = Some(tokio::spawn(async move {
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

    async fn settle(&mut self) -> Result<()> {
        match self.inflight.take() {
            Some(handle) => {
                handle.await.map_err(|e| Error::internal(format!("PostgreSQL loader task failed: {e}")))?
            }
            None => Ok(()),
        }
    }

    fn staging(load: &PgLoad) -> Option<&str> {
        load.staged.then_some(load.table.as_str())
    }

    /// Drops the run's temporary tables; they would vanish with the session anyway.
    async fn drop_loads(&mut self, loads: Vec<&PgLoad>) {
        let tables: Vec<String> = loads.iter().map(|l| format!("pg_temp.{}", l.table)).collect();
        if !tables.is_empty()
            && let Err(e) =
                self.client.batch_execute(&format!("DROP TABLE IF EXISTS {}", tables.join(", "))).await
        {
            tracing::debug!(error = %e, "Could not drop temporary tables; they go with the session");
        }
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
