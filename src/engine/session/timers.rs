//! The read loop's timers and its idle wait: a frame, the tick (heartbeats,
//! silence) or the end of the loop's time, whichever comes first.

use super::inbox::Item;
use super::signal::Signal;
use super::watch::Watch;
use crate::conn::ws;
use crate::venue::Heartbeat;
use futures_util::StreamExt;
use glommio::timer::Timer;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// What woke a read loop.
pub(super) enum Ev {
    Msg(Item),
    Tick,
    /// Stop signal or deadline.
    Other,
    /// Nothing yet: the socket was found empty and the task woken again.
    Again,
}

/// The read loop's timers: one tick that sends heartbeats and checks the
/// connection and its watched streams for silence, and the end of the loop's
/// time (rotation due, overlap over); with their due times on the frame
/// clock, which the fast path checks instead of polling the timers.
pub(super) struct Timers {
    period: Duration,
    pub(super) tick: Option<Pin<Box<Timer>>>,
    pub(super) tick_at_ns: u64,
    pub(super) deadline: Option<Pin<Box<Timer>>>,
    pub(super) until_ns: u64,
    pub(super) next_heartbeat: Option<Instant>,
}

impl Timers {
    pub(super) fn new(
        stale_after: Duration,
        heartbeat: Option<Heartbeat>,
        watch: &[Watch],
        until: Option<Instant>,
        now_ns: u64,
    ) -> Timers {
        let mut period = match heartbeat {
            Some(h) => h.every.min(stale_after / 2),
            None => stale_after / 2,
        };
        if let Some(min) = watch.iter().map(|w| w.limit_ns).min() {
            period = period.min(Duration::from_nanos(min / 2));
        }
        Timers {
            period,
            tick: Some(Box::pin(Timer::new(period))),
            tick_at_ns: now_ns + period.as_nanos() as u64,
            deadline: until
                .map(|t| Box::pin(Timer::new(t.saturating_duration_since(Instant::now())))),
            until_ns: until.map_or(u64::MAX, |t| {
                now_ns + t.saturating_duration_since(Instant::now()).as_nanos() as u64
            }),
            next_heartbeat: heartbeat.map(|h| Instant::now() + h.every),
        }
    }

    /// The tick fired and was handled: arm the next one.
    pub(super) fn rearm(&mut self) {
        self.tick = Some(Box::pin(Timer::new(self.period)));
        self.tick_at_ns = crate::sys::now_ns() + self.period.as_nanos() as u64;
    }
}

/// Waits for whichever comes first: a frame, the timer, or the stop signal
/// / deadline (the idle path; under load the loop takes buffered frames
/// without it).
async fn next_event(
    stream: &mut ws::WsStream,
    tick: &mut Option<Pin<Box<Timer>>>,
    stop: Option<&Signal>,
    deadline: &mut Option<Pin<Box<Timer>>>,
) -> Ev {
    let msg = async { Ev::Msg(stream.next().await) };
    let tick_f = async {
        match tick.as_mut() {
            Some(t) => {
                t.as_mut().await;
                Ev::Tick
            }
            None => std::future::pending().await,
        }
    };
    let other = async {
        match (stop, deadline.as_mut()) {
            (Some(s), Some(d)) => {
                futures_lite::future::or(
                    async {
                        s.wait().await;
                    },
                    async {
                        d.as_mut().await;
                    },
                )
                .await
            }
            (Some(s), None) => s.wait().await,
            (None, Some(d)) => {
                d.as_mut().await;
            }
            (None, None) => std::future::pending().await,
        }
        Ev::Other
    };
    futures_lite::future::or(msg, futures_lite::future::or(tick_f, other)).await
}

/// The next thing that happened on the connection: under load a frame
/// is usually buffered already, so it is taken without building the
/// select over the timers (a tenth of the core went to that), and the
/// timers are checked by the last frame's receive time instead; idle,
/// the select waits.
pub(super) async fn next(
    stream: &mut ws::WsStream,
    timers: &mut Timers,
    stop: Option<&Signal>,
    last_frame_ns: u64,
) -> Ev {
    if last_frame_ns >= timers.tick_at_ns {
        return Ev::Tick;
    }
    if last_frame_ns >= timers.until_ns {
        return Ev::Other;
    }
    let polled =
        std::future::poll_fn(|cx| std::task::Poll::Ready(stream.poll_next_unpin(cx))).await;
    if let std::task::Poll::Ready(m) = polled {
        return Ev::Msg(m);
    }
    // Busy-polling: the socket read already woke this task, so give the
    // core back and come round again, without polling the socket a
    // second time and the timers through the select (they are checked
    // by frame time above; after the busy-poll window the read waits on
    // glommio and the select runs).
    if stream.get_ref().spun() {
        futures_lite::future::yield_now().await;
        return Ev::Again;
    }
    // Waiting in the core's `ppoll`, which wakes this task when the
    // socket is readable or the window ends; timers are checked by frame
    // time above, as when spinning.
    if stream.get_ref().in_kernel() {
        crate::conn::kwait::woken().await;
        return Ev::Again;
    }
    next_event(stream, &mut timers.tick, stop, &mut timers.deadline).await
}
