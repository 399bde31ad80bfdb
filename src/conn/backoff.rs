//! Capped exponential backoff with jitter, so many connections that drop
//! together do not come back together.

use std::time::Duration;

#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration, seed: u64) -> Self {
        Backoff {
            base,
            cap,
            attempt: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Next delay, "full jitter": uniform in [0, d] where
    /// d = min(cap, base·2^attempt). Connections that dropped together then
    /// retry spread over the whole window instead of in a band at its end;
    /// the growing d (and each attempt's own connect time) keeps a flapping
    /// peer from making us spin.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(20));
        let d = exp.min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        Duration::from_nanos(self.rng.u64(0..=d.as_nanos() as u64))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_jitters() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(5);
        let mut b = Backoff::new(base, cap, 7);
        let mut prev_max = Duration::ZERO;
        for i in 0..12 {
            let d = b.next_delay();
            let full = base.saturating_mul(1 << i).min(cap);
            assert!(d <= full, "{i}: {d:?} vs {full:?}");
            prev_max = prev_max.max(d);
        }
        assert!(prev_max <= cap);
        b.reset();
        assert!(b.next_delay() <= base);
        // Two connections with different seeds do not retry in lockstep.
        let mut a = Backoff::new(base, cap, 1);
        let mut c = Backoff::new(base, cap, 2);
        let same = (0..8).filter(|_| a.next_delay() == c.next_delay()).count();
        assert!(same < 8);
    }

    #[test]
    fn a_storm_of_reconnects_is_spread_over_the_window() {
        // 1 000 connections dropped at once, seeded as the shard seeds them
        // (connection id ^ clock): their 4th retries fall evenly over
        // [0, base·2^3], not in a burst.
        let base = Duration::from_millis(250);
        let window = base * 8;
        let mut buckets = [0u32; 10];
        for id in 0..1000u64 {
            let mut b = Backoff::new(base, Duration::from_secs(30), id ^ 0x1234_5678_9abc);
            for _ in 0..3 {
                b.next_delay();
            }
            let d = b.next_delay();
            assert!(d <= window);
            let k = (d.as_nanos() * 10 / (window.as_nanos() + 1)) as usize;
            buckets[k] += 1;
        }
        // Each tenth of the window holds 100 ± 40 of them.
        assert!(
            buckets.iter().all(|&n| (60..=140).contains(&n)),
            "{buckets:?}"
        );
    }
}
