//! What a correct sync of the simulated tenant must land: per connector stream, the count and
//! digest of its primary keys (see [`crate::digest`]), keys as issue 4's stream table gives them.

use std::collections::BTreeMap;

use crate::digest::{KeyDigest, key_digest};

use super::tenant::Tenant;

/// Per stream, the key digest a correct sync produces.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroundTruth {
    /// Stream name to digest. Besides the connector's streams it holds
    /// `license_assignments_with_orphans`: a plain pass plus an `orphans=true` pass.
    pub streams: BTreeMap<String, KeyDigest>,
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

/// Computes every stream's digest in one pass per entity kind.
pub(crate) fn compute(t: &Tenant) -> GroundTruth {
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
    let plain = (0..t.assignments).map(|j| t.assignment(j));
    put("license_assignments", key_digest(plain.clone().map(|a| [a.subject, a.kind.to_owned()])));
    put(
        "license_assignments_with_orphans",
        key_digest(plain.chain((0..t.orphans).map(|o| t.orphan(o))).map(|a| [a.subject, a.kind.to_owned()])),
    );
    put("license_consumption", key_digest((0..t.events).map(|i| [t.event(i).id])));

    put("spaces", key_digest((0..t.spaces).map(|i| [t.space_id(i)])));
    put(
        "space_assignments",
        key_digest(
            (0..t.spaces)
                .flat_map(|s| (0..t.space_assignment_count(s)).map(move |j| [t.space_assignment(s, j).id])),
        ),
    );
    put("apps", key_digest((0..t.apps).map(|i| [t.app(i).id])));
    put("api_keys", key_digest((0..t.api_keys).map(|i| [t.api_key_id(i)])));
    GroundTruth { streams }
}
