//! A client-side request budget shared by every request of a read.
//!
//! Sources publish limits as "N requests per window", and the strictest of them count
//! every request in any window, not in fixed slots: Qlik Cloud's Tier 1 is 1,000
//! requests per minute per user, evaluated over a 5-minute window "to support bursts of
//! requests" (<https://qlik.dev/apis/rest/rate-limiting>), i.e. at most 5,000 requests in
//! any 300 seconds. Keeping under the budget ourselves is cheaper than being throttled:
//! a 429 costs a round trip and a `Retry-After` pause, and the source may count the
//! rejected request too.
//!
//! [`RateLimiter`] is a sliding-window log: it remembers the instants of the last
//! `max_requests` admissions, and the next request waits until the oldest of them is a
//! whole window old. That is exact, where a token bucket is not: a bucket with burst `B`
//! and rate `R` admits `B + R × W` in a window `W`, so one sized to spend a window's
//! budget at once over-spends the next window, and one that does not over-spend throttles
//! a run that would have fit. Here a run of at most `max_requests` requests never waits,
//! and no window ever holds more. Memory is one instant per request of the last window,
//! at most `max_requests`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Admits at most `max_requests` requests in any window of `window`, across every task
/// that shares it, and holds everyone back after the source asked for a pause.
#[derive(Debug)]
pub struct RateLimiter {
    max_requests: usize,
    window: Duration,
    state: Mutex<Window>,
    /// Tasks waiting their turn, first come first served; while any waits, a newcomer
    /// queues behind it instead of taking the next free place.
    queue: tokio::sync::Mutex<()>,
    queued: AtomicUsize,
}

/// The admissions still inside the window, oldest first, and the source's pause.
#[derive(Debug, Default)]
struct Window {
    admitted: VecDeque<Instant>,
    deferred_until: Option<Instant>,
}

impl RateLimiter {
    /// A limiter admitting at most `max_requests` (at least 1) in any `window` (at least
    /// 1 ms), all of them at once when the window is empty.
    pub fn new(max_requests: u64, window: Duration) -> Self {
        RateLimiter {
            max_requests: usize::try_from(max_requests.max(1)).unwrap_or(usize::MAX),
            window: window.max(Duration::from_millis(1)),
            state: Mutex::new(Window::default()),
            queue: tokio::sync::Mutex::new(()),
            queued: AtomicUsize::new(0),
        }
    }

    /// A limiter admitting at most `requests_per_minute` in any 60 seconds: a source that
    /// publishes a per-minute budget and no longer window.
    pub fn per_minute(requests_per_minute: u32) -> Self {
        Self::new(u64::from(requests_per_minute), Duration::from_secs(60))
    }

    /// The most requests admitted in any window.
    pub fn max_requests(&self) -> u64 {
        self.max_requests as u64
    }

    /// The window the budget applies to.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Waits until a request may be sent, counts it, and returns how long the caller was
    /// held back (zero when the budget had room at once), so callers can report time
    /// spent throttled. Dropping the future before it completes counts nothing.
    pub async fn acquire(&self) -> Duration {
        if self.queued.load(Ordering::Acquire) == 0 && self.try_admit(Instant::now()).is_ok() {
            return Duration::ZERO;
        }
        let started = Instant::now();
        let _queued = Queued::enter(&self.queued);
        let _turn = self.queue.lock().await;
        loop {
            match self.try_admit(Instant::now()) {
                Ok(()) => return started.elapsed(),
                Err(until) => tokio::time::sleep_until(until).await,
            }
        }
    }

    /// Counts a request at `now` if the budget has room and no pause is in force;
    /// otherwise returns the earliest instant it could.
    fn try_admit(&self, now: Instant) -> Result<(), Instant> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let window = self.window;
        while state.admitted.front().is_some_and(|t| now.duration_since(*t) >= window) {
            state.admitted.pop_front();
        }
        let full = (state.admitted.len() >= self.max_requests).then(|| state.admitted[0] + window);
        let paused = state.deferred_until.filter(|until| *until > now);
        match full.max(paused) {
            Some(until) => Err(until),
            None => {
                state.admitted.push_back(now);
                Ok(())
            }
        }
    }

    /// How much of a pause asked for with [`RateLimiter::defer_until`] is left, if one is in
    /// force.
    pub fn pause_left(&self) -> Option<Duration> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        state.deferred_until.filter(|until| *until > now).map(|until| until - now)
    }

    /// Holds every caller back until `until`, those already waiting included, e.g. after
    /// the source answered 429 with a `Retry-After`: the other streams would only collect
    /// 429s of their own.
    pub fn defer_until(&self, until: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.deferred_until.is_none_or(|t| t < until) {
            state.deferred_until = Some(until);
        }
    }
}

