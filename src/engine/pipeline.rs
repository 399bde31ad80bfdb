//! One core's synchronous data path: frame → venue parser → batch → sink,
//! with the per-core metrics. No executor, no I/O readiness: the shard feeds
//! it frames and decides when to flush. Keeping it synchronous makes it
//! testable (and allocation-countable) without sockets.

use crate::batch::Batch;
use crate::capture::{FrameKind, RawWriter};
use crate::config::plan::FileSinkPlan;
use crate::logging::RateLimit;
use crate::metrics::CoreStats;
use crate::model::{DataType, VenueId};
use crate::sink::FileSink;
use crate::venue::{self, FrameOutcome, InstrumentMap, Malformed};
use std::sync::Arc;
use std::time::Instant;

/// Arena bytes reserved per batch slot up front (a trade record plus strings
/// is about 150 bytes), so steady state never grows the arena.
const ARENA_BYTES_PER_EVENT: usize = 192;

pub struct Pipeline {
    batch: Batch,
    sink: FileSink,
    stats: Arc<CoreStats>,
    /// Indexed by `VenueId::index()`.
    instruments: Vec<InstrumentMap>,
    max_events: usize,
    /// Records of failed flushes still pending in the sink, per venue × type,
    /// so `messages_written` counts them when they are finally written.
    pending: [[u64; DataType::COUNT]; VenueId::COUNT],
    malformed_log: RateLimit,
    control_log: RateLimit,
    sink_log: RateLimit,
    /// Raw frame capture, and which venues it records.
    raw: Option<RawWriter>,
    raw_venues: [bool; VenueId::COUNT],
    raw_log: RateLimit,
}

impl Pipeline {
    pub fn new(
        shard: usize,
        max_events: usize,
        sink_plan: &FileSinkPlan,
        instruments: Vec<InstrumentMap>,
        stats: Arc<CoreStats>,
    ) -> std::io::Result<Pipeline> {
        Ok(Pipeline {
            batch: Batch::new(max_events, max_events * ARENA_BYTES_PER_EVENT),
            sink: FileSink::open(sink_plan, shard)?,
            stats,
            instruments,
            max_events,
            pending: [[0; DataType::COUNT]; VenueId::COUNT],
            malformed_log: RateLimit::new(1_000_000_000),
            control_log: RateLimit::new(1_000_000_000),
            sink_log: RateLimit::new(1_000_000_000),
            raw: None,
            raw_venues: [false; VenueId::COUNT],
            raw_log: RateLimit::new(1_000_000_000),
        })
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
    /// `venue` carrying `conn_type` (`None`: several data types).
    #[inline]
    pub fn on_text(
        &mut self,
        venue: VenueId,
        conn_type: Option<DataType>,
        text: &str,
        receive_ns: u64,
    ) -> FrameOutcome {
        let vs = self.stats.venue(venue);
        vs.frames_received[received_slot(conn_type)].inc();
        vs.bytes_received.add(text.len() as u64);
        let out = venue::on_text(
            venue,
            text,
            receive_ns,
            &self.instruments[venue.index()],
            &mut self.batch,
        );
        match out {
            FrameOutcome::Records(dt, n) => vs.parsed[dt.index()].add(n as u64),
            FrameOutcome::Control => vs.control.inc(),
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
        out
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

    /// Whether the sink holds records from a failed write.
    pub fn has_pending(&self) -> bool {
        self.pending.iter().flatten().any(|&n| n > 0)
    }

    /// Writes the batch (and anything pending) to the sink and resets the arena.
    pub fn flush(&mut self, now_ns: u64) {
        if self.batch.is_empty() && !self.has_pending() {
            return;
        }
        let started = Instant::now();
        for rec in self.batch.iter() {
            self.pending[rec.venue().index()][rec.data_type().index()] += 1;
        }
        let n = self.batch.len() as u64;
        match self.sink.write_batch(&self.batch) {
            Ok(rep) => {
                let written_ns = crate::sys::now_ns();
                for rec in self.batch.iter() {
                    self.stats
                        .receive_to_written
                        .observe(written_ns.saturating_sub(rec.receive_ts_ns()));
                }
                for v in VenueId::ALL {
                    for dt in DataType::ALL {
                        let k = std::mem::take(&mut self.pending[v.index()][dt.index()]);
                        if k > 0 {
                            self.stats.venue(v).written[dt.index()].add(k);
                        }
                    }
                }
                self.stats.sink_bytes.add(rep.bytes);
                if rep.rotated {
                    self.stats.sink_files_opened.inc();
                }
                self.stats.sink_pending_records.set(0);
            }
            Err(e) => {
                self.stats.sink_errors.inc();
                self.stats
                    .sink_pending_records
                    .set(e.pending_records as i64);
                if e.dropped_records > 0 {
                    self.stats.sink_records_dropped.add(e.dropped_records);
                    self.pending = [[0; DataType::COUNT]; VenueId::COUNT];
                }
                if let Some(k) = self.sink_log.check(now_ns) {
                    log::error!(
                        "file sink write failed: {} ({} records pending, {} dropped; {k} similar errors suppressed)",
                        e.error,
                        e.pending_records,
                        e.dropped_records
                    );
                }
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
        self.batch.reset();
        self.stats
            .arena_high_water_bytes
            .set(self.batch.high_water_bytes() as i64);
    }

    /// Final flush and file close (clean shutdown).
    pub fn close(&mut self) -> Result<(), String> {
        self.flush(crate::sys::now_ns());
        if let Some(w) = self.raw.as_mut() {
            w.close()
                .map_err(|e| format!("closing the raw capture: {e}"))?;
        }
        self.sink.close().map_err(|e| {
            format!(
                "closing the file sink: {} ({} records not written)",
                e.error, e.pending_records
            )
        })
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
