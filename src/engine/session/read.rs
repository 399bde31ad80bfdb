//! The read loop: frames in, the pipeline's answer acted on (replies, book
//! resubscriptions and snapshots, flush, reconnect gaps), heartbeats sent and
//! silence detected on one timer.

use super::signal::Signal;
use super::watch::Watch;
use super::{resubscription, Core, Live, RequestLog, Session};
use crate::book::BookAction;
use crate::conn::ws;
use crate::engine::pipeline::{received_slot, BookRequest, Frame, FrameAnswer};
use crate::model::DataType;
use crate::venue::{self, FrameOutcome, Heartbeat, Malformed};
use async_tungstenite::tungstenite::{self, Message};
use futures_util::StreamExt;
use glommio::timer::Timer;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// Frames handled before offering the executor a chance to run other tasks.
const YIELD_EVERY: u32 = 64;

/// How a read loop runs.
#[derive(Clone, Copy)]
pub(super) enum Mode<'a> {
    /// The connection of its plan: ends on a drop, or at `rotate_at` / a
    /// venue close notice with [`End::Rotate`].
    Primary { rotate_at: Option<Instant> },
    /// One side of a rotation overlap: ends with [`End::Stopped`] when `stop`
    /// is raised or at `until`.
    Overlap {
        stop: &'a Signal,
        until: Option<Instant>,
    },
}

/// Why a read loop ended.
pub(super) enum End {
    Lost(String),
    Rotate(String),
    Stopped,
}

/// What woke a read loop.
enum Ev {
    Msg(Option<Result<Message, tungstenite::Error>>),
    Tick,
    /// Stop signal or deadline.
    Other,
}

