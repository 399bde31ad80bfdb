//! The overflow policy of a sink that delivers asynchronously (NATS today,
//! ClickHouse next): memory → spill → drop with a `gap` record.
//!
//! 1. Memory: each record goes straight to the transport's own bounded
//!    queue ([`MessageSink::try_send`]) while nothing is spilled and it has
//!    room.
//! 2. Spill: otherwise it goes behind the spilled records in the core's
//!    on-disk FIFO ([`Spill`]); [`Overflow::pump`] moves them on, oldest
//!    first, as room comes back. Order is kept throughout.
//! 3. Drop: when the spill's disk budget is gone too, the record is dropped,
//!    counted and logged, and its stream's loss is summed into a [`Gap`]
//!    whose `gap` record is handed on (behind everything spilled) as soon as
//!    there is room again.
//!
//! Each record is encoded once (subject, message id, JSON payload) into
//! scratch buffers reused for every record: no allocation per record on
//! the memory and spill paths.

use super::encode::{encode_json, push_msg_id, push_subject};
use super::spill::{Spill, SpillError};
use super::{MessageSink, Sink};
use crate::batch::{Batch, Record, TradeId};
use crate::logging::RateLimit;
use crate::metrics::subjects::SubjectIndex;
use crate::metrics::CoreStats;
use crate::model::{DataType, VenueId};
use std::rc::Rc;

/// A core's asynchronous sink with its spill: the policy above around a
/// [`MessageSink`], and scratch buffers reused for every record.
pub struct Overflow {
    sink: Rc<dyn MessageSink>,
    spill: Spill,
    /// Records dropped (sink and spill both full), per stream, until a `gap`
    /// record about them has been handed on.
    gaps: Vec<Gap>,
    subject: Vec<u8>,
    id: Vec<u8>,
    payload: Vec<u8>,
    /// A spilled message's transport form around `payload` ([`MessageSink::spill_form`]).
    meta: Vec<u8>,
    head: Vec<u8>,
    log: RateLimit,
    /// Per-subject hand-off counts (MarketPrism's published-messages series).
    subjects: SubjectIndex,
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

/// Subject or id scratch as `&str` (UTF-8 by construction; "" if not).
/// Nearly always ASCII: checked a word at a time, cheaper than `from_utf8`
/// on these short strings (two per record).
fn ascii(b: &[u8]) -> &str {
    if b.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        unsafe { std::str::from_utf8_unchecked(b) }
    } else {
        std::str::from_utf8(b).unwrap_or("")
    }
}

impl Overflow {
    pub fn new(sink: Rc<dyn MessageSink>, spill: Spill) -> Overflow {
        Overflow {
            sink,
            spill,
            gaps: Vec::new(),
            subject: Vec::with_capacity(128),
            id: Vec::with_capacity(128),
            payload: Vec::with_capacity(1024),
            meta: Vec::with_capacity(16),
            head: Vec::with_capacity(256),
            log: RateLimit::new(1_000_000_000),
            subjects: SubjectIndex::default(),
        }
    }

    /// Records waiting in the spill.
    pub fn spilled(&self) -> u64 {
        self.spill.len()
    }

    /// Gaps not yet handed on (for tests and shutdown).
    pub fn pending_gaps(&self) -> &[Gap] {
        &self.gaps
    }

    /// Publishes the spill's size (records and bytes) to the core's gauges.
    pub fn report(&self, stats: &CoreStats) {
        stats.spill_records.set(self.spill.len() as i64);
        stats.spill_bytes.set(self.spill.bytes() as i64);
    }

    /// Keeps one message the transport gave back (shutdown) in the spill.
    pub fn keep(&mut self, subject: &str, msg_id: &str, payload: &[u8], stats: &CoreStats) -> bool {
        let ok = self
            .spill
            .push(subject.as_bytes(), msg_id.as_bytes(), payload)
            .is_ok();
        self.report(stats);
        ok
    }

