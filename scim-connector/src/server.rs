//! The server a read goes to, and its listings as pages for the read engine
//! ([`connector_api::read`]).
//!
//! SCIM pages by 1-based `startIndex` and `count` (RFC 7644 §3.4.2.4); the shared offset
//! pager walks them and `read_ahead` keeps the next page in flight while the engine
//! consumes this one. Streams are read one after another (a SCIM server is often a small
//! service of an identity provider), so at most three pages are in memory however large
//! the directory.

use connector_api::Result;
use connector_api::http::offset::{OffsetPage, paginate_offset};
use connector_api::http::read_ahead;
use connector_api::read::{Page, Pages, StreamCtx};
use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;

use crate::client::ScimClient;
use crate::config::ScimConfig;

/// The SCIM server a read goes to.
pub struct Server {
    client: ScimClient,
    page_size: u32,
    /// How far before the saved checkpoint an incremental read starts.
    pub lookback: Duration,
}

/// What a SCIM stream's plan gets.
pub type Ctx = StreamCtx<Server>;

impl Server {
    /// The server `config` names, reached through `client`.
    pub fn new(client: ScimClient, config: &ScimConfig) -> Result<Server> {
        Ok(Server { client, page_size: config.page_size, lookback: config.lookback()? })
    }

    /// The pages of `resource` (`Users`, `Groups`), filtered by `filter` when given.
    pub fn pages(&self, resource: &'static str, filter: Option<String>) -> Pages {
        let client = self.client.clone();
        let count = self.page_size;
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
                let returned = list.resources.len() as u64;
                let items = list.resources.into_iter().map(|item| match item {
                    Value::Object(item) => Ok(item),
                    _ => Err(connector_api::Error::new(
                        connector_api::ErrorKind::Source,
                        format!("a resource in /{resource} is not a JSON object"),
                    )),
                });
                let page = Page::new(items.collect::<Vec<_>>(), events);
                Ok(OffsetPage { returned, total: Some(list.total_results), items: page })
            }
        });
        read_ahead(pages).boxed()
    }
}
