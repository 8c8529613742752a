//! `run` into every destination with the test connector: exact rows, types, state,
//! atomicity under injected failures, schema evolution, and the runs/state commands.
//! PostgreSQL scenarios run when DATAHUB_TEST_POSTGRES_URL is set (and must, under CI).

mod common;

use std::path::Path;

use common::{cli, config_file};
use serde_json::Value;

/// A destination under test and how to look inside it.
enum Db {
    Sqlite(String),
    Postgres(String),
}

impl Db {
    fn dest(&self) -> String {
        match self {
            Db::Sqlite(path) => format!("sqlite:{path}"),
            Db::Postgres(url) => url.clone(),
        }
    }

    fn table(&self, stream: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("test_source__{stream}"),
            Db::Postgres(_) => format!("test_source.{stream}"),
        }
    }

    /// Runs a query returning one text cell (NULL as "").
    async fn scalar(&self, sql: &str) -> String {
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

    async fn count(&self, stream: &str) -> u64 {
        self.scalar(&format!("SELECT count(*) FROM {}", self.table(stream))).await.parse().unwrap()
    }

    async fn state_seq(&self) -> String {
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

    async fn last_run_status(&self) -> String {
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
async fn run(dir: &Path, db: &Db, config: &str, extra: &[&str]) -> (u8, Value, String) {
    let path = config_file(dir, "source.toml", config);
    let path = path.display().to_string();
    let dest = db.dest();
    let mut args = vec!["run", "--config", &path, "--dest", &dest, "--json"];
    args.extend_from_slice(extra);
    let out = cli(&args).await;
    let summary = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    (out.code, summary, out.stderr)
}

fn records(summary: &Value, stream: &str) -> u64 {
    summary["streams"].as_array().unwrap().iter().find(|s| s["stream"] == stream).unwrap()["records"]
        .as_u64()
        .unwrap()
}

async fn loads_exact_rows_and_types(dir: &Path, db: &Db) {
    let (code, summary, err) = run(dir, db, "items = 120\nevents = 70\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary["status"], "succeeded");
    assert_eq!(db.count("items").await, 120);
    assert_eq!(db.scalar(&format!("SELECT count(DISTINCT id) FROM {}", db.table("items"))).await, "120");
    assert_eq!(db.count("events").await, 70);
    assert_eq!(db.state_seq().await, "70");
    let items = db.table("items");
    assert_eq!(
        db.scalar(&format!("SELECT name FROM {items} WHERE id = 'item-00007'")).await,
        "Item 7 v0\twith\\tab\nand newline"
    );
    assert_eq!(db.scalar(&format!("SELECT rank FROM {items} WHERE id = 'item-00007'")).await, "7");
    assert_eq!(db.scalar(&format!("SELECT sum(price) FROM {items}")).await.parse::<f64>().unwrap(), 8925.0);
    let run_id = summary["run_id"].as_str().unwrap();
    assert_eq!(db.scalar(&format!("SELECT min(_run_id) FROM {items}")).await, run_id);
    assert_eq!(db.last_run_status().await, "succeeded");
    match db {
        Db::Sqlite(_) => {
            assert_eq!(db.scalar(&format!("SELECT typeof(rank) FROM {items} LIMIT 1")).await, "integer");
            assert_eq!(db.scalar(&format!("SELECT typeof(price) FROM {items} LIMIT 1")).await, "real");
            assert_eq!(
                db.scalar(&format!("SELECT tags FROM {items} WHERE id = 'item-00004'")).await,
                "[\"a\",\"t1\"]"
            );
            assert_eq!(db.scalar(&format!("SELECT count(*) FROM {items} WHERE active")).await, "60");
        }
        Db::Postgres(_) => {
            assert_eq!(db.scalar(&format!("SELECT pg_typeof(rank) FROM {items} LIMIT 1")).await, "bigint");
            assert_eq!(
                db.scalar(&format!("SELECT pg_typeof(created_at) FROM {items} LIMIT 1")).await,
                "timestamp with time zone"
            );
            assert_eq!(
                db.scalar(&format!("SELECT tags->>1 FROM {items} WHERE id = 'item-00004'")).await,
                "t1"
            );
            assert_eq!(db.scalar(&format!("SELECT count(*) FROM {items} WHERE active")).await, "60");
        }
    }
}

async fn incremental_rerun_delivers_nothing_twice(dir: &Path, db: &Db) {
    let (code, _, err) = run(dir, db, "items = 30\nevents = 70\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let (code, summary, err) = run(dir, db, "items = 30\nevents = 70\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(records(&summary, "events"), 0, "same state: nothing re-delivered");
    assert_eq!(records(&summary, "items"), 30, "full refresh reads everything");
    assert_eq!(db.count("events").await, 70);
    let (code, summary, err) = run(dir, db, "items = 30\nevents = 95\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(records(&summary, "events"), 25);
    let events =
        summary["streams"].as_array().unwrap().iter().find(|s| s["stream"] == "events").unwrap().clone();
    assert_eq!(events["load"]["inserted"], 25);
    assert_eq!(events["load"]["updated"], 0);
    assert_eq!(db.count("events").await, 95);
    assert_eq!(db.state_seq().await, "95");
    // --full-refresh ignores the checkpoint and replaces the table.
    let (code, summary, err) =
        run(dir, db, "items = 30\nevents = 95\n", &["--full-refresh", "--streams", "events"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(records(&summary, "events"), 95);
    assert_eq!(summary["streams"].as_array().unwrap().len(), 1);
    assert_eq!(db.count("events").await, 95);
}

async fn failures_leave_previous_data_and_state(dir: &Path, db: &Db) {
    let (code, first, err) = run(dir, db, "items = 100\nevents = 50\nversion = 1\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let first_run = first["run_id"].as_str().unwrap().to_string();
    let items = db.table("items");

    // Fail halfway through the full-refresh stream.
    let (code, summary, err) = run(
        dir,
        db,
        "items = 200\nevents = 80\nversion = 2\nfail_stream = \"items\"\nfail_after = 150\n",
        &[],
    )
    .await;
    assert_eq!(code, 4, "a source failure exits 4: {err}");
    assert!(err.contains("injected failure"), "{err}");
    assert_eq!(summary["status"], "failed");
    assert_eq!(db.count("items").await, 100);
    assert_eq!(
        db.scalar(&format!("SELECT count(*) FROM {items} WHERE _run_id = '{first_run}'")).await,
        "100"
    );
    assert_eq!(db.scalar(&format!("SELECT count(*) FROM {items} WHERE name LIKE '%v1%'")).await, "100");
    assert_eq!(db.count("events").await, 50);
    assert_eq!(db.state_seq().await, "50");
    assert_eq!(db.last_run_status().await, "failed");

    // Fail inside the incremental stream before its first checkpoint: nothing of it lands,
    // and the full-refresh stream read before it is not swapped in either.
    let (code, _, err) = run(
        dir,
        db,
        "items = 200\nevents = 80\nversion = 2\nfail_stream = \"events\"\nfail_after = 15\n",
        &[],
    )
    .await;
    assert_eq!(code, 4, "{err}");
    assert_eq!(db.count("events").await, 50);
    assert_eq!(db.state_seq().await, "50");
    assert_eq!(db.count("items").await, 100);

    // Fail after 5,015 rows in pages of 10: checkpoints are committed with their rows
    // once 5,000 rows (BATCH_ROWS) have accumulated, so exactly the first 5,000 stay,
    // with the checkpoint that covers them.
    let (code, _, err) = run(
        dir,
        db,
        "items = 200\nevents = 6000\nversion = 2\npage_size = 10\nfail_stream = \"events\"\nfail_after = 5015\n",
        &[],
    )
    .await;
    assert_eq!(code, 4, "{err}");
    assert_eq!(db.count("events").await, 5050);
    assert_eq!(db.state_seq().await, "5050");
    assert_eq!(db.count("items").await, 100);

    // A clean rerun lands exactly the source, nothing duplicated.
    let (code, summary, err) = run(dir, db, "items = 200\nevents = 6000\nversion = 2\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(records(&summary, "events"), 950);
    assert_eq!(db.count("items").await, 200);
    assert_eq!(db.scalar(&format!("SELECT count(*) FROM {items} WHERE name LIKE '%v2%'")).await, "200");
    assert_eq!(db.count("events").await, 6000);
    assert_eq!(db.scalar(&format!("SELECT count(DISTINCT seq) FROM {}", db.table("events"))).await, "6000");
}

async fn new_columns_are_added_and_type_changes_reported(dir: &Path, db: &Db) {
    let (code, _, err) = run(dir, db, "items = 10\nevents = 10\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(dir, db, "items = 10\nevents = 20\nwith_score = true\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let events = db.table("events");
    assert_eq!(
        db.scalar(&format!("SELECT count(score) FROM {events}")).await,
        "10",
        "new rows fill the new column"
    );
    assert_eq!(db.scalar(&format!("SELECT count(*) FROM {events} WHERE score IS NULL")).await, "10");
    assert_eq!(db.scalar(&format!("SELECT count(score) FROM {}", db.table("items"))).await, "10");

    // The connector stops sending `score`: the column stays, new rows leave it NULL.
    let (code, _, err) = run(dir, db, "items = 10\nevents = 20\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        db.scalar(&format!("SELECT count(*) FROM {} WHERE score IS NULL", db.table("items"))).await,
        "10"
    );

    let (code, _, err) =
        run(dir, db, "items = 10\nevents = 20\nwith_score = true\nrank_as_text = true\n", &[]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("column type changed: rank was"), "{err}");
    assert_eq!(db.count("items").await, 10);
}

async fn runs_and_state_commands(dir: &Path, db: &Db) {
    let (code, summary, err) = run(dir, db, "items = 5\nevents = 40\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let dest = db.dest();
    let out = cli(&["runs", "--dest", &dest, "--json"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let runs: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(runs[0]["run_id"], summary["run_id"]);
    assert_eq!(runs[0]["records"]["events"], 40);
    let config = dir.join("source.toml").display().to_string();
    let out = cli(&["state", "show", "--config", &config, "--dest", &dest]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let shown: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(shown["streams"]["events"]["seq"], 40);
    let out = cli(&["state", "reset", "--config", &config, "--dest", &dest]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("Removed 1 checkpoint"), "{}", out.stdout);
    let (code, summary, err) = run(dir, db, "items = 5\nevents = 40\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(records(&summary, "events"), 40, "after a reset the stream is read again");
    let events =
        summary["streams"].as_array().unwrap().iter().find(|s| s["stream"] == "events").unwrap().clone();
    assert_eq!(events["load"]["inserted"], 0);
    assert_eq!(events["load"]["updated"], 40);
    assert_eq!(db.count("events").await, 40);
}

fn sqlite(dir: &Path) -> Db {
    Db::Sqlite(dir.join("hub.db").display().to_string())
}

#[tokio::test]
async fn sqlite_loads_exact_rows_and_types() {
    let dir = tempfile::tempdir().unwrap();
    loads_exact_rows_and_types(dir.path(), &sqlite(dir.path())).await;
}

#[tokio::test]
async fn sqlite_incremental_rerun_delivers_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    incremental_rerun_delivers_nothing_twice(dir.path(), &sqlite(dir.path())).await;
}

#[tokio::test]
async fn sqlite_failures_leave_previous_data_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(dir.path());
    failures_leave_previous_data_and_state(dir.path(), &db).await;
    assert_eq!(db.scalar("SELECT count(*) FROM sqlite_master WHERE name LIKE '_staging__%'").await, "0");
}

#[tokio::test]
async fn sqlite_new_columns_and_type_changes() {
    let dir = tempfile::tempdir().unwrap();
    new_columns_are_added_and_type_changes_reported(dir.path(), &sqlite(dir.path())).await;
}

#[tokio::test]
async fn sqlite_runs_and_state_commands() {
    let dir = tempfile::tempdir().unwrap();
    runs_and_state_commands(dir.path(), &sqlite(dir.path())).await;
}

/// A fresh database on the configured PostgreSQL server, or `None` when none is
/// configured outside CI.
async fn postgres() -> Option<Db> {
    common::fresh_postgres_database("hub_test").await.map(Db::Postgres)
}

#[tokio::test]
async fn postgres_loads_exact_rows_and_types() {
    let Some(db) = postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    loads_exact_rows_and_types(dir.path(), &db).await;
}

#[tokio::test]
async fn postgres_incremental_rerun_delivers_nothing_twice() {
    let Some(db) = postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    incremental_rerun_delivers_nothing_twice(dir.path(), &db).await;
}

#[tokio::test]
async fn postgres_failures_leave_previous_data_and_state() {
    let Some(db) = postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    failures_leave_previous_data_and_state(dir.path(), &db).await;
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_staging\\_\\_%'").await,
        "0"
    );
}

#[tokio::test]
async fn postgres_new_columns_and_type_changes() {
    let Some(db) = postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    new_columns_are_added_and_type_changes_reported(dir.path(), &db).await;
}

#[tokio::test]
async fn postgres_runs_and_state_commands() {
    let Some(db) = postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    runs_and_state_commands(dir.path(), &db).await;
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|s| s.lines().count()).unwrap_or(0)
}

#[tokio::test]
async fn jsonl_folder_keeps_exactly_once_with_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("export");
    let dest = format!("jsonl:{}", out_dir.display());
    let config = |extra: &str| {
        config_file(dir.path(), "source.toml", &format!("items = 40\nevents = 60\n{extra}"))
            .display()
            .to_string()
    };
    let c = config("");
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(lines(&out_dir.join("items.jsonl")), 40);
    assert_eq!(lines(&out_dir.join("events.jsonl")), 60);
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(out_dir.join("items.jsonl")).unwrap().lines().next().unwrap(),
    )
    .unwrap();
    assert_eq!(first["id"], "item-00000");

    // Rerun: items replaced, events not repeated.
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(lines(&out_dir.join("items.jsonl")), 40);
    assert_eq!(lines(&out_dir.join("events.jsonl")), 60);

    // More events, failing after 5,015 in pages of 10: the 5,000 covered by a saved
    // checkpoint stay, the 15 after it are cut off.
    let c = config_file(
        dir.path(),
        "source.toml",
        "items = 45\nevents = 6000\npage_size = 10\nfail_stream = \"events\"\nfail_after = 5015\n",
    )
    .display()
    .to_string();
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert_eq!(lines(&out_dir.join("events.jsonl")), 5060);
    assert_eq!(lines(&out_dir.join("items.jsonl")), 40, "the failed run did not replace items");
    assert!(!out_dir.join(".items.jsonl.partial").exists());

    let c = config_file(dir.path(), "source.toml", "items = 45\nevents = 6000\n").display().to_string();
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(lines(&out_dir.join("events.jsonl")), 6000);
    let seqs: Vec<u64> = std::fs::read_to_string(out_dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=6000).collect::<Vec<_>>());
    assert_eq!(lines(&out_dir.join("items.jsonl")), 45);
    let runs = cli(&["runs", "--dest", &dest, "--json"]).await;
    let runs: Vec<Value> = serde_json::from_str(&runs.stdout).unwrap();
    assert_eq!(
        runs.iter().map(|r| r["status"].as_str().unwrap()).collect::<Vec<_>>(),
        ["succeeded", "failed", "succeeded", "succeeded"]
    );
    let _ = config;
}

#[tokio::test]
async fn csv_folder_writes_typed_columns() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("csv");
    let dest = format!("csv:{}", out_dir.display());
    let c = config_file(dir.path(), "source.toml", "items = 12\nevents = 30\n").display().to_string();
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut reader = csv::Reader::from_path(out_dir.join("items.csv")).unwrap();
    let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(headers[0], "id");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 12);
    let name = headers.iter().position(|h| h == "name").unwrap();
    assert_eq!(&rows[3][name], "Item 3 v0\twith\\tab\nand newline");
    let tags = headers.iter().position(|h| h == "tags").unwrap();
    assert_eq!(&rows[3][tags], "[\"a\",\"t0\"]");

    let c = config_file(dir.path(), "source.toml", "items = 12\nevents = 45\n").display().to_string();
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events: Vec<csv::StringRecord> =
        csv::Reader::from_path(out_dir.join("events.csv")).unwrap().records().map(Result::unwrap).collect();
    assert_eq!(events.len(), 45, "appended after the header, without repeating it");

    // A new column cannot be appended to an existing CSV: reported, with the fix.
    let c = config_file(dir.path(), "source.toml", "items = 12\nevents = 50\nwith_score = true\n")
        .display()
        .to_string();
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--full-refresh"), "{}", out.stderr);
}

#[tokio::test]
async fn postgres_errors_never_show_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let c = config_file(dir.path(), "source.toml", "items = 1\n").display().to_string();
    // Port 1 on loopback: nothing listens there, so the connection is refused.
    let out =
        cli(&["run", "--config", &c, "--dest", "postgres://hub:hunter2-secret@127.0.0.1:1/hub", "--quiet"])
            .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot connect to PostgreSQL at postgres://hub:****@127.0.0.1:1/hub"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[tokio::test]
async fn postgres_sslmode_require_insists_on_tls() {
    let Some(Db::Postgres(url)) = postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let c = config_file(dir.path(), "source.toml", "items = 1\n").display().to_string();
    let tls = format!("{url}?sslmode=require");
    let out = cli(&["run", "--config", &c, "--dest", &tls, "--quiet"]).await;
    // The throwaway test server has no certificate, so a TLS-only connection must fail
    // rather than silently fall back to plain text.
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("cannot connect to PostgreSQL"), "{}", out.stderr);
}
