//! End to end with the real Qlik Sense connector against the simulator: every stream
//! lands exactly (count and key digest equal the simulator's ground truth) in every
//! destination, and a SIGKILLed run followed by a rerun still lands exactly.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::cli;
use connector_api::Connector;
use qlik_connector as _;
use scim_connector as _;
use serde_json::Value;
use tests::digest::{KeyDigest, key_digest};
use tests::qlik_sim::{Faults, SimConfig, Simulator, Subscription};

fn qlik() -> std::sync::Arc<dyn Connector> {
    connector_api::registry::find("qlik-sense").unwrap()
}

fn streams() -> Vec<(String, Vec<String>)> {
    qlik().static_catalog().unwrap().streams.into_iter().map(|s| (s.name, s.primary_key)).collect()
}

fn write_config(dir: &Path, sim: &Simulator) -> String {
    let path = dir.join("qlik.toml");
    std::fs::write(
        &path,
        format!(
            "connector = \"qlik-sense\"\n[config]\ntenant_url = \"{}\"\napi_key = {{ file = \"key\" }}\nrequests_per_minute = 1000000\n",
            sim.base_url()
        ),
    )
    .unwrap();
    std::fs::write(dir.join("key"), &sim.keys().admin).unwrap();
    path.display().to_string()
}

fn text(v: rusqlite::types::Value) -> String {
    match v {
        rusqlite::types::Value::Text(t) => t,
        rusqlite::types::Value::Integer(i) => i.to_string(),
        rusqlite::types::Value::Real(f) => f.to_string(),
        rusqlite::types::Value::Null => "null".into(),
        rusqlite::types::Value::Blob(_) => "<blob>".into(),
    }
}

