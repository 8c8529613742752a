//! Qlik's list endpoints, page by page.
//!
//! Every list answer is `{"data": [...], "links": {"next": {"href": "..."}}}`. The
//! connector follows `links.next.href` (cursor, page token and all) rather than
//! rebuilding it, because endpoints disagree on the token's name (`next`, `page`,
//! `startingAfter`), and puts back the query parameters the link leaves out
//! ([`next_link::keep_query`]). Each link goes through the tenant's
//! [`OriginGuard`](connector_api::http::OriginGuard) (a link to another host is rebased
//! onto the tenant, so the key never leaves it) and a
//! [`CursorGuard`] (a link seen twice ends the listing with an error, never a loop). A
//! link to another path is refused ([`next_link::same_listing`]): its records would land in
//! this listing's stream.
//!
//! A listing also ends with an error after [`MAX_EMPTY_PAGES`] pages in a row without
//! records that still name a next page, or once it has delivered more than a page beyond
//! the total the endpoint reports (`meta.count`, `totalResults`): a source that keeps
//! handing out fresh links never ends a listing by itself.
//!
//! The fetching task only checks a page's JSON and reads its next link; its items stay
//! raw until the consumer reads them with [`Page::records`], so turning one page into
//! records overlaps the request for the next.

use std::sync::Arc;

use connector_api::http::{CursorGuard, HttpEvent, LinkTarget, json_body, paginate, read_ahead};
use connector_api::{Error, ErrorKind, Result};
use futures::Stream;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use url::Url;

use crate::client::{QlikClient, Reply};
use crate::{next_link, remediation};

/// One page of a listing.
#[derive(Debug)]
pub struct Page {
    /// The endpoint that answered it.
    path: String,
    /// The page's items, as Qlik sent them.
    items: Vec<Box<RawValue>>,
    /// Retries and throttling while fetching it.
    pub events: Vec<HttpEvent>,
}

impl Page {
    /// The page's items as JSON objects (its `len()` is the page's size); an item of
    /// another kind is a protocol error naming the endpoint.
    pub fn records(self) -> impl ExactSizeIterator<Item = Result<Map<String, Value>>> {
        let path = self.path;
        self.items.into_iter().map(move |item| {
            serde_json::from_str(item.get()).map_err(|e| {
                if json_body::is_nesting_limit(&e) {
                    let what = format!(
                        "returned a list item nested more than {} levels deep, past serde_json's recursion limit",
                        json_body::NESTING_LIMIT
                    );
                    protocol(&path, &what).with_hint(json_body::TOO_DEEP_HINT)
                } else {
                    protocol(&path, "returned a list item that is not a JSON object")
                }
            })
        })
    }
}

/// A list answer: `data` kept raw, `links` read for the next page.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<Vec<Box<RawValue>>>,
    #[serde(default)]
    links: Option<Value>,
    /// `meta.count`: the listing's total, where the endpoint reports one (spaces).
    #[serde(default)]
    meta: Option<Value>,
    /// The listing's total, where the request asked for it (`totalResults=true`).
    #[serde(default, rename = "totalResults")]
    total_results: Option<Value>,
}

impl Envelope {
    /// The total number of records the listing reports, if it reports one.
    fn reported_total(&self) -> Option<u64> {
        self.total_results.as_ref().or_else(|| self.meta.as_ref()?.get("count")).and_then(Value::as_u64)
    }
}

/// Pages without records in a row after which a listing that still names a next page
/// ends with an error.
pub const MAX_EMPTY_PAGES: u32 = 20;

struct Cursor {
    url: Url,
    seen: CursorGuard,
    bounds: Bounds,
}

/// What a listing has delivered, to stop one that never ends.
#[derive(Default)]
struct Bounds {
    empty_in_a_row: u32,
    records: u64,
    total: Option<u64>,
}

impl Bounds {
    /// Counts a page of `items` records, reporting `total`, after which the listing goes
    /// on; fails when that would exceed [`MAX_EMPTY_PAGES`] or the reported total by
    /// more than a page.
    fn next_page(&mut self, path: &str, items: usize, total: Option<u64>) -> Result<()> {
        self.records += items as u64;
        self.total = self.total.max(total);
        self.empty_in_a_row = if items == 0 { self.empty_in_a_row + 1 } else { 0 };
        if self.empty_in_a_row >= MAX_EMPTY_PAGES {
            return Err(protocol(
                path,
                &format!(
                    "returned {MAX_EMPTY_PAGES} pages in a row without records, each naming another next page, after {} records; stopping instead of following it forever",
                    self.records
                ),
            ));
        }
        if let Some(total) = self.total.filter(|t| self.records > t + items as u64) {
            return Err(protocol(
                path,
                &format!(
                    "listed {} records and names a next page, but reports only {total} in all; stopping instead of following it forever",
                    self.records
                ),
            ));
        }
        Ok(())
    }
}

/// Streams the pages of the listing that starts at `first`, one page ahead of the
/// consumer: the next page is in flight while the current one's records are emitted.
pub fn pages(client: Arc<QlikClient>, first: Url) -> impl Stream<Item = Result<Page>> + Send {
    let mut seen = CursorGuard::new();
    let start = seen.check(first.path(), first.as_str()).map(|_| Cursor {
        url: first,
        seen,
        bounds: Bounds::default(),
    });
    read_ahead(paginate(start, move |cursor| {
        let client = client.clone();
        async move { fetch(&client, cursor?).await.map(|(page, next)| (page, next.map(Ok))) }
    }))
}

