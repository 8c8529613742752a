//! users, tenants, groups and roles.

use serde_json::{Value, json};

use crate::qlik_sim::http::{ApiError, Ctx, Reply};
use crate::qlik_sim::paging;
use crate::qlik_sim::scim::{self, Filter};
use crate::qlik_sim::synth::{Kind, decode_id};
use crate::qlik_sim::tenant::{Tenant, UserRec, UserStatus};

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

/// `GET /api/v1/users`.
pub(crate) fn users(t: &Tenant, ctx: &Ctx) -> Result<Reply, ApiError> {
    let limit = paging::limit(ctx, 20, 100)?;
    let selector = Selector::from_request(t, ctx)?;
    let total = paging::bool_param(ctx, "totalResults")?;
    let pred = |p: u64| selector.matches(t, &t.user(p));
    let w = paging::cursor_window(ctx, "users", 0..t.users, limit, pred)?;
    let base = ctx.base();
    let data: Vec<Value> = w.items.iter().map(|p| t.user_json(&t.user(*p), &base)).collect();
    let mut body = json!({"data": data, "links": paging::cursor_links(ctx, "users", &w)});
    if total {
        body["totalResults"] = json!((0..t.users).filter(|p| pred(*p)).count());
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
