//! What the Qlik streams share on top of the read engine ([`connector_api::read`]): the
//! tenant a read goes to, its listings as engine pages, single-object requests, and
//! [`Listing`], the declaration of a stream that is one list endpoint read item for item.

use std::sync::Arc;

use async_trait::async_trait;
use connector_api::read::{Chain, Page, Pages, Plan, Source, StreamCtx, once};
use connector_api::{Error, ErrorKind, Result, StreamDef};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;
use url::Url;

use crate::client::QlikClient;
use crate::config::Settings;
use crate::pagination::pages;

/// The largest `limit` most of Qlik's list endpoints accept (users, groups, roles, spaces,
/// apps, API keys, OAuth clients, audits, licence assignments). A stream whose endpoint
/// accepts another declares its own beside it (consumption: 200).
pub const MAX_LIMIT: u32 = 100;

/// The tenant a read goes to: what every stream's plan builds its requests from.
pub struct Tenant {
    /// The tenant's client.
    pub client: Arc<QlikClient>,
    /// The validated config.
    pub settings: Settings,
    /// The tenant's id, looked up once per read by the first stream that needs it.
    pub(crate) id: OnceCell<String>,
}

/// What a Qlik stream's plan gets.
pub type Ctx = StreamCtx<Tenant>;

impl Tenant {
    /// The tenant `client` reads with `settings`.
    pub fn new(client: Arc<QlikClient>, settings: Settings) -> Tenant {
        Tenant { client, settings, id: OnceCell::new() }
    }

    /// `path` on the tenant with `query` pairs.
    pub fn url(&self, path: &str, query: &[(&str, String)]) -> Url {
        let mut url = self.client.url(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// The `limit` to ask an endpoint accepting at most `max` for, as text.
    pub fn limit(&self, max: u32) -> String {
        self.settings.limit(max).to_string()
    }

    /// The pages of the listing at `url`, following Qlik's next links
    /// ([`crate::pagination`]).
    pub fn pages(&self, url: Url) -> Pages {
        pages(self.client.clone(), url)
            .map_ok(|mut page| {
                let events = std::mem::take(&mut page.events);
                Page::new(page.records(), events)
            })
            .boxed()
    }
}

/// GETs `url`, reporting retries and throttling under the stream, and returns the JSON
/// it answers.
pub async fn get(ctx: &Ctx, url: &Url) -> Result<Value> {
    let mut events = Vec::new();
    let fetched = ctx.connector.client.get_json(url, &mut events).await;
    ctx.http_events(&events).await?;
    Ok(fetched?.1)
}

/// GETs `url` like [`get`] and returns the JSON object it answers; any other JSON is a
/// protocol failure naming the endpoint.
pub async fn get_object(ctx: &Ctx, url: Url) -> Result<Map<String, Value>> {
    expect_object(&url, get(ctx, &url).await?)
}

/// `value`, which `url` answered, as a JSON object; any other JSON is a protocol failure
/// naming the endpoint.
pub fn expect_object(url: &Url, value: Value) -> Result<Map<String, Value>> {
    match value {
        Value::Object(object) => Ok(object),
        _ => Err(Error::new(ErrorKind::Source, format!("{} did not return a JSON object", url.path()))
            .with_hint(crate::remediation::SOURCE_PROTOCOL)),
    }
}

/// A stream of one record: a settings document of the tenant, keyed by the tenant's id.
pub struct TenantDocument {
    /// The stream, alone in its slice.
    pub stream: &'static [&'static StreamDef],
    /// The document's path, given the tenant's id.
    pub path: fn(&str) -> String,
}

#[async_trait]
impl Source<Tenant> for TenantDocument {
    fn streams(&self) -> &'static [&'static StreamDef] {
        self.stream
    }

    async fn plan(&self, ctx: &Ctx) -> Result<Plan> {
        let tenant_id = Value::String(tenant_id(ctx).await?);
        let document =
            get_object(ctx, ctx.connector.url(&(self.path)(tenant_id.as_str().unwrap_or_default()), &[]))
                .await?;
        let def = self.stream[0];
        Ok(Plan::chain(Chain::new(once(document), move |document, out| {
            out.push(def, def.record(document, &[("tenant_id", tenant_id.clone())]));
            Ok(())
        })))
    }
}

/// A stream read from one list endpoint, each item one record: most of Qlik's streams.
pub struct Listing {
    /// The stream, alone in its slice (what [`Source::streams`] returns).
    pub stream: &'static [&'static StreamDef],
    /// The endpoint.
    pub path: &'static str,
    /// The largest `limit` the endpoint accepts; `None` when it pages without one.
    pub max_limit: Option<u32>,
    /// Fixed query parameters.
    pub query: &'static [(&'static str, &'static str)],
    /// How an item becomes a record, when not column for column.
    pub record: Option<fn(Map<String, Value>) -> Value>,
}

#[async_trait]
impl Source<Tenant> for Listing {
    fn streams(&self) -> &'static [&'static StreamDef] {
        self.stream
    }

    async fn plan(&self, ctx: &Ctx) -> Result<Plan> {
        let tenant = &ctx.connector;
        let mut query: Vec<(&str, String)> = self.query.iter().map(|(k, v)| (*k, v.to_string())).collect();
        if let Some(max) = self.max_limit {
            query.push(("limit", tenant.limit(max)));
        }
        let pages = tenant.pages(tenant.url(self.path, &query));
        let def = self.stream[0];
        Ok(Plan::chain(match self.record {
            None => Chain::of(def, pages),
            Some(record) => Chain::new(pages, move |item, out| {
                out.push(def, record(item));
                Ok(())
            }),
        }))
    }
}

/// The tenant's id, from `tenants/me`, for the streams whose endpoint names it or whose one
/// record is keyed by it: looked up by the first of them, its retries reported under that
/// stream, and shared with the others of the read.
pub async fn tenant_id(ctx: &Ctx) -> Result<String> {
    let id = ctx.connector.id.get_or_try_init(|| async {
        let tenant = get_object(ctx, ctx.connector.url("/api/v1/tenants/me", &[])).await?;
        match tenant.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => Ok(id.to_string()),
            _ => {
                Err(connector_api::Error::new(ErrorKind::Source, "/api/v1/tenants/me answered without an id")
                    .with_hint(crate::remediation::SOURCE_PROTOCOL))
            }
        }
    });
    id.await.cloned()
}
