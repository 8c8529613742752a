//! Running a read: every selected source as a task, its chains behind the shared permits,
//! all feeding one bounded channel that becomes the [`MessageStream`].

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::{FutureExt, StreamExt, TryStreamExt};
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore, SemaphorePermit, mpsc};
use tokio::task::JoinSet;

use super::chain::{Chain, FanOut, Page, Plan, Records};
use super::emitter::Emitter;
use super::progress::Progress;
use super::{Source, StreamCtx};
use crate::cursor::Cursor;
use crate::stream_def::StreamDef;
use crate::{
    ConfiguredCatalog, Error, ErrorKind, LogLevel, MessageStream, Result, State, StreamEvent, SyncMode,
};

/// Messages buffered between the sources and the host.
const CHANNEL_CAPACITY: usize = 512;

/// Parent keys waiting for their children to be read.
const PENDING_PARENTS: usize = 1024;

/// How a read runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Chains (and plans) in flight at once, across every source; also the number of a
    /// fan-out's child listings in flight. Permits are handed out in the order asked for,
    /// and a source's plan hands its own to the source's first chain: with 1, sources of
    /// one chain are read one after another, in order, and a source's further chains
    /// follow the plans already waiting.
    pub max_concurrency: usize,
}

impl Default for Options {
    /// One request in flight, one source after another: the safe start for an API whose
    /// limits are not known; a connector raises it where the API allows (Qlik: 8).
    fn default() -> Self {
        Options { max_concurrency: 1 }
    }
}

/// Starts reading the streams `catalog` selects from `sources`, resuming incremental
/// streams from `state`, and returns the message stream.
///
/// A selected stream no source feeds is a [`ErrorKind::Config`] error listing the known
/// streams. So is a saved checkpoint of a selected incremental stream that is not this
/// engine's (`{"<cursor>": "<RFC 3339>"}`): the state is the caller's input (a Singer
/// `--state`, an Airbyte state, the hub's), and a wrong input stops the read before any
/// stream starts, the same way whichever protocol passed it.
pub fn read<C: Send + Sync + 'static>(
    ctx: Arc<C>,
    sources: &'static [&'static dyn Source<C>],
    catalog: &ConfiguredCatalog,
    state: &State,
    options: Options,
) -> Result<MessageStream> {
    let known: Vec<&str> = sources.iter().flat_map(|s| s.streams()).map(|d| d.name).collect();
    let mut selected = HashSet::new();
    for configured in &catalog.streams {
        let name = configured.stream.name.as_str();
        if !known.contains(&name) {
            return Err(Error::new(ErrorKind::Config, format!("unknown stream `{name}`"))
                .with_context("field", "streams")
                .with_hint(format!("Known streams: {}", known.join(", "))));
        }
        selected.insert(name.to_string());
    }
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let out = Emitter::new(tx, selected);
    let permits = Arc::new(Semaphore::new(options.max_concurrency.max(1)));
    let mut planned = Vec::new();
    for source in sources.iter().copied() {
        let streams: Vec<&'static str> =
            source.streams().iter().map(|d| d.name).filter(|s| out.wants(s)).collect();
        if streams.is_empty() {
            continue;
        }
        let primary = source.streams()[0];
        let incremental = catalog.stream(primary.name).is_some_and(|s| s.sync_mode == SyncMode::Incremental);
        let resume = match (incremental, primary.cursor) {
            (true, Some(cursor)) => saved_cursor(primary.name, cursor, state.get(primary.name))?,
            _ => None,
        };
        planned.push((source, streams, resume));
    }
    let mut tasks = JoinSet::new();
    for (source, streams, resume) in planned {
        let run = SourceRun { source, out: out.clone(), permits: permits.clone(), options };
        let ctx = ctx.clone();
        tasks.spawn(async move {
            for s in &streams {
                if run.out.status(s, StreamEvent::Started).await.is_err() {
                    return;
                }
            }
            // A panic in a connector's plan or mapper fails its streams like any other
            // error, instead of leaving them started and never finished.
            let result = AssertUnwindSafe(run.run(ctx, resume))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".to_string());
                    Err(Error::internal(format!("the connector panicked: {what}")))
                })
                .map_err(|err| err.with_context("stream", streams.join(", ")));
            for s in &streams {
                let event = match &result {
                    Ok(()) => StreamEvent::Completed { records: run.out.count(s) },
                    Err(err) => StreamEvent::failed(err),
                };
                if run.out.status(s, event).await.is_err() {
                    return;
                }
            }
            if let Err(err) = result {
                tracing::warn!(streams = %streams.join(","), kind = %err.kind(), error = %err.message(), "Stream failed");
            }
        });
    }
    drop(out);
    let stream = futures::stream::unfold((rx, tasks), |(mut rx, tasks)| async move {
        let item = rx.recv().await?;
        Some((item, (rx, tasks)))
    });
    Ok(Box::pin(stream))
}

