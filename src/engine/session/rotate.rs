//! Make-before-break rotation: the replacement connects and subscribes while
//! the old connection keeps reading; both run for the overlap (continuity
//! and the books' shadow rule keep one copy of everything), then the old one
//! closes.

use super::read::{End, Mode};
pub(super) use super::signal::Signal;
use super::{Core, Live, Session, VenueRuntime, BACKOFF_BASE, BACKOFF_CAP};
use crate::conn::{ws, Backoff};
use std::time::{Duration, Instant};

/// A rotation switches once its replacement has not been ahead of the old
/// connection for this long.
const SWITCH_QUIET: Duration = Duration::from_millis(200);

/// Sends a close frame, waiting at most 500 ms for the peer (a replaced or
/// retired connection owes nobody more).
pub(super) async fn close_gracefully(stream: &mut ws::WsStream) {
    futures_lite::future::or(
        async {
            let _ = stream.close(None).await;
        },
        glommio::timer::sleep(Duration::from_millis(500)),
    )
    .await;
}

/// When a connection opened at `since` is due for rotation: its age limit
/// or the next daily UTC time, whichever comes first.
pub(super) fn rotation_due(v: &VenueRuntime, since: Instant) -> Option<Instant> {
    let by_age = v.rotate_after.map(|a| since + a);
    let by_clock = v.rotate_at_utc.map(|(h, m)| {
        let now_s = crate::sys::now_ns() / 1_000_000_000;
        let day = now_s % 86_400;
        let at = h as u64 * 3600 + m as u64 * 60;
        let wait = if at > day {
            at - day
        } else {
            at + 86_400 - day
        };
        Instant::now() + Duration::from_secs(wait)
    });
    match (by_age, by_clock) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl<C: Core> Session<'_, C> {
    /// Make-before-break: keeps reading `old` while a replacement connects
    /// and subscribes, runs both for the overlap (continuity and the books'
    /// shadow rule keep one copy of everything), then closes `old`. If `old`
    /// ends first, the replacement takes over at once; if no replacement
    /// could be opened by then, returns why `old` ended.
    pub(super) async fn rotate(&self, mut old: Live) -> Result<Live, String> {
        let (conn, v) = (self.conn, &self.v);
        let retire = Signal::default();
        let switch = Signal::default();
        let old_side = async {
            let end = self
                .read_loop(
                    &mut old,
                    Mode::Overlap {
                        stop: &retire,
                        until: None,
                    },
                )
                .await;
            switch.raise();
            end
        };
        let new_side = async {
            let seed = (conn.id as u64) ^ crate::sys::now_ns().rotate_left(17);
            let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_CAP, seed);
            loop {
                if switch.is_set() {
                    return None;
                }
                let mut new = match self.open(true).await {
                    Ok(l) => l,
                    Err(e) => {
                        log::warn!("conn {} {}: replacement: {}", conn.id, conn.venue, e.why);
                        futures_lite::future::or(
                            glommio::timer::sleep(self.retry_wait(&mut backoff, &e)),
                            switch.wait(),
                        )
                        .await;
                        continue;
                    }
                };
                let started = Instant::now();
                let mut until = started + v.rotation_overlap;
                let end = loop {
                    let end = self
                        .read_loop(
                            &mut new,
                            Mode::Overlap {
                                stop: &switch,
                                until: Some(until),
                            },
                        )
                        .await;
                    // Switch only once the replacement has stopped running
                    // ahead of the old connection (its records are then all
                    // merged), or the old one ended, or 10 overlaps passed.
                    let quiet_ns = crate::sys::now_ns()
                        .saturating_sub(self.core.pipeline().borrow().last_deferred_ns());
                    let caught_up = quiet_ns > SWITCH_QUIET.as_nanos() as u64;
                    if !matches!(end, End::Stopped)
                        || switch.is_set()
                        || caught_up
                        || started.elapsed() > v.rotation_overlap * 10
                    {
                        break end;
                    }
                    until = Instant::now() + SWITCH_QUIET;
                };
                match end {
                    End::Stopped => {
                        retire.raise();
                        return Some(new);
                    }
                    End::Lost(why) | End::Rotate(why) => {
                        log::warn!(
                            "conn {} {}: replacement lost during the overlap: {why}",
                            conn.id,
                            conn.venue
                        );
                        // The old connection still carries the books.
                        self.close_live(new, false).await;
                    }
                }
            }
        };
        let (old_end, new) = futures_util::future::join(old_side, new_side).await;
        match new {
            Some(mut new) => {
                new.cstate.shadow = false;
                // Records of `old` compare with `new` as one connection's.
                self.core
                    .pipeline()
                    .borrow_mut()
                    .retire(old.epoch, new.epoch);
                let vs = self.core.stats().venue(conn.venue);
                vs.connections_up.add(-1);
                vs.streams_up.add(-(conn.streams.len() as i64));
                if matches!(old_end, End::Stopped) {
                    close_gracefully(&mut old.stream).await;
                }
                log::info!(
                    "conn {} {}: rotated to the replacement after {:?}",
                    conn.id,
                    conn.venue,
                    old.since.elapsed()
                );
                Ok(new)
            }
            None => {
                self.close_live(old, true).await;
                Err(match old_end {
                    End::Lost(why) | End::Rotate(why) => why,
                    End::Stopped => "stopped".into(),
                })
            }
        }
    }
}
