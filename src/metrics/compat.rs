//! The series MarketPrism's shipped Grafana dashboard and alert rules
//! query (its broker series are in `nats.rs`), with MarketPrism's
//! names, labels and label values (README "MarketPrism dashboards and
//! alerts"). Everything here is summed over cores at scrape time: a
//! MarketPrism series never carries a `core` label.

use super::family::Family;
use super::subjects::subject_labels;
use super::{Exporter, Fmt, VenueStats};
use crate::model::DataType;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::collections::BTreeMap;

impl Exporter {
    /// MarketPrism's per-subject and per exchange × market type × data type
    /// publish counters, and its per exchange × data type freshness gauge.
    pub(super) fn encode_marketprism(&self, e: &mut DescriptorEncoder) -> Fmt {
        // A subject lives on one core, but sum anyway: a scrape must never
        // show one label set twice.
        let mut subjects: BTreeMap<&str, u64> = BTreeMap::new();
        for c in self.cores.iter() {
            for (s, n) in c.subjects.iter() {
                *subjects.entry(s).or_default() += n;
            }
        }
        let mut labeled: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
        {
            let mut m = e.encode_descriptor(
                "nats_messages_published",
                "Messages handed to the NATS publisher, per subject (gap records excluded)",
                None,
                MetricType::Counter,
            )?;
            for (&subject, &n) in &subjects {
                let Some((dt, ex, mt)) = subject_labels(subject) else {
                    continue;
                };
                *labeled.entry((ex, mt, dt)).or_default() += n;
                let labels = [
                    ("subject", subject),
                    ("exchange", ex),
                    ("market_type", mt),
                    ("data_type", dt),
                ];
                ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
            }
        }
        {
            let mut m = e.encode_descriptor(
                "nats_messages_published_labeled",
                "Messages handed to the NATS publisher, per exchange, market type and data type",
                None,
                MetricType::Counter,
            )?;
            for (&(ex, mt, dt), &n) in &labeled {
                let labels = [("exchange", ex), ("market_type", mt), ("data_type", dt)];
                ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
            }
        }
        Family::core_counter(
            "nats_subjects_overflow",
            "Messages of subjects beyond the per-core subject table (not in nats_messages_published)",
            |c| c.subjects.overflow.get(),
        )
        .encode(self, e)?;
        let mut last: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for c in self.cores.iter() {
            for &v in &self.venues {
                let vs: &VenueStats = c.venue(v);
                for dt in DataType::ALL.into_iter().filter(|&d| d != DataType::Gap) {
                    let ns = vs.last_record_ns[dt.index()].get();
                    if ns > 0 {
                        let slot = last.entry((v.exchange(), dt.name())).or_default();
                        *slot = (*slot).max(ns);
                    }
                }
            }
        }
        let mut m = e.encode_descriptor(
            "collector_last_success_timestamp_seconds",
            "Unix time of the last record received (polled types: the last valid answer), per exchange and data type",
            None,
            MetricType::Gauge,
        )?;
        for (&(ex, dt), &ns) in &last {
            let secs = (ns / 1_000_000) as f64 / 1000.0;
            ConstGauge::new(secs)
                .encode(m.encode_family(&[("exchange", ex), ("data_type", dt)])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::subjects::SubjectIndex;
    use super::super::{render, CoreStats, Exporter};
    use crate::model::{DataType, VenueId};
    use crate::sink::nats::NatsStats;
    use std::sync::Arc;
    use std::time::Instant;

    fn exporter(cores: &[&Arc<CoreStats>]) -> Exporter {
        Exporter {
            cores: Arc::new(cores.iter().map(|c| (*c).clone()).collect()),
            venues: vec![
                VenueId::BinanceSpot,
                VenueId::BinanceDerivatives,
                VenueId::DeribitDerivatives,
            ],
            started: Instant::now(),
        }
    }

    fn lines<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| l.starts_with(family) && !l.starts_with('#'))
            .collect()
    }

    #[test]
    fn marketprism_series_summed_over_cores_with_its_labels() {
        let (a, b) = (
            Arc::new(CoreStats::new(0, 0)),
            Arc::new(CoreStats::new(1, 1)),
        );
        let (mut ia, mut ib) = (SubjectIndex::default(), SubjectIndex::default());
        for _ in 0..5 {
            ia.count(&a.subjects, b"trade.binance.spot.BTC-USDT");
        }
        for _ in 0..3 {
            ia.count(&a.subjects, b"trade.binance.spot.ETH-USDT");
        }
        // The same subject on two cores (a stream moved): one series.
        ib.count(&b.subjects, b"trade.binance.spot.BTC-USDT");
        ib.count(&b.subjects, b"volatility_index.deribit.options.BTC");
        ib.count(&b.subjects, b"gap.binance.spot.BTC-USDT");
        let spot = VenueId::BinanceSpot;
        let perp = VenueId::BinanceDerivatives;
        a.venue(spot).last_record_ns[DataType::Trade.index()].set(1_764_900_000_123_456_789);
        b.venue(perp).last_record_ns[DataType::Trade.index()].set(1_764_900_001_500_000_000);
        b.venue(perp).last_record_ns[DataType::FundingRate.index()].set(1_764_899_990_000_000_000);
        let text = render(&exporter(&[&a, &b]));
        assert_eq!(
            lines(&text, "marketprism_nats_messages_published_total"),
            [
                "marketprism_nats_messages_published_total{subject=\"trade.binance.spot.BTC-USDT\",exchange=\"binance\",market_type=\"spot\",data_type=\"trade\"} 6",
                "marketprism_nats_messages_published_total{subject=\"trade.binance.spot.ETH-USDT\",exchange=\"binance\",market_type=\"spot\",data_type=\"trade\"} 3",
                "marketprism_nats_messages_published_total{subject=\"volatility_index.deribit.options.BTC\",exchange=\"deribit\",market_type=\"options\",data_type=\"volatility_index\"} 1",
            ]
        );
        assert_eq!(
            lines(&text, "marketprism_nats_messages_published_labeled_total"),
            [
                "marketprism_nats_messages_published_labeled_total{exchange=\"binance\",market_type=\"spot\",data_type=\"trade\"} 9",
                "marketprism_nats_messages_published_labeled_total{exchange=\"deribit\",market_type=\"options\",data_type=\"volatility_index\"} 1",
            ]
        );
        // Max over the exchange's venues and the cores, per data type.
        assert_eq!(
            lines(&text, "marketprism_collector_last_success_timestamp_seconds"),
            [
                "marketprism_collector_last_success_timestamp_seconds{exchange=\"binance\",data_type=\"funding_rate\"} 1764899990.0",
                "marketprism_collector_last_success_timestamp_seconds{exchange=\"binance\",data_type=\"trade\"} 1764900001.5",
            ]
        );
        // No NATS publisher: no broker series.
        assert!(!text.contains("marketprism_broker_connected"), "{text}");
        assert!(!text.contains("marketprism_nats_publish_duration_seconds"));
        assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
        assert!(text.contains("\nprocess_cpu_seconds_total "), "{text}");
        assert!(text.contains("\nprocess_start_time_seconds "), "{text}");
        assert!(text.contains("\nprocess_open_fds "), "{text}");
    }

    #[test]
    fn nats_per_core_and_broker_series() {
        let (a, b) = (
            Arc::new(CoreStats::new(0, 0)),
            Arc::new(CoreStats::new(1, 1)),
        );
        let (na, nb) = (
            Arc::new(NatsStats::default()),
            Arc::new(NatsStats::default()),
        );
        a.nats.set(na.clone()).unwrap();
        b.nats.set(nb.clone()).unwrap();
        na.published.add(7);
        nb.published.add(2);
        na.connected.set(1);
        na.ack_latency.observe(3_000_000); // ≤ 5 ms
        nb.ack_latency.observe(3_000_000);
        nb.ack_latency.observe(200_000_000); // ≤ 250 ms
        let ex = exporter(&[&a, &b]);
        let text = render(&ex);
        assert_eq!(
            lines(&text, "marketprism_nats_sent_total"),
            [
                "marketprism_nats_sent_total{core=\"0\"} 7",
                "marketprism_nats_sent_total{core=\"1\"} 2"
            ]
        );
        assert_eq!(
            lines(&text, "marketprism_broker_connected"),
            ["marketprism_broker_connected 0"]
        );
        for l in [
            "marketprism_nats_publish_duration_seconds_bucket{le=\"0.005\"} 2",
            "marketprism_nats_publish_duration_seconds_bucket{le=\"0.25\"} 3",
            "marketprism_nats_publish_duration_seconds_count 3",
        ] {
            assert!(text.contains(l), "{l} missing in\n{text}");
        }
        nb.connected.set(1);
        let text = render(&ex);
        assert_eq!(
            lines(&text, "marketprism_broker_connected"),
            ["marketprism_broker_connected 1"]
        );
    }
}
