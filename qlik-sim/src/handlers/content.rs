//! spaces, space assignments and items.

use serde_json::{Value, json};

use super::Principal;
use crate::http::{ApiError, Ctx, Reply};
use crate::paging;
use crate::synth::{Kind, decode_id};
use crate::tenant::Tenant;

/// Qlik documents no maximum for spaces; real tenants cap `limit` at 100, and so do we.
const SPACES_MAX_LIMIT: u64 = 100;

/// Resource types `/items` accepts (`itemResourceTypeEnum`); the simulator's items are apps and `qvapp`s.
const RESOURCE_TYPES: [&str; 13] = [
    "app",
    "collection",
    "qlikview",
    "insight",
    "qvapp",
    "genericlink",
    "sharingservicetask",
    "note",
    "dataasset",
    "dataset",
    "automation",
    "automl-experiment",
    "automl-deployment",
];

/// `GET /api/v1/spaces`: the spaces the caller can access.
pub(crate) fn spaces(t: &Tenant, ctx: &Ctx, who: Principal) -> Result<Reply, ApiError> {
    let limit = paging::limit(ctx, 10, SPACES_MAX_LIMIT)?;
    let visible = |i: u64| t.space_visible(i, who.user(), who.is_admin());
    let w = paging::cursor_window(ctx, "spaces", 0..t.spaces, limit, visible)?;
    let base = ctx.base();
    let data: Vec<Value> = w.items.iter().map(|p| t.space_json(&t.space(*p), &base)).collect();
    Ok(Reply::ok(json!({
        "data": data,
        "meta": {"count": (0..t.spaces).filter(|i| visible(*i)).count()},
        "links": paging::cursor_links(ctx, "spaces", &w),
    })))
}

/// `GET /api/v1/spaces/{spaceId}/assignments`. A space that is gone, or that the caller
/// cannot access, answers 404 "Space not found or access denied"
/// (https://qlik.dev/apis/rest/spaces).
pub(crate) fn space_assignments(t: &Tenant, ctx: &Ctx, id: &str, who: Principal) -> Result<Reply, ApiError> {
    let space = decode_id(t.seed, Kind::Space, id, t.spaces)
        .filter(|i| Some(*i) != t.deleted_space && t.space_visible(*i, who.user(), who.is_admin()))
        .ok_or_else(|| ApiError::not_found("Space not found or access denied"))?;
    let limit = paging::limit(ctx, 10, SPACES_MAX_LIMIT)?;
    let count = t.space_assignment_count(space);
    let w = paging::cursor_window(ctx, "assignments", 0..count, limit, |_| true)?;
    let base = ctx.base();
    let data: Vec<Value> =
        w.items.iter().map(|j| t.space_assignment_json(&t.space_assignment(space, *j), &base)).collect();
    Ok(Reply::ok(json!({
        "data": data,
        "meta": {"count": count},
        "links": paging::cursor_links(ctx, "assignments", &w),
    })))
}

/// `GET /api/v1/items`: the apps and QlikView documents (`qvapp`) the caller can access, of
/// the types `resourceType` lists, comma-separated (https://qlik.dev/apis/rest/items); the
/// simulator has no items of the other types.
pub(crate) fn items(t: &Tenant, ctx: &Ctx, who: Principal) -> Result<Reply, ApiError> {
    let limit = paging::limit(ctx, 10, 100)?;
    let requested: Vec<&str> =
        ctx.param("resourceType").map_or(vec!["app", "qvapp"], |p| p.split(',').collect());
    if let Some(rt) = requested.iter().find(|rt| !RESOURCE_TYPES.contains(rt)) {
        return Err(ApiError::bad_request(format!(
            "Invalid query parameter `resourceType`: `{rt}` is not a resource type."
        )));
    }
    let wanted =
        |i: u64| requested.contains(&t.app(i).resource_type) && t.app_visible(i, who.user(), who.is_admin());
    let w = paging::cursor_window(ctx, "items", 0..t.apps + t.qvapps, limit, wanted)?;
    let base = ctx.base();
    let data: Vec<Value> = w.items.iter().map(|p| t.app_json(&t.app(*p), &base)).collect();
    Ok(Reply::ok(json!({"data": data, "links": paging::cursor_links(ctx, "items", &w)})))
}