impl<C: Core> Session<'_, C> {
    /// Reads frames until the connection ends, a rotation is due (primary)
    /// or the overlap is over (see [`Mode`]). Sends the venue's heartbeats,
    /// parser replies and book resubscriptions.
    pub(super) async fn read_loop(&self, live: &mut Live, mode: Mode<'_>) -> End {
        let venue = self.conn.venue;
        let vs = self.core.stats().venue(venue);
        let heartbeat = venue::protocol(venue).heartbeat();
        // Streams whose silence means a dropped subscription. Only the
        // primary connection resubscribes: an overlap is short and its
        // partner carries the same streams.
        let mut watch: Vec<Watch> = match mode {
            Mode::Primary { .. } => self.watch_list(crate::sys::now_ns()),
            Mode::Overlap { .. } => Vec::new(),
        };
        let (stop, until) = match mode {
            Mode::Primary { rotate_at } => (None, rotate_at),
            Mode::Overlap { stop, until } => (Some(stop), until),
        };
        // Receive time (ns) of the last frame; reuses the clock read each frame
        // already pays for, instead of a second one.
        let mut last_frame_ns = crate::sys::now_ns();
        let mut timers = Timers::new(self.v.stale_after, heartbeat, &watch, until, last_frame_ns);
        let Live {
            stream,
            cstate,
            requests,
            ..
        } = live;
        let mut since_yield = 0u32;
        // (transport reads, clock) of the last parse's clock read: a frame
        // tungstenite decodes with no read since came from bytes in memory
        // by then, so that read is its receive time (under load one clock
        // read per frame instead of two: they were 6 % of the core).
        let mut clock: Option<(u64, u64)> = None;
        loop {
            since_yield += 1;
            if since_yield >= YIELD_EVERY {
                since_yield = 0;
                glommio::yield_if_needed().await;
            }
            if stop.is_some_and(|s| s.is_set()) {
                return End::Stopped;
            }
            // Under load a frame is usually buffered already: take it
            // without building the select over the timers (a tenth of the
            // core went to that), and check the timers by the last frame's
            // receive time instead; idle, the select waits as before.
            let fast = if last_frame_ns >= timers.tick_at_ns {
                Some(Ev::Tick)
            } else if last_frame_ns >= timers.until_ns {
                Some(Ev::Other)
            } else {
                match std::future::poll_fn(|cx| std::task::Poll::Ready(stream.poll_next_unpin(cx)))
                    .await
                {
                    std::task::Poll::Ready(m) => Some(Ev::Msg(m)),
                    std::task::Poll::Pending => None,
                }
            };
            let next = match fast {
                Some(ev) => ev,
                // Busy-polling: the socket read already woke this task, so
                // give the core back and come round again, without polling
                // the socket a second time and the timers through the select
                // (they are checked by frame time above; after the busy-poll
                // window the read waits on glommio and the select runs).
                None if stream.get_ref().spun() => {
                    futures_lite::future::yield_now().await;
                    continue;
                }
                // Waiting in the core's `ppoll`, which wakes this task when
                // the socket is readable or the window ends; timers are
                // checked by frame time above, as when spinning.
                None if stream.get_ref().in_kernel() => {
                    crate::conn::kwait::woken().await;
                    continue;
                }
                None => next_event(stream, &mut timers.tick, stop, &mut timers.deadline).await,
            };
            let next = match next {
                Ev::Msg(m) => m,
                Ev::Other => {
                    return match mode {
                        Mode::Primary { .. } => End::Rotate("connection age".into()),
                        Mode::Overlap { .. } => End::Stopped,
                    }
                }
                Ev::Tick => {
                    let beat = heartbeat.zip(timers.next_heartbeat.as_mut());
                    let quiet = crate::sys::now_ns().saturating_sub(last_frame_ns);
                    if let Err(end) = self
                        .on_tick(stream, quiet, beat, &mut watch, requests)
                        .await
                    {
                        return end;
                    }
                    timers.rearm();
                    continue;
                }
            };
            let msg = match next {
                None => return End::Lost("stream ended".to_string()),
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    let now = crate::sys::now_ns();
                    let rejected = match &e {
                        tungstenite::Error::Capacity(_) => Some(Malformed::Oversized),
                        tungstenite::Error::Utf8(_) => Some(Malformed::InvalidUtf8),
                        _ => None,
                    };
                    if let Some(r) = rejected {
                        let mut p = self.core.pipeline().borrow_mut();
                        p.on_frame(&self.src, Frame::Rejected(r, 0), now, cstate);
                    }
                    // A bad UTF-8 frame was read whole: skip it, keep the connection.
                    if matches!(e, tungstenite::Error::Utf8(_)) {
                        continue;
                    }
                    return End::Lost(format!("read error: {e}"));
                }
            };
            let now = match clock.take() {
                Some((reads, at)) if reads == stream.get_ref().reads() => at,
                _ => crate::sys::now_ns(),
            };
            last_frame_ns = now;
            if msg.len() > ws::MAX_MESSAGE_BYTES {
                let frame = Frame::Rejected(Malformed::Oversized, msg.len());
                let mut p = self.core.pipeline().borrow_mut();
                p.on_frame(&self.src, frame, now, cstate);
                continue;
            }
            if self.core.discard_frames() {
                vs.frames_received[received_slot(self.src.conn_type)].inc();
                vs.bytes_received.add(msg.len() as u64);
                continue;
            }
            match msg {
                Message::Text(text) => {
                    let frame = Frame::Text(text.as_str());
                    let answer = self
                        .core
                        .pipeline()
                        .borrow_mut()
                        .on_frame(&self.src, frame, now, cstate);
                    if answer.parsed_ns >= now {
                        clock = Some((stream.get_ref().reads(), answer.parsed_ns));
                    }
                    self.core.batch_grew(answer.full, answer.started, now);
                    if answer.gaps {
                        self.core.take_gaps();
                    }
                    let notice = answer.outcome == FrameOutcome::Notice;
                    if answer.book.is_some() || !answer.replies.is_empty() {
                        if let Err(end) = self.send_back(stream, answer, requests).await {
                            return end;
                        }
                    }
                    if notice && matches!(mode, Mode::Primary { .. }) {
                        return End::Rotate("the venue announced the close".into());
                    }
                }
                Message::Binary(b) => {
                    let mut p = self.core.pipeline().borrow_mut();
                    p.on_frame(&self.src, Frame::Binary(&b), now, cstate);
                }
                // tungstenite has already queued the pong.
                Message::Ping(_) => vs.pings.inc(),
                Message::Pong(_) | Message::Frame(_) => {}
                Message::Close(frame) => {
                    return End::Lost(match frame {
                        Some(f) => format!("server closed ({} {})", f.code, f.reason),
                        None => "server closed".to_string(),
                    })
                }
            }
        }
    }

    /// The timer fired after `quiet_ns` without a frame: the connection is
    /// stale, or a heartbeat is due, or watched streams went silent.
    async fn on_tick(
        &self,
        stream: &mut ws::WsStream,
        quiet_ns: u64,
        beat: Option<(Heartbeat, &mut Instant)>,
        watch: &mut [Watch],
        requests: &mut RequestLog,
    ) -> Result<(), End> {
        let vs = self.core.stats().venue(self.conn.venue);
        // No frame, ping or pong for this long: dead even if TCP
        // has not noticed (a quiet stream still gets pings/pongs).
        let quiet = Duration::from_nanos(quiet_ns);
        if quiet > self.v.stale_after {
            vs.stale_connections.inc();
            return Err(End::Lost(format!("no frames for {quiet:?} (stale)")));
        }
        if let Some((hb, at)) = beat {
            if Instant::now() >= *at {
                if let Err(e) = stream.send(Message::text(hb.frame)).await {
                    return Err(End::Lost(format!("sending heartbeat: {e}")));
                }
                vs.heartbeats_sent.inc();
                *at = Instant::now() + hb.every;
            }
        }
        if !watch.is_empty() {
            match self.resubscribe_silent(stream, watch, requests).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(End::Lost(
                        "control-request budget of the venue spent: reconnecting to resubscribe silent streams"
                            .into(),
                    ))
                }
                Err(e) => return Err(End::Lost(format!("sending resubscription: {e}"))),
            }
        }
        Ok(())
    }

    /// Sends what a frame's answer asks for on this connection: the book's
    /// resubscription (or queues its snapshot) and the parser's replies.
    async fn send_back(
        &self,
        stream: &mut ws::WsStream,
        answer: FrameAnswer,
        requests: &mut RequestLog,
    ) -> Result<(), End> {
        if let Some(req) = answer.book {
            match self.on_book_request(stream, req, requests).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(End::Lost(
                        "control-request budget of the venue spent: reconnecting to resync".into(),
                    ))
                }
                Err(e) => return Err(End::Lost(format!("sending resubscription: {e}"))),
            }
        }
        let vs = self.core.stats().venue(self.conn.venue);
        for r in answer.replies {
            if let Err(e) = stream.send(Message::text(r)).await {
                return Err(End::Lost(format!("sending reply: {e}")));
            }
            vs.heartbeats_sent.inc();
        }
        Ok(())
    }

    /// Acts on what the books asked after a frame: a REST snapshot (queued
    /// for the venue's REST worker) or a resubscription of that one symbol's
    /// book channel on this connection (the others are not disturbed).
    /// `Ok(false)`: the venue's hourly control-request budget would be
    /// exceeded; the caller reconnects (a new connection resubscribes all).
    async fn on_book_request(
        &self,
        stream: &mut ws::WsStream,
        req: BookRequest,
        requests: &mut RequestLog,
    ) -> Result<bool, tungstenite::Error> {
        let venue = self.conn.venue;
        match req.action {
            BookAction::None => {}
            BookAction::FetchSnapshot => self.core.fetch_snapshot(venue, req.raw_symbol),
            BookAction::Resubscribe => {
                let channel =
                    vec![venue::protocol(venue).channel(&req.raw_symbol, DataType::OrderBook)];
                let Some(frames) = resubscription(venue, &channel, requests) else {
                    return Ok(false);
                };
                log::info!("{venue}: resubscribing {} to resync its book", channel[0]);
                self.core.stats().venue(venue).book_resubscribes.inc();
                for f in frames {
                    stream.send(Message::text(f)).await?;
                }
            }
        }
        Ok(true)
    }
}

/// The read loop's timers: one tick that sends heartbeats and checks the
/// connection and its watched streams for silence, and the end of the loop's
/// time (rotation due, overlap over); with their due times on the frame
/// clock, which the fast path checks instead of polling the timers.
struct Timers {
    period: Duration,
    tick: Option<Pin<Box<Timer>>>,
    tick_at_ns: u64,
    deadline: Option<Pin<Box<Timer>>>,
    until_ns: u64,
    next_heartbeat: Option<Instant>,
}

impl Timers {
    fn new(
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
    fn rearm(&mut self) {
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
