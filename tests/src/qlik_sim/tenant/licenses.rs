//! Licence overview, assignments (with orphans) and consumption events.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::Tenant;
use crate::qlik_sim::synth::{
    CONSUMPTION_START_MS, DATA_NOW_MS, Kind, h, object_id, pick, rfc3339_ms, spread_ms, uuid,
};

const PRODUCT: &str = "Qlik Cloud Analytics Premium";
const VALID: &str = "2025-01-01/2027-12-31";

/// One licence assignment.
#[derive(Clone, Debug)]
pub(crate) struct AssignmentRec {
    pub subject: String,
    pub kind: &'static str,
    pub excess: bool,
    pub created_ms: i64,
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
        "product": PRODUCT,
        "tenantId": t.tenant_id,
        "valid": VALID,
        "nonce": crate::qlik_sim::synth::alnum(t.seed, Kind::License, 0, 2, 64),
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
        AssignmentRec {
            subject: self.user(u).subject,
            kind: if professional { "professional" } else { "analyzer" },
            excess: u != 0 && (r >> 8) % 50 == 1,
            created_ms: spread_ms(r >> 16),
        }
    }

    /// Orphan assignment `o`: its subject belongs to no current user.
    pub(crate) fn orphan(&self, o: u64) -> AssignmentRec {
        let r = h(self.seed, Kind::Orphan, o, 1);
        AssignmentRec {
            subject: format!("auth0|{:016x}{:08x}", h(self.seed, Kind::Orphan, o, 6), o),
            kind: if r.is_multiple_of(2) { "professional" } else { "analyzer" },
            excess: false,
            created_ms: spread_ms(r >> 16),
        }
    }

    /// The JSON of an assignment.
    pub(crate) fn assignment_json(a: &AssignmentRec) -> Value {
        json!({
            "subject": a.subject,
            "type": a.kind,
            "excess": a.excess,
            "created": rfc3339_ms(a.created_ms),
        })
    }

    /// Milliseconds the consumption events span: a year, or more when there are more events
    /// than milliseconds, so that `endTime` strictly increases with the index.
    fn consumption_span_ms(&self) -> u128 {
        ((DATA_NOW_MS - CONSUMPTION_START_MS) as u128).max(u128::from(self.events))
    }

    /// `endTime` of event `i` (strictly increasing in `i`).
    pub(crate) fn event_end_ms(&self, i: u64) -> i64 {
        CONSUMPTION_START_MS
            + (u128::from(i) * self.consumption_span_ms() / u128::from(self.events.max(1))) as i64
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

    /// The allotments of the overview: `(name, usageClass, units, unitsUsed, overage)`.
    pub(crate) fn allotments(&self) -> Vec<(&'static str, &'static str, u64, u64, u64)> {
        let c = &self.counts;
        vec![
            (
                "professional",
                "assigned",
                c.professional,
                c.professional + c.professional_excess,
                c.professional_excess,
            ),
            ("analyzer", "assigned", c.analyzer, c.analyzer + c.analyzer_excess, c.analyzer_excess),
            ("analyzer_time", "time", 5_000, (self.events / 7).min(5_000), 0),
        ]
    }

    /// The `licenseOverview` JSON (carries the secret `licenseKey`).
    pub(crate) fn overview_json(&self) -> Value {
        json!({
            "licenseNumber": self.license_number,
            "licenseKey": self.license_key,
            "secondaryNumber": "0",
            "product": PRODUCT,
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

    /// The `licenseStatus` JSON.
    pub(crate) fn status_json(&self) -> Value {
        json!({
            "type": "Signed",
            "trial": false,
            "valid": VALID,
            "origin": "Internal",
            "status": "Ok",
            "product": PRODUCT,
        })
    }
}
