//! `consumption_executions`: what a capacity subscription meters
//! (`/v1/consumption/executions`, https://qlik.dev/apis/rest/consumption): per period and
//! meter (data volume, automation runs, reports, app reloads), scoped to the tenant, a user
//! or one resource, the limit, the use and whether it went into overage or was blocked.
//!
//! A user-based tenant has nothing metered this way: Qlik's detailed consumption exists for
//! capacity-based subscriptions only
//! (https://help.qlik.com/en-US/cloud-services/Subsystems/Hub/Content/Sense_Hub/Admin/usage-metrics-app.htm),
//! and the definition's one answer besides a listing and a server error is 404 "Resource
//! does not exist". The stream reads a 404 to its first page as "nothing metered": it lands
//! no rows, logs why, and the run goes on; an empty listing lands no rows too. A 404 on a
//! later page still fails the stream.
//!
//! Full refresh: the records of the current period change in place (use grows, flags flip)
//! and the listing sorts only on the period, so no cursor would see those changes.

use async_trait::async_trait;
use connector_api::read::{Chain, Plan, Source};
use connector_api::{ErrorKind, LogLevel, Result};
use futures::StreamExt;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Access, StreamDef, Ty, col, derived};
use crate::read::{Ctx, Tenant};

/// Largest `limit` the endpoint accepts.
pub const MAX_LIMIT: u32 = 200;

/// The endpoint.
pub const PATH: &str = "/api/v1/consumption/executions";

/// The source fields that say which meter, scope and period a record is, in the order
/// [`execution_key`] hashes them.
///
/// Execution records have no `id`, and Qlik's definition (`ExecutionResponse`) marks no
/// field required and names no combination unique: `consumptionReportId` is the id of the
/// report a record belongs to, shared by its other records, and `resourceType`,
/// `resourceAction`, `resourceId` and `userId` may each be left out. So no set of columns
/// is guaranteed to be present, let alone unique, and a key of nullable columns cannot be
/// a primary key in PostgreSQL. The key is derived instead, from every field that names
/// what is metered (report, meter, resource, user, scope, unit, period) and from none of
/// the figures (limits, use, flags, times), which change as the period runs: two records
/// differ in key exactly when they meter something different or another period.
pub const IDENTITY: [&str; 13] = [
    "tenantId",
    "consumptionReportId",
    "taskName",
    "resourceType",
    "resourceAction",
    "resourceId",
    "userId",
    "scope",
    "scopeMapping",
    "unit",
    "periodType",
    "periodStart",
    "periodEnd",
];

/// The `consumption_executions` stream.
pub const CONSUMPTION_EXECUTIONS: StreamDef = StreamDef {
    name: "consumption_executions",
    description: "Metering records of a capacity subscription: per period and meter (data volume, automation runs, reports, reloads), the limit, the use and any overage. None on a user-based tenant.",
    primary_key: &["execution_key"],
    cursor: None,
    access: Access::AdminOnly,
    fields: &[
        derived(
            "execution_key",
            Ty::String,
            "Key of the record (Qlik sends no id): SHA-256 of its report, meter, resource, user, scope, unit and period.",
        ),
        col("tenant_id", "tenantId", Ty::String, "Tenant the use is metered on."),
        col(
            "consumption_report_id",
            "consumptionReportId",
            Ty::String,
            "Consumption report the record belongs to.",
        ),
        col(
            "task_name",
            "taskName",
            Ty::String,
            "Meter: dataVolumeAggregated, automation_run_ended, report_triggered … (other values kept as text).",
        ),
        col("task_description", "taskDescription", Ty::String, "Qlik's description of the meter."),
        col(
            "resource_type",
            "resourceType",
            Ty::String,
            "What is metered: app, automations, space or data.volume.consumption (other values kept as text).",
        ),
        col(
            "resource_action",
            "resourceAction",
            Ty::String,
            "The metered action: reload, executed, report.generated, aggregation … (other values kept as text).",
        ),
        col(
            "resource_id",
            "resourceId",
            Ty::String,
            "The one resource metered (an app's id), when scoped to one.",
        ),
        col("user_id", "userId", Ty::String, "The user whose use is metered, when scoped to one."),
        col(
            "scope",
            "scope",
            Ty::Array,
            "What the use is counted over: tenant, user, resourceId, resourceType, resourceAction.",
        ),
        col("scope_mapping", "scopeMapping", Ty::String, "The scope's values as Qlik writes them."),
        col("unit", "unit", Ty::String, "Unit of limit and use (runs, reports, GB …)."),
        col(
            "period_type",
            "periodType",
            Ty::String,
            "Length of the period: month, day, year, fixed, minute.",
        ),
        col("period_start", "periodStart", Ty::String, "First day of the period (YYYY-MM-DD)."),
        col("period_end", "periodEnd", Ty::String, "Last day of the period (YYYY-MM-DD)."),
        col(
            "capacity_limit",
            "capacityLimit",
            Ty::Number,
            "What the subscription includes for the period, in unit.",
        ),
        col(
            "guardrail_limit",
            "guardrailLimit",
            Ty::Number,
            "Guardrail limit: a cap Qlik applies beside capacity_limit.",
        ),
        col("local_usage", "localUsage", Ty::Number, "Use on this tenant this period."),
        col(
            "global_usage",
            "globalUsage",
            Ty::Number,
            "Use this period across all tenants of the licence (Qlik's global usage).",
        ),
        col(
            "overage",
            "overage",
            Ty::Boolean,
            "Whether use this period exceeds what was purchased (Qlik's overage).",
        ),
        col("close_to_overage", "closeToOverage", Ty::Boolean, "Whether use is close to the limit."),
        col("blocked", "blocked", Ty::Boolean, "Whether Qlik blocks the metered action."),
        col("overage_event_time", "overageEventTime", Ty::DateTime, "When Qlik last reported the overage."),
        col("blocked_event_time", "blockedEventTime", Ty::DateTime, "When Qlik last reported the block."),
        col(
            "enforcement",
            "enforcement",
            Ty::Array,
            "What is blocked when the limit is reached: resource type and action to block.",
        ),
        col("segments", "segments", Ty::Array, "Use split by segment (QDI, APP …), as Qlik sends it."),
        col(
            "customer_facing",
            "customerFacing",
            Ty::Boolean,
            "Whether Qlik shows the record to the customer.",
        ),
        col("update_time", "updateTime", Ty::DateTime, "When Qlik last updated the record."),
    ],
    consumed: &[],
};

