//! A test-only connector, `test-source`, registered exactly as a real connector crate
//! registers, plus helpers to drive the CLI in-process.
#![allow(dead_code)]

pub mod watched;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use connector_api::secret::{ExposeSecret, Secret};
use connector_api::{
    Catalog, CheckReport, CheckStatus, ConfiguredCatalog, Connector, Error, ErrorKind, Message,
    MessageStream, Metadata, Result, Spec, State, StreamDescriptor, StreamEvent, SyncMode,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// The only key `test-source` accepts.
pub const GOOD_KEY: &str = "canary-key-7f3a9";

/// `test-source`'s config.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestConfig {
    /// Key the source checks.
    pub api_key: Secret,
    /// How many items the `items` stream holds.
    pub items: u64,
    /// How many events the `events` stream holds.
    #[serde(default)]
    pub events: u64,
    /// Records per page.
    #[serde(default = "default_page_size")]
    pub page_size: u64,
    /// Fail the read after this many records of `fail_stream`.
    #[serde(default)]
    pub fail_after: Option<u64>,
    /// The stream `fail_after` applies to.
    #[serde(default)]
    pub fail_stream: Option<String>,
    /// Adds a `score` column to both streams (schema evolution).
    #[serde(default)]
    pub with_score: bool,
    /// Declares `rank` as a string instead of an integer (a type change).
    #[serde(default)]
    pub rank_as_text: bool,
    /// Changes item names, so a reload is visible.
    #[serde(default)]
    pub version: u64,
    /// Which source instance this is: rows and checkpoints are keyed by it.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Streams the config allows (all when omitted); `discover` lists only these.
    #[serde(default)]
    pub streams: Option<Vec<String>>,
    /// Milliseconds each page takes, so a run lasts long enough to race another.
    #[serde(default)]
    pub page_delay_ms: u64,
    /// After `fail_after` records of `fail_stream`, end the whole read with an error
    /// (a failure no stream survives) instead of failing only that stream.
    #[serde(default)]
    pub fail_hard: bool,
    /// Give record number `null_id_at` (from 0) of `items` a null `id`.
    #[serde(default)]
    pub null_id_at: Option<u64>,
    /// Send item number `repeat_item` (from 0) twice.
    #[serde(default)]
    pub repeat_item: Option<u64>,
    /// Put a NUL character in every item's name.
    #[serde(default)]
    pub nul_in_names: bool,
    /// Give item number `bad_time_at` (from 0) a `created_at` that is not a timestamp.
    #[serde(default)]
    pub bad_time_at: Option<u64>,
    /// Give item number `bad_rank_at` (from 0) a `rank` that is text, not an integer.
    #[serde(default)]
    pub bad_rank_at: Option<u64>,
}

fn default_tenant() -> String {
    "tenant-a".into()
}

fn default_page_size() -> u64 {
    25
}

/// A deterministic source of `items` (full refresh) and `events` (incremental on `seq`).
#[derive(Default)]
pub struct TestConnector;

connector_api::register_connector!(TestConnector);

impl TestConnector {
    fn catalog(config: Option<&TestConfig>) -> Catalog {
        let score = config.is_some_and(|c| c.with_score);
        let rank_type = if config.is_some_and(|c| c.rank_as_text) { "string" } else { "integer" };
        let mut items = json!({
            "type": "object",
            "properties": {
                "id": {"type": "string", "description": "Item id."},
                "name": {"type": "string", "description": "Display name."},
                "rank": {"type": rank_type, "description": "Position."},
                "price": {"type": "number", "description": "Price."},
                "active": {"type": "boolean", "description": "Whether it is sold."},
                "created_at": {"type": "string", "format": "date-time", "description": "Creation time."},
                "tags": {"type": "array", "items": {"type": "string"}, "description": "Labels | with a pipe."}
            }
        });
        let mut events = json!({
            "type": "object",
            "properties": {
                "seq": {"type": "integer", "description": "Sequence number."},
                "item_id": {"type": "string", "description": "Item."},
                "kind": {"type": "string", "description": "What happened.\nOn two lines."}
            }
        });
        if score {
            items["properties"]["score"] = json!({"type": ["number", "null"], "description": "Score."});
            events["properties"]["score"] = json!({"type": ["number", "null"], "description": "Score."});
        }
        Catalog {
            streams: vec![
                StreamDescriptor {
                    name: "items".into(),
                    description: "Things for sale.".into(),
                    json_schema: items,
                    primary_key: vec!["id".into()],
                    cursor_field: None,
                    supported_sync_modes: vec![SyncMode::FullRefresh],
                },
                StreamDescriptor {
                    name: "events".into(),
                    description: "What happened to items, append-only.".into(),
                    json_schema: events,
                    primary_key: vec!["seq".into()],
                    cursor_field: Some("seq".into()),
                    supported_sync_modes: vec![SyncMode::Incremental, SyncMode::FullRefresh],
                },
            ],
        }
    }

