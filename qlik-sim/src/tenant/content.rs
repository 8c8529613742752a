//! Spaces, their member assignments, and apps.

use serde_json::{Value, json};

use super::Tenant;
use crate::synth::{Kind, h, object_id, pick, rfc3339_ms, spread_ms, uuid};

/// The most assignments one space has; assignment ids encode `space * SLOTS + j`.
pub(crate) const SPACE_ASSIGNMENT_SLOTS: u64 = 8;

const SPACE_TYPES: [&str; 4] = ["shared", "shared", "managed", "data"];
const TOPICS: [&str; 10] = [
    "Sales",
    "Finance",
    "Försäljningsanalys",
    "Ventas España",
    "Supply chain",
    "HR analytics",
    "Marketing",
    "Données clients",
    "Operations",
    "Executive KPIs",
];

/// One space.
#[derive(Clone, Debug)]
pub(crate) struct SpaceRec {
    pub index: u64,
    pub id: String,
    pub kind: &'static str,
}

/// One member assignment of a space.
#[derive(Clone, Debug)]
pub(crate) struct SpaceAssignmentRec {
    pub id: String,
    pub space: u64,
    pub group: bool,
    pub assignee: u64,
}

/// One app or QlikView document: indices from `apps` on are `qvapp` items.
#[derive(Clone, Debug)]
pub(crate) struct AppRec {
    pub index: u64,
    pub id: String,
    pub resource_type: &'static str,
}

fn assignable_roles(kind: &str) -> &'static [&'static str] {
    match kind {
        "managed" => &[
            "consumer",
            "contributor",
            "dataconsumer",
            "facilitator",
            "operator",
            "publisher",
            "basicconsumer",
        ],
        "data" => &["consumer", "dataconsumer", "facilitator", "operator", "producer"],
        _ => &["consumer", "contributor", "dataconsumer", "facilitator", "producer", "codeveloper"],
    }
}

impl Tenant {
    /// Space `i`.
    pub(crate) fn space(&self, i: u64) -> SpaceRec {
        SpaceRec { index: i, id: self.space_id(i), kind: pick(&SPACE_TYPES, h(self.seed, Kind::Space, i, 1)) }
    }

    /// The owner (user index) of space `i`.
    fn space_owner(&self, i: u64) -> u64 {
        h(self.seed, Kind::Space, i, 2) % self.users
    }

    /// Whether `user` can see space `i`. A Tenant Admin sees every space; anyone else the
    /// spaces they own and those they are a member of, about two in three here: Qlik lists
    /// only the spaces the caller can access (https://qlik.dev/apis/rest/spaces).
    pub(crate) fn space_visible(&self, i: u64, user: u64, admin: bool) -> bool {
        admin || self.space_owner(i) == user || !h(self.seed, Kind::Space, i, 30).is_multiple_of(3)
    }

    /// The owner (user index) of app `i`.
    fn app_owner(&self, i: u64) -> u64 {
        h(self.seed, Kind::App, i, 1) % self.users
    }

    /// The space app `i` is in; `None` for an app in its owner's personal space.
    pub(crate) fn app_space(&self, i: u64) -> Option<u64> {
        let slot = h(self.seed, Kind::App, i, 8) % (self.spaces + 1);
        (slot < self.spaces).then_some(slot)
    }

    /// Whether `user` can see app `i`: a Tenant Admin every app; anyone else the apps of
    /// the spaces they see and their own personal apps
    /// (https://qlik.dev/apis/rest/items).
    pub(crate) fn app_visible(&self, i: u64, user: u64, admin: bool) -> bool {
        match self.app_space(i) {
            _ if admin => true,
            Some(space) => self.space_visible(space, user, false),
            None => self.app_owner(i) == user,
        }
    }

    /// The `Space` JSON of `space`.
    pub(crate) fn space_json(&self, space: &SpaceRec, base: &str) -> Value {
        let s = self.seed;
        let i = space.index;
        let owner = self.user_id(self.space_owner(i));
        let created = spread_ms(h(s, Kind::Space, i, 3));
        json!({
            "id": space.id,
            "name": format!("{} {} {i}", pick(&TOPICS, h(s, Kind::Space, i, 4)), space.kind),
            "description": format!("Simulated {} space {i}", space.kind),
            "type": space.kind,
            "ownerId": owner,
            "createdBy": owner,
            "tenantId": self.tenant_id,
            "createdAt": rfc3339_ms(created),
            "updatedAt": rfc3339_ms(created + (h(s, Kind::Space, i, 5) % 86_400_000) as i64),
            "meta": {
                "actions": ["create", "delete", "read", "update"],
                "roles": ["producer"],
                "assignableRoles": assignable_roles(space.kind),
            },
            "links": {
                "self": {"href": format!("{base}/api/v1/spaces/{}", space.id)},
                "assignments": {"href": format!("{base}/api/v1/spaces/{}/assignments", space.id)},
            },
        })
    }

    /// How many member assignments space `i` has (0 to 5; none without users).
    pub(crate) fn space_assignment_count(&self, i: u64) -> u64 {
        h(self.seed, Kind::Space, i, 20) % 6
    }

    /// Assignment `j` of space `space`.
    pub(crate) fn space_assignment(&self, space: u64, j: u64) -> SpaceAssignmentRec {
        let r = h(self.seed, Kind::SpaceAssignment, space * SPACE_ASSIGNMENT_SLOTS + j, 1);
        let group = self.groups > 0 && r.is_multiple_of(4);
        SpaceAssignmentRec {
            id: object_id(self.seed, Kind::SpaceAssignment, space * SPACE_ASSIGNMENT_SLOTS + j),
            space,
            group,
            assignee: (r >> 8) % if group { self.groups } else { self.users },
        }
    }

