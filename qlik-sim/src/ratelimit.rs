//! Qlik's Tier 1 rate limit: "evaluated per tier, per user, per tenant", 1,000 requests per
//! minute "evaluated over a 5-minute window to support bursts of requests"
//! (https://qlik.dev/apis/rest/rate-limiting). A sliding window per user: at most five
//! minutes' allowance in any 300 seconds, all of it spendable at once, and every key of one
//! user drawing on the same allowance.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window the limit is evaluated over.
pub(crate) const WINDOW: Duration = Duration::from_secs(300);

/// Recent request times by user.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_window: usize,
    recent: Mutex<HashMap<u64, VecDeque<Instant>>>,
}

impl RateLimiter {
    /// Allows `per_minute` requests per minute and user, over [`WINDOW`].
    pub(crate) fn new(per_minute: u32) -> RateLimiter {
        let minutes = (WINDOW.as_secs() / 60) as usize;
        RateLimiter { per_window: per_minute.max(1) as usize * minutes, recent: Mutex::new(HashMap::new()) }
    }

    /// Counts a request of `user`, or returns the whole seconds until the oldest request in
    /// the window leaves it.
    pub(crate) fn check(&self, user: u64) -> Result<(), u64> {
        self.check_at(user, Instant::now())
    }

    fn check_at(&self, user: u64, now: Instant) -> Result<(), u64> {
        let mut recent = self.recent.lock().expect("rate limiter lock");
        let times = recent.entry(user).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            times.pop_front();
        }
        if times.len() < self.per_window {
            times.push_back(now);
            return Ok(());
        }
        let oldest = *times.front().expect("a full window has requests");
        let wait = WINDOW.saturating_sub(now.duration_since(oldest));
        Err(wait.as_secs_f64().ceil().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_minutes_of_allowance_in_a_burst_then_the_window_slides() {
        let rl = RateLimiter::new(2);
        let start = Instant::now();
        for k in 0..10 {
            assert!(rl.check_at(7, start + Duration::from_secs(k)).is_ok(), "request {k}");
        }
        assert_eq!(rl.check_at(7, start + Duration::from_secs(10)), Err(290));
        assert!(rl.check_at(8, start).is_ok(), "another user has its own window");
        assert_eq!(rl.check_at(7, start + Duration::from_secs(299)), Err(1));
        assert!(
            rl.check_at(7, start + Duration::from_secs(300)).is_ok(),
            "the first request left the window"
        );
        assert!(rl.check_at(7, start + Duration::from_secs(300)).is_err());
    }
}
