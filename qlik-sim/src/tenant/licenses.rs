//! Licence overview, assignments (with orphans) and consumption events.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::Tenant;
use crate::config::Subscription;
use crate::synth::{
    CONSUMPTION_START_MS, DATA_NOW_MS, Kind, h, object_id, pick, rfc3339_ms, spread_ms, uuid,
};

/// The `product` of a user-based tenant: the example of Qlik's definitions, a user-based
/// edition (https://qlik.dev/apis/rest/licenses).
const USER_BASED_PRODUCT: &str = "Qlik Sense Enterprise SaaS";
/// The `product` of a capacity-based tenant. Qlik publishes no example; this is the edition's
/// name (https://help.qlik.com/en-US/cloud-services/Subsystems/Hub/Content/Sense_Hub/Admin/comparing-subscriptions.htm).
/// Qlik's single-tenant monitoring-app deployer looks for `QLIK SMT` in it
/// (github.com/qlik-oss/qlik-cloud-monitoring-apps, `automations/singleTenantDeployer.json`),
/// so the real string differs; clients should not rely on it, and the simulator's capacity
/// tenant signals its kind through its allotments alone.
const CAPACITY_PRODUCT: &str = "Qlik Cloud Analytics Premium";

/// Consumption events come in runs of this many, some of which end in the same second.
pub(crate) const TIE_GROUP: u64 = 3;
/// How far before the data's "now" late-recorded events end: 36 hours, inside the
/// connector's default 48-hour look-back.
pub(crate) const LATE_WINDOW_MS: i64 = 36 * 3_600_000;
const VALID: &str = "2025-01-01/2027-12-31";

/// One licence assignment.
#[derive(Clone, Debug)]
pub(crate) struct AssignmentRec {
    pub subject: String,
    pub kind: &'static str,
    pub excess: bool,
    pub created_ms: i64,
    /// The holder's user index, `None` for an orphan (no user on this tenant).
    pub user: Option<u64>,
    /// Whether the row carries `userId` and `name` (shape variants only).
    pub names_user: bool,
    /// Whether the row lacks `type` (shape variants only).
    pub untyped: bool,
}

/// Who holds the licence at a position of the plain assignment listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    /// Assignment `j` of a current user.
    User(u64),
    /// Orphan assignment `k`.
    Orphan(u64),
}

/// One consumption event.
#[derive(Clone, Debug)]
pub(crate) struct EventRec {
    pub id: String,
    pub end_ms: i64,
    pub user: u64,
    pub app: u64,
    pub usage: &'static str,
    pub minutes: u64,
    pub seconds: u64,
}

/// A long JWT-shaped licence token, as Qlik returns in `licenseKey`.
pub(crate) fn license_key(t: &Tenant) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
    let payload = json!({
        "licenseNumber": t.license_number,
        "product": t.product(),
        "tenantId": t.tenant_id,
        "valid": VALID,
        "nonce": crate::synth::alnum(t.seed, Kind::License, 0, 2, 64),
    });
    let signature: Vec<u8> = (0..256u64).map(|k| (h(t.seed, Kind::License, k, 3) & 0xff) as u8).collect();
    format!("{header}.{}.{}", URL_SAFE_NO_PAD.encode(payload.to_string()), URL_SAFE_NO_PAD.encode(signature))
}

impl Tenant {
    /// Assignment `j` of a current user. Assignments spread evenly over the users, so
    /// disabled, invited and deleted users hold some too; user 0 (the admin) is professional.
    pub(crate) fn assignment(&self, j: u64) -> AssignmentRec {
        let u = j * self.users / self.assignments.max(1);
        let r = h(self.seed, Kind::Assignment, j, 1);
        let professional = u == 0 || r % 10 < 3;
        let variants = self.situations.assignment_shape_variants;
        AssignmentRec {
            subject: self.user(u).subject,
            kind: if professional { "professional" } else { "analyzer" },
            excess: u != 0 && (r >> 8) % 50 == 1,
            created_ms: spread_ms(r >> 16),
            user: Some(u),
            names_user: variants && j % 4 == 1,
            untyped: variants && j % 9 == 4,
        }
    }

    /// Orphan assignment `o`: its subject belongs to no user of this tenant (another tenant
    /// or a client-managed site on the same entitlement holds it).
    pub(crate) fn orphan(&self, o: u64) -> AssignmentRec {
        let r = h(self.seed, Kind::Orphan, o, 1);
        AssignmentRec {
            subject: format!("auth0|{:016x}{:08x}", h(self.seed, Kind::Orphan, o, 6), o),
            kind: if r.is_multiple_of(2) { "professional" } else { "analyzer" },
            excess: false,
            created_ms: spread_ms(r >> 16),
            user: None,
            names_user: false,
            untyped: self.situations.assignment_shape_variants && o % 9 == 4,
        }
    }

