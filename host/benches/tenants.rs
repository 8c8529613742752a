//! Many tenants, one host: 50 simulated Qlik Cloud tenants synced by one `connector-host
//! run --config DIR --parallel 16`, against one of them synced alone. Prints the total
//! wall time, what it would be if the tenants scaled perfectly (the lone tenant's time
//! per batch of `--parallel`), the slowest tenant's own run time inside the batch, and
//! the host process's peak memory (VmHWM).
//!
//! `cargo bench -p host --bench tenants`. Into PostgreSQL when DATAHUB_TEST_POSTGRES_URL
//! is set (a multi-tenant hub's usual store), else into an SQLite file. Sizes:
//! DATAHUB_BENCH_TENANTS (default 50), DATAHUB_BENCH_PARALLEL (16) and
//! DATAHUB_BENCH_LATENCY_MS (50: a network round trip to Qlik Cloud, added to every
//! response). Each tenant is `SimConfig::small()` (250 users, 1,000 consumption events,
//! about 60 requests) with its own seed, and a default config: its request budget (4,500
//! in any 5 minutes, Qlik's Tier 1) is far more than such a tenant needs, so latency and
//! the machine, not the budget, set the pace.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tests::qlik_sim::{Faults, SimConfig, Simulator};

mod sampled;

/// The in-process simulators share the machine's cores with `connector-host`; they use
/// the same allocator so that their page rendering takes as little of them as it can.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn size(var: &str, default: u64) -> u64 {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Writes tenant `index`'s config (and its key file) into `folder`.
fn write_config(folder: &Path, index: u64, sim: &Simulator) {
    let key = folder.join(format!("tenant-{index:03}.key"));
    std::fs::write(&key, &sim.keys().admin).expect("write key");
    std::fs::write(
        folder.join(format!("tenant-{index:03}.toml")),
        format!(
            "connector = \"qlik-sense\"\n[config]\ntenant_url = \"{}\"\napi_key = {{ file = \"{}\" }}\n",
            sim.base_url(),
            key.display()
        ),
    )
    .expect("write config");
}

/// `connector-host <args>`, logging warnings only.
fn host(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_connector-host"));
    command.args(args).env("RUST_LOG", "warn");
    command
}

/// Two destinations of the same kind, fresh: one for the lone tenant, one for all.
async fn destinations(dir: &Path) -> (String, String, &'static str) {
    let Ok(url) = std::env::var("DATAHUB_TEST_POSTGRES_URL") else {
        let file = |name: &str| format!("sqlite:{}", dir.join(name).display());
        return (file("alone.db"), file("all.db"), "SQLite");
    };
    let (client, conn) =
        tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(conn);
    let mut urls = Vec::new();
    for which in ["alone", "all"] {
        let name = format!("hub_bench_{which}_{}", std::process::id());
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
        let mut db = url::Url::parse(&url).expect("URL");
        db.set_path(&format!("/{name}"));
        urls.push(db.to_string());
    }
    let all = urls.pop().expect("two databases");
    (urls.pop().expect("two databases"), all, "PostgreSQL")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let tenants = size("DATAHUB_BENCH_TENANTS", 50);
    let parallel = size("DATAHUB_BENCH_PARALLEL", 16);
    let latency = Duration::from_millis(size("DATAHUB_BENCH_LATENCY_MS", 50));
    let mut sims = Vec::new();
    for seed in 0..tenants {
        let config =
            SimConfig { seed, faults: Faults { latency, ..Faults::default() }, ..SimConfig::small() };
        sims.push(Simulator::start(config).await.expect("start a simulator"));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = dir.path().join("tenants");
    std::fs::create_dir(&folder).expect("tenants folder");
    for (index, sim) in (0..).zip(&sims) {
        write_config(&folder, index, sim);
    }
    let (alone_dest, all_dest, kind) = destinations(dir.path()).await;
    println!(
        "{tenants} simulated tenants ({} ms a response), one host, --parallel {parallel}, into {kind}",
        latency.as_millis()
    );

    let first = folder.join("tenant-000.toml").display().to_string();
    let alone =
        sampled::run_sampled(host(&["run", "--config", &first, "--dest", &alone_dest, "--quiet"])).await;
    println!(
        "one tenant alone:  {:>6.1} s, peak memory (VmHWM) {:>6.1} MB, CPU {:.1} s",
        alone.wall.as_secs_f64(),
        alone.peak_kb as f64 / 1024.0,
        alone.cpu.as_secs_f64()
    );

    let folder_arg = folder.display().to_string();
    let parallel_arg = parallel.to_string();
    let all = sampled::run_sampled(host(&[
        "run",
        "--config",
        &folder_arg,
        "--parallel",
        &parallel_arg,
        "--dest",
        &all_dest,
        "--json",
    ]))
    .await;
    let outcomes: Vec<Value> = serde_json::from_slice(&all.stdout).expect("JSON outcomes");
    let seconds = |o: &Value| o["summary"]["seconds"].as_f64().unwrap_or(0.0);
    let slowest = outcomes.iter().map(seconds).fold(0.0, f64::max);
    let records: u64 = outcomes.iter().map(|o| o["summary"]["records"].as_u64().unwrap_or(0)).sum();
    let batches = tenants.div_ceil(parallel);
    println!(
        "{tenants} tenants:  {:>6.1} s wall ({batches} batches of {parallel} at the lone tenant's pace: {:.1} s), \
         slowest tenant's own run {slowest:.1} s, {records} records, peak memory (VmHWM) {:.1} MB, CPU {:.1} s",
        all.wall.as_secs_f64(),
        batches as f64 * alone.wall.as_secs_f64(),
        all.peak_kb as f64 / 1024.0,
        all.cpu.as_secs_f64()
    );
}
