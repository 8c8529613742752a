//! Running a read: one task per source endpoint ("job"), at most `max_concurrency` at a
//! time, all feeding one bounded channel that becomes the [`MessageStream`].
//!
//! The channel's bound is what keeps memory flat: a job that produces faster than the
//! host consumes waits on `send`, so at most a page per job plus the channel's capacity
//! is in memory, whatever the tenant's size. A job that fails after retries reports a
//! `Failed` status for each of its streams and the other jobs go on, so one endpoint's
//! failure never discards the rest; dropping the stream aborts every job.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connector_api::http::HttpEvent;
use connector_api::{
    ConfiguredCatalog, Error, ErrorKind, Message, MessageStream, Result, State, StreamEvent, SyncMode,
};
use serde_json::{Map, Value};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use url::Url;

use crate::client::QlikClient;
use crate::config::Settings;
use crate::pagination::pages;
use crate::streams::{self, StreamDef};

/// Messages buffered between the jobs and the host.
const CHANNEL_CAPACITY: usize = 512;

/// Where a job's messages go, counting records per stream.
#[derive(Clone)]
pub struct Out {
    tx: mpsc::Sender<Result<Message>>,
    selected: Arc<HashSet<&'static str>>,
    counts: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl Out {
    /// Whether `stream` was selected.
    pub fn wants(&self, stream: &str) -> bool {
        self.selected.contains(stream)
    }

    async fn send(&self, message: Message) -> Result<()> {
        self.tx.send(Ok(message)).await.map_err(|_| Error::internal("the reader stopped listening"))
    }

    /// Emits a record of `stream` if it was selected.
    pub async fn record(&self, stream: &'static str, data: Value) -> Result<()> {
        if !self.wants(stream) {
            return Ok(());
        }
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()).entry(stream).or_default() += 1;
        self.send(Message::record(stream, data)).await
    }

    /// Emits a status event of `stream` if it was selected.
    pub async fn status(&self, stream: &'static str, event: StreamEvent) -> Result<()> {
        if !self.wants(stream) {
            return Ok(());
        }
        self.send(Message::status(stream, event)).await
    }

    /// Reports retries and throttling while fetching a page of `stream`; waits in the
    /// rate limiter are summed into one `Throttled` event.
    pub async fn http_events(&self, stream: &'static str, events: &[HttpEvent]) -> Result<()> {
        let mut throttled = Duration::ZERO;
        for event in events {
            match event {
                HttpEvent::Throttled(wait) => throttled += *wait,
                retrying => self.status(stream, retrying.to_stream_event()).await?,
            }
        }
        if !throttled.is_zero() {
            self.status(stream, StreamEvent::Throttled { wait: throttled }).await?;
        }
        Ok(())
    }

    /// Emits a log line for the operator.
    pub async fn log(&self, level: connector_api::LogLevel, message: impl Into<String>) -> Result<()> {
        self.send(Message::log(level, message)).await
    }

    /// Emits a checkpoint of `stream`.
    pub async fn state(&self, stream: &'static str, value: Value) -> Result<()> {
        if !self.wants(stream) {
            return Ok(());
        }
        self.send(Message::state(stream, value)).await
    }

    /// Records emitted so far for `stream`.
    pub fn count(&self, stream: &str) -> u64 {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).get(stream).copied().unwrap_or(0)
    }
}

/// What every job gets.
pub struct Ctx {
    /// The tenant's client.
    pub client: Arc<QlikClient>,
    /// The validated config.
    pub settings: Arc<Settings>,
    /// Where messages go.
    pub out: Out,
    /// The saved checkpoints of the incremental streams read incrementally.
    pub checkpoints: Arc<BTreeMap<&'static str, Value>>,
}

impl Ctx {
    /// The saved checkpoint `stream` resumes from, if it is read incrementally and has one.
    pub fn checkpoint(&self, stream: &str) -> Option<&Value> {
        self.checkpoints.get(stream)
    }

    /// `path` on the tenant with `query` pairs.
    pub fn url(&self, path: &str, query: &[(&str, String)]) -> Url {
        let mut url = self.client.url(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }
}

/// Lists `url` page by page, emitting each item as a record of `def` with `derived`
/// columns, a `PageFetched` per page.
pub async fn list(ctx: &Ctx, def: &'static StreamDef, url: Url, derived: &[(&str, Value)]) -> Result<()> {
    list_with(ctx, def, url, |src| def.record(src, derived)).await
}

/// Lists `url` page by page, emitting `to_record` of each item as a record of `def`, a
/// `PageFetched` per page.
pub async fn list_with(
    ctx: &Ctx,
    def: &'static StreamDef,
    url: Url,
    to_record: impl Fn(Map<String, Value>) -> Value,
) -> Result<()> {
    use futures::TryStreamExt;
    let mut pages = std::pin::pin!(pages(ctx.client.clone(), url));
    while let Some(page) = pages.try_next().await? {
        ctx.out.http_events(def.name, &page.events).await?;
        let records = page.records();
        let n = records.len() as u64;
        for src in records {
            ctx.out.record(def.name, to_record(src?)).await?;
        }
        ctx.out.status(def.name, StreamEvent::PageFetched { records: n }).await?;
    }
    Ok(())
}

/// GETs `url`, reporting retries and throttling under `stream`, and returns the JSON object
/// it answers; any other JSON is a protocol failure naming the endpoint.
pub async fn get_object(ctx: &Ctx, stream: &'static str, url: Url) -> Result<Map<String, Value>> {
    let mut events = Vec::new();
    let (_, body) = ctx.client.get_json(&url, &mut events).await?;
    ctx.out.http_events(stream, &events).await?;
    match body {
        Value::Object(object) => Ok(object),
        _ => Err(Error::new(ErrorKind::Source, format!("{} did not return a JSON object", url.path()))
            .with_hint(crate::remediation::SOURCE_PROTOCOL)),
    }
}

/// Emits `record` as the one record of `def`, with its `PageFetched`.
pub async fn single(ctx: &Ctx, def: &'static StreamDef, record: Value) -> Result<()> {
    ctx.out.record(def.name, record).await?;
    ctx.out.status(def.name, StreamEvent::PageFetched { records: 1 }).await
}

/// A unit of work: one source endpoint and the streams it feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Consumption,
    Sessions,
    Users,
    Assignments,
    Spaces,
    Apps,
    Groups,
    Roles,
    ApiKeys,
    Overview,
    Tenant,
    LicenseSettings,
    ApiKeyPolicy,
    OAuthClients,
    Quotas,
}

