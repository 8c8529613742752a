//! Sending a request until it succeeds, fails for good, or the retry budget runs out.
//!
//! [`RetryingClient::execute`] owns the loop every HTTP connector needs: wait for the
//! shared [`RateLimiter`], send, read the whole body, and decide. The decision is made in
//! one place, on one predicate: a request is tried again exactly when its error
//! [`is_retryable`](Error::is_retryable). Transport failures (no connection, a timeout, a
//! reset, a body cut short) are; every response goes to the connector's classifier,
//! which accepts it or turns it into an [`Error`] whose kind says what it is (429 →
//! [`ErrorKind::RateLimited`], 5xx and 408 → [`ErrorKind::Transient`], both retryable by
//! default; 401 → [`ErrorKind::Auth`], not). Waits follow `Retry-After` when the answer
//! carries one (seconds or an HTTP date), else exponential backoff with full jitter
//! (AWS's "full jitter": a uniform wait between zero and the exponential cap, which
//! spreads synchronized clients apart). The loop is bounded by attempts and by total
//! time, and the final error names the endpoint and the last reason.
//!
//! A body is read chunk by chunk up to a cap ([`DEFAULT_MAX_BODY_BYTES`], or
//! [`RetryingClient::with_max_body_bytes`]), so a source that never stops sending fails
//! the request instead of filling memory; such a body is not retried. The cap bounds one
//! response; what bounds them all together is that bodies past [`LARGE_BODY_BYTES`] are
//! read one at a time across every clone of a client, from their first byte past that
//! size until the classifier is done with them (see [`RetryingClient::execute`]). A run of
//! `n` requests in flight then holds at most `n` × [`LARGE_BODY_BYTES`] plus one cap of
//! bodies, whatever its concurrency and however large its pages (the README's measured
//! section gives the figures).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use url::Url;

use super::{HttpEvent, RateLimiter};
use crate::{Error, ErrorKind, HttpFailure, Result};

/// The default cap on one response body (after decompression): far above any real page
/// of any API we read, far below what hurts a host.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Waits from this long on are logged as they start, with their endpoint and reason: a run
/// that goes quiet for longer should say why.
pub const LONG_WAIT: Duration = Duration::from_secs(5);

/// How hard to try before giving up on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included.
    pub max_attempts: u32,
    /// The backoff cap before the first retry; it doubles with each retry.
    pub initial_backoff: Duration,
    /// The largest backoff cap, however many retries came before.
    pub max_backoff: Duration,
    /// Total time budget for one request, all attempts and waits included. A wait
    /// (backoff or `Retry-After`) that would overrun it ends the loop instead, at once and
    /// holding no other request back.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts, backoff caps from 200 ms doubling to 30 s, 5 minutes in total.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The exponential cap before retry number `retry` (0 for the first retry).
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(30));
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }

    /// A full-jitter wait before retry number `retry`: uniform in `[0, backoff_cap]`.
    pub fn backoff(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let cap = self.backoff_cap(retry).as_micros() as u64;
        Duration::from_micros(rng.random_range(0..=cap))
    }
}

/// Parses a `Retry-After` value: delay seconds (`120`, also `1.5`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`) relative to `now`. A date in the past means "now".
/// Returns `None` for anything else, so a garbled header falls back to backoff.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Bodies up to this size are read side by side; a larger one waits for its turn (one at a
/// time per client) before reading on. Far above a page of any API we read (Qlik's pages
/// of 100 to 200 items run to a few hundred KiB), so only hostile or runaway pages queue.
pub const LARGE_BODY_BYTES: usize = 1024 * 1024;

/// A response whose body was read in full.
#[derive(Debug)]
pub struct Fetched {
    /// The URL that answered.
    pub url: Url,
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Vec<u8>,
}

/// A `reqwest` client with a retry policy and, optionally, a shared rate limiter.
#[derive(Debug, Clone)]
pub struct RetryingClient {
    client: reqwest::Client,
    policy: RetryPolicy,
    limiter: Option<Arc<RateLimiter>>,
    max_body_bytes: usize,
    /// The one turn to read a body past [`LARGE_BODY_BYTES`], shared by every clone.
    large_bodies: Arc<Semaphore>,
}

impl RetryingClient {
    /// Wraps `client` with `policy`, no rate limiter and bodies capped at
    /// [`DEFAULT_MAX_BODY_BYTES`].
    pub fn new(client: reqwest::Client, policy: RetryPolicy) -> Self {
        RetryingClient {
            client,
            policy,
            limiter: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            large_bodies: Arc::new(Semaphore::new(1)),
        }
    }

