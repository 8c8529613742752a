//! Lazy paging over continuation tokens.
//!
//! [`paginate`] turns "fetch one page given a cursor, learn the next cursor" into a
//! stream that fetches the next page only when the consumer asks for it, so a listing
//! of any length runs in the memory of one page. [`CursorGuard`] remembers the cursors
//! a listing has used (as 64-bit hashes, a few bytes per page) and stops a source that
//! hands one out again instead of looping forever.

use std::collections::HashSet;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::{Error, ErrorKind, Result};

/// Streams pages: calls `fetch(first)`, then `fetch(next)` for each `Some(next)` it
/// returns, until it returns `None` or fails. An error is yielded once and ends the
/// stream.
///
/// ```
/// # use connector_api::http::paginate;
/// # use futures::TryStreamExt;
/// # tokio_test_block(async {
/// let pages: Vec<Vec<u32>> = paginate(0u32, |offset| async move {
///     let page: Vec<u32> = (offset..(offset + 2).min(5)).collect();
///     let next = (offset + 2 < 5).then_some(offset + 2);
///     Ok((page, next))
/// })
/// .try_collect()
/// .await
/// .unwrap();
/// assert_eq!(pages, vec![vec![0, 1], vec![2, 3], vec![4]]);
/// # });
/// # fn tokio_test_block(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub fn paginate<C, P, F, Fut>(first: C, fetch: F) -> impl Stream<Item = Result<P>>
where
    F: FnMut(C) -> Fut,
    Fut: Future<Output = Result<(P, Option<C>)>>,
{
    futures::stream::unfold(Some((Some(first), fetch)), |state| async move {
        let (cursor, mut fetch) = state?;
        let cursor = cursor?;
        match fetch(cursor).await {
            Ok((page, next)) => Some((Ok(page), Some((next, fetch)))),
            Err(err) => Some((Err(err), None)),
        }
    })
}

/// Drives `pages` on its own task, one page ahead of the consumer.
///
/// While the consumer works through page *n* (mapping and emitting its records), page
/// *n + 1* is already in flight, so a long listing costs about one round trip per page
/// rather than a round trip plus the consumer's work. At most three pages are in memory
/// (one being consumed, one buffered, one arriving). Dropping the returned stream
/// aborts the task. Must be called within a tokio runtime.
pub fn read_ahead<P, S>(pages: S) -> impl Stream<Item = Result<P>> + Send + 'static
where
    P: Send + 'static,
    S: Stream<Item = Result<P>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(1);
    let task = tokio::spawn(async move {
        let mut pages = std::pin::pin!(pages);
        while let Some(page) = pages.next().await {
            let failed = page.is_err();
            if tx.send(page).await.is_err() || failed {
                break;
            }
        }
    });
    let guard = AbortOnDrop(task.abort_handle());
    futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv().await.map(|p| (p, (rx, guard)))
    })
}

/// Aborts a task when the stream that owns it is dropped.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Detects a cursor (or next-page link) seen twice in one listing.
#[derive(Debug, Default)]
pub struct CursorGuard {
    seen: HashSet<u64>,
}

impl CursorGuard {
    /// An empty guard, for one listing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `cursor`; fails with [`ErrorKind::Source`] if it was seen before, naming
    /// `endpoint` and how many pages came first.
    pub fn check(&mut self, endpoint: &str, cursor: &str) -> Result<()> {
        let mut hasher = DefaultHasher::new();
        cursor.hash(&mut hasher);
        if self.seen.insert(hasher.finish()) {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Source,
            format!(
                "{endpoint} returned a next-page cursor it had already returned, after {} pages; stopping instead of looping",
                self.seen.len()
            ),
        )
        .with_context("endpoint", endpoint.to_string())
        .with_retryable(false))
    }

    /// How many distinct cursors were recorded.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no cursor was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{StreamExt, TryStreamExt};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn fetches_lazily() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let mut pages = Box::pin(paginate(0u32, move |n| {
            c.fetch_add(1, Ordering::SeqCst);
            async move { Ok((n, Some(n + 1))) }
        }));
        assert_eq!(pages.next().await.unwrap().unwrap(), 0);
        assert_eq!(pages.next().await.unwrap().unwrap(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn error_ends_the_stream() {
        let pages: Vec<Result<u32>> = paginate(0u32, |n| async move {
            if n == 2 { Err(Error::new(ErrorKind::Transient, "boom")) } else { Ok((n, Some(n + 1))) }
        })
        .collect()
        .await;
        assert_eq!(pages.len(), 3);
        assert!(pages[2].is_err());
    }

    #[tokio::test]
    async fn read_ahead_fetches_one_page_early_and_keeps_order() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let pages = paginate(0u32, move |n| {
            c.fetch_add(1, Ordering::SeqCst);
            async move { Ok((n, (n < 9).then_some(n + 1))) }
        });
        let mut ahead = Box::pin(read_ahead(pages));
        assert_eq!(ahead.next().await.unwrap().unwrap(), 0);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let fetched = calls.load(Ordering::SeqCst);
        assert!((2..=3).contains(&fetched), "bounded read-ahead, got {fetched}");
        let rest: Vec<u32> = ahead.try_collect().await.unwrap();
        assert_eq!(rest, (1..10).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn read_ahead_stops_after_an_error() {
        let pages = paginate(0u32, |n| async move {
            if n == 1 { Err(Error::new(ErrorKind::Transient, "boom")) } else { Ok((n, Some(n + 1))) }
        });
        let items: Vec<Result<u32>> = read_ahead(pages).collect().await;
        assert_eq!(items.len(), 2);
        assert!(items[1].is_err());
    }

    #[tokio::test]
    async fn cursor_loop_is_an_error() {
        let mut guard = CursorGuard::new();
        let result: Result<Vec<u32>> = paginate(0u32, move |n| {
            let next = format!("cursor-{}", n % 3);
            let checked = guard.check("/v1/things", &next).map(|_| (n, Some(n + 1)));
            async move { checked }
        })
        .try_collect()
        .await;
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Source);
        assert!(err.message().contains("after 3 pages"), "{err}");
        assert_eq!(err.context_value("endpoint"), Some("/v1/things"));
    }
}