    /// Length of the plain assignment listing: every global assignment of the entitlement,
    /// orphans included (https://qlik.dev/changelog/66-license-assignment-orphans).
    pub(crate) fn assignment_listing_len(&self) -> u64 {
        self.assignments + self.orphans
    }

    /// Orphans at positions up to `p` of the plain listing. Orphan `k` sits at position
    /// `(k + 1) * len / (orphans + 1)`: spread evenly among the users' assignments, so a
    /// client that marks orphans meets them on every page.
    fn orphans_up_to(&self, p: u64) -> u64 {
        let n = self.assignment_listing_len();
        (((p + 1) * (self.orphans + 1)).div_ceil(n) - 1).min(self.orphans)
    }

    /// The holder at position `p` of the plain listing.
    pub(crate) fn holder(&self, p: u64) -> Holder {
        let up_to = self.orphans_up_to(p);
        let before = if p == 0 { 0 } else { self.orphans_up_to(p - 1) };
        if up_to > before { Holder::Orphan(up_to - 1) } else { Holder::User(p - up_to) }
    }

    /// The assignment at position `p` of the plain listing.
    pub(crate) fn listed_assignment(&self, p: u64) -> AssignmentRec {
        match self.holder(p) {
            Holder::User(j) => self.assignment(j),
            Holder::Orphan(k) => self.orphan(k),
        }
    }

    /// The JSON of an assignment.
    pub(crate) fn assignment_json(&self, a: &AssignmentRec) -> Value {
        let mut v = json!({
            "subject": a.subject,
            "excess": a.excess,
            "created": rfc3339_ms(a.created_ms),
        });
        if !a.untyped {
            v["type"] = json!(a.kind);
        }
        if let (true, Some(u)) = (a.names_user, a.user) {
            v["userId"] = json!(self.user_id(u));
            v["name"] = json!(self.user(u).name);
        }
        v
    }

    /// Milliseconds the consumption events span: a year, or a second per event when there
    /// are more events than seconds in a year, so events of different tie groups never
    /// share a second.
    fn consumption_span_ms(&self) -> u128 {
        ((DATA_NOW_MS - CONSUMPTION_START_MS) as u128).max(u128::from(self.events) * 1000)
    }

    /// `endTime` of event `i`: non-decreasing in `i`, whole seconds. Engine sessions end
    /// together: in each run of [`TIE_GROUP`] events, those from a hashed offset on share one
    /// `endTime`, so ties straddle page breaks at most page sizes (Qlik records `endTime` to
    /// the second, https://qlik.dev/apis/rest/licenses).
    pub(crate) fn event_end_ms(&self, i: u64) -> i64 {
        let first = i - i % TIE_GROUP;
        let shared_from = first + h(self.seed, Kind::Event, first, 7) % TIE_GROUP;
        let k = if i >= shared_from { shared_from } else { i };
        let ms = CONSUMPTION_START_MS
            + (u128::from(k) * self.consumption_span_ms() / u128::from(self.events.max(1))) as i64;
        ms - ms.rem_euclid(1000)
    }

    /// Events Qlik records late, sorted: those ending in the last [`LATE_WINDOW_MS`] of the
    /// data, every third one and always the one before the last. They are missing from the
    /// consumption listing until a client has read it to its end once, so they appear after
    /// a sync whose cursor is already past their `endTime`, as issue 13's stand-in tenant
    /// showed for `GET /v1/licenses/consumption` (https://qlik.dev/apis/rest/licenses).
    pub(crate) fn late_events(&self) -> Vec<u64> {
        let last = self.events.saturating_sub(1);
        let mut late: Vec<u64> = (0..last)
            .rev()
            .take_while(|i| self.event_end_ms(*i) >= DATA_NOW_MS - LATE_WINDOW_MS)
            .filter(|i| i + 2 == self.events || h(self.seed, Kind::Event, *i, 8).is_multiple_of(3))
            .collect();
        late.reverse();
        late
    }

    /// Consumption event `i`.
    pub(crate) fn event(&self, i: u64) -> EventRec {
        let r = h(self.seed, Kind::Event, i, 1);
        EventRec {
            id: object_id(self.seed, Kind::Event, i),
            end_ms: self.event_end_ms(i),
            user: r % self.users,
            app: (r >> 20) % self.apps.max(1),
            usage: pick(&["analyzer_time", "analyzer_time", "analyzer", "professional"], r >> 40),
            minutes: 6 * (1 + (r >> 44) % 10),
            seconds: (r >> 50) % 60,
        }
    }