    /// Caps each response body at `bytes`; a longer one fails the request with
    /// [`ErrorKind::Source`], unretried.
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Paces every request through `limiter`, which may be shared with other clients.
    pub fn with_limiter(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// The same client and limiter with another policy (e.g. a quick one for a probe).
    pub fn with_policy(&self, policy: RetryPolicy) -> Self {
        RetryingClient { policy, ..self.clone() }
    }

    /// The retry policy in force.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Sends the request `build` makes until `classify` accepts a response, an error is
    /// not retryable, or the policy's budget is spent.
    ///
    /// A body past [`LARGE_BODY_BYTES`] is read, and classified, in its turn: one at a time
    /// across every clone of this client. `classify` gets the body by value, so once it
    /// returns the bytes are gone (or turned into what it returns) and the next large
    /// body may come in.
    ///
    /// `classify` sees every response, whatever its status, and returns the value or the
    /// error it means (its kind decides whether it is retried); the loop records the
    /// status on the error unless the classifier recorded another failure (a body cut
    /// off). `endpoint` names the request in errors (`GET /api/v1/users`); keep
    /// secrets and long cursors out of it. Retries and rate-limiter waits are appended to
    /// `events` as they happen, for the caller to report.
    pub async fn execute<T>(
        &self,
        endpoint: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
        mut classify: impl FnMut(Fetched) -> Result<T>,
        events: &mut Vec<HttpEvent>,
    ) -> Result<T> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            if let Some(limiter) = &self.limiter {
                let paused = limiter.pause_left().is_some();
                let waited = limiter.acquire().await;
                if waited >= LONG_WAIT {
                    let why = if paused {
                        "a pause the source asked for"
                    } else {
                        "the run's request budget (requests per window)"
                    };
                    tracing::info!(endpoint, waited_s = waited.as_secs(), why, "Held a request back");
                }
                if !waited.is_zero() {
                    events.push(HttpEvent::Throttled(waited));
                }
            }
            let (err, retry_after) = match self.send(&build).await {
                Err(SendError::Transport(err)) => (transport(err), None),
                Err(SendError::TooLarge { status, content_type }) => {
                    return Err(self.too_large(endpoint, status, content_type));
                }
                Ok((fetched, _turn)) => {
                    let status = fetched.status.as_u16();
                    let retry_after = fetched
                        .headers
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    match classify(fetched) {
                        Ok(value) => return Ok(value),
                        Err(err) => {
                            let err = err
                                .with_http_failure(HttpFailure::Status(status))
                                .with_context("endpoint", endpoint.to_string())
                                .with_context("status", status.to_string());
                            (err, retry_after)
                        }
                    }
                }
            };
            if !err.is_retryable() {
                return Err(err);
            }
            let wait = match retry_after {
                Some(after) => after,
                None => self.policy.backoff(attempt - 1, &mut rand::rng()),
            };
            // Decided before anyone is held back: a pause past the budget fails this request
            // alone, where handing it to the shared limiter first stopped every stream of
            // the read for as long as the source asked (28 hours for `Retry-After: 100000`).
            let elapsed = started.elapsed();
            if attempt >= self.policy.max_attempts || elapsed + wait > self.policy.max_elapsed {
                return Err(give_up(err, endpoint, attempt, elapsed, retry_after.map(|_| wait)));
            }
            let reason = reason(&err);
            let wait_s = wait.as_secs_f64();
            match (retry_after, &self.limiter) {
                (Some(after), Some(limiter)) => {
                    limiter.defer_until(Instant::now() + after);
                    if wait >= LONG_WAIT {
                        tracing::warn!(endpoint, attempt, reason = %reason, wait_s, "The source asked for a pause; every request of the run waits for it");
                    }
                }
                _ if wait >= LONG_WAIT => {
                    tracing::info!(endpoint, attempt, reason = %reason, wait_s, "Waiting before trying the request again");
                }
                _ => {}
            }
            tracing::debug!(endpoint, attempt, reason = %reason, wait_ms = wait.as_millis() as u64, "Retrying request");
            events.push(HttpEvent::Retrying { reason, wait });
            tokio::time::sleep(wait).await;
        }
    }
}

impl RetryingClient {
    /// The error for a body over the cap: the source, or something in its place, sends
    /// more than any answer should hold.
    fn too_large(&self, endpoint: &str, status: StatusCode, content_type: Option<String>) -> Error {
        let cap = self.max_body_bytes;
        let shown_cap =
            if cap >= 1024 * 1024 { format!("{} MiB", cap / (1024 * 1024)) } else { format!("{cap} bytes") };
        let mut err = Error::new(
            ErrorKind::Source,
            format!(
                "{endpoint} answered HTTP {} with a body of more than {shown_cap} ({}); stopped reading it",
                status.as_u16(),
                content_type.as_deref().unwrap_or("no content type")
            ),
        )
        .with_context("endpoint", endpoint.to_string())
        .with_context("status", status.as_u16().to_string())
        .with_hint(format!(
            "No answer of this API is that large: check that the configured URL is the API's address and whether a proxy in between streams something else. The cap ({shown_cap} per response) protects memory from a source that never stops sending"
        ));
        if let Some(content_type) = content_type {
            err = err.with_context("content_type", content_type);
        }
        err.with_retryable(false)
    }
}

