//! A small SCIM 2.0 server (RFC 7643/7644) for the SCIM connector's tests.
//!
//! It serves `/Users` and `/Groups` on `127.0.0.1:0` the way identity providers do:
//! Bearer-token auth, `startIndex`/`count` paging capped at a maximum page size, the
//! `ListResponse` envelope with `totalResults`, SCIM error bodies, and a
//! `meta.lastModified gt "…"` filter for incremental reads. Data is deterministic (see
//! [`ScimServerConfig`]), and [`ScimServer::truth`] gives each stream's ground truth as a
//! [`KeyDigest`] so tests compare what a connector read against what was served.
//!
//! Tests can script trouble: [`ScimServer::fail_next`] answers the next requests with an
//! error status, [`ScimServer::touch_users`] modifies users so an incremental read has
//! something new to find, [`ScimServer::touch_first_and_last_user_before`] modifies two
//! users while a read is listing them, and [`ScimServer::requests`] counts the requests
//! per endpoint.

mod data;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::oneshot;

use crate::digest::{KeyDigest, key_digest};
use data::Directory;

/// Path prefix of the SCIM endpoints, as most providers mount them.
const PREFIX: &str = "/scim/v2";

/// What the server serves and how.
#[derive(Debug, Clone)]
pub struct ScimServerConfig {
    /// Number of users.
    pub users: usize,
    /// Number of groups (users are spread over them; group 0 nests group 1).
    pub groups: usize,
    /// Largest page the server returns, whatever `count` asks for (RFC 7644 §3.4.2.4).
    pub max_page_size: usize,
    /// The Bearer token the server accepts.
    pub token: String,
}

impl ScimServerConfig {
    /// 137 users in 12 groups, pages of at most 50: several pages, a partial last one.
    pub fn small() -> Self {
        ScimServerConfig { users: 137, groups: 12, max_page_size: 50, token: "scim-test-token-5f1c9a".into() }
    }
}

/// Errors scripted by [`ScimServer::fail_next`].
#[derive(Debug, Clone, Copy)]
struct Fault {
    remaining: u32,
    status: u16,
    retry_after: Option<u64>,
}

struct Shared {
    config: ScimServerConfig,
    base_url: String,
    directory: Mutex<Directory>,
    requests: Mutex<BTreeMap<String, u64>>,
    fault: Mutex<Option<Fault>>,
    touched: Mutex<u32>,
    /// The `/Users` request before which the first and last users are modified.
    touch_before: Mutex<Option<u64>>,
}

/// A running SCIM server; it stops when dropped.
pub struct ScimServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _shutdown: oneshot::Sender<()>,
}

