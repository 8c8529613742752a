//! The read engine: a connector declares its streams, the engine reads them.
//!
//! A connector describes each of its sources (an endpoint and the streams it feeds) as a
//! [`Source`]: the [`StreamDef`]s it fills and a [`Source::plan`] that, given where the
//! stream resumes, names the [`Chain`]s of pages to read (and, for parent/child
//! listings, a [`FanOut`]). The engine owns everything else, the same way for every
//! connector:
//!
//! - `Started`, a `PageFetched` per page, `Completed` with the record count, or `Failed`
//!   with the error's kind and hint, for every selected stream;
//! - retries and throttling reported as they happen ([`Emitter::http_events`]);
//! - checkpoints: the cursor column of the source's first stream is tracked on every
//!   record, and saved after each page of an ascending chain or at the end of the others,
//!   never ahead of the records ([`Order`]); a run resumes from the saved cursor, which
//!   the plan receives as [`StreamCtx::resume`];
//! - concurrency: sources and chains run at once, each holding one of
//!   [`Options::max_concurrency`] permits, all feeding one bounded channel, so memory stays
//!   flat whatever the source's size (a producer faster than the host waits on the
//!   channel);
//! - failure per source: a source that fails marks its streams failed and the others go
//!   on; dropping the message stream stops every task.

mod chain;
mod emitter;
mod engine;
mod probe;
mod progress;

use std::sync::Arc;

use async_trait::async_trait;

pub use chain::{Chain, FanOut, Mapper, Order, Page, Pages, Plan, Records, once};
pub use emitter::Emitter;
pub use engine::{Options, read};
pub use probe::probe;

use crate::cursor::Cursor;
use crate::http::HttpEvent;
use crate::stream_def::StreamDef;
use crate::{LogLevel, Result};

/// One source of a connector: an endpoint and the streams it feeds.
///
/// `C` is what the connector's plans need to build requests: its HTTP client and
/// settings, shared by every source of a read.
#[async_trait]
pub trait Source<C>: Send + Sync {
    /// The streams this source feeds. The first is the listing's own (its cursor, if any,
    /// is the source's checkpoint); the others are split from the same items (a user's
    /// roles) or read by the plan's fan-out (a space's members).
    fn streams(&self) -> &'static [&'static StreamDef];

    /// What to read this time. Requests a plan makes itself (a settings lookup, a list of
    /// event types) report their retries through `ctx`.
    async fn plan(&self, ctx: &StreamCtx<C>) -> Result<Plan>;
}

/// The catalog of `sources`: each stream's descriptor, in the sources' order.
pub fn catalog<C>(sources: &[&dyn Source<C>]) -> crate::Catalog {
    crate::Catalog { streams: sources.iter().flat_map(|s| s.streams()).map(|d| d.descriptor()).collect() }
}

/// What a [`Source::plan`] gets.
pub struct StreamCtx<C> {
    /// The connector's own context, shared by every source of a read: its client and
    /// settings (Qlik's `Tenant`, SCIM's server).
    pub connector: Arc<C>,
    /// The saved cursor an incremental read resumes from; `None` on a full refresh or a
    /// first run.
    pub resume: Option<Cursor>,
    stream: &'static str,
    out: Emitter,
}

impl<C> StreamCtx<C> {
    /// Reports what the HTTP layer did for a request the plan made.
    pub async fn http_events(&self, events: &[HttpEvent]) -> Result<()> {
        self.out.http_events(self.stream, events).await
    }

    /// Tells the operator something about this stream (a skipped part, a fallback).
    pub async fn log(&self, level: LogLevel, message: impl Into<String>) -> Result<()> {
        self.out.log(level, message).await
    }

    /// Whether `stream` was selected.
    pub fn wants(&self, stream: &str) -> bool {
        self.out.wants(stream)
    }
}
