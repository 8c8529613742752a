//! The streams the SCIM connector reads: each declared once as a [`StreamDef`] (schema
//! and record mapping) with the [`Source`] that lists it.
//!
//! SCIM nests a resource's name and metadata (`name.givenName`, `meta.lastModified`);
//! those fields become columns, and every attribute the declaration does not know
//! (enterprise extensions, phone numbers …) stays in the record's `_extra`, so nothing the
//! server sent is lost.

use async_trait::async_trait;
use connector_api::cursor::Cursor;
use connector_api::read::{Chain, Plan, Records, Source};
use connector_api::stream_def::{Access, StreamDef, Ty, col, derived, record_spreading};
use connector_api::{Catalog, Error, ErrorKind, Result};
use serde_json::{Map, Value};

use crate::server::{Ctx, Server};

/// The property incremental reads of `users` resume from.
pub const USERS_CURSOR: &str = "last_modified";

/// `/Users`: one record per user account.
pub const USERS: StreamDef = StreamDef {
    name: "users",
    description: "A user account of the service provider (RFC 7643 §4.1).",
    primary_key: &["id"],
    cursor: Some(USERS_CURSOR),
    access: Access::Everyone,
    fields: &[
        col("id", "id", Ty::String, "The server's stable identifier of the user."),
        col("external_id", "externalId", Ty::String, "The identifier the provisioning client assigned."),
        col("user_name", "userName", Ty::String, "The unique login name."),
        col("display_name", "displayName", Ty::String, "The name shown to people."),
        derived("given_name", Ty::String, "Given name (name.givenName)."),
        derived("family_name", Ty::String, "Family name (name.familyName)."),
        col("title", "title", Ty::String, "Job title."),
        col(
            "active",
            "active",
            Ty::Boolean,
            "Whether the account may sign in; inactive accounts hold no seat.",
        ),
        derived("primary_email", Ty::String, "The primary e-mail address, or the first one listed."),
        col("emails", "emails", Ty::Array, "Every e-mail address, as the server lists them."),
        derived("created", Ty::DateTime, "When the account was created (meta.created)."),
        derived(
            "last_modified",
            Ty::DateTime,
            "When the account last changed (meta.lastModified); incremental reads resume from it.",
        ),
    ],
    consumed: &[],
};

/// `/Groups`: one record per group.
pub const GROUPS: StreamDef = StreamDef {
    name: "groups",
    description: "A group of users (RFC 7643 §4.2).",
    primary_key: &["id"],
    cursor: None,
    access: Access::Everyone,
    fields: &[
        col("id", "id", Ty::String, "The server's stable identifier of the group."),
        col("external_id", "externalId", Ty::String, "The identifier the provisioning client assigned."),
        col("display_name", "displayName", Ty::String, "The group's name."),
        derived("member_count", Ty::Integer, "Direct members listed."),
        derived("created", Ty::DateTime, "When the group was created (meta.created)."),
        derived("last_modified", Ty::DateTime, "When the group last changed (meta.lastModified)."),
    ],
    consumed: &["members"],
};

/// The same `/Groups` listing: one record per (group, member) pair.
pub const GROUP_MEMBERS: StreamDef = StreamDef {
    name: "group_members",
    description: "A direct member (user or nested group) of a group.",
    primary_key: &["group_id", "member_id"],
    cursor: None,
    access: Access::Everyone,
    fields: &[
        derived("group_id", Ty::String, "The group's id."),
        col(
            "member_id",
            "value",
            Ty::String,
            "The member's id (a user id, or a group id for nested groups).",
        ),
        col("member_type", "type", Ty::String, "`User` or `Group`, when the server says."),
        col("display", "display", Ty::String, "The member's display name, when the server includes it."),
    ],
    consumed: &[],
};

/// Every source, in catalog order.
pub const SOURCES: &[&dyn Source<Server>] = &[&Users, &Groups];

/// The fixed catalog.
pub fn catalog() -> Catalog {
    connector_api::read::catalog(SOURCES)
}

/// `name` and `meta` fields and the columns they fill.
const NAME_COLUMNS: [(&str, &str); 2] = [("givenName", "given_name"), ("familyName", "family_name")];
const META_COLUMNS: [(&str, &str); 2] = [("created", "created"), ("lastModified", "last_modified")];

/// Lists `/Users`; an incremental read asks only for users modified after the checkpoint
/// less the look-back.
///
/// SCIM servers are not required to sort, so the listing is unordered: the engine saves
/// the newest `lastModified` once the last page is read, never mid-listing. A user changed
/// during the read on a page already read may be older than that checkpoint; the
/// look-back reads it next time.
pub struct Users;

