//! Fault injection applied to replies: drift, misleading links and broken bodies. Latency,
//! error statuses and dropped connections are decided in `server.rs`, before the handler runs.

use bytes::Bytes;
use rand::Rng;
use serde_json::{Value, json};

use super::http::Ctx;

/// The host a `foreign_host_next` link names.
pub const FOREIGN_HOST: &str = "evil.example:1";

/// Optional fields drift may drop or null, in priority order. None is a primary key, a
/// paging cursor or a field its definition requires.
const OPTIONAL: [&str; 14] = [
    "email",
    "zoneinfo",
    "preferredLocale",
    "assignedRoles",
    "canEdit",
    "permissions",
    "duration",
    "sessionId",
    "description",
    "resourceSize",
    "resourceReloadStatus",
    "lastUpdated",
    "changeTime",
    "datacenter",
];

/// True with probability `rate`.
pub(crate) fn roll(rate: f64) -> bool {
    rate > 0.0 && rand::rng().random::<f64>() < rate
}

/// A uniformly random duration up to `max`.
pub(crate) fn jitter(max: std::time::Duration) -> std::time::Duration {
    if max.is_zero() { max } else { max.mul_f64(rand::rng().random::<f64>()) }
}

fn drift_record(rec: &mut Value, k: usize) {
    let Some(obj) = rec.as_object_mut() else { return };
    obj.insert("qlikAddedIn2026".into(), json!({"rollout": k, "flags": ["beta"]}));
    let present: Vec<&str> = OPTIONAL.iter().copied().filter(|f| obj.contains_key(*f)).collect();
    if k % 2 == 1 {
        if let Some(f) = present.first() {
            obj.insert((*f).into(), Value::Null);
        }
    } else if let Some(f) = present.get(1).or(present.first()) {
        obj.remove(*f);
    }
}

/// Schema drift: unknown fields everywhere, optional fields missing or null.
pub(crate) fn drift(body: &mut Value) {
    match body.get_mut("data").and_then(Value::as_array_mut) {
        Some(records) => records.iter_mut().enumerate().for_each(|(k, r)| drift_record(r, k)),
        None => {
            if let Some(allotments) = body.get_mut("allotments").and_then(Value::as_array_mut) {
                for a in allotments {
                    a["unitsReserved"] = json!(0);
                }
            }
            drift_record(body, 1);
        }
    }
    if let Some(obj) = body.as_object_mut() {
        obj.insert("deprecation".into(), json!({"notice": "simulated field added by a later Qlik release"}));
    }
}

/// Rewrites `links.next.href`: back to this very page, or onto a foreign host.
pub(crate) fn rewrite_next(body: &mut Value, ctx: &Ctx, looping: bool, foreign: bool) {
    let Some(href) = body.pointer_mut("/links/next/href") else { return };
    if looping {
        *href = json!(ctx.self_href());
    }
    if foreign {
        let own = ctx.base();
        if let Some(rest) = href.as_str().and_then(|h| h.strip_prefix(own.as_str())) {
            *href = json!(format!("http://{FOREIGN_HOST}{rest}"));
        }
    }
}

/// A body that is not JSON: the real one cut in half with garbage after it.
pub(crate) fn malformed(body: &Bytes) -> Bytes {
    let mut out = body.slice(..body.len() / 2).to_vec();
    out.extend_from_slice(b"\x00<!-- upstream timeout -->");
    Bytes::from(out)
}
