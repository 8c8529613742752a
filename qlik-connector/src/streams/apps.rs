//! `apps`: Qlik Sense apps, listed as items (`/v1/items?resourceType=app`).

use connector_api::Result;

use super::{StreamDef, Ty, col};
use crate::read::{Ctx, list};

/// Largest `limit` the endpoint accepts.
pub const MAX_LIMIT: u32 = 100;

/// The `apps` stream.
pub const APPS: StreamDef = StreamDef {
    name: "apps",
    description: "Qlik Sense apps on the tenant, with owner, space and reload status.",
    primary_key: &["id"],
    cursor: None,
    fields: &[
        col("id", "id", Ty::String, "Item id of the app."),
        col("name", "name", Ty::String, "App name."),
        col("resource_id", "resourceId", Ty::String, "App id (the resource the item points to)."),
        col("resource_type", "resourceType", Ty::String, "Item type; always app here."),
        col("resource_sub_type", "resourceSubType", Ty::String, "App sub-type, if any."),
        col("description", "description", Ty::String, "App description."),
        col("owner_id", "ownerId", Ty::String, "User id of the owner."),
        col("creator_id", "creatorId", Ty::String, "User id of the creator."),
        col("updater_id", "updaterId", Ty::String, "User id of the last updater."),
        col("space_id", "spaceId", Ty::String, "Space the app is in; null for personal apps."),
        col("tenant_id", "tenantId", Ty::String, "Tenant id."),
        col("created_at", "createdAt", Ty::DateTime, "When the item was created."),
        col("updated_at", "updatedAt", Ty::DateTime, "When the item last changed."),
        col("resource_created_at", "resourceCreatedAt", Ty::DateTime, "When the app was created."),
        col("resource_updated_at", "resourceUpdatedAt", Ty::DateTime, "When the app last changed."),
        col("resource_reload_end_time", "resourceReloadEndTime", Ty::DateTime, "When the last reload ended."),
        col("resource_reload_status", "resourceReloadStatus", Ty::String, "Status of the last reload."),
        col("resource_attributes", "resourceAttributes", Ty::Object, "App attributes as Qlik reports them."),
    ],
    consumed: &["links", "actions"],
};

/// Lists every app.
pub async fn run(ctx: &Ctx) -> Result<()> {
    let limit = ctx.settings.limit(MAX_LIMIT).to_string();
    list(ctx, &APPS, ctx.url("/api/v1/items", &[("resourceType", "app".into()), ("limit", limit)]), &[]).await
}
