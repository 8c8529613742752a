//! Users, groups and roles.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::Tenant;
use crate::synth::{Kind, TENANT_CREATED_MS, date_only, h, pick, rfc3339_ms, spread_ms};

/// Qlik's default roles: `(name, level)`. Ids are role indices 0.. in this order; custom roles follow.
pub(crate) const DEFAULT_ROLES: [(&str, &str); 10] = [
    ("TenantAdmin", "admin"),
    ("AnalyticsAdmin", "admin"),
    ("DataAdmin", "admin"),
    ("AuditAdmin", "admin"),
    ("SharedSpaceCreator", "user"),
    ("ManagedSpaceCreator", "user"),
    ("DataSpaceCreator", "user"),
    ("PrivateAnalyticsContentCreator", "user"),
    ("DataServicesContributor", "user"),
    ("AutomationCreator", "user"),
];

/// Chance in percent that a user holds each default role.
const DEFAULT_ROLE_PERCENT: [u64; 10] = [1, 4, 3, 1, 35, 8, 10, 50, 20, 10];

/// Names of default roles the deprecated `User.roles` enum may carry.
const LEGACY_ROLE_NAMES: [&str; 6] = [
    "TenantAdmin",
    "AnalyticsAdmin",
    "DataAdmin",
    "DataSpaceCreator",
    "ManagedSpaceCreator",
    "SharedSpaceCreator",
];

const FIRST: [&str; 20] = [
    "Anna",
    "Björn",
    "Zoë",
    "José",
    "Łukasz",
    "Søren",
    "Chloé",
    "Mohammed",
    "Aiko",
    "Sven",
    "María",
    "François",
    "Ingrid",
    "Jürgen",
    "Priya",
    "Oğuz",
    "Émilie",
    "Thảo",
    "Kai",
    "Olga",
];
const LAST: [&str; 20] = [
    "Andersson",
    "Öztürk",
    "García",
    "Nowak",
    "Dubois",
    "Müller",
    "山田",
    "Østergaard",
    "Smith",
    "Kowalczyk",
    "Núñez",
    "Lindqvist",
    "Rossi",
    "Ivanova",
    "Šimek",
    "O'Brien",
    "Håkansson",
    "Brontë",
    "Zhang",
    "Fernández",
];
const LOCALES: [(&str, &str); 6] = [
    ("en", "Europe/London"),
    ("sv", "Europe/Stockholm"),
    ("de", "Europe/Berlin"),
    ("fr", "Europe/Paris"),
    ("es", "Europe/Madrid"),
    ("ja", "Asia/Tokyo"),
];
const DEPARTMENTS: [&str; 10] = [
    "Sales",
    "Finance",
    "Marketing",
    "Engineering",
    "HR",
    "Försäljning",
    "Support",
    "Legal",
    "Data Office",
    "Executives",
];
const REGIONS: [&str; 5] = ["EMEA", "AMER", "APAC", "Nordics", "DACH"];

/// The name a renamed user takes that sorts before every generated name.
const RENAMED_FIRST: &str = "Aaron Aaberg";
/// The name a renamed user takes that sorts after every generated name.
const RENAMED_LAST: &str = "Żaneta Żak";

/// What the users listing is sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SortKey {
    Name,
    Id,
}

/// The users listing's order: `+name` by default, as Qlik's (https://qlik.dev/apis/rest/users).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UserOrder {
    pub by: SortKey,
    pub descending: bool,
}

/// The five user statuses Qlik knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UserStatus {
    Active,
    Invited,
    Disabled,
    Deleted,
    Provisioned,
}

impl UserStatus {
    /// Every status, in Qlik's enum order.
    pub(crate) const ALL: [UserStatus; 5] = [
        UserStatus::Active,
        UserStatus::Invited,
        UserStatus::Disabled,
        UserStatus::Deleted,
        UserStatus::Provisioned,
    ];

    /// The wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Invited => "invited",
            UserStatus::Disabled => "disabled",
            UserStatus::Deleted => "deleted",
            UserStatus::Provisioned => "provisioned",
        }
    }

    /// Parses a wire name, case-insensitively.
    pub(crate) fn parse(s: &str) -> Option<UserStatus> {
        UserStatus::ALL.into_iter().find(|st| st.as_str().eq_ignore_ascii_case(s))
    }
}

