//! One core's synchronous data path: frame → venue parser → batch → sink,
//! with the per-core metrics. No executor, no I/O readiness: the shard feeds
//! it frames and decides when to flush. Keeping it synchronous makes it
//! testable (and allocation-countable) without sockets.

use super::continuity::{key_of, Continuity, StreamGap, Verdict};
use crate::batch::Batch;
use crate::book::{BookAction, BookMsg, Books};
use crate::capture::{FrameKind, RawWriter};
use crate::config::plan::FileSinkPlan;
use crate::logging::RateLimit;
use crate::metrics::subjects::SubjectIndex;
use crate::metrics::CoreStats;
use crate::model::{DataType, VenueId};
use crate::sink::encode::{encode_json, push_msg_id, push_subject};
use crate::sink::spill::{Spill, SpillError};
use crate::sink::{FileSink, MessageSink, WriteError, WriteReport};
use crate::venue::{self, FrameOutcome, InstrumentMap, Malformed, ParseCtx, VenueState};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arena bytes reserved per batch slot up front (a trade record plus strings
/// is about 150 bytes), so steady state never grows the arena.
const ARENA_BYTES_PER_EVENT: usize = 192;

/// The message-sink side of a core: the sink, the spill it falls back to,
/// and scratch buffers reused for every record.
pub struct NetOut {
    sink: Rc<dyn MessageSink>,
    spill: Spill,
    /// Records dropped (sink and spill both full), per stream, until a `gap`
    /// record about them has been handed on.
    gaps: Vec<Gap>,
    subject: Vec<u8>,
    id: Vec<u8>,
    payload: Vec<u8>,
    log: RateLimit,
    /// Per-subject hand-off counts (MarketPrism's published-messages series).
    subjects: SubjectIndex,
}

impl NetOut {
    pub fn new(sink: Rc<dyn MessageSink>, spill: Spill) -> NetOut {
        NetOut {
            sink,
            spill,
            gaps: Vec::new(),
            subject: Vec::with_capacity(128),
            id: Vec::with_capacity(128),
            payload: Vec::with_capacity(1024),
            log: RateLimit::new(1_000_000_000),
            subjects: SubjectIndex::default(),
        }
    }
}

/// What was lost on one stream while the message sink and its spill were full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub venue: VenueId,
    pub data_type: DataType,
    pub symbol: String,
    pub count: u64,
    /// Receive times (ms) of the first and last lost record.
    pub from_ts_ms: u64,
    pub to_ts_ms: u64,
    /// Trade ids of the first and last lost record, where the type has them.
    pub from_id: Option<String>,
    pub to_id: Option<String>,
}

impl Gap {
    fn subject(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"gap.");
        out.extend_from_slice(self.venue.exchange().as_bytes());
        out.push(b'.');
        out.extend_from_slice(self.venue.market_type().as_bytes());
        out.push(b'.');
        out.extend_from_slice(self.symbol.replace(['.', '*', '>', ' '], "_").as_bytes());
    }

    fn msg_id(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(
            format!(
                "gap:{}:{}:{}:{}:{}:{}",
                self.venue.exchange(),
                self.venue.market_type(),
                self.data_type.name(),
                self.symbol,
                self.from_ts_ms,
                self.count
            )
            .as_bytes(),
        );
    }

    /// The `gap` record: MarketPrism-style fields plus what was lost.
    fn json(&self, out: &mut Vec<u8>) {
        let ids = match (&self.from_id, &self.to_id) {
            (Some(a), Some(b)) => format!(",\"from_id\":\"{a}\",\"to_id\":\"{b}\""),
            _ => String::new(),
        };
        out.extend_from_slice(
            format!(
                "{{\"data_type\":\"gap\",\"exchange\":\"{}\",\"market_type\":\"{}\",\"symbol\":\"{}\",\
                 \"channel\":\"{}\",\"reason\":\"sink_backpressure\",\"lost\":{},\"from_ts_ms\":{},\"to_ts_ms\":{}{ids},\
                 \"filled\":false,\"ts_ms\":{},\"data_source\":\"marketprism\"}}",
                self.venue.exchange(),
                self.venue.market_type(),
                self.symbol,
                self.data_type.name(),
                self.count,
                self.from_ts_ms,
                self.to_ts_ms,
                self.to_ts_ms
            )
            .as_bytes(),
        );
    }
}

