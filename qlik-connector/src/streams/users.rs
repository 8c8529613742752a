//! `users`, `user_roles`, `user_groups`: one listing of `/v1/users` feeds all three.
//!
//! `GET /v1/users` without parameters returns only *active* users: its deprecated
//! `status` parameter defaults to `active`. Disabled, invited, deleted and provisioned
//! users can still hold licences, so the listing asks for all five statuses with a
//! SCIM `filter`. It also asks for `sort=+id`: Qlik's default order is by name, and a
//! user renamed while the listing pages moves across its cursor, read twice or not at
//! all; an id never changes (https://qlik.dev/apis/rest/users).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use connector_api::Result;
use connector_api::read::{Chain, Page, Pages, Plan, Records, Source};
use futures::{StreamExt, future};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::{Access, StreamDef, Ty, col, derived};
use crate::read::{Ctx, MAX_LIMIT, Tenant};

/// Every user status Qlik knows.
pub const STATUSES: [&str; 5] = ["active", "invited", "disabled", "deleted", "provisioned"];

/// The order users are listed in: by id, which no rename changes.
pub const STABLE_ORDER: &str = "+id";

/// The SCIM filter selecting users of every status.
pub fn all_statuses_filter() -> String {
    STATUSES.iter().map(|s| format!("status eq \"{s}\"")).collect::<Vec<_>>().join(" or ")
}

/// The `users` stream.
pub const USERS: StreamDef = StreamDef {
    name: "users",
    description: "Every user of the tenant, whatever their status (active, invited, disabled, deleted, provisioned).",
    primary_key: &["id"],
    cursor: None,
    access: Access::Everyone,
    fields: &[
        col("id", "id", Ty::String, "User id."),
        col(
            "subject",
            "subject",
            Ty::String,
            "The user's subject at the identity provider; licence assignments refer to users by it.",
        ),
        col("name", "name", Ty::String, "Display name."),
        col("email", "email", Ty::String, "Email address."),
        col(
            "status",
            "status",
            Ty::String,
            "active, invited, disabled, deleted or provisioned (other values kept as text).",
        ),
        col("tenant_id", "tenantId", Ty::String, "Tenant id."),
        col("roles", "roles", Ty::Array, "Deprecated list of default role names; see user_roles."),
        col("assigned_scopes", "assignedScopes", Ty::Array, "Scopes assigned to the user."),
        col("locale", "locale", Ty::String, "Locale from the identity provider."),
        col("preferred_locale", "preferredLocale", Ty::String, "Locale the user chose."),
        col("zoneinfo", "zoneinfo", Ty::String, "Time zone from the identity provider."),
        col("preferred_zoneinfo", "preferredZoneinfo", Ty::String, "Time zone the user chose."),
        col("picture", "picture", Ty::String, "URL of the user's picture."),
        col("invite_expiry", "inviteExpiry", Ty::Number, "When a pending invitation expires (Unix time)."),
        col("created", "created", Ty::DateTime, "Deprecated creation time; see created_at."),
        col("created_at", "createdAt", Ty::DateTime, "When the user was created."),
        col("last_updated", "lastUpdated", Ty::DateTime, "Deprecated last change time; see last_updated_at."),
        col("last_updated_at", "lastUpdatedAt", Ty::DateTime, "When the user last changed."),
    ],
    consumed: &["links", "assignedRoles", "assignedGroups"],
};

/// The `user_roles` stream.
pub const USER_ROLES: StreamDef = StreamDef {
    name: "user_roles",
    description: "Roles assigned directly to each user (users[].assignedRoles).",
    primary_key: &["user_id", "role_id"],
    cursor: None,
    access: Access::Everyone,
    fields: &[
        derived("user_id", Ty::String, "User id."),
        col("role_id", "id", Ty::String, "Role id."),
        col("name", "name", Ty::String, "Role name."),
        col("type", "type", Ty::String, "default or custom (other values kept as text)."),
        col("level", "level", Ty::String, "admin or user (other values kept as text)."),
    ],
    consumed: &[],
};