fn sqlite_digest(db: &Path, stream: &str, pk: &[String]) -> KeyDigest {
    let conn = rusqlite::Connection::open(db).unwrap();
    let cols: Vec<String> = pk.iter().map(|k| format!("\"{k}\"")).collect();
    let mut stmt = conn.prepare(&format!("SELECT {} FROM qlik_sense__{stream}", cols.join(", "))).unwrap();
    let rows: Vec<Vec<String>> = stmt
        .query_map([], |r| (0..pk.len()).map(|i| r.get::<_, rusqlite::types::Value>(i).map(text)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    key_digest(rows)
}

fn assert_sqlite_matches(db: &Path, sim: &Simulator) {
    for (stream, pk) in streams() {
        assert_eq!(sqlite_digest(db, &stream, &pk), *sim.ground_truth().stream(&stream), "stream {stream}");
    }
}

#[tokio::test]
async fn list_shows_qlik_sense_and_the_test_connector() {
    let out = cli(&["list"]).await;
    assert_eq!(out.code, 0);
    assert!(out.stdout.lines().any(|l| l.starts_with("qlik-sense ")), "{}", out.stdout);
    assert!(out.stdout.lines().any(|l| l.starts_with("test-source ")), "{}", out.stdout);
}

#[tokio::test]
async fn the_binary_links_every_connector_crate() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_connector-host"))
        .args(["list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = list.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["qlik-sense", "scim"], "every connector crate of the workspace is linked, sorted by id");
}

#[tokio::test]
async fn sqlite_run_matches_ground_truth_and_rerun_is_stable() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let db = dir.path().join("hub.db");
    let dest = format!("sqlite:{}", db.display());
    let out = cli(&["run", "--config", &config, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_sqlite_matches(&db, &sim);
    // A rerun: what the incremental look-back reads again is upserted, never added, and
    // the tables equal the tenant as it is now.
    let out = cli(&["run", "--config", &config, "--dest", &dest, "--json"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_sqlite_matches(&db, &sim);
}

/// The one instance folder a folder destination holds after runs of one tenant.
fn instance_folder(root: &Path) -> std::path::PathBuf {
    let dirs: Vec<std::path::PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(dirs[0].file_name().unwrap().to_string_lossy().starts_with("qlik-sense_127.0.0.1_"), "{dirs:?}");
    dirs[0].clone()
}

#[tokio::test]
async fn check_and_discover_through_the_cli() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let out = cli(&["check", "--config", &config]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains(&sim.keys().admin));
    let out = cli(&["discover", "--config", &config]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let catalog: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(catalog["streams"].as_array().unwrap().len(), streams().len());

    std::fs::write(dir.path().join("key"), &sim.keys().revoked).unwrap();
    let out = cli(&["check", "--config", &config]).await;
    assert_eq!(out.code, 3, "a check failed by a rejected key exits 3: {}", out.stdout);
    assert!(out.stdout.contains("Manage API keys"), "{}", out.stdout);
    let out = cli(&[
        "run",
        "--config",
        &config,
        "--dest",
        &format!("sqlite:{}", dir.path().join("x.db").display()),
        "--quiet",
    ])
    .await;
    assert_eq!(out.code, 3, "a rejected key exits 3: {}", out.stderr);
    assert!(!out.stderr.contains(&sim.keys().revoked));
}

/// The key digest of the CSV file at `path` by the columns `pk`.
fn csv_digest(path: &Path, pk: &[String]) -> KeyDigest {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let idx: Vec<usize> = pk.iter().map(|k| headers.iter().position(|h| h == k).unwrap()).collect();
    key_digest(reader.records().map(|r| {
        let r = r.unwrap();
        idx.iter().map(|i| r[*i].to_string()).collect::<Vec<_>>()
    }))
}

fn lines_digest(path: &Path, pk: &[String]) -> KeyDigest {
    let text = std::fs::read_to_string(path).unwrap();
    key_digest(text.lines().map(|l| {
        let v: Value = serde_json::from_str(l).unwrap();
        pk.iter()
            .map(|k| match &v[k.as_str()] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
    }))
}

#[tokio::test]
async fn jsonl_and_csv_match_ground_truth() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let jsonl = dir.path().join("jsonl");
    let out =
        cli(&["run", "--config", &config, "--dest", &format!("jsonl:{}", jsonl.display()), "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let jsonl = instance_folder(&jsonl);
    for (stream, pk) in streams() {
        assert_eq!(
            lines_digest(&jsonl.join(format!("{stream}.jsonl")), &pk),
            *sim.ground_truth().stream(&stream),
            "{stream}"
        );
    }
    let csv_dir = dir.path().join("csv");
    let out =
        cli(&["run", "--config", &config, "--dest", &format!("csv:{}", csv_dir.display()), "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let csv_dir = instance_folder(&csv_dir);
    for (stream, pk) in streams() {
        assert_eq!(
            csv_digest(&csv_dir.join(format!("{stream}.csv")), &pk),
            *sim.ground_truth().stream(&stream),
            "{stream}"
        );
    }
}

#[tokio::test]
async fn postgres_run_matches_ground_truth() {
    let Some(url) = common::fresh_postgres_database("hub_qlik").await else { return };
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    for _ in 0..2 {
        let out = cli(&["run", "--config", &config, "--dest", &url, "--quiet"]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        pg_assert_matches(&url, &sim).await;
    }
}

/// A capacity tenant (issue 16): every stream lands exactly in SQLite and in PostgreSQL,
/// `consumption_executions` with each metering record once and its figures whole, and a
/// rerun changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capacity_tenants_metering_records_land_in_sqlite_and_postgres() {
    let capacity = SimConfig { subscription: Subscription::CapacityBased, ..SimConfig::small() };
    let sim = Simulator::start(capacity).await.unwrap();
    let expected = &sim.ground_truth().consumption_executions;
    assert_eq!(expected.len(), 69);
    let usage: f64 = expected.iter().map(|r| r["localUsage"].as_f64().unwrap()).sum();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let db = dir.path().join("hub.db");
    let dest = format!("sqlite:{}", db.display());
    for _ in 0..2 {
        let out = cli(&["run", "--config", &config, "--dest", &dest, "--quiet"]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_sqlite_matches(&db, &sim);
        let conn = rusqlite::Connection::open(&db).unwrap();
        let sql = "select count(*), sum(local_usage) from qlik_sense__consumption_executions";
        let totals: (i64, f64) = conn.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!(totals, (69, usage));
        let sql =
            "select resource_type, period_start, scope from qlik_sense__consumption_executions where overage";
        let over: (String, String, String) =
            conn.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
        assert_eq!((over.0.as_str(), over.1.as_str()), ("automations", "2026-10-01"));
        assert_eq!(
            serde_json::from_str::<Value>(&over.2).unwrap(),
            serde_json::json!(["tenant", "resourceType"])
        );
    }

    let Some(url) = common::fresh_postgres_database("hub_capacity").await else { return };
    for _ in 0..2 {
        let out = cli(&["run", "--config", &config, "--dest", &url, "--quiet"]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        pg_assert_matches(&url, &sim).await;
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let sql = "select count(*), sum(local_usage)::float8, count(*) filter (where overage) from qlik_sense.consumption_executions";
        let row = client.query_one(sql, &[]).await.unwrap();
        assert_eq!((row.get::<_, i64>(0), row.get::<_, f64>(1), row.get::<_, i64>(2)), (69, usage, 1));
    }
}

/// A password left out of the destination URL comes from `PGPASSWORD`; a wrong one is
/// a destination failure (exit 6); neither is ever printed or stored. Needs a role that must
/// log in with a password (`.ci/run` creates one and sets DATAHUB_TEST_POSTGRES_LOGIN_URL
/// to `postgres://role:password@host:port/db`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_password_from_pgpassword_is_used_and_never_shown() {
    let Ok(login) = std::env::var("DATAHUB_TEST_POSTGRES_LOGIN_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but DATAHUB_TEST_POSTGRES_LOGIN_URL is not: the PGPASSWORD test must run"
        );
        eprintln!("skipping: set DATAHUB_TEST_POSTGRES_LOGIN_URL to run the PGPASSWORD test");
        return;
    };
    let Some(admin_url) = common::fresh_postgres_database("hub_login").await else { return };
    let login = url::Url::parse(&login).unwrap();
    let (role, password) = (login.username().to_string(), login.password().unwrap().to_string());
    let database = admin_url.rsplit('/').next().unwrap().to_string();
    let (admin, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    admin.batch_execute(&format!("ALTER DATABASE {database} OWNER TO {role}")).await.unwrap();
    let mut dest = url::Url::parse(&admin_url).unwrap();
    dest.set_username(&role).unwrap();
    dest.set_password(None).unwrap();

    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let run = |pgpassword: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_connector-host"));
        cmd.args(["run", "--config", &config, "--dest", dest.as_str(), "--quiet"])
            .env("PGPASSWORD", pgpassword);
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };

    let (code, output) = run("wrong-password-4711");
    assert_eq!(
        code,
        Some(6),
        "a wrong database password is the destination's failure, not the source's: {output}"
    );
    assert!(output.contains(&format!("cannot connect to PostgreSQL at {dest}")), "{output}");
    assert!(!output.contains("wrong-password-4711"), "{output}");

    let (code, output) = run(&password);
    assert_eq!(code, Some(0), "{output}");
    assert!(!output.contains(&password), "{output}");
    pg_assert_matches(&admin_url, &sim).await;
    let runs = admin
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE strpos(row_to_json(r)::text, $1) > 0) FROM datahub._runs r",
            &[&password],
        )
        .await
        .unwrap();
    assert_eq!(runs.get::<_, i64>(0), 1, "the run that could connect is recorded");
    assert_eq!(runs.get::<_, i64>(1), 0, "no run row holds the password");
}

/// The README's first command (`connector-host demo`) lands every stream exactly.
#[tokio::test]
async fn demo_lands_every_stream_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("datahub.db");
    let out = cli(&["demo", "--dest", &format!("sqlite:{}", db.display()), "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The demo tenant is deterministic: a second simulator serves the same data.
    let truth = Simulator::start(SimConfig::demo()).await.unwrap();
    assert_sqlite_matches(&db, &truth);
}

/// `destination` in the config file is used when --dest is absent.
#[tokio::test]
async fn destination_from_the_config_file() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let export = dir.path().join("export");
    let text = std::fs::read_to_string(&config).unwrap();
    let text =
        text.replacen("[config]", &format!("destination = \"jsonl:{}\"\n[config]", export.display()), 1);
    std::fs::write(&config, text).unwrap();
    let out = cli(&["run", "--config", &config, "--quiet", "--streams", "users"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let pk = vec!["id".to_string()];
    assert_eq!(
        lines_digest(&instance_folder(&export).join("users.jsonl"), &pk),
        *sim.ground_truth().stream("users")
    );
}

/// A tenant slow enough (40 ms a page, 75 consumption pages) that checkpoints are
/// committed (every 5,000 rows) well before a run ends.
async fn slow_simulator() -> Simulator {
    Simulator::start(SimConfig {
        consumption_events: 15_000,
        faults: Faults { latency: Duration::from_millis(40), ..Faults::default() },
        ..SimConfig::small()
    })
    .await
    .unwrap()
}

/// Runs the real binary into `dest`, waits until `committed` counts a checkpoint row,
/// then kills it without warning (SIGKILL).
async fn kill_after_first_checkpoint<F, Fut>(config: &str, dest: &str, committed: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_connector-host"))
        .args(["run", "--config", config, "--dest", dest])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before it could be killed; slow the simulator down"
        );
        assert!(Instant::now() < deadline, "no checkpoint was committed within 30 s");
        if committed().await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// SIGKILL the real binary mid-run, then rerun: the tables equal the ground truth, the
/// killed run is recorded as interrupted, and no staging table is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_then_rerun_lands_exactly() {
    let sim = slow_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let db = dir.path().join("hub.db");
    let dest = format!("sqlite:{}", db.display());
    kill_after_first_checkpoint(&config, &dest, || async {
        rusqlite::Connection::open(&db)
            .and_then(|c| c.query_row("SELECT count(*) FROM _state", [], |r| r.get::<_, i64>(0)))
            .unwrap_or(0)
    })
    .await;

    let out = cli(&["run", "--config", &config, "--dest", &dest, "--json"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_resumed(&out.stdout);
    assert_sqlite_matches(&db, &sim);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let statuses: Vec<String> = conn
        .prepare("SELECT status FROM _runs ORDER BY started_at")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(statuses, ["interrupted", "succeeded"]);
    let staging: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_stg\\_%' ESCAPE '\\'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(staging, 0);
}

/// The rerun after a kill resumed `license_consumption` from its committed checkpoint
/// instead of reading it all again.
fn assert_resumed(summary: &str) {
    let summary: Value = serde_json::from_str(summary).unwrap();
    let consumption = summary["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stream"] == "license_consumption")
        .unwrap()
        .clone();
    let records = consumption["records"].as_u64().unwrap();
    assert!(records < 15_000, "resumed from the checkpoint, read {records}");
}

async fn pg_assert_matches(url: &str, sim: &Simulator) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    for (stream, pk) in streams() {
        let cols: Vec<String> = pk.iter().map(|k| format!("\"{k}\"::text")).collect();
        let rows =
            client.query(&format!("SELECT {} FROM qlik_sense.{stream}", cols.join(", ")), &[]).await.unwrap();
        let keys: Vec<Vec<String>> =
            rows.iter().map(|r| (0..pk.len()).map(|i| r.get::<_, String>(i)).collect()).collect();
        assert_eq!(key_digest(keys), *sim.ground_truth().stream(&stream), "{stream}");
    }
}

async fn pg_scalar(url: &str, sql: &str) -> i64 {
    let Ok((client, conn)) = tokio_postgres::connect(url, tokio_postgres::NoTls).await else { return 0 };
    tokio::spawn(conn);
    client.query_one(sql, &[]).await.map(|r| r.get::<_, i64>(0)).unwrap_or(0)
}

/// The same kill and rerun against PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sigkill_mid_run_then_rerun_lands_exactly() {
    let Some(url) = common::fresh_postgres_database("hub_qlik").await else { return };
    let sim = slow_simulator().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    kill_after_first_checkpoint(&config, &url, || pg_scalar(&url, "SELECT count(*) FROM datahub._state"))
        .await;

    let out = cli(&["run", "--config", &config, "--dest", &url, "--json"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_resumed(&out.stdout);
    pg_assert_matches(&url, &sim).await;
    assert_eq!(pg_scalar(&url, "SELECT count(*) FROM datahub._runs WHERE status = 'interrupted'").await, 1);
    assert_eq!(
        pg_scalar(
            &url,
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_load\\_%' OR tablename LIKE '\\_stg\\_%'"
        )
        .await,
        0
    );
}

/// SIGTERM (a scheduler stopping the job) rolls the run back and records it as
/// interrupted before the process exits 130; the previous snapshot stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_rolls_back_and_records_the_run_as_interrupted() {
    let sim = Simulator::start(SimConfig {
        consumption_events: 15_000,
        faults: Faults { latency: Duration::from_millis(40), ..Faults::default() },
        ..SimConfig::small()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let db = dir.path().join("hub.db");
    let dest = format!("sqlite:{}", db.display());
    let out = cli(&["run", "--config", &config, "--dest", &dest, "--quiet", "--streams", "users"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_connector-host"))
        .args(["run", "--config", &config, "--dest", &dest, "--full-refresh"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the run finished before it could be stopped");
        assert!(Instant::now() < deadline, "the run did not start within 30 s");
        let running = rusqlite::Connection::open(&db)
            .and_then(|c| {
                c.query_row("SELECT count(*) FROM _runs WHERE status = 'running'", [], |r| r.get::<_, i64>(0))
            })
            .unwrap_or(0);
        if running > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status =
        std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("interrupted by SIGTERM"));

    let conn = rusqlite::Connection::open(&db).unwrap();
    let last: (String, String) = conn
        .query_row("SELECT status, error FROM _runs ORDER BY started_at DESC LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(last.0, "interrupted");
    assert!(last.1.contains("SIGTERM"), "{}", last.1);
    let pk = vec!["id".to_string()];
    assert_eq!(
        sqlite_digest(&db, "users", &pk),
        *sim.ground_truth().stream("users"),
        "the previous snapshot stays"
    );
    let staging: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master WHERE name LIKE '\\_stg\\_%' ESCAPE '\\'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(staging, 0);
}

/// A run waiting on a lock another session holds on a hub table still stops at once on
/// SIGINT (exit 130), and the previous rows stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_a_run_waiting_on_a_postgres_lock() {
    let Some(url) = common::fresh_postgres_database("hub_lock").await else { return };
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let out = cli(&["run", "--config", &config, "--dest", &url, "--quiet", "--streams", "users"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client.batch_execute("BEGIN; LOCK TABLE qlik_sense.users IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_connector-host"))
        .args(["run", "--config", &config, "--dest", &url, "--quiet", "--streams", "users"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    if child.try_wait().unwrap().is_some() {
        let output = child.wait_with_output().unwrap();
        panic!("the run should wait on the lock: {}", String::from_utf8_lossy(&output.stderr));
    }
    let stopped = Instant::now();
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stopped.elapsed() < Duration::from_secs(8), "SIGINT stops a run waiting on a lock");
    client.batch_execute("ROLLBACK").await.unwrap();
    pg_assert_users(&url, &sim).await;
}

async fn pg_assert_users(url: &str, sim: &Simulator) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let rows = client.query("SELECT id FROM qlik_sense.users", &[]).await.unwrap();
    let keys: Vec<Vec<String>> = rows.iter().map(|r| vec![r.get::<_, String>(0)]).collect();
    assert_eq!(key_digest(keys), *sim.ground_truth().stream("users"));
}

/// A 20,000-user tenant with every default Qlik behaviour of the simulator on (orphans
/// in the plain listing, position-only licence links, tied and late consumption events,
/// the 5-minute rate window) lands exactly, twice in a row, on every destination (SQLite,
/// JSON Lines, CSV, PostgreSQL): the
/// second sync picks up the late events, and the look-back it reads again is upserted
/// (compacted in files), never doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20000_user_tenant_syncs_exactly_twice_on_every_destination() {
    let tenant = || {
        Simulator::start(SimConfig {
            users: 20_000,
            license_assignments: 15_000,
            rate_limit_per_minute: Some(1_000),
            ..SimConfig::demo()
        })
    };
    let with_orphans = |dir: &Path, sim: &Simulator| {
        let config = write_config(dir, sim);
        // The connector's own pacer is off (Qlik's window is enforced by the simulator,
        // and two syncs stay well inside it), so the test takes seconds, not minutes.
        let text = std::fs::read_to_string(&config).unwrap() + "include_orphans = true\n";
        std::fs::write(&config, text).unwrap();
        config
    };
    let dir = tempfile::tempdir().unwrap();

    let sim = tenant().await.unwrap();
    let config = with_orphans(dir.path(), &sim);
    let db = dir.path().join("hub.db");
    let dest = format!("sqlite:{}", db.display());
    for round in 1..=2 {
        let out = cli(&["run", "--config", &config, "--dest", &dest, "--quiet"]).await;
        assert_eq!(out.code, 0, "SQLite, sync {round}: {}", out.stderr);
        assert_sqlite_matches(&db, &sim);
    }
    assert!(
        sim.ground_truth().stream("license_consumption").count
            > sim.ground_truth().stream("license_consumption_on_time").count,
        "the tenant recorded late events, which the second sync landed"
    );

    let sim = tenant().await.unwrap();
    let config = with_orphans(dir.path(), &sim);
    let export = dir.path().join("export");
    let dest = format!("jsonl:{}", export.display());
    for round in 1..=2 {
        let out = cli(&["run", "--config", &config, "--dest", &dest, "--quiet"]).await;
        assert_eq!(out.code, 0, "JSON Lines, sync {round}: {}", out.stderr);
        let folder = instance_folder(&export);
        for (stream, pk) in streams() {
            assert_eq!(
                lines_digest(&folder.join(format!("{stream}.jsonl")), &pk),
                *sim.ground_truth().stream(&stream),
                "JSON Lines, sync {round}, {stream}"
            );
        }
    }

    let sim = tenant().await.unwrap();
    let config = with_orphans(dir.path(), &sim);
    let export = dir.path().join("csv");
    let dest = format!("csv:{}", export.display());
    for round in 1..=2 {
        let out = cli(&["run", "--config", &config, "--dest", &dest, "--quiet"]).await;
        assert_eq!(out.code, 0, "CSV, sync {round}: {}", out.stderr);
        let folder = instance_folder(&export);
        for (stream, pk) in streams() {
            assert_eq!(
                csv_digest(&folder.join(format!("{stream}.csv")), &pk),
                *sim.ground_truth().stream(&stream),
                "CSV, sync {round}, {stream}"
            );
        }
    }

    let Some(url) = common::fresh_postgres_database("hub_20k").await else { return };
    let sim = tenant().await.unwrap();
    let config = with_orphans(dir.path(), &sim);
    for round in 1..=2 {
        let out = cli(&["run", "--config", &config, "--dest", &url, "--quiet"]).await;
        assert_eq!(out.code, 0, "PostgreSQL, sync {round}: {}", out.stderr);
        pg_assert_matches(&url, &sim).await;
    }
}

/// The records of `stream` in a JSON Lines folder.
fn jsonl_records(folder: &Path, stream: &str) -> Vec<Value> {
    std::fs::read_to_string(folder.join(format!("{stream}.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Professional seats idle for 90 days or more, worked out in Rust from the records the
/// connector read (JSON Lines), as user ids: the answer the view must give. (Days idle
/// themselves are not compared: a day can end between this computation and the query.)
fn idle_professional_seats(folder: &Path) -> std::collections::BTreeSet<String> {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    let at = |v: &Value| v.as_str().and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok());
    let latest = |stream: &str, field: &str| {
        let mut latest: std::collections::HashMap<String, OffsetDateTime> = Default::default();
        for r in jsonl_records(folder, stream) {
            if let (Some(user), Some(t)) = (r["user_id"].as_str(), at(&r[field])) {
                let e = latest.entry(user.to_string()).or_insert(t);
                *e = (*e).max(t);
            }
        }
        latest
    };
    let (logins, uses) = (latest("user_sessions", "event_time"), latest("license_consumption", "end_time"));
    let users: std::collections::HashMap<String, String> = jsonl_records(folder, "users")
        .into_iter()
        .filter_map(|u| Some((u["subject"].as_str()?.to_string(), u["id"].as_str()?.to_string())))
        .collect();
    let now = OffsetDateTime::now_utc();
    jsonl_records(folder, "license_assignments")
        .into_iter()
        .filter(|a| a["type"] == "professional" && a["orphan"] != true)
        .filter_map(|a| {
            let user = users.get(a["subject"].as_str()?)?.clone();
            let active = logins.get(&user).copied().max(uses.get(&user).copied());
            let since = active.or_else(|| at(&a["created"]))?;
            ((now - since).whole_days() >= 90).then_some(user)
        })
        .collect()
}

/// The documented query (README) lists exactly the professional seats idle for 90 days
/// that the records themselves show, in SQLite and in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn licence_usage_lists_the_idle_professional_seats() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim);
    let export = dir.path().join("export");
    let out =
        cli(&["run", "--config", &config, "--dest", &format!("jsonl:{}", export.display()), "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let expected = idle_professional_seats(&instance_folder(&export));
    assert!(!expected.is_empty(), "the tenant has idle professional seats to find");

    let query = "SELECT user_id FROM qlik_sense__licence_usage WHERE licence_type = 'professional' AND days_idle >= 90";
    let db = dir.path().join("hub.db");
    let out =
        cli(&["run", "--config", &config, "--dest", &format!("sqlite:{}", db.display()), "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let got: std::collections::BTreeSet<String> =
        conn.prepare(query).unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(got, expected, "SQLite");

    let Some(url) = common::fresh_postgres_database("hub_usage").await else { return };
    let out = cli(&["run", "--config", &config, "--dest", &url, "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let rows = client.query(&query.replace("qlik_sense__", "qlik_sense."), &[]).await.unwrap();
    let got: std::collections::BTreeSet<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(got, expected, "PostgreSQL");
}

/// An OAuth machine-to-machine client, its secret from the environment, syncs every
/// stream an admin key syncs through the binary, and neither the secret nor a token
/// shows in the output or the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_client_syncs_every_stream_through_the_binary() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let (client_id, secret) = sim.oauth_client();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("m2m.toml");
    std::fs::write(
        &config,
        format!(
            "connector = \"qlik-sense\"\n[config]\ntenant_url = \"{}\"\nclient_id = \"{client_id}\"\nclient_secret = {{ env = \"QLIK_M2M_SECRET\" }}\nrequests_per_minute = 1000000\n",
            sim.base_url()
        ),
    )
    .unwrap();
    let db = dir.path().join("hub.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_connector-host"))
        .args([
            "run",
            "--config",
            &config.display().to_string(),
            "--dest",
            &format!("sqlite:{}", db.display()),
        ])
        .env("QLIK_M2M_SECRET", &secret)
        .output()
        .unwrap();
    let shown = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert_sqlite_matches(&db, &sim);
    assert!(!shown.contains(&secret), "the client secret never shows");
    let stored = std::fs::read(&db).unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains(&secret), "nor is it stored");
}