/// ASCII scratch as `&str` (subjects and ids are built from ASCII only).
fn ascii(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

pub struct Pipeline {
    batch: Batch,
    /// `None` when only a message sink is configured.
    sink: Option<FileSink>,
    net: Option<NetOut>,
    stats: Arc<CoreStats>,
    /// Indexed by `VenueId::index()`.
    instruments: Vec<InstrumentMap>,
    max_events: usize,
    malformed_log: RateLimit,
    control_log: RateLimit,
    sink_log: RateLimit,
    gap_log: RateLimit,
    /// Raw frame capture, and which venues it records.
    raw: Option<RawWriter>,
    raw_venues: [bool; VenueId::COUNT],
    raw_log: RateLimit,
    /// Receive times are now (live) rather than recorded (replay).
    live: bool,
    /// The clock read that timed the last frame's parse (live, 0 before).
    parsed_ns: u64,
    /// This core's order books.
    books: Books,
    /// Reused book message the parsers fill.
    book_msg: BookMsg,
    /// One copy per event across connections; reconnect gaps.
    continuity: Continuity,
    /// Gaps found and not yet taken by the shard (backfill or `gap` record).
    stream_gaps: Vec<StreamGap>,
}

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

impl Pipeline {
    pub fn new(
        shard: usize,
        max_events: usize,
        sink_plan: &FileSinkPlan,
        instruments: Vec<InstrumentMap>,
        stats: Arc<CoreStats>,
    ) -> std::io::Result<Pipeline> {
        let sink = FileSink::open(sink_plan, shard)?;
        let r = sink.recovery();
        stats.file_torn_bytes.add(r.torn_bytes);
        stats.file_torn_lines.add(r.torn_lines);
        stats.file_unclean_start.set(r.unclean as i64);
        Ok(Pipeline {
            batch: Batch::new(max_events, max_events * ARENA_BYTES_PER_EVENT),
            sink: Some(sink),
            net: None,
            stats,
            instruments,
            max_events,
            malformed_log: RateLimit::new(1_000_000_000),
            control_log: RateLimit::new(1_000_000_000),
            sink_log: RateLimit::new(1_000_000_000),
            gap_log: RateLimit::new(1_000_000_000),
            raw: None,
            raw_venues: [false; VenueId::COUNT],
            raw_log: RateLimit::new(1_000_000_000),
            live: true,
            parsed_ns: 0,
            books: Books::default(),
            book_msg: BookMsg::default(),
            continuity: Continuity::default(),
            stream_gaps: Vec::new(),
        })
    }

    /// Gives the pipeline this core's books.
    pub fn with_books(mut self, books: Books) -> Pipeline {
        self.books = books;
        self
    }

    pub fn books(&self) -> &Books {
        &self.books
    }

    pub fn books_mut(&mut self) -> &mut Books {
        &mut self.books
    }

    /// Instruments of a venue (this core's copy).
    pub fn instruments(&self, venue: VenueId) -> &InstrumentMap {
        &self.instruments[venue.index()]
    }

    /// Replays carry recorded receive times: skip live latency histograms.
    pub fn replaying(mut self) -> Pipeline {
        self.live = false;
        self
    }

    /// Turns the file sink off (`sink.kind = "nats"` alone).
    pub fn without_file_sink(mut self) -> Pipeline {
        if let Some(s) = self.sink.take() {
            s.abandon();
        }
        self
    }

    /// File sink memory bound and retry interval while the disk refuses writes.
    pub fn with_file_limits(mut self, max_pending_bytes: usize, retry: Duration) -> Pipeline {
        if let Some(s) = self.sink.as_mut() {
            s.set_limits(max_pending_bytes, retry);
        }
        self
    }

    /// Adds a message sink (NATS) with its spill.
    pub fn with_message_sink(mut self, net: NetOut) -> Pipeline {
        self.stats.spill_records.set(net.spill.len() as i64);
        self.stats.spill_bytes.set(net.spill.bytes() as i64);
        self.net = Some(net);
        self
    }

    /// Records waiting in the spill.
    pub fn spilled(&self) -> u64 {
        self.net.as_ref().map(|n| n.spill.len()).unwrap_or(0)
    }

    /// Keeps one message the message sink gave back (shutdown) in the spill.
    pub fn spill_message(&mut self, subject: &str, msg_id: &str, payload: &[u8]) -> bool {
        let Some(net) = self.net.as_mut() else {
            return false;
        };
        let ok = net
            .spill
            .push(subject.as_bytes(), msg_id.as_bytes(), payload)
            .is_ok();
        self.stats.spill_records.set(net.spill.len() as i64);
        self.stats.spill_bytes.set(net.spill.bytes() as i64);
        ok
    }

    /// Moves spilled records to the message sink, oldest first, until it is
    /// full or the spill is empty. Returns how many moved.
    pub fn pump_spill(&mut self) -> u64 {
        let Some(net) = self.net.as_mut() else {
            return 0;
        };
        if net.spill.is_empty() {
            return 0;
        }
        let sink = net.sink.clone();
        let (subjects, counts) = (&mut net.subjects, &self.stats.subjects);
        let moved = net
            .spill
            .drain(|s, i, p| {
                let sent = sink.try_send(ascii(s), ascii(i), p);
                if sent {
                    subjects.count(counts, s);
                }
                sent
            })
            .unwrap_or_else(|e| {
                self.stats.sink_errors.inc();
                if let Some(n) = net.log.check(crate::sys::now_ns()) {
                    log::error!("reading the spill failed: {e} ({n} similar errors suppressed)");
                }
                0
            });
        if !net.gaps.is_empty() {
            Self::emit_gaps(net, &self.stats);
        }
        self.stats.spill_records.set(net.spill.len() as i64);
        self.stats.spill_bytes.set(net.spill.bytes() as i64);
        moved
    }

    /// Hands the batch to the message sink: straight to it while nothing is
    /// spilled and it has room, otherwise behind the spilled records.
    /// With a file sink too, each record is encoded once here and the same
    /// bytes are queued for the file (see [`Pipeline::write_file`]).
    fn send_batch(&mut self) {
        let Some(net) = self.net.as_mut() else { return };
        let mut file = self.sink.as_mut();
        // Without a file sink, "written" means handed to the message sink
        // (queued or spilled); its acks are counted by the sink itself.
        let count_written = file.is_none();
        for rec in self.batch.iter() {
            let written = &self.stats.venue(rec.venue()).written[rec.data_type().index()];
            net.subject.clear();
            net.id.clear();
            net.payload.clear();
            push_subject(&mut net.subject, rec);
            push_msg_id(&mut net.id, rec);
            encode_json(&mut net.payload, rec);
            if let Some(f) = file.as_mut() {
                f.push_encoded(rec, &net.payload);
            }
            if net.spill.is_empty()
                && net
                    .sink
                    .try_send(ascii(&net.subject), ascii(&net.id), &net.payload)
            {
                net.subjects.count(&self.stats.subjects, &net.subject);
                if count_written {
                    written.inc();
                }
                continue;
            }
            match net.spill.push(&net.subject, &net.id, &net.payload) {
                Ok(()) => {
                    if count_written {
                        written.inc();
                    }
                    self.stats.spilled_total.inc();
                }
                Err(e) => {
                    // Disk budget gone too: the one place records are dropped,
                    // always counted, logged, and reported by a `gap` record.
                    self.stats.sink_records_dropped.inc();
                    note_gap(&mut net.gaps, rec);
                    if let Some(n) = net.log.check(rec.receive_ts_ns()) {
                        log::error!(
                            "message sink full and spill refused ({e}): dropped {} ({n} more dropped since the last line)",
                            ascii(&net.id)
                        );
                    }
                    if matches!(e, SpillError::Io(_)) {
                        self.stats.sink_errors.inc();
                    }
                }
            }
        }
        Self::emit_gaps(net, &self.stats);
        self.stats.spill_records.set(net.spill.len() as i64);
        self.stats.spill_bytes.set(net.spill.bytes() as i64);
    }

    /// Hands pending `gap` records on (behind everything already spilled),
    /// as soon as there is room again.
    fn emit_gaps(net: &mut NetOut, stats: &CoreStats) {
        while let Some(g) = net.gaps.first() {
            net.subject.clear();
            net.id.clear();
            net.payload.clear();
            g.subject(&mut net.subject);
            g.msg_id(&mut net.id);
            g.json(&mut net.payload);
            let sent = (net.spill.is_empty()
                && net
                    .sink
                    .try_send(ascii(&net.subject), ascii(&net.id), &net.payload))
                || net.spill.push(&net.subject, &net.id, &net.payload).is_ok();
            if !sent {
                return;
            }
            stats.gaps_emitted.inc();
            log::warn!(
                "gap record: {} {} {} lost {} records ({}..{} ms)",
                g.venue,
                g.data_type,
                g.symbol,
                g.count,
                g.from_ts_ms,
                g.to_ts_ms
            );
            net.gaps.remove(0);
        }
    }

    /// Gaps not yet handed on (for tests and shutdown).
    pub fn pending_gaps(&self) -> &[Gap] {
        self.net.as_ref().map(|n| n.gaps.as_slice()).unwrap_or(&[])
    }

    /// Enables raw capture of `venues` into `writer`.
    pub fn with_raw_capture(mut self, writer: RawWriter, venues: &[VenueId]) -> Pipeline {
        for v in venues {
            self.raw_venues[v.index()] = true;
        }
        self.raw = Some(writer);
        self
    }

    /// Records a received frame if raw capture is on for its venue.
    #[inline]
    pub fn record_raw(
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

    /// A connection (by epoch) is up / went down: continuity treats records
    /// of a live connection as overlap and of a dead one as a reconnect.
    pub fn conn_up(&mut self, epoch: u32) {
        self.continuity.conn_up(epoch);
    }

    pub fn conn_down(&mut self, epoch: u32) {
        self.continuity.conn_down(epoch);
    }

    /// A rotation replaced `old` by `new`: records of `old` compare with
    /// those of `new` as overlap, not as a reconnect.
    pub fn retire(&mut self, old: u32, new: u32) {
        self.continuity.retire(old, new);
    }

    /// When a replacement connection last delivered something ahead of the
    /// connection it replaces (ns); the rotation waits for this to stop.
    pub fn last_deferred_ns(&self) -> u64 {
        self.continuity.last_deferred_ns
    }

    /// Receive time (ns) of the last message of a stream on any connection
    /// of this core (books: any WebSocket book message); 0: none yet.
    pub fn stream_last_seen_ns(&self, venue: VenueId, dt: DataType, raw_symbol: &str) -> u64 {
        match dt {
            DataType::OrderBook | DataType::OrderBookDelta => {
                self.books.last_ws_ns(venue, raw_symbol)
            }
            _ => self.continuity.last_seen_ns(venue, dt, raw_symbol),
        }
    }

    /// A stream stopped on a live connection and is subscribed again: what it
    /// missed is measured at its next record (see [`Continuity::stream_lost`]).
    /// Books need nothing: their sync rules see the jump or the new snapshot.
    pub fn stream_lost(&mut self, venue: VenueId, dt: DataType, raw_symbol: &str) {
        self.continuity.stream_lost(venue, dt, raw_symbol);
    }

    pub fn has_stream_gaps(&self) -> bool {
        !self.stream_gaps.is_empty()
    }

    /// Reconnect gaps found since the last call.
    pub fn take_stream_gaps(&mut self) -> Vec<StreamGap> {
        std::mem::take(&mut self.stream_gaps)
    }

    /// Emits a `gap` record: `g`'s range (or `missing` of it) was not recovered.
    pub fn push_gap(&mut self, g: &StreamGap, reason: &'static str, now_ns: u64) {
        if self.push_gap_record(g, reason, now_ns) {
            self.stats.venue(g.venue).parsed[DataType::Gap.index()].inc();
        }
    }

    /// The record of [`Pipeline::push_gap`], not counted as parsed (frame
    /// handlers count every record they add).
    fn push_gap_record(&mut self, g: &StreamGap, reason: &'static str, now_ns: u64) -> bool {
        let start = self.batch.len();
        let _ = self.batch.push_with::<()>(now_ns, |bump| {
            Ok(crate::batch::Record::Gap(crate::batch::Gap {
                origin: crate::batch::Origin {
                    venue: g.venue,
                    symbol: bump.alloc_str(&g.symbol),
                    raw_symbol: bump.alloc_str(&g.raw_symbol),
                    ts_ms: now_ns / 1_000_000,
                    receive_ts_ns: now_ns,
                },
                stream: g.data_type,
                reason,
                from_id: g.range.map(|r| r.0),
                to_id: g.range.map(|r| r.1),
                from_ts_ms: g.from_ts_ms,
                to_ts_ms: g.to_ts_ms,
                missing: g.range.map(|(a, b)| b + 1 - a),
            }))
        });
        let pushed = self.batch.len() > start;
        if pushed {
            self.stats.venue(g.venue).gap_records.inc();
            if let Some(n) = self.gap_log.check(now_ns) {
                log::warn!(
                    "gap: {} {} {} {reason}: {}, {}..{} ms not recovered ({n} more suppressed)",
                    g.venue,
                    g.data_type,
                    g.raw_symbol,
                    g.ids(),
                    g.from_ts_ms,
                    g.to_ts_ms
                );
            }
        }
        pushed
    }

    /// A REST trade-history body for the gap `from..=to` of `raw_symbol`:
    /// pushes the trades of that range, oldest first, marked backfilled.
    /// Returns the range of sequence numbers recovered (`None`: none).
    pub fn on_trade_history(
        &mut self,
        venue: VenueId,
        raw_symbol: &str,
        (from, to): (u64, u64),
        body: &[u8],
        receive_ns: u64,
    ) -> Result<Option<(u64, u64)>, Malformed> {
        let proto = venue::protocol(venue);
        let Some(inst) = self.instruments[venue.index()].get(raw_symbol) else {
            return Err(Malformed::UnknownSymbol);
        };
        let start = self.batch.len();
        let got = proto.parse_trade_history(inst, body, (from, to), receive_ns, &mut self.batch);
        if let Err(r) = got {
            let text = std::str::from_utf8(body).unwrap_or("");
            self.count_malformed(venue, r, text, receive_ns);
        }
        let n = (self.batch.len() - start) as u64;
        if n > 0 {
            self.stats.venue(venue).trades_backfilled.add(n);
            self.count_parsed(start, receive_ns);
        }
        got
    }

    /// Counts the records added since `start` per venue × type.
    fn count_parsed(&mut self, start: usize, receive_ns: u64) {
        for rec in self.batch.iter_from(start) {
            let (vs, dt) = (self.stats.venue(rec.venue()), rec.data_type().index());
            vs.parsed[dt].inc();
            vs.last_record_ns[dt].set(rec.receive_ts_ns() as i64);
        }
        if self.live {
            self.parsed_ns = crate::sys::now_ns();
            self.stats
                .receive_to_parsed
                .observe(self.parsed_ns.saturating_sub(receive_ns));
        }
    }

    /// The clock read that ended the last frame's parse (0: none yet, or
    /// replay). The read loop reuses it as the receive time of a frame
    /// already in memory then, instead of reading the clock again.
    pub fn parsed_ns(&self) -> u64 {
        self.parsed_ns
    }

    /// The symbol of the last book message (the one a returned action is about).
    pub fn last_book_symbol(&self) -> &str {
        &self.book_msg.raw_symbol
    }

    /// A REST body polled for `dt` of `raw_symbol` → records. `last_ts_ms` is
    /// the newest datapoint already published for this poll: an answer that
    /// repeats it adds nothing (polls run more often than the data changes).
    pub fn on_poll(
        &mut self,
        venue: VenueId,
        dt: DataType,
        raw_symbol: &str,
        body: &[u8],
        receive_ns: u64,
        last_ts_ms: &mut u64,
    ) -> FrameOutcome {
        let start = self.batch.len();
        let Some(inst) = self.instruments[venue.index()].get(raw_symbol) else {
            self.count_malformed(venue, Malformed::UnknownSymbol, raw_symbol, receive_ns);
            return FrameOutcome::Malformed(Malformed::UnknownSymbol);
        };
        let out = venue::protocol(venue).parse_poll(dt, inst, body, receive_ns, &mut self.batch);
        if self.batch.len() > start {
            // A valid answer, changed or not, shows the stream alive.
            self.stats.venue(venue).last_record_ns[dt.index()].set(receive_ns as i64);
            let newest = self
                .batch
                .iter_from(start)
                .map(|r| r.origin().ts_ms)
                .max()
                .unwrap_or(0);
            if newest <= *last_ts_ms {
                self.batch.truncate(start);
                self.stats.venue(venue).poll_unchanged.inc();
            } else {
                *last_ts_ms = newest;
            }
        }
        match out {
            FrameOutcome::Malformed(r) => {
                let text = std::str::from_utf8(body).unwrap_or("");
                self.count_malformed(venue, r, text, receive_ns)
            }
            FrameOutcome::ControlError => {
                self.stats.venue(venue).control_errors.inc();
                if let Some(n) = self.control_log.check(receive_ns) {
                    let what = venue::error_body::poll_error(venue, dt, raw_symbol, body);
                    log::warn!("{what} ({n} more suppressed)");
                }
            }
            _ => {}
        }
        if self.batch.len() > start {
            self.count_parsed(start, receive_ns);
        }
        out
    }

    /// A REST book snapshot body for `raw_symbol` → the books.
    pub fn on_book_snapshot(
        &mut self,
        venue: VenueId,
        raw_symbol: &str,
        body: &[u8],
        receive_ns: u64,
    ) -> BookAction {
        self.book_msg.clear();
        let parsed = venue::protocol(venue).parse_book_snapshot(
            raw_symbol,
            body,
            receive_ns,
            &mut self.book_msg,
        );
        if let Err(r) = parsed {
            let text = std::str::from_utf8(body).unwrap_or("");
            self.count_malformed(venue, r, text, receive_ns);
            self.books.on_snapshot_failed(venue, raw_symbol);
            return BookAction::FetchSnapshot;
        }
        let start = self.batch.len();
        let action =
            self.books
                .on_rest_snapshot(venue, &self.book_msg, receive_ns, &mut self.batch);
        if self.batch.len() > start {
            self.count_parsed(start, receive_ns);
        }
        action
    }

    /// Publishes throttled books that are due; returns the next deadline (ns).
    pub fn publish_books(&mut self, now_ns: u64) -> Option<u64> {
        let start = self.batch.len();
        let next = self.books.publish_due(now_ns, &mut self.batch);
        if self.batch.len() > start {
            for rec in self.batch.iter_from(start) {
                let (vs, dt) = (self.stats.venue(rec.venue()), rec.data_type().index());
                vs.parsed[dt].inc();
                vs.last_record_ns[dt].set(rec.receive_ts_ns() as i64);
            }
        }
        next
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

    fn count_malformed(&mut self, venue: VenueId, r: Malformed, text: &str, now_ns: u64) {
        self.stats.venue(venue).malformed[r.index()].inc();
        if let Some(n) = self.malformed_log.check(now_ns) {
            log::warn!(
                "{venue}: skipped malformed frame ({}): {} ({n} more suppressed in the last second)",
                r.label(),
                snippet(text)
            );
        }
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.batch.len() >= self.max_events
    }

    #[inline]
    pub fn batch_len(&self) -> usize {
        self.batch.len()
    }

    #[inline]
    pub fn oldest_receive_ns(&self) -> Option<u64> {
        self.batch.oldest_receive_ns()
    }

    /// Whether the file sink holds lines not yet written (failed write,
    /// full disk, a gap record to write).
    pub fn has_pending(&self) -> bool {
        self.sink.as_ref().is_some_and(FileSink::has_pending)
    }

    /// Writes the batch (and anything pending) to the sinks and resets the arena.
    pub fn flush(&mut self, now_ns: u64) {
        if self.batch.is_empty() && !self.has_pending() {
            return;
        }
        let started = Instant::now();
        let n = self.batch.len() as u64;
        let encoded = self.net.is_some();
        if let Some(r) = self.sink.as_mut().and_then(FileSink::catch_up) {
            self.file_result(r, now_ns);
        }
        self.send_batch();
        if self.sink.is_some() {
            self.write_file(now_ns, encoded);
        } else if self.live {
            let written_ns = crate::sys::now_ns();
            for rec in self.batch.iter() {
                self.stats
                    .receive_to_written
                    .observe(written_ns.saturating_sub(rec.receive_ts_ns()));
            }
        }
        if n > 0 {
            self.stats.batch_size.observe(n);
            self.stats.batches_flushed.inc();
        }
        if let Some(w) = self.raw.as_mut() {
            if let Err(e) = w.flush() {
                self.stats.raw_capture_errors.inc();
                if let Some(n) = self.raw_log.check(now_ns) {
                    log::error!("raw capture flush failed: {e} ({n} similar errors suppressed)");
                }
            }
        }
        self.stats
            .flush_duration
            .observe(started.elapsed().as_nanos() as u64);
        self.stats.arena_bytes.set(self.batch.arena_bytes() as i64);
        self.batch.reset();
        self.stats
            .arena_high_water_bytes
            .set(self.batch.high_water_bytes() as i64);
        self.stats.arena_resets.set(self.batch.resets());
    }

    /// The file sink part of a flush.
    /// `encoded`: the batch's lines were already queued by `send_batch`.
    fn write_file(&mut self, now_ns: u64, encoded: bool) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        let result = if encoded {
            sink.write_queued()
        } else {
            sink.write_batch(&self.batch)
        };
        self.observe_written(&result, true);
        self.file_result(result, now_ns);
    }

    /// Ring-mode file sink (`sink.write_mode` offload or direct): collects
    /// a finished write (and starts the next) between flushes, so
    /// "written" is known soon after it is.
    pub fn reap_sink(&mut self, now_ns: u64) {
        self.poll_sink(now_ns, true);
    }

    /// Ring-mode file sink: counts a write whose completion is already
    /// posted, without a syscall (the read loop calls it between frames,
    /// so "written" follows the write by microseconds under load).
    pub fn collect_landed(&mut self, now_ns: u64) {
        self.poll_sink(now_ns, false);
    }

    /// `enter`: also retry what is pending and let the kernel post the
    /// completion; else only look, and only while a write is in flight.
    fn poll_sink(&mut self, now_ns: u64, enter: bool) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        let result = if enter && sink.is_ring() {
            sink.write_queued()
        } else if !enter && sink.in_flight() {
            let r = sink.collect_landed();
            if matches!(&r, Ok(r) if *r == WriteReport::default()) {
                return; // still in flight
            }
            r
        } else {
            return;
        };
        self.observe_written(&result, false);
        self.file_result(result, now_ns);
    }

    /// A ring-mode file write is in flight.
    pub fn sink_in_flight(&self) -> bool {
        self.sink.as_ref().is_some_and(|s| s.in_flight())
    }

    /// receive → written of what a file sink call wrote: inline,
    /// the batch passed in (`with_batch`), in ring mode whatever landed.
    fn observe_written(&self, result: &Result<WriteReport, WriteError>, with_batch: bool) {
        let (Some(sink), true) = (self.sink.as_ref(), self.live) else {
            return;
        };
        let bytes = match result {
            Ok(r) => r.bytes,
            Err(e) => e.written.bytes,
        };
        if bytes == 0 {
            return;
        }
        let written_ns = crate::sys::now_ns();
        if sink.is_ring() {
            for &r in sink.written_receive_ns() {
                self.stats
                    .receive_to_written
                    .observe(written_ns.saturating_sub(r));
            }
        } else if with_batch {
            for rec in self.batch.iter() {
                self.stats
                    .receive_to_written
                    .observe(written_ns.saturating_sub(rec.receive_ts_ns()));
            }
        }
    }

    /// Counts what a file sink write did; logs failures and drops (rate-limited).
    fn file_result(&mut self, result: Result<WriteReport, WriteError>, now_ns: u64) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        let dropped = sink.take_dropped();
        self.stats.sink_disk_full.set(sink.disk_full() as i64);
        self.stats.sink_device_waits.set(sink.device_waits());
        self.stats
            .sink_pending_records
            .set(sink.pending_records() as i64);
        self.stats.sink_records_dropped.add(dropped);
        let (rep, error) = match result {
            Ok(rep) => (rep, None),
            Err(e) => (*e.written, Some(e)),
        };
        for v in VenueId::ALL {
            for dt in DataType::ALL {
                let k = rep.written[v.index()][dt.index()];
                if k > 0 {
                    self.stats.venue(v).written[dt.index()].add(k);
                }
            }
        }
        self.stats.sink_bytes.add(rep.bytes);
        self.stats.gaps_emitted.add(rep.gaps);
        if rep.rotated {
            self.stats.sink_files_opened.inc();
        }
        if rep.resumed {
            log::warn!(
                "core {}: file sink writing again ({} records caught up)",
                self.stats.shard,
                rep.records
            );
        }
        if let Some(e) = error {
            self.stats.sink_errors.inc();
            if let Some(k) = self.sink_log.check(now_ns) {
                log::error!(
                    "core {}: file sink write failed: {} ({} records kept in memory{}; {k} similar errors suppressed)",
                    self.stats.shard,
                    e.error,
                    e.pending_records,
                    if e.disk_full { "; disk full: writes paused and retried periodically" } else { "" }
                );
            }
        }
        if dropped > 0 {
            if let Some(k) = self.sink_log.check(now_ns) {
                log::error!(
                    "core {}: file sink memory limit reached while writes fail: dropped {dropped} records ({k} lines suppressed); gap records follow when writing resumes",
                    self.stats.shard
                );
            }
        }
    }

    /// Final flush and file close (clean shutdown). Fails while the file
    /// sink cannot write (`has_pending` stays true); calling it again retries.
    pub fn close(&mut self) -> Result<(), String> {
        let now = crate::sys::now_ns();
        self.flush(now);
        if let Some(mut w) = self.raw.take() {
            w.close()
                .map_err(|e| format!("closing the raw capture: {e}"))?;
        }
        let Some(sink) = self.sink.as_mut() else {
            return Ok(());
        };
        let result = sink.close();
        self.observe_written(&result, false);
        let err = result.as_ref().err().map(|e| {
            format!(
                "closing the file sink: {} ({} records not written)",
                e.error, e.pending_records
            )
        });
        self.file_result(result, now);
        err.map_or(Ok(()), Err)
    }
}

