//! The NATS publisher's series: its per-core counters ([`NatsStats`], which
//! the publisher writes) and MarketPrism's broker series, all encoded only
//! when some core runs a publisher.

use super::family::{encode_all, Family};
use super::{Exporter, Fmt, LocalCounter, LocalGauge, LocalHistogram, LATENCY_BOUNDS_NS};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// (sum, count, buckets) of [`LocalHistogram::snapshot`].
type HistogramSnapshot = (f64, u64, Vec<(f64, u64)>);

/// Counters of one core's publisher (single writer: that core).
#[derive(Debug)]
pub struct NatsStats {
    /// Messages written for the first time (resends are in `resent`).
    pub published: LocalCounter,
    /// Successful PubAcks (duplicates included).
    pub acked: LocalCounter,
    /// PubAcks with `"duplicate":true`.
    pub duplicates: LocalCounter,
    /// `-ERR`, error PubAcks (incl. 503 no responders), refused messages.
    pub errors: LocalCounter,
    /// Connections established after the first.
    pub reconnects: LocalCounter,
    /// Failed connection attempts.
    pub connect_failures: LocalCounter,
    /// Messages written again on a new connection.
    pub resent: LocalCounter,
    /// JetStream publishes answered "no responders" (503): no stream
    /// captures the subject, a configuration error.
    pub no_responders: LocalCounter,
    /// Records set aside in the dead-letter store (no transport can carry
    /// them, or the server refused them for good).
    pub dead_lettered: LocalCounter,
    /// Records not resent because the stream already held them.
    pub resend_skipped: LocalCounter,
    /// Last-stored-message lookups before resending.
    pub resend_lookups: LocalCounter,
    /// Such lookups refused or unanswered (the subject is resent unchecked).
    pub resend_lookup_failures: LocalCounter,
    /// Data types nothing can carry under the current streams and config.
    pub unroutable_types: LocalGauge,
    pub in_flight: LocalGauge,
    /// Messages held (queued + unacked).
    pub buffered_msgs: LocalGauge,
    pub buffered_bytes: LocalGauge,
    pub connected: LocalGauge,
    /// try_publish → ack, ns.
    pub ack_latency: LocalHistogram,
    /// The record's `receive_ts_ns` → its ack, ns (wall clock).
    pub receive_ack_latency: LocalHistogram,
}

impl Default for NatsStats {
    fn default() -> Self {
        NatsStats {
            published: LocalCounter::default(),
            acked: LocalCounter::default(),
            duplicates: LocalCounter::default(),
            errors: LocalCounter::default(),
            reconnects: LocalCounter::default(),
            connect_failures: LocalCounter::default(),
            resent: LocalCounter::default(),
            no_responders: LocalCounter::default(),
            dead_lettered: LocalCounter::default(),
            resend_skipped: LocalCounter::default(),
            resend_lookups: LocalCounter::default(),
            resend_lookup_failures: LocalCounter::default(),
            unroutable_types: LocalGauge::default(),
            in_flight: LocalGauge::default(),
            buffered_msgs: LocalGauge::default(),
            buffered_bytes: LocalGauge::default(),
            connected: LocalGauge::default(),
            ack_latency: LocalHistogram::new(LATENCY_BOUNDS_NS, 1e9),
            receive_ack_latency: LocalHistogram::new(LATENCY_BOUNDS_NS, 1e9),
        }
    }
}

