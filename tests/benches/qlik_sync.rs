//! Speed of a full Qlik sync against a large simulated tenant (issue 4, "Speed").
//!
//! `cargo bench -p tests --bench qlik_sync` runs two scenarios against the simulator,
//! started in this process (it generates entities from their index, so its own memory
//! stays small; peak memory below is the whole process, simulator included):
//!
//! 1. `latency`: every response takes `QLIK_BENCH_LATENCY_MS` (30), no rate limit;
//!    compared with the latency floor, the longest chain of sequential pages (every page
//!    at its endpoint's maximum `limit`) times the latency.
//! 2. `rate`: the simulator enforces `QLIK_BENCH_RPM` (1000) requests per minute over
//!    Qlik's 5-minute window and the connector is configured with the same limit (its
//!    budget is 90% of it over the same window); compared with the window-aware rate floor:
//!    request `k` cannot go before request `k - budget` is a window old.
//!
//! `QLIK_BENCH_SCALE` (default 1.0) scales the tenant: 1.0 is 100,000 users, 50,000
//! licence assignments, 1,000,000 consumption events, 20,000 apps and 2,000 spaces.
//! `QLIK_BENCH_SCENARIOS` picks scenarios (`latency,rate`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use connector_api::{Connector, Message, State, StreamEvent};
use futures::StreamExt;
use qlik_connector::QlikConnector;
use qlik_connector::config::{DEFAULT_RATE_WINDOW_SECONDS, RATE_BUDGET_PERCENT};
use serde_json::json;
use tests::qlik_sim::{Faults, SimConfig, Simulator};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn scaled(n: f64, scale: f64, min: usize) -> usize {
    ((n * scale).round() as usize).max(min)
}

fn tenant(scale: f64) -> SimConfig {
    SimConfig {
        seed: 7,
        users: scaled(100_000.0, scale, 10),
        groups: scaled(500.0, scale, 5),
        roles_custom: 20,
        spaces: scaled(2_000.0, scale, 5),
        apps: scaled(20_000.0, scale, 5),
        license_assignments: scaled(50_000.0, scale, 5),
        consumption_events: scaled(1_000_000.0, scale, 10),
        api_keys: scaled(200.0, scale, 6),
        ..SimConfig::small()
    }
}

