//! What a stream's plan hands the engine: chains of pages, and how an item becomes records.

use std::sync::Arc;

use futures::stream::BoxStream;
use futures::{StreamExt, stream};
use serde_json::{Map, Value};

use crate::Result;
use crate::cursor::Cursor;
use crate::http::HttpEvent;
use crate::stream_def::StreamDef;

/// One page of a listing: its items, not yet mapped, and what the HTTP layer did while
/// fetching it (retries, throttling).
pub struct Page {
    pub(crate) items: Box<dyn Iterator<Item = Result<Map<String, Value>>> + Send>,
    pub(crate) events: Vec<HttpEvent>,
    /// How far on the cursor the source has been read with this page, when the source
    /// says so beyond its items (the end of an archived day, events or not).
    pub(crate) through: Option<Cursor>,
    /// What the operator should know about how this page was read (a fallback taken).
    pub(crate) warnings: Vec<String>,
}

impl Page {
    /// A page of `items` fetched with `events`. Items are taken lazily, so a connector may
    /// parse them as the engine consumes them, overlapping the request for the next page.
    pub fn new<I>(items: I, events: Vec<HttpEvent>) -> Page
    where
        I: IntoIterator<Item = Result<Map<String, Value>>>,
        I::IntoIter: Send + 'static,
    {
        Page { items: Box::new(items.into_iter()), events, through: None, warnings: Vec::new() }
    }

    /// Declares that, with this page, the source has been read up to `through` on the
    /// cursor, whatever its items: an ascending chain's checkpoint moves there even when the
    /// page is empty (an archived day without events), so an interrupted backfill resumes
    /// after the last day read.
    pub fn through(mut self, through: Cursor) -> Page {
        self.through = Some(through);
        self
    }

    /// Adds a warning the engine logs for the operator before the page's records: a chain
    /// that notices the source does not behave as it assumed (an order it asked for and did
    /// not get) says so where it takes its fallback, since a chain has no context to log to.
    pub fn warn(mut self, message: impl Into<String>) -> Page {
        self.warnings.push(message.into());
        self
    }

    /// The page's items and HTTP events, for a plan that reads a listing itself (a
    /// lookup its stream's listing depends on).
    pub fn into_parts(self) -> (impl Iterator<Item = Result<Map<String, Value>>> + Send, Vec<HttpEvent>) {
        (self.items, self.events)
    }
}

/// A listing's pages, fetched one after another as the engine asks for them.
pub type Pages = BoxStream<'static, Result<Page>>;

/// The records one source item becomes, by stream.
#[derive(Default)]
pub struct Records(Vec<(&'static str, Value)>);

impl Records {
    /// Adds `record` to stream `def`.
    pub fn push(&mut self, def: &'static StreamDef, record: Value) {
        self.0.push((def.name, record));
    }

    /// The records, by stream name, for a test of a mapping.
    pub fn into_vec(self) -> Vec<(&'static str, Value)> {
        self.0
    }

    pub(crate) fn drain(&mut self) -> std::vec::Drain<'_, (&'static str, Value)> {
        self.0.drain(..)
    }
}

/// One page holding `item`, which the plan fetched itself: a single-object endpoint (a
/// tenant, a settings document), whose requests the plan already reported.
pub fn once(item: Map<String, Value>) -> Pages {
    stream::iter([Ok(Page::new([Ok(item)], Vec::new()))]).boxed()
}

/// Turns one source item into records.
pub type Mapper = Arc<dyn Fn(Map<String, Value>, &mut Records) -> Result<()> + Send + Sync>;

/// How a chain's pages are ordered on the stream's cursor, which decides when its progress
/// may be checkpointed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Every page's items come at or after the previous page's on the cursor (the source
    /// sorts by it): the newest cursor so far may be saved after each page.
    Ascending,
    /// No order: the chain's newest cursor may be saved once it has been read to the end.
    Unordered,
}

/// One sequential chain of pages and how its items become records.
///
/// A stream's plan may hold several chains, read concurrently (bounded by the read's
/// concurrency): a listing per user status, or consecutive time slices of an event log.
/// For checkpoints, chains are in cursor order: every item of a chain comes at or after
/// every item of the chains before it, unless the chain is declared [`Chain::alongside`]
/// the one before it (a listing per event type over the same time range). A full-refresh
/// stream has no cursor, and its chains may split the listing any way.
pub struct Chain {
    pub(crate) pages: Pages,
    pub(crate) order: Order,
    pub(crate) alongside: bool,
    pub(crate) map: Mapper,
}

impl Chain {
    /// A chain whose items become records of the plan's streams through `map`.
    pub fn new(
        pages: Pages,
        map: impl Fn(Map<String, Value>, &mut Records) -> Result<()> + Send + Sync + 'static,
    ) -> Chain {
        Chain { pages, order: Order::Unordered, alongside: false, map: Arc::new(map) }
    }

    /// A chain whose every item is one record of `def`, mapped column for column.
    pub fn of(def: &'static StreamDef, pages: Pages) -> Chain {
        Chain::new(pages, move |item, out| {
            out.push(def, def.record(item, &[]));
            Ok(())
        })
    }

    /// Declares that the chain's pages ascend on the cursor.
    pub fn ascending(mut self) -> Chain {
        self.order = Order::Ascending;
        self
    }

    /// Declares that the chain covers the same stretch of the cursor as the chain before it
    /// in the plan, its items interleaved with that chain's rather than after them: one
    /// listing per event type over one time range. Such chains are read side by side and
    /// count for checkpoints as one: done when all are done, and, while they run, as far
    /// as the least advanced of them when all ascend.
    pub fn alongside(mut self) -> Chain {
        self.alongside = true;
        self
    }
}

/// A child listing per record of the stream's listing: a space's members, read for
/// every space.
///
/// The parent listing sends each parent's key as it reads it, and up to the read's
/// concurrency of child listings run meanwhile, so the read takes about as long as the
/// parent listing plus one parent's children. A parent that vanished between its listing
/// and its children's (the source answers not found) is skipped with a warning naming it:
/// the other parents' children still land.
pub struct FanOut {
    pub(crate) child: &'static StreamDef,
    pub(crate) parent_key: &'static str,
    pub(crate) open: Box<dyn Fn(&str) -> Chain + Send + Sync>,
}

impl FanOut {
    /// Reads `open(key)` into stream `child` for the value `key` of column `parent_key` of
    /// every parent record.
    pub fn new(
        child: &'static StreamDef,
        parent_key: &'static str,
        open: impl Fn(&str) -> Chain + Send + Sync + 'static,
    ) -> FanOut {
        FanOut { child, parent_key, open: Box::new(open) }
    }
}

/// What a stream's source reads this time: its chains and, optionally, a fan-out.
#[derive(Default)]
pub struct Plan {
    pub(crate) chains: Vec<Chain>,
    pub(crate) fan_out: Option<FanOut>,
}

impl Plan {
    /// A plan reading `chains`.
    pub fn chains(chains: impl IntoIterator<Item = Chain>) -> Plan {
        Plan { chains: chains.into_iter().collect(), fan_out: None }
    }

    /// A plan reading one chain.
    pub fn chain(chain: Chain) -> Plan {
        Plan::chains([chain])
    }

    /// A plan that reads nothing (the source has nothing for this stream; the plan said
    /// why in a log line).
    pub fn nothing() -> Plan {
        Plan::default()
    }

    /// Adds a fan-out over the plan's records.
    pub fn with_fan_out(mut self, fan_out: FanOut) -> Plan {
        self.fan_out = Some(fan_out);
        self
    }
}