    fn parse(config: &Value) -> Result<TestConfig> {
        let c: TestConfig = connector_api::config::parse(config)?;
        if c.api_key.expose_secret() != GOOD_KEY {
            return Err(
                Error::new(ErrorKind::Auth, "The API key was rejected").with_hint("Use the right key")
            );
        }
        Ok(c)
    }
}

pub fn item(i: u64, c: &TestConfig) -> Value {
    let mut v = json!({
        "id": format!("item-{i:05}"),
        "name": format!("Item {i} v{}\twith\\tab\nand newline", c.version),
        "rank": if c.rank_as_text { json!(i.to_string()) } else { json!(i) },
        "price": i as f64 * 1.25,
        "active": i.is_multiple_of(2),
        "created_at": format!("2026-01-{:02}T10:00:00Z", 1 + i % 28),
        "tags": ["a", format!("t{}", i % 3)],
    });
    if c.with_score {
        v["score"] = json!(i as f64 / 10.0);
    }
    v
}

pub fn event(seq: u64, c: &TestConfig) -> Value {
    let mut v = json!({"seq": seq, "item_id": format!("item-{:05}", seq % 7), "kind": "sold"});
    if c.with_score {
        v["score"] = json!(seq as f64);
    }
    v
}

#[async_trait]
impl Connector for TestConnector {
    fn metadata(&self) -> Metadata {
        Metadata {
            id: "test-source",
            name: "Test source",
            version: "0.0.1",
            description: "A deterministic source for the host's tests.",
            documentation: "host/tests/common/mod.rs",
        }
    }

    fn spec(&self) -> Spec {
        Spec { config_schema: serde_json::to_value(schemars::schema_for!(TestConfig)).unwrap() }
    }

    async fn check(&self, config: &Value) -> Result<CheckReport> {
        let c: TestConfig = connector_api::config::parse(config)?;
        let mut report = CheckReport::default();
        report.push("reach source", CheckStatus::Ok, "reachable");
        if c.api_key.expose_secret() == GOOD_KEY {
            report.push("authenticate", CheckStatus::Ok, "key accepted");
        } else {
            report.push("authenticate", CheckStatus::Failed, "key rejected");
        }
        Ok(report)
    }

    async fn discover(&self, config: &Value) -> Result<Catalog> {
        let c = Self::parse(config)?;
        let mut catalog = Self::catalog(Some(&c));
        if let Some(allowed) = &c.streams {
            catalog.streams.retain(|s| allowed.contains(&s.name));
        }
        Ok(catalog)
    }

    fn source_identity(&self, config: &Value) -> Result<String> {
        let c: TestConfig = connector_api::config::parse(config)?;
        Ok(c.tenant)
    }

    fn static_catalog(&self) -> Option<Catalog> {
        Some(Self::catalog(None))
    }

