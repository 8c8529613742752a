//! Many tenants in one `run` (issue 17, item 3), beyond what `contract.rs` covers: each
//! tenant paces itself with its own request budget, neither a broken config nor a tenant
//! another run holds stops the others, and runs ending together make the views in turn.

mod common;

use std::time::Instant;

use common::{GOOD_KEY, cli, config_file};
use host::sink::lock::InstanceLock;
use qlik_connector::config::Settings;
use serde_json::{Value, json};
use tests::qlik_sim::{SimConfig, Simulator};

/// The budget each Qlik tenant is given: 90% of 300 requests per minute, evaluated over
/// two-second windows, lets 9 requests into any two seconds, so the budget, not the
/// machine, sets how long a run of a few dozen requests takes.
const REQUESTS_PER_MINUTE: u32 = 300;
/// The window the budget is evaluated over.
const WINDOW_SECONDS: u32 = 2;

fn qlik_config(dir: &std::path::Path, name: &str, sim: &Simulator) -> String {
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&key, &sim.keys().admin).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "connector = \"qlik-sense\"\n[config]\ntenant_url = \"{}\"\napi_key = {{ file = \"{}\" }}\nrequests_per_minute = {REQUESTS_PER_MINUTE}\nrate_window_seconds = {WINDOW_SECONDS}\n",
            sim.base_url(),
            key.display()
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// Two tenants synced side by side, each with a small request budget: the run takes about
/// as long as the busier tenant alone needs within its budget, far less than the two
/// tenants' requests would need from one shared budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_has_its_own_rate_budget() {
    let a = Simulator::start(SimConfig { seed: 7, ..SimConfig::small() }).await.unwrap();
    let b = Simulator::start(SimConfig { seed: 8, ..SimConfig::small() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (config_a, config_b) = (qlik_config(dir.path(), "a", &a), qlik_config(dir.path(), "b", &b));
    let dest = format!("sqlite:{}", dir.path().join("hub.db").display());
    let started = Instant::now();
    let out =
        cli(&["run", "--config", &config_a, "--config", &config_b, "--parallel", "2", "--dest", &dest]).await;
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    let settings = Settings::from_json(&json!({
        "tenant_url": a.base_url(),
        "api_key": "unused",
        "requests_per_minute": REQUESTS_PER_MINUTE,
        "rate_window_seconds": WINDOW_SECONDS,
    }))
    .unwrap();
    let budget = settings.rate_budget() as f64;
    // The least time `requests` take when at most `budget` of them go out in any window.
    let least = |requests: f64| ((requests / budget).ceil() - 1.0).max(0.0) * f64::from(WINDOW_SECONDS);
    let (sent_a, sent_b) = (a.requests().len() as f64, b.requests().len() as f64);
    let own_budget = least(sent_a.max(sent_b));
    let shared_budget = least(sent_a + sent_b);
    eprintln!("{sent_a}+{sent_b} requests in {wall:.1}s; alone {own_budget:.1}s, shared {shared_budget:.1}s");
    assert!(wall >= own_budget * 0.9, "paced: {wall:.1}s for {sent_a}+{sent_b} requests");
    // Both write into one SQLite file, taking turns while their sources wait on their
    // budgets. A run that kept its write transaction open through such a wait held the
    // other back by whole budget windows (16 to 28 s here, against 14 s now).
    assert!(
        wall < own_budget + (shared_budget - own_budget) * 0.35,
        "each tenant's own budget: {wall:.1}s; alone at this pace {own_budget:.1}s, sharing one budget {shared_budget:.1}s"
    );
}

/// One `run` over four configs: an unreadable config (exit 2 for it) and a tenant whose
/// lock another run holds (exit 7 for it) stop neither of the two others, which land;
/// the run exits 5 and reports each config with its own code, in config order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_config_or_a_held_tenant_stops_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let good_a = config_file(dir.path(), "a.toml", "items = 5\nevents = 7\n");
    let broken = dir.path().join("b.toml");
    std::fs::write(
        &broken,
        format!("connector = \"test-source\"\n[config]\napi_key = \"{GOOD_KEY}\"\nitems = \"many\"\n"),
    )
    .unwrap();
    let held = config_file(dir.path(), "c.toml", "items = 3\ntenant = \"tenant-c\"\n");
    let good_d = config_file(dir.path(), "d.toml", "items = 9\nevents = 2\ntenant = \"tenant-d\"\n");
    let db = dir.path().join("hub.db");
    let dest = format!("sqlite:{}", db.display());
    let lock_dir = std::path::PathBuf::from(format!("{}-locks", db.display()));
    let _other_run = InstanceLock::try_acquire(&lock_dir, "test-source:tenant-c").unwrap().unwrap();

    let configs = [&good_a, &broken, &held, &good_d].map(|p| p.display().to_string());
    let mut args = vec!["run", "--dest", &dest, "--json", "--parallel", "4"];
    for config in &configs {
        args.extend(["--config", config.as_str()]);
    }
    let out = cli(&args).await;
    assert_eq!(out.code, 5, "{}{}", out.stdout, out.stderr);
    let outcomes: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    let exits: Vec<u64> = outcomes.iter().map(|o| o["exit"].as_u64().unwrap()).collect();
    assert_eq!(exits, [0, 2, 7, 0], "{outcomes:?}");
    assert!(outcomes[1]["error"].as_str().unwrap().contains("items"), "{}", outcomes[1]);
    assert!(outcomes[2]["error"].as_str().unwrap().contains("already syncing"), "{}", outcomes[2]);

    let conn = rusqlite::Connection::open(&db).unwrap();
    let counted = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(
        counted("SELECT count(*) FROM test_source__items WHERE _instance = 'test-source:tenant-a'"),
        5
    );
    assert_eq!(
        counted("SELECT count(*) FROM test_source__items WHERE _instance = 'test-source:tenant-d'"),
        9
    );
    assert_eq!(
        counted("SELECT count(*) FROM test_source__items WHERE _instance = 'test-source:tenant-c'"),
        0
    );
    assert_eq!(counted("SELECT count(*) FROM _runs WHERE status = 'refused'"), 1);
    assert_eq!(
        counted("SELECT count(*) FROM _state WHERE stream = 'events'"),
        2,
        "a checkpoint per landed tenant"
    );
}

