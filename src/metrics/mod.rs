//! Metrics: every core owns a [`CoreStats`] it alone writes (plain load+store on
//! relaxed atomics: no lock, no contended read-modify-write, no atomic two
//! cores write). The scrape handler reads all cores at scrape time through
//! [`Exporter`], a prometheus-client `Collector`.
//!
//! Metric names live in tables of [`family::Family`] (`series.rs`,
//! `nats.rs`), encoded by one loop per family shape (`family.rs`), and in
//! `compat.rs` (MarketPrism's dashboard series, summed over cores). They
//! carry MarketPrism's `marketprism_` prefix (and its names where
//! MarketPrism has one, e.g. `websocket_connected`,
//! `websocket_reconnections_total`), except the standard `process_*`
//! metrics (`process.rs`).
//!
//! Metrics import no component: components write the stats defined here
//! (venues report [`Malformed`] reasons, the NATS publisher writes its
//! [`NatsStats`]), and the plan registers at start what each core carries
//! and what each venue offers ([`freshness::expect_streams`]).

pub mod clickhouse;
pub mod cluster;
mod compat;
pub mod family;
pub mod freshness;
pub mod http;
pub mod listen;
mod local;
mod malformed;
mod nats;
pub mod process;
mod series;
pub mod subjects;

pub use clickhouse::ClickHouseStats;
pub use local::*;
pub use malformed::Malformed;
pub use nats::NatsStats;

use crate::model::{DataType, VenueId};
use family::encode_all;
use prometheus_client::encoding::DescriptorEncoder;
use std::sync::atomic::{AtomicU32, Ordering};
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
    /// The data types the venue offers (registered at start): the
    /// per-data-type series have no empty rows for the rest.
    pub offered: Offered,
}

/// A set of data types, all until registered (set once at start).
#[derive(Debug)]
pub struct Offered(AtomicU32);

impl Default for Offered {
    fn default() -> Self {
        Offered(AtomicU32::new(u32::MAX))
    }
}

impl Offered {
    pub fn set(&self, data_types: impl IntoIterator<Item = DataType>) {
        let bits = data_types.into_iter().fold(0, |b, d| b | 1 << d.index());
        self.0.store(bits, Ordering::Relaxed);
    }

    #[inline]
    pub fn contains(&self, dt: DataType) -> bool {
        self.0.load(Ordering::Relaxed) & 1 << dt.index() != 0
    }
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
    pub nats: std::sync::OnceLock<Arc<NatsStats>>,
    /// The core's ClickHouse sink counters, once it has one.
    pub clickhouse: std::sync::OnceLock<Arc<ClickHouseStats>>,
    /// The instance's cluster view (membership mode; one shared by all cores).
    pub cluster: std::sync::OnceLock<Arc<cluster::ClusterStats>>,
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
            clickhouse: std::sync::OnceLock::new(),
            cluster: std::sync::OnceLock::new(),
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
        encode_all(series::INGEST, self, e)?;
        encode_all(series::CORE, self, e)?;
        encode_all(series::SINK, self, e)?;
        nats::encode(self, e)?;
        clickhouse::encode(self, e)?;
        cluster::encode(self, e)?;
        self.encode_marketprism(e)?;
        encode_all(series::CAPTURE, self, e)?;
        encode_all(series::PROCESS, self, e)
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
    fn each_value_lands_in_the_first_bucket_whose_bound_holds_it() {
        let mut checked = 0;
        for bounds in [
            LATENCY_BOUNDS_NS,
            PARSE_BOUNDS_NS,
            BATCH_BOUNDS,
            &[7][..],
            &[][..],
        ] {
            let mut values = vec![0, 1, u64::MAX];
            for &b in bounds {
                values.extend([b - 1, b, b + 1]);
            }
            for v in values {
                let h = LocalHistogram::new(bounds, 1.0);
                h.observe(v);
                let (_, _, buckets) = h.snapshot();
                let want = bounds.iter().position(|&b| v <= b).unwrap_or(bounds.len());
                let got: Vec<usize> = (0..buckets.len()).filter(|&i| buckets[i].1 == 1).collect();
                assert_eq!(got, vec![want], "{v} in {bounds:?}");
                checked += 1;
            }
        }
        let edges = 3 * (LATENCY_BOUNDS_NS.len() + PARSE_BOUNDS_NS.len() + BATCH_BOUNDS.len() + 1);
        assert_eq!(checked, edges + 5 * 3);
    }

    #[test]
    fn ages_observed_by_runs_count_every_stamp() {
        let runs = LocalHistogram::new(PARSE_BOUNDS_NS, 1.0);
        let one_by_one = LocalHistogram::new(PARSE_BOUNDS_NS, 1.0);
        let stamps = [900, 900, 900, 100, 100, 800, 900, 5_000];
        runs.observe_ages(10_000, stamps);
        for s in stamps {
            one_by_one.observe(10_000 - s);
        }
        assert_eq!(runs.snapshot(), one_by_one.snapshot());
        assert_eq!(runs.count(), 8);
        // 9 100 ns four times, 9 900 twice, 9 200 once, 5 000 once.
        assert_eq!(
            runs.snapshot().0,
            4.0 * 9_100.0 + 2.0 * 9_900.0 + 9_200.0 + 5_000.0
        );
        runs.observe_ages(1, std::iter::empty());
        assert_eq!(runs.count(), 8);
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

    #[test]
    fn per_data_type_series_only_for_what_the_venue_offers() {
        let c = Arc::new(CoreStats::new(0, 0));
        c.venue(VenueId::BinanceSpot)
            .offered
            .set([DataType::Trade, DataType::OrderBook]);
        let ex = Exporter {
            cores: Arc::new(vec![c]),
            venues: vec![VenueId::BinanceSpot],
            started: Instant::now(),
        };
        let text = render(&ex);
        let parsed: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("marketprism_messages_parsed_total{"))
            .collect();
        assert_eq!(parsed.len(), 2, "{text}");
        assert!(parsed[0].contains("data_type=\"trade\""), "{text}");
        assert!(parsed[1].contains("data_type=\"orderbook\""), "{text}");
    }
}
