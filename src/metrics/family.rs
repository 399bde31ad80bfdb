//! The exporter's encoder, written once per family shape. A metric family is
//! a [`Family`]: its name, its help and a [`Shape`], which says which label
//! sets it has (per core, per venue × core, …) and reads each value.
//! Components describe their series as tables of families (`series.rs`,
//! `nats.rs`); none writes a label loop of its own.

use super::{core_label, CoreStats, Exporter, Fmt, LocalHistogram, VenueStats};
use crate::model::DataType;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// How one value of a family is read from the stats `S` it describes.
pub enum Read<S> {
    Counter(fn(&S) -> u64),
    Gauge(fn(&S) -> i64),
    /// `None`: this core has no such histogram (it does not run the
    /// component): no series for it.
    Histogram(fn(&S) -> Option<&LocalHistogram>),
}

impl<S> Read<S> {
    fn metric_type(&self) -> MetricType {
        match self {
            Read::Counter(_) => MetricType::Counter,
            Read::Gauge(_) => MetricType::Gauge,
            Read::Histogram(_) => MetricType::Histogram,
        }
    }

    fn encode<L: EncodeLabelSet>(&self, s: &S, m: &mut MetricEncoder, labels: &L) -> Fmt {
        match self {
            Read::Counter(get) => ConstCounter::new(get(s)).encode(m.encode_family(labels)?),
            Read::Gauge(get) => ConstGauge::new(get(s)).encode(m.encode_family(labels)?),
            Read::Histogram(get) => match get(s) {
                Some(h) => {
                    let (sum, count, buckets) = h.snapshot();
                    m.encode_family(labels)?
                        .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
                }
                None => Ok(()),
            },
        }
    }
}

/// Which series a family has, and where each value comes from.
pub enum Shape {
    /// One per core: `{core}`.
    Core(Read<CoreStats>),
    /// One per venue and core: `{exchange, market_type, core}`.
    Venue(Read<VenueStats>),
    /// One counter per venue, data type the venue offers (see
    /// [`VenueStats::offered`](super::VenueStats::offered)) and core:
    /// `{exchange, market_type, data_type, core}`, the market type of the
    /// data type.
    VenueDataType(fn(&VenueStats, DataType) -> u64),
    /// One counter per venue, value of one more label, and core:
    /// `{exchange, market_type, <label>, core}`.
    VenueBy {
        label: &'static str,
        /// How many values the label takes, and the `i`th.
        count: usize,
        value: fn(usize) -> &'static str,
        read: fn(&VenueStats, usize) -> u64,
    },
    /// One counter per core and value of one more label: `{<label>, core}`.
    CoreBy {
        label: &'static str,
        /// How many values the label takes, and the `i`th.
        count: usize,
        value: fn(usize) -> &'static str,
        read: fn(&CoreStats, usize) -> u64,
    },
    /// One unlabeled gauge of the whole process.
    Process(fn(&Exporter) -> i64),
}

/// One metric family: name (without the `marketprism_` prefix), help, shape.
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub shape: Shape,
}

impl Family {
    pub const fn core_counter(
        name: &'static str,
        help: &'static str,
        get: fn(&CoreStats) -> u64,
    ) -> Self {
        Family {
            name,
            help,
            shape: Shape::Core(Read::Counter(get)),
        }
    }

    pub const fn core_gauge(
        name: &'static str,
        help: &'static str,
        get: fn(&CoreStats) -> i64,
    ) -> Self {
        Family {
            name,
            help,
            shape: Shape::Core(Read::Gauge(get)),
        }
    }

    pub const fn core_histogram(
        name: &'static str,
        help: &'static str,
        get: fn(&CoreStats) -> Option<&LocalHistogram>,
    ) -> Self {
        Family {
            name,
            help,
            shape: Shape::Core(Read::Histogram(get)),
        }
    }

    pub const fn venue_counter(
        name: &'static str,
        help: &'static str,
        get: fn(&VenueStats) -> u64,
    ) -> Self {
        Family {
            name,
            help,
            shape: Shape::Venue(Read::Counter(get)),
        }
    }

    pub const fn venue_gauge(
        name: &'static str,
        help: &'static str,
        get: fn(&VenueStats) -> i64,
    ) -> Self {
        Family {
            name,
            help,
            shape: Shape::Venue(Read::Gauge(get)),
        }
    }

    pub const fn data_type_counter(
        name: &'static str,
        help: &'static str,
        get: fn(&VenueStats, DataType) -> u64,
    ) -> Self {
        Family {
            name,
            help,
            shape: Shape::VenueDataType(get),
        }
    }

    fn metric_type(&self) -> MetricType {
        match &self.shape {
            Shape::Core(r) => r.metric_type(),
            Shape::Venue(r) => r.metric_type(),
            Shape::VenueDataType(_) | Shape::VenueBy { .. } | Shape::CoreBy { .. } => {
                MetricType::Counter
            }
            Shape::Process(_) => MetricType::Gauge,
        }
    }

    /// Encodes the family over the exporter's cores and venues.
    pub fn encode(&self, ex: &Exporter, enc: &mut DescriptorEncoder) -> Fmt {
        let mut m = enc.encode_descriptor(self.name, self.help, None, self.metric_type())?;
        match &self.shape {
            Shape::Core(read) => {
                for c in ex.cores.iter() {
                    read.encode(c, &mut m, &[("core", core_label(c.shard))])?;
                }
            }
            Shape::Venue(read) => {
                for c in ex.cores.iter() {
                    for &v in &ex.venues {
                        let labels = [
                            ("exchange", v.exchange()),
                            ("market_type", v.market_type()),
                            ("core", core_label(c.shard)),
                        ];
                        read.encode(c.venue(v), &mut m, &labels)?;
                    }
                }
            }
            Shape::VenueDataType(get) => {
                for c in ex.cores.iter() {
                    for &v in &ex.venues {
                        let vs = c.venue(v);
                        // Only what the venue offers: no empty series for the rest.
                        for dt in DataType::ALL
                            .into_iter()
                            .filter(|&d| vs.offered.contains(d))
                        {
                            let labels = [
                                ("exchange", v.exchange()),
                                ("market_type", v.market_type_of(dt)),
                                ("data_type", dt.name()),
                                ("core", core_label(c.shard)),
                            ];
                            ConstCounter::new(get(vs, dt)).encode(m.encode_family(&labels)?)?;
                        }
                    }
                }
            }
            Shape::VenueBy {
                label,
                count,
                value,
                read,
            } => {
                for c in ex.cores.iter() {
                    for &v in &ex.venues {
                        for i in 0..*count {
                            let labels = [
                                ("exchange", v.exchange()),
                                ("market_type", v.market_type()),
                                (*label, value(i)),
                                ("core", core_label(c.shard)),
                            ];
                            ConstCounter::new(read(c.venue(v), i))
                                .encode(m.encode_family(&labels)?)?;
                        }
                    }
                }
            }
            Shape::CoreBy {
                label,
                count,
                value,
                read,
            } => {
                for c in ex.cores.iter() {
                    for i in 0..*count {
                        let labels = [(*label, value(i)), ("core", core_label(c.shard))];
                        ConstCounter::new(read(c, i)).encode(m.encode_family(&labels)?)?;
                    }
                }
            }
            Shape::Process(get) => ConstGauge::new(get(ex)).encode(m)?,
        }
        Ok(())
    }
}

/// Encodes every family of `table`, in order.
pub fn encode_all(table: &[Family], ex: &Exporter, enc: &mut DescriptorEncoder) -> Fmt {
    table.iter().try_for_each(|f| f.encode(ex, enc))
}
