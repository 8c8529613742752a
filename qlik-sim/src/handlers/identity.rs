//! users, tenants, groups and roles.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use crate::http::{ApiError, Ctx, Reply};
use crate::paging;
use crate::scim::{self, Filter};
use crate::synth::{Kind, decode_id};
use crate::tenant::{SortKey, Tenant, UserOrder, UserRec, UserStatus};

/// Which users a request selects.
enum Selector {
    /// No `filter` and no `status`: Qlik's deprecated `status` default, active users only.
    DefaultActive,
    Statuses(Vec<UserStatus>),
    Scim(Filter),
}

fn user_attr(u: &UserRec, t: &Tenant, attr: &str) -> Result<Option<String>, String> {
    Ok(match attr.to_ascii_lowercase().as_str() {
        "id" => Some(u.id.clone()),
        "status" => Some(u.status.as_str().to_owned()),
        "name" => Some(u.name.clone()),
        "email" => u.email.clone(),
        "subject" => Some(u.subject.clone()),
        "tenantid" => Some(t.tenant_id.clone()),
        _ => {
            return Err(format!(
                "Attribute `{attr}` is not filterable on users (id, status, name, email, subject, tenantId)."
            ));
        }
    })
}

impl Selector {
    fn from_request(t: &Tenant, ctx: &Ctx) -> Result<Selector, ApiError> {
        let filter = ctx.param("filter");
        let status = ctx.param("status");
        match (filter, status) {
            (Some(_), Some(_)) => Err(ApiError::bad_request(
                "Query parameter `filter` cannot be combined with the deprecated `status`.",
            )),
            (Some(f), None) => {
                let parsed = scim::parse(f).map_err(|e| ApiError::bad_request(format!("Invalid `filter`: {e}.")))?;
                // Surface unsupported attributes even on an empty page.
                let probe = t.user(0);
                parsed
                    .eval(&|a| user_attr(&probe, t, a))
                    .map_err(|e| ApiError::bad_request(format!("Invalid `filter`: {e}")))?;
                Ok(Selector::Scim(parsed))
            }
            (None, Some(s)) => s
                .split(',')
                .map(|v| {
                    UserStatus::parse(v.trim()).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "Invalid query parameter `status`: `{v}` is not one of active, invited, disabled, deleted, provisioned."
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Selector::Statuses),
            (None, None) => Ok(Selector::DefaultActive),
        }
    }

    fn matches(&self, t: &Tenant, u: &UserRec) -> bool {
        match self {
            Selector::DefaultActive => u.status == UserStatus::Active,
            Selector::Statuses(s) => s.contains(&u.status),
            Selector::Scim(f) => f.eval(&|a| user_attr(u, t, a)).unwrap_or(false),
        }
    }
}

/// The order a users request asks for: `+name` without `sort`, Qlik's default
/// (https://qlik.dev/apis/rest/users). Of the sort keys the definitions list, the simulator
/// serves `name` and `id`; any other is refused rather than silently ignored.
fn user_order(t: &Tenant, ctx: &Ctx) -> Result<UserOrder, ApiError> {
    let asked = ctx.param("sort").filter(|_| !t.situations.users_sort_ignored);
    let raw = asked.unwrap_or("+name");
    let (descending, key) = match raw.strip_prefix('-') {
        Some(key) => (true, key),
        None => (false, raw.strip_prefix('+').unwrap_or(raw)),
    };
    let by = match key {
        "name" => SortKey::Name,
        "id" => SortKey::Id,
        _ => {
            return Err(ApiError::bad_request(format!(
                "Invalid query parameter `sort`: `{raw}`; the simulator sorts users by name or id (+name, -name, +id, -id)."
            )));
        }
    };
    Ok(UserOrder { by, descending })
}

/// `GET /api/v1/users`: cursors are positions in the requested order, so a rename while
/// a client pages by name moves users across its cursor.
pub(crate) fn users(t: &Tenant, ctx: &Ctx) -> Result<Reply, ApiError> {
    let limit = paging::limit(ctx, 20, 100)?;
    let selector = Selector::from_request(t, ctx)?;
    let total = paging::bool_param(ctx, "totalResults")?;
    let order = user_order(t, ctx)?;
    let tag = format!("users.{:?}.{}", order.by, order.descending);
    let pred = |p: u64| selector.matches(t, &t.user(t.user_at(order, p)));
    let w = paging::cursor_window(ctx, &tag, 0..t.users, limit, pred)?;
    let base = ctx.base();
    let data: Vec<Value> =
        w.items.iter().map(|p| t.user_json(&t.user(t.user_at(order, *p)), &base)).collect();
    let mut body = json!({"data": data, "links": paging::cursor_links(ctx, &tag, &w)});
    if total {
        body["totalResults"] = json!((0..t.users).filter(|p| pred(*p)).count());
    }
    if t.situations.rename_during_users_listing && order.by == SortKey::Name {
        t.renamed.store(true, Ordering::Relaxed);
    }
    Ok(Reply::ok(body))
}

/// `GET /api/v1/users/{id}`.
pub(crate) fn user(t: &Tenant, ctx: &Ctx, id: &str) -> Result<Reply, ApiError> {
    let i = decode_id(t.seed, Kind::User, id, t.users)
        .ok_or_else(|| ApiError::not_found(format!("User `{id}` not found.")))?;
    Ok(Reply::ok(t.user_json(&t.user(i), &ctx.base())))
}

/// `GET /api/v1/tenants/{id}`.
pub(crate) fn tenant(t: &Tenant, ctx: &Ctx, id: &str) -> Result<Reply, ApiError> {
    if id != t.tenant_id {
        return Err(ApiError::not_found(format!("Tenant `{id}` not found.")));
    }
    Ok(Reply::ok(t.tenant_json(&ctx.base(), &ctx.host)))
}

/// `GET /api/v1/groups`.
pub(crate) fn groups(t: &Tenant, ctx: &Ctx) -> Result<Reply, ApiError> {
    let limit = paging::limit(ctx, 20, 100)?;
    let total = paging::bool_param(ctx, "totalResults")?;
    let w = paging::cursor_window(ctx, "groups", 0..t.groups, limit, |_| true)?;
    let base = ctx.base();
    let data: Vec<Value> = w.items.iter().map(|p| t.group_json(*p, &base)).collect();
    let mut body = json!({"data": data, "links": paging::cursor_links(ctx, "groups", &w)});
    if total {
        body["totalResults"] = json!(t.groups);
    }
    Ok(Reply::ok(body))
}

/// `GET /api/v1/roles`.
pub(crate) fn roles(t: &Tenant, ctx: &Ctx) -> Result<Reply, ApiError> {
    let limit = paging::limit(ctx, 20, 100)?;
    let total = paging::bool_param(ctx, "totalResults")?;
    let w = paging::cursor_window(ctx, "roles", 0..t.roles_total(), limit, |_| true)?;
    let base = ctx.base();
    let data: Vec<Value> = w.items.iter().map(|p| t.role_json(*p, &base)).collect();
    let mut body = json!({"data": data, "links": paging::cursor_links(ctx, "roles", &w)});
    if total {
        body["totalResults"] = json!(t.roles_total());
    }
    Ok(Reply::ok(body))
}
