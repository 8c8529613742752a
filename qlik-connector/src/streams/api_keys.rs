//! `api_keys`: the tenant's API keys (`/v1/api-keys`); a key's expiry is a SAM and a
//! security fact. Only metadata: Qlik never returns a key's value after creation.

use super::{Access, StreamDef, Ty, col};
use crate::read::{Listing, MAX_LIMIT};

/// The `api_keys` stream.
pub const API_KEYS: StreamDef = StreamDef {
    name: "api_keys",
    description: "API keys of the tenant (metadata only: owner, status, expiry).",
    primary_key: &["id"],
    cursor: None,
    access: Access::Partial("only the user's own keys"),
    fields: &[
        col("id", "id", Ty::String, "Key id (not the key itself)."),
        col("description", "description", Ty::String, "Description given when the key was generated."),
        col("sub", "sub", Ty::String, "Subject the key acts as (a user id, or SCIM\\\\<idp> for SCIM keys)."),
        col("sub_type", "subType", Ty::String, "user or externalClient (other values kept as text)."),
        col("status", "status", Ty::String, "active, expired or revoked (other values kept as text)."),
        col("expiry", "expiry", Ty::DateTime, "When the key stops working."),
        col("created", "created", Ty::DateTime, "When the key was generated."),
        col("last_updated", "lastUpdated", Ty::DateTime, "When the key last changed."),
        col("created_by_user", "createdByUser", Ty::String, "Id of the user who generated the key."),
        col("tenant_id", "tenantId", Ty::String, "Tenant id."),
    ],
    consumed: &["links"],
};

/// Lists every API key the key may see.
pub const SOURCE: Listing = Listing {
    stream: &[&API_KEYS],
    path: "/api/v1/api-keys",
    max_limit: Some(MAX_LIMIT),
    query: &[],
    record: None,
};
