//! `users`, `user_roles`, `user_groups`: one listing of `/v1/users` feeds all three.
//!
//! `GET /v1/users` without parameters returns only *active* users: its deprecated
//! `status` parameter defaults to `active`. Disabled, invited, deleted and provisioned
//! users can still hold licences, so the listing asks for all five statuses with a
//! SCIM `filter`. It also asks for `sort=+id`: Qlik's default order is by name, and a
//! user renamed while the listing pages moves across its cursor, read twice or not at
//! all; an id never changes (https://qlik.dev/apis/rest/users).

use async_trait::async_trait;
use connector_api::Result;
use connector_api::read::{Chain, Plan, Records, Source};
use serde_json::{Map, Value};

use super::{StreamDef, Ty, col, derived};
use crate::read::{Ctx, Tenant};

/// Largest `limit` the endpoint accepts.
pub const MAX_LIMIT: u32 = 100;

/// Every user status Qlik knows.
pub const STATUSES: [&str; 5] = ["active", "invited", "disabled", "deleted", "provisioned"];

/// The order users are listed in: by id, which no rename changes.
pub const STABLE_ORDER: &str = "+id";

/// The SCIM filter selecting users of every status.
pub fn all_statuses_filter() -> String {
    STATUSES.iter().map(|s| format!("status eq \"{s}\"")).collect::<Vec<_>>().join(" or ")
}

/// The `users` stream.
pub const USERS: StreamDef = StreamDef {
    name: "users",
    description: "Every user of the tenant, whatever their status (active, invited, disabled, deleted, provisioned).",
    primary_key: &["id"],
    cursor: None,
    fields: &[
        col("id", "id", Ty::String, "User id."),
        col(
            "subject",
            "subject",
            Ty::String,
            "The user's subject at the identity provider; licence assignments refer to users by it.",
        ),
        col("name", "name", Ty::String, "Display name."),
        col("email", "email", Ty::String, "Email address."),
        col(
            "status",
            "status",
            Ty::String,
            "active, invited, disabled, deleted or provisioned (other values kept as text).",
        ),
        col("tenant_id", "tenantId", Ty::String, "Tenant id."),
        col("roles", "roles", Ty::Array, "Deprecated list of default role names; see user_roles."),
        col("assigned_scopes", "assignedScopes", Ty::Array, "Scopes assigned to the user."),
        col("locale", "locale", Ty::String, "Locale from the identity provider."),
        col("preferred_locale", "preferredLocale", Ty::String, "Locale the user chose."),
        col("zoneinfo", "zoneinfo", Ty::String, "Time zone from the identity provider."),
        col("preferred_zoneinfo", "preferredZoneinfo", Ty::String, "Time zone the user chose."),
        col("picture", "picture", Ty::String, "URL of the user's picture."),
        col("invite_expiry", "inviteExpiry", Ty::Number, "When a pending invitation expires (Unix time)."),
        col("created", "created", Ty::DateTime, "Deprecated creation time; see created_at."),
        col("created_at", "createdAt", Ty::DateTime, "When the user was created."),
        col("last_updated", "lastUpdated", Ty::DateTime, "Deprecated last change time; see last_updated_at."),
        col("last_updated_at", "lastUpdatedAt", Ty::DateTime, "When the user last changed."),
    ],
    consumed: &["links", "assignedRoles", "assignedGroups"],
};

/// The `user_roles` stream.
pub const USER_ROLES: StreamDef = StreamDef {
    name: "user_roles",
    description: "Roles assigned directly to each user (users[].assignedRoles).",
    primary_key: &["user_id", "role_id"],
    cursor: None,
    fields: &[
        derived("user_id", Ty::String, "User id."),
        col("role_id", "id", Ty::String, "Role id."),
        col("name", "name", Ty::String, "Role name."),
        col("type", "type", Ty::String, "default or custom (other values kept as text)."),
        col("level", "level", Ty::String, "admin or user (other values kept as text)."),
    ],
    consumed: &[],
};

/// The `user_groups` stream.
pub const USER_GROUPS: StreamDef = StreamDef {
    name: "user_groups",
    description: "Groups each user belongs to (users[].assignedGroups).",
    primary_key: &["user_id", "group_id"],
    cursor: None,
    fields: &[
        derived("user_id", Ty::String, "User id."),
        col("group_id", "id", Ty::String, "Group id."),
        col("name", "name", Ty::String, "Group name."),
        col("provider_type", "providerType", Ty::String, "idp or custom (other values kept as text)."),
        col("assigned_roles", "assignedRoles", Ty::Array, "Roles the group grants."),
    ],
    consumed: &[],
};

/// Lists users of every status and emits them with their roles and groups.
pub struct Users;

#[async_trait]
impl Source<Tenant> for Users {
    fn streams(&self) -> &'static [&'static StreamDef] {
        &[&USERS, &USER_ROLES, &USER_GROUPS]
    }

    async fn plan(&self, ctx: &Ctx) -> Result<Plan> {
        let tenant = &ctx.source;
        let query = [
            ("limit", tenant.limit(MAX_LIMIT)),
            ("filter", all_statuses_filter()),
            ("sort", STABLE_ORDER.into()),
        ];
        Ok(Plan::chain(Chain::new(tenant.pages(tenant.url("/api/v1/users", &query)), split)))
    }
}

/// A user's record, and one record per role and group assigned to them.
fn split(mut user: Map<String, Value>, out: &mut Records) -> Result<()> {
    let user_id = user.get("id").cloned().unwrap_or(Value::Null);
    for role in take_objects(&mut user, "assignedRoles") {
        out.push(&USER_ROLES, USER_ROLES.record(role, &[("user_id", user_id.clone())]));
    }
    for group in take_objects(&mut user, "assignedGroups") {
        out.push(&USER_GROUPS, USER_GROUPS.record(group, &[("user_id", user_id.clone())]));
    }
    out.push(&USERS, USERS.record(user, &[]));
    Ok(())
}

/// Removes the array `key` from `obj`, keeping its object items.
fn take_objects(obj: &mut Map<String, Value>, key: &str) -> Vec<Map<String, Value>> {
    match obj.remove(key) {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|i| match i {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_names_every_status() {
        assert_eq!(
            all_statuses_filter(),
            r#"status eq "active" or status eq "invited" or status eq "disabled" or status eq "deleted" or status eq "provisioned""#
        );
    }
}
