//! `api_key_policy`: the tenant's API key policy (`/v1/api-keys/configs/{tenantId}`):
//! how long a key may live and how many one user may hold. Keys outliving their owners'
//! need are a security and a licence-hygiene fact.

use super::{Access, StreamDef, Ty, col, derived};
use crate::read::TenantDocument;

/// The `api_key_policy` stream.
pub const API_KEY_POLICY: StreamDef = StreamDef {
    name: "api_key_policy",
    description: "The tenant's API key policy: maximum key lifetime and keys per user (one record).",
    primary_key: &["tenant_id"],
    cursor: None,
    access: Access::AdminOnly,
    fields: &[
        derived("tenant_id", Ty::String, "Tenant id (from tenants/me)."),
        col(
            "api_keys_enabled",
            "api_keys_enabled",
            Ty::Boolean,
            "Whether API keys are switched on (the switch Qlik removed on 26 January 2026; keys now need the Manage API keys permission).",
        ),
        col("max_keys_per_user", "max_keys_per_user", Ty::Number, "Most active API keys one user may hold."),
        col(
            "max_api_key_expiry",
            "max_api_key_expiry",
            Ty::String,
            "Longest lifetime of a new key, as an ISO 8601 duration (P365D).",
        ),
        col(
            "scim_external_client_expiry",
            "scim_externalClient_expiry",
            Ty::String,
            "Lifetime of a SCIM externalClient key, as an ISO 8601 duration.",
        ),
    ],
    consumed: &[],
};

/// Reads the tenant's id, then its key policy.
pub const SOURCE: TenantDocument = TenantDocument {
    stream: &[&API_KEY_POLICY],
    path: |tenant_id| format!("/api/v1/api-keys/configs/{tenant_id}"),
};
