//! `roles`: default and custom roles (`/v1/roles`).

use super::{Access, StreamDef, Ty, col};
use crate::read::{Listing, MAX_LIMIT};

/// The `roles` stream.
pub const ROLES: StreamDef = StreamDef {
    name: "roles",
    description: "Roles defined on the tenant, default and custom, with their permissions.",
    primary_key: &["id"],
    cursor: None,
    access: Access::Everyone,
    fields: &[
        col("id", "id", Ty::String, "Role id."),
        col("name", "name", Ty::String, "Role name."),
        col("type", "type", Ty::String, "default or custom (other values kept as text)."),
        col("level", "level", Ty::String, "admin or user (other values kept as text)."),
        col("description", "description", Ty::String, "Role description."),
        col("permissions", "permissions", Ty::Array, "Permissions the role grants."),
        col("assigned_scopes", "assignedScopes", Ty::Array, "Scopes assigned to the role."),
        col(
            "full_user",
            "fullUser",
            Ty::Boolean,
            "Whether holding the role makes a user a full (professional) user.",
        ),
        col("user_entitlement_type", "userEntitlementType", Ty::String, "Entitlement the role implies."),
        col("can_edit", "canEdit", Ty::Boolean, "Whether the role can be edited."),
        col("can_delete", "canDelete", Ty::Boolean, "Whether the role can be deleted."),
        col("tenant_id", "tenantId", Ty::String, "Tenant id."),
        col("created_at", "createdAt", Ty::DateTime, "When the role was created."),
        col("created_by", "createdBy", Ty::String, "Who created the role."),
        col("last_updated_at", "lastUpdatedAt", Ty::DateTime, "When the role last changed."),
        col("updated_by", "updatedBy", Ty::String, "Who last changed the role."),
    ],
    consumed: &["links"],
};

/// Lists every role.
pub const SOURCE: Listing = Listing {
    stream: &[&ROLES],
    path: "/api/v1/roles",
    max_limit: Some(MAX_LIMIT),
    query: &[],
    record: None,
};