/// One user, as plain data.
#[derive(Clone, Debug)]
pub(crate) struct UserRec {
    pub id: String,
    pub subject: String,
    pub name: String,
    pub email: Option<String>,
    pub status: UserStatus,
    /// Role indices (see [`DEFAULT_ROLES`]; custom roles follow).
    pub roles: Vec<u64>,
    /// Group indices.
    pub groups: Vec<u64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub locale: (&'static str, &'static str),
}

/// One role, as plain data.
#[derive(Clone, Debug)]
pub(crate) struct RoleRec {
    pub index: u64,
    pub id: String,
    pub name: String,
    pub custom: bool,
    pub level: &'static str,
}

/// Drops diacritics and anything else an email local part should not carry.
fn ascii_fold(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let folded = match c {
                'å' | 'ä' | 'á' | 'à' | 'â' => 'a',
                'ö' | 'ø' | 'ó' | 'ò' | 'ô' | 'Ö' | 'Ø' => 'o',
                'é' | 'ë' | 'è' | 'ê' | 'É' => 'e',
                'ü' | 'ú' | 'ù' => 'u',
                'í' | 'ï' => 'i',
                'ł' | 'Ł' => 'l',
                'ñ' => 'n',
                'ç' => 'c',
                'ğ' => 'g',
                'š' | 'Š' => 's',
                'ả' => 'a',
                c if c.is_ascii_alphanumeric() => c.to_ascii_lowercase(),
                _ => return None,
            };
            Some(folded)
        })
        .collect()
}

impl Tenant {
    /// User `i`. Users 0 and 1 are the admin and non-admin key holders: active, with email.
    pub(crate) fn user(&self, i: u64) -> UserRec {
        let s = self.seed;
        let r = h(s, Kind::User, i, 1);
        let status = if i < 6 {
            UserStatus::Active
        } else {
            match (r >> 16) % 100 {
                0..78 => UserStatus::Active,
                78..86 => UserStatus::Disabled,
                86..92 => UserStatus::Invited,
                92..97 => UserStatus::Deleted,
                _ => UserStatus::Provisioned,
            }
        };
        let (first, last) = (pick(&FIRST, r), pick(&LAST, r >> 8));
        let email = (i < 6 || (r >> 24) % 100 >= 5)
            .then(|| format!("{}.{}{i}@example.com", ascii_fold(first), ascii_fold(last)));
        let mut roles = Vec::new();
        match i {
            0 => roles.extend([0, 4, 7]),
            1 => roles.extend([4, 7]),
            _ => {
                let rr = h(s, Kind::User, i, 2);
                for (k, pct) in DEFAULT_ROLE_PERCENT.iter().enumerate() {
                    if (rr >> (k * 6)) % 100 < *pct {
                        roles.push(k as u64);
                    }
                }
            }
        }
        for c in 0..self.roles_custom {
            let holds = if i < 2 { c == 0 } else { h(s, Kind::User, i, 100 + c) % 100 < 10 };
            if holds {
                roles.push(DEFAULT_ROLES.len() as u64 + c);
            }
        }
        let mut groups = Vec::new();
        if self.groups > 0 {
            let wanted = (h(s, Kind::User, i, 3) % 4).min(self.groups);
            let mut salt = 10;
            while (groups.len() as u64) < wanted {
                let g = h(s, Kind::User, i, salt) % self.groups;
                if !groups.contains(&g) {
                    groups.push(g);
                }
                salt += 1;
            }
        }
        let created_ms = spread_ms(h(s, Kind::User, i, 4));
        let updated_ms = created_ms + (h(s, Kind::User, i, 5) % (90 * 86_400_000)) as i64;
        UserRec {
            id: self.user_id(i),
            subject: format!("auth0|{:016x}{:08x}", h(s, Kind::User, i, 6), i),
            name: self.user_name(i),
            email,
            status,
            roles,
            groups,
            created_ms,
            updated_ms,
            locale: pick(&LOCALES, r >> 32),
        }
    }

