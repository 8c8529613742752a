//! What tenant to simulate and how badly to behave.

use std::time::Duration;

use super::situations::Situations;

/// The simulated tenant's size and behaviour. Every entity derives from `seed` and its index,
/// so the same configuration always serves the same data.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seed of every generated value.
    pub seed: u64,
    /// Users of all five statuses (at least 6: the issued keys belong to users 0..=4).
    pub users: usize,
    /// Groups.
    pub groups: usize,
    /// Custom roles, on top of Qlik's default roles.
    pub roles_custom: usize,
    /// Spaces (each has 0 to 5 member assignments).
    pub spaces: usize,
    /// Apps served by `/api/v1/items?resourceType=app`.
    pub apps: usize,
    /// Licence assignments of current users (capped at `users`); orphans come on top.
    pub license_assignments: usize,
    /// Licence consumption events, spread over the 12 months before the data's "now".
    pub consumption_events: usize,
    /// API keys listed by `/api/v1/api-keys` (at least 6: the keys in [`super::ApiKeys`]).
    pub api_keys: usize,
    /// Requests per minute allowed per user (all keys of one user share it), evaluated over a
    /// 5-minute window as Qlik does: `Some(1000)` is Qlik's Tier 1, at most 5,000 requests in
    /// any 300 s. `None` enforces no limit.
    pub rate_limit_per_minute: Option<u32>,
    /// `false` models a tenant with API keys switched off: every key gets 401.
    pub api_keys_enabled: bool,
    /// Faults injected into responses.
    pub faults: Faults,
    /// Situations to reproduce (a space deleted mid-run, renames, assignment shapes).
    pub situations: Situations,
    /// The kind of subscription the tenant runs on, which decides its licence allotments.
    pub subscription: Subscription,
    /// The tenant's own hostname, first of `hostnames` in `/api/v1/tenants/me`, when the
    /// address clients reach the simulator at is to be one of its aliases (the `Tenant`
    /// definition: "The first record maps to the display name and the subsequent entries are
    /// aliases", https://qlik.dev/apis/rest/tenants). `None`: the reached address is the
    /// tenant's hostname.
    pub hostname: Option<String>,
    /// A deprecation the tenant announces in the headers of its REST API responses; none
    /// when `None`.
    pub deprecation: Option<Deprecation>,
}

/// A deprecation announced in response headers. Qlik says it returns deprecation warnings in
/// response headers, chosen by the API release a request is served as, without naming the
/// headers (https://qlik.dev/apis/versioning); the simulator sends the standard ones.
#[derive(Clone, Debug)]
pub struct Deprecation {
    /// `Deprecation: @<seconds>` (RFC 9745): when the functionality was deprecated, Unix
    /// seconds.
    pub since: i64,
    /// `Sunset: <HTTP date>` (RFC 8594): when it may be removed, Unix seconds.
    pub sunset: i64,
    /// The newest release it is announced to: requests served as this release or an older
    /// one get the headers, requests naming a newer one do not. A request without
    /// `qlik-api-version`, or naming an unsupported release, is served as the oldest.
    pub through: &'static str,
}

/// The two ways Qlik sells Qlik Cloud Analytics. User-based subscriptions (Qlik Sense
/// Enterprise SaaS, Qlik Sense Business) count Professional and Analyzer entitlements and
/// Analyzer capacity minutes; capacity-based ones (the Standard, Premium and Enterprise
/// editions of Qlik Cloud Analytics, sold since 2024) meter data capacity and count Full and
/// Basic users instead
/// (https://help.qlik.com/en-US/cloud-services/Subsystems/Hub/Content/Sense_Hub/Admin/comparing-subscriptions.htm).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Subscription {
    /// Professional, Analyzer and Analyzer-capacity allotments: what tenants bought before
    /// 2024 run on, and what the simulator has always served.
    #[default]
    UserBased,
    /// A `fullUser` allotment in `licenses/overview`, the signal Qlik's own monitoring-app
    /// installer reads to tell a capacity tenant
    /// (github.com/qlik-oss/qlik-cloud-monitoring-apps, `automations/multipleTenantInstaller.json`).
    CapacityBased,
}

impl SimConfig {
    /// A fast test tenant: about 250 users and several pages per stream at `limit=100`.
    pub fn small() -> Self {
        SimConfig {
            seed: 42,
            users: 250,
            groups: 12,
            roles_custom: 3,
            spaces: 25,
            apps: 230,
            license_assignments: 210,
            consumption_events: 1_000,
            api_keys: 12,
            rate_limit_per_minute: None,
            api_keys_enabled: true,
            faults: Faults::default(),
            situations: Situations::default(),
            subscription: Subscription::UserBased,
            hostname: None,
            deprecation: None,
        }
    }

    /// The README demo tenant.
    pub fn demo() -> Self {
        SimConfig {
            seed: 2026,
            users: 2_000,
            groups: 40,
            roles_custom: 4,
            spaces: 30,
            apps: 500,
            license_assignments: 1_500,
            consumption_events: 20_000,
            api_keys: 25,
            ..SimConfig::small()
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig::small()
    }
}

/// Faults injected into responses; the default injects none.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Added to every response.
    pub latency: Duration,
    /// A uniformly random extra delay of up to this much.
    pub jitter: Duration,
    /// Share (0..=1) of requests answered with a 500, 502 or 503.
    pub error_5xx_rate: f64,
    /// Share of requests answered with 429 and `Retry-After: 1`.
    pub error_429_rate: f64,
    /// Share of requests whose TCP connection is closed without any response.
    pub drop_connection_rate: f64,
    /// Share of successful responses whose body stops short of its `Content-Length`.
    pub truncate_body_rate: f64,
    /// Share of successful responses whose body is not valid JSON.
    pub malformed_json_rate: f64,
    /// Every `links.next` points back at the page it is on.
    pub looping_next: bool,
    /// Every `links.next` names another host (`evil.example:1`) with the right path and query.
    pub foreign_host_next: bool,
    /// Records gain unknown fields, lose optional fields and carry nulls in optional fields.
    pub schema_drift: bool,
    /// Answers no real tenant sends, in place of the tenant's.
    pub hostile: Option<super::faults::Hostile>,
    /// At most this many tries in a row of one request (method, path and query) are exposed
    /// to the random faults above; the next try is answered cleanly. Real outages end, and a
    /// test that asserts exact data after random faults needs them to end within the client's
    /// attempts, or it fails by chance (at 38 % faulty answers, one request in 2,300 fails 8
    /// tries in a row). `None`: no bound.
    pub longest_burst: Option<u32>,
}
