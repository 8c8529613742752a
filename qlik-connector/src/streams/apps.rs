//! `apps`: Qlik Sense apps and QlikView documents in the cloud, listed as items
//! (`/v1/items?resourceType=app,qvapp`), with their views over the last 28 days and their
//! size: an app nobody opens is a seat-reclaiming and a storage fact.
//!
//! Qlik nests views (`itemViews`) and size (`resourceSize`) in objects; their fields become
//! columns here, and any field of them the connector does not know stays in
//! `_extra.itemViews` or `_extra.resourceSize`.

use serde_json::{Map, Value};

use super::{Access, StreamDef, Ty, col, derived, record_spreading};
use crate::read::{Listing, MAX_LIMIT};

/// The item types read: Qlik Sense apps and QlikView documents, in one listing
/// (`resourceType` takes a comma-separated list, https://qlik.dev/apis/rest/items).
pub const RESOURCE_TYPES: &str = "app,qvapp";

/// The `apps` stream.
pub const APPS: StreamDef = StreamDef {
    name: "apps",
    description: "Qlik Sense apps and QlikView documents on the tenant, with owner, space, reload status, views and size.",
    primary_key: &["id"],
    cursor: None,
    access: Access::Partial("only those the user can access"),
    fields: &[
        col("id", "id", Ty::String, "Item id of the app."),
        col("name", "name", Ty::String, "App name."),
        col("resource_id", "resourceId", Ty::String, "App id (the resource the item points to)."),
        col(
            "resource_type",
            "resourceType",
            Ty::String,
            "app for a Qlik Sense app, qvapp for a QlikView document in Qlik Cloud.",
        ),
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
        derived("views_28d", Ty::Integer, "Views over the last 28 days (itemViews.total)."),
        derived(
            "unique_viewers_28d",
            Ty::Integer,
            "Distinct users who viewed it over the last 28 days (itemViews.unique).",
        ),
        derived(
            "views_trend",
            Ty::Number,
            "Trend of weekly unique viewers over the last 4 weeks, a regression slope (itemViews.trend).",
        ),
        derived("views_by_week", Ty::Array, "Views per week: start, total, unique (itemViews.week)."),
        derived("app_file_bytes", Ty::Number, "Size of the app on disk, in bytes (resourceSize.appFile)."),
        derived(
            "app_memory_bytes",
            Ty::Number,
            "Size of the app in memory, in bytes (resourceSize.appMemory).",
        ),
    ],
    consumed: &["links", "actions"],
};

/// `itemViews` fields and their columns.
const VIEW_COLUMNS: [(&str, &str); 4] = [
    ("total", "views_28d"),
    ("unique", "unique_viewers_28d"),
    ("trend", "views_trend"),
    ("week", "views_by_week"),
];

/// `resourceSize` fields and their columns.
const SIZE_COLUMNS: [(&str, &str); 2] = [("appFile", "app_file_bytes"), ("appMemory", "app_memory_bytes")];

/// The record of item `src`, its nested views and size spread over columns.
pub fn record(src: Map<String, Value>) -> Value {
    record_spreading(&APPS, src, &[("itemViews", &VIEW_COLUMNS), ("resourceSize", &SIZE_COLUMNS)])
}

/// Lists every app and QlikView document.
pub const SOURCE: Listing = Listing {
    stream: &[&APPS],
    path: "/api/v1/items",
    max_limit: Some(MAX_LIMIT),
    query: &[("resourceType", RESOURCE_TYPES)],
    record: Some(record),
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn views_and_size_become_columns_and_unknown_parts_stay() {
        let Value::Object(src) = json!({
            "id": "i1", "resourceType": "qvapp",
            "itemViews": {"total": 12, "unique": 3, "trend": -0.5, "week": [{"total": 4}], "usedBy": 2},
            "resourceSize": {"appFile": 1024.0, "appMemory": "big"},
        }) else {
            unreachable!()
        };
        let r = record(src);
        assert_eq!((r["views_28d"].clone(), r["unique_viewers_28d"].clone()), (json!(12), json!(3)));
        assert_eq!(
            (r["views_trend"].clone(), r["views_by_week"].clone()),
            (json!(-0.5), json!([{"total": 4}]))
        );
        assert_eq!(
            (r["app_file_bytes"].clone(), r["app_memory_bytes"].clone()),
            (json!(1024.0), Value::Null)
        );
        assert_eq!(r["resource_type"], "qvapp");
        assert_eq!(r["_extra"], json!({"itemViews": {"usedBy": 2}, "resourceSize": {"appMemory": "big"}}));
    }
}
