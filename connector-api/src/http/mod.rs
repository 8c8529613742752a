//! Shared plumbing for connectors that read HTTP APIs.
//!
//! Every HTTP connector needs the same few things, and getting them subtly wrong
//! (retrying forever, leaking a bearer token to a foreign host, looping on a cursor)
//! is how syncs fail in production. They live here once:
//!
//! - [`client`]: one `reqwest` client built the same way everywhere (rustls, a
//!   `User-Agent` naming the connector, per-request timeout, no automatic redirects so
//!   a credential never follows a redirect to another origin unnoticed);
//! - [`retry`]: a [`RetryingClient`] that rate-limits, sends, reads the body (capped),
//!   hands every response to the connector's classifier and retries exactly the errors
//!   that are retryable (transport failures, throttling, 5xx, bodies cut off), honouring
//!   `Retry-After`, with exponential backoff and full jitter, bounded in attempts and
//!   total time;
//! - [`rate_limit`]: a [`RateLimiter`] shared by every stream of a read, so all of them
//!   together stay under the source's budget of requests in any window (a sliding
//!   window, exact: a run that fits it never waits);
//! - [`origin`]: an [`OriginGuard`] that decides whether a link or redirect may carry
//!   credentials, and rebases foreign links onto the configured origin;
//! - [`json_body`]: a successful body read as JSON, retried only when it breaks off, and
//!   otherwise failed with what came back (an HTML login page, an empty 204 …);
//! - [`paging`]: [`paginate`], a lazy stream of pages over any continuation token,
//!   [`read_ahead`] to keep one page in flight while the previous one is consumed, and
//!   a [`CursorGuard`] that stops a source that hands out the same cursor twice.
//!
//! Nothing here knows any particular source; a connector supplies how to build a
//! request and how to interpret a response.

pub mod client;
pub mod json_body;
pub mod offset;
pub mod origin;
pub mod paging;
pub mod rate_limit;
pub mod retry;

use std::time::Duration;

pub use client::{ClientOptions, build_client};
pub use origin::{LinkTarget, OriginGuard};
pub use paging::{CursorGuard, paginate, read_ahead};
pub use rate_limit::RateLimiter;
pub use retry::{DEFAULT_MAX_BODY_BYTES, Fetched, RetryPolicy, RetryingClient, parse_retry_after};

/// Something the HTTP layer did while serving one request, for a connector to report
/// as [`StreamEvent`](crate::StreamEvent)s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpEvent {
    /// The client-side rate limiter held the request back for this long.
    Throttled(Duration),
    /// An attempt failed for `reason` and the next one starts after `wait`.
    Retrying {
        /// Why the attempt failed (`HTTP 503`, `timed out`, `malformed JSON` …).
        reason: String,
        /// The pause before the next attempt.
        wait: Duration,
    },
}

impl HttpEvent {
    /// The matching [`StreamEvent`](crate::StreamEvent).
    pub fn to_stream_event(&self) -> crate::StreamEvent {
        match self {
            HttpEvent::Throttled(wait) => crate::StreamEvent::Throttled { wait: *wait },
            HttpEvent::Retrying { reason, wait } => {
                crate::StreamEvent::Retrying { reason: reason.clone(), wait: *wait }
            }
        }
    }
}
