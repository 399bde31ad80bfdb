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

    /// Next delay: uniform in [d/2, d] where d = min(cap, base·2^attempt).
    /// The floor of d/2 keeps a flapping peer from making us spin.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(20));
        let d = exp.min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let half = d / 2;
        let jitter_ns = self.rng.u64(0..=half.as_nanos() as u64);
        half + Duration::from_nanos(jitter_ns)
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
            assert!(d >= full / 2 && d <= full, "{i}: {d:?} vs {full:?}");
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
}
