//! `license_assignments`: who holds which licence (`/v1/licenses/assignments`).
//!
//! Qlik's assignment records have no id and no user id: they name the holder by
//! `subject`, the user's subject at the identity provider. Join them to `users` on
//! `users.subject = license_assignments.subject`. With `include_orphans`, a second
//! pass (`orphans=true`) lists assignments whose subject matches no user, flagged
//! `orphan = true`: licences held by nobody the tenant still knows.

use connector_api::Result;
use serde_json::Value;

use super::{StreamDef, Ty, col, derived};
use crate::read::{Ctx, list};

/// Largest `limit` the endpoint accepts.
pub const MAX_LIMIT: u32 = 100;

/// The `license_assignments` stream.
pub const LICENSE_ASSIGNMENTS: StreamDef = StreamDef {
    name: "license_assignments",
    description: "Licence assignments: which subject holds which licence type. Join to users on subject.",
    primary_key: &["subject", "type"],
    cursor: None,
    fields: &[
        col(
            "subject",
            "subject",
            Ty::String,
            "Subject of the holder; equals users.subject (assignments carry no user id).",
        ),
        col(
            "type",
            "type",
            Ty::String,
            "Allotment type: professional, analyzer … (other values kept as text).",
        ),
        col("excess", "excess", Ty::Boolean, "Whether the assignment is beyond the licence's units."),
        col("created", "created", Ty::DateTime, "When the licence was assigned."),
        derived("orphan", Ty::Boolean, "True when listed by the orphans pass: the subject matches no user."),
    ],
    consumed: &[],
};

/// Lists assignments, then orphans when configured.
pub async fn run(ctx: &Ctx) -> Result<()> {
    let limit = ctx.settings.limit(MAX_LIMIT).to_string();
    let path = "/api/v1/licenses/assignments";
    list(
        ctx,
        &LICENSE_ASSIGNMENTS,
        ctx.url(path, &[("limit", limit.clone())]),
        &[("orphan", Value::Bool(false))],
    )
    .await?;
    if ctx.settings.include_orphans {
        let url = ctx.url(path, &[("limit", limit), ("orphans", "true".into())]);
        list(ctx, &LICENSE_ASSIGNMENTS, url, &[("orphan", Value::Bool(true))]).await?;
    }
    Ok(())
}