/// Adds a dropped record to its stream's gap (drop path only: may allocate).
fn note_gap(gaps: &mut Vec<Gap>, rec: &crate::batch::Record<'_>) {
    let o = rec.origin();
    let ms = o.receive_ts_ns / 1_000_000;
    let id = match rec {
        crate::batch::Record::Trade(t) => Some(match t.trade_id {
            crate::batch::TradeId::Num(n) => n.to_string(),
            crate::batch::TradeId::Str(s) => s.to_string(),
        }),
        crate::batch::Record::Book(b) => Some(b.last_update_id.to_string()),
        _ => None,
    };
    match gaps
        .iter_mut()
        .find(|g| g.venue == o.venue && g.data_type == rec.data_type() && g.symbol == o.symbol)
    {
        Some(g) => {
            g.count += 1;
            g.to_ts_ms = ms;
            if id.is_some() {
                g.to_id = id;
            }
        }
        None => gaps.push(Gap {
            venue: o.venue,
            data_type: rec.data_type(),
            symbol: o.symbol.to_string(),
            count: 1,
            from_ts_ms: ms,
            to_ts_ms: ms,
            from_id: id.clone(),
            to_id: id,
        }),
    }
}

/// Slot of `VenueStats::frames_received` for a connection's data type.
#[inline]
pub fn received_slot(conn_type: Option<DataType>) -> usize {
    conn_type.map(DataType::index).unwrap_or(DataType::COUNT)
}