/// The `user_groups` stream.
pub const USER_GROUPS: StreamDef = StreamDef {
    name: "user_groups",
    description: "Groups each user belongs to (users[].assignedGroups).",
    primary_key: &["user_id", "group_id"],
    cursor: None,
    access: Access::Everyone,
    fields: &[
        derived("user_id", Ty::String, "User id."),
        col("group_id", "id", Ty::String, "Group id."),
        col("name", "name", Ty::String, "Group name."),
        col("provider_type", "providerType", Ty::String, "idp or custom (other values kept as text)."),
        col("assigned_roles", "assignedRoles", Ty::Array, "Roles the group grants."),
    ],
    consumed: &[],
};

/// Lists users of every status and emits them with their roles and groups.
///
/// With `max_concurrency` above 1 the listing is read from both ends at once, `sort=+id`
/// and `sort=-id`, until the two meet ([`Ends`]): each user is emitted by exactly one end,
/// in half the round trips. One listing per status would be as parallel but not exact: a
/// user whose status changes during the read would be listed twice or not at all, while
/// an id never changes.
pub struct Users;

#[async_trait]
impl Source<Tenant> for Users {
    fn streams(&self) -> &'static [&'static StreamDef] {
        &[&USERS, &USER_ROLES, &USER_GROUPS]
    }

    async fn plan(&self, ctx: &Ctx) -> Result<Plan> {
        let tenant = ctx.connector.clone();
        if tenant.settings.max_concurrency == 1 {
            return Ok(Plan::chain(Chain::new(listing(&tenant, STABLE_ORDER), split)));
        }
        let ends = Arc::new(Mutex::new(Ends::default()));
        let (more_tx, more_rx) = oneshot::channel::<()>();
        let mut more_tx = Some(more_tx);
        // The upper end starts once the lower end's second page arrives: a listing of one
        // page is read once, and the lower end's first ids are claimed before the upper
        // end's first page. Those two pages must ascend by id; if they do not, the server
        // did not sort as asked, the upper end never starts and the lower end reads alone.
        let up_ends = ends.clone();
        let up = listing(&tenant, STABLE_ORDER).enumerate().map(move |(i, page)| {
            let page = page?;
            if i > 1 {
                return Ok(page);
            }
            let page = in_order(page, &up_ends, true);
            if lock(&up_ends).up_unsorted {
                more_tx.take();
            } else if i == 1 {
                more_tx.take().map(|tx| tx.send(()));
            }
            Ok(page)
        });
        // The upper end stops at the first page that does not descend, before claiming any
        // of its ids: the lower end then reads on past them, up to the last id claimed.
        let (down_ends, broken_ends) = (ends.clone(), ends.clone());
        let down = futures::stream::once(more_rx)
            .filter_map(|more| future::ready(more.ok()))
            .flat_map(move |()| listing(&tenant, "-id"))
            .take_while(move |_| future::ready(!lock(&broken_ends).down_unsorted))
            .map(move |page| page.map(|page| in_order(page, &down_ends, false)));
        let end = |up: bool, pages: Pages| {
            let (pages_end, items_end) = (ends.clone(), ends.clone());
            let pages = pages.take_while(move |_| future::ready(!lock(&pages_end).met(up))).boxed();
            Chain::new(pages, move |user, out| match user.get("id").map(text) {
                Some(id) if !lock(&items_end).claim(&id, up) => Ok(()),
                _ => split(user, out),
            })
        };
        Ok(Plan::chains([end(true, up.boxed()), end(false, down.boxed())]))
    }
}

/// How far the two ends of the users listing have read: the highest id the ascending end
/// emitted and the lowest the descending end emitted; and whether either end found its
/// listing out of the order it asked for.
#[derive(Debug, Default)]
struct Ends {
    low: Option<String>,
    high: Option<String>,
    up_met: bool,
    down_met: bool,
    /// The last id of each end's latest page, to check the next page continues its order.
    up_last: Option<String>,
    down_last: Option<String>,
    up_unsorted: bool,
    down_unsorted: bool,
}

