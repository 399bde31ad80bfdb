//! The collector's own series, as tables of [`Family`] in scrape order:
//! what the ingest path counts per venue, the core's batches, the sinks,
//! raw capture and the process. The NATS publisher's are in `nats.rs`,
//! MarketPrism's summed series in `compat.rs`.

use super::family::{Family, Shape};
use super::Malformed;
use crate::model::DataType;

/// Per venue and core: frames, parsing, connections, books, REST, gaps.
pub const INGEST: &[Family] = &[
    Family {
        name: "messages_received",
        help: "WebSocket frames received, by the data type of the connection",
        shape: Shape::VenueBy {
            label: "data_type",
            count: DataType::COUNT + 1,
            value: |i| DataType::ALL.get(i).map(|d| d.name()).unwrap_or("mixed"),
            read: |v, i| v.frames_received[i].get(),
        },
    },
    Family::venue_counter("bytes_received", "Payload bytes of received frames", |v| {
        v.bytes_received.get()
    }),
    Family::data_type_counter("messages_parsed", "Records parsed from frames", |v, d| {
        v.parsed[d.index()].get()
    }),
    Family::data_type_counter("messages_written", "Records written by the sink", |v, d| {
        v.written[d.index()].get()
    }),
    Family {
        name: "malformed_frames",
        help: "Frames rejected and skipped, by reason",
        shape: Shape::VenueBy {
            label: "reason",
            count: Malformed::COUNT,
            value: |i| Malformed::ALL[i].label(),
            read: |v, i| v.malformed[i].get(),
        },
    },
    Family::venue_counter(
        "control_messages",
        "Subscription acks and other control frames",
        |v| v.control.get(),
    ),
    Family::venue_counter("control_errors", "Error answers from the venue", |v| {
        v.control_errors.get()
    }),
    Family::venue_gauge("websocket_connected", "WebSocket connections up", |v| {
        v.connections_up.get()
    }),
    Family::venue_gauge("websocket_planned", "WebSocket connections planned", |v| {
        v.connections_planned.get()
    }),
    Family::venue_counter(
        "websocket_reconnections",
        "Reconnects after a drop or failed connect",
        |v| v.reconnects.get(),
    ),
    Family::venue_counter(
        "websocket_connect_failures",
        "Failed connection attempts",
        |v| v.connect_failures.get(),
    ),
    Family::venue_counter(
        "websocket_pings",
        "Server pings received (answered with pongs)",
        |v| v.pings.get(),
    ),
    Family::venue_counter("websocket_heartbeats_sent", "Client heartbeats sent", |v| {
        v.heartbeats_sent.get()
    }),
    // Copied from the core's `Books` counters into gauges; exported as counters.
    Family::venue_counter("orderbook_updates", "Book updates applied", |v| {
        v.book_updates.get().max(0) as u64
    }),
    Family::venue_counter("orderbook_snapshots", "Book snapshots applied", |v| {
        v.book_snapshots.get().max(0) as u64
    }),
    Family::venue_counter(
        "orderbook_resync_count",
        "Book resynchronizations (one symbol each)",
        |v| v.book_resyncs.get().max(0) as u64,
    ),
    Family::venue_counter(
        "orderbook_gaps",
        "Sequence gaps detected in book streams",
        |v| v.book_gaps.get().max(0) as u64,
    ),
    Family::venue_counter(
        "orderbook_checksum_failures",
        "Books whose checksum did not match",
        |v| v.book_checksum_failures.get().max(0) as u64,
    ),
    Family::venue_counter(
        "orderbook_crossed",
        "Books found crossed (best bid >= best ask)",
        |v| v.book_crossed.get().max(0) as u64,
    ),
    Family::venue_counter("orderbook_published", "orderbook records published", |v| {
        v.book_published.get().max(0) as u64
    }),
    Family::venue_counter(
        "orderbook_resubscribes",
        "Book channels resubscribed to resync one symbol",
        |v| v.book_resubscribes.get(),
    ),
    Family::venue_counter("rest_requests", "REST requests sent", |v| {
        v.rest_requests.get()
    }),
    Family::venue_counter("rest_errors", "REST requests that failed", |v| {
        v.rest_errors.get()
    }),
    Family::venue_counter(
        "rest_rate_limited",
        "REST answers 429/418 (backing off)",
        |v| v.rest_rate_limited.get(),
    ),
    Family::venue_gauge(
        "rest_weight_used",
        "Request weight spent in the current window",
        |v| v.rest_weight_used.get(),
    ),
    Family::venue_counter(
        "poll_unchanged",
        "Polled answers that repeated the last datapoint (not republished)",
        |v| v.poll_unchanged.get(),
    ),
    Family::venue_counter(
        "duplicates_dropped",
        "Records delivered twice (rotation overlap, resent on reconnect), dropped",
        |v| v.duplicates_dropped.get(),
    ),
    Family::venue_counter(
        "websocket_rotations",
        "Planned make-before-break connection replacements",
        |v| v.rotations.get(),
    ),
    Family::venue_counter(
        "websocket_shutdown_notices",
        "Advance close notices from the venue (serverShutdown, 64008)",
        |v| v.shutdown_notices.get(),
    ),
    Family::venue_counter(
        "websocket_connect_throttled",
        "Connect attempts delayed by the venue's connection-rate limit",
        |v| v.connect_throttled.get(),
    ),
    Family::venue_counter(
        "websocket_stale",
        "Connections dropped for silence (no frames, pings or pongs)",
        |v| v.stale_connections.get(),
    ),
    Family::data_type_counter(
        "stream_stale",
        "Streams silent past their expected cadence on a live connection, subscribed again",
        |v, d| v.stale_streams[d.index()].get(),
    ),
    Family::venue_counter(
        "trade_gaps",
        "Trade sequence gaps found after a reconnect",
        |v| v.trade_gaps.get(),
    ),
    Family::venue_counter(
        "trades_backfilled",
        "Missed trades recovered over REST",
        |v| v.trades_backfilled.get(),
    ),
    Family::venue_counter(
        "gap_records",
        "gap records emitted (loss not recovered)",
        |v| v.gap_records.get(),
    ),
    Family::venue_counter(
        "stream_connected_seconds",
        "Stream-seconds with the stream's connection up (availability = this / planned)",
        |v| v.connected_seconds.get(),
    ),
    Family::venue_counter("stream_planned_seconds", "Stream-seconds planned", |v| {
        v.planned_seconds.get()
    }),
];