/// First bytes of a frame for a log line (on a char boundary).
fn snippet(text: &str) -> &str {
    let mut end = text.len().min(160);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

// Frames come from the mock's Binance encoder.
#[cfg(all(test, feature = "mock"))]
mod tests {
    use super::*;
    use crate::mock::binance::trade_frames;
    use std::cell::{Cell, RefCell};
    use std::time::Duration;

    /// A message sink with room for `room` messages; records what it took.
    struct Fake {
        room: Cell<usize>,
        got: RefCell<Vec<(String, String)>>,
    }

    impl MessageSink for Fake {
        fn try_send(&self, subject: &str, msg_id: &str, payload: &[u8]) -> bool {
            if self.room.get() == 0 {
                return false;
            }
            assert!(
                payload.starts_with(b"{\"data_type\":\"trade\"")
                    || payload.starts_with(b"{\"data_type\":\"gap\"")
            );
            self.room.set(self.room.get() - 1);
            self.got
                .borrow_mut()
                .push((subject.to_string(), msg_id.to_string()));
            true
        }
    }

    #[test]
    fn full_message_sink_spills_and_pumps_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let plan = FileSinkPlan {
            path: dir.path().join("files"),
            rotate_max_bytes: 1 << 30,
            rotate_interval: Duration::from_secs(3600),
            write_mode: crate::config::WriteMode::Inline,
            io_worker_cpus: Vec::new(),
            io_worker_cpus_configured: None,
        };
        let mut map = InstrumentMap::default();
        map.insert("BTCUSDT", "BTC", "USDT", true);
        let fake = Rc::new(Fake {
            room: Cell::new(30),
            got: RefCell::new(Vec::new()),
        });
        let spill = Spill::open(&dir.path().join("spill"), 1 << 20, 1 << 16).unwrap();
        let stats = Arc::new(CoreStats::new(0, 0));
        let mut p = Pipeline::new(0, 16, &plan, vec![map], stats.clone())
            .unwrap()
            .without_file_sink()
            .with_message_sink(NetOut::new(fake.clone(), spill));
        for f in trade_frames(&[("BTCUSDT", "BTC", "USDT")], 100, 0) {
            p.on_text(
                VenueId::BinanceSpot,
                Some(DataType::Trade),
                &f,
                1,
                &mut ConnState::default(),
            );
            if p.is_full() {
                p.flush(1);
            }
        }
        p.flush(1);
        assert_eq!(fake.got.borrow().len(), 30);
        assert_eq!(p.spilled(), 70);
        assert_eq!(stats.spill_records.get(), 70);
        // Counted per subject when handed to the sink, not when spilled.
        let handed = || stats.subjects.iter().collect::<Vec<_>>();
        assert_eq!(handed(), [("trade.binance.spot.BTC-USDT", 30)]);
        assert_eq!(
            stats.venue(VenueId::BinanceSpot).last_record_ns[DataType::Trade.index()].get(),
            1,
            "receive time of the last record"
        );
        // Room comes back a little at a time; order is kept throughout.
        fake.room.set(20);
        assert_eq!(p.pump_spill(), 20);
        fake.room.set(1000);
        assert_eq!(p.pump_spill(), 50);
        assert_eq!(p.spilled(), 0);
        assert_eq!(handed(), [("trade.binance.spot.BTC-USDT", 100)]);
        let ids: Vec<String> = fake.got.borrow().iter().map(|(_, id)| id.clone()).collect();
        let want: Vec<String> = (1..=100)
            .map(|i| format!("trade:binance:spot:BTC-USDT:{i}"))
            .collect();
        assert_eq!(ids, want);
        assert!(fake
            .got
            .borrow()
            .iter()
            .all(|(s, _)| s == "trade.binance.spot.BTC-USDT"));
        assert_eq!(stats.venue(VenueId::BinanceSpot).written[0].get(), 100);
        assert_eq!(stats.sink_records_dropped.get(), 0);
        assert!(!dir.path().join("files").read_dir().unwrap().any(|_| true));
    }

    #[test]
    fn exhausted_spill_drops_counted() {
        let dir = tempfile::tempdir().unwrap();
        let plan = FileSinkPlan {
            path: dir.path().join("files"),
            rotate_max_bytes: 1 << 30,
            rotate_interval: Duration::from_secs(3600),
            write_mode: crate::config::WriteMode::Inline,
            io_worker_cpus: Vec::new(),
            io_worker_cpus_configured: None,
        };
        let mut map = InstrumentMap::default();
        map.insert("BTCUSDT", "BTC", "USDT", true);
        let fake = Rc::new(Fake {
            room: Cell::new(0),
            got: RefCell::new(Vec::new()),
        });
        let fake_out = fake.clone();
        // Room for about 3 entries of ~400 bytes.
        let spill = Spill::open(&dir.path().join("spill"), 1200, 1 << 16).unwrap();
        let stats = Arc::new(CoreStats::new(0, 0));
        let mut p = Pipeline::new(0, 16, &plan, vec![map], stats.clone())
            .unwrap()
            .with_message_sink(NetOut::new(fake_out, spill));
        for f in trade_frames(&[("BTCUSDT", "BTC", "USDT")], 10, 0) {
            p.on_text(
                VenueId::BinanceSpot,
                Some(DataType::Trade),
                &f,
                1,
                &mut ConnState::default(),
            );
        }
        p.flush(1);
        let kept = p.spilled();
        assert!((2..10).contains(&kept), "{kept}");
        assert_eq!(stats.sink_records_dropped.get(), 10 - kept);
        // The loss is described by one gap record, waiting for room.
        let gaps = p.pending_gaps().to_vec();
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].count, 10 - kept);
        assert_eq!(gaps[0].symbol, "BTC-USDT");
        assert_eq!(
            gaps[0].from_id.as_deref(),
            Some((kept + 1).to_string().as_str())
        );
        assert_eq!(gaps[0].to_id.as_deref(), Some("10"));
        // Room again: spilled records first, then the gap record, in order.
        fake.room.set(100);
        p.pump_spill();
        assert!(p.pending_gaps().is_empty());
        let got = fake.got.borrow();
        assert_eq!(got.len() as u64, kept + 1);
        assert_eq!(got.last().unwrap().0, "gap.binance.spot.BTC-USDT");
        assert_eq!(stats.gaps_emitted.get(), 1);
        // The file sink still wrote everything.
        assert_eq!(stats.venue(VenueId::BinanceSpot).written[0].get(), 10);
    }

    #[test]
    fn full_disk_pauses_the_file_sink_counts_and_resumes() {
        use crate::sink::file::fault::ROOM;
        let dir = tempfile::tempdir().unwrap();
        let plan = FileSinkPlan {
            path: dir.path().join("files"),
            rotate_max_bytes: 1 << 30,
            rotate_interval: Duration::from_secs(3600),
            write_mode: crate::config::WriteMode::Inline,
            io_worker_cpus: Vec::new(),
            io_worker_cpus_configured: None,
        };
        let mut map = InstrumentMap::default();
        map.insert("BTCUSDT", "BTC", "USDT", true);
        let stats = Arc::new(CoreStats::new(0, 0));
        let mut p = Pipeline::new(0, 10, &plan, vec![map], stats.clone())
            .unwrap()
            .with_file_limits(3000, Duration::from_millis(20));
        let feed = |p: &mut Pipeline, frames: &[String]| {
            for f in frames {
                p.on_text(
                    VenueId::BinanceSpot,
                    Some(DataType::Trade),
                    f,
                    1,
                    &mut ConnState::default(),
                );
                if p.is_full() {
                    p.flush(1);
                }
            }
            p.flush(1);
        };
        let frames = trade_frames(&[("BTCUSDT", "BTC", "USDT")], 100, 0);
        ROOM.with(|r| r.set(Some((0, libc::ENOSPC))));
        feed(&mut p, &frames[..60]);
        assert_eq!(stats.sink_disk_full.get(), 1);
        assert!(stats.sink_errors.get() >= 1);
        let written = || stats.venue(VenueId::BinanceSpot).written[0].get();
        assert_eq!(written(), 0);
        let dropped = stats.sink_records_dropped.get();
        assert!(dropped > 0);
        assert_eq!(
            stats.sink_pending_records.get() as u64 + dropped,
            60,
            "every record is either held or counted as dropped"
        );
        assert!(p.has_pending());
        ROOM.with(|r| r.set(None));
        std::thread::sleep(Duration::from_millis(25));
        feed(&mut p, &frames[60..]);
        p.close().unwrap();
        assert_eq!(stats.sink_disk_full.get(), 0);
        assert_eq!(written() + dropped, 100);
        assert_eq!(stats.gaps_emitted.get(), 1);
        assert_eq!(stats.sink_pending_records.get(), 0);
    }
}
