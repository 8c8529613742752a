//! Speed at Qlik's real limits, side by side with a script on Qlik's own SDK (issue 15).
//!
//! For each tenant size, with every response 100 ms late and Qlik's Tier 1 rate limit
//! enforced by the simulator (1,000 requests per minute per user, evaluated over a 5-minute
//! window, <https://qlik.dev/apis/rest/rate-limiting>), this bench runs, each against a fresh
//! copy of the same simulated tenant:
//!
//! - the release `connector-host run` (cargo builds it for this bench, the way
//!   `benches/load.rs` finds it), with the Qlik connector's default rate budget, into a
//!   SQLite file; its peak memory is the process's `VmHWM`, sampled while it runs;
//! - `qlik-api-script/pull.mjs`: the same streams paged one request after another with
//!   Qlik's official `@qlik/api` (version pinned in its `package-lock.json`, installed with
//!   `npm ci` into a temporary folder at the start; skipped with a message when Node.js or
//!   npm is missing or the install fails);
//!
//! and prints wall time (process start to exit), requests (the simulator's log, 429s
//! apart), records, peak memory, and the floor of the connector's request plan: the plan's
//! longest chain of sequential requests × the latency, or the window-aware rate floor
//! (full windows of the budget, then the last window's requests `max_concurrency` at a
//! time), whichever binds. The plan is computed from the tenant's sizes (the simulator's
//! ground truth) and each endpoint's largest page; the measured request count is printed
//! beside the planned one, so a plan that no longer matches the connector shows.
//!
//! Cases (`QLIK_SPEED_CASES`, default `a,b`; `c` takes at least 5 minutes per side, more
//! than 20 in all):
//!
//! - `a`: the demo tenant, 2,000 users and 20,000 consumption events;
//! - `b`: 20,000 users, 15,000 licence assignments, 100,000 consumption events;
//! - `c`: 100,000 users, 50,000 assignments, 1,000,000 consumption events, 20,000 apps,
//!   2,000 spaces (the tenant of `tests/benches/qlik_sync.rs`).
//!
//! `QLIK_SPEED_LATENCY_MS` (100) sets the latency, `QLIK_SPEED_SCRIPT=0` skips the script.
//!
//! ```sh
//! cargo bench -p host --bench qlik_speed                          # (a) and (b)
//! QLIK_SPEED_CASES=c cargo bench -p host --bench qlik_speed       # (c) alone
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use qlik_connector::config::{
    DEFAULT_MAX_CONCURRENCY, DEFAULT_RATE_WINDOW_SECONDS, DEFAULT_REQUESTS_PER_MINUTE, RATE_BUDGET_PERCENT,
};
use serde_json::Value;
use tests::qlik_sim::{GroundTruth, SimConfig, Simulator};

mod sampled;

/// The in-process simulator shares the machine's cores with the programs it serves; it
/// uses the same allocator as `connector-host` so that rendering pages takes as little of
/// them as it can.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Qlik's Tier 1 limit per user, which the simulator enforces over its 5-minute window.
const QLIK_TIER_1_PER_MINUTE: u32 = 1_000;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// The tenant of each case.
fn tenant(case: &str) -> Option<SimConfig> {
    let demo = SimConfig::demo();
    Some(match case {
        "a" => demo,
        "b" => SimConfig { users: 20_000, license_assignments: 15_000, consumption_events: 100_000, ..demo },
        "c" => SimConfig {
            users: 100_000,
            groups: 500,
            roles_custom: 20,
            spaces: 2_000,
            apps: 20_000,
            license_assignments: 50_000,
            consumption_events: 1_000_000,
            api_keys: 200,
            ..demo
        },
        _ => return None,
    })
}

/// One chain of requests the connector sends one after another.
struct Chain {
    name: &'static str,
    /// Requests in the chain, one after another.
    length: u64,
    /// Requests it sends in all (a fan-out sends one per parent, at once).
    requests: u64,
}

impl Chain {
    fn sequential(name: &'static str, requests: u64) -> Chain {
        Chain { name, length: requests, requests }
    }
}

/// The connector's request plan for a tenant, from its sizes and each endpoint's largest
/// page, as the connector reads with its default `max_concurrency` (8): the chains below
/// share that many requests in flight.
struct Plan {
    chains: Vec<Chain>,
}