/// Counts a task in the queue for as long as it waits, even if its future is dropped.
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Queued(count)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// `concurrency` tasks send `requests` requests in all through one limiter, each
    /// pausing a random "response time" of up to `work` after each admission. Returns
    /// every admission's instant and how long it was held back, in order of admission.
    async fn admissions(
        limiter: Arc<RateLimiter>,
        concurrency: usize,
        requests: usize,
        work: Duration,
    ) -> Vec<(Instant, Duration)> {
        let next = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..concurrency)
            .map(|task| {
                let (limiter, next) = (limiter.clone(), next.clone());
                tokio::spawn(async move {
                    let mut rng = SmallRng::seed_from_u64(task as u64);
                    let mut admitted = Vec::new();
                    while next.fetch_add(1, Ordering::SeqCst) < requests {
                        let waited = limiter.acquire().await;
                        admitted.push((Instant::now(), waited));
                        let pause = rng.random_range(0..=work.as_micros() as u64);
                        tokio::time::sleep(Duration::from_micros(pause)).await;
                    }
                    admitted
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all.sort();
        all
    }

    /// The most admissions any window of `window` holds: with the instants sorted, the
    /// window starting at each admission.
    fn busiest_window(admitted: &[Instant], window: Duration) -> usize {
        (0..admitted.len())
            .map(|i| admitted[i..].iter().take_while(|t| t.duration_since(admitted[i]) < window).count())
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn no_window_ever_holds_more_than_the_budget_and_no_request_waits_needlessly() {
        // Qlik's shape, scaled down: 50 requests in any 10 s, 12 tasks, 100 ms responses.
        let window = Duration::from_secs(10);
        let limiter = Arc::new(RateLimiter::new(50, window));
        let start = Instant::now();
        let admitted = admissions(limiter, 12, 420, Duration::from_millis(100)).await;
        assert_eq!(admitted.len(), 420);
        let instants: Vec<Instant> = admitted.iter().map(|(t, _)| *t).collect();
        assert_eq!(busiest_window(&instants, window), 50, "full windows, never fuller");
        // A request held back goes the instant an earlier one leaves the window.
        for (t, waited) in &admitted {
            if !waited.is_zero() {
                assert!(instants.binary_search(&(*t - window)).is_ok(), "{:?}", t.duration_since(start));
            }
        }
        // So 420 requests end in the ninth window, behind by at most the tasks' own
        // response times (100 ms a window at worst).
        let last = instants.last().unwrap().duration_since(start);
        assert!(last >= Duration::from_secs(80) && last < Duration::from_millis(80_900), "{last:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_that_fits_the_window_never_waits() {
        let limiter = Arc::new(RateLimiter::new(5_000, Duration::from_secs(300)));
        let start = Instant::now();
        let admitted = admissions(limiter.clone(), 16, 5_000, Duration::from_millis(100)).await;
        assert_eq!(admitted.len(), 5_000);
        assert!(admitted.iter().all(|(_, waited)| waited.is_zero()), "nobody was held back");
        // 16 chains of about 313 requests of at most 100 ms each.
        assert!(admitted.last().unwrap().0.duration_since(start) < Duration::from_secs(32));
        // The 5,001st request waits for the first to leave the window, and says so.
        let waited = limiter.acquire().await;
        assert_eq!(Instant::now().duration_since(admitted[0].0), Duration::from_secs(300));
        assert!(waited > Duration::from_secs(260), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_requested_pause_holds_back_everyone_including_those_already_waiting() {
        let limiter = Arc::new(RateLimiter::new(2, Duration::from_secs(60)));
        let start = Instant::now();
        assert_eq!(limiter.acquire().await, Duration::ZERO);
        assert_eq!(limiter.acquire().await, Duration::ZERO);
        // A third request waits for the first to leave the window, at 60 s...
        let waiting = tokio::spawn({
            let limiter = limiter.clone();
            async move { limiter.acquire().await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        // ... until the source asks for 90 s of quiet.
        limiter.defer_until(Instant::now() + Duration::from_secs(90));
        assert_eq!(waiting.await.unwrap(), Duration::from_secs(91));
        assert_eq!(Instant::now().duration_since(start), Duration::from_secs(91));
        // An earlier pause does not shorten a later one.
        limiter.defer_until(Instant::now() + Duration::from_secs(30));
        limiter.defer_until(Instant::now() + Duration::from_secs(10));
        assert_eq!(limiter.acquire().await, Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_go_first_come_first_served_and_a_dropped_wait_counts_nothing() {
        let limiter = Arc::new(RateLimiter::per_minute(1));
        assert_eq!((limiter.max_requests(), limiter.window()), (1, Duration::from_secs(60)));
        limiter.acquire().await;
        // A wait given up on leaves no trace in the budget.
        let gave_up = tokio::time::timeout(Duration::from_secs(5), limiter.acquire()).await;
        assert!(gave_up.is_err());
        let order = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let (limiter, order) = (limiter.clone(), order.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(i * 10)).await;
                    limiter.acquire().await;
                    order.lock().unwrap().push((i, Instant::now()));
                })
            })
            .collect();
        let start = Instant::now();
        for task in tasks {
            task.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        let firsts: Vec<u64> = order.iter().map(|(i, _)| *i).collect();
        assert_eq!(firsts, [0, 1, 2]);
        let at: Vec<Duration> = order.iter().map(|(_, t)| t.duration_since(start)).collect();
        assert_eq!(at, [55, 115, 175].map(Duration::from_secs), "one a minute, from the first at 0 s");
    }
}