    /// Moves spilled records to the message sink, oldest first, until it is
    /// full or the spill is empty; then any pending `gap` records. Returns
    /// how many spilled records moved.
    pub fn pump(&mut self, stats: &CoreStats) -> u64 {
        if self.spill.is_empty() {
            return 0;
        }
        let sink = self.sink.clone();
        let (subjects, counts) = (&mut self.subjects, &stats.subjects);
        sink.hand_off(true);
        let moved = self
            .spill
            .drain(|framed, s, i, p| {
                let sent = if framed {
                    sink.try_send_framed(ascii(s), i, p)
                } else {
                    sink.try_send(ascii(s), ascii(i), p)
                };
                if sent {
                    subjects.count(counts, s);
                }
                sent
            })
            .unwrap_or_else(|e| {
                stats.sink_errors.inc();
                if let Some(n) = self.log.check(crate::sys::now_ns()) {
                    log::error!("reading the spill failed: {e} ({n} similar errors suppressed)");
                }
                0
            });
        sink.hand_off(false);
        if !self.gaps.is_empty() {
            self.emit_gaps(stats);
        }
        self.report(stats);
        moved
    }

    /// Hands the batch on: straight to the message sink while nothing is
    /// spilled and it has room, otherwise behind the spilled records.
    /// `tee` sees each record with its JSON (no newline), so a file sink
    /// queues the same bytes instead of encoding again. `count_written`:
    /// this is the core's only sink, so "written" means handed on (queued
    /// or spilled); the transport counts its acks itself.
    pub fn send<F>(&mut self, batch: &Batch, stats: &CoreStats, count_written: bool, mut tee: F)
    where
        F: FnMut(&Record<'_>, &[u8]),
    {
        self.sink.hand_off(true);
        for rec in batch.iter() {
            let written = &stats.venue(rec.venue()).written[rec.data_type().index()];
            self.subject.clear();
            self.id.clear();
            self.payload.clear();
            push_subject(&mut self.subject, rec);
            push_msg_id(&mut self.id, rec);
            encode_json(&mut self.payload, rec);
            tee(rec, &self.payload);
            if self.spill.is_empty()
                && self
                    .sink
                    .try_send(ascii(&self.subject), ascii(&self.id), &self.payload)
            {
                self.subjects.count(&stats.subjects, &self.subject);
                if count_written {
                    written.inc();
                }
                continue;
            }
            self.meta.clear();
            self.head.clear();
            let stored = match self.sink.spill_form(
                ascii(&self.subject),
                ascii(&self.id),
                &self.payload,
                rec.receive_ts_ns(),
                &mut self.meta,
                &mut self.head,
            ) {
                Some(end) => self.spill.push_framed_buffered(
                    &self.subject,
                    &self.meta,
                    &[&self.head, &self.payload, end],
                ),
                None => self
                    .spill
                    .push_buffered(&self.subject, &self.id, &self.payload),
            };
            match stored {
                Ok(()) => {
                    if count_written {
                        written.inc();
                    }
                    stats.spilled_total.inc();
                }
                Err(e) => {
                    // Disk budget gone too: the one place records are dropped,
                    // always counted, logged, and reported by a `gap` record.
                    stats.sink_records_dropped.inc();
                    note_gap(&mut self.gaps, rec);
                    if let Some(n) = self.log.check(rec.receive_ts_ns()) {
                        log::error!(
                            "message sink full and spill refused ({e}): dropped {} ({n} more dropped since the last line)",
                            ascii(&self.id)
                        );
                    }
                    if matches!(e, SpillError::Io(_)) {
                        stats.sink_errors.inc();
                    }
                }
            }
        }
        self.sink.hand_off(false);
        // Spilled records of this batch reach the file before the core
        // yields (one write for the batch, not one per record). On failure
        // they stay buffered, counted, and are written at the next try.
        if let Err(e) = self.spill.flush() {
            stats.sink_errors.inc();
            if let Some(n) = self.log.check(crate::sys::now_ns()) {
                log::error!("writing the spill failed: {e} ({n} similar errors suppressed)");
            }
        }
        self.emit_gaps(stats);
        self.report(stats);
    }

    /// Hands pending `gap` records on (behind everything already spilled),
    /// as soon as there is room again.
    fn emit_gaps(&mut self, stats: &CoreStats) {
        while let Some(g) = self.gaps.first() {
            self.subject.clear();
            self.id.clear();
            self.payload.clear();
            g.subject(&mut self.subject);
            g.msg_id(&mut self.id);
            g.json(&mut self.payload);
            let sent = (self.spill.is_empty()
                && self
                    .sink
                    .try_send(ascii(&self.subject), ascii(&self.id), &self.payload))
                || self
                    .spill
                    .push(&self.subject, &self.id, &self.payload)
                    .is_ok();
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
            self.gaps.remove(0);
        }
    }
}

/// The message path as a core's [`Sink`]: the only sink of the core
/// (`sink.kind = "nats"` alone). Beside a file sink the pipeline calls
/// [`Overflow::send`] with the file as `tee` instead.
impl Sink for Overflow {
    /// Spilled records moved on.
    type Report = u64;

