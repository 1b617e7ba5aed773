//! Budgets as the generic cell rate algorithm (GCRA): one number per key, the theoretical arrival
//! time (TAT) of the next request. A budget of `requests` per `period` with `burst` lets `burst`
//! requests through at once from idle, then one every `period / requests`.

use std::time::Duration;

use crate::config::rate_limit::Limit;

/// One budget, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// The time one request uses up (`period / requests`), at least 1 µs.
    pub interval_us: i64,
    /// How many requests may come at once.
    pub burst: u32,
    /// The configured numbers, for the `RateLimit-*` headers.
    pub requests: u32,
    pub period: Duration,
}

impl Rate {
    /// `requests_per_minute` requests per `window` (one minute when left out); a burst of at
    /// least one.
    pub fn from_limit(limit: &Limit) -> Self {
        let period = limit
            .window
            .map_or(Duration::from_secs(60), |w| w.duration());
        let requests = limit.requests_per_minute.max(1);
        let interval_us = i64::try_from(period.as_micros() / u128::from(requests))
            .unwrap_or(i64::MAX)
            .max(1);
        Self {
            interval_us,
            burst: limit.burst.max(1),
            requests,
            period,
        }
    }

    fn capacity_us(&self) -> i64 {
        self.interval_us.saturating_mul(i64::from(self.burst))
    }
}

/// What one request did to a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    pub allowed: bool,
    /// Requests left right now.
    pub remaining: u32,
    /// When refused: how long until one more request fits.
    pub retry_after: Duration,
    /// How long until the budget is full again.
    pub reset: Duration,
}

fn micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us.max(0)).unwrap_or(0))
}

/// Applies one request at `now` to a budget whose TAT is `tat` (`None`: idle); returns the outcome
/// and the new TAT (unchanged when refused).
pub fn take(rate: &Rate, tat: Option<i64>, now: i64) -> (Take, i64) {
    let base = tat.unwrap_or(now).max(now);
    let next = base.saturating_add(rate.interval_us);
    let used = next - now;
    if used > rate.capacity_us() {
        let retry = used - rate.capacity_us();
        let take = Take {
            allowed: false,
            remaining: 0,
            retry_after: micros(retry),
            reset: micros(base - now),
        };
        return (take, base);
    }
    let free = rate.capacity_us() - used;
    let take = Take {
        allowed: true,
        remaining: u32::try_from(free / rate.interval_us).unwrap_or(u32::MAX),
        retry_after: Duration::ZERO,
        reset: micros(used),
    };
    (take, next)
}

/// A per_endpoint path pattern: `*` stands for exactly one path segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub text: String,
    segments: Vec<String>,
}

impl Pattern {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            segments: split(text).map(str::to_string).collect(),
        }
    }

    pub fn matches(&self, path: &str) -> bool {
        let mut parts = split(path);
        for segment in &self.segments {
            match parts.next() {
                Some(p) if segment == "*" || segment == p => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(rpm: u32, burst: u32) -> Rate {
        Rate::from_limit(&Limit {
            requests_per_minute: rpm,
            burst,
            window: None,
        })
    }

    #[test]
    fn a_burst_passes_at_once_and_the_next_request_waits_one_interval() {
        let r = rate(5, 2); // one every 12 s, two at once
        let (a, tat) = take(&r, None, 0);
        assert!(a.allowed);
        assert_eq!(a.remaining, 1);
        let (b, tat) = take(&r, Some(tat), 0);
        assert!(b.allowed);
        assert_eq!(b.remaining, 0);
        let (c, same) = take(&r, Some(tat), 0);
        assert!(!c.allowed);
        assert_eq!(same, tat, "a refusal uses up nothing");
        assert_eq!(c.retry_after, Duration::from_secs(12));
        // 12 s later exactly one more fits.
        let (d, tat) = take(&r, Some(tat), 12_000_000);
        assert!(d.allowed);
        let (e, _) = take(&r, Some(tat), 12_000_000);
        assert!(!e.allowed);
        // Idle for long enough, the whole burst is back.
        let (f, _) = take(&r, Some(tat), 100_000_000);
        assert_eq!((f.allowed, f.remaining), (true, 1));
    }

    #[test]
    fn window_sets_the_period_the_requests_are_counted_over() {
        let r = Rate::from_limit(&Limit {
            requests_per_minute: 6,
            burst: 1,
            window: Some("1h".parse().unwrap()),
        });
        assert_eq!(r.interval_us, 600_000_000);
        assert_eq!(r.period, Duration::from_secs(3600));
    }

    #[test]
    fn patterns_match_one_segment_per_star() {
        let p = Pattern::new("/api/v1/modules/*/execute");
        assert!(p.matches("/api/v1/modules/0193/execute"));
        assert!(!p.matches("/api/v1/modules/execute"));
        assert!(!p.matches("/api/v1/modules/a/b/execute"));
        let p = Pattern::new("/api/v1/modules");
        assert!(p.matches("/api/v1/modules"));
        assert!(p.matches("/api/v1/modules/"));
        assert!(!p.matches("/api/v1/modules/x"));
    }
}
