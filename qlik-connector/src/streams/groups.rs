//! `groups`: the tenant's groups (`/v1/groups`).

use super::{Access, StreamDef, Ty, col};
use crate::read::{Listing, MAX_LIMIT};

/// The `groups` stream.
pub const GROUPS: StreamDef = StreamDef {
    name: "groups",
    description: "Groups of the tenant (from the identity provider or created in Qlik), with the roles they grant.",
    primary_key: &["id"],
    cursor: None,
    access: Access::Everyone,
    fields: &[
        col("id", "id", Ty::String, "Group id."),
        col("name", "name", Ty::String, "Group name."),
        col("status", "status", Ty::String, "Group status: active or disabled (other values kept as text)."),
        col("provider_type", "providerType", Ty::String, "Where the group comes from: idp or custom."),
        col("tenant_id", "tenantId", Ty::String, "Tenant id."),
        col(
            "assigned_roles",
            "assignedRoles",
            Ty::Array,
            "Roles the group grants its members: objects with id, name, type, level.",
        ),
        col("created_at", "createdAt", Ty::DateTime, "When the group was created."),
        col("last_updated_at", "lastUpdatedAt", Ty::DateTime, "When the group last changed."),
    ],
    consumed: &["links"],
};

/// Lists every group.
pub const SOURCE: Listing = Listing {
    stream: &[&GROUPS],
    path: "/api/v1/groups",
    max_limit: Some(MAX_LIMIT),
    query: &[],
    record: None,
};
