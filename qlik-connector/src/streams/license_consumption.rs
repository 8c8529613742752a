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
use connector_api::cursor::Cursor;
use connector_api::read::{Chain, Plan, Records, Source};
use connector_api::{HttpFailure, LogLevel, Result};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Access, StreamDef, Ty, col};
use crate::read::{Ctx, Tenant, get_object};

/// Largest `limit` the endpoint accepts.
pub const MAX_LIMIT: u32 = 200;

/// The `license_consumption` stream.
pub const LICENSE_CONSUMPTION: StreamDef = StreamDef {
    name: "license_consumption",
    description: "Licence consumption events: engine sessions and the analyzer capacity they used. Incremental on end_time.",
    primary_key: &["id"],
    cursor: Some("end_time"),
    access: Access::AdminOnly,
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
/// in consecutive `endTime` slices read at once, each in ascending `endTime`, so the engine
/// checkpoints after every page of the slices read so far.
pub struct LicenseConsumption;

#[async_trait]
impl Source<Tenant> for LicenseConsumption {
    fn streams(&self) -> &'static [&'static StreamDef] {
        &[&LICENSE_CONSUMPTION]
    }

    async fn plan(&self, ctx: &Ctx) -> Result<Plan> {
        let tenant = &ctx.connector;
        let from = start_filter(ctx.resume.as_ref(), &tenant.settings);
        let bounds = match tenant.settings.max_concurrency {
            1 => Vec::new(),
            slices => match span(ctx, from.as_deref()).await? {
                Some((first, last)) => match split(first, last, slices) {
                    cuts if cuts.is_empty() => cuts,
                    cuts => match compound_filter_refusal(ctx, first, cuts[0]).await? {
                        None => cuts,
                        Some(why) => {
                            ctx.log(LogLevel::Warn, why).await?;
                            Vec::new()
                        }
                    },
                },
                None => Vec::new(),
            },
        };
        let slices = slice_filters(from, &bounds).into_iter().map(|filter| {
            let mut query = vec![("limit", tenant.limit(MAX_LIMIT)), ("sort", "+endTime".to_string())];
            query.extend(filter.map(|f| ("filter", f)));
            let pages = tenant.pages(tenant.url(PATH, &query));
            Chain::new(pages, event_record).ascending()
        });
        Ok(Plan::chains(slices))
    }
}

/// The endpoint.
const PATH: &str = "/api/v1/licenses/consumption";

/// The `endTime` of the first and the last event from `from`, one request each, sent at
/// once; `None` when there is none.
async fn span(ctx: &Ctx, from: Option<&str>) -> Result<Option<(OffsetDateTime, OffsetDateTime)>> {
    let edge = |sort: &'static str| {
        let mut query = vec![("limit", "1".to_string()), ("sort", sort.to_string())];
        query.extend(from.map(|f| ("filter", f.to_string())));
        let url = ctx.connector.url(PATH, &query);
        async move { Ok::<_, connector_api::Error>(first_end(&get_object(ctx, url).await?)) }
    };
    let (first, last) = futures::try_join!(edge("+endTime"), edge("-endTime"))?;
    Ok(first.zip(last))
}

