//! A minimal stderr logger (`log` facade) and a rate limiter for log lines on
//! hot paths: a flood of bad frames produces one line per interval with the
//! count of suppressed ones, never a line per frame.

use std::io::Write;

struct StderrLogger {
    level: log::LevelFilter,
}

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let ms = crate::sys::now_ms();
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("main");
        let (y, mo, d, h, mi, s) = crate::sys::civil_utc(ms / 1000);
        let line = format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z {:<5} [{}] {}\n",
            ms % 1000,
            r.level(),
            name,
            r.args()
        );
        // One write per line so lines from different cores do not interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger; level from `MARKETPRISM_LOG` (error|warn|info|debug|trace), default info.
pub fn init() {
    let level = std::env::var("MARKETPRISM_LOG")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(log::LevelFilter::Info);
    if log::set_boxed_logger(Box::new(StderrLogger { level })).is_ok() {
        log::set_max_level(level);
    }
}

/// Allows one event per `interval_ns`; counts the rest.
#[derive(Debug)]
pub struct RateLimit {
    interval_ns: u64,
    last_ns: u64,
    suppressed: u64,
}

impl RateLimit {
    pub const fn new(interval_ns: u64) -> Self {
        RateLimit {
            interval_ns,
            last_ns: 0,
            suppressed: 0,
        }
    }

    /// `Some(n)` if a line may be logged now (`n` = lines suppressed since the
    /// last one), `None` if this one should be counted and skipped.
    #[inline]
    pub fn check(&mut self, now_ns: u64) -> Option<u64> {
        if self.last_ns == 0 || now_ns.saturating_sub(self.last_ns) >= self.interval_ns {
            self.last_ns = now_ns.max(1);
            let n = self.suppressed;
            self.suppressed = 0;
            Some(n)
        } else {
            self.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_counts_suppressed_lines() {
        let mut r = RateLimit::new(1_000);
        assert_eq!(r.check(10), Some(0));
        assert_eq!(r.check(20), None);
        assert_eq!(r.check(500), None);
        assert_eq!(r.check(1_010), Some(2));
        assert_eq!(r.check(1_011), None);
    }
}