impl ScimServer {
    /// Binds `127.0.0.1:0` and serves `config` until dropped.
    pub async fn start(config: ScimServerConfig) -> io::Result<Self> {
        Self::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Binds `addr` and serves `config` until dropped.
    pub async fn start_on(config: ScimServerConfig, addr: SocketAddr) -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            directory: Mutex::new(Directory::generate(config.users, config.groups)),
            base_url: format!("http://{addr}{PREFIX}"),
            config,
            requests: Mutex::new(BTreeMap::new()),
            fault: Mutex::new(None),
            touched: Mutex::new(0),
            touch_before: Mutex::new(None),
        });
        let app = Router::new()
            .route(&format!("{PREFIX}/Users"), get(list_users))
            .route(&format!("{PREFIX}/Groups"), get(list_groups))
            .route(&format!("{PREFIX}/ServiceProviderConfig"), get(service_provider_config))
            .fallback(not_found)
            .with_state(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(ScimServer { shared, addr, _shutdown: tx })
    }

    /// The SCIM base URL (`http://127.0.0.1:PORT/scim/v2`) a connector is configured with.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The socket the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Bearer token the server accepts.
    pub fn token(&self) -> &str {
        &self.shared.config.token
    }

    /// Requests received so far on `path` (`/Users`, `/Groups`, `/ServiceProviderConfig`),
    /// rejected ones included.
    pub fn requests(&self, path: &str) -> u64 {
        lock(&self.shared.requests).get(path).copied().unwrap_or(0)
    }

    /// Answers the next `n` requests (any endpoint) with `status` and a SCIM error body,
    /// with a `Retry-After` header of `retry_after` seconds when given.
    pub fn fail_next(&self, n: u32, status: u16, retry_after: Option<u64>) {
        *lock(&self.shared.fault) = Some(Fault { remaining: n, status, retry_after });
    }

    /// Marks the first `n` users (in listing order) as modified now, later than any
    /// earlier modification, and returns their ids.
    pub fn touch_users(&self, n: usize) -> Vec<String> {
        self.shared.touch(|users| users.iter_mut().take(n).collect())
    }

    /// Before serving the `request`-th `/Users` request (counting from 1), modifies the
    /// first user and then, a second later, the last: in the middle of a listing, the first
    /// user's change lands on a page already read and the last user's on one still to come.
    pub fn touch_first_and_last_user_before(&self, request: u64) {
        *lock(&self.shared.touch_before) = Some(request);
    }

    /// Ground truth of a stream the SCIM connector reads (`users`, `groups`,
    /// `group_members`), over the primary keys in catalog order; `None` for other names.
    pub fn truth(&self, stream: &str) -> Option<KeyDigest> {
        let dir = lock(&self.shared.directory);
        match stream {
            "users" => Some(key_digest(dir.users.iter().map(|u| [u.id.as_str()]))),
            "groups" => Some(key_digest(dir.groups.iter().map(|g| [g.id.as_str()]))),
            "group_members" => Some(key_digest(
                dir.groups
                    .iter()
                    .flat_map(|g| g.users.iter().chain(&g.groups).map(move |m| [g.id.as_str(), m.as_str()])),
            )),
            _ => None,
        }
    }
}

impl Shared {
    /// Marks the users `pick` chooses, in its order, as modified now, each a second after
    /// the one before and later than any earlier modification; returns their ids.
    fn touch(&self, pick: impl FnOnce(&mut Vec<data::User>) -> Vec<&mut data::User>) -> Vec<String> {
        let mut touched = lock(&self.touched);
        let mut dir = lock(&self.directory);
        // Generated data is from 2024, so now is later than any of it; the counter keeps
        // successive touches apart even within one second.
        let now = OffsetDateTime::now_utc();
        pick(&mut dir.users)
            .into_iter()
            .map(|u| {
                *touched += 1;
                u.last_modified = now + time::Duration::seconds(i64::from(*touched));
                u.id.clone()
            })
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// List query parameters of RFC 7644 §3.4.2.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    start_index: Option<i64>,
    count: Option<i64>,
    filter: Option<String>,
}

/// A SCIM error response (RFC 7644 §3.12).
fn scim_error(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Response {
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": status.as_u16().to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        body["scimType"] = Value::from(t);
    }
    (status, [(header::CONTENT_TYPE, "application/scim+json")], body.to_string()).into_response()
}

/// Counts the request, applies a scripted fault, then checks the Bearer token; returns
/// the response that rejects the request, if one does.
fn gate(shared: &Shared, path: &str, headers: &HeaderMap) -> Option<Response> {
    *lock(&shared.requests).entry(path.to_string()).or_default() += 1;
    {
        let mut fault = lock(&shared.fault);
        if let Some(f) = fault.as_mut()
            && f.remaining > 0
        {
            f.remaining -= 1;
            let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut resp = scim_error(status, None, "Scripted failure");
            if let Some(secs) = f.retry_after {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return Some(resp);
        }
    }
    let expected = format!("Bearer {}", shared.config.token);
    match headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(got) if got == expected => None,
        _ => {
            let mut resp = scim_error(StatusCode::UNAUTHORIZED, None, "Authentication failed");
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"scim\""));
            Some(resp)
        }
    }
}

/// Parses the one filter this server supports, `meta.lastModified gt|ge "<RFC 3339>"`,
/// into (inclusive, instant); `None` for anything else.
fn parse_filter(filter: &str) -> Option<(bool, OffsetDateTime)> {
    let mut parts = filter.splitn(3, ' ');
    let (attr, op, value) = (parts.next()?, parts.next()?, parts.next()?);
    if !attr.eq_ignore_ascii_case("meta.lastModified") {
        return None;
    }
    let inclusive = match op.to_ascii_lowercase().as_str() {
        "gt" => false,
        "ge" => true,
        _ => return None,
    };
    let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
    Some((inclusive, OffsetDateTime::parse(value, &Rfc3339).ok()?))
}

