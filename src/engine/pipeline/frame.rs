//! The frame side of the pipeline: one call per WebSocket frame
//! ([`Pipeline::on_frame`]) records it (raw capture), parses it, feeds the
//! books, drops what another connection already delivered, and answers with
//! everything the read loop must act on ([`FrameAnswer`]), so the socket code
//! never reaches into pipeline state.

use super::{Pipeline, LOOK_FOR_WRITES_EVERY};
use crate::book::BookAction;
use crate::capture::FrameKind;
use crate::engine::continuity::{key_of, StreamGap, Verdict};
use crate::model::{DataType, VenueId};
use crate::venue::{self, FrameOutcome, Malformed, ParseCtx, VenueState};

/// What a connection keeps for its parser between frames.
#[derive(Debug, Default)]
pub struct ConnState {
    pub venue: VenueState,
    /// Frames the parser wants sent back (drained by the connection task).
    pub replies: Vec<String>,
    /// This connection attempt's number on the core (continuity checks).
    pub epoch: u32,
    /// A replacement still overlapping the connection it replaces.
    pub shadow: bool,
}

/// Where a frame came from.
#[derive(Debug, Clone, Copy)]
pub struct FrameSource {
    /// The connection plan's id (raw capture).
    pub conn_id: usize,
    pub venue: VenueId,
    /// The connection's data type when it carries only one (`None`: several).
    pub conn_type: Option<DataType>,
}

/// One frame as the socket delivered it.
#[derive(Debug, Clone, Copy)]
pub enum Frame<'a> {
    Text(&'a str),
    /// Captured raw, then counted as malformed: no venue sends binary data.
    Binary(&'a [u8]),
    /// Refused before it could be read (oversized, invalid UTF-8), with its
    /// size when known: counted only.
    Rejected(Malformed, usize),
}

/// What a book needs from the engine after a message: a REST snapshot or a
/// resubscription, of this symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookRequest {
    pub action: BookAction,
    pub raw_symbol: String,
}

/// The pipeline's answer to one frame: everything the read loop acts on.
#[derive(Debug)]
pub struct FrameAnswer {
    /// What the venue parser made of the frame (`Notice`: rotate).
    pub outcome: FrameOutcome,
    /// Frames the parser wants sent back (pongs, acks); empty: none.
    pub replies: Vec<String>,
    /// A book that needs a snapshot or a resubscription (rare; the only
    /// part that allocates).
    pub book: Option<BookRequest>,
    /// The batch reached its size limit: flush now.
    pub full: bool,
    /// The batch got its first record: wake the flusher.
    pub started: bool,
    /// Reconnect gaps are waiting ([`Pipeline::take_stream_gaps`]).
    pub gaps: bool,
}

impl FrameAnswer {
    #[inline]
    fn nothing(outcome: FrameOutcome) -> FrameAnswer {
        FrameAnswer {
            outcome,
            replies: Vec::new(),
            book: None,
            full: false,
            started: false,
            gaps: false,
        }
    }
}

impl Pipeline {
    /// Handles one frame received at `receive_ns` from `src`: the read
    /// loop's only call into the pipeline per frame.
    #[inline]
    pub fn on_frame(
        &mut self,
        src: &FrameSource,
        frame: Frame<'_>,
        receive_ns: u64,
        conn: &mut ConnState,
    ) -> FrameAnswer {
        let text = match frame {
            Frame::Text(t) => t,
            Frame::Binary(b) => {
                self.record_raw(receive_ns, src.conn_id, src.venue, FrameKind::Binary, b);
                let r = Malformed::NonText;
                self.on_rejected(src.venue, src.conn_type, r, b.len(), receive_ns);
                return FrameAnswer::nothing(FrameOutcome::Malformed(r));
            }
            Frame::Rejected(r, bytes) => {
                self.on_rejected(src.venue, src.conn_type, r, bytes, receive_ns);
                return FrameAnswer::nothing(FrameOutcome::Malformed(r));
            }
        };
        self.record_raw(
            receive_ns,
            src.conn_id,
            src.venue,
            FrameKind::Text,
            text.as_bytes(),
        );
        let was_empty = self.batch.is_empty();
        let (outcome, action) = self.on_text(src.venue, src.conn_type, text, receive_ns, conn);
        // Under load the flusher seldom runs: look for a landed file write
        // here now and then.
        self.frames_since_look += 1;
        if self.frames_since_look >= LOOK_FOR_WRITES_EVERY {
            self.frames_since_look = 0;
            self.collect_landed(receive_ns);
        }
        let book = (action != BookAction::None).then(|| BookRequest {
            action,
            raw_symbol: self.book_msg.raw_symbol.clone(),
        });
        let replies = if conn.replies.is_empty() {
            Vec::new()
        } else {
            std::mem::take(&mut conn.replies)
        };
        FrameAnswer {
            outcome,
            replies,
            book,
            full: self.is_full(),
            started: was_empty && !self.batch.is_empty(),
            gaps: !self.stream_gaps.is_empty(),
        }
    }