    /// The display name of user `i` now: after the rename of
    /// [`Situations::rename_during_users_listing`](crate::Situations), the last user
    /// in name order sorts first and the first sorts last.
    pub(crate) fn user_name(&self, i: u64) -> String {
        if self.renamed.load(Ordering::Relaxed) {
            let n = self.users_by_name.len();
            if Some(&(i as u32)) == self.users_by_name.last() {
                return RENAMED_FIRST.to_owned();
            }
            if n > 1 && self.users_by_name[0] == i as u32 {
                return RENAMED_LAST.to_owned();
            }
        }
        self.original_name(i)
    }

    fn original_name(&self, i: u64) -> String {
        let r = h(self.seed, Kind::User, i, 1);
        format!("{} {}", pick(&FIRST, r), pick(&LAST, r >> 8))
    }

    /// User indices in `+id` order: an id's first 8 hex digits are its index masked, so
    /// ids sort by that.
    pub(crate) fn order_by_id(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.users as u32).collect();
        order.sort_by_cached_key(|i| self.user_id(u64::from(*i)));
        order
    }

    /// User indices in `+name` order, ties broken by id.
    pub(crate) fn order_by_name(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.users as u32).collect();
        order.sort_by_cached_key(|i| (self.original_name(u64::from(*i)), self.user_id(u64::from(*i))));
        order
    }

    /// The user at position `p` of the users listing in `order`.
    pub(crate) fn user_at(&self, order: UserOrder, p: u64) -> u64 {
        let n = self.users;
        let p = if order.descending { n - 1 - p } else { p };
        let index = match order.by {
            SortKey::Id => self.users_by_id[p as usize],
            // The rename swaps the first and the last user in name order.
            SortKey::Name if self.renamed.load(Ordering::Relaxed) && n > 1 => {
                let swapped = if p == 0 {
                    n - 1
                } else if p == n - 1 {
                    0
                } else {
                    p
                };
                self.users_by_name[swapped as usize]
            }
            SortKey::Name => self.users_by_name[p as usize],
        };
        u64::from(index)
    }

    /// The `assignedRoles` entry of role `i`.
    fn assigned_role(&self, i: u64) -> Value {
        let role = self.role(i);
        json!({
            "id": role.id,
            "name": role.name,
            "type": if role.custom { "custom" } else { "default" },
            "level": role.level,
        })
    }

    /// The `User` JSON of `user`, links rooted at `base`.
    pub(crate) fn user_json(&self, user: &UserRec, base: &str) -> Value {
        let legacy: Vec<&str> = user
            .roles
            .iter()
            .filter_map(|r| DEFAULT_ROLES.get(*r as usize).map(|d| d.0))
            .filter(|n| LEGACY_ROLE_NAMES.contains(n))
            .collect();
        let mut v = json!({
            "id": user.id,
            "tenantId": self.tenant_id,
            "subject": user.subject,
            "name": user.name,
            "status": user.status.as_str(),
            "created": date_only(user.created_ms),
            "lastUpdated": date_only(user.updated_ms),
            "createdAt": rfc3339_ms(user.created_ms),
            "lastUpdatedAt": rfc3339_ms(user.updated_ms),
            "locale": user.locale.0,
            "preferredLocale": user.locale.0,
            "zoneinfo": user.locale.1,
            "preferredZoneinfo": user.locale.1,
            "roles": legacy,
            "assignedRoles": user.roles.iter().map(|r| self.assigned_role(*r)).collect::<Vec<_>>(),
            "assignedGroups": user.groups.iter().map(|g| json!({
                "id": self.group_id(*g),
                "name": self.group_name(*g),
                "providerType": "idp",
            })).collect::<Vec<_>>(),
            "assignedScopes": [],
            "links": {"self": {"href": format!("{base}/api/v1/users/{}", user.id)}},
        });
        if let Some(email) = &user.email {
            v["email"] = json!(email);
        }
        if user.status == UserStatus::Invited {
            v["inviteExpiry"] = json!(user.updated_ms / 1000 + 7 * 86_400);
        }
        v
    }

    /// The name of group `i` (unique).
    pub(crate) fn group_name(&self, i: u64) -> String {
        let base = format!("{} {}", pick(&DEPARTMENTS, i), REGIONS[((i / 10) % 5) as usize]);
        if i < 50 { base } else { format!("{base} {}", i / 50 + 1) }
    }

    /// The `Group` JSON of group `i`.
    pub(crate) fn group_json(&self, i: u64, base: &str) -> Value {
        let s = self.seed;
        let id = self.group_id(i);
        let created = spread_ms(h(s, Kind::Group, i, 1));
        let roles: Vec<Value> =
            if h(s, Kind::Group, i, 2).is_multiple_of(5) { vec![self.assigned_role(4)] } else { Vec::new() };
        json!({
            "id": id,
            "tenantId": self.tenant_id,
            "name": self.group_name(i),
            "status": if h(s, Kind::Group, i, 3).is_multiple_of(20) { "disabled" } else { "active" },
            "createdAt": rfc3339_ms(created),
            "lastUpdatedAt": rfc3339_ms(created + (h(s, Kind::Group, i, 4) % 86_400_000) as i64),
            "assignedRoles": roles,
            "links": {"self": {"href": format!("{base}/api/v1/groups/{id}")}},
        })
    }

    /// Role `i`: default roles first, then custom ones (the first custom role grants
    /// "Manage API keys", as Qlik's post-January-2026 model expects).
    pub(crate) fn role(&self, i: u64) -> RoleRec {
        let id = self.role_id(i);
        match DEFAULT_ROLES.get(i as usize) {
            Some((name, level)) => RoleRec { index: i, id, name: (*name).to_owned(), custom: false, level },
            None => {
                let c = i - DEFAULT_ROLES.len() as u64;
                let name = if c == 0 { "API key managers".to_owned() } else { format!("Custom role {c}") };
                RoleRec { index: i, id, name, custom: true, level: "user" }
            }
        }
    }

    /// The `Role` JSON of role `i`.
    pub(crate) fn role_json(&self, i: u64, base: &str) -> Value {
        let role = self.role(i);
        let created = if role.custom { spread_ms(h(self.seed, Kind::Role, i, 1)) } else { TENANT_CREATED_MS };
        let permissions: Vec<&str> = match (role.custom, role.index) {
            (true, i) if i == DEFAULT_ROLES.len() as u64 => vec!["api-key:manage"],
            (true, _) => vec!["app:read", "space:read"],
            (false, 0) => vec!["tenant:admin"],
            (false, _) => Vec::new(),
        };
        let mut v = json!({
            "id": role.id,
            "tenantId": self.tenant_id,
            "name": role.name,
            "type": if role.custom { "custom" } else { "default" },
            "level": role.level,
            "description": if role.custom {
                format!("{} (custom role)", role.name)
            } else {
                format!("Qlik default role {}", role.name)
            },
            "permissions": permissions,
            "assignedScopes": [],
            "createdAt": rfc3339_ms(created),
            "lastUpdatedAt": rfc3339_ms(created),
            "canEdit": role.custom,
            "canDelete": role.custom,
            "links": {"self": {"href": format!("{base}/api/v1/roles/{}", role.id)}},
        });
        if role.custom {
            v["createdBy"] = json!(self.user_id(0));
            v["updatedBy"] = json!(self.user_id(0));
        }
        v
    }

    /// The `Tenant` JSON, reached at `host`: its hostname first, then its aliases.
    pub(crate) fn tenant_json(&self, base: &str, host: &str) -> Value {
        let hostnames = match &self.hostname {
            Some(own) => vec![own.as_str(), host],
            None => vec![host],
        };
        json!({
            "id": self.tenant_id,
            "name": self.name(),
            "hostnames": hostnames,
            "createdByUser": self.user_id(0),
            "datacenter": "eu-west-1",
            "created": date_only(TENANT_CREATED_MS),
            "lastUpdated": date_only(TENANT_CREATED_MS),
            "status": "active",
            "enableAnalyticCreation": true,
            "autoAssignCreateSharedSpacesRoleToProfessionals": true,
            "autoAssignPrivateAnalyticsContentCreatorRoleToProfessionals": true,
            "autoAssignDataServicesContributorRoleToProfessionals": true,
            "links": {"self": {"href": format!("{base}/api/v1/tenants/{}", self.tenant_id)}},
        })
    }
}
