//! A venue's request-weight budget on one core: every REST call of the core
//! to that venue (snapshots, polls) draws from it, so a burst of book resyncs
//! can never exceed the venue's limit and get the IP banned.
//!
//! - Weight is counted per fixed window (Binance: per minute); a request that
//!   does not fit waits for the next window.
//! - The venue's own count wins when it reports one (`X-MBX-USED-WEIGHT-1M`
//!   covers every process on the IP): at 90 % of the limit we wait.
//! - 429 waits `Retry-After` (default 60 s); 418 (IP banned) waits at least
//!   `Retry-After` or 2 minutes, doubling on repeats.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Budget {
    /// Weight units per window for this core.
    limit: u32,
    window: Duration,
    window_start: Instant,
    used: u32,
    blocked_until: Option<Instant>,
    /// Consecutive 418 answers (hard backoff doubles).
    bans: u32,
}

/// What to do with an answer's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Rate limited or banned: the request failed and the budget is paused.
    Throttled,
}

impl Budget {
    /// `limit` weight per `window` (already this core's share).
    pub fn new(limit: u32, window: Duration, now: Instant) -> Budget {
        Budget {
            limit: limit.max(1),
            window,
            window_start: now,
            used: 0,
            blocked_until: None,
            bans: 0,
        }
    }

    fn roll(&mut self, now: Instant) {
        while now.duration_since(self.window_start) >= self.window {
            self.window_start += self.window;
            self.used = 0;
        }
    }

    /// How long to wait before spending `weight` (zero: go now, and it is
    /// counted). A request heavier than the whole limit goes at the start of
    /// an empty window.
    pub fn try_take(&mut self, weight: u32, now: Instant) -> Duration {
        if let Some(b) = self.blocked_until {
            if now < b {
                return b - now;
            }
            self.blocked_until = None;
        }
        self.roll(now);
        if self.used > 0 && self.used.saturating_add(weight) > self.limit {
            return (self.window_start + self.window).saturating_duration_since(now);
        }
        self.used = self.used.saturating_add(weight);
        Duration::ZERO
    }

    /// Accounts for an answer. `used_1m`: the venue's own weight count.
    pub fn on_answer(
        &mut self,
        status: u16,
        used_1m: Option<u64>,
        retry_after_s: Option<u64>,
        venue_limit: u32,
        now: Instant,
    ) -> Verdict {
        self.roll(now);
        if let Some(u) = used_1m {
            // The IP-wide count is near the venue's limit: hold off until the window ends.
            if u.saturating_mul(10) >= (venue_limit as u64).saturating_mul(9) {
                self.used = self.limit;
            }
        }
        match status {
            429 => {
                let wait = Duration::from_secs(retry_after_s.unwrap_or(60).max(1));
                self.blocked_until = Some(now + wait);
                Verdict::Throttled
            }
            418 => {
                self.bans = self.bans.saturating_add(1);
                let floor = 120u64.saturating_mul(1 << (self.bans - 1).min(10));
                let wait = Duration::from_secs(retry_after_s.unwrap_or(0).max(floor));
                self.blocked_until = Some(now + wait);
                Verdict::Throttled
            }
            _ => {
                if status < 400 {
                    self.bans = 0;
                }
                Verdict::Ok
            }
        }
    }

    pub fn used(&self) -> u32 {
        self.used
    }

    pub fn blocked_until(&self) -> Option<Instant> {
        self.blocked_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spends_within_window_then_waits() {
        let t0 = Instant::now();
        let mut b = Budget::new(100, Duration::from_secs(60), t0);
        assert_eq!(b.try_take(50, t0), Duration::ZERO);
        assert_eq!(b.try_take(50, t0), Duration::ZERO);
        assert_eq!(b.try_take(1, t0), Duration::from_secs(60));
        let later = t0 + Duration::from_secs(60);
        assert_eq!(b.try_take(1, later), Duration::ZERO);
        assert_eq!(b.used(), 1);
        // Heavier than the limit: allowed alone in an empty window.
        let next = t0 + Duration::from_secs(120);
        assert_eq!(b.try_take(500, next), Duration::ZERO);
        assert!(b.try_take(1, next) > Duration::ZERO);
    }

    #[test]
    fn honours_retry_after_and_bans_hard() {
        let t0 = Instant::now();
        let mut b = Budget::new(1000, Duration::from_secs(60), t0);
        assert_eq!(
            b.on_answer(429, None, Some(7), 6000, t0),
            Verdict::Throttled
        );
        assert_eq!(b.try_take(1, t0), Duration::from_secs(7));
        let t1 = t0 + Duration::from_secs(7);
        assert_eq!(b.try_take(1, t1), Duration::ZERO);
        assert_eq!(
            b.on_answer(418, None, Some(5), 6000, t1),
            Verdict::Throttled
        );
        assert_eq!(b.try_take(1, t1), Duration::from_secs(120));
        let t2 = t1 + Duration::from_secs(120);
        b.on_answer(418, None, None, 6000, t2);
        assert_eq!(b.try_take(1, t2), Duration::from_secs(240));
    }

    #[test]
    fn venue_count_near_limit_pauses() {
        let t0 = Instant::now();
        let mut b = Budget::new(1000, Duration::from_secs(60), t0);
        assert_eq!(b.on_answer(200, Some(5500), None, 6000, t0), Verdict::Ok);
        assert!(b.try_take(1, t0) > Duration::ZERO);
        assert_eq!(b.try_take(1, t0 + Duration::from_secs(60)), Duration::ZERO);
    }
}