    /// Records a received frame if raw capture is on for its venue.
    #[inline]
    fn record_raw(
        &mut self,
        receive_ns: u64,
        conn_id: usize,
        venue: VenueId,
        kind: FrameKind,
        payload: &[u8],
    ) {
        if !self.raw_venues[venue.index()] {
            return;
        }
        let Some(w) = self.raw.as_mut() else { return };
        if let Err(e) = w.record(receive_ns, conn_id, venue, kind, payload) {
            self.stats.raw_capture_errors.inc();
            if let Some(n) = self.raw_log.check(receive_ns) {
                log::error!("raw capture write failed: {e} ({n} similar errors suppressed)");
            }
        } else {
            self.stats.raw_frames.inc();
        }
    }

    /// Handles one text frame received at `receive_ns` on a connection of
    /// `venue` carrying `conn_type` (`None`: several data types). A book
    /// message goes to the books; the returned action is theirs.
    #[inline]
    pub fn on_text(
        &mut self,
        venue: VenueId,
        conn_type: Option<DataType>,
        text: &str,
        receive_ns: u64,
        conn: &mut ConnState,
    ) -> (FrameOutcome, BookAction) {
        let vs = self.stats.venue(venue);
        vs.frames_received[received_slot(conn_type)].inc();
        vs.bytes_received.add(text.len() as u64);
        let start = self.batch.len();
        let mut cx = ParseCtx {
            venue,
            instruments: &self.instruments[venue.index()],
            book: &mut self.book_msg,
            state: &mut conn.venue,
            replies: &mut conn.replies,
        };
        let out = venue::protocol(venue).on_text(text, receive_ns, &mut cx, &mut self.batch);
        let mut action = BookAction::None;
        match out {
            FrameOutcome::Records(_) => {}
            FrameOutcome::Book => {
                self.book_msg.shadow = conn.shadow;
                let (ahead, resyncs) = {
                    let st = self.books.stats(venue);
                    (st.shadow_ahead, st.resyncs)
                };
                action = self
                    .books
                    .on_ws(venue, &self.book_msg, receive_ns, &mut self.batch);
                let st = self.books.stats(venue);
                if st.shadow_ahead != ahead {
                    self.continuity.last_deferred_ns = receive_ns;
                }
                if st.resyncs != resyncs {
                    self.book_resync_gap(venue, receive_ns);
                }
            }
            FrameOutcome::Control | FrameOutcome::Ignored => vs.control.inc(),
            FrameOutcome::Notice => {
                vs.control.inc();
                vs.shutdown_notices.inc();
                log::warn!("{venue}: the venue announced this connection will close soon");
            }
            FrameOutcome::ControlError => {
                vs.control_errors.inc();
                if let Some(n) = self.control_log.check(receive_ns) {
                    log::warn!(
                        "{venue}: error answer from venue: {} ({n} more suppressed)",
                        snippet(text)
                    );
                }
            }
            FrameOutcome::Malformed(r) => self.count_malformed(venue, r, text, receive_ns),
        }
        if self.batch.len() > start {
            self.dedup(venue, start, conn.epoch, conn.shadow, receive_ns);
            self.count_parsed(start, receive_ns);
        }
        (out, action)
    }