/// The longest chain of sequential requests with every page at its maximum `limit`.
fn longest_chain(t: &SimConfig) -> (u64, &'static str) {
    let pages = |n: usize, limit: usize| n.div_ceil(limit).max(1) as u64;
    [
        (pages(t.consumption_events, 200), "license_consumption"),
        (pages(t.users, 100), "users"),
        (pages(t.license_assignments, 100), "license_assignments"),
        (pages(t.apps, 100), "apps"),
        (pages(t.spaces, 100) + 1, "spaces + space_assignments"),
        (pages(t.groups, 100), "groups"),
        (3, "tenant (tenants/me, redirect, licenses/status)"),
    ]
    .into_iter()
    .max()
    .unwrap()
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets the peak-RSS counter so each scenario reports its own peak (Linux ≥ 4.0).
fn reset_hwm() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

struct Run {
    wall: Duration,
    requests: usize,
    throttled_429: usize,
    records: BTreeMap<String, u64>,
    retries: u64,
    throttle_wait: Duration,
    peak_kib: Option<u64>,
}

async fn run(sim: &Simulator, rpm: u32, max_concurrency: usize) -> Run {
    sim.clear_requests();
    let config = json!({
        "tenant_url": sim.base_url(),
        "api_key": sim.keys().admin,
        "requests_per_minute": rpm,
        "max_concurrency": max_concurrency,
    });
    let connector = QlikConnector;
    let catalog = connector.static_catalog().unwrap().configure(None, false).unwrap();
    let started = Instant::now();
    let mut messages = connector.read(&config, &catalog, &State::default()).await.expect("read starts");
    let mut records: BTreeMap<String, u64> = BTreeMap::new();
    let (mut retries, mut throttle_wait) = (0, Duration::ZERO);
    while let Some(m) = messages.next().await {
        match m.expect("the sync succeeds") {
            Message::Record(r) => *records.entry(r.stream).or_default() += 1,
            Message::Status(s) => match s.event {
                StreamEvent::Retrying { .. } => retries += 1,
                StreamEvent::Throttled { wait } => throttle_wait += wait,
                _ => {}
            },
            _ => {}
        }
    }
    let wall = started.elapsed();
    let peak_kib = vm_hwm_kib();
    let log = sim.requests();
    Run {
        wall,
        requests: log.len(),
        throttled_429: log.iter().filter(|r| r.status == 429).count(),
        records,
        retries,
        throttle_wait,
        peak_kib,
    }
}

fn report(name: &str, r: &Run, floor: Duration, floor_name: &str) {
    let total: u64 = r.records.values().sum();
    println!("scenario {name}");
    println!("  wall time        {:>10.2} s", r.wall.as_secs_f64());
    println!("  requests         {:>10}", r.requests);
    println!("  records          {:>10}", total);
    println!("  records/s        {:>10.0}", total as f64 / r.wall.as_secs_f64());
    println!("  retries          {:>10}  (429 answers: {})", r.retries, r.throttled_429);
    println!("  limiter waits    {:>10.2} s (summed over streams)", r.throttle_wait.as_secs_f64());
    match r.peak_kib {
        Some(k) => println!("  peak memory      {:>10.1} MiB (VmHWM, simulator included)", k as f64 / 1024.0),
        None => println!("  peak memory      unavailable"),
    }
    println!("  {floor_name:<16} {:>10.2} s", floor.as_secs_f64());
    if floor.is_zero() {
        println!("  wall / floor              – (the run fits the budget: no rate floor)");
    } else {
        println!("  wall / floor     {:>10.3}", r.wall.as_secs_f64() / floor.as_secs_f64());
    }
}

fn main() {
    let scale: f64 = env("QLIK_BENCH_SCALE", 1.0);
    let latency_ms: u64 = env("QLIK_BENCH_LATENCY_MS", 30);
    let rpm: u32 = env("QLIK_BENCH_RPM", 1000);
    let scenarios: String = env("QLIK_BENCH_SCENARIOS", "latency,rate".to_string());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let t = tenant(scale);
        println!(
            "tenant (scale {scale}): {} users, {} assignments, {} consumption events, {} apps, {} spaces",
            t.users, t.license_assignments, t.consumption_events, t.apps, t.spaces
        );
        let (chain, chain_stream) = longest_chain(&t);
        if scenarios.contains("latency") {
            let sim = Simulator::start(tenant(scale)).await.unwrap();
            sim.set_faults(Faults { latency: Duration::from_millis(latency_ms), ..Default::default() });
            let reset = reset_hwm();
            let r = run(&sim, 10_000_000, 16).await;
            let floor = Duration::from_millis(latency_ms) * chain as u32;
            println!("latency floor: {chain} sequential pages of {chain_stream} x {latency_ms} ms (peak reset: {reset})");
            report("latency (no rate limit)", &r, floor, "latency floor");
            check_counts(&sim, &r);
        }
        if scenarios.contains("rate") {
            let mut config = tenant(scale);
            config.rate_limit_per_minute = Some(rpm);
            let sim = Simulator::start(config).await.unwrap();
            let reset = reset_hwm();
            let r = run(&sim, rpm, 8).await;
            let window = u64::from(DEFAULT_RATE_WINDOW_SECONDS);
            let budget = u64::from(rpm) * window * RATE_BUDGET_PERCENT / (60 * 100);
            let floor = Duration::from_secs((r.requests as u64).saturating_sub(1) / budget * window);
            println!(
                "rate floor: {} requests, at most {budget} in any {window} s (peak reset: {reset})",
                r.requests
            );
            report(&format!("rate-limited ({rpm}/min)"), &r, floor, "rate floor");
            check_counts(&sim, &r);
        }
    });
}

/// Compares record counts with the simulator's ground truth (after the peak-memory
/// reading, since computing the truth holds every key).
fn check_counts(sim: &Simulator, r: &Run) {
    let truth = sim.ground_truth();
    let wrong: Vec<String> = r
        .records
        .iter()
        .filter(|(s, n)| truth.stream(s).count != **n)
        .map(|(s, n)| format!("{s}: {n} vs {}", truth.stream(s).count))
        .collect();
    println!("  counts vs truth  {}", if wrong.is_empty() { "exact".to_string() } else { wrong.join("; ") });
}