/// Why the tenant cannot be read in slices, or `None` when it can: one request for the
/// first event of the first slice, `endTime ge "<first>" and endTime lt "<cut>"`, the shape
/// of every bounded slice's filter.
///
/// Qlik documents the listing's filter as "the SCIM filter; filterable property is
/// endTime" (https://qlik.dev/apis/rest/licenses) and shows no example joining two
/// comparisons with `and`, nor one with `lt`. A tenant that answers such a filter with 400,
/// or that answers it as if it had not read it (the first event, at `first`, missing, or an
/// event past the cut), is read in one listing with the documented `endTime ge` filter for
/// this run: slower, and nothing is lost.
async fn compound_filter_refusal(
    ctx: &Ctx,
    first: OffsetDateTime,
    cut: OffsetDateTime,
) -> Result<Option<String>> {
    let at = |t: OffsetDateTime| Cursor::at(t).raw().to_string();
    let filter = format!("endTime ge \"{}\" and endTime lt \"{}\"", at(first), at(cut));
    let query = [("limit", "1".to_string()), ("sort", "+endTime".to_string()), ("filter", filter.clone())];
    let fallback = "reading license_consumption in one listing with the documented `endTime ge` filter this run (slower; nothing is lost)";
    let answer = match get_object(ctx, ctx.connector.url(PATH, &query)).await {
        Ok(answer) => answer,
        Err(err) if err.http_failure() == Some(HttpFailure::Status(400)) => {
            return Ok(Some(format!(
                "Qlik Cloud refused the compound filter `{filter}` on {PATH} ({}); {fallback}",
                err.message()
            )));
        }
        Err(err) => return Err(err),
    };
    Ok(match first_end(&answer) {
        Some(end) if end >= first && end < cut => None,
        _ => Some(format!(
            "Qlik Cloud did not apply the compound filter `{filter}` on {PATH} (its first event is not the one the filter selects); {fallback}"
        )),
    })
}

/// The `endTime` of the first event of a listing's `answer`, if it has one that reads as a
/// time.
fn first_end(answer: &Map<String, Value>) -> Option<OffsetDateTime> {
    let end = answer.get("data")?.as_array()?.first()?.get("endTime")?.as_str()?;
    Cursor::parse(end).map(|c| c.at)
}

/// Up to `slices - 1` instants cutting `[first, last]` into equal spans, whole seconds
/// apart (Qlik records `endTime` to the second), none when the span is too short to cut.
fn split(first: OffsetDateTime, last: OffsetDateTime, slices: usize) -> Vec<OffsetDateTime> {
    let seconds = (last - first).whole_seconds();
    let step = seconds / slices as i64;
    if step < 1 {
        return Vec::new();
    }
    (1..slices as i64).map(|i| first + time::Duration::seconds(step * i)).collect()
}

/// The filter of each slice: the sync's own lower bound, then `endTime` from one cut to
/// the next (`ge` the lower, `lt` the upper, so an event on a cut lands in exactly one
/// slice); the last slice is open, so events recorded during the read are not missed.
fn slice_filters(from: Option<String>, cuts: &[OffsetDateTime]) -> Vec<Option<String>> {
    let at = |t: &OffsetDateTime| Cursor::at(*t).raw().to_string();
    let mut lower = from;
    let mut filters = Vec::with_capacity(cuts.len() + 1);
    for cut in cuts {
        let upper = format!("endTime lt \"{}\"", at(cut));
        filters.push(Some(match lower {
            Some(lower) => format!("{lower} and {upper}"),
            None => upper,
        }));
        lower = Some(format!("endTime ge \"{}\"", at(cut)));
    }
    filters.push(lower);
    filters
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
    fn slices_meet_without_overlap_and_the_last_is_open() {
        let at = |s: &str| Cursor::parse(s).unwrap().at;
        let cuts = split(at("2026-01-01T00:00:00Z"), at("2026-01-01T00:00:40Z"), 4);
        assert_eq!(cuts.len(), 3);
        let filters = slice_filters(Some(r#"endTime ge "2025-12-31T00:00:00Z""#.into()), &cuts);
        assert_eq!(
            filters,
            [
                Some(
                    r#"endTime ge "2025-12-31T00:00:00Z" and endTime lt "2026-01-01T00:00:10Z""#.to_string()
                ),
                Some(
                    r#"endTime ge "2026-01-01T00:00:10Z" and endTime lt "2026-01-01T00:00:20Z""#.to_string()
                ),
                Some(
                    r#"endTime ge "2026-01-01T00:00:20Z" and endTime lt "2026-01-01T00:00:30Z""#.to_string()
                ),
                Some(r#"endTime ge "2026-01-01T00:00:30Z""#.to_string()),
            ]
        );
        assert!(
            split(at("2026-01-01T00:00:00Z"), at("2026-01-01T00:00:03Z"), 8).is_empty(),
            "too short to cut"
        );
        assert_eq!(slice_filters(None, &[]), [None], "one open listing");
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