    fn write(&mut self, batch: &Batch, stats: &CoreStats) -> u64 {
        self.send(batch, stats, true, |_, _| {});
        0
    }

    fn poll(&mut self, stats: &CoreStats) -> u64 {
        self.pump(stats)
    }

    /// One last pump; what stays spilled goes out at the next start.
    fn close(&mut self, stats: &CoreStats) -> u64 {
        self.pump(stats)
    }

    fn has_pending(&self) -> bool {
        !self.spill.is_empty() || !self.gaps.is_empty()
    }
}

/// Adds a dropped record to its stream's gap (drop path only: may allocate).
pub(crate) fn note_gap(gaps: &mut Vec<Gap>, rec: &Record<'_>) {
    let o = rec.origin();
    let ms = o.receive_ts_ns / 1_000_000;
    let id = match rec {
        Record::Trade(t) => Some(match t.trade_id {
            TradeId::Num(n) => n.to_string(),
            TradeId::Str(s) => s.to_string(),
        }),
        Record::Book(b) => Some(b.last_update_id.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Trade;
    use crate::model::Side;
    use rust_decimal::Decimal;
    use std::cell::{Cell, RefCell};

    /// A transport with room for `room` messages; keeps their subject and id.
    #[derive(Default)]
    struct Fake {
        room: Cell<usize>,
        got: RefCell<Vec<(String, String)>>,
    }

    impl MessageSink for Fake {
        fn try_send(&self, subject: &str, msg_id: &str, _: &[u8]) -> bool {
            if self.room.get() == 0 {
                return false;
            }
            self.room.set(self.room.get() - 1);
            self.got
                .borrow_mut()
                .push((subject.to_string(), msg_id.to_string()));
            true
        }
    }

    /// A transport that spills in its own form: `<` + payload + `>`, the
    /// record's receive time as meta; keeps what it is given back.
    #[derive(Default)]
    struct Framing {
        room: Cell<usize>,
        records: RefCell<Vec<String>>,
        frames: RefCell<Vec<(String, u64, String)>>,
    }

    impl MessageSink for Framing {
        fn try_send(&self, _: &str, msg_id: &str, _: &[u8]) -> bool {
            let ok = self.room.get() > 0;
            if ok {
                self.room.set(self.room.get() - 1);
                self.records.borrow_mut().push(msg_id.to_string());
            }
            ok
        }

        fn spill_form(
            &self,
            _: &str,
            _: &str,
            _: &[u8],
            receive_ns: u64,
            meta: &mut Vec<u8>,
            head: &mut Vec<u8>,
        ) -> Option<&'static [u8]> {
            meta.extend_from_slice(&receive_ns.to_le_bytes());
            head.push(b'<');
            Some(b">")
        }

        fn try_send_framed(&self, subject: &str, meta: &[u8], frame: &[u8]) -> bool {
            let ok = self.room.get() > 0;
            if ok {
                self.room.set(self.room.get() - 1);
                let ns = u64::from_le_bytes(meta.try_into().unwrap());
                let f = String::from_utf8(frame.to_vec()).unwrap();
                self.frames.borrow_mut().push((subject.to_string(), ns, f));
            }
            ok
        }
    }

    /// Spilled records are kept in the transport's form and handed back in
    /// it, behind a record kept the old way (shutdown), in order.
    #[test]
    fn spilled_records_come_back_in_the_transports_form() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Rc::new(Framing::default());
        let stats = CoreStats::new(0, 0);
        let mut out = Overflow::new(
            fake.clone(),
            Spill::open(dir.path(), 1 << 20, 1 << 16).unwrap(),
        );
        assert!(out.keep("trade.x", "kept:0", b"{}", &stats));
        Sink::write(&mut out, &trades(1..4), &stats);
        assert_eq!((out.spilled(), stats.spilled_total.get()), (4, 3));
        fake.room.set(2);
        assert_eq!(Sink::poll(&mut out, &stats), 2);
        assert_eq!(*fake.records.borrow(), ["kept:0"]);
        fake.room.set(10);
        assert_eq!(Sink::poll(&mut out, &stats), 2);
        let frames = fake.frames.borrow();
        assert_eq!(frames.len(), 3);
        let mut json = Vec::new();
        for (i, (subject, ns, frame)) in frames.iter().enumerate() {
            let id = i as u64 + 1;
            json.clear();
            encode_json(&mut json, trades(id..id + 1).iter().next().unwrap());
            assert_eq!(subject, "trade.binance.spot.BTC-USDT");
            assert_eq!(*ns, id * 1_000_000);
            assert_eq!(*frame, format!("<{}>", String::from_utf8_lossy(&json)));
        }
        assert_eq!(out.spilled(), 0);
    }

    fn trades(ids: std::ops::Range<u64>) -> Batch {
        let mut b = Batch::new(ids.clone().count(), 1 << 16);
        for id in ids {
            b.push_with::<()>(id, |bump| {
                Ok(Record::Trade(Trade {
                    seq: None,
                    backfilled: false,
                    venue: VenueId::BinanceSpot,
                    symbol: bump.alloc_str("BTC-USDT"),
                    raw_symbol: bump.alloc_str("BTCUSDT"),
                    trade_id: TradeId::Num(id),
                    price: Decimal::ONE,
                    quantity: Decimal::ONE,
                    contracts: None,
                    side: Side::Buy,
                    is_maker: None,
                    trade_ts_ms: id,
                    ts_ms: id,
                    receive_ts_ns: id * 1_000_000,
                }))
            })
            .unwrap();
        }
        b
    }

    /// The policy through the [`Sink`] contract alone: memory, then spill,
    /// then drop with one `gap` record, delivered in order once room is back.
    #[test]
    fn memory_then_spill_then_drop_with_a_gap_record() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Rc::new(Fake::default());
        fake.room.set(2);
        // Room for about 3 spilled entries of ~400 bytes.
        let spill = Spill::open(dir.path(), 1200, 1 << 16).unwrap();
        let stats = CoreStats::new(0, 0);
        let mut out = Overflow::new(fake.clone(), spill);
        Sink::write(&mut out, &trades(1..11), &stats);
        let kept = out.spilled();
        assert!((1..8).contains(&kept), "{kept}");
        let dropped = 8 - kept;
        assert_eq!(stats.sink_records_dropped.get(), dropped);
        assert_eq!(stats.spilled_total.get(), kept);
        assert_eq!(stats.spill_records.get(), kept as i64);
        let written = stats.venue(VenueId::BinanceSpot).written[DataType::Trade.index()].get();
        assert_eq!(written, 2 + kept, "handed on or spilled");
        assert!(Sink::has_pending(&out));
        let gaps = out.pending_gaps();
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].count, dropped);
        assert_eq!(gaps[0].to_id.as_deref(), Some("10"));

        fake.room.set(100);
        assert_eq!(Sink::poll(&mut out, &stats), kept);
        assert!(!Sink::has_pending(&out));
        assert_eq!(stats.gaps_emitted.get(), 1);
        let got = fake.got.borrow();
        let ids: Vec<&str> = got.iter().map(|(_, id)| id.as_str()).collect();
        let want: Vec<String> = (1..=2 + kept)
            .map(|i| format!("trade:binance:spot:BTC-USDT:{i}"))
            .collect();
        assert_eq!(ids[..ids.len() - 1], want);
        assert_eq!(got.last().unwrap().0, "gap.binance.spot.BTC-USDT");
        assert_eq!(stats.spill_records.get(), 0);
    }
}
