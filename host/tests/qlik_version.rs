//! Through the `connector-host` binary against the simulator: every request names the Qlik
//! API release (`qlik-api-version`), a deprecation Qlik announces in response headers shows
//! up once in the run summary, in `_runs.warnings` and in `check`, and `check` with a
//! non-admin key reads like a checklist that fits a screen.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{Db, postgres};
use qlik_connector::api_version::API_VERSION;
use qlik_connector::remediation;
use serde_json::Value;
use tests::qlik_sim::{Deprecation, SimConfig, Simulator};

/// 2026-11-01T00:00:00Z.
const SINCE: i64 = 1_793_491_200;
/// 2027-11-01T00:00:00Z, `Mon, 01 Nov 2027 00:00:00 GMT` as an HTTP date.
const SUNSET: i64 = 1_825_027_200;

/// What the binary printed and returned.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn host(args: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_connector-host"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A config for `key` on `sim` with extra `[config]` lines.
fn config(dir: &Path, sim: &Simulator, key: &str, extra: &str) -> String {
    let path = dir.join("qlik.toml");
    std::fs::write(dir.join("key"), key).unwrap();
    std::fs::write(
        &path,
        format!(
            "connector = \"qlik-sense\"\n[config]\ntenant_url = \"{}\"\napi_key = {{ file = \"key\" }}\nrequests_per_minute = 1000000\n{extra}",
            sim.base_url()
        ),
    )
    .unwrap();
    path.display().to_string()
}

fn deprecating(through: &'static str) -> SimConfig {
    SimConfig {
        users: 40,
        apps: 20,
        license_assignments: 30,
        consumption_events: 200,
        deprecation: Some(Deprecation { since: SINCE, sunset: SUNSET, through }),
        ..SimConfig::small()
    }
}

/// What Qlik's headers said, as the warning shows it.
fn says_the_dates(text: &str) -> bool {
    text.contains("deprecated since 2026-11-01 (Deprecation: @1793491200)")
        && text.contains("on or after Mon, 01 Nov 2027 00:00:00 GMT (Sunset)")
}

#[tokio::test]
async fn every_request_names_the_api_release() {
    let sim = Simulator::start(SimConfig { users: 40, consumption_events: 200, ..SimConfig::small() })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &sim, &sim.keys().admin, "");
    let dest = format!("sqlite:{}", dir.path().join("hub.db").display());
    let run = host(&["run", "--config", &cfg, "--dest", &dest, "--quiet"]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let check = host(&["check", "--config", &cfg]).await;
    assert_eq!(check.code, 0, "{}", check.stdout);
    assert!(
        check.stdout.contains(&format!(
            "ok       API version: every request named {API_VERSION}; Qlik announced no deprecation"
        )),
        "{}",
        check.stdout
    );

    let requests = sim.requests();
    assert!(requests.len() > 50, "{} requests", requests.len());
    let without: Vec<String> = requests
        .iter()
        .filter(|r| r.api_version.as_deref() != Some(API_VERSION))
        .map(|r| format!("{} {} {:?}", r.method, r.path, r.api_version))
        .collect();
    assert!(
        without.is_empty(),
        "{} of {} requests lack {API_VERSION}: {without:?}",
        without.len(),
        requests.len()
    );
    assert!(
        requests.iter().any(|r| r.path == "/" && !r.authorized),
        "check's keyless request is counted too"
    );

    // The config's api_version is what every request then names; a typo is a config error.
    sim.clear_requests();
    let cfg = config(dir.path(), &sim, &sim.keys().admin, "api_version = \"2026-08\"\n");
    let check = host(&["check", "--config", &cfg]).await;
    assert_eq!(check.code, 0, "{}", check.stdout);
    assert!(
        check.stdout.contains("API version: every request named 2026-08 (api_version)"),
        "{}",
        check.stdout
    );
    let requests = sim.requests();
    assert!(!requests.is_empty() && requests.iter().all(|r| r.api_version.as_deref() == Some("2026-08")));
    let cfg = config(dir.path(), &sim, &sim.keys().admin, "api_version = \"2026-09\"\n");
    let check = host(&["check", "--config", &cfg]).await;
    assert_eq!(check.code, 2, "{}{}", check.stdout, check.stderr);
    let said = format!("{}{}", check.stdout, check.stderr);
    assert!(said.contains("api_version") && said.contains("`2026-09` is not a Qlik API release"), "{said}");
    assert!(said.contains(remediation::API_VERSION_INVALID), "{said}");
}

/// The `warnings` of the last run in `db`'s `_runs`, as JSON (NULL as `Value::Null`).
async fn run_warnings(db: &Db) -> Value {
    let table = match db {
        Db::Sqlite(_) => "_runs",
        Db::Postgres(_) => "datahub._runs",
    };
    let text = db
        .scalar(&format!("SELECT warnings FROM {table} ORDER BY started_at DESC, run_id DESC LIMIT 1"))
        .await;
    if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() }
}

