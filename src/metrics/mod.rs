//! Metrics: every core owns a [`CoreStats`] it alone writes (plain load+store on
//! relaxed atomics: no lock, no contended read-modify-write, no atomic two
//! cores write). The scrape handler reads all cores at scrape time through
//! [`Exporter`], a prometheus-client `Collector`.
//!
//! Metric names live in [`Exporter::encode`] and `compat.rs` (the NATS
//! publisher's and MarketPrism's dashboard series); they carry MarketPrism's
//! `marketprism_` prefix (and its names where MarketPrism has one, e.g.
//! `websocket_connected`, `websocket_reconnections_total`), except the
//! standard `process_*` metrics (`process.rs`).

mod compat;
pub mod freshness;
pub mod http;
pub mod listen;
mod local;
pub mod process;
pub mod subjects;

pub use local::*;

use crate::model::{DataType, VenueId};
use crate::venue::Malformed;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::sync::Arc;
use std::time::Instant;

/// Per-venue counters of one core.
#[derive(Debug, Default)]
pub struct VenueStats {
    /// Frames received, by the connection's data type; the last slot counts
    /// connections carrying several data types ("mixed").
    pub frames_received: [LocalCounter; DataType::COUNT + 1],
    pub bytes_received: LocalCounter,
    pub malformed: [LocalCounter; Malformed::COUNT],
    pub control: LocalCounter,
    pub control_errors: LocalCounter,
    pub parsed: [LocalCounter; DataType::COUNT],
    pub written: [LocalCounter; DataType::COUNT],
    pub connections_up: LocalGauge,
    pub connections_planned: LocalGauge,
    /// Streams carried by connections up (a rotation's overlap counts
    /// twice; availability caps it at the planned count) / planned.
    pub streams_up: LocalGauge,
    pub streams_planned: LocalGauge,
    pub reconnects: LocalCounter,
    pub connect_failures: LocalCounter,
    pub pings: LocalCounter,
    /// Client heartbeats sent (OKX `ping`, Bybit `{"op":"ping"}`, Deribit `public/test`).
    pub heartbeats_sent: LocalCounter,
    /// Order books: copied from the core's `Books` counters.
    pub book_updates: LocalGauge,
    pub book_snapshots: LocalGauge,
    pub book_resyncs: LocalGauge,
    pub book_gaps: LocalGauge,
    pub book_checksum_failures: LocalGauge,
    pub book_crossed: LocalGauge,
    pub book_published: LocalGauge,
    /// One symbol's book channel unsubscribed and subscribed again (resync).
    pub book_resubscribes: LocalCounter,
    /// REST: requests by outcome, and throttling.
    pub rest_requests: LocalCounter,
    pub rest_errors: LocalCounter,
    pub rest_rate_limited: LocalCounter,
    /// Weight units this core spent in the current window.
    pub rest_weight_used: LocalGauge,
    /// Polled answers that repeated an already published datapoint.
    pub poll_unchanged: LocalCounter,
    /// Records a second connection delivered again (rotation overlap,
    /// resent state after a reconnect), dropped.
    pub duplicates_dropped: LocalCounter,
    /// Planned make-before-break rotations (lifetime or venue notice) and
    /// venue shutdown notices received.
    pub rotations: LocalCounter,
    pub shutdown_notices: LocalCounter,
    /// Reconnect gaps in trade sequences, trades recovered over REST, and
    /// `gap` records emitted (loss not recovered).
    pub trade_gaps: LocalCounter,
    pub trades_backfilled: LocalCounter,
    pub gap_records: LocalCounter,
    /// Seconds connections of this venue have been up, and planned (their
    /// ratio is the availability).
    pub connected_seconds: LocalCounter,
    pub planned_seconds: LocalCounter,
    /// Connect attempts held back by the venue's connection-rate limit.
    pub connect_throttled: LocalCounter,
    /// Connections dropped for silence (no frames, pings or pongs).
    pub stale_connections: LocalCounter,
    /// Streams found silent on a live connection and subscribed again.
    pub stale_streams: [LocalCounter; DataType::COUNT],
    /// Receive time (Unix ns) of the last record per data type (polled
    /// types: of the last valid answer, changed or not); 0: none yet.
    pub last_record_ns: [LocalGauge; DataType::COUNT],
    /// Silence (ms) after which `/health` reports this core's stream of the
    /// data type; 0: the core does not carry it. Set once at start.
    pub silent_after_ms: [LocalGauge; DataType::COUNT],
}

