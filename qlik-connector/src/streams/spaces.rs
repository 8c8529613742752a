//! `spaces` and `space_assignments`: `/v1/spaces`, then `/v1/spaces/{id}/assignments`
//! for every space.
//!
//! The engine's fan-out pipelines the two: space ids flow from the listing to up to
//! `max_concurrency` assignment requests while the listing continues, so the read takes
//! about as long as the space listing plus one space's assignments, not their sum.
//!
//! A space deleted between the listing and its assignments call answers 404 ("Space not
//! found or access denied", https://qlik.dev/apis/rest/spaces): its members are skipped
//! with a warning naming it, and the other spaces' members still land.

use async_trait::async_trait;
use connector_api::Result;
use connector_api::read::{Chain, FanOut, Plan, Source};

use super::{Access, StreamDef, Ty, col};
use crate::read::{Ctx, MAX_LIMIT, Tenant};

/// The `spaces` stream.
pub const SPACES: StreamDef = StreamDef {
    name: "spaces",
    description: "Shared, managed and data spaces of the tenant.",
    primary_key: &["id"],
    cursor: None,
    access: Access::Partial("only those the user can access"),
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
    access: Access::Partial("only of spaces the user can access"),
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

/// Lists spaces and, when selected, every space's assignments, pipelined by the engine's
/// fan-out.
pub struct Spaces;

#[async_trait]
impl Source<Tenant> for Spaces {
    fn streams(&self) -> &'static [&'static StreamDef] {
        &[&SPACES, &SPACE_ASSIGNMENTS]
    }

    async fn plan(&self, ctx: &Ctx) -> Result<Plan> {
        let tenant = ctx.connector.clone();
        let query = [("limit", tenant.limit(MAX_LIMIT))];
        let spaces = Chain::of(&SPACES, tenant.pages(tenant.url("/api/v1/spaces", &query)));
        let members = FanOut::new(&SPACE_ASSIGNMENTS, "id", move |space_id| {
            let mut url = tenant.url("/api/v1/spaces", &[("limit", tenant.limit(MAX_LIMIT))]);
            url.path_segments_mut().expect("http URLs have paths").push(space_id).push("assignments");
            Chain::of(&SPACE_ASSIGNMENTS, tenant.pages(url))
        });
        Ok(Plan::chain(spaces).with_fan_out(members))
    }
}