/// The cursor value of `record`, a record of `def`, whose cursor column is `cursor`.
///
/// A record without a readable cursor fails its stream: loaded, it would sit outside every
/// later incremental window (none of them asks for "no time"), so it could never be
/// updated or removed by an incremental run, and a checkpoint cannot be placed after it.
fn cursor_of(def: &StreamDef, cursor: &str, record: &Value) -> Result<Cursor> {
    let mut value = record.get(cursor);
    if let Some(at) = value.and_then(Value::as_str).and_then(Cursor::parse) {
        return Ok(at);
    }
    // A value of the wrong type was moved to `_extra` under its source name by the mapping.
    let source = def.fields.iter().find(|f| f.column == cursor).and_then(|f| f.source);
    if value.is_none_or(Value::is_null)
        && let Some(original) = source.and_then(|s| record.get(crate::stream_def::EXTRA)?.get(s))
    {
        value = Some(original);
    }
    let found = match value {
        None | Some(Value::Null) => "it is missing or null".to_string(),
        Some(Value::String(s)) => {
            format!("`{}` is not an RFC 3339 time", s.chars().take(40).collect::<String>())
        }
        Some(Value::Number(_)) => "it is a number, not an RFC 3339 time".to_string(),
        Some(Value::Bool(_)) => "it is a boolean, not an RFC 3339 time".to_string(),
        Some(Value::Array(_)) => "it is an array, not an RFC 3339 time".to_string(),
        Some(Value::Object(_)) => "it is an object, not an RFC 3339 time".to_string(),
    };
    let key: Vec<String> = def
        .primary_key
        .iter()
        .map(|k| format!("{k}={}", record.get(*k).map(Value::to_string).unwrap_or_else(|| "?".into())))
        .collect();
    Err(Error::new(
        ErrorKind::Source,
        format!(
            "stream {}: record {} has no usable `{cursor}`, the stream's incremental cursor: {found}",
            def.name,
            key.join(", ")
        ),
    )
    .with_context("stream", def.name.to_string())
    .with_context("field", cursor.to_string())
    .with_hint(
        "The source sent a record an incremental sync cannot place in time; the stream fails and its checkpoint does not move past this record. Report the record to the source's owner",
    ))
}

/// The cursor a saved checkpoint of `stream` holds.
fn saved_cursor(stream: &str, cursor: &str, saved: Option<&Value>) -> Result<Option<Cursor>> {
    let Some(saved) = saved.filter(|v| !v.is_null()) else { return Ok(None) };
    match Cursor::from_state(saved, cursor) {
        Some(at) => Ok(Some(at)),
        None => Err(Error::new(
            ErrorKind::Config,
            format!("the saved state of stream `{stream}` is not a checkpoint of its cursor `{cursor}`"),
        )
        .with_context("stream", stream)
        .with_context("field", "state")
        .with_hint(
            "Start the stream over without its saved state: `connector-host run --full-refresh --streams <stream>` for a hub, or leave the stream's bookmark out of the state passed in",
        )),
    }
}

/// A parent key as text: a string as it is, a number as written; `None` for null and
/// anything else, which names no parent.
fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Where a listing with a fan-out sends its parents' keys.
struct Fanning {
    /// The parent column holding the key.
    key: &'static str,
    /// The child stream, whose pages the children's side reports.
    child: &'static str,
    keys: mpsc::Sender<String>,
}

/// One source's read.
struct SourceRun<C: 'static> {
    source: &'static dyn Source<C>,
    out: Emitter,
    permits: Arc<Semaphore>,
    options: Options,
}

