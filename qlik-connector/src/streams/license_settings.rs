//! `license_settings`: whether the tenant hands out professional and analyzer seats by
//! itself (`/v1/licenses/settings`). Automatic assignment gives a seat to every user who
//! opens an app, a common cause of licence creep, so a hub reclaiming seats needs to know
//! it is on.

use connector_api::Result;
use serde_json::Value;

use super::{StreamDef, Ty, col, derived};
use crate::read::{Ctx, get_object, single};

/// The `license_settings` stream.
pub const LICENSE_SETTINGS: StreamDef = StreamDef {
    name: "license_settings",
    description: "The tenant's automatic licence assignment settings (one record).",
    primary_key: &["tenant_id"],
    cursor: None,
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
pub async fn run(ctx: &Ctx) -> Result<()> {
    let tenant_id = super::tenant::tenant_id(ctx, LICENSE_SETTINGS.name).await?;
    let settings = get_object(ctx, LICENSE_SETTINGS.name, ctx.url("/api/v1/licenses/settings", &[])).await?;
    let record = LICENSE_SETTINGS.record(settings, &[("tenant_id", Value::String(tenant_id))]);
    single(ctx, &LICENSE_SETTINGS, record).await
}