/// `page` of the end reading upwards (`up`) or downwards, checked against the order that
/// end asked for: every id past the one before it (within the page and from the end's
/// previous page). A page out of order marks its end unsorted and carries a warning saying
/// what the read does instead; the end reading downwards gets it back empty (its ids
/// unclaimed, so the end reading upwards reads on past them).
/// Qlik documents `sort` on `/v1/users` (https://qlik.dev/apis/rest/users), but reading
/// from both ends relies on it; a server that ignores it must not make the listing fail.
fn in_order(page: Page, ends: &Mutex<Ends>, up: bool) -> Page {
    let (items, events) = page.into_parts();
    let items: Vec<Result<Map<String, Value>>> = items.collect();
    let ids = items.iter().filter_map(|i| i.as_ref().ok()?.get("id").map(text));
    let mut ends = lock(ends);
    let last = if up { &mut ends.up_last } else { &mut ends.down_last };
    let mut sorted = true;
    for id in ids {
        if last.as_ref().is_some_and(|l| if up { id <= *l } else { id >= *l }) {
            sorted = false;
        }
        *last = Some(id);
    }
    let warned = if up { ends.up_unsorted } else { ends.down_unsorted };
    if sorted || warned {
        return Page::new(items, events);
    }
    let sort = if up { STABLE_ORDER } else { "-id" };
    let warning = format!(
        "Qlik Cloud did not list /api/v1/users in the order asked for (sort={sort}); reading the users listing from one end this run (slower; nothing is lost)"
    );
    if up {
        ends.up_unsorted = true;
        Page::new(items, events).warn(warning)
    } else {
        ends.down_unsorted = true;
        Page::new(Vec::new(), events).warn(warning)
    }
}

impl Ends {
    /// Claims `id` for the end reading upwards (`up`) or downwards; `false` once the other
    /// end has claimed it or passed it, after which that end has met the other and stops.
    fn claim(&mut self, id: &str, up: bool) -> bool {
        if up {
            if self.high.as_deref().is_some_and(|high| id >= high) {
                self.up_met = true;
                return false;
            }
            self.low = Some(id.to_string());
        } else {
            if self.low.as_deref().is_some_and(|low| id <= low) {
                self.down_met = true;
                return false;
            }
            self.high = Some(id.to_string());
        }
        true
    }

    /// Whether the end reading upwards (`up`) or downwards has met the other.
    fn met(&self, up: bool) -> bool {
        if up { self.up_met } else { self.down_met }
    }
}

/// An id as the listing orders it: text as sent, a number (a key kept as text) as written.
fn text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn lock(ends: &Mutex<Ends>) -> std::sync::MutexGuard<'_, Ends> {
    ends.lock().unwrap_or_else(|e| e.into_inner())
}

/// The users of every status, in `sort` order.
fn listing(tenant: &Tenant, sort: &str) -> Pages {
    let query =
        [("limit", tenant.limit(MAX_LIMIT)), ("filter", all_statuses_filter()), ("sort", sort.into())];
    tenant.pages(tenant.url("/api/v1/users", &query))
}

/// A user's record, and one record per role and group assigned to them.
fn split(mut user: Map<String, Value>, out: &mut Records) -> Result<()> {
    let user_id = user.get("id").cloned().unwrap_or(Value::Null);
    for role in take_objects(&mut user, "assignedRoles") {
        out.push(&USER_ROLES, USER_ROLES.record(role, &[("user_id", user_id.clone())]));
    }
    for group in take_objects(&mut user, "assignedGroups") {
        out.push(&USER_GROUPS, USER_GROUPS.record(group, &[("user_id", user_id.clone())]));
    }
    out.push(&USERS, USERS.record(user, &[]));
    Ok(())
}

/// Removes the array `key` from `obj`, keeping its object items.
fn take_objects(obj: &mut Map<String, Value>, key: &str) -> Vec<Map<String, Value>> {
    match obj.remove(key) {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|i| match i {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_ends_claim_each_id_once_and_stop_where_they_meet() {
        let ids: Vec<String> = (0..9).map(|i| format!("{i:024x}")).collect();
        let mut ends = Ends::default();
        let mut up = ids.iter();
        let mut down = ids.iter().rev();
        let mut claimed = Vec::new();
        while !(ends.met(true) && ends.met(false)) {
            for (up_next, is_up) in [(up.next(), true), (down.next(), false)] {
                if let Some(id) = up_next.filter(|_| !ends.met(is_up))
                    && ends.claim(id, is_up)
                {
                    claimed.push(id.clone());
                }
            }
        }
        claimed.sort();
        assert_eq!(claimed, ids, "every id once");
    }

    #[test]
    fn filter_names_every_status() {
        assert_eq!(
            all_statuses_filter(),
            r#"status eq "active" or status eq "invited" or status eq "disabled" or status eq "deleted" or status eq "provisioned""#
        );
    }
}