/// `marketprism_nats_*`: the per-core publishers (0 on a core without one).
const NATS: &[Family] = &[
    // Per core; MarketPrism's per-subject name is taken by
    // `nats_messages_published` below.
    Family::core_counter(
        "nats_sent",
        "Messages the core's NATS publisher wrote for the first time (resends are nats_resent)",
        |c| c.nats.get().map_or(0, |s| s.published.get()),
    ),
    Family::core_counter(
        "nats_acked",
        "JetStream acks received",
        |c| c.nats.get().map_or(0, |s| s.acked.get()),
    ),
    Family::core_counter(
        "nats_duplicates",
        "Acks reporting a duplicate: records the server dropped as already stored (same Nats-Msg-Id within duplicate_window)",
        |c| c.nats.get().map_or(0, |s| s.duplicates.get()),
    ),
    Family::core_counter(
        "nats_publish_errors",
        "NATS errors (-ERR, error acks, refused messages)",
        |c| c.nats.get().map_or(0, |s| s.errors.get()),
    ),
    Family::core_counter(
        "nats_reconnects",
        "NATS reconnections",
        |c| c.nats.get().map_or(0, |s| s.reconnects.get()),
    ),
    Family::core_counter(
        "nats_connect_failures",
        "Failed NATS connection attempts",
        |c| c.nats.get().map_or(0, |s| s.connect_failures.get()),
    ),
    Family::core_counter(
        "nats_resent",
        "Unacked messages resent after a reconnect",
        |c| c.nats.get().map_or(0, |s| s.resent.get()),
    ),
    Family::core_counter(
        "nats_no_responders",
        "JetStream publishes answered no responders: no stream captures the subject (a configuration error)",
        |c| c.nats.get().map_or(0, |s| s.no_responders.get()),
    ),
    Family::core_counter(
        "nats_dead_letter",
        "Records set aside in the dead-letter store: no transport can carry them",
        |c| c.nats.get().map_or(0, |s| s.dead_lettered.get()),
    ),
    Family::core_counter(
        "nats_resend_skipped",
        "Records not resent after a reconnect because the stream already held them (stored, ack lost; beyond duplicate_window)",
        |c| c.nats.get().map_or(0, |s| s.resend_skipped.get()),
    ),
    Family::core_counter(
        "nats_resend_lookups",
        "Last-stored-message lookups made before resending",
        |c| c.nats.get().map_or(0, |s| s.resend_lookups.get()),
    ),
    Family::core_counter(
        "nats_resend_lookup_failures",
        "Last-stored-message lookups refused or unanswered (that subject was resent unchecked)",
        |c| c.nats.get().map_or(0, |s| s.resend_lookup_failures.get()),
    ),
    Family::core_gauge(
        "nats_in_flight",
        "Published, not yet acked",
        |c| c.nats.get().map_or(0, |s| s.in_flight.get()),
    ),
    Family::core_gauge(
        "nats_buffered_records",
        "Records held by the publisher (queued + unacked)",
        |c| c.nats.get().map_or(0, |s| s.buffered_msgs.get()),
    ),
    Family::core_gauge(
        "nats_buffered_bytes",
        "Bytes held by the publisher",
        |c| c.nats.get().map_or(0, |s| s.buffered_bytes.get()),
    ),
    Family::core_gauge(
        "nats_connected",
        "1 while the core's NATS connection is up",
        |c| c.nats.get().map_or(0, |s| s.connected.get()),
    ),
    Family::core_gauge(
        "nats_unroutable_data_types",
        "Data types no stream captures and not published over core NATS (configuration errors)",
        |c| c.nats.get().map_or(0, |s| s.unroutable_types.get()),
    ),
    Family::core_histogram(
        "nats_publish_ack_seconds",
        "Publish to JetStream ack latency",
        |c| c.nats.get().map(|s| &s.ack_latency),
    ),
    Family::core_histogram(
        "nats_receive_ack_seconds",
        "A record's receive_ts_ns (its frame read from the exchange) to its JetStream ack, wall clock",
        |c| c.nats.get().map(|s| &s.receive_ack_latency),
    ),
];

/// The publishers' series, if any core has one.
pub(super) fn encode(ex: &Exporter, e: &mut DescriptorEncoder) -> Fmt {
    if ex.cores.iter().all(|c| c.nats.get().is_none()) {
        return Ok(());
    }
    encode_all(NATS, ex, e)?;
    encode_broker(ex, e)
}

/// MarketPrism's `nats_publish_duration_seconds` (all cores' publish →
/// ack histograms added) and `broker_connected` (1 while every core's
/// NATS connection is up).
fn encode_broker(ex: &Exporter, e: &mut DescriptorEncoder) -> Fmt {
    let mut merged: Option<HistogramSnapshot> = None;
    let (mut up, mut total) = (0, 0);
    for s in ex.cores.iter().filter_map(|c| c.nats.get()) {
        total += 1;
        up += (s.connected.get() > 0) as usize;
        let (sum, count, buckets) = s.ack_latency.snapshot();
        match merged.as_mut() {
            None => merged = Some((sum, count, buckets)),
            Some((ms, mc, mb)) => {
                *ms += sum;
                *mc += count;
                for (a, b) in mb.iter_mut().zip(buckets) {
                    a.1 += b.1;
                }
            }
        }
    }
    if let Some((sum, count, buckets)) = merged {
        let mut m = e.encode_descriptor(
            "nats_publish_duration_seconds",
            "JetStream publish to ack, all cores (core NATS publishes have no ack and are not timed)",
            None,
            MetricType::Histogram,
        )?;
        m.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
    }
    let m = e.encode_descriptor(
        "broker_connected",
        "1 while every core's NATS connection is up, else 0",
        None,
        MetricType::Gauge,
    )?;
    ConstGauge::new((total > 0 && up == total) as i64).encode(m)
}