/// Per core: batches, latencies, heap and arena.
pub const CORE: &[Family] = &[
    Family::core_histogram("batch_size", "Records per flushed batch", |c| {
        Some(&c.batch_size)
    }),
    Family::core_histogram(
        "batch_flush_duration_seconds",
        "Time to encode and write one batch",
        |c| Some(&c.flush_duration),
    ),
    Family::core_histogram(
        "receive_to_written_seconds",
        "Latency from frame receive to sink write, per record",
        |c| Some(&c.receive_to_written),
    ),
    Family::core_histogram(
        "receive_to_parsed_seconds",
        "Latency from frame receive to its records in the batch (parse), per frame; a read's frames timed together",
        |c| Some(&c.receive_to_parsed),
    ),
    Family::core_counter(
        "heap_allocations",
        "Heap allocations by the core's thread",
        |c| c.allocations.get(),
    ),
    Family::core_counter("batches_flushed", "Batches flushed", |c| {
        c.batches_flushed.get()
    }),
    Family::core_gauge("arena_high_water_bytes", "Largest batch arena seen", |c| {
        c.arena_high_water_bytes.get()
    }),
];

/// Per core: the file sink, the spill and the `gap` records of all sinks.
pub const SINK: &[Family] = &[
    Family::core_counter(
        "sink_bytes_written",
        "Bytes written by the sink",
        |c| c.sink_bytes.get(),
    ),
    Family::core_counter(
        "sink_write_errors",
        "Failed sink writes (records kept for retry)",
        |c| c.sink_errors.get(),
    ),
    Family::core_counter(
        "sink_records_dropped",
        "Records dropped (file sink memory limit or spill full while the sink cannot take them)",
        |c| c.sink_records_dropped.get(),
    ),
    Family::core_gauge(
        "sink_pending_records",
        "Records encoded but not yet written",
        |c| c.sink_pending_records.get(),
    ),
    Family::core_counter(
        "sink_files_opened",
        "Output files opened (rotations)",
        |c| c.sink_files_opened.get(),
    ),
    Family::core_gauge(
        "sink_disk_full",
        "1 while the disk refuses the file sink's writes (ENOSPC, EDQUOT, EFBIG)",
        |c| c.sink_disk_full.get(),
    ),
    Family::core_counter(
        "sink_device_waits",
        "sink.write_mode offload/direct: flushes that waited for the write in flight because the unwritten backlog was full",
        |c| c.sink_device_waits.get(),
    ),
    Family::core_counter(
        "file_recovered_torn_bytes",
        "Bytes of torn last lines cut off at start-up (a previous run was killed mid-write)",
        |c| c.file_torn_bytes.get(),
    ),
    Family::core_counter(
        "file_recovered_torn_lines",
        "Torn last lines cut off at start-up",
        |c| c.file_torn_lines.get(),
    ),
    Family::core_gauge(
        "file_unclean_shutdown",
        "1 if this core's previous run did not shut down cleanly (its unflushed batch was lost)",
        |c| c.file_unclean_start.get(),
    ),
    Family::core_gauge(
        "spill_records",
        "Records waiting in the on-disk spill",
        |c| c.spill_records.get(),
    ),
    Family::core_gauge(
        "spill_bytes",
        "Bytes in the on-disk spill",
        |c| c.spill_bytes.get(),
    ),
    Family::core_counter(
        "spilled_records",
        "Records that went through the spill",
        |c| c.spilled_total.get(),
    ),
    Family::core_counter(
        "gap_records",
        "Gap records emitted (records lost to sink backpressure or a full disk; crash recovery)",
        |c| c.gaps_emitted.get(),
    ),
];

/// Per core: raw frame capture.
pub const CAPTURE: &[Family] = &[
    Family::core_counter(
        "raw_frames_captured",
        "Frames recorded by raw capture",
        |c| c.raw_frames.get(),
    ),
    Family::core_counter("raw_capture_errors", "Failed raw capture writes", |c| {
        c.raw_capture_errors.get()
    }),
];

/// The whole process.
pub const PROCESS: &[Family] = &[
    Family {
        name: "process_rss_bytes",
        help: "Resident set size",
        shape: Shape::Process(|_| super::process_rss_bytes() as i64),
    },
    Family {
        name: "uptime_seconds",
        help: "Seconds since start",
        shape: Shape::Process(|ex| ex.started.elapsed().as_secs() as i64),
    },
];
