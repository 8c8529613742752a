//! Qlik's list endpoints, page by page.
//!
//! Every list answer is `{"data": [...], "links": {"next": {"href": "..."}}}`. The
//! connector follows `links.next.href` as given (cursor, page token and all) rather
//! than rebuilding it, because endpoints disagree on the token's name (`next`, `page`,
//! `startingAfter`). Each link goes through the tenant's
//! [`OriginGuard`](connector_api::http::OriginGuard) (a link to another host is rebased
//! onto the tenant, so the key never leaves it) and a
//! [`CursorGuard`] (a link seen twice ends the listing with an error, never a loop).
//!
//! The fetching task only checks a page's JSON and reads its next link; its items stay
//! raw until the consumer reads them with [`Page::records`], so turning one page into
//! records overlaps the request for the next.

use std::sync::Arc;

use connector_api::http::{CursorGuard, HttpEvent, LinkTarget, paginate, read_ahead};
use connector_api::{Error, ErrorKind, Result};
use futures::Stream;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use url::Url;

use crate::client::{QlikClient, Reply};
use crate::remediation;

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
            serde_json::from_str(item.get())
                .map_err(|_| protocol(&path, "returned a list item that is not a JSON object"))
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
}

struct Cursor {
    url: Url,
    seen: CursorGuard,
}

/// Streams the pages of the listing that starts at `first`, one page ahead of the
/// consumer: the next page is in flight while the current one's records are emitted.
pub fn pages(client: Arc<QlikClient>, first: Url) -> impl Stream<Item = Result<Page>> + Send {
    let mut seen = CursorGuard::new();
    let start = seen.check(first.path(), first.as_str()).map(|_| Cursor { url: first, seen });
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
    let next = match href {
        None => None,
        Some(href) => {
            let target = client
                .guard()
                .resolve_link(&at, href)
                .map_err(|e| e.with_context("endpoint", path.clone()))?;
            if let LinkTarget::Rebased { from, .. } = &target {
                tracing::debug!(endpoint = %path, from = %from, "Rebased a next-page link onto the tenant");
            }
            let url = target.into_url();
            cursor.seen.check(&path, url.as_str()).map_err(|e| e.with_hint(remediation::SOURCE_PROTOCOL))?;
            cursor.url = url;
            Some(cursor)
        }
    };
    Ok((Page { path, items: body.data.unwrap_or_default(), events }, next))
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
    fn missing_or_null_data_is_an_empty_page() {
        for body in [r#"{"links": {}}"#, r#"{"data": null}"#] {
            let envelope: Envelope = serde_json::from_str(body).unwrap();
            assert!(envelope.data.unwrap_or_default().is_empty(), "{body}");
        }
    }
}