/// Everything one core measures. Aligned so two cores' stats never share a line.
#[derive(Debug)]
#[repr(align(128))]
pub struct CoreStats {
    pub shard: usize,
    pub cpu: usize,
    pub venues: [VenueStats; VenueId::COUNT],
    pub batch_size: LocalHistogram,
    pub flush_duration: LocalHistogram,
    pub receive_to_written: LocalHistogram,
    /// Frame receive → record in the batch (parse, decimals, arena).
    pub receive_to_parsed: LocalHistogram,
    /// Heap allocations made by this core's thread (from the binary's
    /// counting allocator; 0 when it is not installed).
    pub allocations: LocalCounter,
    pub batches_flushed: LocalCounter,
    pub arena_high_water_bytes: LocalGauge,
    pub arena_bytes: LocalGauge,
    pub arena_resets: LocalCounter,
    pub sink_bytes: LocalCounter,
    pub sink_errors: LocalCounter,
    pub sink_records_dropped: LocalCounter,
    pub sink_pending_records: LocalGauge,
    pub sink_files_opened: LocalCounter,
    /// 1 while the disk refuses the file sink's writes (full, quota, size limit).
    pub sink_disk_full: LocalGauge,
    /// Direct mode: flushes that waited for the device (backlog full).
    pub sink_device_waits: LocalCounter,
    /// Start-up crash recovery: torn last lines cut off this core's files.
    pub file_torn_bytes: LocalCounter,
    pub file_torn_lines: LocalCounter,
    /// 1 if this core's previous run did not stop cleanly.
    pub file_unclean_start: LocalGauge,
    pub raw_frames: LocalCounter,
    pub raw_capture_errors: LocalCounter,
    pub spill_records: LocalGauge,
    pub spill_bytes: LocalGauge,
    pub spilled_total: LocalCounter,
    pub gaps_emitted: LocalCounter,
    /// The core's NATS publisher counters, once it has one.
    pub nats: std::sync::OnceLock<Arc<crate::sink::nats::NatsStats>>,
    /// Messages handed to the message sink, per subject.
    pub subjects: subjects::SubjectCounts,
}

impl CoreStats {
    pub fn new(shard: usize, cpu: usize) -> Self {
        CoreStats {
            shard,
            cpu,
            venues: Default::default(),
            batch_size: LocalHistogram::new(BATCH_BOUNDS, 1.0),
            flush_duration: LocalHistogram::new(LATENCY_BOUNDS_NS, 1e9),
            receive_to_written: LocalHistogram::new(LATENCY_BOUNDS_NS, 1e9),
            receive_to_parsed: LocalHistogram::new(PARSE_BOUNDS_NS, 1e9),
            allocations: LocalCounter::default(),
            batches_flushed: LocalCounter::default(),
            arena_high_water_bytes: LocalGauge::default(),
            arena_bytes: LocalGauge::default(),
            arena_resets: LocalCounter::default(),
            sink_bytes: LocalCounter::default(),
            sink_errors: LocalCounter::default(),
            sink_records_dropped: LocalCounter::default(),
            sink_pending_records: LocalGauge::default(),
            sink_files_opened: LocalCounter::default(),
            sink_disk_full: LocalGauge::default(),
            sink_device_waits: LocalCounter::default(),
            file_torn_bytes: LocalCounter::default(),
            file_torn_lines: LocalCounter::default(),
            file_unclean_start: LocalGauge::default(),
            raw_frames: LocalCounter::default(),
            raw_capture_errors: LocalCounter::default(),
            spill_records: LocalGauge::default(),
            spill_bytes: LocalGauge::default(),
            spilled_total: LocalCounter::default(),
            gaps_emitted: LocalCounter::default(),
            nats: std::sync::OnceLock::new(),
            subjects: Default::default(),
        }
    }

    #[inline]
    pub fn venue(&self, v: VenueId) -> &VenueStats {
        &self.venues[v.index()]
    }

    pub fn connections_up(&self) -> i64 {
        self.venues.iter().map(|v| v.connections_up.get()).sum()
    }

    pub fn connections_planned(&self) -> i64 {
        self.venues
            .iter()
            .map(|v| v.connections_planned.get())
            .sum()
    }
}