impl Job {
    /// Longest listings first, so they are never queued behind short ones.
    const ALL: [Job; 15] = [
        Job::Consumption,
        Job::Sessions,
        Job::Users,
        Job::Assignments,
        Job::Spaces,
        Job::Apps,
        Job::Groups,
        Job::Roles,
        Job::ApiKeys,
        Job::Overview,
        Job::OAuthClients,
        Job::Tenant,
        Job::LicenseSettings,
        Job::ApiKeyPolicy,
        Job::Quotas,
    ];

    fn streams(self) -> &'static [&'static str] {
        match self {
            Job::Consumption => &["license_consumption"],
            Job::Sessions => &["user_sessions"],
            Job::Users => &["users", "user_roles", "user_groups"],
            Job::Assignments => &["license_assignments"],
            Job::Spaces => &["spaces", "space_assignments"],
            Job::Apps => &["apps"],
            Job::Groups => &["groups"],
            Job::Roles => &["roles"],
            Job::ApiKeys => &["api_keys"],
            Job::Overview => &["license_overview", "license_allotments"],
            Job::Tenant => &["tenant"],
            Job::LicenseSettings => &["license_settings"],
            Job::ApiKeyPolicy => &["api_key_policy"],
            Job::OAuthClients => &["oauth_clients"],
            Job::Quotas => &["quotas"],
        }
    }

    async fn run(self, ctx: &Ctx) -> Result<()> {
        match self {
            Job::Consumption => streams::license_consumption::run(ctx).await,
            Job::Sessions => streams::user_sessions::run(ctx).await,
            Job::Users => streams::users::run(ctx).await,
            Job::Assignments => streams::license_assignments::run(ctx).await,
            Job::Spaces => streams::spaces::run(ctx).await,
            Job::Apps => streams::apps::run(ctx).await,
            Job::Groups => streams::groups::run(ctx).await,
            Job::Roles => streams::roles::run(ctx).await,
            Job::ApiKeys => streams::api_keys::run(ctx).await,
            Job::Overview => streams::license_overview::run(ctx).await,
            Job::Tenant => streams::tenant::run(ctx).await,
            Job::LicenseSettings => streams::license_settings::run(ctx).await,
            Job::ApiKeyPolicy => streams::api_key_policy::run(ctx).await,
            Job::OAuthClients => streams::oauth_clients::run(ctx).await,
            Job::Quotas => streams::quotas::run(ctx).await,
        }
    }
}

/// Starts reading `selected` streams and returns the message stream.
pub fn start(
    client: Arc<QlikClient>,
    settings: Arc<Settings>,
    selected: HashSet<&'static str>,
    checkpoints: BTreeMap<&'static str, Value>,
) -> MessageStream {
    let checkpoints = Arc::new(checkpoints);
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let out = Out { tx, selected: Arc::new(selected), counts: Arc::default() };
    let permits = Arc::new(Semaphore::new(settings.max_concurrency));
    let mut tasks = JoinSet::new();
    for job in Job::ALL {
        let streams: Vec<&'static str> = job.streams().iter().copied().filter(|s| out.wants(s)).collect();
        if streams.is_empty() {
            continue;
        }
        let ctx = Ctx {
            client: client.clone(),
            settings: settings.clone(),
            out: out.clone(),
            checkpoints: checkpoints.clone(),
        };
        let permits = permits.clone();
        tasks.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else { return };
            for s in &streams {
                if ctx.out.status(s, StreamEvent::Started).await.is_err() {
                    return;
                }
            }
            match job.run(&ctx).await {
                Ok(()) => {
                    for s in &streams {
                        let records = ctx.out.count(s);
                        if ctx.out.status(s, StreamEvent::Completed { records }).await.is_err() {
                            return;
                        }
                    }
                }
                Err(err) => {
                    let err = err.with_context("stream", streams.join(", "));
                    tracing::warn!(streams = %streams.join(","), kind = %err.kind(), error = %err.message(), "Stream failed");
                    for s in &streams {
                        if ctx.out.status(s, StreamEvent::failed(&err)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    drop(out);
    let stream = futures::stream::unfold((rx, tasks), |(mut rx, tasks)| async move {
        let item = rx.recv().await?;
        Some((item, (rx, tasks)))
    });
    Box::pin(stream)
}

/// The saved checkpoints of the streams `catalog` reads incrementally, by stream.
pub fn checkpoints(catalog: &ConfiguredCatalog, state: &State) -> BTreeMap<&'static str, Value> {
    streams::ALL
        .iter()
        .filter(|d| catalog.stream(d.name).is_some_and(|s| s.sync_mode == SyncMode::Incremental))
        .filter_map(|d| state.get(d.name).filter(|v| !v.is_null()).map(|v| (d.name, v.clone())))
        .collect()
}
