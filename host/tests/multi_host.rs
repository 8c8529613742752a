//! Many hosts, one hub: several `connector-host` processes, started together on the same
//! folder of tenant configs against one PostgreSQL, round after round. The per-instance
//! advisory lock lets exactly one of them sync each tenant per round and refuses the rest
//! (exit 7 for that tenant, recorded as `refused`); no row is loaded twice, and every round
//! ends in bounded time.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qlik_connector as _;
use serde_json::Value;
use tests::digest::key_digest;
use tests::qlik_sim::{Faults, SimConfig, Simulator};

/// Host processes started at once, each on every tenant.
const HOSTS: usize = 4;
/// Simulated tenants, each its own simulator.
const TENANTS: usize = 3;
/// Times the hosts are started together.
const ROUNDS: usize = 3;
/// How long a round may take before the test calls it a deadlock. A round's winners
/// take a few seconds; refused hosts give up after the lock's 2 s grace.
const ROUND_LIMIT: Duration = Duration::from_secs(180);

/// A tenant slow enough (1.2 s on every response, a run of about 8 s) that its run
/// outlasts the 2 s a refused host keeps trying for the lock by far: the hosts that lose
/// the race are refused instead of syncing the tenant again after the winner, which the
/// lock alone would allow (it excludes runs at the same time, not runs one after another).
async fn slow_tenant(seed: u64) -> Simulator {
    Simulator::start(SimConfig {
        seed,
        faults: Faults { latency: Duration::from_millis(1200), ..Faults::default() },
        ..SimConfig::small()
    })
    .await
    .unwrap()
}

fn write_config(folder: &Path, index: usize, sim: &Simulator) {
    let key = folder.join(format!("tenant-{index}.key"));
    std::fs::write(&key, &sim.keys().admin).unwrap();
    std::fs::write(
        folder.join(format!("tenant-{index}.toml")),
        format!(
            "connector = \"qlik-sense\"\n[config]\ntenant_url = \"{}\"\napi_key = {{ file = \"{}\" }}\nrequests_per_minute = 1000000\n",
            sim.base_url(),
            key.display()
        ),
    )
    .unwrap();
}

/// The instance the hub files `sim`'s rows under.
fn instance(sim: &Simulator) -> String {
    format!("qlik-sense:{}", sim.local_addr())
}

fn spawn_host(folder: &Path, url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_connector-host"))
        .args(["run", "--config", &folder.display().to_string(), "--parallel", "3", "--dest", url, "--json"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for every host of a round, killing them all if the round outlasts
/// [`ROUND_LIMIT`]; returns each host's exit code and per-tenant JSON outcomes.
async fn finish(mut hosts: Vec<Child>, round: usize) -> Vec<(i32, Vec<Value>)> {
    let deadline = Instant::now() + ROUND_LIMIT;
    while hosts.iter_mut().any(|h| h.try_wait().unwrap().is_none()) {
        if Instant::now() > deadline {
            for host in &mut hosts {
                let _ = host.kill();
            }
            panic!("round {round} did not end within {ROUND_LIMIT:?}: a deadlock");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hosts
        .into_iter()
        .map(|host| {
            let out = host.wait_with_output().unwrap();
            let outcomes: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "{e}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            (out.status.code().unwrap(), outcomes)
        })
        .collect()
}

/// Every stream of `sim`'s instance in the hub holds exactly the simulator's keys.
async fn assert_lands_exactly(client: &tokio_postgres::Client, sim: &Simulator) {
    let qlik = connector_api::registry::find("qlik-sense").unwrap();
    for stream in qlik.static_catalog().unwrap().streams {
        let cols: Vec<String> = stream.primary_key.iter().map(|k| format!("\"{k}\"::text")).collect();
        let rows = client
            .query(
                &format!("SELECT {} FROM qlik_sense.{} WHERE _instance = $1", cols.join(", "), stream.name),
                &[&instance(sim)],
            )
            .await
            .unwrap();
        let keys: Vec<Vec<String>> = rows
            .iter()
            .map(|r| (0..stream.primary_key.len()).map(|i| r.get::<_, String>(i)).collect())
            .collect();
        assert_eq!(
            key_digest(keys),
            *sim.ground_truth().stream(&stream.name),
            "{} of {}",
            stream.name,
            instance(sim)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_sync_each_tenant_once_per_round() {
    let Some(url) = common::fresh_postgres_database("hub_hosts").await else { return };
    let mut sims = Vec::new();
    for seed in 0..TENANTS {
        sims.push(slow_tenant(100 + seed as u64).await);
    }
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("tenants");
    std::fs::create_dir(&folder).unwrap();
    for (index, sim) in sims.iter().enumerate() {
        write_config(&folder, index, sim);
    }
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);

    for round in 1..=ROUNDS {
        let started = Instant::now();
        let hosts: Vec<Child> = (0..HOSTS).map(|_| spawn_host(&folder, &url)).collect();
        let results = finish(hosts, round).await;
        eprintln!("round {round}: {HOSTS} hosts ended in {:.1}s", started.elapsed().as_secs_f64());

        // Per tenant, across the hosts: one run succeeded, every other one was refused
        // (exit 7), and each host's exit code combines its tenants' as documented.
        let mut exits: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for (code, outcomes) in &results {
            assert_eq!(outcomes.len(), TENANTS);
            for outcome in outcomes {
                let instance = outcome["summary"]["instance"].as_str().unwrap().to_string();
                exits.entry(instance).or_default().push(outcome["exit"].as_u64().unwrap());
            }
            let ok = outcomes.iter().filter(|o| o["exit"] == 0).count();
            let expected = match ok {
                TENANTS => 0,
                0 => 7,
                _ => 5,
            };
            assert_eq!(*code, expected, "{outcomes:?}");
        }
        for sim in &sims {
            let mut codes = exits.remove(&instance(sim)).unwrap_or_default();
            codes.sort();
            assert_eq!(codes, [0, 7, 7, 7], "round {round}, {}", instance(sim));
        }

        // The hub's own record agrees: per tenant, `round` succeeded runs and three refused
        // per round, none left running, failed or interrupted.
        for sim in &sims {
            let rows = client
                .query(
                    "SELECT status, count(*) FROM datahub._runs WHERE instance = $1 GROUP BY 1 ORDER BY 1",
                    &[&instance(sim)],
                )
                .await
                .unwrap();
            let statuses: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            let refused = ((HOSTS - 1) * round) as i64;
            assert_eq!(
                statuses,
                [("refused".to_string(), refused), ("succeeded".to_string(), round as i64)],
                "round {round}, {}",
                instance(sim)
            );
            assert_lands_exactly(&client, sim).await;
        }
    }

    // A tenant's successful runs never overlapped: each began after the one before ended.
    for sim in &sims {
        let rows = client
            .query(
                "SELECT started_at, finished_at FROM datahub._runs
                 WHERE instance = $1 AND status = 'succeeded' ORDER BY started_at",
                &[&instance(sim)],
            )
            .await
            .unwrap();
        let spans: Vec<(std::time::SystemTime, std::time::SystemTime)> =
            rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(spans.len(), ROUNDS);
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "{}: runs overlapped: {pair:?}", instance(sim));
        }
    }
}