impl Plan {
    fn of(truth: &GroundTruth) -> Plan {
        let count = |stream: &str| truth.stream(stream).count;
        let pages = |stream: &str, limit: u64| count(stream).div_ceil(limit).max(1);
        let slices = DEFAULT_MAX_CONCURRENCY as u64;
        // The span (`sort=+endTime` and `-endTime`, at once), then one slice per permit,
        // cut at even times; the events are spread evenly over their year, so the slices
        // are about equal.
        let slice = count("license_consumption").div_ceil(slices * 200).max(1);
        // From both ends of `sort=id`, the upper end starting after the lower end's second
        // page; both read the page where they meet.
        let users = pages("users", 100);
        // Four session event types, listed side by side (events cycle evenly through
        // them), after `/audits/types`.
        let session_pages = count("user_sessions").div_ceil(4 * 100).max(1);
        // A document named by the tenant's id, which `/tenants/me` and its redirect give,
        // looked up once for both documents: the second waits for it.
        let tenant_document = 3;
        let spaces = pages("spaces", 100);
        let mut chains = vec![
            // `/tenants/me`, its redirect to `/tenants/{id}`, `/licenses/status`.
            Chain::sequential("tenant", 3),
            Chain { name: "users", length: users.div_ceil(2) + 1, requests: users + 1 },
            Chain::sequential("groups", pages("groups", 100)),
            Chain::sequential("roles", pages("roles", 100)),
            Chain::sequential("license_overview", 1),
            Chain::sequential("license_assignments", pages("license_assignments", 100)),
            Chain { name: "license_consumption", length: 1 + slice, requests: 2 + slices * slice },
            Chain { name: "user_sessions", length: 1 + session_pages, requests: 1 + 4 * session_pages },
            Chain::sequential("license_settings", tenant_document),
            // One listing per space (each has at most 5 members) after the spaces page that
            // names it, at once: one request longer than the spaces listing.
            Chain { name: "spaces", length: spaces + 1, requests: spaces + count("spaces") },
            Chain::sequential("apps", pages("apps", 100)),
            Chain::sequential("api_keys", pages("api_keys", 100)),
            Chain { name: "api_key_policy", length: tenant_document, requests: 1 },
            Chain::sequential("oauth_clients", pages("oauth_clients", 100)),
            Chain::sequential("quotas", 1),
            Chain::sequential("consumption_executions", pages("consumption_executions", 200)),
        ];
        chains.sort_by_key(|c| std::cmp::Reverse(c.length));
        Plan { chains }
    }

    fn requests(&self) -> u64 {
        self.chains.iter().map(|c| c.requests).sum()
    }

    /// The longest sequence of requests that must go one after another.
    fn longest_chain(&self) -> &Chain {
        &self.chains[0]
    }
}

/// The connector's default budget: at most this many requests in any window.
fn budget() -> (u64, Duration) {
    let window = u64::from(DEFAULT_RATE_WINDOW_SECONDS);
    let per_window = u64::from(DEFAULT_REQUESTS_PER_MINUTE) * window * RATE_BUDGET_PERCENT / (60 * 100);
    (per_window, Duration::from_secs(window))
}

/// The floor of a plan, the later of two:
///
/// - the chain floor: its longest chain at `latency` a request;
/// - the rate floor: the budget admits request `k` only once request `k - budget` is a
///   window old, so the last window starts after all full ones, and its requests go at
///   most `max_concurrency` at a time. With no full window, that is the plain throughput
///   floor, all requests `max_concurrency` at a time.
fn floor(plan: &Plan, latency: Duration) -> (Duration, String) {
    let longest = plan.longest_chain();
    let chain_floor = latency * longest.length as u32;
    let (per_window, window) = budget();
    let requests = plan.requests();
    let windows = (requests - 1) / per_window;
    let last_window = (requests - windows * per_window).div_ceil(DEFAULT_MAX_CONCURRENCY as u64);
    let rate_floor = window * windows as u32 + latency * last_window as u32;
    let why = format!(
        "chain floor {:.1} s ({} requests of {} × {} ms), rate floor {:.1} s ({requests} requests, \
         {per_window} per {} s, {DEFAULT_MAX_CONCURRENCY} at a time)",
        chain_floor.as_secs_f64(),
        longest.length,
        longest.name,
        latency.as_millis(),
        rate_floor.as_secs_f64(),
        window.as_secs()
    );
    (chain_floor.max(rate_floor), why)
}

/// What one program did against one fresh simulator.
struct Measured {
    wall: Duration,
    requests: usize,
    throttled: usize,
    records: u64,
    peak_kb: u64,
    cpu: Duration,
}

/// Starts a fresh simulator of `config` with `latency` and Qlik's Tier 1 limit.
async fn simulator(config: &SimConfig, latency: Duration) -> Simulator {
    let mut config = config.clone();
    config.rate_limit_per_minute = Some(QLIK_TIER_1_PER_MINUTE);
    config.faults.latency = latency;
    Simulator::start(config).await.expect("start the simulator")
}

/// A run's figures: its own (the `records` of its JSON summary), and the requests the
/// simulator answered, 429s apart.
fn counted(sim: &Simulator, run: sampled::Sampled) -> Measured {
    let summary: Value = serde_json::from_slice(&run.stdout).expect("JSON summary");
    let log = sim.requests();
    let throttled = log.iter().filter(|r| r.status == 429).count();
    Measured {
        wall: run.wall,
        requests: log.len() - throttled,
        throttled,
        records: summary["records"].as_u64().unwrap_or(0),
        peak_kb: run.peak_kb,
        cpu: run.cpu,
    }
}

