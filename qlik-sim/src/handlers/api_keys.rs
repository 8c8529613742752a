//! api-keys: `startingAfter`/`endingBefore` paging by key id, as the definition has it.

use serde_json::{Value, json};

use super::Principal;
use crate::http::{ApiError, Ctx, Reply};
use crate::paging::{self, Window};
use crate::synth::{Kind, decode_id};
use crate::tenant::Tenant;

const CURSORS: [&str; 2] = ["startingAfter", "endingBefore"];

fn key_index(t: &Tenant, param: &str, id: &str) -> Result<u64, ApiError> {
    decode_id(t.seed, Kind::ApiKey, id, t.api_keys).ok_or_else(|| {
        ApiError::bad_request(format!("Invalid query parameter `{param}`: no API key `{id}`."))
    })
}

/// `GET /api/v1/api-keys`: every key of the tenant for a Tenant Admin, the caller's own
/// keys for anyone else (https://qlik.dev/apis/rest/api-keys).
pub(crate) fn list(t: &Tenant, ctx: &Ctx, who: Principal) -> Result<Reply, ApiError> {
    let limit = paging::limit(ctx, 20, 100)?;
    let status = ctx.param("status");
    if let Some(s) = status.filter(|s| !["active", "expired", "revoked"].contains(s)) {
        return Err(ApiError::bad_request(format!(
            "Invalid query parameter `status`: `{s}` is not one of active, expired, revoked."
        )));
    }
    let pred = |i: u64| {
        (who.is_admin() || t.api_key_owner(i) == who.user())
            && status.is_none_or(|s| t.api_key_json(i)["status"] == s)
    };
    let range = 0..t.api_keys;
    let w: Window = match (ctx.param("startingAfter"), ctx.param("endingBefore")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("`startingAfter` and `endingBefore` cannot be combined."));
        }
        (Some(id), None) => paging::forward(range, key_index(t, "startingAfter", id)? + 1, limit, pred),
        (None, Some(id)) => paging::backward(range, key_index(t, "endingBefore", id)?, limit, pred),
        (None, None) => paging::forward(range, 0, limit, pred),
    };
    let data: Vec<Value> = w.items.iter().map(|i| t.api_key_json(*i)).collect();
    let mut links = json!({"self": {"href": ctx.self_href()}});
    if let (Some(_), Some(last)) = (w.next, w.items.last()) {
        links["next"] = json!({"href": paging::link(ctx, &CURSORS, ("startingAfter", &t.api_key_id(*last)))});
    }
    if let (Some(_), Some(first)) = (w.prev, w.items.first()) {
        links["prev"] = json!({"href": paging::link(ctx, &CURSORS, ("endingBefore", &t.api_key_id(*first)))});
    }
    Ok(Reply::ok(json!({"data": data, "links": links})))
}

/// `GET /api/v1/api-keys/configs/{tenantId}`.
pub(crate) fn config(t: &Tenant, id: &str, enabled: bool) -> Result<Reply, ApiError> {
    if id != t.tenant_id {
        return Err(ApiError::not_found(format!("Tenant `{id}` not found.")));
    }
    Ok(Reply::ok(json!({
        "api_keys_enabled": enabled,
        "max_keys_per_user": 5,
        "max_api_key_expiry": "P365D",
        "scim_externalClient_expiry": "P365D",
    })))
}