/// Why one attempt got no usable response.
enum SendError {
    /// Connecting, sending or reading failed (a body cut short included).
    Transport(reqwest::Error),
    /// The body grew past the cap.
    TooLarge { status: StatusCode, content_type: Option<String> },
}

impl RetryingClient {
    /// Sends one attempt and reads its body, at most the cap of it; a body past
    /// [`LARGE_BODY_BYTES`] comes with the turn it was read in, to hold until it is
    /// classified.
    async fn send(
        &self,
        build: &impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> std::result::Result<(Fetched, Option<OwnedSemaphorePermit>), SendError> {
        let mut response = build(&self.client).send().await.map_err(SendError::Transport)?;
        let url = response.url().clone();
        let status = response.status();
        let headers = response.headers().clone();
        let too_large = || SendError::TooLarge {
            status,
            content_type: headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string),
        };
        let announced = response.content_length().map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        if announced.is_some_and(|announced| announced > self.max_body_bytes) {
            return Err(too_large());
        }
        // An announced length is read into one buffer of that size (a large body's in its
        // turn); an unknown one is kept in chunks as they come and joined once at the end,
        // each chunk freed as it is copied: growing one buffer by doubling held a body up
        // to twice over while it copied, and so did keeping every chunk until a join.
        let mut body = Vec::with_capacity(announced.unwrap_or(0).min(LARGE_BODY_BYTES));
        let mut chunks = Vec::new();
        let mut len = 0;
        let mut turn = None;
        while let Some(chunk) = response.chunk().await.map_err(SendError::Transport)? {
            len += chunk.len();
            if len > self.max_body_bytes {
                return Err(too_large());
            }
            if len > LARGE_BODY_BYTES && turn.is_none() {
                let large_bodies = self.large_bodies.clone();
                turn = Some(large_bodies.acquire_owned().await.expect("the semaphore is never closed"));
                body.reserve_exact(announced.unwrap_or(0).saturating_sub(body.len()));
            }
            match announced {
                Some(_) => body.extend_from_slice(&chunk),
                None => chunks.push(chunk),
            }
        }
        if announced.is_none() {
            body = Vec::with_capacity(len);
            for chunk in chunks {
                body.extend_from_slice(&chunk);
            }
        }
        Ok((Fetched { url, status, headers, body }, turn))
    }
}

/// The error of a request that got no response: retryable, whatever the cause.
fn transport(err: reqwest::Error) -> Error {
    let failure = if err.is_timeout() {
        HttpFailure::Timeout
    } else if err.is_connect() {
        HttpFailure::Connect
    } else if err.is_body() || err.is_decode() {
        HttpFailure::Body
    } else {
        HttpFailure::Connection
    };
    Error::new(ErrorKind::Transient, failure.to_string()).with_http_failure(failure).with_source(err)
}

/// The short reason an attempt failed, for retry events and the final error: what failed at
/// the HTTP level (`HTTP 503`, `timed out`) or, for a body and for a classifier's error
/// without one, its message (`malformed JSON`, `response body cut off`).
fn reason(err: &Error) -> String {
    match err.http_failure() {
        // A body is cut off or, complete, malformed: the message says which.
        Some(HttpFailure::Body) | None => err.message().to_string(),
        Some(failure) => failure.to_string(),
    }
}

