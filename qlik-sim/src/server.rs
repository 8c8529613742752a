//! The HTTP server: hyper on a plain accept loop, so a handler can close its TCP connection
//! without answering (the `drop_connection` fault) and send fewer bytes than its
//! `Content-Length` (the `truncate_body` fault).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use super::config::{Deprecation, Faults, SimConfig};
use super::faults;
use super::ground_truth::{self, GroundTruth};
use super::handlers::{self, Principal};
use super::http::{self as api, ApiError, Body, Ctx, Reply};
use super::keys::{ApiKeys, KeyKind, mint};
use super::log::{LoggedRequest, RequestLog};
use super::oauth::Tokens;
use super::ratelimit::RateLimiter;
use super::tenant::Tenant;

type RespBody = BoxBody<Bytes, std::io::Error>;

/// Everything the handlers share.
pub(crate) struct State {
    pub tenant: Tenant,
    pub keys: ApiKeys,
    key_kinds: HashMap<String, KeyKind>,
    pub faults: RwLock<Faults>,
    /// Tries in a row of each request exposed to faults, for `Faults::longest_burst`.
    bursts: Mutex<HashMap<String, u32>>,
    pub keys_enabled: AtomicBool,
    pub(crate) limiter: Option<RateLimiter>,
    pub log: RequestLog,
    /// Access tokens issued to the OAuth client.
    pub tokens: Tokens,
    /// The ground truth before and after the late consumption events are listed.
    pub truth: [OnceLock<GroundTruth>; 2],
    /// `Host` assumed when a request carries none.
    fallback_host: String,
    /// The deprecation announced in REST API responses, if any.
    deprecation: Option<Deprecation>,
}

impl State {
    /// Derives the tenant and mints its keys (key lifetimes relative to the wall clock).
    pub(crate) fn new(config: &SimConfig, fallback_host: String) -> State {
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let tenant = Tenant::new(config, now_s);
        let key = |kind| mint(config.seed, &tenant.tenant_id, kind, now_s);
        let keys = ApiKeys {
            admin: key(KeyKind::Admin),
            non_admin: key(KeyKind::NonAdmin),
            expired: key(KeyKind::Expired),
            revoked: key(KeyKind::Revoked),
            legacy_developer: key(KeyKind::LegacyDeveloper),
            expiring_soon: key(KeyKind::ExpiringSoon),
        };
        let key_kinds = KeyKind::ALL.into_iter().map(|k| (key(k), k)).collect();
        State {
            tenant,
            keys,
            key_kinds,
            faults: RwLock::new(config.faults.clone()),
            bursts: Mutex::default(),
            keys_enabled: AtomicBool::new(config.api_keys_enabled),
            limiter: config.rate_limit_per_minute.map(RateLimiter::new),
            log: RequestLog::default(),
            tokens: Tokens::default(),
            truth: [OnceLock::new(), OnceLock::new()],
            fallback_host,
            deprecation: config.deprecation.clone(),
        }
    }

    /// The ground truth of the tenant as it is now (before or after the late consumption
    /// events are listed), computed on first use.
    pub(crate) fn ground_truth(&self) -> &GroundTruth {
        let late_listed = self.tenant.late_published.load(Ordering::Relaxed);
        self.truth[usize::from(late_listed)].get_or_init(|| ground_truth::compute(&self.tenant, late_listed))
    }

    /// The faults for this try of `ctx`'s request: the configured ones, or none when the
    /// request's tries in a row have reached `Faults::longest_burst`.
    fn faults_for(&self, ctx: &Ctx) -> Faults {
        let faults = self.faults.read().expect("faults lock").clone();
        let Some(longest) = faults.longest_burst else { return faults };
        let target = format!("{} {}?{}", ctx.method, ctx.path, ctx.raw_query);
        let mut bursts = self.bursts.lock().expect("bursts lock");
        let tries = bursts.entry(target).or_default();
        if *tries < longest {
            *tries += 1;
            return faults;
        }
        *tries = 0;
        Faults {
            error_5xx_rate: 0.0,
            error_429_rate: 0.0,
            drop_connection_rate: 0.0,
            truncate_body_rate: 0.0,
            malformed_json_rate: 0.0,
            ..faults
        }
    }

