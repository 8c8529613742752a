//! `qlik-sim`: a local Qlik Cloud tenant for demos, manual testing and benchmarks.
//!
//! Prints its base URL and API keys, then serves until Ctrl-C. With `--json` it prints one
//! line of JSON (`{"base_url":..,"keys":{..}}`) and nothing else on stdout, for programs that
//! spawn it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use tests::qlik_sim::{Deprecation, Faults, SimConfig, Simulator, Situations, Subscription};

/// The simulator renders every page afresh, allocating a JSON value per field; on a
/// benchmark machine it shares the cores with the connector it serves, so it uses the
/// same fast allocator as `connector-host`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A local Qlik Cloud tenant: deterministic data, Qlik's shapes, keys, limits and faults.
#[derive(Parser, Debug)]
#[command(name = "qlik-sim", version)]
struct Args {
    /// Seed of all generated data: the same seed serves the same tenant.
    #[arg(long, default_value_t = SimConfig::demo().seed)]
    seed: u64,
    /// Users (all five statuses).
    #[arg(long, default_value_t = SimConfig::demo().users)]
    users: usize,
    /// Groups.
    #[arg(long, default_value_t = SimConfig::demo().groups)]
    groups: usize,
    /// Custom roles (on top of Qlik's default roles).
    #[arg(long, default_value_t = SimConfig::demo().roles_custom)]
    roles_custom: usize,
    /// Spaces.
    #[arg(long, default_value_t = SimConfig::demo().spaces)]
    spaces: usize,
    /// Apps.
    #[arg(long, default_value_t = SimConfig::demo().apps)]
    apps: usize,
    /// Licence assignments of current users (orphans come on top).
    #[arg(long, default_value_t = SimConfig::demo().license_assignments)]
    assignments: usize,
    /// Licence consumption events.
    #[arg(long, default_value_t = SimConfig::demo().consumption_events)]
    consumption_events: usize,
    /// API keys listed by /api/v1/api-keys (at least 6).
    #[arg(long, default_value_t = SimConfig::demo().api_keys)]
    api_keys: usize,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Requests per minute allowed per user, evaluated over 5 minutes as Qlik does (Tier 1 is
    /// 1000: at most 5,000 in any 300 s); unlimited when absent.
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Model a tenant with API keys switched off: every key gets 401.
    #[arg(long)]
    keys_disabled: bool,
    /// Latency added to every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Random extra latency of up to this many milliseconds.
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,
    /// Share (0..=1) of requests answered 500/502/503.
    #[arg(long, default_value_t = 0.0)]
    error_5xx_rate: f64,
    /// Share of requests answered 429 with Retry-After.
    #[arg(long, default_value_t = 0.0)]
    error_429_rate: f64,
    /// Share of requests whose connection is closed without a response.
    #[arg(long, default_value_t = 0.0)]
    drop_connection_rate: f64,
    /// Share of successful responses cut short of their Content-Length.
    #[arg(long, default_value_t = 0.0)]
    truncate_body_rate: f64,
    /// Share of successful responses with a body that is not JSON.
    #[arg(long, default_value_t = 0.0)]
    malformed_json_rate: f64,
    /// At most this many tries in a row of one request meet the random faults above; the
    /// next is answered cleanly.
    #[arg(long, value_name = "TRIES")]
    longest_burst: Option<u32>,
    /// Every links.next points back at its own page.
    #[arg(long)]
    looping_next: bool,
    /// Every links.next names another host.
    #[arg(long)]
    foreign_host_next: bool,
    /// Records gain unknown fields and lose or null optional ones.
    #[arg(long)]
    schema_drift: bool,
    /// Situation: a space is deleted between the spaces listing and its assignments call.
    #[arg(long)]
    space_deleted_mid_run: bool,
    /// Situation: two users are renamed once a users listing in name order has begun.
    #[arg(long)]
    rename_during_users_listing: bool,
    /// Situation: licence assignment rows carry userId and name, or lack type.
    #[arg(long)]
    assignment_shape_variants: bool,
    /// Latitude Qlik's pages leave: licenses/consumption answers a compound `filter` (two
    /// comparisons joined by `and`) with 400.
    #[arg(long)]
    compound_filters_refused: bool,
    /// Latitude Qlik's pages leave: /v1/users ignores `sort` and lists by name.
    #[arg(long)]
    users_sort_ignored: bool,
    /// A capacity-based subscription (a `fullUser` allotment, metering records in
    /// `consumption/executions`) instead of a user-based one (Professional, Analyzer and
    /// Analyzer-capacity allotments; `consumption/executions` answers 404).
    #[arg(long)]
    capacity_based: bool,
    /// The tenant's own hostname (`acme.eu.qlikcloud.com`), listed first in `tenants/me`;
    /// the address the simulator is reached at is then one of its aliases.
    #[arg(long)]
    hostname: Option<String>,
    /// Announce a deprecation in every REST API response: `Deprecation` (RFC 9745) with this
    /// day (YYYY-MM-DD), beside `Sunset` (RFC 8594) with --sunset.
    #[arg(long, value_name = "DATE", requires = "sunset")]
    deprecated_since: Option<String>,
    /// The removal date announced with --deprecated-since (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", requires = "deprecated_since")]
    sunset: Option<String>,
    /// The newest API release the deprecation is announced to (`qlik-api-version`); requests
    /// naming a newer one get no headers.
    #[arg(long, value_name = "YYYY-MM", default_value = "2026-11", value_parser = ["2026-05", "2026-08", "2026-11"])]
    deprecated_through: String,
    /// Write the ground truth (per stream: count and key digest) to this JSON file.
    #[arg(long)]
    ground_truth: Option<PathBuf>,
    /// Print one line of JSON with the base URL and keys, and nothing else on stdout.
    #[arg(long)]
    json: bool,
}

/// Unix seconds of midnight UTC of `day` (YYYY-MM-DD), for the `--name` flag.
fn day(name: &str, day: &str) -> Result<i64, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(day, format)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| format!("--{name} must be a date as YYYY-MM-DD, got {day}"))
}

