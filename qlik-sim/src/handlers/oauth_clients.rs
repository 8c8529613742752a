//! oauth-clients: `next`/`prev` cursor paging, `limit` 1 to 100 (default 20), as the
//! definition has it (https://qlik.dev/apis/rest/oauth-clients).

use serde_json::{Value, json};

use crate::http::{ApiError, Ctx, Reply};
use crate::paging;
use crate::tenant::Tenant;

/// `GET /api/v1/oauth-clients`: every client of the tenant, as listed to a Tenant Admin.
/// The simulator refuses anyone else (403), stricter than Qlik, which lists a developer's
/// own clients.
pub(crate) fn list(t: &Tenant, ctx: &Ctx) -> Result<Reply, ApiError> {
    let limit = paging::limit(ctx, 20, 100)?;
    let w = paging::cursor_window(ctx, "oauth-clients", 0..t.oauth_clients, limit, |_| true)?;
    let data: Vec<Value> = w.items.iter().map(|i| t.oauth_client_json(*i)).collect();
    let mut body = json!({"data": data, "links": paging::cursor_links(ctx, "oauth-clients", &w)});
    if paging::bool_param(ctx, "totalResults")? {
        body["totalResults"] = json!(t.oauth_clients);
    }
    Ok(Reply::ok(body))
}
