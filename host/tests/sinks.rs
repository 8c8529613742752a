//! `run` into every destination with the test connector: exact rows, types, state,
//! atomicity under injected failures, schema evolution, and the runs/state commands.
//! PostgreSQL scenarios run when DATAHUB_TEST_POSTGRES_URL is set (and must, under CI).

mod common;

use std::path::Path;

use common::{Db, cli, config_file, postgres, records, run, sqlite};
use serde_json::Value;

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
    let v1_items = format!("SELECT count(*) FROM {items} WHERE _run_id = '{first_run}' AND name LIKE '%v1%'");

    // The full-refresh stream fails halfway; the incremental one completes and is
    // committed: a partial run, exit 5.
    let (code, summary, err) = run(
        dir,
        db,
        "items = 200\nevents = 80\nversion = 2\nfail_stream = \"items\"\nfail_after = 150\n",
        &[],
    )
    .await;
    assert_eq!(code, 5, "a partial run exits 5: {err}");
    assert_eq!(summary["status"], "partial");
    let stream = |name: &str| {
        summary["streams"].as_array().unwrap().iter().find(|s| s["stream"] == name).unwrap().clone()
    };
    assert_eq!(stream("items")["result"], "failed");
    assert!(stream("items")["error"].as_str().unwrap().contains("injected failure"), "{summary}");
    assert_eq!(stream("events")["result"], "committed");
    assert_eq!(db.count("items").await, 100);
    assert_eq!(db.scalar(&v1_items).await, "100", "the failed stream kept its previous rows");
    assert_eq!(db.count("events").await, 80);
    assert_eq!(db.state_seq().await, "80");
    assert_eq!(db.last_run_status().await, "partial");

    // --atomic: the same failure commits nothing; events stay where they were.
    let (code, summary, err) = run(
        dir,
        db,
        "items = 200\nevents = 90\nversion = 2\nfail_stream = \"items\"\nfail_after = 150\n",
        &["--atomic"],
    )
    .await;
    assert_eq!(code, 4, "an atomic run fails with its source error: {err}");
    assert_eq!(summary["status"], "failed");
    assert_eq!(db.count("events").await, 80);
    assert_eq!(db.state_seq().await, "80");
    assert_eq!(db.scalar(&v1_items).await, "100");

    // A failure that ends the whole read fails every stream that had not completed.
    let (code, _, err) = run(
        dir,
        db,
        "items = 200\nevents = 90\nversion = 2\nfail_stream = \"items\"\nfail_after = 150\nfail_hard = true\n",
        &[],
    )
    .await;
    assert_eq!(code, 4, "{err}");
    assert_eq!(db.last_run_status().await, "failed");
    assert_eq!(db.count("events").await, 80);

    // The incremental stream fails inside its first page, before any checkpoint: the
    // full refresh is committed; the 15 events it delivered are upserted (they are real
    // rows) but its checkpoint stays, so the next run reads them again, once.
    let (code, _, err) = run(
        dir,
        db,
        "items = 200\nevents = 100\nversion = 2\nfail_stream = \"events\"\nfail_after = 15\n",
        &[],
    )
    .await;
    assert_eq!(code, 5, "{err}");
    assert_eq!(db.state_seq().await, "80");
    assert_eq!(db.count("events").await, 95);
    assert_eq!(db.count("items").await, 200);
    assert_eq!(db.scalar(&format!("SELECT count(*) FROM {items} WHERE name LIKE '%v2%'")).await, "200");

    // Fail after 5,015 rows in pages of 10: the stream keeps its last checkpoint (5,090,
    // after nine pages past the 5,000 rows that forced a commit) and the rows it
    // delivered; the next run resumes from that checkpoint.
    let (code, _, err) = run(
        dir,
        db,
        "items = 200\nevents = 6000\nversion = 2\npage_size = 10\nfail_stream = \"events\"\nfail_after = 5015\n",
        &[],
    )
    .await;
    assert_eq!(code, 5, "{err}");
    assert_eq!(db.state_seq().await, "5090");
    assert_eq!(db.count("events").await, 5095);

    // A clean rerun lands exactly the source, nothing duplicated.
    let (code, summary, err) = run(dir, db, "items = 200\nevents = 6000\nversion = 2\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(records(&summary, "events"), 910);
    assert_eq!(db.count("items").await, 200);
    assert_eq!(db.count("events").await, 6000);
    assert_eq!(db.scalar(&format!("SELECT count(DISTINCT seq) FROM {}", db.table("events"))).await, "6000");
    assert_eq!(db.state_seq().await, "6000");
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
    assert_eq!(
        db.scalar("SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_stg\\_%' ESCAPE '\\'").await,
        "0"
    );
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
        db.scalar(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_load\\_%' OR tablename LIKE '\\_stg\\_%'"
        )
        .await,
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
    let root = dir.path().join("export");
    let out_dir = root.join("test-source_tenant-a");
    let dest = format!("jsonl:{}", root.display());
    let c = config_file(dir.path(), "source.toml", "items = 40\nevents = 60\n").display().to_string();
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
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--json"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let summary: Value = serde_json::from_str(&out.stdout).unwrap();
    let events =
        summary["streams"].as_array().unwrap().iter().find(|s| s["stream"] == "events").unwrap().clone();
    assert_eq!(events["load"]["inserted"], 0, "{events}");
    assert_eq!(lines(&out_dir.join("items.jsonl")), 40);
    assert_eq!(lines(&out_dir.join("events.jsonl")), 60);

    // More events, failing after 5,015 in pages of 10: what the last checkpoint covers
    // stays (60 + 5,010), the 5 after it are cut off; items completed and are replaced.
    let c = config_file(
        dir.path(),
        "source.toml",
        "items = 45\nevents = 6000\npage_size = 10\nfail_stream = \"events\"\nfail_after = 5015\n",
    )
    .display()
    .to_string();
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert_eq!(lines(&out_dir.join("events.jsonl")), 5070);
    assert_eq!(lines(&out_dir.join("items.jsonl")), 45, "the completed stream was committed");
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
        ["succeeded", "partial", "succeeded", "succeeded"]
    );
}

#[tokio::test]
async fn csv_folder_writes_typed_columns() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("csv");
    let dest = format!("csv:{}", out_dir.display());
    let c = config_file(dir.path(), "source.toml", "items = 12\nevents = 30\n").display().to_string();
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out_dir = out_dir.join("test-source_tenant-a");
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
    assert_eq!(out.code, 6, "a destination that cannot be reached exits 6: {}", out.stderr);
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
