//! Reading the selected streams one after another, one page at a time.
//!
//! A read is a small state machine ([`Reader`]) turned into a stream with
//! `futures::stream::unfold`: each step either starts the next stream, takes one page
//! of the current one, or finishes it. Nothing runs until the host polls, and at most
//! three pages are held in memory (one emitted, one buffered, one arriving), however
//! large the directory.
//!
//! `users` reads incrementally with the filter `meta.lastModified gt "<checkpoint>"`.
//! SCIM servers are not required to sort, so pages come in no particular order of
//! modification: the checkpoint (the newest `lastModified` seen) is emitted once, after
//! the stream's last record, never mid-stream, where it could cover records not yet read.

use std::collections::VecDeque;

use connector_api::http::offset::{OffsetPage, paginate_offset};
use connector_api::http::{HttpEvent, read_ahead};
use connector_api::{
    ConfiguredCatalog, Error, ErrorKind, Message, MessageStream, Result, State, StreamEvent, SyncMode,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::client::ScimClient;
use crate::streams::{ScimStream, USERS_CURSOR};

/// One page as the reader consumes it: the resources, and what the HTTP layer did
/// (retries, throttling) while fetching them.
struct Page {
    resources: Vec<Value>,
    events: Vec<HttpEvent>,
}

/// A stream waiting to be read.
struct Job {
    stream: ScimStream,
    /// Only resources modified after this instant (incremental `users`).
    since: Option<OffsetDateTime>,
    incremental: bool,
}

/// The stream being read.
struct Listing {
    job: Job,
    pages: BoxStream<'static, Result<Page>>,
    records: u64,
    newest: Option<OffsetDateTime>,
}

/// The read's state between two polls.
struct Reader {
    client: ScimClient,
    page_size: u32,
    jobs: VecDeque<Job>,
    current: Option<Listing>,
}

/// Starts reading `catalog`'s streams in order, resuming `users` from `state`.
pub fn read(
    client: ScimClient,
    page_size: u32,
    catalog: &ConfiguredCatalog,
    state: &State,
) -> Result<MessageStream> {
    let jobs = catalog
        .streams
        .iter()
        .map(|configured| {
            let name = configured.stream.name.as_str();
            let stream = ScimStream::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = ScimStream::ALL.iter().map(|s| s.name()).collect();
                Error::new(ErrorKind::Config, format!("unknown stream `{name}`"))
                    .with_context("field", "streams")
                    .with_hint(format!("Known streams: {}", known.join(", ")))
            })?;
            let incremental = configured.sync_mode == SyncMode::Incremental && stream == ScimStream::Users;
            let since = if incremental { checkpoint(state.get(name))? } else { None };
            Ok(Job { stream, since, incremental })
        })
        .collect::<Result<VecDeque<_>>>()?;
    let reader = Reader { client, page_size, jobs, current: None };
    Ok(futures::stream::unfold(reader, |mut reader| async move {
        reader.step().await.map(|batch| (batch, reader))
    })
    .flat_map(futures::stream::iter)
    .boxed())
}

/// The instant a `users` checkpoint holds; `None` when there is no checkpoint yet.
fn checkpoint(value: Option<&Value>) -> Result<Option<OffsetDateTime>> {
    let Some(value) = value else { return Ok(None) };
    let parsed =
        value.get(USERS_CURSOR).and_then(Value::as_str).and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok());
    match parsed {
        Some(at) => Ok(Some(at)),
        None => {
            Err(Error::new(ErrorKind::Config, "the saved state of stream `users` is not a SCIM checkpoint")
                .with_context("stream", "users")
                .with_hint("Run once with --full-refresh to start the stream over"))
        }
    }
}

