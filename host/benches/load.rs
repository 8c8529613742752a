//! End-to-end load benchmark: a large simulated Qlik Cloud tenant synced by the real
//! `connector-host` binary into SQLite and (when DATAHUB_TEST_POSTGRES_URL is set)
//! PostgreSQL. Prints rows/s per destination and the host process's peak memory
//! (VmHWM), sampled from /proc while it runs.
//!
//! `cargo bench -p host --bench load`. Sizes scale with DATAHUB_BENCH_USERS (default
//! 100,000), DATAHUB_BENCH_ASSIGNMENTS (100,000) and DATAHUB_BENCH_EVENTS (1,000,000).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use connector_api::SyncMode;
use host::sink::{self, Column, ColumnType, RunInfo, RunOutcome, StreamPlan};
use serde_json::{Value, json};
use tests::qlik_sim::{SimConfig, Simulator};

mod sampled;

/// The in-process simulator shares the machine's cores with `connector-host`; it uses
/// the same allocator so that its page rendering takes as little of them as it can.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn size(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

struct Measured {
    records: u64,
    seconds: f64,
    peak_kb: u64,
    cpu_seconds: f64,
}

async fn load(config: &Path, dest: &str) -> Measured {
    let mut command = Command::new(env!("CARGO_BIN_EXE_connector-host"));
    command
        .args(["run", "--config", &config.display().to_string(), "--dest", dest, "--json"])
        .env("RUST_LOG", "warn");
    let run = sampled::run_sampled(command).await;
    let summary: Value = serde_json::from_slice(&run.stdout).expect("JSON summary");
    // The whole process, start to exit (closing the database included): what a person
    // or a scheduler waits for, not just the run's own clock.
    Measured {
        records: summary["records"].as_u64().unwrap_or(0),
        seconds: run.wall.as_secs_f64(),
        peak_kb: run.peak_kb,
        cpu_seconds: run.cpu.as_secs_f64(),
    }
}

/// One line per destination. The CPU figure is `connector-host`'s alone (all its threads):
/// on a machine it shares with the simulator, wall time is what both cost together.
fn report(dest: &str, m: &Measured) {
    let rows = m.records.max(1) as f64;
    println!(
        "{dest:<11} {:>10} rows in {:>7.2} s = {:>9.0} rows/s, peak memory (VmHWM) {:>6.1} MB, connector-host CPU {:>6.2} s = {:.1} µs/row",
        m.records,
        m.seconds,
        rows / m.seconds.max(0.001),
        m.peak_kb as f64 / 1024.0,
        m.cpu_seconds,
        m.cpu_seconds * 1e6 / rows
    );
}

/// Records per `write` in [`sink_only`]: a checkpoint every 10,000 rows falls between
/// batches, as it does in a run.
const BENCH_BATCH: usize = 500;