/// The final error once the budget is spent: the last attempt's kind, hint, context and
/// cause, with a message saying how hard it was tried. `asked_to_wait` is the
/// `Retry-After` wait that would have overrun the budget.
fn give_up(
    last: Error,
    endpoint: &str,
    attempts: u32,
    elapsed: Duration,
    asked_to_wait: Option<Duration>,
) -> Error {
    let mut message = format!(
        "{endpoint} failed after {attempts} attempt{} over {:.1}s; last: {}",
        if attempts == 1 { "" } else { "s" },
        elapsed.as_secs_f64(),
        reason(&last)
    );
    if let Some(wait) = asked_to_wait {
        message.push_str(&format!(" (the source asked to wait {}s more)", wait.as_secs()));
    }
    let mut err = Error::new(last.kind(), message).with_context("endpoint", endpoint.to_string());
    for (key, value) in last.context() {
        err = err.with_context(key.to_string(), value);
    }
    if let Some(hint) = last.hint() {
        err = err.with_hint(hint);
    }
    if let Some(failure) = last.http_failure() {
        err = err.with_http_failure(failure);
    }
    err.with_source(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 1.5 ", now), Some(Duration::from_millis(1500)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30)),
            "an HTTP date is relative to now"
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    /// A server on 127.0.0.1 that answers every request 200 with a chunked body that
    /// never ends, and counts requests.
    async fn endless_server() -> (Url, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/endless", listener.local_addr().unwrap())).unwrap();
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "[".repeat(64 * 1024));
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    while socket.write_all(chunk.as_bytes()).await.is_ok() {}
                });
            }
        });
        (url, requests)
    }

    #[tokio::test]
    async fn a_body_over_the_cap_fails_at_once_without_retrying() {
        let (url, requests) = endless_server().await;
        let client =
            RetryingClient::new(reqwest::Client::new(), RetryPolicy::default()).with_max_body_bytes(1 << 20);
        let mut events = Vec::new();
        let started = Instant::now();
        let err = client
            .execute("GET /endless", |c| c.get(url.clone()), |_| Ok(()), &mut events)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Source);
        assert!(!err.is_retryable());
        assert!(err.message().contains("more than 1 MiB (application/json)"), "{err}");
        assert!(err.hint().unwrap().contains("configured URL"), "{err}");
        assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1, "not retried");
        assert!(events.is_empty());
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    /// A server on 127.0.0.1 that answers every request 429 with `Retry-After: {retry_after}`.
    async fn throttling_server(retry_after: &'static str) -> Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/throttled", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    while socket.read(&mut request).await.is_ok_and(|n| n > 0) {
                        let answer = format!(
                            "HTTP/1.1 429 Too Many Requests\r\nretry-after: {retry_after}\r\ncontent-length: 0\r\n\r\n"
                        );
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        url
    }

    fn throttled(_: Fetched) -> Result<()> {
        Err(Error::new(ErrorKind::RateLimited, "throttled"))
    }

    #[tokio::test]
    async fn a_pause_past_the_budget_fails_the_request_at_once_and_holds_nobody_back() {
        let limiter = Arc::new(RateLimiter::per_minute(1_000));
        let client =
            RetryingClient::new(reqwest::Client::new(), RetryPolicy::default()).with_limiter(limiter.clone());
        for retry_after in ["100000", "Thu, 01 Jan 2099 00:00:00 GMT"] {
            let url = throttling_server(retry_after).await;
            let mut events = Vec::new();
            let started = Instant::now();
            let err = client
                .execute("GET /throttled", |c| c.get(url.clone()), throttled, &mut events)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::RateLimited);
            assert!(err.message().starts_with("GET /throttled failed after 1 attempt"), "{err}");
            assert!(err.message().contains("(the source asked to wait"), "{err}");
            assert!(events.is_empty(), "{events:?}");
            assert!(started.elapsed() < Duration::from_secs(5));
            assert_eq!(limiter.pause_left(), None, "the pause is not handed to the other requests");
            assert_eq!(limiter.acquire().await, Duration::ZERO);
        }
    }

    #[tokio::test]
    async fn a_pause_within_the_budget_holds_every_request_back() {
        let limiter = Arc::new(RateLimiter::per_minute(1_000));
        let policy = RetryPolicy { max_attempts: 2, ..RetryPolicy::default() };
        let client = RetryingClient::new(reqwest::Client::new(), policy).with_limiter(limiter.clone());
        let url = throttling_server("1").await;
        let mut events = Vec::new();
        let request = client.execute("GET /throttled", |c| c.get(url.clone()), throttled, &mut events);
        let other = async {
            // Sent while the pause is in force: waits for it.
            while limiter.pause_left().is_none() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            limiter.acquire().await
        };
        let (err, held) = tokio::join!(request, other);
        assert!(err.unwrap_err().message().starts_with("GET /throttled failed after 2 attempts"));
        assert!(held > Duration::from_millis(500), "{held:?}");
        assert_eq!(events, [HttpEvent::Retrying { reason: "HTTP 429".into(), wait: Duration::from_secs(1) }]);
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let policy = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            ..RetryPolicy::default()
        };
        assert_eq!(policy.backoff_cap(0), Duration::from_millis(100));
        assert_eq!(policy.backoff_cap(3), Duration::from_millis(800));
        assert_eq!(policy.backoff_cap(10), Duration::from_secs(2));
        assert_eq!(policy.backoff_cap(u32::MAX), Duration::from_secs(2));
        let mut rng = SmallRng::seed_from_u64(7);
        let waits: Vec<Duration> = (0..200).map(|_| policy.backoff(4, &mut rng)).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(1600)));
        let distinct: std::collections::HashSet<_> = waits.iter().collect();
        assert!(distinct.len() > 150, "full jitter spreads waits");
        assert!(waits.iter().any(|w| *w < Duration::from_millis(400)));
    }
}
