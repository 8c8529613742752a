//! A client-side rate limiter shared by every request of a read.
//!
//! Sources publish budgets in requests per minute. Pacing ourselves below the budget is
//! cheaper than being throttled: a 429 costs a round trip and a `Retry-After` pause for
//! the stream that hit it, while the limiter spreads the same requests evenly across all
//! streams. The algorithm is GCRA (a token bucket kept as one timestamp), which spaces
//! requests `60 s / requests_per_minute` apart after an initial `burst`.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Paces requests to at most `requests_per_minute`, across every task that shares it.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    tolerance: Duration,
    /// GCRA's theoretical arrival time of the next request.
    tat: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter admitting `requests_per_minute` (at least 1), evenly spaced, with no
    /// burst beyond one request.
    pub fn per_minute(requests_per_minute: u32) -> Self {
        Self::with_burst(requests_per_minute, 1)
    }

    /// A limiter admitting `requests_per_minute` on average and up to `burst`
    /// back-to-back requests when it has been idle.
    pub fn with_burst(requests_per_minute: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(60) / requests_per_minute.max(1);
        RateLimiter { interval, tolerance: interval * burst.max(1).saturating_sub(1), tat: Mutex::new(None) }
    }

    /// The spacing between requests at the sustained rate.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Reserves the next slot and returns how long the caller must wait for it, without
    /// waiting. Reservations are first come, first served.
    pub fn reserve(&self) -> Duration {
        let now = Instant::now();
        let mut tat = self.tat.lock().unwrap_or_else(|e| e.into_inner());
        let arrival = tat.map_or(now, |t| t.max(now));
        let wait = (arrival - now).saturating_sub(self.tolerance);
        *tat = Some(arrival + self.interval);
        wait
    }

    /// Waits for the next slot and returns how long that took, so callers can report
    /// time spent throttled.
    pub async fn acquire(&self) -> Duration {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        wait
    }

    /// Holds every caller back until `until`, e.g. after the source answered 429 with a
    /// `Retry-After`: the other streams would only collect 429s of their own.
    pub fn defer_until(&self, until: Instant) {
        let mut tat = self.tat.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = until + self.tolerance;
        if tat.is_none_or(|t| t < earliest) {
            *tat = Some(earliest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reservations are computed from the real clock, which moves a little between calls.
    fn close(actual: Duration, expected_ms: u64) -> bool {
        let expected = Duration::from_millis(expected_ms);
        actual <= expected && expected - actual < Duration::from_millis(20)
    }

    #[test]
    fn spaces_requests_evenly() {
        let limiter = RateLimiter::per_minute(600);
        assert_eq!(limiter.interval(), Duration::from_millis(100));
        let waits: Vec<Duration> = (0..5).map(|_| limiter.reserve()).collect();
        for (i, w) in waits.iter().enumerate() {
            assert!(close(*w, 100 * i as u64), "{i}: {w:?}");
        }
    }

    #[test]
    fn burst_is_admitted_then_paced() {
        let limiter = RateLimiter::with_burst(60, 3);
        let waits: Vec<Duration> = (0..4).map(|_| limiter.reserve()).collect();
        assert_eq!(&waits[..3], &[Duration::ZERO; 3]);
        assert!(close(waits[3], 1000), "{waits:?}");
    }

    #[test]
    fn defer_holds_everyone_back() {
        let limiter = RateLimiter::per_minute(6000);
        limiter.defer_until(Instant::now() + Duration::from_secs(2));
        assert!(close(limiter.reserve(), 2000));
        assert!(close(limiter.reserve(), 2010));
    }

    #[tokio::test]
    async fn shared_across_tasks() {
        let limiter = std::sync::Arc::new(RateLimiter::per_minute(1200));
        let start = Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move { l.acquire().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(450) && elapsed < Duration::from_millis(700), "{elapsed:?}");
    }
}