/// Loads `rows` synthetic consumption-like records straight into `dest` through the
/// `Destination` trait: the sink's own ceiling, without HTTP or JSON parsing upstream.
async fn sink_only(dest: &str, rows: u64) -> f64 {
    let mut d = sink::registry::open(dest).await.expect("open destination");
    let col = |name: &str, ty| Column { name: name.into(), ty, description: String::new() };
    let plan = StreamPlan {
        stream: "events".into(),
        connector: "bench".into(),
        sync_mode: SyncMode::Incremental,
        primary_key: vec!["id".into()],
        columns: vec![
            col("id", ColumnType::Text),
            col("user_id", ColumnType::Text),
            col("app_id", ColumnType::Text),
            col("capacity_used", ColumnType::Integer),
            col("duration", ColumnType::Real),
            col("allotment", ColumnType::Boolean),
            col("end_time", ColumnType::Timestamp),
            col("license_usage", ColumnType::Text),
        ],
    };
    let info = RunInfo {
        run_id: format!("bench-{}", std::process::id()),
        connector: "bench".into(),
        instance: "bench".into(),
        config_fingerprint: "bench".into(),
        started_at: sink::now_rfc3339(),
    };
    d.lock(&info).await.expect("lock");
    d.begin(&info, std::slice::from_ref(&plan)).await.expect("begin");
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BENCH_BATCH);
    for i in 0..rows {
        batch.push(json!({
            "id": format!("event-{i:010}"),
            "user_id": format!("user-{:06}", i % 100_000),
            "app_id": format!("app-{:04}", i % 500),
            "capacity_used": i % 360,
            "duration": (i % 3600) as f64 * 1.5,
            "allotment": i.is_multiple_of(3),
            "end_time": "2025-06-01T10:00:00.000Z",
            "license_usage": "analyzer_time",
        }));
        if batch.len() == BENCH_BATCH {
            d.write("events", std::mem::take(&mut batch)).await.expect("write");
        }
        if (i + 1) % 10_000 == 0 {
            d.checkpoint("events", json!({"n": i + 1})).await.expect("checkpoint");
        }
    }
    if !batch.is_empty() {
        d.write("events", batch).await.expect("write");
    }
    let outcome = RunOutcome {
        run_id: info.run_id.clone(),
        finished_at: sink::now_rfc3339(),
        status: sink::RunStatus::Succeeded,
        records: [("events".to_string(), rows)].into(),
        error: None,
        failed: Default::default(),
        warnings: Vec::new(),
    };
    d.commit(&outcome).await.expect("commit");
    rows as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let users = size("DATAHUB_BENCH_USERS", 100_000);
    let assignments = size("DATAHUB_BENCH_ASSIGNMENTS", 100_000);
    let events = size("DATAHUB_BENCH_EVENTS", 1_000_000);
    println!(
        "Simulated tenant: {users} users, {assignments} licence assignments, {events} consumption events"
    );
    let sim = Simulator::start(SimConfig {
        users,
        license_assignments: assignments,
        consumption_events: events,
        ..SimConfig::small()
    })
    .await
    .expect("start the simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("qlik.toml");
    std::fs::write(
        &config,
        format!(
            "connector = \"qlik-sense\"\n[config]\ntenant_url = \"{}\"\napi_key = \"{}\"\nrequests_per_minute = 10000000\n",
            sim.base_url(),
            sim.keys().admin
        ),
    )
    .expect("write config");

    // DATAHUB_BENCH_ONLY=postgres (or sqlite, jsonl) runs one destination.
    let only = std::env::var("DATAHUB_BENCH_ONLY").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if wanted("jsonl") {
        let jsonl = format!("jsonl:{}", dir.path().join("export").display());
        report("jsonl", &load(&config, &jsonl).await);
    }
    if wanted("sqlite") {
        let sqlite = format!("sqlite:{}", dir.path().join("bench.db").display());
        report("sqlite", &load(&config, &sqlite).await);
        let sink_db = format!("sqlite:{}", dir.path().join("sink.db").display());
        let rate = sink_only(&sink_db, events as u64).await;
        println!("sqlite      sink only (no source): {events} rows at {rate:.0} rows/s");
    }
    if !wanted("postgres") {
        return;
    }

    match std::env::var("DATAHUB_TEST_POSTGRES_URL") {
        Ok(url) => {
            let (client, conn) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
            tokio::spawn(conn);
            let name = format!("hub_bench_{}", std::process::id());
            client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.expect("drop database");
            client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
            let mut db = url::Url::parse(&url).expect("URL");
            db.set_path(&format!("/{name}"));
            report("postgres", &load(&config, db.as_str()).await);
            let rate = sink_only(db.as_str(), events as u64).await;
            println!("postgres    sink only (no source): {events} rows at {rate:.0} rows/s");
            client.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await.expect("drop database");
        }
        Err(_) => println!("postgres    skipped: set DATAHUB_TEST_POSTGRES_URL"),
    }
}
