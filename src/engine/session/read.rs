//! The read loop: frames in, the pipeline's answer acted on (replies, book
//! resubscriptions and snapshots, flush, reconnect gaps), heartbeats sent and
//! silence detected on one timer.

use super::inbox::Taken;
use super::signal::Signal;
use super::timers::{self, Ev, Timers};
use super::watch::Watch;
use super::{resubscription, Core, Live, RequestLog, Session};
use crate::book::BookAction;
use crate::conn::ws;
use crate::engine::pipeline::{received_slot, BookRequest, Frame, FrameAnswer};
use crate::model::DataType;
use crate::venue::{self, FrameOutcome, Heartbeat, Malformed};
use async_tungstenite::tungstenite::{self, Message};
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
        // Receive time (ns) of the last frame: the timers' clock under load.
        let mut last_frame_ns = crate::sys::now_ns();
        let mut timers = Timers::new(self.v.stale_after, heartbeat, &watch, until, last_frame_ns);
        let Live {
            stream,
            cstate,
            requests,
            inbox,
            ..
        } = live;
        let mut since_yield = 0u32;
        // Frames handled since the pipeline last timed their parse.
        let mut untimed = false;
        loop {
            if stop.is_some_and(|s| s.is_set()) {
                return End::Stopped;
            }
            if inbox.is_empty() {
                if std::mem::take(&mut untimed) {
                    self.core.pipeline().borrow_mut().parsed_through();
                }
                // Between reads only: a reader cancelled here (shutdown, a
                // released symbol) has handled every frame it took.
                if since_yield >= YIELD_EVERY {
                    since_yield = 0;
                    glommio::yield_if_needed().await;
                }
                match timers::next(stream, &mut timers, stop, last_frame_ns).await {
                    Ev::Msg(item) => {
                        inbox.take(item, crate::sys::now_ns(), stream).await;
                    }
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
                    }
                    Ev::Again => {}
                }
                continue;
            }
            since_yield += 1;
            untimed = true;
            let (item, now) = match inbox.pop() {
                Some(Taken::Text(text, now)) => {
                    last_frame_ns = now;
                    if let Err(end) = self
                        .on_text(text, now, stream, cstate, requests, mode)
                        .await
                    {
                        return end;
                    }
                    continue;
                }
                Some(Taken::Other(item, now)) => (item, now),
                None => continue,
            };
            last_frame_ns = now;
            let msg = match item {
                None => return End::Lost("stream ended".to_string()),
                Some(Ok(m)) => m,
                Some(Err(e)) => {
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
            if msg.len() > ws::MAX_MESSAGE_BYTES {
                let frame = Frame::Rejected(Malformed::Oversized, msg.len());
                let mut p = self.core.pipeline().borrow_mut();
                p.on_frame(&self.src, frame, now, cstate);
                continue;
            }
            match msg {
                // A text the inbox did not copy (over 16 KiB).
                Message::Text(text) => {
                    if let Err(end) = self
                        .on_text(text.as_str(), now, stream, cstate, requests, mode)
                        .await
                    {
                        return end;
                    }
                }
                Message::Binary(b) => {
                    if self.core.discard_frames() {
                        self.count_discarded(b.len());
                        continue;
                    }
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

    /// Hands a text frame received at `now` to the pipeline and acts on its
    /// answer (replies, book requests, a venue's close notice).
    async fn on_text(
        &self,
        text: &str,
        now: u64,
        stream: &mut ws::WsStream,
        cstate: &mut crate::engine::pipeline::ConnState,
        requests: &mut RequestLog,
        mode: Mode<'_>,
    ) -> Result<(), End> {
        if self.core.discard_frames() {
            self.count_discarded(text.len());
            return Ok(());
        }
        let answer =
            self.core
                .pipeline()
                .borrow_mut()
                .on_frame(&self.src, Frame::Text(text), now, cstate);
        self.core.batch_grew(answer.full, answer.started, now);
        if answer.gaps {
            self.core.take_gaps();
        }
        let notice = answer.outcome == FrameOutcome::Notice;
        if answer.book.is_some() || !answer.replies.is_empty() {
            self.send_back(stream, answer, requests).await?;
        }
        if notice && matches!(mode, Mode::Primary { .. }) {
            return Err(End::Rotate("the venue announced the close".into()));
        }
        Ok(())
    }

    /// A frame received with `discard_frames` on: counted, not parsed.
    fn count_discarded(&self, len: usize) {
        let vs = self.core.stats().venue(self.conn.venue);
        vs.frames_received[received_slot(self.src.conn_type)].inc();
        vs.bytes_received.add(len as u64);
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