impl<C: Send + Sync + 'static> SourceRun<C> {
    fn streams(&self) -> &'static [&'static StreamDef] {
        self.source.streams()
    }

    fn primary(&self) -> &'static StreamDef {
        self.streams()[0]
    }

    async fn permit(&self) -> Result<SemaphorePermit<'_>> {
        self.permits.acquire().await.map_err(|_| Error::internal("the read was stopped"))
    }

    async fn run(&self, ctx: Arc<C>, resume: Option<Cursor>) -> Result<()> {
        // The plan's permit goes on to the first chain, so a source that has planned reads
        // at once instead of queueing again behind every other source's plan: with one
        // permit, sources are read one after another; with more, the long chains start
        // early.
        let permit = self.permit().await?;
        let plan = {
            let ctx = StreamCtx {
                connector: ctx,
                resume: resume.clone(),
                stream: self.primary().name,
                out: self.out.clone(),
            };
            self.source.plan(&ctx).await?
        };
        let Plan { chains, fan_out } = plan;
        let fan_out = fan_out.filter(|f| self.out.wants(f.child.name));
        let progress = Mutex::new(Progress::new(chains.iter().map(|c| (c.order, c.alongside)), resume));
        let (keys_tx, keys_rx) = mpsc::channel::<String>(PENDING_PARENTS);
        let fanning =
            fan_out.as_ref().map(|f| Fanning { key: f.parent_key, child: f.child.name, keys: keys_tx });
        let parents = async {
            // Owned here, so the children's side sees the keys end when the parents do.
            let fanning = fanning;
            let mut permit = Some(permit);
            let reads: Vec<_> = chains
                .into_iter()
                .enumerate()
                .map(|(i, chain)| self.chain(i, chain, permit.take(), &progress, fanning.as_ref()).boxed())
                .collect();
            futures::future::try_join_all(reads).await.map(drop)
        };
        let children = async {
            match &fan_out {
                Some(fan_out) => self.children(fan_out, keys_rx).await,
                None => Ok(()),
            }
        };
        futures::try_join!(parents, children)?;
        match progress.into_inner().unreported() {
            Some(at) => self.checkpoint(&at).await,
            None => Ok(()),
        }
    }

    /// Reads chain `i` to its end under `permit`, or one it waits for.
    async fn chain(
        &self,
        i: usize,
        chain: Chain,
        permit: Option<SemaphorePermit<'_>>,
        progress: &Mutex<Progress>,
        fanning: Option<&Fanning>,
    ) -> Result<()> {
        let _permit = match permit {
            Some(permit) => permit,
            None => self.permit().await?,
        };
        let Chain { mut pages, map, .. } = chain;
        let primary = self.primary();
        let mut records = Records::default();
        let mut newest: Option<Cursor> = None;
        while let Some(Page { items, events, through, warnings }) = pages.try_next().await? {
            self.out.http_events(primary.name, &events).await?;
            for warning in warnings {
                self.out.log(LogLevel::Warn, warning).await?;
            }
            if let Some(through) = through {
                Cursor::advance(&mut newest, through);
            }
            let mut counts = vec![0u64; self.streams().len()];
            for item in items {
                map(item?, &mut records)?;
                for (stream, record) in records.drain() {
                    if stream == primary.name {
                        if let Some(cursor) = primary.cursor {
                            Cursor::advance(&mut newest, cursor_of(primary, cursor, &record)?);
                        }
                        if let Some(fanning) = fanning
                            && let Some(key) = record.get(fanning.key).and_then(key_text)
                        {
                            let sent = fanning.keys.send(key).await;
                            sent.map_err(|_| Error::internal("the fan-out stopped"))?;
                        }
                    }
                    if let Some(n) = self.streams().iter().position(|d| d.name == stream) {
                        counts[n] += 1;
                    }
                    self.out.record(stream, record).await?;
                }
            }
            for (def, n) in self.streams().iter().zip(counts) {
                if fanning.is_none_or(|f| f.child != def.name) {
                    self.out.status(def.name, StreamEvent::PageFetched { records: n }).await?;
                }
            }
            if primary.cursor.is_some() {
                let mut progress = progress.lock().await;
                if let Some(at) = progress.page(i, newest.as_ref()) {
                    self.checkpoint(&at).await?;
                }
            }
        }
        if primary.cursor.is_some() {
            let mut progress = progress.lock().await;
            if let Some(at) = progress.done(i) {
                self.checkpoint(&at).await?;
            }
        }
        Ok(())
    }

    async fn checkpoint(&self, at: &Cursor) -> Result<()> {
        let primary = self.primary();
        match primary.cursor {
            Some(cursor) => self.out.state(primary.name, at.to_state(cursor)).await,
            None => Ok(()),
        }
    }

    /// Reads every parent's children as the parents' keys arrive.
    async fn children(&self, fan_out: &FanOut, keys: mpsc::Receiver<String>) -> Result<()> {
        let keys =
            futures::stream::unfold(keys, |mut rx| async move { rx.recv().await.map(|key| (key, rx)) });
        let mut fetched = std::pin::pin!(
            keys.map(|key| {
                let Chain { pages, map, .. } = (fan_out.open)(&key);
                pages.try_collect::<Vec<Page>>().map(move |pages| (key, pages, map))
            })
            .buffer_unordered(self.options.max_concurrency.max(1))
        );
        let child = fan_out.child;
        let mut records = Records::default();
        while let Some((key, pages, map)) = fetched.next().await {
            let pages = match pages {
                Err(err) if err.kind() == ErrorKind::NotFound => {
                    let parent = self.primary().name;
                    tracing::warn!(parent, key = %key, "Parent vanished during the read");
                    let warning = format!(
                        "{parent} {key} was deleted (or hidden from this key) after its listing; its {} are skipped: {}",
                        child.name,
                        err.message()
                    );
                    self.out.log(LogLevel::Warn, warning).await?;
                    continue;
                }
                other => other?,
            };
            for page in pages {
                let (items, events) = page.into_parts();
                self.out.http_events(child.name, &events).await?;
                let mut n = 0;
                for item in items {
                    map(item?, &mut records)?;
                    for (stream, record) in records.drain() {
                        n += u64::from(stream == child.name);
                        self.out.record(stream, record).await?;
                    }
                }
                self.out.status(child.name, StreamEvent::PageFetched { records: n }).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use futures::StreamExt;
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::Access;
    use crate::read::{Chain, FanOut, Pages, Plan, Source};
    use crate::stream_def::{StreamDef, Ty, col};
    use crate::{Catalog, Message};

    const EVENTS: StreamDef = StreamDef {
        name: "events",
        description: "Events.",
        primary_key: &["id"],
        cursor: Some("at"),
        access: Access::Everyone,
        fields: &[col("id", "id", Ty::String, "Id."), col("at", "at", Ty::DateTime, "When.")],
        consumed: &[],
    };
    const PARENTS: StreamDef = StreamDef {
        name: "parents",
        description: "Parents.",
        primary_key: &["id"],
        cursor: None,
        access: Access::Everyone,
        fields: &[col("id", "id", Ty::String, "Id.")],
        consumed: &[],
    };
    const CHILDREN: StreamDef = StreamDef {
        name: "children",
        description: "Children.",
        primary_key: &["id"],
        cursor: None,
        access: Access::Everyone,
        fields: &[col("id", "id", Ty::String, "Id.")],
        consumed: &[],
    };

    fn item(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    /// Pages of `ids` (two per page) stamped one second apart, then `fail` if given.
    fn pages(ids: &[&str], fail: Option<ErrorKind>) -> Pages {
        let mut pages: Vec<Result<Page>> = ids
            .chunks(2)
            .map(|chunk| {
                let items: Vec<Result<Map<String, Value>>> = chunk
                    .iter()
                    .map(|id| Ok(item(json!({"id": id, "at": format!("2026-01-01T00:00:{id}Z")}))))
                    .collect();
                Ok(Page::new(items, Vec::new()))
            })
            .collect();
        if let Some(kind) = fail {
            pages.push(Err(Error::new(kind, "the source broke")));
        }
        futures::stream::iter(pages).boxed()
    }

    /// Events in two ascending slices, read at once: 10–13, then 20–21.
    struct Events;

    #[async_trait]
    impl Source<()> for Events {
        fn streams(&self) -> &'static [&'static StreamDef] {
            &[&EVENTS]
        }

        async fn plan(&self, ctx: &StreamCtx<()>) -> Result<Plan> {
            let first = match &ctx.resume {
                Some(at) if at.raw() >= "2026-01-01T00:00:13Z" => vec![],
                _ => vec!["10", "11", "12", "13"],
            };
            Ok(Plan::chains([
                Chain::of(&EVENTS, pages(&first, None)).ascending(),
                Chain::of(&EVENTS, pages(&["20", "21"], None)).ascending(),
            ]))
        }
    }

    /// Parents a, b, c; b vanished before its children were read, c's children fail.
    struct Family {
        broken_child: Option<ErrorKind>,
    }

    #[async_trait]
    impl Source<()> for Family {
        fn streams(&self) -> &'static [&'static StreamDef] {
            &[&PARENTS, &CHILDREN]
        }

        async fn plan(&self, _: &StreamCtx<()>) -> Result<Plan> {
            let broken = self.broken_child;
            let children = FanOut::new(&CHILDREN, "id", move |parent| {
                let kids: Vec<String> = (1..=3).map(|n| format!("{parent}{n}")).collect();
                let kids: Vec<&str> = kids.iter().map(String::as_str).collect();
                let fail = match parent {
                    "b" => Some(ErrorKind::NotFound),
                    "c" => broken,
                    _ => None,
                };
                let ids = if parent == "b" { vec![] } else { kids };
                let items: Vec<Result<Map<String, Value>>> =
                    ids.iter().map(|id| Ok(item(json!({"id": id})))).collect();
                let mut pages = vec![Ok(Page::new(items, Vec::new()))];
                if let Some(kind) = fail {
                    pages = vec![Err(Error::new(kind, format!("{parent} is gone")))];
                }
                Chain::of(&CHILDREN, futures::stream::iter(pages).boxed())
            });
            Ok(Plan::chain(Chain::of(&PARENTS, pages(&["a", "b", "c"], None))).with_fan_out(children))
        }
    }

    async fn read_all(sources: &'static [&'static dyn Source<()>], state: &State) -> Result<Vec<Message>> {
        let streams = sources.iter().flat_map(|s| s.streams()).map(|d| d.descriptor()).collect();
        let catalog = Catalog { streams }.configure(None, false)?;
        let read = read(Arc::new(()), sources, &catalog, state, Options { max_concurrency: 2 })?;
        Ok(read.map(|m| m.unwrap()).collect().await)
    }

    fn states(messages: &[Message]) -> Vec<String> {
        messages
            .iter()
            .filter_map(|m| match m {
                Message::State(c) => Some(c.value["at"].as_str().unwrap().to_string()),
                _ => None,
            })
            .collect()
    }

    fn last_event(messages: &[Message], stream: &str) -> StreamEvent {
        messages
            .iter()
            .rev()
            .find_map(|m| match m {
                Message::Status(s) if s.stream == stream => Some(s.event.clone()),
                _ => None,
            })
            .unwrap()
    }

    /// Every checkpoint comes after every record at or before its cursor.
    fn assert_no_checkpoint_ahead(messages: &[Message]) {
        let at_of = |m: &Message| match m {
            Message::Record(r) => r.data["at"].as_str().map(str::to_string),
            _ => None,
        };
        for (i, m) in messages.iter().enumerate() {
            if let Message::State(c) = m {
                let at = c.value["at"].as_str().unwrap();
                let pending: Vec<String> =
                    messages[i..].iter().filter_map(at_of).filter(|r| r.as_str() <= at).collect();
                assert!(pending.is_empty(), "checkpoint {at} is ahead of {pending:?}");
            }
        }
    }

    /// Two event types over the same seconds, one listing each, read side by side.
    struct Interleaved;

    #[async_trait]
    impl Source<()> for Interleaved {
        fn streams(&self) -> &'static [&'static StreamDef] {
            &[&EVENTS]
        }

        async fn plan(&self, _: &StreamCtx<()>) -> Result<Plan> {
            let slow = futures::stream::iter(["11", "13", "15", "17"].chunks(2).collect::<Vec<_>>())
                .then(|ids| async move {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    pages(ids, None).next().await.unwrap()
                })
                .boxed();
            Ok(Plan::chains([
                Chain::of(&EVENTS, pages(&["10", "12", "14", "16", "18", "19"], None)).ascending(),
                Chain::of(&EVENTS, slow).ascending().alongside(),
            ]))
        }
    }

    #[tokio::test]
    async fn listings_alongside_each_other_checkpoint_as_far_as_the_slowest() {
        static SOURCES: &[&dyn Source<()>] = &[&Interleaved];
        let messages = read_all(SOURCES, &State::default()).await.unwrap();
        assert_eq!(last_event(&messages, "events"), StreamEvent::Completed { records: 10 });
        assert_no_checkpoint_ahead(&messages);
        let states = states(&messages);
        assert_eq!(states.last().map(String::as_str), Some("2026-01-01T00:00:19Z"));
        assert!(states.len() >= 2, "checkpoints while both run, not only at the end: {states:?}");
    }

    #[tokio::test]
    async fn slices_are_checkpointed_only_through_the_completed_prefix() {
        static SOURCES: &[&dyn Source<()>] = &[&Events];
        let messages = read_all(SOURCES, &State::default()).await.unwrap();
        let records: Vec<&Value> = messages
            .iter()
            .filter_map(|m| match m {
                Message::Record(r) => Some(&r.data),
                _ => None,
            })
            .collect();
        assert_eq!(records.len(), 6);
        assert_eq!(last_event(&messages, "events"), StreamEvent::Completed { records: 6 });
        let states = states(&messages);
        assert_eq!(states.last().map(String::as_str), Some("2026-01-01T00:00:21Z"));
        assert_no_checkpoint_ahead(&messages);
        let mut state = State::default();
        state.set("events", json!({"at": "2026-01-01T00:00:13Z"}));
        let resumed = read_all(SOURCES, &state).await.unwrap();
        assert_eq!(
            resumed.iter().filter(|m| matches!(m, Message::Record(_))).count(),
            2,
            "the plan saw the cursor"
        );
    }

    #[tokio::test]
    async fn a_saved_state_of_another_shape_stops_the_read_before_any_stream() {
        static SOURCES: &[&dyn Source<()>] = &[&Events, &Family { broken_child: None }];
        let mut state = State::default();
        state.set("events", json!({"cursor": 3}));
        let Err(err) = read_all(SOURCES, &state).await else { panic!("the read started") };
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(err.context_value("stream"), Some("events"));
        assert!(err.hint().unwrap().contains("--full-refresh"));
    }

    #[tokio::test]
    async fn a_vanished_parent_is_skipped_and_a_failing_child_fails_its_source() {
        static SKIPPED: &[&dyn Source<()>] = &[&Family { broken_child: None }];
        let messages = read_all(SKIPPED, &State::default()).await.unwrap();
        assert_eq!(last_event(&messages, "children"), StreamEvent::Completed { records: 6 });
        let warned = messages
            .iter()
            .any(|m| matches!(m, Message::Log(l) if l.message.starts_with("parents b was deleted")));
        assert!(warned, "the skipped parent is named");

        static BROKEN: &[&dyn Source<()>] = &[&Family { broken_child: Some(ErrorKind::Transient) }];
        let messages = read_all(BROKEN, &State::default()).await.unwrap();
        for stream in ["parents", "children"] {
            assert!(
                matches!(
                    last_event(&messages, stream),
                    StreamEvent::Failed { kind: ErrorKind::Transient, .. }
                ),
                "{stream}"
            );
        }
    }

    /// Panics in its mapper.
    struct Panics;

    #[async_trait]
    impl Source<()> for Panics {
        fn streams(&self) -> &'static [&'static StreamDef] {
            &[&PARENTS]
        }

        async fn plan(&self, _: &StreamCtx<()>) -> Result<Plan> {
            Ok(Plan::chain(Chain::new(pages(&["a"], None), |_, _| panic!("mapper bug"))))
        }
    }

    #[tokio::test]
    async fn a_panicking_connector_fails_its_streams_and_says_so() {
        static SOURCES: &[&dyn Source<()>] = &[&Panics];
        let messages = read_all(SOURCES, &State::default()).await.unwrap();
        let StreamEvent::Failed { kind, message, .. } = last_event(&messages, "parents") else {
            panic!("not failed")
        };
        assert_eq!(kind, ErrorKind::Internal);
        assert!(message.contains("mapper bug"), "{message}");
    }

    #[test]
    fn numeric_parent_keys_are_keys() {
        assert_eq!(key_text(&json!(42)), Some("42".to_string()));
        assert_eq!(key_text(&json!("s1")), Some("s1".to_string()));
        assert_eq!(key_text(&Value::Null), None);
    }

    #[tokio::test]
    async fn a_stream_no_source_feeds_is_a_config_error_naming_the_known_ones() {
        static SOURCES: &[&dyn Source<()>] = &[&Events];
        let mut descriptor = EVENTS.descriptor();
        descriptor.name = "evnets".into();
        let catalog = Catalog { streams: vec![descriptor] }.configure(None, false).unwrap();
        let err = read(Arc::new(()), SOURCES, &catalog, &State::default(), Options { max_concurrency: 1 })
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert_eq!(err.hint(), Some("Known streams: events"));
    }
}
