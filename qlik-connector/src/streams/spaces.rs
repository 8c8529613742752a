//! `spaces` and `space_assignments`: `/v1/spaces`, then `/v1/spaces/{id}/assignments`
//! for every space.
//!
//! The fan-out is pipelined: space ids flow from the listing to up to
//! `max_concurrency` assignment requests while the listing continues, so the read takes
//! about as long as the space listing plus one space's assignments, not their sum.
//!
//! A space deleted between the listing and its assignments call answers 404 ("Space not
//! found or access denied", https://qlik.dev/apis/rest/spaces): its members are skipped
//! with a warning naming it, and the other spaces' members still land.

use connector_api::{ErrorKind, LogLevel, Result, StreamEvent};
use futures::{FutureExt, StreamExt, TryStreamExt};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{StreamDef, Ty, col};
use crate::pagination::pages;
use crate::read::Ctx;

/// Largest `limit` the endpoints accept.
pub const MAX_LIMIT: u32 = 100;

/// The `spaces` stream.
pub const SPACES: StreamDef = StreamDef {
    name: "spaces",
    description: "Shared, managed and data spaces of the tenant.",
    primary_key: &["id"],
    cursor: None,
    fields: &[
        col("id", "id", Ty::String, "Space id."),
        col("name", "name", Ty::String, "Space name."),
        col("type", "type", Ty::String, "shared, managed or data (other values kept as text)."),
        col("description", "description", Ty::String, "Space description."),
        col("owner_id", "ownerId", Ty::String, "User id of the owner."),
        col("tenant_id", "tenantId", Ty::String, "Tenant id."),
        col("created_at", "createdAt", Ty::DateTime, "When the space was created."),
        col("created_by", "createdBy", Ty::String, "User id of the creator."),
        col("updated_at", "updatedAt", Ty::DateTime, "When the space last changed."),
    ],
    consumed: &["links"],
};

/// The `space_assignments` stream.
pub const SPACE_ASSIGNMENTS: StreamDef = StreamDef {
    name: "space_assignments",
    description: "Members of each space (users and groups) and their roles in it.",
    primary_key: &["id"],
    cursor: None,
    fields: &[
        col("id", "id", Ty::String, "Assignment id."),
        col("space_id", "spaceId", Ty::String, "Space id."),
        col("type", "type", Ty::String, "user or group (other values kept as text)."),
        col("assignee_id", "assigneeId", Ty::String, "Id of the user or group assigned."),
        col(
            "roles",
            "roles",
            Ty::Array,
            "Roles in the space: consumer, contributor, producer … (values kept as text).",
        ),
        col("tenant_id", "tenantId", Ty::String, "Tenant id."),
        col("created_at", "createdAt", Ty::DateTime, "When the assignment was made."),
        col("created_by", "createdBy", Ty::String, "User id who made it."),
        col("updated_at", "updatedAt", Ty::DateTime, "When it last changed."),
        col("updated_by", "updatedBy", Ty::String, "User id who last changed it."),
    ],
    consumed: &["links"],
};

/// Space ids waiting for their assignments to be fetched.
const PENDING_SPACES: usize = 1024;

/// Lists spaces and, when selected, every space's assignments.
pub async fn run(ctx: &Ctx) -> Result<()> {
    let limit = ctx.settings.limit(MAX_LIMIT).to_string();
    let fan_out = ctx.out.wants(SPACE_ASSIGNMENTS.name);
    let (ids_tx, ids_rx) = mpsc::channel::<String>(PENDING_SPACES);
    let listing = async move {
        let url = ctx.url("/api/v1/spaces", &[("limit", limit.clone())]);
        let mut pages = std::pin::pin!(pages(ctx.client.clone(), url));
        while let Some(page) = pages.try_next().await? {
            ctx.out.http_events(SPACES.name, &page.events).await?;
            let spaces = page.records();
            let n = spaces.len() as u64;
            for space in spaces {
                let space = space?;
                let id = space.get("id").and_then(Value::as_str).map(str::to_string);
                ctx.out.record(SPACES.name, SPACES.record(space, &[])).await?;
                if let (true, Some(id)) = (fan_out, id) {
                    ids_tx
                        .send(id)
                        .await
                        .map_err(|_| connector_api::Error::internal("space fan-out stopped"))?;
                }
            }
            ctx.out.status(SPACES.name, StreamEvent::PageFetched { records: n }).await?;
        }
        Ok(())
    };
    let assignments = async {
        if !fan_out {
            return Ok(());
        }
        let limit = ctx.settings.limit(MAX_LIMIT).to_string();
        let ids = futures::stream::unfold(ids_rx, |mut rx| async move { rx.recv().await.map(|id| (id, rx)) });
        let mut fetched = std::pin::pin!(
            ids.map(|id| {
                let mut url = ctx.url("/api/v1/spaces", &[("limit", limit.clone())]);
                url.path_segments_mut().expect("http URLs have paths").push(&id).push("assignments");
                pages(ctx.client.clone(), url).try_collect::<Vec<_>>().map(|pages| (id, pages))
            })
            .buffer_unordered(ctx.settings.max_concurrency)
        );
        while let Some((id, space_pages)) = fetched.next().await {
            let space_pages = match space_pages {
                Err(err) if err.kind() == ErrorKind::NotFound => {
                    let warning = format!(
                        "Space {id} was deleted (or hidden from this key) after the spaces listing; its members are skipped: {}",
                        err.message()
                    );
                    tracing::warn!(space = %id, "Space vanished during the read");
                    ctx.out.log(LogLevel::Warn, warning).await?;
                    continue;
                }
                other => other?,
            };
            for page in space_pages {
                ctx.out.http_events(SPACE_ASSIGNMENTS.name, &page.events).await?;
                let items = page.records();
                let n = items.len() as u64;
                for a in items {
                    ctx.out.record(SPACE_ASSIGNMENTS.name, SPACE_ASSIGNMENTS.record(a?, &[])).await?;
                }
                ctx.out.status(SPACE_ASSIGNMENTS.name, StreamEvent::PageFetched { records: n }).await?;
            }
        }
        Ok(())
    };
    futures::try_join!(listing, assignments).map(|_| ())
}