/// A run against a tenant announcing a deprecation: one warning, with Qlik's dates, in the
/// summary (text and JSON) and in `_runs.warnings`, however many responses carried it.
async fn deprecation_lands_once(db: Db) {
    let sim = Simulator::start(deprecating("2026-11")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &sim, &sim.keys().admin, "");
    let dest = db.dest();
    let run = host(&["run", "--config", &cfg, "--dest", &dest]).await;
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let announced = sim.requests().len();
    assert!(announced > 20, "every one of {announced} responses announced it");
    let block = run
        .stdout
        .split("Warnings:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no Warnings block:\n{}", run.stdout));
    let lines: Vec<&str> = block.lines().take_while(|l| l.starts_with("  - ")).collect();
    assert_eq!(lines.len(), 1, "{}", run.stdout);
    assert!(says_the_dates(lines[0]) && lines[0].contains("API version 2026-11"), "{}", lines[0]);
    assert!(lines[0].contains(remediation::API_DEPRECATED), "{}", lines[0]);
    assert_eq!(run.stdout.matches("announces a deprecation").count(), 1, "{}", run.stdout);
    assert_eq!(run.stderr.matches("announces a deprecation").count(), 1, "logged once:\n{}", run.stderr);

    let stored = run_warnings(&db).await;
    let stored = stored.as_array().unwrap_or_else(|| panic!("_runs.warnings is {stored}"));
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].as_str(), Some(lines[0].trim_start_matches("  - ")));

    // A second run says it again (once), and a run without warnings stores NULL.
    let run = host(&["run", "--config", &cfg, "--dest", &dest, "--json", "--streams", "roles"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(summary["warnings"].as_array().map(Vec::len), Some(1), "{summary}");
    assert!(says_the_dates(summary["warnings"][0].as_str().unwrap()));
    let quiet = Simulator::start(SimConfig { users: 40, ..SimConfig::small() }).await.unwrap();
    let cfg = config(dir.path(), &quiet, &quiet.keys().admin, "");
    let run = host(&["run", "--config", &cfg, "--dest", &dest, "--streams", "roles"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains("Warnings:"), "{}", run.stdout);
    assert_eq!(run_warnings(&db).await, Value::Null);
}

#[tokio::test]
async fn a_deprecation_is_surfaced_once_in_the_summary_and_runs_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    deprecation_lands_once(common::sqlite(dir.path())).await;
}

#[tokio::test]
async fn a_deprecation_is_surfaced_once_in_the_summary_and_runs_postgres() {
    if let Some(db) = postgres().await {
        deprecation_lands_once(db).await;
    }
}

/// A hub made before `_runs.warnings` existed gets the column in place, keeping its runs.
#[tokio::test]
async fn an_older_hub_gains_the_warnings_column() {
    let sim = Simulator::start(deprecating("2026-11")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = common::sqlite(dir.path());
    let cfg = config(dir.path(), &sim, &sim.keys().admin, "");
    let dest = db.dest();
    assert_eq!(host(&["run", "--config", &cfg, "--dest", &dest, "--streams", "roles"]).await.code, 0);
    db.execute("ALTER TABLE _runs DROP COLUMN warnings").await;
    let run = host(&["run", "--config", &cfg, "--dest", &dest, "--streams", "roles"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(db.scalar("SELECT count(*) FROM _runs WHERE status = 'succeeded'").await, "2");
    assert!(says_the_dates(run_warnings(&db).await[0].as_str().unwrap()));
}

/// `check` names the deprecation in its "API version" step, with Qlik's dates and the fix
/// once; Qlik picks the warnings by the release a request names, so a connector naming a
/// newer release than the announcement's hears nothing, and one configured for that older
/// release does.
#[tokio::test]
async fn check_names_a_deprecation_in_its_api_version_step() {
    let sim = Simulator::start(deprecating("2026-11")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let check = host(&["check", "--config", &config(dir.path(), &sim, &sim.keys().admin, "")]).await;
    assert_eq!(check.code, 0, "warnings pass: {}", check.stdout);
    let line = check
        .stdout
        .lines()
        .find(|l| l.starts_with("WARNING  API version: "))
        .unwrap_or_else(|| panic!("{}", check.stdout));
    assert!(says_the_dates(line), "{line}");
    assert_eq!(check.stdout.matches("announces a deprecation").count(), 1, "{}", check.stdout);
    assert_eq!(check.stdout.matches(remediation::API_DEPRECATED).count(), 1, "{}", check.stdout);

    let older = Simulator::start(deprecating("2026-08")).await.unwrap();
    let check = host(&["check", "--config", &config(dir.path(), &older, &older.keys().admin, "")]).await;
    assert!(check.stdout.contains("ok       API version: "), "2026-11 is newer: {}", check.stdout);
    let pinned = config(dir.path(), &older, &older.keys().admin, "api_version = \"2026-08\"\n");
    let check = host(&["check", "--config", &pinned]).await;
    assert!(check.stdout.contains("WARNING  API version: every request named 2026-08"), "{}", check.stdout);
}

/// A non-admin key loses nine streams to two causes: `check` names each cause's streams on
/// one line, prints each fix once, and fits a screen.
#[tokio::test]
async fn check_with_a_non_admin_key_prints_each_hint_once_and_fits_a_screen() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let check = host(&["check", "--config", &config(dir.path(), &sim, &sim.keys().non_admin, "")]).await;
    assert_eq!(check.code, 0, "{}", check.stdout);
    let out = &check.stdout;
    assert_eq!(out.matches(remediation::LICENCE_NEEDS_TENANT_ADMIN).count(), 1, "{out}");
    assert_eq!(out.matches(remediation::PERMISSION_DENIED).count(), 1, "{out}");
    let lines = out.lines().count();
    assert!(lines < 25 && out.len() < 2_500, "{lines} lines, {} bytes:\n{out}", out.len());
    let refused: Vec<&str> = out.lines().filter(|l| l.starts_with("WARNING  stream access: ")).collect();
    assert_eq!(refused.len(), 2, "one line per cause: {refused:?}");
    assert!(refused[0].starts_with(
        "WARNING  stream access: license_overview, license_allotments, license_assignments, license_consumption, license_settings: refused (HTTP 403)"
    ), "{}", refused[0]);
    assert!(refused[1].starts_with(
        "WARNING  stream access: user_sessions, api_key_policy, oauth_clients, consumption_executions: refused (HTTP 403)"
    ), "{}", refused[1]);
    assert!(out.ends_with("Check passed.\n"), "{out}");
}
