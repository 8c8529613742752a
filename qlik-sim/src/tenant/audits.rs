//! Audit events: user sessions begun and ended (legacy and current event types) among other
//! events, spread over the 180 days before the simulator started. Qlik keeps 90 days online
//! and the older days in the archive (https://qlik.dev/apis/rest/audits); here the older
//! half of the events is archive-only, and no event falls within an hour of the 90-day
//! line, so what is online does not change while a test runs.

use serde_json::{Value, json};

use super::Tenant;
use crate::synth::{Kind, h, object_id, rfc3339_ms, uuid};

/// The event types `/audits/types` lists, in the order events cycle through them: the
/// session types of https://qlik.dev/apis/event/user-sessions and
/// https://qlik.dev/apis/event/core/user-sessions, and one that is not a session's.
pub(crate) const AUDIT_TYPES: [&str; 5] = [
    "com.qlik.user-session.begin",
    "com.qlik.user-session.end",
    "com.qlik.core.user-session.begun",
    "com.qlik.core.user-session.ended",
    "com.qlik.v1.app.created",
];

/// Online retention, `EventTTL` of `/audits/settings`: 90 days.
pub(crate) const AUDIT_RETENTION_S: i64 = 90 * 86_400;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

impl Tenant {
    /// The first online event: the older half is archive-only.
    pub(crate) fn first_online_audit(&self) -> u64 {
        self.audit_events / 2
    }

    /// When audit event `i` happened (Unix ms), increasing with `i`.
    pub(crate) fn audit_time_ms(&self, i: u64) -> i64 {
        let now = self.now_s * 1000;
        let half = self.first_online_audit();
        let (start, span, k, n) = if i < half {
            (now - 180 * DAY_MS, 90 * DAY_MS - HOUR_MS, i, half)
        } else {
            (now - 90 * DAY_MS + HOUR_MS, 90 * DAY_MS - 2 * HOUR_MS, i - half, self.audit_events - half)
        };
        start + (span as u128 * u128::from(k) / u128::from(n.max(1))) as i64
    }

    /// The type of audit event `i`.
    pub(crate) fn audit_type(&self, i: u64) -> &'static str {
        AUDIT_TYPES[(i % AUDIT_TYPES.len() as u64) as usize]
    }

    /// Whether audit event `i` is a user session's.
    pub(crate) fn audit_is_session(&self, i: u64) -> bool {
        self.audit_type(i).contains("user-session")
    }

    /// The user (index) behind audit event `i`.
    pub(crate) fn audit_user(&self, i: u64) -> u64 {
        h(self.seed, Kind::Audit, i, 3) % self.users
    }

    /// The `eventId` of audit event `i`, the same online and in the archive.
    pub(crate) fn audit_event_id(&self, i: u64) -> String {
        uuid(self.seed, Kind::Audit, i, 1)
    }

    /// Audit event `i` as the archive lists it (`ArchiveItem`).
    pub(crate) fn audit_archive_json(&self, i: u64) -> Value {
        let session = self.audit_is_session(i);
        let data = if session {
            json!({"sessionId": uuid(self.seed, Kind::Audit, i / 2, 2), "idpId": "simulated-idp"})
        } else {
            json!({"appId": uuid(self.seed, Kind::App, i, 3)})
        };
        json!({
            "eventId": self.audit_event_id(i),
            "eventTime": rfc3339_ms(self.audit_time_ms(i)),
            "eventType": self.audit_type(i),
            "eventTypeVersion": "1.0.0",
            "source": if session { "com.qlik/edge-auth" } else { "com.qlik/apps" },
            "tenantId": self.tenant_id,
            "userId": self.user_id(self.audit_user(i)),
            "contentType": "application/json",
            "data": data,
            "extensions": {},
        })
    }

    /// Audit event `i` as `/audits` lists it (`GetByIDResult`): the archive's fields, an
    /// id and a link.
    pub(crate) fn audit_json(&self, i: u64, base: &str) -> Value {
        let mut v = self.audit_archive_json(i);
        let id = object_id(self.seed, Kind::Audit, i);
        v["links"] = json!({"self": {"href": format!("{base}/api/v1/audits/{id}")}});
        v["id"] = json!(id);
        v
    }
}