impl Reader {
    /// The messages of the next step, or `None` when the read is over.
    async fn step(&mut self) -> Option<Vec<Result<Message>>> {
        let Some(listing) = self.current.as_mut() else {
            let job = self.jobs.pop_front()?;
            let name = job.stream.name();
            self.current = Some(self.start(job));
            return Some(vec![Ok(Message::status(name, StreamEvent::Started))]);
        };
        let name = listing.job.stream.name();
        match listing.pages.next().await {
            Some(Ok(page)) => match listing.absorb(page) {
                Ok(messages) => Some(messages),
                Err(err) => Some(self.fail(name, err)),
            },
            Some(Err(err)) => Some(self.fail(name, err)),
            None => {
                let done = self.current.take()?;
                Some(done.finish())
            }
        }
    }

    /// Opens the listing behind `job`: the pages come through the shared offset pager,
    /// and `read_ahead` keeps the next page in flight while this one is emitted.
    fn start(&self, job: Job) -> Listing {
        let client = self.client.clone();
        let count = self.page_size;
        let resource = job.stream.resource();
        let filter = job.since.map(|at| format!("meta.lastModified gt \"{}\"", format_time(at)));
        let pages = paginate_offset(1, move |start_index| {
            let client = client.clone();
            let filter = filter.clone();
            async move {
                let mut events = Vec::new();
                let list = client.list(resource, start_index, count, filter.as_deref(), &mut events).await?;
                tracing::debug!(
                    resource,
                    start_index,
                    returned = list.resources.len(),
                    total = list.total_results,
                    "Fetched SCIM page"
                );
                Ok(OffsetPage {
                    returned: list.resources.len() as u64,
                    total: Some(list.total_results),
                    items: Page { resources: list.resources, events },
                })
            }
        });
        Listing { job, pages: read_ahead(pages).boxed(), records: 0, newest: None }
    }

    /// Ends the current stream with a status event saying why it failed; the read goes
    /// on with the next stream.
    fn fail(&mut self, stream: &str, err: Error) -> Vec<Result<Message>> {
        self.current = None;
        let err = err.with_context("stream", stream);
        tracing::warn!(stream, kind = %err.kind(), error = %err.message(), "Stream failed");
        vec![Ok(Message::status(stream, StreamEvent::failed(&err)))]
    }
}

impl Listing {
    /// The messages of one page: what the HTTP layer did, the records, the page count.
    fn absorb(&mut self, page: Page) -> Result<Vec<Result<Message>>> {
        let name = self.job.stream.name();
        let mut messages: Vec<Result<Message>> =
            page.events.iter().map(|e| Ok(Message::status(name, e.to_stream_event()))).collect();
        let before = self.records;
        for resource in &page.resources {
            for record in self.job.stream.records(resource)? {
                if self.job.incremental
                    && let Some(at) = record.get(USERS_CURSOR).and_then(Value::as_str)
                    && let Ok(at) = OffsetDateTime::parse(at, &Rfc3339)
                {
                    self.newest = self.newest.max(Some(at));
                }
                self.records += 1;
                messages.push(Ok(Message::record(name, record)));
            }
        }
        messages.push(Ok(Message::status(name, StreamEvent::PageFetched { records: self.records - before })));
        Ok(messages)
    }

    /// The checkpoint (incremental streams) and the completion event.
    fn finish(self) -> Vec<Result<Message>> {
        let name = self.job.stream.name();
        let mut messages = Vec::new();
        if self.job.incremental
            && let Some(at) = self.newest.max(self.job.since)
        {
            messages.push(Ok(Message::state(name, json!({ USERS_CURSOR: format_time(at) }))));
        }
        messages.push(Ok(Message::status(name, StreamEvent::Completed { records: self.records })));
        messages
    }
}

fn format_time(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips_and_rejects_garbage() {
        let at = checkpoint(Some(&json!({"last_modified": "2024-01-02T08:05:00Z"}))).unwrap().unwrap();
        assert_eq!(format_time(at), "2024-01-02T08:05:00Z");
        assert_eq!(checkpoint(None).unwrap(), None);
        let err = checkpoint(Some(&json!({"cursor": 3}))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.hint().unwrap().contains("--full-refresh"));
    }
}