fn rate(name: &str, v: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&v) { Ok(v) } else { Err(format!("--{name} must be between 0 and 1, got {v}")) }
}

impl Args {
    fn config(&self) -> Result<SimConfig, String> {
        Ok(SimConfig {
            seed: self.seed,
            users: self.users,
            groups: self.groups,
            roles_custom: self.roles_custom,
            spaces: self.spaces,
            apps: self.apps,
            license_assignments: self.assignments,
            consumption_events: self.consumption_events,
            api_keys: self.api_keys,
            rate_limit_per_minute: self.rate_limit,
            api_keys_enabled: !self.keys_disabled,
            faults: Faults {
                latency: Duration::from_millis(self.latency_ms),
                jitter: Duration::from_millis(self.jitter_ms),
                error_5xx_rate: rate("error-5xx-rate", self.error_5xx_rate)?,
                error_429_rate: rate("error-429-rate", self.error_429_rate)?,
                drop_connection_rate: rate("drop-connection-rate", self.drop_connection_rate)?,
                truncate_body_rate: rate("truncate-body-rate", self.truncate_body_rate)?,
                malformed_json_rate: rate("malformed-json-rate", self.malformed_json_rate)?,
                looping_next: self.looping_next,
                foreign_host_next: self.foreign_host_next,
                longest_burst: self.longest_burst,
                schema_drift: self.schema_drift,
                hostile: None,
            },
            situations: Situations {
                space_deleted_mid_run: self.space_deleted_mid_run,
                rename_during_users_listing: self.rename_during_users_listing,
                assignment_shape_variants: self.assignment_shape_variants,
                compound_filters_refused: self.compound_filters_refused,
                users_sort_ignored: self.users_sort_ignored,
            },
            subscription: if self.capacity_based {
                Subscription::CapacityBased
            } else {
                Subscription::UserBased
            },
            hostname: self.hostname.clone(),
            deprecation: match (&self.deprecated_since, &self.sunset) {
                (Some(since), Some(sunset)) => Some(Deprecation {
                    since: day("deprecated-since", since)?,
                    sunset: day("sunset", sunset)?,
                    through: ["2026-05", "2026-08", "2026-11"]
                        .into_iter()
                        .find(|r| *r == self.deprecated_through)
                        .unwrap_or("2026-11"),
                }),
                _ => None,
            },
        })
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let config = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("qlik-sim: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let sim = match Simulator::start_on(config, SocketAddr::from(([127, 0, 0, 1], args.port))).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("qlik-sim: cannot listen on 127.0.0.1:{}: {e}", args.port);
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.ground_truth {
        let json = serde_json::to_string_pretty(sim.ground_truth()).expect("ground truth serialises");
        if let Err(e) = std::fs::write(path, json) {
            eprintln!("qlik-sim: cannot write the ground truth to {}: {e}", path.display());
            return std::process::ExitCode::FAILURE;
        }
    }
    let keys = sim.keys();
    if args.json {
        let line = serde_json::json!({
            "base_url": sim.base_url(),
            "keys": {
                "admin": keys.admin,
                "non_admin": keys.non_admin,
                "expired": keys.expired,
                "revoked": keys.revoked,
                "legacy_developer": keys.legacy_developer,
                "expiring_soon": keys.expiring_soon,
            },
        });
        println!("{line}");
    } else {
        println!("Qlik Cloud simulator serving {} users at {}", args.users.max(6), sim.base_url());
        println!("  tenant URL:        {}", sim.base_url());
        println!("  admin API key:     {}", keys.admin);
        println!("  non-admin API key: {}", keys.non_admin);
        println!("  expired API key:   {}", keys.expired);
        println!("Try: curl -H \"Authorization: Bearer $KEY\" {}/api/v1/users?limit=5", sim.base_url());
        println!("Press Ctrl-C to stop.");
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
    std::process::ExitCode::SUCCESS
}
