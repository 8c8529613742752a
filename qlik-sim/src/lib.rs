//! A local Qlik Cloud tenant: the REST endpoints a licence and usage inventory reads, with
//! Qlik's shapes, paging, keys, error envelopes, rate limits and injectable faults.
//!
//! Every entity derives from `(seed, index)`, so a tenant of 100,000 users starts at once and
//! the same seed always serves the same data. [`Simulator::ground_truth`] gives, per connector
//! stream, what a correct sync must land.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use qlik_sim::{SimConfig, Simulator};
//! let sim = Simulator::start(SimConfig::small()).await?;
//! let users_url = format!("{}/api/v1/users", sim.base_url());
//! let bearer = format!("Bearer {}", sim.keys().admin);
//! # let _ = (users_url, bearer);
//! # Ok(()) }
//! ```
//!
//! Where the definitions leave it open, the simulator follows real tenants, and is stricter
//! than Qlik when in doubt: `limit` for spaces and space assignments is capped at 100;
//! `/users` without `filter` or `status` lists active users only, in name order; the plain
//! licence assignment listing includes orphans and `orphans=true` lists only them; licence
//! next links carry only `limit` and a position; consumption events tie on `endTime` and
//! some arrive late; the rate limit is per user over 5 minutes; a non-admin key sees only
//! its own API keys and the spaces and apps it can access; `consumption/executions` lists
//! metering records on a capacity tenant only and answers 404 on a user-based one, with next
//! links of `limit` and `page` alone. [`Situations`] switch on what a tenant does only now
//! and then.
//!
//! A crate of its own, apart from the integration tests, so that `connector-host demo` links
//! the simulator and nothing else of the tests; a production build (`--no-default-features`)
//! links neither. The `qlik-sim` binary (`cargo run -p tests --bin qlik-sim`) serves it.
#![deny(missing_docs)]

mod config;
pub mod digest;
mod faults;
mod ground_truth;
mod handlers;
mod http;
mod keys;
mod log;
mod oauth;
mod paging;
mod ratelimit;
mod scim;
mod server;
mod situations;
mod synth;
mod tenant;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub use config::{Deprecation, Faults, SimConfig, Subscription};
pub use faults::{FOREIGN_HOST, Hostile};
pub use ground_truth::{GroundTruth, UNTYPED, execution_key, non_admin};
pub use keys::ApiKeys;
pub use log::LoggedRequest;
pub use situations::Situations;

use server::State;

/// A running simulator; the server stops when this is dropped.
pub struct Simulator {
    state: Arc<State>,
    addr: SocketAddr,
    _shutdown: tokio::sync::watch::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Simulator {
    /// Starts on `127.0.0.1` with an ephemeral port, serving on the current tokio runtime.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        Simulator::start_on(config, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts on `addr`.
    pub async fn start_on(config: SimConfig, addr: SocketAddr) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::new(&config, addr.to_string()));
        let (tx, rx) = tokio::sync::watch::channel(());
        let task = tokio::spawn(server::serve(listener, state.clone(), rx));
        Ok(Simulator { state, addr, _shutdown: tx, task })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash; the API lives under `/api/v1/`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The issued API keys.
    pub fn keys(&self) -> &ApiKeys {
        &self.state.keys
    }

    /// The id of the connector that reads this simulator.
    pub const CONNECTOR: &str = "qlik-sense";

    /// A config of [`Simulator::CONNECTOR`] that reads this tenant with the admin key, for a
    /// host that runs a sync against it (the `demo`). A simulator started without a rate
    /// limit lets the run send as fast as it can.
    pub fn connector_config(&self) -> serde_json::Value {
        let mut config = serde_json::json!({"tenant_url": self.base_url(), "api_key": self.keys().admin});
        if self.state.limiter.is_none() {
            config["requests_per_minute"] = serde_json::json!(20_000);
        }
        config
    }

    /// What a correct sync lands, per stream (computed on first call). The consumption
    /// events Qlik records late count from the first consumption listing to the present that
    /// starts after one was read to its end, which is the first to list them: after a first
    /// sync they do not count, after a second they do.
    pub fn ground_truth(&self) -> &GroundTruth {
        self.state.ground_truth()
    }

    /// The tenant's id (the `tenant` stream's key).
    pub fn tenant_id(&self) -> &str {
        &self.state.tenant.tenant_id
    }

    /// The tenant's secret licence token, served in `licenses/overview`: tests assert it never
    /// appears in a client's output.
    pub fn license_key(&self) -> &str {
        &self.state.tenant.license_key
    }

    /// Replaces the faults for the requests that follow.
    pub fn set_faults(&self, faults: Faults) {
        *self.state.faults.write().expect("faults lock") = faults;
    }

    /// Switches API keys on or off for the tenant.
    pub fn set_api_keys_enabled(&self, enabled: bool) {
        self.state.keys_enabled.store(enabled, Ordering::Relaxed);
    }

    /// The id and secret of the tenant's machine-to-machine OAuth client (the first of the
    /// `oauth-clients` listing): exchanged at `POST /oauth/token` for access tokens.
    pub fn oauth_client(&self) -> (String, String) {
        (self.state.tenant.oauth_client_id(0), oauth::client_secret(&self.state.tenant))
    }

    /// Sets the lifetime of access tokens issued from now on (6 hours by default).
    pub fn set_token_lifetime(&self, lifetime: std::time::Duration) {
        self.state.tokens.set_lifetime(lifetime);
    }

    /// Expires every access token issued so far: the next request with one gets 401.
    pub fn expire_tokens(&self) {
        self.state.tokens.expire_all();
    }

    /// Every request since start or the last [`Simulator::clear_requests`].
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.state.log.snapshot()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.state.log.clear();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}
