//! The subscription's quotas as `/api/v1/quotas` lists them (https://qlik.dev/apis/rest/quotas):
//! limits, and with `reportUsage=true` the use, counted from the tenant where it can be.

use serde_json::{Value, json};

use super::Tenant;
use crate::synth::{Kind, h};

/// Quota ids, in the order they are listed.
pub(crate) const QUOTA_IDS: [&str; 4] =
    ["app_mem_size", "app_upload_disk_size", "shared_spaces", "managed_spaces"];

impl Tenant {
    /// The `GetQuotasResult` JSON; usage only when `report_usage`.
    pub(crate) fn quotas_json(&self, report_usage: bool) -> Value {
        let spaces_of = |kind: &str| (0..self.spaces).filter(|i| self.space(*i).kind == kind).count();
        let items: [(&str, f64, &str, f64); 4] = [
            (
                "app_mem_size",
                53_687_091_200.0,
                "bytes",
                (h(self.seed, Kind::License, 0, 20) % 40_000_000_000) as f64,
            ),
            (
                "app_upload_disk_size",
                6_442_450_944.0,
                "bytes",
                (h(self.seed, Kind::License, 0, 21) % 6_000_000_000) as f64,
            ),
            ("shared_spaces", 1_000.0, "spaces", spaces_of("shared") as f64),
            ("managed_spaces", -1.0, "spaces", spaces_of("managed") as f64),
        ];
        let data: Vec<Value> = items
            .iter()
            .map(|(id, quota, unit, usage)| {
                let mut attributes = json!({"quota": quota, "unit": unit, "warningThresholds": [0.9]});
                if report_usage {
                    attributes["usage"] = json!(usage);
                }
                json!({"id": id, "type": "quotas", "attributes": attributes})
            })
            .collect();
        json!({ "data": data })
    }
}