/// `connector-host run` with the connector's defaults, into a SQLite file in `dir`.
async fn connector(config: &SimConfig, latency: Duration, dir: &Path) -> Measured {
    let sim = simulator(config, latency).await;
    let config_file = dir.join("qlik.toml");
    std::fs::write(
        &config_file,
        format!(
            "connector = \"qlik-sense\"\n[config]\ntenant_url = \"{}\"\napi_key = \"{}\"\n",
            sim.base_url(),
            sim.keys().admin
        ),
    )
    .expect("write config");
    let db = dir.join(format!("hub-{}.db", sim.local_addr().port()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_connector-host"));
    command
        .args(["run", "--config", &config_file.display().to_string(), "--json"])
        .args(["--dest", &format!("sqlite:{}", db.display())])
        .env("RUST_LOG", "warn");
    counted(&sim, sampled::run_sampled(command).await)
}

/// Installs the script's pinned `@qlik/api` into a temporary folder, or says why not.
fn prepare_script() -> Result<tempfile::TempDir, String> {
    if std::env::var("QLIK_SPEED_SCRIPT").as_deref() == Ok("0") {
        return Err("QLIK_SPEED_SCRIPT=0".into());
    }
    for tool in ["node", "npm"] {
        match Command::new(tool).arg("--version").output() {
            Ok(out) if out.status.success() => {}
            _ => return Err(format!("`{tool} --version` failed: Node.js 20 or later and npm are needed")),
        }
    }
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/qlik-api-script");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    for file in ["package.json", "package-lock.json", "pull.mjs"] {
        std::fs::copy(source.join(file), dir.path().join(file)).map_err(|e| format!("{file}: {e}"))?;
    }
    let install = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir.path())
        .output()
        .map_err(|e| e.to_string())?;
    if !install.status.success() {
        return Err(format!("npm ci failed: {}", String::from_utf8_lossy(&install.stderr).trim()));
    }
    Ok(dir)
}

/// The version of `@qlik/api` that `npm ci` installed.
fn sdk_version(dir: &Path) -> String {
    let manifest = std::fs::read(dir.join("node_modules/@qlik/api/package.json")).unwrap_or_default();
    let manifest: Value = serde_json::from_slice(&manifest).unwrap_or_default();
    manifest["version"].as_str().unwrap_or("?").to_string()
}

/// The script against a fresh simulator.
async fn script(config: &SimConfig, latency: Duration, dir: &Path) -> Measured {
    let sim = simulator(config, latency).await;
    let mut command = Command::new("node");
    command.arg("pull.mjs").arg(sim.base_url()).arg(&sim.keys().admin).current_dir(dir);
    counted(&sim, sampled::run_sampled(command).await)
}

fn row(name: &str, m: &Measured, note: &str) {
    println!(
        "  {name:<18} {:>9.1} s {:>9} {:>6} {:>10} {:>8.1} MB {:>7.1} s   {note}",
        m.wall.as_secs_f64(),
        m.requests,
        m.throttled,
        m.records,
        m.peak_kb as f64 / 1024.0,
        m.cpu.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let cases = env_or("QLIK_SPEED_CASES", "a,b");
    let latency = Duration::from_millis(env_or("QLIK_SPEED_LATENCY_MS", "100").parse().expect("a number"));
    let work = tempfile::tempdir().expect("temp dir");
    let script_dir = prepare_script();
    let sdk = match &script_dir {
        Ok(dir) => format!("@qlik/api {}", sdk_version(dir.path())),
        Err(why) => {
            println!("The @qlik/api script is skipped: {why}.");
            String::new()
        }
    };
    let (per_window, window) = budget();
    println!(
        "Qlik's Tier 1 enforced by the simulator ({QLIK_TIER_1_PER_MINUTE} requests per minute over 300 s); \
         connector budget {per_window} requests in any {} s; {} ms per response.",
        window.as_secs(),
        latency.as_millis()
    );
    for case in cases.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let Some(config) = tenant(case) else {
            println!("Unknown case `{case}`; the cases are a, b and c.");
            continue;
        };
        let truth = simulator(&config, Duration::ZERO).await.ground_truth().clone();
        let plan = Plan::of(&truth);
        let (floor, why) = floor(&plan, latency);
        println!(
            "\ncase ({case}): {} users, {} licence assignments, {} consumption events, {} apps, {} spaces",
            config.users, config.license_assignments, config.consumption_events, config.apps, config.spaces
        );
        println!("  floor {:.1} s: {why}", floor.as_secs_f64());
        println!(
            "  {:<18} {:>11} {:>9} {:>6} {:>10} {:>11} {:>9}",
            "", "wall", "requests", "429s", "records", "peak RSS", "CPU"
        );
        let ours = connector(&config, latency, work.path()).await;
        let planned = plan.requests();
        let plan_note = if ours.requests as u64 == planned {
            "as planned".to_string()
        } else {
            format!("{planned} planned")
        };
        row(
            "connector-host",
            &ours,
            &format!("{:.2} × floor, {plan_note}", ours.wall.as_secs_f64() / floor.as_secs_f64()),
        );
        if let Ok(dir) = &script_dir {
            let theirs = script(&config, latency, dir.path()).await;
            let speedup = theirs.wall.as_secs_f64() / ours.wall.as_secs_f64();
            row(&sdk, &theirs, &format!("connector-host {speedup:.1} × faster"));
        }
    }
}
