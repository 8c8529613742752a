//! `license_assignments`: who holds which licence (`/v1/licenses/assignments`).
//!
//! Qlik's assignment records have no id: they name the holder by `subject`, the user's
//! subject at the identity provider, and some responses add the holder's `userId` and
//! `name`. Join them to `users` on `users.subject = license_assignments.subject`.
//!
//! The plain listing returns every global assignment of the entitlement, orphans
//! included; `orphans=true` returns only the orphans, assignments whose subject has no
//! user on *this* tenant (an entitlement can serve several tenants and client-managed
//! sites; https://qlik.dev/changelog/66-license-assignment-orphans). With
//! `include_orphans`, the connector lists the orphans first and marks their rows of the
//! plain listing `orphan = true` (the others `false`); without it `orphan` is null. Each
//! assignment lands once either way.
//!
//! Qlik's own examples show rows without `type`; such a row lands with type
//! [`UNTYPED`], so the primary key `(subject, type)` stays whole and the row cannot
//! collide with the holder's typed assignments.

use std::collections::HashSet;

use async_trait::async_trait;
use connector_api::Result;
use connector_api::read::{Chain, Plan, Source};
use futures::TryStreamExt;
use serde_json::{Map, Value};

use super::{Access, StreamDef, Ty, col, derived};
use crate::read::{Ctx, MAX_LIMIT, Tenant};

/// The `type` of an assignment Qlik sent without one.
pub const UNTYPED: &str = "unspecified";

/// The `license_assignments` stream.
pub const LICENSE_ASSIGNMENTS: StreamDef = StreamDef {
    name: "license_assignments",
    description: "Licence assignments of the entitlement, orphans included: which subject holds which licence type. Join to users on subject.",
    primary_key: &["subject", "type"],
    cursor: None,
    access: Access::AdminOnly,
    fields: &[
        col("subject", "subject", Ty::String, "Subject of the holder; equals users.subject."),
        col(
            "type",
            "type",
            Ty::String,
            "Allotment type: professional, analyzer … (other values kept as text); `unspecified` when Qlik sent none.",
        ),
        col("excess", "excess", Ty::Boolean, "Whether the assignment is beyond the licence's units."),
        col("created", "created", Ty::DateTime, "When the licence was assigned."),
        col(
            "user_id",
            "userId",
            Ty::String,
            "User id of the holder, when Qlik sends it (a better join than subject).",
        ),
        col("name", "name", Ty::String, "Name of the holder, when Qlik sends it."),
        derived(
            "orphan",
            Ty::Boolean,
            "True when the subject has no user on this tenant (another tenant or site on the entitlement may hold it); null unless include_orphans.",
        ),
    ],
    consumed: &[],
};

/// `(subject, type)` of an assignment record, as the primary key holds it.
fn key(record: &Value) -> (String, String) {
    let text = |k: &str| record[k].as_str().unwrap_or_default().to_string();
    (text("subject"), text("type"))
}

/// The record of assignment `src`, `type` filled in when Qlik left it out.
fn record(src: Map<String, Value>, orphan: Value) -> Value {
    let mut record = LICENSE_ASSIGNMENTS.record(src, &[("orphan", orphan)]);
    if record["type"].is_null() {
        record["type"] = Value::String(UNTYPED.to_string());
    }
    record
}

const PATH: &str = "/api/v1/licenses/assignments";

/// The keys of the orphans (`orphans=true`).
async fn orphan_keys(ctx: &Ctx) -> Result<HashSet<(String, String)>> {
    let tenant = &ctx.connector;
    let url = tenant.url(PATH, &[("limit", tenant.limit(MAX_LIMIT)), ("orphans", "true".into())]);
    let mut pages = tenant.pages(url);
    let mut keys = HashSet::new();
    while let Some(page) = pages.try_next().await? {
        let (items, events) = page.into_parts();
        ctx.http_events(&events).await?;
        for src in items {
            keys.insert(key(&record(src?, Value::Null)));
        }
    }
    Ok(keys)
}

/// Lists every assignment once, marking orphans when configured.
pub struct LicenseAssignments;

#[async_trait]
impl Source<Tenant> for LicenseAssignments {
    fn streams(&self) -> &'static [&'static StreamDef] {
        &[&LICENSE_ASSIGNMENTS]
    }

    async fn plan(&self, ctx: &Ctx) -> Result<Plan> {
        let orphans = match ctx.connector.settings.include_orphans {
            true => Some(orphan_keys(ctx).await?),
            false => None,
        };
        let tenant = &ctx.connector;
        let pages = tenant.pages(tenant.url(PATH, &[("limit", tenant.limit(MAX_LIMIT))]));
        Ok(Plan::chain(Chain::new(pages, move |src, out| {
            let mut row = record(src, Value::Null);
            if let Some(orphans) = &orphans {
                row["orphan"] = Value::Bool(orphans.contains(&key(&row)));
            }
            out.push(&LICENSE_ASSIGNMENTS, row);
            Ok(())
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_row_without_type_keeps_a_whole_key_and_names_its_holder() {
        let Value::Object(src) = json!({"subject": "qlik\\nalle", "type": false, "created": "2020-12-03T09:24:48.114Z",
            "userId": "u1", "name": "Nalle"})
        else {
            unreachable!()
        };
        let row = record(src, Value::Null);
        assert_eq!(key(&row), ("qlik\\nalle".to_string(), UNTYPED.to_string()));
        assert_eq!((row["user_id"].as_str(), row["name"].as_str()), (Some("u1"), Some("Nalle")));
        assert_eq!(row["_extra"], json!({"type": false}), "what Qlik sent is kept");
        assert_eq!(row["orphan"], Value::Null);
    }
}
