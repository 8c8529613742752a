//! What a correct sync of the simulated tenant must land: per connector stream, the count and
//! digest of its primary keys (see [`crate::digest`]), keys as issue 4's stream table gives them.
//! The space deleted mid-run (a situation) stays in `spaces`, which listed it, and its members
//! are missing from `space_assignments`, which could not read them.

use std::collections::BTreeMap;

use crate::digest::{KeyDigest, key_digest};

use super::keys::KeyKind;
use super::synth::rfc3339_ms;
use super::tenant::{AssignmentRec, EXECUTION_IDENTITY, QUOTA_IDS, Tenant};

/// The `type` a correct sync lands for an assignment row Qlik sends without one (Qlik's
/// own examples show such rows): the connector's documented stand-in, which keeps the
/// primary key `(subject, type)` whole.
pub const UNTYPED: &str = "unspecified";

/// Per stream, the key digest a correct sync produces.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroundTruth {
    /// Stream name to digest. Besides the connector's streams it holds
    /// `license_assignment_orphans` (the assignments `orphans=true` lists) and
    /// `license_consumption_on_time` (the events listed before the late ones are recorded:
    /// what a first sync can land; `license_consumption` is what is listed now),
    /// `user_sessions_with_archive` (the session events online and in the archive: what a
    /// sync from before the archived days lands), `user_last_session` (per user with a
    /// session online, the user id and the time of the last session event),
    /// `idle_professional_seats` (the subjects of professional seats whose user had no
    /// session in the online 90 days: what the manual's idle-seat query lists), and `spaces`,
    /// `space_assignments`, `apps` and `api_keys` as the non-admin key sees them (see
    /// [`non_admin`]).
    pub streams: BTreeMap<String, KeyDigest>,
    /// The records `consumption/executions` lists, in its default order (`-periodstart`):
    /// a capacity tenant's metering records, none on a user-based tenant.
    #[serde(default)]
    pub consumption_executions: Vec<serde_json::Value>,
}

