//! Cluster membership series and health: one [`ClusterStats`] shared by
//! every core (atomics, each written by the core that owns the fact), set
//! on every core's [`super::CoreStats::cluster`] when membership is on.

use super::{Exporter, Fmt};
use crate::model::VenueId;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

/// The instance's view of the cluster.
#[derive(Debug)]
pub struct ClusterStats {
    pub replicas: u32,
    /// Configured symbols per venue (every instance plans them all).
    pub symbols: Vec<(VenueId, u32)>,
    /// Alive members this instance sees, itself included (core 0 writes).
    pub members_alive: AtomicI64,
    /// Every stream this instance owns was live at least once (sticky).
    pub warm: AtomicBool,
    /// Per core: owned symbols not yet live (-1: no decision yet).
    pub cold: Vec<AtomicI64>,
    /// Per venue (`VenueId::index`): symbols / streams collected here now.
    pub symbols_owned: Vec<AtomicI64>,
    pub streams_owned: Vec<AtomicI64>,
    /// Symbols this instance started collecting after its first decision.
    pub takeovers: AtomicU64,
    /// Symbols it stopped collecting after a handover overlap.
    pub handovers: AtomicU64,
    /// Takeovers whose last stored trade could not be read.
    pub seed_failures: AtomicU64,
    /// Failed reads or writes of the member bucket.
    pub bucket_errors: AtomicU64,
}

impl ClusterStats {
    pub fn new(replicas: u32, cores: usize, symbols: Vec<(VenueId, u32)>) -> ClusterStats {
        let per_venue = || (0..VenueId::COUNT).map(|_| AtomicI64::new(0)).collect();
        ClusterStats {
            replicas,
            symbols,
            members_alive: AtomicI64::new(0),
            warm: AtomicBool::new(false),
            cold: (0..cores).map(|_| AtomicI64::new(-1)).collect(),
            symbols_owned: per_venue(),
            streams_owned: per_venue(),
            takeovers: AtomicU64::new(0),
            handovers: AtomicU64::new(0),
            seed_failures: AtomicU64::new(0),
            bucket_errors: AtomicU64::new(0),
        }
    }

    /// Whether every core decided and every owned symbol went live.
    pub fn all_live(&self) -> bool {
        self.cold.iter().all(|c| c.load(Relaxed) == 0)
    }

    /// `/health` reason when fewer than `replicas` alive members cover the
    /// streams (every symbol then has fewer collectors than asked for).
    pub fn health_reason(&self) -> Option<String> {
        let alive = self.members_alive.load(Relaxed);
        if alive >= self.replicas as i64 {
            return None;
        }
        let n: u32 = self.symbols.iter().map(|(_, n)| n).sum();
        let venues: Vec<String> = self
            .symbols
            .iter()
            .map(|(v, n)| format!("{v} {n}"))
            .collect();
        Some(format!(
            "cluster: {alive} alive member(s) for replicas = {}: {n} symbol(s) covered by fewer than {} instances ({})",
            self.replicas,
            self.replicas,
            venues.join(", ")
        ))
    }
}

pub(super) fn encode(ex: &Exporter, e: &mut DescriptorEncoder) -> Fmt {
    let Some(c) = ex.cores.first().and_then(|c| c.cluster.get()) else {
        return Ok(());
    };
    let gauge = |e: &mut DescriptorEncoder, name: &str, help: &str, v: i64| -> Fmt {
        ConstGauge::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
    };
    gauge(
        e,
        "cluster_members_alive",
        "Alive cluster members this instance sees (itself included)",
        c.members_alive.load(Relaxed),
    )?;
    gauge(
        e,
        "cluster_replicas",
        "Instances asked to collect each symbol",
        c.replicas as i64,
    )?;
    gauge(
        e,
        "cluster_warm",
        "1 once every stream this instance owns has been live",
        c.warm.load(Relaxed) as i64,
    )?;
    for (name, help, per) in [
        (
            "cluster_symbols_owned",
            "Symbols this instance collects now, per venue",
            &c.symbols_owned,
        ),
        (
            "cluster_streams_owned",
            "Streams (symbol x data type) this instance collects now, per venue",
            &c.streams_owned,
        ),
    ] {
        let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for &(v, _) in &c.symbols {
            let labels = [("exchange", v.exchange()), ("market_type", v.market_type())];
            ConstGauge::new(per[v.index()].load(Relaxed)).encode(m.encode_family(&labels)?)?;
        }
    }
    for (name, help, v) in [
        (
            "cluster_takeovers",
            "Symbols this instance started collecting after start-up (a member died or left them)",
            &c.takeovers,
        ),
        (
            "cluster_handovers",
            "Symbols this instance stopped collecting after the handover overlap",
            &c.handovers,
        ),
        (
            "cluster_seed_failures",
            "Takeovers that could not read the stream's last trade (continuity not seeded)",
            &c.seed_failures,
        ),
        (
            "cluster_bucket_errors",
            "Failed reads or writes of the member bucket",
            &c.bucket_errors,
        ),
    ] {
        ConstCounter::new(v.load(Relaxed)).encode(e.encode_descriptor(
            name,
            help,
            None,
            MetricType::Counter,
        )?)?;
    }
    Ok(())
}