    /// A book was discarded (gap, checksum, crossed) and resyncs: the
    /// updates between its last good state and the new snapshot are not in
    /// the `orderbook_delta` output, so a `gap` record says so.
    fn book_resync_gap(&mut self, venue: VenueId, receive_ns: u64) {
        let raw = self.book_msg.raw_symbol.clone();
        let symbol = self.instruments[venue.index()]
            .normalize(&raw)
            .unwrap_or(&raw)
            .to_string();
        let ts = self.book_msg.ts_ms;
        let g = StreamGap {
            venue,
            data_type: DataType::OrderBook,
            raw_symbol: raw,
            symbol,
            range: None,
            from_ts_ms: ts,
            to_ts_ms: ts,
        };
        self.push_gap_record(&g, "book_resync", receive_ns);
    }

    /// Drops the records from `start` on that another connection already
    /// delivered, and notes reconnect gaps (see [`super::continuity`]).
    fn dedup(&mut self, venue: VenueId, start: usize, epoch: u32, shadow: bool, now_ns: u64) {
        let cont = &mut self.continuity;
        let gaps = &mut self.stream_gaps;
        let before = cont.duplicates;
        self.batch.retain_from(start, |rec| {
            let Some(key) = key_of(rec) else { return true };
            let o = rec.origin();
            let dt = rec.data_type();
            let range =
                match cont.check(venue, dt, o.raw_symbol, key, o.ts_ms, epoch, shadow, now_ns) {
                    Verdict::Keep => return true,
                    Verdict::Duplicate | Verdict::Deferred => return false,
                    Verdict::Gap { from, to, since_ms } => (Some((from, to)), since_ms),
                    Verdict::MaybeGap { since_ms } => (None, since_ms),
                };
            gaps.push(StreamGap {
                venue,
                data_type: dt,
                raw_symbol: o.raw_symbol.to_string(),
                symbol: o.symbol.to_string(),
                range: range.0,
                from_ts_ms: range.1,
                to_ts_ms: o.ts_ms,
            });
            true
        });
        let dups = cont.duplicates - before;
        if dups > 0 {
            self.stats.venue(venue).duplicates_dropped.add(dups);
        }
    }

    /// Counts the records added since `start` per venue × type.
    pub(super) fn count_parsed(&mut self, start: usize, receive_ns: u64) {
        for rec in self.batch.iter_from(start) {
            let (vs, dt) = (self.stats.venue(rec.venue()), rec.data_type().index());
            vs.parsed[dt].inc();
            vs.last_record_ns[dt].set(rec.receive_ts_ns() as i64);
        }
        if self.live && !self.untimed.note(receive_ns) {
            self.parsed_through();
            self.untimed.note(receive_ns);
        }
    }

    /// Times every frame parsed since the last call with one clock read
    /// (`receive_to_parsed`). The read loop calls it once it has handled
    /// all the frames a read brought; a flush calls it too.
    pub fn parsed_through(&mut self) {
        if self.untimed.is_empty() {
            return;
        }
        let now = crate::sys::now_ns();
        for (receive_ns, n) in self.untimed.take() {
            self.stats
                .receive_to_parsed
                .observe_n(now.saturating_sub(receive_ns), u64::from(n));
        }
    }

    /// Counts a frame rejected before parsing (binary, oversized, bad UTF-8).
    pub fn on_rejected(
        &mut self,
        venue: VenueId,
        conn_type: Option<DataType>,
        reason: Malformed,
        bytes: usize,
        receive_ns: u64,
    ) {
        let vs = self.stats.venue(venue);
        vs.frames_received[received_slot(conn_type)].inc();
        vs.bytes_received.add(bytes as u64);
        self.count_malformed(venue, reason, "", receive_ns);
    }

    pub(super) fn count_malformed(
        &mut self,
        venue: VenueId,
        r: Malformed,
        text: &str,
        now_ns: u64,
    ) {
        self.stats.venue(venue).malformed[r.index()].inc();
        if let Some(n) = self.malformed_log.check(now_ns) {
            log::warn!(
                "{venue}: skipped malformed frame ({}): {} ({n} more suppressed in the last second)",
                r.label(),
                snippet(text)
            );
        }
    }
}

/// Slot of `VenueStats::frames_received` for a connection's data type.
#[inline]
pub fn received_slot(conn_type: Option<DataType>) -> usize {
    conn_type.map(DataType::index).unwrap_or(DataType::COUNT)
}

/// First bytes of a frame for a log line (on a char boundary).
pub(super) fn snippet(text: &str) -> &str {
    let mut end = text.len().min(160);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