impl GroundTruth {
    /// The digest of `name`; panics naming the known streams if there is none.
    pub fn stream(&self, name: &str) -> &KeyDigest {
        self.streams.get(name).unwrap_or_else(|| {
            panic!(
                "no ground truth for stream `{name}`; known: {}",
                self.streams.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// The ground-truth name of `stream` as the non-admin key's user sees it.
pub fn non_admin(stream: &str) -> String {
    format!("{stream}@non_admin")
}

/// Computes every stream's digest in one pass per entity kind; `license_consumption`
/// includes the late events when `late_listed`.
pub(crate) fn compute(t: &Tenant, late_listed: bool) -> GroundTruth {
    let mut streams = BTreeMap::new();
    let mut put = |name: &str, d: KeyDigest| {
        streams.insert(name.to_owned(), d);
    };
    put("tenant", key_digest([[t.tenant_id.as_str()]]));

    let (mut users, mut user_roles, mut user_groups) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..t.users {
        let u = t.user(i);
        for r in &u.roles {
            user_roles.push([u.id.clone(), t.role_id(*r)]);
        }
        for g in &u.groups {
            user_groups.push([u.id.clone(), t.group_id(*g)]);
        }
        users.push([u.id]);
    }
    put("users", key_digest(users));
    put("user_roles", key_digest(user_roles));
    put("user_groups", key_digest(user_groups));
    put("groups", key_digest((0..t.groups).map(|i| [t.group_id(i)])));
    put("roles", key_digest((0..t.roles_total()).map(|i| [t.role_id(i)])));

    put("license_overview", key_digest([[t.license_number.as_str()]]));
    put(
        "license_allotments",
        key_digest(t.allotments().into_iter().map(|a| [t.license_number.clone(), a.0.to_owned()])),
    );
    let assignment_key =
        |a: AssignmentRec| [a.subject, if a.untyped { UNTYPED.to_owned() } else { a.kind.to_owned() }];
    let listing = (0..t.assignment_listing_len()).map(|p| t.listed_assignment(p));
    put("license_assignments", key_digest(listing.map(assignment_key)));
    put("license_assignment_orphans", key_digest((0..t.orphans).map(|k| assignment_key(t.orphan(k)))));
    let on_time = || (0..t.events).filter(|i| t.late.binary_search(i).is_err());
    put("license_consumption_on_time", key_digest(on_time().map(|i| [t.event(i).id])));
    let listed = key_digest(
        (0..t.events).filter(|i| late_listed || t.late.binary_search(i).is_err()).map(|i| [t.event(i).id]),
    );
    put("license_consumption", listed);

    put("spaces", key_digest((0..t.spaces).map(|i| [t.space_id(i)])));
    let members = |s: u64| (0..t.space_assignment_count(s)).map(move |j| [t.space_assignment(s, j).id]);
    put(
        "space_assignments",
        key_digest((0..t.spaces).filter(|s| Some(*s) != t.deleted_space).flat_map(members)),
    );
    let items = || 0..t.apps + t.qvapps;
    put("apps", key_digest(items().map(|i| [t.app(i).id])));
    put("api_keys", key_digest((0..t.api_keys).map(|i| [t.api_key_id(i)])));
    put("license_settings", key_digest([[t.tenant_id.as_str()]]));
    put("api_key_policy", key_digest([[t.tenant_id.as_str()]]));
    let sessions = |from: u64| (from..t.audit_events).filter(|i| t.audit_is_session(*i));
    put("user_sessions", key_digest(sessions(t.first_online_audit()).map(|i| [t.audit_event_id(i)])));
    put("user_sessions_with_archive", key_digest(sessions(0).map(|i| [t.audit_event_id(i)])));
    let mut last = std::collections::BTreeMap::new();
    for i in sessions(t.first_online_audit()) {
        last.insert(t.user_id(t.audit_user(i)), rfc3339_ms(t.audit_time_ms(i)));
    }
    put("user_last_session", key_digest(last.into_iter().map(|(user, at)| [user, at])));
    let active: std::collections::HashSet<u64> =
        sessions(t.first_online_audit()).map(|i| t.audit_user(i)).collect();
    let idle = (0..t.assignments)
        .map(|j| t.assignment(j))
        .filter(|a| a.kind == "professional" && !a.untyped && a.user.is_some_and(|u| !active.contains(&u)));
    put("idle_professional_seats", key_digest(idle.map(|a| [a.subject])));
    put("quotas", key_digest(QUOTA_IDS.map(|id| [id])));
    put("oauth_clients", key_digest((0..t.oauth_clients).map(|i| [t.oauth_client_id(i)])));
    let mut executions: Vec<serde_json::Value> = (0..t.executions()).map(|i| t.execution_json(i)).collect();
    executions.sort_by_key(|r| std::cmp::Reverse(r["periodStart"].as_str().map(str::to_owned)));
    put("consumption_executions", key_digest(executions.iter().map(|r| [execution_key(r)])));

    // What the non-admin key's user can see of the streams it may read.
    let user = KeyKind::NonAdmin.user_index();
    let spaces = || (0..t.spaces).filter(|s| t.space_visible(*s, user, false));
    put(&non_admin("spaces"), key_digest(spaces().map(|i| [t.space_id(i)])));
    put(
        &non_admin("space_assignments"),
        key_digest(spaces().filter(|s| Some(*s) != t.deleted_space).flat_map(members)),
    );
    put(
        &non_admin("apps"),
        key_digest(items().filter(|i| t.app_visible(*i, user, false)).map(|i| [t.app(i).id])),
    );
    put(
        &non_admin("api_keys"),
        key_digest((0..t.api_keys).filter(|i| t.api_key_owner(*i) == user).map(|i| [t.api_key_id(i)])),
    );
    GroundTruth { streams, consumption_executions: executions }
}

/// The key the connector documents for an execution record (which has no id): the hex
/// SHA-256 of the JSON array of its [`EXECUTION_IDENTITY`] fields, absent ones null.
pub fn execution_key(record: &serde_json::Value) -> String {
    use sha2::{Digest, Sha256};
    let identity: Vec<&serde_json::Value> = EXECUTION_IDENTITY.iter().map(|f| &record[*f]).collect();
    hex::encode(Sha256::digest(serde_json::to_string(&identity).expect("JSON values serialise")))
}
