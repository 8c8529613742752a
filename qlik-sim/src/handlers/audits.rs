//! audits: the online events (`/audits`, `next`/`prev` cursors, `limit` 1 to 100, default
//! 10, `sort` on `eventTime` descending by default, filters on `eventType`, `userId`,
//! `source` and an `eventTime` interval), their types, the retention settings and the
//! archive by day, as https://qlik.dev/apis/rest/audits describes them.

use serde_json::{Value, json};

use crate::http::{ApiError, Ctx, Reply};
use crate::paging;
use crate::synth::{date_only, parse_rfc3339_ms};
use crate::tenant::{AUDIT_RETENTION_S, AUDIT_TYPES, Tenant};

/// `GET /api/v1/audits`: the events of the last 90 days.
pub(crate) fn list(t: &Tenant, ctx: &Ctx) -> Result<Reply, ApiError> {
    let limit = paging::limit(ctx, 10, 100)?;
    let ascending = match ctx.param("sort").unwrap_or("-eventTime") {
        "+eventTime" | "eventTime" => true,
        "-eventTime" => false,
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid query parameter `sort`: `{other}`; the simulator sorts on eventTime only."
            )));
        }
    };
    let (from, to) = match ctx.param("eventTime") {
        None => (i64::MIN, i64::MAX),
        Some(interval) => {
            let bound = |s: &str| parse_rfc3339_ms(s);
            match interval.split_once('/').and_then(|(a, b)| Some((bound(a)?, bound(b)?))) {
                Some(range) => range,
                None => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid query parameter `eventTime`: `{interval}` is not an interval start/end in RFC 3339."
                    )));
                }
            }
        }
    };
    let first = t.first_online_audit();
    let online = t.audit_events - first;
    let index = |p: u64| if ascending { first + p } else { t.audit_events - 1 - p };
    let matches = |p: u64| {
        let i = index(p);
        let at = t.audit_time_ms(i);
        ctx.param("eventType").is_none_or(|e| e == t.audit_type(i))
            && ctx.param("userId").is_none_or(|u| u == t.user_id(t.audit_user(i)))
            && ctx.param("source").is_none_or(|s| t.audit_archive_json(i)["source"] == s)
            && (from..=to).contains(&at)
    };
    let w = paging::cursor_window(ctx, "audits", 0..online, limit, matches)?;
    let base = ctx.base();
    let data: Vec<Value> = w.items.iter().map(|p| t.audit_json(index(*p), &base)).collect();
    Ok(Reply::ok(json!({"data": data, "links": paging::cursor_links(ctx, "audits", &w)})))
}

/// `GET /api/v1/audits/types`.
pub(crate) fn types(ctx: &Ctx) -> Reply {
    Reply::ok(json!({"data": AUDIT_TYPES, "links": {"self": {"href": ctx.self_href()}}}))
}

/// `GET /api/v1/audits/settings`: 90 days online, archiving on.
pub(crate) fn settings() -> Reply {
    Reply::ok(json!({"data": {"EventTTL": AUDIT_RETENTION_S, "ArchiveEnabled": true}}))
}

/// `GET /api/v1/audits/archive?date=YYYY-MM-DD`: every event of that day, online ones
/// included ("Archived events are not removed").
pub(crate) fn archive(t: &Tenant, ctx: &Ctx) -> Result<Reply, ApiError> {
    let date = ctx.param("date").filter(|d| parse_rfc3339_ms(&format!("{d}T00:00:00Z")).is_some());
    let Some(date) = date else {
        return Err(ApiError::bad_request("Query parameter `date` must be a date, YYYY-MM-DD."));
    };
    let data: Vec<Value> = (0..t.audit_events)
        .filter(|i| date_only(t.audit_time_ms(*i)) == date)
        .map(|i| t.audit_archive_json(i))
        .collect();
    Ok(Reply::ok(json!({ "data": data })))
}