    /// The `Assignment` JSON of `a`.
    pub(crate) fn space_assignment_json(&self, a: &SpaceAssignmentRec, base: &str) -> Value {
        let space = self.space(a.space);
        let r = h(self.seed, Kind::SpaceAssignment, a.space * SPACE_ASSIGNMENT_SLOTS + 1, 2);
        let roles = assignable_roles(space.kind);
        let mut granted = vec![pick(roles, r)];
        let second = pick(roles, r >> 16);
        if r.is_multiple_of(3) && !granted.contains(&second) {
            granted.push(second);
        }
        let created = spread_ms(r >> 24);
        let admin = self.user_id(0);
        json!({
            "id": a.id,
            "type": if a.group { "group" } else { "user" },
            "assigneeId": if a.group { self.group_id(a.assignee) } else { self.user_id(a.assignee) },
            "roles": granted,
            "spaceId": space.id,
            "tenantId": self.tenant_id,
            "createdAt": rfc3339_ms(created),
            "createdBy": admin,
            "updatedAt": rfc3339_ms(created),
            "updatedBy": admin,
            "links": {
                "self": {"href": format!("{base}/api/v1/spaces/{}/assignments/{}", space.id, a.id)},
                "space": {"href": format!("{base}/api/v1/spaces/{}", space.id)},
            },
        })
    }

    /// App `i`: a Qlik Sense app below `apps`, a QlikView document from there on.
    pub(crate) fn app(&self, i: u64) -> AppRec {
        AppRec {
            index: i,
            id: object_id(self.seed, Kind::App, i),
            resource_type: if i < self.apps { "app" } else { "qvapp" },
        }
    }

    /// Views of app `i` over the last 28 days as `itemViews` reports them: four weeks, the
    /// total and unique viewers summed over them (every fifth app is never opened)
    /// (https://qlik.dev/apis/rest/items).
    pub(crate) fn app_views_json(&self, i: u64) -> Value {
        let r = h(self.seed, Kind::App, i, 9);
        let weekly =
            |w: u64| if r.is_multiple_of(5) { (0, 0) } else { ((r >> (8 * w)) % 40, (r >> (8 * w + 4)) % 8) };
        let first_week_ms = crate::synth::DATA_NOW_MS - 28 * 86_400_000;
        let week: Vec<Value> = (0..4)
            .map(|w| {
                let (total, unique) = weekly(w);
                json!({"start": rfc3339_ms(first_week_ms + w as i64 * 7 * 86_400_000), "total": total, "unique": unique.min(total)})
            })
            .collect();
        let total: u64 = (0..4).map(|w| weekly(w).0).sum();
        let unique: u64 = (0..4).map(|w| weekly(w).1.min(weekly(w).0)).max().unwrap_or(0);
        let trend = (weekly(3).1 as f64 - weekly(0).1 as f64) / 3.0;
        json!({"total": total, "unique": unique, "trend": trend, "week": week})
    }

    /// The `itemResultResponseBody` JSON of `app`.
    pub(crate) fn app_json(&self, app: &AppRec, base: &str) -> Value {
        let s = self.seed;
        let i = app.index;
        let resource_id = uuid(s, Kind::App, i, 3);
        let owner = self.user_id(self.app_owner(i));
        let created = spread_ms(h(s, Kind::App, i, 2));
        let updated = created + (h(s, Kind::App, i, 4) % (30 * 86_400_000)) as i64;
        let name = format!("{} app {i}", pick(&TOPICS, h(s, Kind::App, i, 5)));
        let actions = ["read", "update", "delete", "reload", "duplicate", "export"];
        let mut v = json!({
            "id": app.id,
            "name": name,
            "description": "",
            "tenantId": self.tenant_id,
            "ownerId": owner,
            "creatorId": owner,
            "updaterId": owner,
            "createdAt": rfc3339_ms(created),
            "updatedAt": rfc3339_ms(updated),
            "isFavorited": false,
            "resourceType": app.resource_type,
            "resourceId": resource_id,
            "resourceLink": format!("{base}/api/v1/apps/{resource_id}"),
            "resourceCreatedAt": rfc3339_ms(created),
            "resourceUpdatedAt": rfc3339_ms(updated),
            "resourceReloadStatus": "ok",
            "resourceReloadEndTime": rfc3339_ms(updated),
            "itemViews": self.app_views_json(i),
            "resourceSize": {"appFile": (h(s, Kind::App, i, 6) % 500_000_000) as f64, "appMemory": (h(s, Kind::App, i, 7) % 900_000_000) as f64},
            "resourceAttributes": {
                "id": resource_id,
                "name": name,
                "owner": owner,
                "usage": "ANALYTICS",
                "published": false,
            },
            "resourceCustomAttributes": {},
            "actions": actions,
            "collectionIds": [],
            "meta": {"isFavorited": false, "actions": actions, "tags": [], "collections": []},
            "links": {
                "self": {"href": format!("{base}/api/v1/items/{}", app.id)},
                "open": {"href": format!("{base}/sense/app/{resource_id}")},
            },
        });
        if let Some(space) = self.app_space(i) {
            v["spaceId"] = json!(self.space_id(space));
        }
        v
    }
}
