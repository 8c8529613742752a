//! `license_overview` and `license_allotments`: one call to `/v1/licenses/overview`.
//!
//! The overview carries `licenseKey`, the tenant's signed licence token. It is a
//! secret and is never emitted, logged or kept in `_extra`.

use async_trait::async_trait;
use connector_api::Result;
use connector_api::read::{Chain, Plan, Records, Source, once};
use serde_json::{Map, Value};

use super::{Access, StreamDef, Ty, col, derived};
use crate::read::{Ctx, Tenant, get_object};

/// The `license_overview` stream.
pub const LICENSE_OVERVIEW: StreamDef = StreamDef {
    name: "license_overview",
    description: "The tenant's licence (one record). The licence key itself is never emitted.",
    primary_key: &["license_number"],
    cursor: None,
    access: Access::AdminOnly,
    fields: &[
        col("license_number", "licenseNumber", Ty::String, "Licence number."),
        col("secondary_number", "secondaryNumber", Ty::String, "Secondary licence number."),
        col(
            "parent_license_number",
            "parentLicenseNumber",
            Ty::String,
            "Parent licence number, for child licences.",
        ),
        col("product", "product", Ty::String, "Licensed product."),
        col("license_type", "licenseType", Ty::String, "Licence type."),
        col("status", "status", Ty::String, "Ok, Blacklisted or Expired (other values kept as text)."),
        col("origin", "origin", Ty::String, "Internal or External (other values kept as text)."),
        col("trial", "trial", Ty::Boolean, "Whether the licence is a trial."),
        col("valid", "valid", Ty::String, "Validity period of the licence."),
        col("updated", "updated", Ty::String, "When the licence was last updated, as Qlik reports it."),
        col("change_time", "changeTime", Ty::String, "When the licence last changed, as Qlik reports it."),
        col("latest_valid_time", "latestValidTime", Ty::String, "Latest time the licence was seen valid."),
        col("parameters", "parameters", Ty::Array, "Licence parameters (name, valid, values, access)."),
    ],
    consumed: &["allotments", "licenseKey"],
};

/// The `license_allotments` stream.
pub const LICENSE_ALLOTMENTS: StreamDef = StreamDef {
    name: "license_allotments",
    description: "Allotments of the licence: units bought and used per licence type (professional, analyzer, analyzer_time).",
    primary_key: &["license_number", "name"],
    cursor: None,
    access: Access::AdminOnly,
    fields: &[
        derived("license_number", Ty::String, "Licence number."),
        col(
            "name",
            "name",
            Ty::String,
            "Allotment: professional, analyzer, analyzer_time (other values kept as text).",
        ),
        col("usage_class", "usageClass", Ty::String, "How units are consumed (assigned, time …)."),
        col("units", "units", Ty::Integer, "Units in the licence."),
        col("units_used", "unitsUsed", Ty::Integer, "Units in use."),
        col("overage", "overage", Ty::Integer, "Units allowed beyond the licence; -1 means unbounded."),
    ],
    consumed: &[],
};

/// Reads the overview and its allotments, registering the licence key as a secret first.
pub struct LicenseOverview;

#[async_trait]
impl Source<Tenant> for LicenseOverview {
    fn streams(&self) -> &'static [&'static StreamDef] {
        &[&LICENSE_OVERVIEW, &LICENSE_ALLOTMENTS]
    }

    async fn plan(&self, ctx: &Ctx) -> Result<Plan> {
        let overview = get_object(ctx, ctx.connector.url("/api/v1/licenses/overview", &[])).await?;
        if let Some(Value::String(key)) = overview.get("licenseKey") {
            connector_api::secret::register(key);
        }
        Ok(Plan::chain(Chain::new(once(overview), split)))
    }
}

/// The overview's record and one record per allotment.
fn split(mut overview: Map<String, Value>, out: &mut Records) -> Result<()> {
    let number = overview.get("licenseNumber").cloned().unwrap_or(Value::Null);
    let allotments = match overview.remove("allotments") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    out.push(&LICENSE_OVERVIEW, LICENSE_OVERVIEW.record(overview, &[]));
    for allotment in allotments {
        if let Value::Object(a) = allotment {
            out.push(
                &LICENSE_ALLOTMENTS,
                LICENSE_ALLOTMENTS.record(a, &[("license_number", number.clone())]),
            );
        }
    }
    Ok(())
}
