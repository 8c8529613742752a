//! Fault injection applied to replies: drift, misleading links and broken bodies. Latency,
//! error statuses and dropped connections are decided in `server.rs`, before the handler runs.
//! [`Hostile`] answers replace the handler altogether.

use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use hyper::header::CONTENT_TYPE;
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

/// Answers no real tenant sends but a proxy, a broken deployment or an attacker could: they
/// replace the tenant's answer to every request whose path starts with `path`, before the
/// key is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hostile {
    /// 401 whose detail quotes the request's `Authorization` header (`token Bearer eyJ… is
    /// expired`), as some gateways do.
    EchoAuthorization {
        /// Path prefix answered this way.
        path: String,
    },
    /// A fixed answer: an HTML login page, a 204, an empty or Latin-1 200, deep JSON.
    Canned {
        /// Path prefix answered this way.
        path: String,
        /// HTTP status.
        status: u16,
        /// `Content-Type`, if any.
        content_type: Option<String>,
        /// The body.
        body: Vec<u8>,
    },
    /// 200 with a JSON body that never ends.
    EndlessBody {
        /// Path prefix answered this way.
        path: String,
    },
    /// A listing that never ends: every page holds `records_per_page` new users (none at
    /// all for 0), reports `reported_total` as `meta.count`, and names a next page never
    /// seen before.
    EndlessListing {
        /// Path prefix answered this way.
        path: String,
        /// Records on each page.
        records_per_page: usize,
        /// The total each page reports, if any.
        reported_total: Option<u64>,
    },
    /// 429 with this `Retry-After` (delay seconds or an HTTP date), and Qlik's error
    /// envelope: a tenant asking for a pause longer than any run can wait.
    Throttled {
        /// Path prefix answered this way.
        path: String,
        /// The `Retry-After` value.
        retry_after: String,
    },
    /// The tenant's own successful JSON answers, padded with whitespace after the JSON to
    /// `page_bytes`: the same data in pages as large as a page may get (a body cap is 64
    /// MiB), so what a client holds per byte received shows.
    Padded {
        /// Path prefix answered this way.
        path: String,
        /// The size of every padded body.
        page_bytes: usize,
    },
}

impl Hostile {
    /// A single sign-on portal's login page, served with 200 as proxies do.
    pub fn login_page(path: &str) -> Hostile {
        Hostile::Canned {
            path: path.into(),
            status: 200,
            content_type: Some("text/html; charset=utf-8".into()),
            body: b"<!DOCTYPE html>\n<html><head><title>Sign in - Corporate SSO</title></head>\n<body><form action=\"/login\">User <input name=\"user\"></form></body></html>\n".to_vec(),
        }
    }

    /// A users listing whose one user object nests `depth` objects deep.
    pub fn deeply_nested_user(depth: usize) -> Hostile {
        let nested = format!("{}{{}}{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        Hostile::Canned {
            path: "/api/v1/users".into(),
            status: 200,
            content_type: Some("application/json".into()),
            body: format!(r#"{{"data":[{{"id":"u-deep","name":"Deep","extra":{nested}}}],"links":{{}}}}"#)
                .into_bytes(),
        }
    }

    fn path(&self) -> &str {
        match self {
            Hostile::EchoAuthorization { path }
            | Hostile::Canned { path, .. }
            | Hostile::EndlessBody { path }
            | Hostile::EndlessListing { path, .. }
            | Hostile::Throttled { path, .. }
            | Hostile::Padded { path, .. } => path,
        }
    }
}

/// The body type the server answers with.
pub(crate) type HostileBody = BoxBody<Bytes, std::io::Error>;

/// The hostile answer to `ctx`, if `hostile` covers its path.
pub(crate) fn hostile_reply(
    hostile: &Hostile,
    ctx: &Ctx,
    authorization: Option<&str>,
) -> Option<Response<HostileBody>> {
    if !ctx.path.starts_with(hostile.path()) {
        return None;
    }
    let full = |bytes: Vec<u8>| Full::new(Bytes::from(bytes)).map_err(|never| match never {}).boxed();
    let json = |status: u16, v: Value| {
        Response::builder()
            .status(status)
            .header(CONTENT_TYPE, "application/json")
            .body(full(serde_json::to_vec(&v).expect("JSON serialises")))
    };
    let reply = match hostile {
        Hostile::EchoAuthorization { .. } => json(
            401,
            json!({"errors": [{
                "code": "HTTP-401",
                "title": "Unauthorized",
                "detail": format!("token {} is expired", authorization.unwrap_or("(none)")),
                "status": "401",
            }]}),
        ),
        Hostile::Canned { status, content_type, body, .. } => {
            let mut builder = Response::builder().status(*status);
            if let Some(t) = content_type {
                builder = builder.header(CONTENT_TYPE, t);
            }
            builder.body(full(body.clone()))
        }
        Hostile::EndlessBody { .. } => {
            let record = Bytes::from(r#"{"id":"endless","name":"again"},"#.repeat(2048));
            let frames =
                futures::stream::once(async { Ok(Frame::data(Bytes::from_static(br#"{"data":["#))) })
                    .chain(futures::stream::repeat_with(move || Ok(Frame::data(record.clone()))));
            Response::builder()
                .status(200)
                .header(CONTENT_TYPE, "application/json")
                .body(BodyExt::boxed(StreamBody::new(frames)))
        }
        Hostile::EndlessListing { records_per_page, reported_total, .. } => {
            let page = rand::rng().random::<u64>();
            let data: Vec<Value> = (0..*records_per_page)
                .map(|i| json!({"id": format!("endless-{page:016x}-{i}"), "name": "Endless", "status": "active"}))
                .collect();
            let next = format!("{}{}?next={page:016x}", ctx.base(), ctx.path);
            json(
                200,
                json!({
                    "data": data,
                    "meta": {"count": reported_total},
                    "links": {"self": {"href": ctx.self_href()}, "next": {"href": next}},
                }),
            )
        }
        Hostile::Throttled { retry_after, .. } => Response::builder()
            .status(429)
            .header(CONTENT_TYPE, "application/json")
            .header(hyper::header::RETRY_AFTER, retry_after.as_str())
            .body(full(
                serde_json::to_vec(&json!({"errors": [{
                    "code": "HTTP-429",
                    "title": "Too Many Requests",
                    "detail": format!("Rate limit exceeded; retry after {retry_after}."),
                    "status": "429",
                }]}))
                .expect("JSON serialises"),
            )),
        // Padding changes the tenant's own answer, after it is made ([`padded`]).
        Hostile::Padded { .. } => return None,
    };
    Some(reply.expect("valid response"))
}

/// `body`, a successful JSON answer to `ctx`, padded with spaces to the size `hostile` asks
/// for if it pads that path; otherwise as it is.
pub(crate) fn padded(hostile: &Hostile, ctx: &Ctx, body: Bytes) -> Bytes {
    match hostile {
        Hostile::Padded { path, page_bytes } if ctx.path.starts_with(path.as_str()) => {
            let mut out = Vec::with_capacity(body.len().max(*page_bytes));
            out.extend_from_slice(&body);
            out.resize(body.len().max(*page_bytes), b' ');
            Bytes::from(out)
        }
        _ => body,
    }
}