async fn fetch(client: &QlikClient, mut cursor: Cursor) -> Result<(Page, Option<Cursor>)> {
    let mut events = Vec::new();
    let path = cursor.url.path().to_string();
    let (at, body) = match client.get::<Envelope>(&cursor.url, &mut events).await? {
        Reply::Json(at, body) => (at, body),
        Reply::Redirect(_) => {
            return Err(protocol(&path, "answered a list request with a redirect"));
        }
    };
    let href = body
        .links
        .as_ref()
        .and_then(|l| l.get("next"))
        .and_then(|n| n.get("href"))
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty());
    let total = body.reported_total();
    let items = body.data.unwrap_or_default();
    let next = match href {
        None => None,
        Some(href) => {
            cursor.bounds.next_page(&path, items.len(), total)?;
            let target = client
                .guard()
                .resolve_link(&at, href)
                .map_err(|e| e.with_context("endpoint", path.clone()))?;
            if let LinkTarget::Rebased { from, .. } = &target {
                tracing::debug!(endpoint = %path, from = %from, "Rebased a next-page link onto the tenant");
            }
            let url = next_link::keep_query(&cursor.url, target.into_url());
            if !next_link::same_listing(&cursor.url, &url) {
                let what = format!(
                    "named a next page on another endpoint (`{}`); refusing to read it into this listing",
                    url.path()
                );
                return Err(protocol(&path, &what));
            }
            cursor.seen.check(&path, url.as_str()).map_err(|e| e.with_hint(remediation::SOURCE_PROTOCOL))?;
            cursor.url = url;
            Some(cursor)
        }
    };
    Ok((Page { path, items, events }, next))
}

fn protocol(path: &str, what: &str) -> Error {
    Error::new(ErrorKind::Source, format!("{path} {what}"))
        .with_context("endpoint", path.to_string())
        .with_hint(remediation::SOURCE_PROTOCOL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_become_records_until_one_is_not_an_object() {
        let body = br#"{"data": [{"id": "a"}, 7, {"id": "b"}], "links": {}}"#;
        let envelope: Envelope = serde_json::from_slice(body).unwrap();
        let page = Page {
            path: "/api/v1/users".into(),
            items: envelope.data.unwrap_or_default(),
            events: Vec::new(),
        };
        let records = page.records();
        assert_eq!(records.len(), 3);
        let records: Vec<Result<Map<String, Value>>> = records.collect();
        assert_eq!(records[0].as_ref().unwrap()["id"], "a");
        let err = records[1].as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Source);
        assert_eq!(err.context_value("endpoint"), Some("/api/v1/users"));
        assert_eq!(records[2].as_ref().unwrap()["id"], "b");
    }

    #[test]
    fn a_listing_of_empty_pages_ends_with_an_error() {
        let mut bounds = Bounds::default();
        bounds.next_page("/api/v1/users", 3, None).unwrap();
        for _ in 1..MAX_EMPTY_PAGES {
            bounds.next_page("/api/v1/users", 0, None).unwrap();
        }
        let err = bounds.next_page("/api/v1/users", 0, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Source);
        assert!(err.message().contains("20 pages in a row without records"), "{err}");
        assert_eq!(err.context_value("endpoint"), Some("/api/v1/users"));
    }

    #[test]
    fn a_listing_past_its_reported_total_ends_with_an_error() {
        let envelope: Envelope = serde_json::from_str(r#"{"data": [], "meta": {"count": 25}}"#).unwrap();
        assert_eq!(envelope.reported_total(), Some(25));
        let mut bounds = Bounds::default();
        bounds.next_page("/api/v1/spaces", 20, Some(25)).unwrap();
        bounds.next_page("/api/v1/spaces", 10, Some(25)).unwrap();
        let err = bounds.next_page("/api/v1/spaces", 10, Some(25)).unwrap_err();
        assert!(
            err.message().contains("listed 40 records and names a next page, but reports only 25"),
            "{err}"
        );
    }

    #[test]
    fn a_deeply_nested_item_names_the_limit() {
        let deep = format!(r#"{{"data": [{{"id": "u", "x": {}{}}}]}}"#, "[".repeat(200), "]".repeat(200));
        let envelope: Envelope = serde_json::from_str(&deep).unwrap();
        let page = Page { path: "/api/v1/users".into(), items: envelope.data.unwrap(), events: Vec::new() };
        let err = page.records().next().unwrap().unwrap_err();
        assert!(
            err.message().contains("nested more than 128 levels deep, past serde_json's recursion limit"),
            "{err}"
        );
        assert_eq!(err.hint(), Some(json_body::TOO_DEEP_HINT));
    }

    #[test]
    fn missing_or_null_data_is_an_empty_page() {
        for body in [r#"{"links": {}}"#, r#"{"data": null}"#] {
            let envelope: Envelope = serde_json::from_str(body).unwrap();
            assert!(envelope.data.unwrap_or_default().is_empty(), "{body}");
        }
    }
}
