//! The directory the SCIM test server serves: users and groups generated from their
//! index, so every run (and every test) sees the same resources.

use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, macros::datetime};

/// When the directory was created; every timestamp is an offset from it.
const EPOCH: OffsetDateTime = datetime!(2024-01-02 08:00:00 UTC);

const GIVEN: [&str; 8] = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken"];
const FAMILY: [&str; 8] =
    ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"];

/// One user as the server keeps it.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: String,
    pub index: usize,
    pub last_modified: OffsetDateTime,
}

/// One group: its members are user ids, plus nested group ids.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub id: String,
    pub index: usize,
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

/// Every resource of the directory.
#[derive(Debug, Clone)]
pub(crate) struct Directory {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

fn user_id(i: usize) -> String {
    format!("2819c223-7f76-453a-919d-{i:012x}")
}

fn group_id(g: usize) -> String {
    format!("e9e30dba-f08f-4109-8486-{g:012x}")
}

impl Directory {
    /// `users` users in `groups` groups. User `i` is in group `i % groups`, and also in
    /// group `(3i + 1) % groups` when that differs; group 0 contains group 1 (nested).
    /// Modification times are a permutation of the users, so they do not follow the
    /// listing order.
    pub fn generate(users: usize, groups: usize) -> Self {
        let users: Vec<User> = (0..users)
            .map(|i| User {
                id: user_id(i),
                index: i,
                last_modified: EPOCH + Duration::minutes(((i * 7919) % users.max(1)) as i64 + 1),
            })
            .collect();
        let mut gs: Vec<Group> =
            (0..groups).map(|g| Group { id: group_id(g), index: g, users: vec![], groups: vec![] }).collect();
        if groups > 0 {
            for u in &users {
                let a = u.index % groups;
                let b = (3 * u.index + 1) % groups;
                gs[a].users.push(u.id.clone());
                if b != a {
                    gs[b].users.push(u.id.clone());
                }
            }
        }
        if groups > 1 {
            let nested = gs[1].id.clone();
            gs[0].groups.push(nested);
        }
        Directory { users, groups: gs }
    }

    /// The SCIM representation of a user (RFC 7643 §4.1).
    pub fn user_json(&self, u: &User, base: &str) -> Value {
        let i = u.index;
        let (given, family) = (GIVEN[i % GIVEN.len()], FAMILY[(i / GIVEN.len()) % FAMILY.len()]);
        let user_name = format!("{}.{}{i}@example.com", given.to_lowercase(), family.to_lowercase());
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": u.id,
            "externalId": format!("emp-{i:05}"),
            "userName": user_name,
            "name": {"givenName": given, "familyName": family, "formatted": format!("{given} {family}")},
            "displayName": format!("{given} {family}"),
            "title": if i.is_multiple_of(5) { Value::from("Engineer") } else { Value::Null },
            "active": i % 9 != 4,
            "emails": [{"value": user_name, "type": "work", "primary": true}],
            "meta": {
                "resourceType": "User",
                "created": ts(EPOCH),
                "lastModified": ts(u.last_modified),
                "location": format!("{base}/Users/{}", u.id),
                "version": format!("W/\"{}\"", u.last_modified.unix_timestamp()),
            },
        })
    }

    /// The SCIM representation of a group (RFC 7643 §4.2).
    pub fn group_json(&self, g: &Group, base: &str) -> Value {
        let mut members: Vec<Value> = g
            .users
            .iter()
            .map(|id| json!({"value": id, "$ref": format!("{base}/Users/{id}"), "type": "User"}))
            .collect();
        members.extend(
            g.groups
                .iter()
                .map(|id| json!({"value": id, "$ref": format!("{base}/Groups/{id}"), "type": "Group"})),
        );
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": g.id,
            "displayName": format!("Team {:02}", g.index),
            "members": members,
            "meta": {
                "resourceType": "Group",
                "created": ts(EPOCH),
                "lastModified": ts(EPOCH + Duration::hours(g.index as i64)),
                "location": format!("{base}/Groups/{}", g.id),
            },
        })
    }
}

/// RFC 3339 with a `Z` offset, the form SCIM servers commonly send.
pub(crate) fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}