    async fn read(
        &self,
        config: &Value,
        catalog: &ConfiguredCatalog,
        state: &State,
    ) -> Result<MessageStream> {
        let c = Self::parse(config)?;
        let mut out: Vec<Result<Message>> = Vec::new();
        'streams: for s in &catalog.streams {
            let name = s.stream.name.as_str();
            out.push(Ok(Message::status(name, StreamEvent::Started)));
            let (from, to) = match name {
                "items" => (0, c.items),
                _ => {
                    let after = match s.sync_mode {
                        SyncMode::Incremental => state.get(name).and_then(|v| v["seq"].as_u64()).unwrap_or(0),
                        SyncMode::FullRefresh => 0,
                    };
                    (after, c.events)
                }
            };
            let mut emitted = 0;
            let mut n = from;
            while n < to {
                let page_end = (n + c.page_size).min(to);
                for i in n..page_end {
                    if c.fail_stream.as_deref() == Some(name) && c.fail_after == Some(emitted) {
                        let err = Error::new(ErrorKind::Transient, "injected failure after retries")
                            .with_context("stream", name.to_string());
                        out.push(Ok(Message::status(name, StreamEvent::failed(&err))));
                        if c.fail_hard {
                            out.push(Err(err));
                            break 'streams;
                        }
                        continue 'streams;
                    }
                    let mut record = if name == "items" { item(i, &c) } else { event(i + 1, &c) };
                    if name == "items" && c.null_id_at == Some(i) {
                        record["id"] = Value::Null;
                    }
                    if name == "items" && c.nul_in_names {
                        record["name"] = json!(format!("Item\u{0}{i}"));
                    }
                    if name == "items" && c.bad_time_at == Some(i) {
                        record["created_at"] = json!("31/02/2026 25:61");
                    }
                    if name == "items" && c.bad_rank_at == Some(i) {
                        record["rank"] = json!("first");
                    }
                    if name == "items" && c.repeat_item == Some(i) {
                        out.push(Ok(Message::record(name, record.clone())));
                        emitted += 1;
                    }
                    out.push(Ok(Message::record(name, record)));
                    emitted += 1;
                }
                out.push(Ok(Message::status(name, StreamEvent::PageFetched { records: page_end - n })));
                if name == "events" {
                    out.push(Ok(Message::state(name, json!({"seq": page_end}))));
                }
                n = page_end;
            }
            out.push(Ok(Message::status(name, StreamEvent::Completed { records: emitted })));
        }
        let delay = std::time::Duration::from_millis(c.page_delay_ms);
        Ok(Box::pin(futures::StreamExt::then(futures::stream::iter(out), move |m| async move {
            if matches!(&m, Ok(Message::Status(s)) if matches!(s.event, StreamEvent::PageFetched { .. })) {
                tokio::time::sleep(delay).await;
            }
            m
        })))
    }
}

/// What one in-process CLI invocation printed and returned.
pub struct Outcome {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `connector-host <args>` in-process.
pub async fn cli(args: &[&str]) -> Outcome {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut argv = vec!["connector-host"];
    argv.extend_from_slice(args);
    let exit = host::run_cli(argv, &mut out, &mut err).await;
    Outcome {
        code: exit.code(),
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
    }
}

/// Writes a `test-source` config file in `dir` with extra `[config]` lines.
pub fn config_file(dir: &Path, file: &str, config_lines: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(
        &path,
        format!(
            "connector = \"test-source\"\nname = \"t1\"\n\n[config]\napi_key = \"{GOOD_KEY}\"\n{config_lines}"
        ),
    )
    .unwrap();
    path
}

/// A fresh database, named `{prefix}_<uuid>`, on the PostgreSQL server that
/// `DATAHUB_TEST_POSTGRES_URL` names; `None` (with the reason printed) when none is
/// configured outside CI. Under `CI` a missing server fails the test instead.
pub async fn fresh_postgres_database(prefix: &str) -> Option<String> {
    let Ok(url) = std::env::var("DATAHUB_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but DATAHUB_TEST_POSTGRES_URL is not: PostgreSQL tests must run"
        );
        eprintln!("skipping: set DATAHUB_TEST_POSTGRES_URL to run the PostgreSQL destination tests");
        return None;
    };
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("DATAHUB_TEST_POSTGRES_URL must accept connections");
    tokio::spawn(conn);
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let mut db_url = url::Url::parse(&url).unwrap();
    db_url.set_path(&format!("/{name}"));
    Some(db_url.to_string())
}

/// A destination under test and how to look inside it.
pub enum Db {
    Sqlite(String),
    Postgres(String),
}

impl Db {
    pub fn dest(&self) -> String {
        match self {
            Db::Sqlite(path) => format!("sqlite:{path}"),
            Db::Postgres(url) => url.clone(),
        }
    }