    /// The JSON of a consumption event.
    pub(crate) fn event_json(&self, e: &EventRec) -> Value {
        json!({
            "id": e.id,
            "appId": uuid(self.seed, Kind::App, e.app, 3),
            "userId": self.user_id(e.user),
            "endTime": rfc3339_ms(e.end_ms),
            "duration": format!("PT{}M{}S", e.minutes - 1, e.seconds),
            "sessionId": uuid(self.seed, Kind::Event, e.user ^ (e.end_ms as u64 / 3_600_000), 4),
            "allotmentId": uuid(self.seed, Kind::License, 1, 5),
            "minutesUsed": if e.usage == "analyzer_time" { e.minutes } else { 0 },
            "capacityUsed": 0,
            "licenseUsage": e.usage,
        })
    }

    /// The licensed product, as `licenses/overview` and `licenses/status` name it.
    pub(crate) fn product(&self) -> &'static str {
        match self.subscription {
            Subscription::UserBased => USER_BASED_PRODUCT,
            Subscription::CapacityBased => CAPACITY_PRODUCT,
        }
    }

    /// The allotments of the overview: `(name, usageClass, units, unitsUsed, overage)`.
    ///
    /// A user-based tenant has the three allotments the January 2025 definitions enumerate
    /// (https://qlik.dev/apis/rest/licenses). A capacity-based one has a `fullUser` allotment
    /// instead, which the definitions do not enumerate but Qlik's own monitoring-app installer
    /// checks for to tell a capacity tenant (github.com/qlik-oss/qlik-cloud-monitoring-apps,
    /// `automations/multipleTenantInstaller.json`, "Determine and set the subscriptionType as
    /// user or capacity"). Its `usageClass` and counts are not published: the simulator
    /// serves it like the other per-user allotments, counting every assigned seat.
    pub(crate) fn allotments(&self) -> Vec<(&'static str, &'static str, u64, u64, u64)> {
        let c = &self.counts;
        match self.subscription {
            Subscription::UserBased => vec![
                (
                    "professional",
                    "assigned",
                    c.professional,
                    c.professional + c.professional_excess,
                    c.professional_excess,
                ),
                ("analyzer", "assigned", c.analyzer, c.analyzer + c.analyzer_excess, c.analyzer_excess),
                ("analyzer_time", "time", 5_000, (self.events / 7).min(5_000), 0),
            ],
            Subscription::CapacityBased => {
                let seats = c.professional + c.analyzer;
                let excess = c.professional_excess + c.analyzer_excess;
                vec![("fullUser", "assigned", seats, seats + excess, excess)]
            }
        }
    }

    /// The `licenseOverview` JSON (carries the secret `licenseKey`).
    pub(crate) fn overview_json(&self) -> Value {
        json!({
            "licenseNumber": self.license_number,
            "licenseKey": self.license_key,
            "secondaryNumber": "0",
            "product": self.product(),
            "licenseType": "subscription",
            "origin": "Internal",
            "status": "Ok",
            "trial": false,
            "valid": VALID,
            "updated": rfc3339_ms(DATA_NOW_MS - 86_400_000),
            "changeTime": rfc3339_ms(DATA_NOW_MS - 86_400_000),
            "latestValidTime": rfc3339_ms(DATA_NOW_MS),
            "allotments": self.allotments().into_iter().map(|(name, class, units, used, overage)| json!({
                "name": name,
                "usageClass": class,
                "units": units,
                "unitsUsed": used,
                "overage": overage,
            })).collect::<Vec<_>>(),
            "parameters": [
                {"name": "qlikcloud", "valid": "./.", "values": {"tenants": 1, "reloads": "unlimited"}},
                {"name": "automl", "valid": "2025-01-01/2027-12-31", "access": {"allotment": "professional"}, "values": {}},
            ],
        })
    }

    /// The `licenseStatus` JSON. Besides the fields of the January 2025 definitions, current
    /// tenants send `deactivated` and `extensionStatus` (https://qlik.dev/apis/rest/licenses).
    pub(crate) fn status_json(&self) -> Value {
        json!({
            "deactivated": false,
            "extensionStatus": "none",
            "type": "Signed",
            "trial": false,
            "valid": VALID,
            "origin": "Internal",
            "status": "Ok",
            "product": self.product(),
        })
    }

    /// The `settingsBody` JSON of `/licenses/settings`: automatic assignment of analyzer seats
    /// on (Qlik's default), of professional seats on for odd seeds
    /// (https://qlik.dev/apis/rest/licenses).
    pub(crate) fn license_settings_json(&self) -> Value {
        json!({"autoAssignAnalyzer": true, "autoAssignProfessional": self.seed % 2 == 1})
    }
}