#[async_trait]
impl Source<Server> for Users {
    fn streams(&self) -> &'static [&'static StreamDef] {
        &[&USERS]
    }

    async fn plan(&self, ctx: &Ctx) -> Result<Plan> {
        let since = ctx.resume.as_ref().map(|at| Cursor::at(at.at - ctx.connector.lookback));
        let filter = since.map(|at| format!("meta.lastModified gt \"{}\"", at.raw()));
        Ok(Plan::chain(Chain::new(ctx.connector.pages("Users", filter), user)))
    }
}

fn user(mut resource: Map<String, Value>, out: &mut Records) -> Result<()> {
    require_id(&resource, "Users")?;
    let email = primary_email(&resource);
    let mut record = record_spreading(
        &USERS,
        std::mem::take(&mut resource),
        &[("name", &NAME_COLUMNS), ("meta", &META_COLUMNS)],
    );
    record["primary_email"] = email;
    out.push(&USERS, record);
    Ok(())
}

/// Lists `/Groups` once for both `groups` and `group_members`.
pub struct Groups;

#[async_trait]
impl Source<Server> for Groups {
    fn streams(&self) -> &'static [&'static StreamDef] {
        &[&GROUPS, &GROUP_MEMBERS]
    }

    async fn plan(&self, ctx: &Ctx) -> Result<Plan> {
        Ok(Plan::chain(Chain::new(ctx.connector.pages("Groups", None), group)))
    }
}

fn group(mut resource: Map<String, Value>, out: &mut Records) -> Result<()> {
    let id = Value::from(require_id(&resource, "Groups")?);
    let members: Vec<Value> = match resource.remove("members") {
        Some(Value::Array(members)) => members,
        _ => Vec::new(),
    };
    for member in &members {
        if let Value::Object(member) = member
            && member.get("value").is_some_and(Value::is_string)
        {
            out.push(&GROUP_MEMBERS, GROUP_MEMBERS.record(member.clone(), &[("group_id", id.clone())]));
        }
    }
    let mut record = record_spreading(&GROUPS, resource, &[("meta", &META_COLUMNS)]);
    record["member_count"] = Value::from(members.len());
    out.push(&GROUPS, record);
    Ok(())
}

/// The resource's `id`, which RFC 7643 requires of every resource.
fn require_id<'a>(resource: &'a Map<String, Value>, endpoint: &str) -> Result<&'a str> {
    resource.get("id").and_then(Value::as_str).ok_or_else(|| {
        Error::new(ErrorKind::Source, format!("a resource in /{endpoint} has no `id`"))
            .with_hint("RFC 7643 requires every resource to carry an id; report this to the provider")
    })
}

/// The address marked primary, else the first one listed.
fn primary_email(user: &Map<String, Value>) -> Value {
    let emails = user.get("emails").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    emails
        .iter()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| emails.first())
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .map_or(Value::Null, Value::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn records(
        map: fn(Map<String, Value>, &mut Records) -> Result<()>,
        resource: Value,
    ) -> Result<Vec<Value>> {
        let Value::Object(resource) = resource else { panic!("not an object") };
        let mut out = Records::default();
        map(resource, &mut out)?;
        Ok(out.into_vec().into_iter().map(|(_, record)| record).collect())
    }

    #[test]
    fn user_resource_flattens() {
        let user = json!({
            "id": "u1", "userName": "ada@example.com", "name": {"givenName": "Ada"}, "active": false,
            "emails": [{"value": "home@example.com"}, {"value": "ada@example.com", "primary": true}],
            "meta": {"lastModified": "2024-01-02T08:05:00Z", "resourceType": "User"},
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        });
        let records = records(super::user, user).unwrap();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r["primary_email"], "ada@example.com");
        assert_eq!(r["given_name"], "Ada");
        assert_eq!(r["family_name"], Value::Null);
        assert_eq!(r["active"], false);
        assert_eq!(r[USERS_CURSOR], "2024-01-02T08:05:00Z");
        assert_eq!(
            r["_extra"],
            json!({"meta": {"resourceType": "User"}, "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}),
            "what has no column is kept"
        );
    }

    #[test]
    fn a_group_is_one_record_and_one_per_member() {
        let group = json!({"id": "g1", "displayName": "Team", "members": [
            {"value": "u1", "type": "User"}, {"value": "g2", "type": "Group", "display": "Sub"}, {"display": "no id"}
        ]});
        let records = records(super::group, group).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[1],
            json!({"group_id": "g1", "member_id": "g2", "member_type": "Group", "display": "Sub", "_extra": {}})
        );
        assert_eq!(records[2]["member_count"], 3);
        assert_eq!(records[2]["display_name"], "Team");
    }

    #[test]
    fn resource_without_id_is_a_source_error() {
        let err = records(super::user, json!({"userName": "x"})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Source);
        assert!(err.message().contains("/Users"), "{err}");
    }
}
