//! The streams the SCIM connector reads: what each is, its schema, primary key and
//! cursor, and how one SCIM resource becomes its records.

use connector_api::{Error, ErrorKind, Result, StreamDescriptor, SyncMode};
use serde_json::{Map, Value, json};

/// The property incremental reads of `users` resume from.
pub const USERS_CURSOR: &str = "last_modified";

/// One stream of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimStream {
    /// `/Users`: one record per user account.
    Users,
    /// `/Groups`: one record per group.
    Groups,
    /// `/Groups` again: one record per (group, member) pair.
    GroupMembers,
}

impl ScimStream {
    /// Every stream, in catalog order.
    pub const ALL: [ScimStream; 3] = [ScimStream::Users, ScimStream::Groups, ScimStream::GroupMembers];

    /// The stream called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The stream's name, which destinations use as the table name.
    pub fn name(self) -> &'static str {
        match self {
            ScimStream::Users => "users",
            ScimStream::Groups => "groups",
            ScimStream::GroupMembers => "group_members",
        }
    }

    /// The SCIM resource endpoint the stream lists.
    pub fn resource(self) -> &'static str {
        match self {
            ScimStream::Users => "Users",
            ScimStream::Groups | ScimStream::GroupMembers => "Groups",
        }
    }

    /// The stream's catalog entry.
    pub fn descriptor(self) -> StreamDescriptor {
        let nullable =
            |ty: &str, description: &str| json!({"type": [ty, "null"], "description": description});
        let timestamp = |description: &str| json!({"type": ["string", "null"], "format": "date-time", "description": description});
        let required_string = |description: &str| json!({"type": "string", "description": description});
        let (description, properties, primary_key, cursor, modes) = match self {
            ScimStream::Users => (
                "A user account of the service provider (RFC 7643 §4.1).",
                json!({
                    "id": required_string("The server's stable identifier of the user."),
                    "external_id": nullable("string", "The identifier the provisioning client assigned."),
                    "user_name": nullable("string", "The unique login name."),
                    "display_name": nullable("string", "The name shown to people."),
                    "given_name": nullable("string", "Given name."),
                    "family_name": nullable("string", "Family name."),
                    "title": nullable("string", "Job title."),
                    "active": nullable("boolean", "Whether the account may sign in; inactive accounts hold no seat."),
                    "primary_email": nullable("string", "The primary e-mail address, or the first one listed."),
                    "created": timestamp("When the account was created."),
                    "last_modified": timestamp("When the account last changed; incremental reads resume from it."),
                }),
                vec!["id"],
                Some(USERS_CURSOR),
                vec![SyncMode::Incremental, SyncMode::FullRefresh],
            ),
            ScimStream::Groups => (
                "A group of users (RFC 7643 §4.2).",
                json!({
                    "id": required_string("The server's stable identifier of the group."),
                    "external_id": nullable("string", "The identifier the provisioning client assigned."),
                    "display_name": nullable("string", "The group's name."),
                    "member_count": {"type": "integer", "minimum": 0, "description": "Direct members listed."},
                    "created": timestamp("When the group was created."),
                    "last_modified": timestamp("When the group last changed."),
                }),
                vec!["id"],
                None,
                vec![SyncMode::FullRefresh],
            ),
            ScimStream::GroupMembers => (
                "A direct member (user or nested group) of a group.",
                json!({
                    "group_id": required_string("The group's id."),
                    "member_id": required_string("The member's id (a user id, or a group id for nested groups)."),
                    "member_type": nullable("string", "`User` or `Group`, when the server says."),
                    "display": nullable("string", "The member's display name, when the server includes it."),
                }),
                vec!["group_id", "member_id"],
                None,
                vec![SyncMode::FullRefresh],
            ),
        };
        StreamDescriptor {
            name: self.name().to_string(),
            description: description.to_string(),
            json_schema: json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": properties,
                "required": &primary_key,
                "additionalProperties": false,
            }),
            primary_key: primary_key.into_iter().map(String::from).collect(),
            cursor_field: cursor.map(String::from),
            supported_sync_modes: modes,
        }
    }

    /// The records one SCIM resource of this stream yields.
    pub fn records(self, resource: &Value) -> Result<Vec<Value>> {
        let id = resource.get("id").and_then(Value::as_str).ok_or_else(|| {
            Error::new(ErrorKind::Source, format!("a resource in /{} has no `id`", self.resource()))
                .with_context("stream", self.name())
                .with_hint("RFC 7643 requires every resource to carry an id; report this to the provider")
        })?;
        let text = |pointer: &str| resource.pointer(pointer).and_then(Value::as_str).map(Value::from);
        let text = |pointer: &str| text(pointer).unwrap_or(Value::Null);
        Ok(match self {
            ScimStream::Users => vec![object([
                ("id", Value::from(id)),
                ("external_id", text("/externalId")),
                ("user_name", text("/userName")),
                ("display_name", text("/displayName")),
                ("given_name", text("/name/givenName")),
                ("family_name", text("/name/familyName")),
                ("title", text("/title")),
                ("active", resource.get("active").and_then(Value::as_bool).map_or(Value::Null, Value::from)),
                ("primary_email", primary_email(resource)),
                ("created", text("/meta/created")),
                ("last_modified", text("/meta/lastModified")),
            ])],
            ScimStream::Groups => vec![object([
                ("id", Value::from(id)),
                ("external_id", text("/externalId")),
                ("display_name", text("/displayName")),
                ("member_count", Value::from(members(resource).count())),
                ("created", text("/meta/created")),
                ("last_modified", text("/meta/lastModified")),
            ])],
            ScimStream::GroupMembers => members(resource)
                .filter_map(|m| {
                    let member_id = m.get("value").and_then(Value::as_str)?;
                    let field =
                        |name: &str| m.get(name).and_then(Value::as_str).map_or(Value::Null, Value::from);
                    Some(object([
                        ("group_id", Value::from(id)),
                        ("member_id", Value::from(member_id)),
                        ("member_type", field("type")),
                        ("display", field("display")),
                    ]))
                })
                .collect(),
        })
    }
}

fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>())
}

fn members(group: &Value) -> impl Iterator<Item = &Value> {
    group.get("members").and_then(Value::as_array).into_iter().flatten()
}

/// The address marked primary, else the first one listed.
fn primary_email(user: &Value) -> Value {
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

    #[test]
    fn user_resource_flattens() {
        let user = json!({
            "id": "u1", "userName": "ada@example.com", "name": {"givenName": "Ada"}, "active": false,
            "emails": [{"value": "home@example.com"}, {"value": "ada@example.com", "primary": true}],
            "meta": {"lastModified": "2024-01-02T08:05:00Z"},
        });
        let records = ScimStream::Users.records(&user).unwrap();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r["primary_email"], "ada@example.com");
        assert_eq!(r["given_name"], "Ada");
        assert_eq!(r["family_name"], Value::Null);
        assert_eq!(r["active"], false);
        assert_eq!(r[USERS_CURSOR], "2024-01-02T08:05:00Z");
    }

    #[test]
    fn group_members_one_record_per_member() {
        let group = json!({"id": "g1", "displayName": "Team", "members": [
            {"value": "u1", "type": "User"}, {"value": "g2", "type": "Group", "display": "Sub"}, {"display": "no id"}
        ]});
        let members = ScimStream::GroupMembers.records(&group).unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(
            members[1],
            json!({"group_id": "g1", "member_id": "g2", "member_type": "Group", "display": "Sub"})
        );
        assert_eq!(ScimStream::Groups.records(&group).unwrap()[0]["member_count"], 3);
    }

    #[test]
    fn resource_without_id_is_a_source_error() {
        let err = ScimStream::Users.records(&json!({"userName": "x"})).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Source);
        assert_eq!(err.context_value("stream"), Some("users"));
    }
}
