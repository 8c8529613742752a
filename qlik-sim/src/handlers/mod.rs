//! Routing a request to the handler of its Qlik service.

mod api_keys;
mod audits;
mod consumption;
mod content;
mod identity;
mod licenses;
mod oauth_clients;

use super::http::{ApiError, Ctx, Reply};
use super::keys::KeyKind;
use super::tenant::Tenant;

/// Who is calling: the key's kind and its creator.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Principal {
    pub kind: KeyKind,
}

impl Principal {
    /// The key's creator (user index).
    pub(crate) fn user(&self) -> u64 {
        self.kind.user_index()
    }

    /// Whether the key's creator is a Tenant Admin.
    pub(crate) fn is_admin(&self) -> bool {
        self.kind.is_admin()
    }

    /// 403 unless the key's creator is a Tenant Admin.
    fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "The user of this API key is not allowed to access {what}: the TenantAdmin role is required."
                ),
            ))
        }
    }
}

/// Answers an authenticated request.
pub(crate) fn route(t: &Tenant, ctx: &Ctx, who: Principal, keys_enabled: bool) -> Result<Reply, ApiError> {
    if ctx.method != "GET" {
        return Err(ApiError::new(
            405,
            "Method Not Allowed",
            format!("{} is not served by the simulator.", ctx.method),
        ));
    }
    let segments: Vec<&str> = ctx.path.trim_end_matches('/').split('/').skip(1).collect();
    match segments.as_slice() {
        ["api", "v1", "users"] => identity::users(t, ctx),
        ["api", "v1", "users", "me"] => Ok(Reply::redirect(
            301,
            format!("{}/api/v1/users/{}", ctx.base(), t.user_id(who.kind.user_index())),
        )),
        ["api", "v1", "users", id] => identity::user(t, ctx, id),
        ["api", "v1", "tenants", "me"] => {
            Ok(Reply::redirect(302, format!("{}/api/v1/tenants/{}", ctx.base(), t.tenant_id)))
        }
        ["api", "v1", "tenants", id] => identity::tenant(t, ctx, id),
        ["api", "v1", "groups"] => identity::groups(t, ctx),
        ["api", "v1", "roles"] => identity::roles(t, ctx),
        ["api", "v1", "licenses", rest @ ..] => {
            who.require_admin("licence data")?;
            match rest {
                ["overview"] => Ok(Reply::ok(t.overview_json())),
                ["status"] => Ok(Reply::ok(t.status_json())),
                ["assignments"] => licenses::assignments(t, ctx),
                ["consumption"] => licenses::consumption(t, ctx),
                ["settings"] => Ok(Reply::ok(t.license_settings_json())),
                _ => Err(not_found(ctx)),
            }
        }
        ["api", "v1", "spaces"] => content::spaces(t, ctx, who),
        ["api", "v1", "spaces", id, "assignments"] => content::space_assignments(t, ctx, id, who),
        ["api", "v1", "items"] => content::items(t, ctx, who),
        ["api", "v1", "api-keys"] => api_keys::list(t, ctx, who),
        ["api", "v1", "api-keys", "configs", id] => {
            who.require_admin("the API key configuration")?;
            api_keys::config(t, id, keys_enabled)
        }
        ["api", "v1", "audits", rest @ ..] => {
            who.require_admin("the tenant's audit events")?;
            match rest {
                [] => audits::list(t, ctx),
                ["types"] => Ok(audits::types(ctx)),
                ["settings"] => Ok(audits::settings()),
                ["archive"] => audits::archive(t, ctx),
                _ => Err(not_found(ctx)),
            }
        }
        ["api", "v1", "quotas"] => {
            let usage = crate::paging::bool_param(ctx, "reportUsage")?;
            Ok(Reply::ok(t.quotas_json(usage)))
        }
        // Qlik says the endpoint feeds "the consumption metrics in the admin console"
        // (https://qlik.dev/apis/rest/consumption) and names no rights; the simulator
        // refuses anyone but a Tenant Admin, stricter than anything documented.
        ["api", "v1", "consumption", "executions"] => {
            who.require_admin("the tenant's consumption executions")?;
            consumption::executions(t, ctx)
        }
        ["api", "v1", "oauth-clients"] => {
            who.require_admin("the tenant's OAuth clients")?;
            oauth_clients::list(t, ctx)
        }
        _ => Err(not_found(ctx)),
    }
}

fn not_found(ctx: &Ctx) -> ApiError {
    ApiError::not_found(format!("No route for {} {}.", ctx.method, ctx.path))
}
