//! Requests and replies as the handlers see them, and Qlik's error envelopes, which differ by
//! service like a real tenant's do.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use super::config::Deprecation;

/// The request header naming the API release a client knows (https://qlik.dev/apis/versioning).
pub(crate) const API_VERSION_HEADER: &str = "qlik-api-version";

/// The releases the simulated tenant supports, oldest first: those Qlik supports from its
/// 2026-11 release on (https://qlik.dev/changelog/266-quarterly-api-versioning-2026-11-release).
pub(crate) const SUPPORTED_API_VERSIONS: [&str; 3] = ["2026-05", "2026-08", "2026-11"];

/// The release a request is served as. The header changes no request or response shape; Qlik
/// reads it to pick the deprecation warnings it returns, and serves a request without it, or
/// naming a release it does not support (malformed ones included), as its oldest supported
/// release, without an error (https://qlik.dev/apis/versioning,
/// https://qlik.dev/changelog/266-quarterly-api-versioning-2026-11-release).
pub(crate) fn served_api_version(header: Option<&str>) -> &'static str {
    let asked = header.map(str::trim);
    SUPPORTED_API_VERSIONS.into_iter().find(|v| Some(*v) == asked).unwrap_or(SUPPORTED_API_VERSIONS[0])
}

/// The headers announcing `deprecation` to a request served as `served` (a supported
/// release): `Deprecation: @<seconds>` (RFC 9745) and `Sunset: <HTTP date>` (RFC 8594); none
/// when the request names a release newer than the announcement's.
pub(crate) fn deprecation_headers(deprecation: &Deprecation, served: &str) -> Vec<(&'static str, String)> {
    if served > deprecation.through {
        return Vec::new();
    }
    let sunset =
        OffsetDateTime::from_unix_timestamp(deprecation.sunset).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let sunset = sunset
        .format(format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ))
        .unwrap_or_default();
    vec![("deprecation", format!("@{}", deprecation.since)), ("sunset", sunset)]
}

/// What a handler needs of a request.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    pub method: String,
    /// Path without the query, e.g. `/api/v1/users`.
    pub path: String,
    /// Raw query string (without `?`).
    pub raw_query: String,
    /// Decoded query pairs in request order.
    pub query: Vec<(String, String)>,
    /// The `Host` header (`127.0.0.1:PORT` when absent).
    pub host: String,
}

impl Ctx {
    /// `http://HOST`: the root of every absolute link.
    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.host)
    }

    /// The first value of query parameter `name`.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The absolute URL of this request.
    pub(crate) fn self_href(&self) -> String {
        if self.raw_query.is_empty() {
            format!("{}{}", self.base(), self.path)
        } else {
            format!("{}{}?{}", self.base(), self.path, self.raw_query)
        }
    }

    /// The service that answers this path, which decides the error envelope.
    pub(crate) fn service(&self) -> Service {
        let p = self.path.as_str();
        if p.starts_with("/api/v1/licenses") {
            Service::Licenses
        } else if p.starts_with("/api/v1/spaces") {
            Service::Spaces
        } else if p.starts_with("/api/v1/items") {
            Service::Items
        } else if p.starts_with("/api/v1/consumption") {
            Service::Consumption
        } else {
            Service::Identity
        }
    }
}

/// Qlik services whose error bodies differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Service {
    /// users, groups, roles, tenants, api-keys: `code` and `status` strings.
    Identity,
    /// licenses: numeric `code` and `status`, plus deprecated top-level `error`/`message`.
    Licenses,
    /// spaces: service-prefixed string codes.
    Spaces,
    /// items: `ErrorResponseBody` with `meta`, no `status`.
    Items,
    /// consumption: `ErrorResponse`, `code` and `title` with a `traceId` beside the errors.
    Consumption,
}

/// A reply body.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    Json(Value),
    Html(String),
}

/// A reply before faults and serialisation.
#[derive(Clone, Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Reply {
    /// 200 with a JSON body.
    pub(crate) fn ok(v: Value) -> Reply {
        Reply { status: 200, headers: Vec::new(), body: Body::Json(v) }
    }

    /// A redirect (`301` or `302`) to `location`, with the small HTML body Qlik sends.
    pub(crate) fn redirect(status: u16, location: String) -> Reply {
        Reply {
            status,
            body: Body::Html(format!("<a href=\"{location}\">Moved</a>.\n")),
            headers: vec![("location", location)],
        }
    }
}

/// An error answered in the service's envelope.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub status: u16,
    pub title: &'static str,
    pub detail: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `title` and `detail`.
    pub(crate) fn new(status: u16, title: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError { status, title, detail: detail.into(), retry_after: None }
    }

    /// 400 Bad Request.
    pub(crate) fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(400, "Bad Request", detail)
    }

    /// 404 Not Found.
    pub(crate) fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(404, "Not Found", detail)
    }

    /// 429 with `Retry-After: secs`.
    pub(crate) fn too_many(secs: u64) -> ApiError {
        ApiError {
            retry_after: Some(secs),
            ..ApiError::new(
                429,
                "Too Many Requests",
                format!("Rate limit exceeded; retry after {secs} seconds."),
            )
        }
    }

    /// The reply in `service`'s envelope.
    pub(crate) fn into_reply(self, service: Service) -> Reply {
        let s = self.status;
        let body = match service {
            Service::Identity => json!({
                "errors": [{"code": format!("HTTP-{s}"), "title": self.title, "detail": self.detail, "status": s.to_string()}],
            }),
            Service::Licenses => json!({
                "error": self.title,
                "message": self.detail,
                "errors": [{"code": s, "title": self.title, "detail": self.detail, "status": s}],
            }),
            Service::Spaces => json!({
                "errors": [{"code": format!("SPACES-{s}"), "title": self.title, "detail": self.detail, "status": s.to_string()}],
            }),
            Service::Items => json!({
                "errors": [{"code": format!("ITEMS-{s}"), "title": self.title, "detail": self.detail, "meta": {"message": self.detail}}],
            }),
            Service::Consumption => json!({
                "errors": [{"code": format!("CONSUMPTION-{s}"), "title": self.title, "detail": self.detail}],
                "traceId": format!("{:032x}", u128::from(s) * 0x9E37_79B9_7F4A_7C15),
            }),
        };
        let mut headers = Vec::new();
        if let Some(secs) = self.retry_after {
            headers.push(("retry-after", secs.to_string()));
        }
        Reply { status: s, headers, body: Body::Json(body) }
    }
}
