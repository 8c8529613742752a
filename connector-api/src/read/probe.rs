//! Whether a connector can read a source at all, asked the way a read would ask: the
//! source's own plan and the first page of its first chain. A connector's `check` probes
//! every selected source with this instead of keeping a second table of endpoints, so a
//! new source is probed the moment it is declared.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;

use super::{Plan, Source, StreamCtx};
use crate::Result;
use crate::read::emitter::Emitter;

/// Messages a probed plan emits (retries, a log line) are read and dropped as they come;
/// this many may wait to be.
const PROBE_MESSAGES: usize = 64;

/// Plans `source` from scratch (no saved cursor) with `ctx` and fetches the first page of
/// the plan's first chain; `Ok` when both answered. A plan that reads nothing is `Ok`.
///
/// Bounded: the plan's own requests and one page. Give `ctx` settings that make that page
/// small (Qlik's `check` asks for `limit=1`) and one chain (`max_concurrency` 1).
pub async fn probe<C: Send + Sync + 'static>(ctx: Arc<C>, source: &dyn Source<C>) -> Result<()> {
    let (tx, mut rx) = mpsc::channel(PROBE_MESSAGES);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let streams = source.streams();
    let selected: HashSet<String> = streams.iter().map(|s| s.name.to_string()).collect();
    let stream_ctx =
        StreamCtx { connector: ctx, resume: None, stream: streams[0].name, out: Emitter::new(tx, selected) };
    let outcome = first_page(source.plan(&stream_ctx).await).await;
    drop(stream_ctx);
    let _ = drain.await;
    outcome
}

async fn first_page(plan: Result<Plan>) -> Result<()> {
    let Some(mut chain) = plan?.chains.into_iter().next() else {
        return Ok(());
    };
    match chain.pages.next().await {
        Some(page) => page.map(drop),
        None => Ok(()),
    }
}
