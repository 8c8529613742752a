//! Building the one `reqwest` client a connector uses for a whole read.

use std::time::Duration;

use crate::{Error, ErrorKind, Result};

/// How to build a connector's HTTP client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Sent as `User-Agent` so the source's operators can tell who is calling
    /// (`data-hub-qlik-sense/0.1.0`).
    pub user_agent: String,
    /// Upper bound for one request, from connecting until the body is read.
    pub request_timeout: Duration,
    /// Upper bound for establishing a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Idle pooled connections kept per host; enough for the read's concurrency.
    pub pool_max_idle_per_host: usize,
    /// Headers every request carries (an API version a source asks its clients to send),
    /// whichever code path builds the request.
    pub default_headers: reqwest::header::HeaderMap,
}

impl ClientOptions {
    /// Options with `user_agent` and defaults that suit most REST APIs: 30 s per
    /// request, 10 s to connect, 16 idle connections per host.
    pub fn new(user_agent: impl Into<String>) -> Self {
        ClientOptions {
            user_agent: user_agent.into(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            pool_max_idle_per_host: 16,
            default_headers: reqwest::header::HeaderMap::new(),
        }
    }
}

/// Builds a pooled `reqwest` client over rustls.
///
/// Redirects are never followed automatically: a connector that expects one follows it
/// itself after asking its [`OriginGuard`](super::OriginGuard) whether the target may
/// see the credentials.
pub fn build_client(options: &ClientOptions) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(options.user_agent.clone())
        .timeout(options.request_timeout)
        .connect_timeout(options.connect_timeout)
        .pool_max_idle_per_host(options.pool_max_idle_per_host)
        .default_headers(options.default_headers.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::new(ErrorKind::Internal, "could not build the HTTP client").with_source(e))
}
