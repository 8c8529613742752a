//! licenses/assignments and licenses/consumption: `page` tokens that are positions, and
//! `links.next/prev` that carry only `limit` and `page`.

use std::ops::Range;
use std::sync::atomic::Ordering;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::http::{ApiError, Ctx, Reply};
use crate::paging;
use crate::scim::{self, Filter, Op};
use crate::synth::parse_rfc3339_ms;
use crate::tenant::Tenant;

/// A licence listing's page token: `next:` or `prev:` and the offset of the page it points
/// to, base64-encoded. Qlik's examples decode to `next:` + a position
/// (https://qlik.dev/apis/rest/licenses): the token names no filter, sort or `orphans`.
fn page_token(dir: &str, offset: u64) -> String {
    STANDARD.encode(format!("{dir}:{offset}"))
}

/// The offset a `page` token points to (0 without one).
fn page_offset(ctx: &Ctx) -> Result<u64, ApiError> {
    let Some(token) = ctx.param("page") else { return Ok(0) };
    STANDARD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (dir, pos) = s.split_once(':')?;
            ["next", "prev"].contains(&dir).then(|| pos.parse().ok())?
        })
        .ok_or_else(|| ApiError::bad_request("Invalid query parameter `page`: not a page token."))
}

/// `links` of a licence listing. Like Qlik's, each link carries only `limit` and `page`: a
/// client that follows it verbatim drops its `filter`, `sort` and `orphans`, and the offset
/// then counts in another listing. (Qlik's definitions give these links no `self`.)
fn page_links(ctx: &Ctx, offset: u64, limit: u64, served: u64, more: bool) -> Value {
    let link = |dir: &str, to: u64| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("limit", &limit.to_string())
            .append_pair("page", &page_token(dir, to))
            .finish();
        json!({"href": format!("{}{}?{query}", ctx.base(), ctx.path)})
    };
    let mut links = json!({});
    if more {
        links["next"] = link("next", offset + served);
    }
    if offset > 0 {
        links["prev"] = link("prev", offset.saturating_sub(limit));
    }
    links
}

/// `GET /api/v1/licenses/assignments`: every global assignment of the entitlement, orphans
/// included; with `orphans=true` only the assignments whose subject has no user on this
/// tenant (https://qlik.dev/changelog/66-license-assignment-orphans).
pub(crate) fn assignments(t: &Tenant, ctx: &Ctx) -> Result<Reply, ApiError> {
    let limit = paging::limit(ctx, 20, 100)?;
    let orphans = paging::bool_param(ctx, "orphans")?;
    if let Some(f) = ctx.param("filter") {
        return Err(ApiError::bad_request(format!(
            "Invalid `filter` `{f}`: the simulator filters no licence assignments."
        )));
    }
    let offset = page_offset(ctx)?;
    let len = if orphans { t.orphans } else { t.assignment_listing_len() };
    let end = (offset + limit).min(len);
    let data: Vec<Value> = (offset.min(end)..end)
        .map(|p| t.assignment_json(&if orphans { t.orphan(p) } else { t.listed_assignment(p) }))
        .collect();
    let served = data.len() as u64;
    let links = page_links(ctx, offset, limit, served, end < len);
    Ok(Reply::ok(json!({"data": data, "links": links})))
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

/// Event indices in `range` that are listed now, in listing order: ascending `endTime`, or
/// descending. Late events stay out until published, so offsets count listed events only.
struct Listed<'a> {
    t: &'a Tenant,
    range: Range<u64>,
    descending: bool,
}

impl Listed<'_> {
    /// Late events in the range that are still hidden.
    fn hidden(&self) -> &[u64] {
        if self.t.late_published.load(Ordering::Relaxed) {
            return &[];
        }
        let late = &self.t.late;
        let from = late.partition_point(|i| *i < self.range.start);
        let to = late.partition_point(|i| *i < self.range.end);
        &late[from..to]
    }

    fn len(&self) -> u64 {
        (self.range.end - self.range.start) - self.hidden().len() as u64
    }

    /// The event index at listing offset `n` (which must be below `len`).
    fn index_at(&self, n: u64) -> u64 {
        let hidden = self.hidden();
        if self.descending {
            let mut i = self.range.end - 1 - n;
            for h in hidden.iter().rev() {
                if *h >= i {
                    i -= 1;
                } else {
                    break;
                }
            }
            i
        } else {
            let mut i = self.range.start + n;
            for h in hidden {
                if *h <= i {
                    i += 1;
                } else {
                    break;
                }
            }
            i
        }
    }
}

/// `GET /api/v1/licenses/consumption`: events ordered by `endTime`, SCIM `filter` on it.
/// Events Qlik records late join the listings to the present (no upper bound on `endTime`)
/// that start after a client has read such a listing to its end: a sync sees them only
/// after an earlier sync has moved past their `endTime` (https://qlik.dev/apis/rest/licenses).
/// A bounded slice of the past, read to its end, has not reached the present, so a sync
/// that reads in concurrent time slices sees one state of the tenant from start to end.
pub(crate) fn consumption(t: &Tenant, ctx: &Ctx) -> Result<Reply, ApiError> {
    let limit = paging::limit(ctx, 200, 200)?;
    let mut range = 0..t.events;
    if let Some(f) = ctx.param("filter") {
        let parsed = scim::parse(f).map_err(|e| ApiError::bad_request(format!("Invalid `filter`: {e}.")))?;
        if t.situations.compound_filters_refused && !matches!(parsed, scim::Filter::Cmp { .. }) {
            return Err(ApiError::bad_request("Invalid filter"));
        }
        range = narrow(t, &parsed, range)?;
    }
    let to_present = range.end == t.events;
    if to_present && ctx.param("page").is_none() && t.consumption_read_to_end.load(Ordering::Relaxed) {
        t.late_published.store(true, Ordering::Relaxed);
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
    let listed = Listed { t, range, descending };
    let offset = page_offset(ctx)?;
    let len = listed.len();
    let end = (offset + limit).min(len);
    let data: Vec<Value> = if offset >= end {
        Vec::new()
    } else {
        let first = listed.index_at(offset);
        let step = |i: u64| if descending { i.checked_sub(1) } else { Some(i + 1) };
        std::iter::successors(Some(first), |i| step(*i))
            .filter(|i| t.event_listed(*i))
            .take((end - offset) as usize)
            .map(|i| t.event_json(&t.event(i)))
            .collect()
    };
    let more = end < len;
    let links = page_links(ctx, offset, limit, data.len() as u64, more);
    if !more && to_present {
        t.consumption_read_to_end.store(true, Ordering::Relaxed);
    }
    Ok(Reply::ok(json!({"data": data, "links": links})))
}
