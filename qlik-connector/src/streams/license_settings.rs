//! `license_settings`: whether the tenant hands out professional and analyzer seats by
//! itself (`/v1/licenses/settings`). Automatic assignment gives a seat to every user who
//! opens an app, a common cause of licence creep, so a hub reclaiming seats needs to know
//! it is on.

use super::{Access, StreamDef, Ty, col, derived};
use crate::read::TenantDocument;

/// The `license_settings` stream.
pub const LICENSE_SETTINGS: StreamDef = StreamDef {
    name: "license_settings",
    description: "The tenant's automatic licence assignment settings (one record).",
    primary_key: &["tenant_id"],
    cursor: None,
    access: Access::AdminOnly,
    fields: &[
        derived("tenant_id", Ty::String, "Tenant id (from tenants/me)."),
        col(
            "auto_assign_professional",
            "autoAssignProfessional",
            Ty::Boolean,
            "Whether a user without a licence gets a professional seat when one is free.",
        ),
        col(
            "auto_assign_analyzer",
            "autoAssignAnalyzer",
            Ty::Boolean,
            "Whether a user without a licence gets an analyzer seat when one is free.",
        ),
    ],
    consumed: &[],
};

/// Reads the tenant's id, then its licence settings.
pub const SOURCE: TenantDocument =
    TenantDocument { stream: &[&LICENSE_SETTINGS], path: |_| "/api/v1/licenses/settings".to_string() };