/// Runs of several tenants end at the same moment and each makes the connector's views: on
/// PostgreSQL they take turns under the lock on table changes, where two `CREATE OR REPLACE
/// VIEW`s at once collide in the catalog (a duplicate `pg_type` row when the view is new,
/// "tuple concurrently updated" when it is replaced), which the run reported as a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_made_by_runs_ending_together_do_not_collide() {
    let Some(url) = common::fresh_postgres_database("views_at_once").await else { return };
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("a.toml");
    let text = format!(
        "connector = \"qlik-sense\"\n[config]\ntenant_url = \"{}\"\napi_key = \"{}\"\n",
        sim.base_url(),
        sim.keys().admin
    );
    std::fs::write(&config, text).unwrap();
    let out = cli(&["run", "--config", &config.display().to_string(), "--dest", &url, "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let one = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let seats = one("SELECT count(*) FROM qlik_sense.licence_usage").await;
    assert!(seats > 0);
    let views = connector_api::registry::find("qlik-sense").unwrap().views();
    let (mut a, mut b) =
        (host::sink::registry::open(&url).await.unwrap(), host::sink::registry::open(&url).await.unwrap());
    for round in 0..20 {
        if round % 2 == 0 {
            client.batch_execute("DROP VIEW qlik_sense.licence_usage").await.unwrap();
        }
        let (made_a, made_b) =
            tokio::join!(a.ensure_views("qlik-sense", &views), b.ensure_views("qlik-sense", &views));
        made_a.unwrap_or_else(|e| panic!("round {round}: {e}"));
        made_b.unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    assert_eq!(one("SELECT count(*) FROM datahub._tables WHERE table_name = 'licence_usage'").await, 1);
    assert_eq!(
        one("SELECT count(*) FROM qlik_sense.licence_usage").await,
        seats,
        "the view answers as before"
    );
}
