//! The synthetic tenant: sizes, a few derived constants, and generators that build any
//! entity from its index on demand. Nothing per entity is stored, so a tenant of 100,000 users
//! and a million consumption events starts at once and stays small.

mod api_keys;
mod audits;
mod consumption;
mod content;
mod identity;
mod licenses;
mod oauth_clients;
mod quotas;

pub(crate) use audits::{AUDIT_RETENTION_S, AUDIT_TYPES};
pub(crate) use consumption::{EXECUTION_IDENTITY, EXECUTION_PERIODS};
pub(crate) use identity::{DEFAULT_ROLES, SortKey, UserOrder, UserRec, UserStatus};
pub(crate) use licenses::AssignmentRec;
pub(crate) use quotas::QUOTA_IDS;

use std::sync::atomic::{AtomicBool, Ordering};

use super::config::{SimConfig, Subscription};
use super::situations::Situations;
use super::synth::{Kind, alnum, object_id};

/// The fewest users a tenant has: the issued keys belong to users 0..=4.
pub(crate) const MIN_USERS: usize = 6;

/// Counts of licence assignments by type, computed once at start for the overview.
#[derive(Clone, Debug, Default)]
pub(crate) struct AssignmentCounts {
    pub professional: u64,
    pub professional_excess: u64,
    pub analyzer: u64,
    pub analyzer_excess: u64,
}

/// A tenant derived from a [`SimConfig`].
#[derive(Debug)]
pub(crate) struct Tenant {
    pub seed: u64,
    pub users: u64,
    pub groups: u64,
    pub roles_custom: u64,
    pub spaces: u64,
    pub apps: u64,
    /// QlikView documents in the cloud (`qvapp` items), listed after the apps: one per ten apps.
    pub qvapps: u64,
    /// OAuth clients: a few per tenant, more where there are more API keys.
    pub oauth_clients: u64,
    /// Audit events (four in five of them user-session events): four per user, at most
    /// 20,000, the older half past the online retention and only in the archive.
    pub audit_events: u64,
    /// Assignments of current users.
    pub assignments: u64,
    /// Assignments whose subject is no user of this tenant: listed among the others, and
    /// alone with `orphans=true`.
    pub orphans: u64,
    pub events: u64,
    /// Events recorded late (sorted indices), hidden until `late_published`.
    pub late: Vec<u64>,
    /// Set once a client has read the consumption listing to its end.
    pub consumption_read_to_end: AtomicBool,
    /// Set when a consumption listing starts after one was read to its end: from then on the
    /// late events are listed.
    pub late_published: AtomicBool,
    /// User indices in `+id` order (ids sort by their index-derived head).
    pub users_by_id: Vec<u32>,
    /// User indices in `+name` order (ties by id), before any rename.
    pub users_by_name: Vec<u32>,
    /// Set once the rename of [`Situations::rename_during_users_listing`] has happened.
    pub renamed: AtomicBool,
    /// The space deleted mid-run, with [`Situations::space_deleted_mid_run`].
    pub deleted_space: Option<u64>,
    pub situations: Situations,
    /// User-based or capacity-based: which allotments `licenses/overview` lists.
    pub subscription: Subscription,
    /// See [`SimConfig::hostname`].
    pub hostname: Option<String>,
    pub api_keys: u64,
    pub tenant_id: String,
    pub license_number: String,
    /// The tenant's signed licence token: a secret that must never leak into a client's output.
    pub license_key: String,
    pub counts: AssignmentCounts,
    /// Wall-clock Unix seconds at start: key lifetimes are relative to it.
    pub now_s: i64,
}

impl Tenant {
    /// Derives the tenant; O(assignments) for the licence counts, O(1) otherwise.
    pub(crate) fn new(config: &SimConfig, now_s: i64) -> Tenant {
        let seed = config.seed;
        let users = config.users.max(MIN_USERS) as u64;
        let assignments = (config.license_assignments as u64).min(users);
        let mut tenant = Tenant {
            seed,
            users,
            groups: config.groups as u64,
            roles_custom: config.roles_custom as u64,
            spaces: config.spaces as u64,
            apps: config.apps as u64,
            qvapps: config.apps as u64 / 10,
            oauth_clients: 5 + config.api_keys as u64 / 2,
            audit_events: (config.users.max(MIN_USERS) as u64 * 4).min(20_000),
            assignments,
            orphans: if assignments > 0 { assignments / 40 + 2 } else { 0 },
            events: config.consumption_events as u64,
            late: Vec::new(),
            consumption_read_to_end: AtomicBool::new(false),
            late_published: AtomicBool::new(false),
            users_by_id: Vec::new(),
            users_by_name: Vec::new(),
            renamed: AtomicBool::new(false),
            deleted_space: None,
            situations: config.situations,
            subscription: config.subscription,
            hostname: config.hostname.clone(),
            api_keys: config.api_keys.max(6) as u64,
            tenant_id: alnum(seed, Kind::Tenant, 0, 1, 32),
            license_number: format!("{:016}", super::synth::h(seed, Kind::License, 0, 1) % 10u64.pow(16)),
            license_key: String::new(),
            counts: AssignmentCounts::default(),
            now_s,
        };
        tenant.license_key = licenses::license_key(&tenant);
        tenant.late = tenant.late_events();
        tenant.users_by_id = tenant.order_by_id();
        tenant.users_by_name = tenant.order_by_name();
        if config.situations.space_deleted_mid_run {
            tenant.deleted_space = (1..tenant.spaces).find(|i| tenant.space_assignment_count(*i) > 0);
        }
        let mut counts = AssignmentCounts::default();
        for j in 0..tenant.assignments {
            let a = tenant.assignment(j);
            match (a.kind, a.excess) {
                ("professional", false) => counts.professional += 1,
                ("professional", true) => counts.professional_excess += 1,
                (_, false) => counts.analyzer += 1,
                (_, true) => counts.analyzer_excess += 1,
            }
        }
        tenant.counts = counts;
        tenant
    }

    /// The id of user `i`.
    pub(crate) fn user_id(&self, i: u64) -> String {
        object_id(self.seed, Kind::User, i)
    }

    /// The id of group `i`.
    pub(crate) fn group_id(&self, i: u64) -> String {
        object_id(self.seed, Kind::Group, i)
    }

    /// The id of role `i` (default roles first, then custom ones).
    pub(crate) fn role_id(&self, i: u64) -> String {
        object_id(self.seed, Kind::Role, i)
    }

    /// Default plus custom roles.
    pub(crate) fn roles_total(&self) -> u64 {
        DEFAULT_ROLES.len() as u64 + self.roles_custom
    }

    /// The id of space `i`.
    pub(crate) fn space_id(&self, i: u64) -> String {
        object_id(self.seed, Kind::Space, i)
    }

    /// Whether consumption event `i` is listed now (late events only once published).
    pub(crate) fn event_listed(&self, i: u64) -> bool {
        self.late_published.load(Ordering::Relaxed) || self.late.binary_search(&i).is_err()
    }

    /// The tenant's display name.
    pub(crate) fn name(&self) -> String {
        format!("Simulated tenant {}", self.seed)
    }
}
