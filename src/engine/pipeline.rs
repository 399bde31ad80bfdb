//! One core's synchronous data path: frame → venue parser → batch → sink,
//! with the per-core metrics. No executor, no I/O readiness: the shard feeds
//! it frames and decides when to flush. Keeping it synchronous makes it
//! testable (and allocation-countable) without sockets.

mod frame;
mod rest;
mod streams;
mod untimed;

pub use frame::{received_slot, BookRequest, ConnState, Frame, FrameAnswer, FrameSource};

use super::continuity::{Continuity, StreamGap};
use crate::batch::Batch;
use crate::book::{BookMsg, Books};
use crate::capture::RawWriter;
use crate::config::plan::FileSinkPlan;
use crate::logging::RateLimit;
use crate::metrics::CoreStats;
use crate::model::{DataType, VenueId};
use crate::sink::clickhouse::ClickHouseSink;
use crate::sink::{FileSink, Gap, Overflow, Sink, WriteError, WriteReport};
use crate::venue::{self, InstrumentMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arena bytes reserved per batch slot up front (a trade record plus strings
/// is about 150 bytes), so steady state never grows the arena.
const ARENA_BYTES_PER_EVENT: usize = 192;
/// Frames between looks for a landed file write (a memory read when none).
const LOOK_FOR_WRITES_EVERY: u32 = 16;

pub struct Pipeline {
    batch: Batch,
    /// `None` when only a message sink is configured.
    sink: Option<FileSink>,
    net: Option<Overflow>,
    clickhouse: Option<ClickHouseSink>,
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
    /// Frames parsed since the last clock read (live): timed together.
    untimed: untimed::Untimed,
    /// This core's order books.
    books: Books,
    /// Reused book message the parsers fill.
    book_msg: BookMsg,
    /// One copy per event across connections; reconnect gaps.
    continuity: Continuity,
    /// Gaps found and not yet taken by the shard (backfill or `gap` record).
    stream_gaps: Vec<StreamGap>,
    /// Frames since the last look for a landed file write.
    frames_since_look: u32,
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
            clickhouse: None,
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
            untimed: untimed::Untimed::default(),
            books: Books::new(venue::book_rule, &[]),
            book_msg: BookMsg::default(),
            continuity: Continuity::default(),
            stream_gaps: Vec::new(),
            frames_since_look: 0,
        })
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

    /// Adds an asynchronous sink (NATS) behind its overflow policy.
    pub fn with_message_sink(mut self, net: Overflow) -> Pipeline {
        net.report(&self.stats);
        self.net = Some(net);
        self
    }

    /// Adds the ClickHouse sink (its sender task already runs on this core).
    pub fn with_clickhouse(mut self, ch: ClickHouseSink) -> Pipeline {
        let _ = self.stats.clickhouse.set(ch.stats_arc());
        self.clickhouse = Some(ch);
        self
    }

    /// Seals the ClickHouse blocks that are due (between flushes).
    pub fn poll_clickhouse(&mut self) {
        if let Some(ch) = self.clickhouse.as_mut() {
            Sink::poll(ch, &self.stats);
        }
    }

    /// ClickHouse blocks not yet acknowledged (journal or being built).
    pub fn clickhouse_pending(&self) -> u64 {
        self.clickhouse.as_ref().map_or(0, |c| c.pending_blocks())
    }

    /// Shutdown, after the drain: the ClickHouse sender's task, to stop.
    pub fn take_clickhouse_sender(&mut self) -> Option<glommio::task::JoinHandle<()>> {
        self.clickhouse.as_mut().and_then(|c| c.take_sender())
    }

    /// Records waiting in the spill.
    pub fn spilled(&self) -> u64 {
        self.net.as_ref().map(|n| n.spilled()).unwrap_or(0)
    }

    /// Keeps one message the message sink gave back (shutdown) in the spill.
    pub fn spill_message(&mut self, subject: &str, msg_id: &str, payload: &[u8]) -> bool {
        let Some(net) = self.net.as_mut() else {
            return false;
        };
        net.keep(subject, msg_id, payload, &self.stats)
    }

    /// Moves spilled records to the message sink, oldest first, until it is
    /// full or the spill is empty. Returns how many moved.
    pub fn pump_spill(&mut self) -> u64 {
        let Some(net) = self.net.as_mut() else {
            return 0;
        };
        net.poll(&self.stats)
    }

    /// Hands the batch to the message sink (see [`Overflow::send`]).
    /// With a file sink too, each record is encoded once there and the same
    /// bytes are queued for the file (see [`Pipeline::write_file`]).
    fn send_batch(&mut self) {
        let Some(net) = self.net.as_mut() else { return };
        let mut file = self.sink.as_mut();
        // Without a file sink, "written" means handed to the message sink
        // (queued or spilled); its acks are counted by the sink itself.
        let count_written = file.is_none();
        net.send(&self.batch, &self.stats, count_written, |rec, json| {
            if let Some(f) = file.as_mut() {
                f.push_encoded(rec, json);
            }
        });
    }

    /// Gaps not yet handed on (for tests and shutdown).
    pub fn pending_gaps(&self) -> &[Gap] {
        self.net.as_ref().map(|n| n.pending_gaps()).unwrap_or(&[])
    }

    /// Enables raw capture of `venues` into `writer`.
    pub fn with_raw_capture(mut self, writer: RawWriter, venues: &[VenueId]) -> Pipeline {
        for v in venues {
            self.raw_venues[v.index()] = true;
        }
        self.raw = Some(writer);
        self
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
        self.parsed_through();
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
            let stamps = self.batch.iter().map(|r| r.receive_ts_ns());
            self.stats
                .receive_to_written
                .observe_ages(written_ns, stamps);
        }
        // After the file: a crash in between leaves ClickHouse a subset of the files.
        if let Some(ch) = self.clickhouse.as_mut() {
            Sink::write(ch, &self.batch, &self.stats);
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
            Sink::write(sink, &self.batch, &self.stats)
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
            Sink::poll(sink, &self.stats)
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
            let stamps = sink.written_receive_ns().iter().copied();
            self.stats
                .receive_to_written
                .observe_ages(written_ns, stamps);
        } else if with_batch {
            let stamps = self.batch.iter().map(|r| r.receive_ts_ns());
            self.stats
                .receive_to_written
                .observe_ages(written_ns, stamps);
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
        if let Some(ch) = self.clickhouse.as_mut() {
            Sink::close(ch, &self.stats);
        }
        if let Some(mut w) = self.raw.take() {
            w.close()
                .map_err(|e| format!("closing the raw capture: {e}"))?;
        }
        let Some(sink) = self.sink.as_mut() else {
            return Ok(());
        };
        let result = Sink::close(sink, &self.stats);
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

// Frames come from the mock's Binance encoder.
#[cfg(all(test, feature = "mock"))]
mod tests {
    use super::*;
    use crate::mock::binance::trade_frames;
    use crate::sink::spill::Spill;
    use crate::sink::MessageSink;
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
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
            .with_message_sink(Overflow::new(fake.clone(), spill));
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
            .with_message_sink(Overflow::new(fake_out, spill));
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
