//! A capacity tenant's metering records as `/api/v1/consumption/executions` lists them
//! (https://qlik.dev/apis/rest/consumption, schema `ExecutionResponse`): per monthly period,
//! the tenant's data volume, automation runs and reports, the automation runs of a few users
//! and the reloads of a few apps, each with its limit, use and overage flags.
//!
//! The three periods are the current month and the two before it, what Qlik's Data Capacity
//! Reporting App details
//! (https://help.qlik.com/en-US/cloud-services/Subsystems/Hub/Content/Sense_Hub/Admin/usage-metrics-app.htm).
//! A user-based tenant has none (see [`Tenant::executions_listed`]). No record carries
//! `segments`: the definition's example (`{"QDI": 10}`) and its schema (each segment's values
//! objects) disagree, and Qlik documents neither further.

use serde_json::{Value, json};

use super::Tenant;
use crate::config::Subscription;
use crate::synth::{Kind, alnum, h, rfc3339_ms};

/// The periods, oldest first: `periodStart`, `periodEnd` (dates, as in Qlik's examples) and
/// the Unix milliseconds of the period's last update. The last is the current period (the
/// data's "now" is 2026-11-01T00:00:00Z, the end of October).
pub(crate) const EXECUTION_PERIODS: [(&str, &str, i64); 3] = [
    ("2026-08-01", "2026-08-31", 1_788_134_400_000),
    ("2026-09-01", "2026-09-30", 1_790_726_400_000),
    ("2026-10-01", "2026-10-31", 1_793_404_800_000),
];

/// Tenant-wide meters: `taskName`, `resourceType`, `resourceAction`, `unit`, limit.
const TENANT_METERS: [(&str, &str, &str, &str, f64); 3] = [
    ("dataVolumeAggregated", "data.volume.consumption", "aggregation", "GB", 50.0),
    ("automation_run_ended", "automations", "executed", "runs", 5_000.0),
    ("report_triggered", "app", "report.generated", "reports", 1_000.0),
];

/// Users whose automation runs are metered one by one, per period.
const METERED_USERS: u64 = 8;
/// Apps whose reloads are metered one by one, per period.
const METERED_APPS: u64 = 12;

/// Fields of an execution record that say which meter, scope and period it is: the
/// connector's `execution_key` is the SHA-256 of their values, in this order, as a JSON
/// array (absent fields as null), and the ground truth computes it the same way.
pub(crate) const EXECUTION_IDENTITY: [&str; 13] = [
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

impl Tenant {
    /// Records per period.
    fn executions_per_period(&self) -> u64 {
        TENANT_METERS.len() as u64 + METERED_USERS.min(self.users) + METERED_APPS.min(self.apps)
    }

    /// Whether the tenant lists execution records at all: a capacity-based one does, a
    /// user-based one answers 404 (see the handler).
    pub(crate) fn executions_listed(&self) -> bool {
        self.subscription == Subscription::CapacityBased
    }

    /// Execution records of a capacity tenant (0 on a user-based one).
    pub(crate) fn executions(&self) -> u64 {
        if self.executions_listed() {
            EXECUTION_PERIODS.len() as u64 * self.executions_per_period()
        } else {
            0
        }
    }

    /// The period index (0 oldest) of record `i`; records are numbered period by period.
    pub(crate) fn execution_period(&self, i: u64) -> usize {
        (i / self.executions_per_period()) as usize
    }

    /// Record `i` as the endpoint lists it (`ExecutionResponse`).
    pub(crate) fn execution_json(&self, i: u64) -> Value {
        let period = self.execution_period(i);
        let slot = i % self.executions_per_period();
        let (start, end, updated_ms) = EXECUTION_PERIODS[period];
        let current = period == EXECUTION_PERIODS.len() - 1;
        let report_id = alnum(self.seed, Kind::Tenant, period as u64, 40, 33);
        let r = |salt: u64| h(self.seed, Kind::Tenant, i, 100 + salt);
        let meters = TENANT_METERS.len() as u64;
        let users = METERED_USERS.min(self.users);
        let mut record = json!({
            "tenantId": self.tenant_id,
            "consumptionReportId": report_id,
            "periodType": "month",
            "periodStart": start,
            "periodEnd": end,
            "updateTime": rfc3339_ms(updated_ms - (r(1) % 3_600_000) as i64),
            "customerFacing": true,
            "closeToOverage": false,
            "blocked": false,
        });
        let (limit, usage) = if slot < meters {
            let (task, rtype, action, unit, limit) = TENANT_METERS[slot as usize];
            // The current period's automation runs go past the limit: an overage.
            let usage = if current && rtype == "automations" {
                limit + (r(2) % 500) as f64
            } else {
                (r(2) % (limit as u64 * 9 / 10)) as f64
            };
            record["taskName"] = json!(task);
            record["resourceType"] = json!(rtype);
            record["resourceAction"] = json!(action);
            record["unit"] = json!(unit);
            record["scope"] = json!(["tenant", "resourceType"]);
            record["scopeMapping"] = json!(format!("tenant:{}|resourceType:{rtype}", self.tenant_id));
            (limit, usage)
        } else if slot < meters + users {
            let user = self.user_id(slot - meters);
            record["taskName"] = json!("automation_run_ended");
            record["taskDescription"] = json!("Automation runs of one user");
            record["resourceType"] = json!("automations");
            record["resourceAction"] = json!("executed");
            record["userId"] = json!(user);
            record["unit"] = json!("runs");
            record["scope"] = json!(["user", "resourceType"]);
            record["scopeMapping"] = json!(format!("user:{user}|resourceType:automations"));
            (500.0, (r(3) % 400) as f64)
        } else {
            let app = self.app(slot - meters - users).id;
            record["taskName"] = json!("reload");
            record["resourceType"] = json!("app");
            record["resourceAction"] = json!("reload");
            record["resourceId"] = json!(app);
            record["unit"] = json!("reloads");
            record["scope"] = json!(["resourceId", "resourceType", "resourceAction"]);
            record["scopeMapping"] =
                json!(format!("resourceId:{app}|resourceType:app|resourceAction:reload"));
            record["guardrailLimit"] = json!(100.0);
            (0.0, (r(4) % 60) as f64)
        };
        let overage = limit > 0.0 && usage > limit;
        record["capacityLimit"] = json!(limit);
        record["localUsage"] = json!(usage);
        record["globalUsage"] = json!(usage);
        record["overage"] = json!(overage);
        record["closeToOverage"] = json!(limit > 0.0 && usage > 0.8 * limit);
        if overage {
            record["overageEventTime"] = json!(rfc3339_ms(updated_ms - 86_400_000));
            record["enforcement"] = json!([{"resourceType": "automations", "actionToBlock": "executed"}]);
        }
        record
    }

    /// The tenant-level flags of the listing: whether any record is in overage or close to it.
    pub(crate) fn executions_flags(&self) -> (bool, bool) {
        let all = (0..self.executions()).map(|i| self.execution_json(i));
        all.fold((false, false), |(o, c), r| (o || r["overage"] == true, c || r["closeToOverage"] == true))
    }
}