/// The key of execution record `item`: the hex SHA-256 of the JSON array of its
/// [`IDENTITY`] fields, in that order, absent ones null. The same record always gets the
/// same key, on every page and in every run.
pub fn execution_key(item: &Map<String, Value>) -> String {
    let identity: Vec<&Value> = IDENTITY.iter().map(|f| item.get(*f).unwrap_or(&Value::Null)).collect();
    let text = serde_json::to_string(&identity).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The record of execution `item`, keyed by [`execution_key`].
pub fn record(item: Map<String, Value>) -> Value {
    let key = Value::String(execution_key(&item));
    CONSUMPTION_EXECUTIONS.record(item, &[("execution_key", key)])
}

/// Reads every execution record the tenant lists, in Qlik's default order; a tenant that
/// answers 404 has none.
pub struct ConsumptionExecutions;

#[async_trait]
impl Source<Tenant> for ConsumptionExecutions {
    fn streams(&self) -> &'static [&'static StreamDef] {
        &[&CONSUMPTION_EXECUTIONS]
    }

    async fn plan(&self, ctx: &Ctx) -> Result<Plan> {
        let tenant = &ctx.connector;
        let mut pages = tenant.pages(tenant.url(PATH, &[("limit", tenant.limit(MAX_LIMIT))]));
        let first = match pages.next().await {
            Some(Err(err)) if err.kind() == ErrorKind::NotFound => {
                let note = format!(
                    "consumption_executions: Qlik answers 404 to {PATH}, as it does where nothing is metered by capacity (a user-based subscription); no rows: {}",
                    err.message()
                );
                ctx.log(LogLevel::Info, note).await?;
                return Ok(Plan::nothing());
            }
            first => first,
        };
        let pages = futures::stream::iter(first).chain(pages).boxed();
        Ok(Plan::chain(Chain::new(pages, |item, out| {
            out.push(&CONSUMPTION_EXECUTIONS, record(item));
            Ok(())
        })))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_key_follows_what_is_metered_not_the_figures() {
        let a = json!({"consumptionReportId": "r1", "resourceType": "automations", "scope": ["tenant"],
            "periodStart": "2026-10-01", "localUsage": 3, "overage": false});
        let mut later = a.clone();
        later["localUsage"] = json!(9);
        later["overage"] = json!(true);
        let key = |v: &Value| execution_key(&object(v.clone()));
        assert_eq!(key(&a), key(&later), "use and flags change as the period runs");
        assert_eq!(key(&a).len(), 64);
        let mut other_period = a.clone();
        other_period["periodStart"] = json!("2026-09-01");
        assert_ne!(key(&a), key(&other_period));
        let mut one_user = a.clone();
        one_user["userId"] = json!("u1");
        assert_ne!(key(&a), key(&one_user), "an absent field differs from a present one");
        let row = record(object(later));
        assert_eq!(row["execution_key"], key(&a));
        assert_eq!((&row["local_usage"], &row["overage"]), (&json!(9), &json!(true)));
    }
}
