//! Qlik's per-tier rate limit as a token bucket per API key: a full minute's allowance may be
//! spent at once, then it refills continuously at `per_minute / 60` requests per second.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Token buckets by API key.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// Allows `per_minute` requests per minute and key.
    pub(crate) fn new(per_minute: u32) -> RateLimiter {
        RateLimiter { per_minute: per_minute.max(1), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `key`, or returns the whole seconds until one is available.
    pub(crate) fn check(&self, key: &str) -> Result<(), u64> {
        let capacity = f64::from(self.per_minute);
        let per_sec = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * per_sec).min(capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / per_sec).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_minute_then_refuses_with_retry_after() {
        let rl = RateLimiter::new(60);
        for _ in 0..60 {
            assert!(rl.check("k").is_ok());
        }
        assert_eq!(rl.check("k"), Err(1));
        assert!(rl.check("other").is_ok());
    }
}
