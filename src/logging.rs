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

/// Log level variables, strongest first: ours, then MarketPrism's two.
pub const LEVEL_VARS: [&str; 3] = ["MARKETPRISM_LOG", "MARKETPRISM_LOG_LEVEL", "LOG_LEVEL"];

/// A log level variable with a value that is not a level. Reported like a
/// configuration error (`config` turns it into one), without `logging`
/// depending on `config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelError {
    /// The variable.
    pub key: String,
    pub reason: String,
}

impl std::fmt::Display for LevelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "config error at `{}`: {}", self.key, self.reason)
    }
}

impl std::error::Error for LevelError {}

/// A level name as either collector spells it (any case; Python's
/// `WARNING`/`CRITICAL` too); the error names `var`.
pub fn parse_level(var: &str, value: &str) -> Result<log::LevelFilter, LevelError> {
    let v = value.trim().to_ascii_lowercase();
    let name = match v.as_str() {
        "warning" => "warn",
        "critical" | "fatal" => "error",
        other => other,
    };
    name.parse().map_err(|_| LevelError {
        key: var.to_string(),
        reason: format!(
            "`{value}` is not a log level (off|error|warn|info|debug|trace, \
                 or WARNING/CRITICAL) (environment variable)"
        ),
    })
}

/// The level the environment asks for (`get` reads one variable), default info.
pub fn level_from(get: &dyn Fn(&str) -> Option<String>) -> Result<log::LevelFilter, LevelError> {
    match crate::sys::first_set(get, &LEVEL_VARS) {
        Some((var, value)) => parse_level(var, &value),
        None => Ok(log::LevelFilter::Info),
    }
}

/// Installs the logger at the level of [`LEVEL_VARS`]; a bad value is a
/// configuration error (the binary exits 2).
pub fn try_init() -> Result<(), LevelError> {
    install(level_from(&|k| std::env::var(k).ok())?);
    Ok(())
}

/// [`try_init`] for tests and tools: a bad level variable means info.
pub fn init() {
    install(level_from(&|k| std::env::var(k).ok()).unwrap_or(log::LevelFilter::Info));
}

fn install(level: log::LevelFilter) {
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

    #[test]
    fn level_variables_in_precedence_order() {
        use log::LevelFilter as L;
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(level_from(&env(&[])).unwrap(), L::Info);
        assert_eq!(
            level_from(&env(&[("LOG_LEVEL", "WARNING")])).unwrap(),
            L::Warn
        );
        assert_eq!(
            level_from(&env(&[("LOG_LEVEL", "CRITICAL")])).unwrap(),
            L::Error
        );
        assert_eq!(
            level_from(&env(&[
                ("LOG_LEVEL", "DEBUG"),
                ("MARKETPRISM_LOG_LEVEL", "ERROR")
            ]))
            .unwrap(),
            L::Error
        );
        assert_eq!(
            level_from(&env(&[
                ("MARKETPRISM_LOG_LEVEL", "ERROR"),
                ("MARKETPRISM_LOG", "trace")
            ]))
            .unwrap(),
            L::Trace
        );
        // Empty is unset; a bad value names its variable.
        assert_eq!(
            level_from(&env(&[("MARKETPRISM_LOG", ""), ("LOG_LEVEL", "debug")])).unwrap(),
            L::Debug
        );
        let e = level_from(&env(&[("LOG_LEVEL", "verbose")])).unwrap_err();
        assert_eq!(e.key, "LOG_LEVEL");
    }
}