    /// The caller behind `authorization`, or the 401 a real tenant would answer.
    fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
        let unauthorized = |detail: &str| ApiError::new(401, "Unauthorized", detail);
        let token = authorization
            .and_then(|a| a.strip_prefix("Bearer ").or_else(|| a.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                unauthorized("Missing or malformed Authorization header: expected `Bearer <API key>`.")
            })?;
        if let Some(valid) = self.tokens.check(token) {
            return valid.map(|()| Principal { kind: KeyKind::Admin });
        }
        if !self.keys_enabled.load(Ordering::Relaxed) {
            return Err(unauthorized("API keys are disabled for this tenant."));
        }
        let kind = *self
            .key_kinds
            .get(token)
            .ok_or_else(|| unauthorized("Invalid API key: signature verification failed."))?;
        match kind {
            KeyKind::Expired => Err(unauthorized("The API key has expired.")),
            KeyKind::Revoked => Err(unauthorized("The API key has been revoked.")),
            KeyKind::LegacyDeveloper => Err(unauthorized(
                "The API key is no longer valid: it was issued under the Developer role, which was removed on 26 January 2026.",
            )),
            _ => Ok(Principal { kind }),
        }
    }

    /// The reply to `ctx`, faults included except those that break the transport.
    fn answer(&self, ctx: &Ctx, authorization: Option<&str>, f: &Faults) -> Reply {
        let result = (|| {
            let principal = self.authenticate(authorization)?;
            if let Some(limiter) = &self.limiter {
                limiter.check(principal.kind.user_index()).map_err(ApiError::too_many)?;
            }
            if faults::roll(f.error_5xx_rate) {
                let status = [500, 502, 503][rand::random_range(0..3)];
                return Err(ApiError::new(status, "Internal Server Error", "Simulated server error."));
            }
            if faults::roll(f.error_429_rate) {
                return Err(ApiError::too_many(1));
            }
            handlers::route(&self.tenant, ctx, principal, self.keys_enabled.load(Ordering::Relaxed))
        })();
        let mut reply = result.unwrap_or_else(|e| e.into_reply(ctx.service()));
        if let (200, Body::Json(v)) = (reply.status, &mut reply.body) {
            if f.schema_drift {
                faults::drift(v);
            }
            faults::rewrite_next(v, ctx, f.looping_next, f.foreign_host_next);
        }
        reply
    }
}

/// Serves `listener` until `shutdown` fires or its sender is dropped.
pub(crate) async fn serve(listener: TcpListener, state: Arc<State>, mut shutdown: watch::Receiver<()>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, state.clone(), shutdown.clone()));
            }
            _ = shutdown.changed() => break,
        }
    }
}

async fn connection(stream: tokio::net::TcpStream, state: Arc<State>, mut shutdown: watch::Receiver<()>) {
    let kill = Arc::new(Notify::new());
    let kill_handle = kill.clone();
    let service = hyper::service::service_fn(move |req| handle(state.clone(), req, kill_handle.clone()));
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    // Dropping the connection future closes the socket, whatever state it is in.
    tokio::select! {
        _ = conn => {}
        _ = kill.notified() => {}
        _ = shutdown.changed() => {}
    }
}