    pub fn table(&self, stream: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("test_source__{stream}"),
            Db::Postgres(_) => format!("test_source.{stream}"),
        }
    }

    /// Runs a query returning one text cell (NULL as "").
    pub async fn scalar(&self, sql: &str) -> String {
        match self {
            Db::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.query_row(sql, [], |r| {
                    let v: rusqlite::types::Value = r.get(0)?;
                    Ok(match v {
                        rusqlite::types::Value::Null => String::new(),
                        rusqlite::types::Value::Integer(i) => i.to_string(),
                        rusqlite::types::Value::Real(f) => f.to_string(),
                        rusqlite::types::Value::Text(t) => t,
                        rusqlite::types::Value::Blob(_) => "<blob>".into(),
                    })
                })
                .unwrap()
            }
            Db::Postgres(url) => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                let row = client.query_one(&format!("SELECT ({sql})::text"), &[]).await.unwrap();
                row.get::<_, Option<String>>(0).unwrap_or_default()
            }
        }
    }

    pub async fn count(&self, stream: &str) -> u64 {
        self.scalar(&format!("SELECT count(*) FROM {}", self.table(stream))).await.parse().unwrap()
    }

    pub async fn state_seq(&self) -> String {
        let sql = match self {
            Db::Sqlite(_) => {
                "SELECT json_extract(value, '$.seq') FROM _state WHERE instance = 'test-source:tenant-a' AND stream = 'events'"
            }
            Db::Postgres(_) => {
                "SELECT value->>'seq' FROM datahub._state WHERE instance = 'test-source:tenant-a' AND stream = 'events'"
            }
        };
        self.scalar(sql).await
    }

    /// Runs statements that return nothing (DDL, inserts).
    pub async fn execute(&self, sql: &str) {
        match self {
            Db::Sqlite(path) => rusqlite::Connection::open(path).unwrap().execute_batch(sql).unwrap(),
            Db::Postgres(url) => {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                client.batch_execute(sql).await.unwrap();
            }
        }
    }

    /// A suffix unique to this database, for server-wide names (roles).
    pub fn tag(&self) -> String {
        self.dest().rsplit('/').next().unwrap_or_default().replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    }

    /// How many runs `_runs` records with `status` (0 while the hub does not exist).
    pub async fn runs_with_status(&self, status: &str) -> i64 {
        let table = match self {
            Db::Sqlite(path) if !std::path::Path::new(path).exists() => return 0,
            Db::Sqlite(_) => "_runs",
            Db::Postgres(_) => "datahub._runs",
        };
        match self {
            Db::Sqlite(path) => rusqlite::Connection::open(path)
                .and_then(|c| {
                    c.query_row(&format!("SELECT count(*) FROM {table} WHERE status = ?1"), [status], |r| {
                        r.get(0)
                    })
                })
                .unwrap_or(0),
            Db::Postgres(url) => {
                let Ok((client, conn)) = tokio_postgres::connect(url, tokio_postgres::NoTls).await else {
                    return 0;
                };
                tokio::spawn(conn);
                client
                    .query_one(&format!("SELECT count(*) FROM {table} WHERE status = $1"), &[&status])
                    .await
                    .map(|r| r.get(0))
                    .unwrap_or(0)
            }
        }
    }

    pub async fn last_run_status(&self) -> String {
        let sql = match self {
            Db::Sqlite(_) => "SELECT status FROM _runs ORDER BY started_at DESC, run_id DESC LIMIT 1",
            Db::Postgres(_) => {
                "SELECT status FROM datahub._runs ORDER BY started_at DESC, run_id DESC LIMIT 1"
            }
        };
        self.scalar(sql).await
    }
}

/// Runs `test-source` with `[config]` extras into `db`; returns (exit code, JSON summary, stderr).
pub async fn run(dir: &Path, db: &Db, config: &str, extra: &[&str]) -> (u8, Value, String) {
    let path = config_file(dir, "source.toml", config);
    let path = path.display().to_string();
    let dest = db.dest();
    let mut args = vec!["run", "--config", &path, "--dest", &dest, "--json"];
    args.extend_from_slice(extra);
    let out = cli(&args).await;
    let summary = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    (out.code, summary, out.stderr)
}

pub fn records(summary: &Value, stream: &str) -> u64 {
    summary["streams"].as_array().unwrap().iter().find(|s| s["stream"] == stream).unwrap()["records"]
        .as_u64()
        .unwrap()
}

/// A fresh database on the configured PostgreSQL server, or `None` when none is
/// configured outside CI.
pub async fn postgres() -> Option<Db> {
    fresh_postgres_database("hub_test").await.map(Db::Postgres)
}

/// An SQLite hub in `dir`.
pub fn sqlite(dir: &Path) -> Db {
    Db::Sqlite(dir.join("hub.db").display().to_string())
}
