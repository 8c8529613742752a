//! licenses/assignments and licenses/consumption: opaque `page` tokens, `links.next/prev`.

use std::ops::Range;

use serde_json::{Value, json};

use crate::qlik_sim::http::{ApiError, Ctx, Reply};
use crate::qlik_sim::paging::{self, Window};
use crate::qlik_sim::scim::{self, Filter, Op};
use crate::qlik_sim::synth::parse_rfc3339_ms;
use crate::qlik_sim::tenant::Tenant;

/// The window a `page` token asks for; the token says the direction.
fn page_window(ctx: &Ctx, tag: &str, len: u64, limit: u64) -> Result<Window, ApiError> {
    let Some(token) = ctx.param("page") else { return Ok(paging::forward(0..len, 0, limit, |_| true)) };
    if let Ok(p) = paging::decode(&format!("{tag}.n"), "page", token) {
        return Ok(paging::forward(0..len, p, limit, |_| true));
    }
    let p = paging::decode(&format!("{tag}.p"), "page", token)?;
    Ok(paging::backward(0..len, p, limit, |_| true))
}

/// `links` with absolute `next`/`prev` (these definitions have no `self`).
fn page_links(ctx: &Ctx, tag: &str, w: &Window) -> Value {
    let mut links = json!({});
    if let Some(n) = w.next {
        links["next"] =
            json!({"href": paging::link(ctx, &["page"], ("page", &paging::encode(&format!("{tag}.n"), n)))});
    }
    if let Some(p) = w.prev {
        links["prev"] =
            json!({"href": paging::link(ctx, &["page"], ("page", &paging::encode(&format!("{tag}.p"), p)))});
    }
    links
}

/// `GET /api/v1/licenses/assignments`: current users' assignments, or with `orphans=true`
/// only those whose subject is no current user.
pub(crate) fn assignments(t: &Tenant, ctx: &Ctx) -> Result<Reply, ApiError> {
    let limit = paging::limit(ctx, 20, 100)?;
    let orphans = paging::bool_param(ctx, "orphans")?;
    if let Some(f) = ctx.param("filter") {
        return Err(ApiError::bad_request(format!(
            "Invalid `filter` `{f}`: the simulator filters no licence assignments."
        )));
    }
    let (tag, len) = if orphans { ("orphans", t.orphans) } else { ("assignments", t.assignments) };
    let w = page_window(ctx, tag, len, limit)?;
    let data: Vec<Value> = w
        .items
        .iter()
        .map(|p| Tenant::assignment_json(&if orphans { t.orphan(*p) } else { t.assignment(*p) }))
        .collect();
    Ok(Reply::ok(json!({"data": data, "links": page_links(ctx, tag, &w)})))
}

/// The first index in `range` whose `endTime` is not before `ms` (`inclusive`) or after it.
fn first_after(t: &Tenant, range: Range<u64>, ms: i64, inclusive: bool) -> u64 {
    let (mut lo, mut hi) = (range.start, range.end);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let e = t.event_end_ms(mid);
        if if inclusive { e < ms } else { e <= ms } {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Narrows `range` (event indices) to those matching `f`: `endTime` comparisons joined by `and`.
fn narrow(t: &Tenant, f: &Filter, range: Range<u64>) -> Result<Range<u64>, ApiError> {
    match f {
        Filter::And(a, b) => {
            let r = narrow(t, a, range)?;
            narrow(t, b, r)
        }
        Filter::Cmp { attr, op, value } if attr.eq_ignore_ascii_case("endTime") => {
            let ms = parse_rfc3339_ms(value).ok_or_else(|| {
                ApiError::bad_request(format!("Invalid `filter`: `{value}` is not an RFC 3339 timestamp."))
            })?;
            let (s, e) = (range.start, range.end);
            let r = match op {
                Op::Gt => first_after(t, range, ms, false)..e,
                Op::Ge => first_after(t, range, ms, true)..e,
                Op::Lt => s..first_after(t, range, ms, true),
                Op::Le => s..first_after(t, range, ms, false),
                Op::Eq => first_after(t, range.clone(), ms, true)..first_after(t, range, ms, false),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid `filter`: operator {other:?} is not supported on `endTime` (eq, gt, ge, lt, le)."
                    )));
                }
            };
            Ok(r)
        }
        Filter::Cmp { attr, .. } => Err(ApiError::bad_request(format!(
            "Invalid `filter`: `{attr}` is not filterable; the filterable property is `endTime`."
        ))),
        _ => Err(ApiError::bad_request("Invalid `filter`: only `and` may join `endTime` comparisons.")),
    }
}

/// `GET /api/v1/licenses/consumption`: events ordered by `endTime`, SCIM `filter` on it.
pub(crate) fn consumption(t: &Tenant, ctx: &Ctx) -> Result<Reply, ApiError> {
    let limit = paging::limit(ctx, 200, 200)?;
    let mut range = 0..t.events;
    if let Some(f) = ctx.param("filter") {
        let parsed = scim::parse(f).map_err(|e| ApiError::bad_request(format!("Invalid `filter`: {e}.")))?;
        range = narrow(t, &parsed, range)?;
    }
    let descending = match ctx.param("sort") {
        None | Some("endTime") | Some("+endTime") => false,
        Some("-endTime") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid query parameter `sort`: `{other}`; sortable is `endTime` (+endTime, -endTime)."
            )));
        }
    };
    let tag = if descending { "consumption-desc" } else { "consumption" };
    let len = range.end.saturating_sub(range.start);
    let w = page_window(ctx, tag, len, limit)?;
    let data: Vec<Value> = w
        .items
        .iter()
        .map(|p| {
            let i = if descending { range.end - 1 - p } else { range.start + p };
            t.event_json(&t.event(i))
        })
        .collect();
    Ok(Reply::ok(json!({"data": data, "links": page_links(ctx, tag, &w)})))
}
