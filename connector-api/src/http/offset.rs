//! Lazy paging over offset-addressed listings (`startIndex`/`count`, `offset`/`limit`).
//!
//! Many APIs page by position instead of by cursor: SCIM (RFC 7644 §3.4.2.4) asks for
//! `startIndex` (1-based) and `count`, and answers `totalResults`. The stopping rule is
//! easy to get subtly wrong: stop on the last page without an extra request, follow the
//! page size the server actually used (it may cap `count`), and never loop when a
//! server returns an empty page before the advertised total (records deleted mid-read).
//! [`paginate_offset`] gets it right once, on top of [`paginate`](super::paginate).

use std::future::Future;

use futures::Stream;

use super::paginate;
use crate::Result;

/// One page of an offset-paged listing, as the connector parsed it.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetPage<P> {
    /// What the page holds, handed on to the stream's consumer.
    pub items: P,
    /// How many items the page returned (not how many were asked for).
    pub returned: u64,
    /// Items in the whole listing, when the source says (`totalResults`).
    pub total: Option<u64>,
}

/// Where the next page starts after a page at `start` returned `returned` items, or
/// `None` when the listing is complete.
///
/// `first_index` is the position of the first item (1 for SCIM, 0 for `offset` APIs).
/// The listing ends on an empty page, or when the items seen reach `total`.
pub fn next_offset(first_index: u64, start: u64, returned: u64, total: Option<u64>) -> Option<u64> {
    if returned == 0 {
        return None;
    }
    let seen = start.saturating_sub(first_index) + returned;
    match total {
        Some(total) if seen >= total => None,
        _ => Some(start + returned),
    }
}

/// Streams the pages of an offset-paged listing: calls `fetch(first_index)`, then
/// `fetch(next)` for each position [`next_offset`] yields, fetching a page only when
/// the consumer asks for it. An error is yielded once and ends the stream.
///
/// ```
/// # use connector_api::http::offset::{OffsetPage, paginate_offset};
/// # use futures::TryStreamExt;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // 7 items served 3 at a time, positions starting at 1 as in SCIM.
/// let pages: Vec<Vec<u64>> = paginate_offset(1, |start| async move {
///     let items: Vec<u64> = (start..=7).take(3).collect();
///     Ok(OffsetPage { returned: items.len() as u64, total: Some(7), items })
/// })
/// .try_collect()
/// .await
/// .unwrap();
/// assert_eq!(pages, vec![vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
/// # });
/// ```
pub fn paginate_offset<P, F, Fut>(first_index: u64, mut fetch: F) -> impl Stream<Item = Result<P>>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<OffsetPage<P>>>,
{
    paginate(first_index, move |start| {
        let page = fetch(start);
        async move {
            let page = page.await?;
            Ok((page.items, next_offset(first_index, start, page.returned, page.total)))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn stops_exactly_at_total() {
        // 100 items in pages of 10, 1-based: the tenth page ends it, no eleventh request.
        assert_eq!(next_offset(1, 81, 10, Some(100)), Some(91));
        assert_eq!(next_offset(1, 91, 10, Some(100)), None);
        // 0-based offsets.
        assert_eq!(next_offset(0, 0, 25, Some(30)), Some(25));
        assert_eq!(next_offset(0, 25, 5, Some(30)), None);
    }

    #[test]
    fn follows_the_page_size_the_server_used() {
        // Asked for 100, the server capped at 50: the next page starts at 51.
        assert_eq!(next_offset(1, 1, 50, Some(137)), Some(51));
    }

    #[test]
    fn empty_page_ends_even_before_total() {
        assert_eq!(next_offset(1, 51, 0, Some(137)), None);
        assert_eq!(next_offset(1, 1, 20, None), Some(21));
        assert_eq!(next_offset(1, 21, 0, None), None);
    }

    #[tokio::test]
    async fn requests_only_the_pages_needed() {
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        let pages: Vec<u64> = paginate_offset(1, move |start| {
            c.fetch_add(1, Ordering::SeqCst);
            async move { Ok(OffsetPage { items: start, returned: 10.min(30 - (start - 1)), total: Some(30) }) }
        })
        .try_collect()
        .await
        .unwrap();
        assert_eq!(pages, vec![1, 11, 21]);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
