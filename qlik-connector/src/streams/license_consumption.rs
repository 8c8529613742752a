//! `license_consumption`: analyzer-capacity and session consumption events
//! (`/v1/licenses/consumption`), read incrementally on `endTime`.
//!
//! Events are requested in ascending `endTime` order; after each page's records the
//! connector emits a checkpoint `{"end_time": <latest endTime so far>}`. The next run asks
//! for events from `consumption_lookback` (48 hours by default) before it (SCIM filter
//! `endTime ge "<cursor - look-back>"`), not just after it: Qlik records `endTime` to the
//! second, so events that end together may straddle a page break and a checkpoint, and
//! Qlik records some events late, after a sync has moved past their `endTime`. The overlap
//! delivers those; events already loaded come again and are upserted by `id` (the
//! stream's primary key), so nothing is lost and nothing duplicated. The first run starts
//! at `consumption_start`, or at the beginning of the tenant's history.

use async_trait::async_trait;
use connector_api::Result;
use connector_api::cursor::Cursor;
use connector_api::read::{Chain, Plan, Records, Source};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;

use super::{StreamDef, Ty, col};
use crate::read::{Ctx, Tenant};

/// Largest `limit` the endpoint accepts.
pub const MAX_LIMIT: u32 = 200;

/// The `license_consumption` stream.
pub const LICENSE_CONSUMPTION: StreamDef = StreamDef {
    name: "license_consumption",
    description: "Licence consumption events: engine sessions and the analyzer capacity they used. Incremental on end_time.",
    primary_key: &["id"],
    cursor: Some("end_time"),
    fields: &[
        col("id", "id", Ty::String, "Event id; when Qlik sends none, the SHA-256 of the event's fields."),
        col("end_time", "endTime", Ty::DateTime, "When the engine session ended; the incremental cursor."),
        col("user_id", "userId", Ty::String, "User id of the session's user."),
        col("app_id", "appId", Ty::String, "App the session opened."),
        col("session_id", "sessionId", Ty::String, "Engine session id."),
        col("allotment_id", "allotmentId", Ty::String, "Allotment the consumption counts against."),
        col(
            "license_usage",
            "licenseUsage",
            Ty::String,
            "Licence used: professional, analyzer, analyzer_time … (other values kept as text).",
        ),
        col("duration", "duration", Ty::String, "Session duration as an ISO 8601 duration."),
        col("minutes_used", "minutesUsed", Ty::Integer, "Analyzer capacity minutes consumed."),
        col("capacity_used", "capacityUsed", Ty::Integer, "Analyzer capacity chunks consumed."),
    ],
    consumed: &["links"],
};

/// The filter of a sync: from the saved cursor less the look-back, else from
/// `consumption_start`, else none (all history).
fn start_filter(saved: Option<&Cursor>, settings: &crate::config::Settings) -> Option<String> {
    match (saved, &settings.consumption_start) {
        (Some(cursor), _) => {
            let from = cursor.at - settings.consumption_lookback;
            let from = from.format(&Rfc3339).unwrap_or_else(|_| cursor.raw().to_string());
            Some(format!("endTime ge \"{from}\""))
        }
        (None, Some(start)) => Some(format!("endTime ge \"{start}\"")),
        (None, None) => None,
    }
}

/// Reads events from the saved cursor less the look-back (or from `consumption_start`),
/// in ascending `endTime`, so the engine checkpoints after every page.
pub struct LicenseConsumption;

#[async_trait]
impl Source<Tenant> for LicenseConsumption {
    fn streams(&self) -> &'static [&'static StreamDef] {
        &[&LICENSE_CONSUMPTION]
    }

    async fn plan(&self, ctx: &Ctx) -> Result<Plan> {
        let tenant = &ctx.source;
        let mut query = vec![("limit", tenant.limit(MAX_LIMIT)), ("sort", "+endTime".to_string())];
        if let Some(filter) = start_filter(ctx.resume.as_ref(), &tenant.settings) {
            query.push(("filter", filter));
        }
        let pages = tenant.pages(tenant.url("/api/v1/licenses/consumption", &query));
        Ok(Plan::chain(Chain::new(pages, event_record).ascending()))
    }
}

/// The record of `event`, keyed by its id, or by a hash of its fields when Qlik sent none.
fn event_record(mut event: Map<String, Value>, out: &mut Records) -> Result<()> {
    if event.get("id").and_then(Value::as_str).is_none_or(str::is_empty) {
        let id = fallback_id(&event);
        event.insert("id".into(), Value::String(id));
    }
    out.push(&LICENSE_CONSUMPTION, LICENSE_CONSUMPTION.record(event, &[]));
    Ok(())
}

/// The id of an event Qlik sent without one: SHA-256 over its fields, in key order, so
/// the same event always gets the same id.
pub fn fallback_id(event: &Map<String, Value>) -> String {
    let mut fields: Vec<(&String, &Value)> = event.iter().filter(|(k, _)| k.as_str() != "id").collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Sha256::new();
    for (k, v) in fields {
        hasher.update(k.as_bytes());
        hasher.update([0x1f]);
        hasher.update(v.to_string().as_bytes());
        hasher.update([0x1e]);
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fallback_id_is_stable_and_order_free() {
        let a: Map<String, Value> =
            serde_json::from_str(r#"{"endTime":"2026-01-01T00:00:00Z","userId":"u"}"#).unwrap();
        let b: Map<String, Value> =
            serde_json::from_str(r#"{"userId":"u","endTime":"2026-01-01T00:00:00Z","id":""}"#).unwrap();
        assert_eq!(fallback_id(&a), fallback_id(&b));
        assert_eq!(fallback_id(&a).len(), 64);
        let c: Map<String, Value> =
            serde_json::from_str(r#"{"endTime":"2026-01-01T00:00:01Z","userId":"u"}"#).unwrap();
        assert_ne!(fallback_id(&a), fallback_id(&c));
    }

    #[test]
    fn a_resumed_sync_starts_the_look_back_before_its_cursor() {
        let settings = |extra: Value| {
            let mut config = json!({"tenant_url": "https://a.eu.qlikcloud.com", "api_key": "k"});
            config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            crate::config::Settings::from_json(&config).unwrap()
        };
        let cursor = Cursor::parse("2026-10-31T12:00:05.000Z").unwrap();
        assert_eq!(
            start_filter(Some(&cursor), &settings(json!({"consumption_start": "2020-01-01"}))).unwrap(),
            r#"endTime ge "2026-10-29T12:00:05Z""#
        );
        assert_eq!(
            start_filter(Some(&cursor), &settings(json!({"consumption_lookback": "0s"}))).unwrap(),
            r#"endTime ge "2026-10-31T12:00:05Z""#
        );
        assert_eq!(
            start_filter(None, &settings(json!({"consumption_start": "2020-01-01"}))).unwrap(),
            r#"endTime ge "2020-01-01T00:00:00Z""#
        );
        assert_eq!(start_filter(None, &settings(json!({}))), None);
    }
}
