//! Paging as Qlik does it: `limit` checked against the endpoint's bounds, opaque cursors, and
//! absolute `links` built from the request's own URL.

use std::ops::Range;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::http::{ApiError, Ctx};

/// The `limit` of the request: `default` when absent, 400 unless it is an integer in `1..=max`.
pub(crate) fn limit(ctx: &Ctx, default: u64, max: u64) -> Result<u64, ApiError> {
    let Some(raw) = ctx.param("limit") else { return Ok(default) };
    let parsed = raw
        .parse::<u64>()
        .ok()
        .or_else(|| raw.parse::<f64>().ok().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64));
    match parsed {
        Some(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(format!(
            "Invalid query parameter `limit`: `{raw}` is not an integer between 1 and {max}."
        ))),
    }
}

/// An opaque cursor for position `pos` of a listing tagged `tag`.
pub(crate) fn encode(tag: &str, pos: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{tag}:{pos}"))
}

/// The position in an opaque cursor made by [`encode`] with the same `tag`.
pub(crate) fn decode(tag: &str, param: &str, token: &str) -> Result<u64, ApiError> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix(tag).and_then(|r| r.strip_prefix(':')).and_then(|n| n.parse().ok()))
        .ok_or_else(|| {
            ApiError::bad_request(format!("Invalid query parameter `{param}`: not a cursor of this listing."))
        })
}

/// The absolute URL of this request with the paging parameters `drop` removed and `add` set.
pub(crate) fn link(ctx: &Ctx, drop: &[&str], add: (&str, &str)) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &ctx.query {
        if !drop.contains(&k.as_str()) && k != add.0 {
            ser.append_pair(k, v);
        }
    }
    ser.append_pair(add.0, add.1);
    format!("{}{}?{}", ctx.base(), ctx.path, ser.finish())
}

/// One page of positions of a listing.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Window {
    /// Matching positions on this page, in order.
    pub items: Vec<u64>,
    /// Where the next page starts (inclusive), if any match remains.
    pub next: Option<u64>,
    /// Where the previous page ends (exclusive), if any match comes before this page.
    pub prev: Option<u64>,
}

/// Up to `limit` positions of `range` matching `pred`, starting at `start`.
pub(crate) fn forward(range: Range<u64>, start: u64, limit: u64, pred: impl Fn(u64) -> bool) -> Window {
    let start = start.clamp(range.start, range.end);
    let mut w = Window::default();
    let mut p = start;
    while p < range.end && (w.items.len() as u64) < limit {
        if pred(p) {
            w.items.push(p);
        }
        p += 1;
    }
    w.next = (p..range.end).find(|q| pred(*q));
    w.prev = (range.start..start).rev().any(&pred).then_some(start);
    w
}

/// Up to `limit` positions of `range` matching `pred`, ending just before `end`.
pub(crate) fn backward(range: Range<u64>, end: u64, limit: u64, pred: impl Fn(u64) -> bool) -> Window {
    let end = end.clamp(range.start, range.end);
    let mut w = Window::default();
    let mut p = end;
    while p > range.start && (w.items.len() as u64) < limit {
        p -= 1;
        if pred(p) {
            w.items.push(p);
        }
    }
    w.items.reverse();
    let first = w.items.first().copied().unwrap_or(end);
    w.prev = (range.start..first).rev().any(&pred).then_some(first);
    w.next = (end..range.end).find(|q| pred(*q));
    w
}

/// The window a `next`/`prev` cursor request asks for (first page without either).
pub(crate) fn cursor_window(
    ctx: &Ctx,
    tag: &str,
    range: Range<u64>,
    limit: u64,
    pred: impl Fn(u64) -> bool,
) -> Result<Window, ApiError> {
    match (ctx.param("next"), ctx.param("prev")) {
        (Some(_), Some(_)) => {
            Err(ApiError::bad_request("Query parameters `next` and `prev` cannot be combined."))
        }
        (Some(n), None) => Ok(forward(range, decode(tag, "next", n)?, limit, pred)),
        (None, Some(p)) => Ok(backward(range, decode(tag, "prev", p)?, limit, pred)),
        (None, None) => Ok(forward(range.clone(), range.start, limit, pred)),
    }
}

/// `links` with absolute `self`, `next` and `prev` for a cursor listing.
pub(crate) fn cursor_links(ctx: &Ctx, tag: &str, w: &Window) -> serde_json::Value {
    let mut links = serde_json::json!({"self": {"href": ctx.self_href()}});
    if let Some(n) = w.next {
        links["next"] = serde_json::json!({"href": link(ctx, &["next", "prev"], ("next", &encode(tag, n)))});
    }
    if let Some(p) = w.prev {
        links["prev"] = serde_json::json!({"href": link(ctx, &["next", "prev"], ("prev", &encode(tag, p)))});
    }
    links
}

/// Whether the request asked for `totalResults`; 400 unless the value is a boolean.
pub(crate) fn bool_param(ctx: &Ctx, name: &str) -> Result<bool, ApiError> {
    match ctx.param(name) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => {
            Err(ApiError::bad_request(format!("Invalid query parameter `{name}`: `{v}` is not a boolean.")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_and_backward_agree() {
        let even = |p: u64| p.is_multiple_of(2);
        let a = forward(0..20, 0, 3, even);
        assert_eq!(a.items, vec![0, 2, 4]);
        assert_eq!(a.prev, None);
        let b = forward(0..20, a.next.unwrap(), 3, even);
        assert_eq!(b.items, vec![6, 8, 10]);
        let back = backward(0..20, b.prev.unwrap(), 3, even);
        assert_eq!(back.items, a.items);
        assert_eq!(back.prev, None);
        let last = forward(0..20, 18, 3, even);
        assert_eq!((last.items, last.next), (vec![18], None));
    }
}