fn context(state: &State, req: &Request<Incoming>) -> Ctx {
    let raw_query = req.uri().query().unwrap_or("").to_owned();
    Ctx {
        method: req.method().as_str().to_owned(),
        path: req.uri().path().to_owned(),
        query: url::form_urlencoded::parse(raw_query.as_bytes()).into_owned().collect(),
        raw_query,
        host: req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| state.fallback_host.clone()),
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
    kill: Arc<Notify>,
) -> Result<Response<RespBody>, Infallible> {
    let ctx = context(&state, &req);
    let authorization = req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let api_version = req
        .headers()
        .get(api::API_VERSION_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let f = state.faults_for(&ctx);
    let delay = f.latency + faults::jitter(f.jitter);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let log = |status: u16| {
        state.log.push(LoggedRequest {
            method: ctx.method.clone(),
            path: ctx.path.clone(),
            query: ctx.raw_query.clone(),
            status,
            authorized: authorization.is_some(),
            host: ctx.host.clone(),
            api_version: api_version.clone(),
        })
    };
    if let Some(reply) =
        f.hostile.as_ref().and_then(|h| faults::hostile_reply(h, &ctx, authorization.as_deref()))
    {
        log(reply.status().as_u16());
        return Ok(reply);
    }
    if faults::roll(f.drop_connection_rate) {
        log(0);
        kill.notify_one();
        return std::future::pending().await;
    }
    let reply = if ctx.method == "POST" && ctx.path == "/oauth/token" {
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        state.tokens.exchange(&state.tenant, &body)
    } else if ctx.method == "GET" && ctx.path == PRODUCT_INFO {
        Reply::ok(product_info())
    } else {
        let mut reply = state.answer(&ctx, authorization.as_deref(), &f);
        if let Some(deprecation) = state.deprecation.as_ref().filter(|_| ctx.path.starts_with("/api/")) {
            let served = api::served_api_version(api_version.as_deref());
            reply.headers.extend(api::deprecation_headers(deprecation, served));
        }
        reply
    };
    log(reply.status);
    let (content_type, bytes) = match &reply.body {
        Body::Json(v) => {
            ("application/json; charset=utf-8", Bytes::from(serde_json::to_vec(v).expect("JSON serialises")))
        }
        Body::Html(s) => ("text/html; charset=utf-8", Bytes::from(s.clone())),
    };
    let ok_json = reply.status == 200 && matches!(reply.body, Body::Json(_));
    let bytes =
        if ok_json && faults::roll(f.malformed_json_rate) { faults::malformed(&bytes) } else { bytes };
    let bytes = match &f.hostile {
        Some(hostile) if ok_json => faults::padded(hostile, &ctx, bytes),
        _ => bytes,
    };
    let mut builder = Response::builder().status(reply.status).header(CONTENT_TYPE, content_type);
    for (name, value) in &reply.headers {
        builder = builder.header(*name, value);
    }
    let body = if ok_json && faults::roll(f.truncate_body_rate) {
        builder = builder.header(CONTENT_LENGTH, bytes.len());
        truncated(bytes)
    } else {
        Full::new(bytes).map_err(|never| match never {}).boxed()
    };
    Ok(builder.body(body).expect("valid response"))
}

/// Where a Qlik deployment describes itself, a static resource outside the REST APIs (no
/// key, no rate limit). Qlik's own SDK, `@qlik/api`, reads it before its first request to
/// tell Qlik Cloud from Qlik Sense on Windows, whose redirects and CSRF tokens it handles
/// differently; without it, it asks again before every request.
const PRODUCT_INFO: &str = "/resources/autogenerated/product-info.json";

/// A Qlik Cloud tenant's product information, as far as `@qlik/api` 2.19 reads it: a
/// `composition` whose `deploymentType` is none of Qlik Sense on Windows' (`QlikSenseServer`,
/// `QlikSenseDesktop`, `QlikSenseMobile`) and whose `provider` is not `fedramp` means
/// Qlik Cloud.
fn product_info() -> serde_json::Value {
    serde_json::json!({
        "composition": {"productName": "Qlik Cloud", "deploymentType": "QlikCloud", "provider": "qlik"},
        "externalUrls": {}
    })
}

/// A body announcing all of `bytes` but sending half, then failing, which makes hyper close
/// the connection. The pause lets the half reach the client first.
fn truncated(bytes: Bytes) -> RespBody {
    let half = bytes.slice(..bytes.len() / 2);
    let frames =
        futures::stream::once(async move { Ok(Frame::data(half)) }).chain(futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err(std::io::Error::other("simulated truncated body"))
        }));
    BodyExt::boxed(StreamBody::new(frames))
}