/// One page of `resources` as a `ListResponse` (RFC 7644 §3.4.2): `startIndex` is
/// 1-based and below 1 means 1; `count` is capped at the server maximum, and 0 returns
/// only `totalResults`.
fn list_response(resources: Vec<Value>, query: &ListQuery, max: usize) -> Response {
    let total = resources.len();
    let start = query.start_index.unwrap_or(1).max(1) as usize;
    let count = query.count.map(|c| c.max(0) as usize).unwrap_or(max).min(max);
    let page: Vec<Value> = resources.into_iter().skip(start - 1).take(count).collect();
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": page.len(),
        "Resources": page,
    });
    ([(header::CONTENT_TYPE, "application/scim+json")], body.to_string()).into_response()
}

async fn list_users(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Some(resp) = gate(&shared, "/Users", &headers) {
        return resp;
    }
    let served = lock(&shared.requests).get("/Users").copied().unwrap_or(0);
    if lock(&shared.touch_before).take_if(|before| *before == served).is_some() {
        shared.touch(|users| match users.as_mut_slice() {
            [first, .., last] => vec![first, last],
            _ => vec![],
        });
    }
    let since = match query.filter.as_deref() {
        None => None,
        Some(filter) => match parse_filter(filter) {
            Some(since) => Some(since),
            None => return scim_error(StatusCode::BAD_REQUEST, Some("invalidFilter"), "Unsupported filter"),
        },
    };
    let dir = lock(&shared.directory);
    let users: Vec<Value> = dir
        .users
        .iter()
        .filter(|u| match since {
            None => true,
            Some((true, at)) => u.last_modified >= at,
            Some((false, at)) => u.last_modified > at,
        })
        .map(|u| dir.user_json(u, &shared.base_url))
        .collect();
    list_response(users, &query, shared.config.max_page_size)
}

async fn list_groups(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    if let Some(resp) = gate(&shared, "/Groups", &headers) {
        return resp;
    }
    if query.filter.is_some() {
        return scim_error(StatusCode::BAD_REQUEST, Some("invalidFilter"), "Groups cannot be filtered here");
    }
    let dir = lock(&shared.directory);
    let groups: Vec<Value> = dir.groups.iter().map(|g| dir.group_json(g, &shared.base_url)).collect();
    list_response(groups, &query, shared.config.max_page_size)
}

/// What the server supports (RFC 7643 §5): filtering yes, sorting no.
async fn service_provider_config(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(resp) = gate(&shared, "/ServiceProviderConfig", &headers) {
        return resp;
    }
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": false},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": shared.config.max_page_size},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a Bearer token",
            "primary": true,
        }],
    });
    ([(header::CONTENT_TYPE, "application/scim+json")], body.to_string()).into_response()
}

async fn not_found() -> Response {
    scim_error(StatusCode::NOT_FOUND, None, "Resource not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_directory_is_deterministic_and_spread() {
        let a = Directory::generate(137, 12);
        let b = Directory::generate(137, 12);
        assert_eq!(
            a.users.iter().map(|u| &u.id).collect::<Vec<_>>(),
            b.users.iter().map(|u| &u.id).collect::<Vec<_>>()
        );
        let memberships: usize = a.groups.iter().map(|g| g.users.len() + g.groups.len()).sum();
        // Every user is in one or two groups, and group 0 nests group 1.
        assert!(memberships > 137 && memberships <= 2 * 137 + 1, "{memberships}");
        assert_eq!(a.groups[0].groups, vec![a.groups[1].id.clone()]);
    }

    #[test]
    fn filter_accepts_only_last_modified_comparisons() {
        let (inclusive, at) = parse_filter("meta.lastModified gt \"2024-01-02T08:05:00Z\"").unwrap();
        assert!(!inclusive);
        assert_eq!(at.minute(), 5);
        assert!(parse_filter("userName eq \"x\"").is_none());
        assert!(parse_filter("meta.lastModified lt \"2024-01-02T08:05:00Z\"").is_none());
    }
}