/// Reads every core's stats at scrape time.
#[derive(Debug, Clone)]
pub struct Exporter {
    pub cores: Arc<Vec<Arc<CoreStats>>>,
    pub venues: Vec<VenueId>,
    pub started: Instant,
}

pub(crate) type Fmt = Result<(), std::fmt::Error>;

impl Exporter {
    fn venue_counter(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        get: impl Fn(&VenueStats) -> u64,
    ) -> Fmt {
        let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
        for c in self.cores.iter() {
            for &v in &self.venues {
                let labels = [
                    ("exchange", v.exchange()),
                    ("market_type", v.market_type()),
                    ("core", core_label(c.shard)),
                ];
                ConstCounter::new(get(c.venue(v))).encode(m.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }

    fn venue_gauge(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        get: impl Fn(&VenueStats) -> i64,
    ) -> Fmt {
        let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for c in self.cores.iter() {
            for &v in &self.venues {
                let labels = [
                    ("exchange", v.exchange()),
                    ("market_type", v.market_type()),
                    ("core", core_label(c.shard)),
                ];
                ConstGauge::new(get(c.venue(v))).encode(m.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }

    fn data_type_counter(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        get: impl Fn(&VenueStats, DataType) -> u64,
    ) -> Fmt {
        let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
        for c in self.cores.iter() {
            for &v in &self.venues {
                // Only what the venue offers: no empty series for the rest.
                for dt in DataType::ALL
                    .into_iter()
                    .filter(|&d| crate::venue::supports(v, d))
                {
                    let labels = [
                        ("exchange", v.exchange()),
                        ("market_type", v.market_type_of(dt)),
                        ("data_type", dt.name()),
                        ("core", core_label(c.shard)),
                    ];
                    ConstCounter::new(get(c.venue(v), dt)).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }

    fn core_counter(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        get: impl Fn(&CoreStats) -> u64,
    ) -> Fmt {
        let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
        for c in self.cores.iter() {
            ConstCounter::new(get(c)).encode(m.encode_family(&[("core", core_label(c.shard))])?)?;
        }
        Ok(())
    }

    fn core_gauge(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        get: impl Fn(&CoreStats) -> i64,
    ) -> Fmt {
        let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for c in self.cores.iter() {
            ConstGauge::new(get(c)).encode(m.encode_family(&[("core", core_label(c.shard))])?)?;
        }
        Ok(())
    }

    fn core_histogram(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        get: impl Fn(&CoreStats) -> &LocalHistogram,
    ) -> Fmt {
        let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for c in self.cores.iter() {
            let (sum, count, buckets) = get(c).snapshot();
            m.encode_family(&[("core", core_label(c.shard))])?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}

/// Core labels without allocating per scrape for the usual core counts.
pub(crate) fn core_label(shard: usize) -> &'static str {
    const L: [&str; 16] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
    ];
    L.get(shard)
        .copied()
        .unwrap_or_else(|| Box::leak(shard.to_string().into_boxed_str()))
}

impl prometheus_client::collector::Collector for Exporter {
    fn encode(&self, mut enc: DescriptorEncoder) -> Fmt {
        let e = &mut enc;
        {
            let mut m = e.encode_descriptor(
                "messages_received",
                "WebSocket frames received, by the data type of the connection",
                None,
                MetricType::Counter,
            )?;
            for c in self.cores.iter() {
                for &v in &self.venues {
                    for i in 0..=DataType::COUNT {
                        let dt = DataType::ALL.get(i).map(|d| d.name()).unwrap_or("mixed");
                        let labels = [
                            ("exchange", v.exchange()),
                            ("market_type", v.market_type()),
                            ("data_type", dt),
                            ("core", core_label(c.shard)),
                        ];
                        ConstCounter::new(c.venue(v).frames_received[i].get())
                            .encode(m.encode_family(&labels)?)?;
                    }
                }
            }
        }
        self.venue_counter(
            e,
            "bytes_received",
            "Payload bytes of received frames",
            |v| v.bytes_received.get(),
        )?;
        self.data_type_counter(
            e,
            "messages_parsed",
            "Records parsed from frames",
            |v, d| v.parsed[d.index()].get(),
        )?;
        self.data_type_counter(
            e,
            "messages_written",
            "Records written by the sink",
            |v, d| v.written[d.index()].get(),
        )?;
        {
            let mut m = e.encode_descriptor(
                "malformed_frames",
                "Frames rejected and skipped, by reason",
                None,
                MetricType::Counter,
            )?;
            for c in self.cores.iter() {
                for &v in &self.venues {
                    for r in Malformed::ALL {
                        let labels = [
                            ("exchange", v.exchange()),
                            ("market_type", v.market_type()),
                            ("reason", r.label()),
                            ("core", core_label(c.shard)),
                        ];
                        ConstCounter::new(c.venue(v).malformed[r.index()].get())
                            .encode(m.encode_family(&labels)?)?;
                    }
                }
            }
        }
        self.venue_counter(
            e,
            "control_messages",
            "Subscription acks and other control frames",
            |v| v.control.get(),
        )?;
        self.venue_counter(e, "control_errors", "Error answers from the venue", |v| {
            v.control_errors.get()
        })?;
        self.venue_gauge(e, "websocket_connected", "WebSocket connections up", |v| {
            v.connections_up.get()
        })?;
        self.venue_gauge(
            e,
            "websocket_planned",
            "WebSocket connections planned",
            |v| v.connections_planned.get(),
        )?;
        self.venue_counter(
            e,
            "websocket_reconnections",
            "Reconnects after a drop or failed connect",
            |v| v.reconnects.get(),
        )?;
        self.venue_counter(
            e,
            "websocket_connect_failures",
            "Failed connection attempts",
            |v| v.connect_failures.get(),
        )?;
        self.venue_counter(
            e,
            "websocket_pings",
            "Server pings received (answered with pongs)",
            |v| v.pings.get(),
        )?;
        self.venue_counter(
            e,
            "websocket_heartbeats_sent",
            "Client heartbeats sent",
            |v| v.heartbeats_sent.get(),
        )?;
        type Get = fn(&VenueStats) -> i64;
        let book: [(&str, &str, Get); 7] = [
            ("orderbook_updates", "Book updates applied", |v| {
                v.book_updates.get()
            }),
            ("orderbook_snapshots", "Book snapshots applied", |v| {
                v.book_snapshots.get()
            }),
            (
                "orderbook_resync_count",
                "Book resynchronizations (one symbol each)",
                |v| v.book_resyncs.get(),
            ),
            (
                "orderbook_gaps",
                "Sequence gaps detected in book streams",
                |v| v.book_gaps.get(),
            ),
            (
                "orderbook_checksum_failures",
                "Books whose checksum did not match",
                |v| v.book_checksum_failures.get(),
            ),
            (
                "orderbook_crossed",
                "Books found crossed (best bid >= best ask)",
                |v| v.book_crossed.get(),
            ),
            ("orderbook_published", "orderbook records published", |v| {
                v.book_published.get()
            }),
        ];
        for (name, help, f) in book {
            self.venue_counter(e, name, help, |v| f(v).max(0) as u64)?;
        }
        self.venue_counter(
            e,
            "orderbook_resubscribes",
            "Book channels resubscribed to resync one symbol",
            |v| v.book_resubscribes.get(),
        )?;
        self.venue_counter(e, "rest_requests", "REST requests sent", |v| {
            v.rest_requests.get()
        })?;
        self.venue_counter(e, "rest_errors", "REST requests that failed", |v| {
            v.rest_errors.get()
        })?;
        self.venue_counter(
            e,
            "rest_rate_limited",
            "REST answers 429/418 (backing off)",
            |v| v.rest_rate_limited.get(),
        )?;
        self.venue_gauge(
            e,
            "rest_weight_used",
            "Request weight spent in the current window",
            |v| v.rest_weight_used.get(),
        )?;
        self.venue_counter(
            e,
            "poll_unchanged",
            "Polled answers that repeated the last datapoint (not republished)",
            |v| v.poll_unchanged.get(),
        )?;
        self.venue_counter(
            e,
            "duplicates_dropped",
            "Records delivered twice (rotation overlap, resent on reconnect), dropped",
            |v| v.duplicates_dropped.get(),
        )?;
        self.venue_counter(
            e,
            "websocket_rotations",
            "Planned make-before-break connection replacements",
            |v| v.rotations.get(),
        )?;
        self.venue_counter(
            e,
            "websocket_shutdown_notices",
            "Advance close notices from the venue (serverShutdown, 64008)",
            |v| v.shutdown_notices.get(),
        )?;
        self.venue_counter(
            e,
            "websocket_connect_throttled",
            "Connect attempts delayed by the venue's connection-rate limit",
            |v| v.connect_throttled.get(),
        )?;
        self.venue_counter(
            e,
            "websocket_stale",
            "Connections dropped for silence (no frames, pings or pongs)",
            |v| v.stale_connections.get(),
        )?;
        self.data_type_counter(
            e,
            "stream_stale",
            "Streams silent past their expected cadence on a live connection, subscribed again",
            |v, d| v.stale_streams[d.index()].get(),
        )?;
        self.venue_counter(
            e,
            "trade_gaps",
            "Trade sequence gaps found after a reconnect",
            |v| v.trade_gaps.get(),
        )?;
        self.venue_counter(
            e,
            "trades_backfilled",
            "Missed trades recovered over REST",
            |v| v.trades_backfilled.get(),
        )?;
        self.venue_counter(
            e,
            "gap_records",
            "gap records emitted (loss not recovered)",
            |v| v.gap_records.get(),
        )?;
        self.venue_counter(
            e,
            "stream_connected_seconds",
            "Stream-seconds with the stream's connection up (availability = this / planned)",
            |v| v.connected_seconds.get(),
        )?;
        self.venue_counter(e, "stream_planned_seconds", "Stream-seconds planned", |v| {
            v.planned_seconds.get()
        })?;
        self.core_histogram(e, "batch_size", "Records per flushed batch", |c| {
            &c.batch_size
        })?;
        self.core_histogram(
            e,
            "batch_flush_duration_seconds",
            "Time to encode and write one batch",
            |c| &c.flush_duration,
        )?;
        self.core_histogram(
            e,
            "receive_to_written_seconds",
            "Latency from frame receive to sink write, per record",
            |c| &c.receive_to_written,
        )?;
        self.core_histogram(
            e,
            "receive_to_parsed_seconds",
            "Latency from frame receive to record in the batch (parse)",
            |c| &c.receive_to_parsed,
        )?;
        self.core_counter(
            e,
            "heap_allocations",
            "Heap allocations by the core's thread",
            |c| c.allocations.get(),
        )?;
        self.core_counter(e, "batches_flushed", "Batches flushed", |c| {
            c.batches_flushed.get()
        })?;
        self.core_gauge(
            e,
            "arena_high_water_bytes",
            "Largest batch arena seen",
            |c| c.arena_high_water_bytes.get(),
        )?;
        self.core_counter(e, "sink_bytes_written", "Bytes written by the sink", |c| {
            c.sink_bytes.get()
        })?;
        self.core_counter(
            e,
            "sink_write_errors",
            "Failed sink writes (records kept for retry)",
            |c| c.sink_errors.get(),
        )?;
        self.core_counter(
            e,
            "sink_records_dropped",
            "Records dropped (file sink memory limit or spill full while the sink cannot take them)",
            |c| c.sink_records_dropped.get(),
        )?;
        self.core_gauge(
            e,
            "sink_pending_records",
            "Records encoded but not yet written",
            |c| c.sink_pending_records.get(),
        )?;
        self.core_counter(
            e,
            "sink_files_opened",
            "Output files opened (rotations)",
            |c| c.sink_files_opened.get(),
        )?;
        self.core_gauge(
            e,
            "sink_disk_full",
            "1 while the disk refuses the file sink's writes (ENOSPC, EDQUOT, EFBIG)",
            |c| c.sink_disk_full.get(),
        )?;
        self.core_counter(
            e,
            "sink_device_waits",
            "sink.write_mode offload/direct: flushes that waited for the write in flight because the unwritten backlog was full",
            |c| c.sink_device_waits.get(),
        )?;
        self.core_counter(
            e,
            "file_recovered_torn_bytes",
            "Bytes of torn last lines cut off at start-up (a previous run was killed mid-write)",
            |c| c.file_torn_bytes.get(),
        )?;
        self.core_counter(
            e,
            "file_recovered_torn_lines",
            "Torn last lines cut off at start-up",
            |c| c.file_torn_lines.get(),
        )?;
        self.core_gauge(
            e,
            "file_unclean_shutdown",
            "1 if this core's previous run did not shut down cleanly (its unflushed batch was lost)",
            |c| c.file_unclean_start.get(),
        )?;
        self.core_gauge(
            e,
            "spill_records",
            "Records waiting in the on-disk spill",
            |c| c.spill_records.get(),
        )?;
        self.core_gauge(e, "spill_bytes", "Bytes in the on-disk spill", |c| {
            c.spill_bytes.get()
        })?;
        self.core_counter(
            e,
            "spilled_records",
            "Records that went through the spill",
            |c| c.spilled_total.get(),
        )?;
        self.core_counter(
            e,
            "gap_records",
            "Gap records emitted (records lost to sink backpressure or a full disk; crash recovery)",
            |c| c.gaps_emitted.get(),
        )?;
        if self.cores.iter().any(|c| c.nats.get().is_some()) {
            self.encode_nats(e)?;
        }
        self.encode_marketprism(e)?;
        self.core_counter(
            e,
            "raw_frames_captured",
            "Frames recorded by raw capture",
            |c| c.raw_frames.get(),
        )?;
        self.core_counter(e, "raw_capture_errors", "Failed raw capture writes", |c| {
            c.raw_capture_errors.get()
        })?;
        {
            let m = e.encode_descriptor(
                "process_rss_bytes",
                "Resident set size",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(process_rss_bytes() as i64).encode(m)?;
        }
        {
            let m = e.encode_descriptor(
                "uptime_seconds",
                "Seconds since start",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(self.started.elapsed().as_secs() as i64).encode(m)?;
        }
        Ok(())
    }
}

/// RSS from `/proc/self/statm` (pages × page size); 0 if unreadable.
pub fn process_rss_bytes() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(0) as u64
}

/// Renders all metrics as OpenMetrics text: ours with the `marketprism_`
/// prefix, the standard `process_*` metrics without.
pub fn render(exporter: &Exporter) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(process::ProcessCollector));
    registry
        .sub_registry_with_prefix("marketprism")
        .register_collector(Box::new(exporter.clone()));
    let mut out = String::with_capacity(16 * 1024);
    // Encoding into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_and_quantiles() {
        let h = LocalHistogram::new(LATENCY_BOUNDS_NS, 1e9);
        for _ in 0..98 {
            h.observe(3_000); // ≤ 5 µs
        }
        h.observe(20_000_000); // ≤ 20 ms
        h.observe(20_000_001); // ≤ 25 ms
        assert_eq!(h.count(), 100);
        assert_eq!(h.quantile_upper_bound(0.5), Some(5e-6));
        assert_eq!(h.quantile_upper_bound(0.99), Some(0.02));
        assert_eq!(h.quantile_upper_bound(1.0), Some(0.025));
        let (_, _, b) = h.snapshot();
        assert_eq!(b.last().unwrap().0, f64::INFINITY);
    }

    #[test]
    fn renders_openmetrics_with_prefix_and_labels() {
        let c = Arc::new(CoreStats::new(1, 3));
        c.venue(VenueId::BinanceSpot).frames_received[0].add(5);
        c.venue(VenueId::BinanceSpot).malformed[Malformed::BadJson.index()].inc();
        c.venue(VenueId::BinanceSpot).parsed[DataType::Trade.index()].add(4);
        c.receive_to_written.observe(1_500);
        let ex = Exporter {
            cores: Arc::new(vec![c]),
            venues: vec![VenueId::BinanceSpot],
            started: Instant::now(),
        };
        let text = render(&ex);
        assert!(
            text.contains(
                "marketprism_messages_received_total{exchange=\"binance\",market_type=\"spot\",data_type=\"trade\",core=\"1\"} 5"
            ),
            "{text}"
        );
        assert!(text.contains(
            "marketprism_malformed_frames_total{exchange=\"binance\",market_type=\"spot\",reason=\"bad_json\",core=\"1\"} 1"
        ));
        assert!(text.contains(
            "marketprism_messages_parsed_total{exchange=\"binance\",market_type=\"spot\",data_type=\"trade\",core=\"1\"} 4"
        ));
        assert!(
            text.contains(
                "marketprism_receive_to_written_seconds_bucket{le=\"0.000001\",core=\"1\"} 0"
            ) && text.contains(
                "marketprism_receive_to_written_seconds_bucket{le=\"0.0000025\",core=\"1\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("marketprism_process_rss_bytes "));
        assert!(text.ends_with("# EOF\n"));
    }
}
