//! SIGINT/SIGTERM handling. A plain thread waits for signals and raises a flag
//! that each core polls from its control task (not the message path). A
//! second signal exits at once for operators who really mean it.
//!
//! The drain is bounded: the first stop request (signal or engine error)
//! starts `engine.shutdown_timeout_ms`; cores size their waits to what is
//! left ([`time_left`]), and a watchdog thread exits the process with code 1,
//! logging what it abandons, if they have not finished by then.

use crate::metrics::CoreStats;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

static REQUESTED: AtomicBool = AtomicBool::new(false);
/// Drain budget in ms; 0: no deadline (tests, tools that never configure one).
static TIMEOUT_MS: AtomicU64 = AtomicU64::new(0);
static DEADLINE: OnceLock<Instant> = OnceLock::new();
/// Every core's stats, for the watchdog's account of what it abandons.
static WATCHED: OnceLock<Arc<Vec<Arc<CoreStats>>>> = OnceLock::new();

/// Exit code when the drain overran its budget (a runtime failure).
pub const EXIT_TIMEOUT: i32 = 1;
/// Exit code on a second signal (128 + SIGINT, as shells report it).
pub const EXIT_SECOND_SIGNAL: i32 = 130;

/// True once a stop was requested.
#[inline]
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Sets the drain budget. Call before [`install`].
pub fn set_timeout(timeout: Duration) {
    TIMEOUT_MS.store(timeout.as_millis().max(1) as u64, Ordering::Relaxed);
}

/// Gives the watchdog the cores' stats to report from.
pub fn watch(stats: Arc<Vec<Arc<CoreStats>>>) {
    let _ = WATCHED.set(stats);
}

/// Requests a stop (signal thread, or an engine error). The first request
/// starts the drain deadline.
pub fn request() {
    if REQUESTED.swap(true, Ordering::Relaxed) {
        return;
    }
    let ms = TIMEOUT_MS.load(Ordering::Relaxed);
    if ms == 0 {
        return;
    }
    let timeout = Duration::from_millis(ms);
    let _ = DEADLINE.set(Instant::now() + timeout);
    let spawned = std::thread::Builder::new()
        .name("shutdown-watchdog".into())
        .spawn(move || {
            std::thread::sleep(timeout);
            log::error!(
                "shutdown did not finish within {timeout:?} (engine.shutdown_timeout_ms); exiting, abandoning {}",
                abandoned()
            );
            std::process::exit(EXIT_TIMEOUT);
        });
    if let Err(e) = spawned {
        log::error!("cannot start the shutdown watchdog: {e}; the drain is not bounded");
    }
}

/// Time left before the watchdog exits (`None`: no stop, or no deadline).
pub fn time_left() -> Option<Duration> {
    DEADLINE
        .get()
        .map(|d| d.saturating_duration_since(Instant::now()))
}

/// `want`, cut so that what follows a wait still fits before the deadline
/// (`reserve` kept back).
pub fn bounded(want: Duration, reserve: Duration) -> Duration {
    match time_left() {
        Some(left) => want.min(left.saturating_sub(reserve)),
        None => want,
    }
}

/// What the cores still hold, from their stats.
fn abandoned() -> String {
    let Some(cores) = WATCHED.get() else {
        return "nothing collected yet".to_string();
    };
    let parts: Vec<String> = cores
        .iter()
        .map(|c| {
            let mut s = format!(
                "core {}: {} records not written to files",
                c.shard,
                c.sink_pending_records.get()
            );
            if c.sink_disk_full.get() > 0 {
                s.push_str(" (disk full)");
            }
            if let Some(n) = c.nats.get() {
                s.push_str(&format!(
                    ", {} held by the NATS publisher unacknowledged",
                    n.buffered_msgs.get()
                ));
            }
            let spilled = c.spill_records.get();
            if spilled > 0 {
                s.push_str(&format!(", {spilled} kept in the spill for the next start"));
            }
            s
        })
        .collect();
    parts.join("; ")
}

/// Starts the signal thread. Call once, before the executors start.
pub fn install() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    // A file over RLIMIT_FSIZE must fail the write with EFBIG (handled like
    // a full disk), not kill the process.
    // SAFETY: setting a signal's disposition to "ignore" has no preconditions.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
                seen += 1;
                if seen == 1 {
                    log::info!(
                        "signal {sig}: stopping (flushing every core, at most {:?}); send again to exit at once",
                        Duration::from_millis(TIMEOUT_MS.load(Ordering::Relaxed))
                    );
                    request();
                } else {
                    log::warn!(
                        "second signal {sig}: exiting without flushing, abandoning {}",
                        abandoned()
                    );
                    std::process::exit(EXIT_SECOND_SIGNAL);
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_waits_without_a_deadline_are_unchanged() {
        // No test in this binary requests a stop with a timeout set.
        assert_eq!(time_left(), None);
        assert_eq!(
            bounded(Duration::from_secs(15), Duration::from_secs(1)),
            Duration::from_secs(15)
        );
    }
}
