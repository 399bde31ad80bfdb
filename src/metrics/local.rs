//! Single-writer counters, gauges and histograms: one core writes each (a
//! plain load+store on a relaxed atomic, no locked read-modify-write), the
//! scrape reads them.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// A counter with a single writer (its core).
#[derive(Debug, Default)]
pub struct LocalCounter(AtomicU64);

impl LocalCounter {
    #[inline]
    pub fn add(&self, n: u64) {
        // Single writer: a plain load+store avoids the locked RMW instruction.
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }
    #[inline]
    pub fn inc(&self) {
        self.add(1)
    }
    /// Mirrors a total kept elsewhere by the same thread.
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed)
    }
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A gauge with a single writer.
#[derive(Debug, Default)]
pub struct LocalGauge(AtomicI64);

impl LocalGauge {
    #[inline]
    pub fn set(&self, v: i64) {
        self.0.store(v, Relaxed)
    }
    #[inline]
    pub fn add(&self, d: i64) {
        self.0.store(self.0.load(Relaxed) + d, Relaxed)
    }
    #[inline]
    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// A fixed-bucket histogram with a single writer. Values are integers in the
/// histogram's base unit (ns, records); dividing by `divisor` converts them
/// for export (a division keeps bounds like 1 µs exact: "0.000001").
#[derive(Debug)]
pub struct LocalHistogram {
    bounds: &'static [u64],
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    count: AtomicU64,
    divisor: f64,
}

/// Latency buckets in ns: 1 µs … 10 s.
pub const LATENCY_BOUNDS_NS: &[u64] = &[
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    15_000_000,
    20_000_000,
    25_000_000,
    30_000_000,
    40_000_000,
    50_000_000,
    75_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    10_000_000_000,
];

/// Equal values observed in a row, held as one (value, count) until a
/// different one comes or [`Run::flush`]: one bucket search per run. Values
/// repeat where one clock read serves several events (the acks of one
/// read, the records of one socket read).
#[derive(Debug, Default, Clone, Copy)]
pub struct Run {
    v: u64,
    n: u64,
}

impl Run {
    #[inline]
    pub fn add(&mut self, h: &LocalHistogram, v: u64) {
        if self.n > 0 && self.v == v {
            self.n += 1;
            return;
        }
        self.flush(h);
        *self = Run { v, n: 1 };
    }

    /// Observes the held run, if any, into `h`.
    #[inline]
    pub fn flush(&mut self, h: &LocalHistogram) {
        if self.n > 0 {
            h.observe_n(self.v, self.n);
            self.n = 0;
        }
    }
}

/// Parse-latency buckets in ns: 100 ns … 10 ms (the target is p99 < 5 µs).
pub const PARSE_BOUNDS_NS: &[u64] = &[
    100, 250, 500, 750, 1_000, 1_500, 2_000, 3_000, 5_000, 10_000, 25_000, 100_000, 1_000_000,
    10_000_000,
];

/// Batch-size buckets in records.
pub const BATCH_BOUNDS: &[u64] = &[1, 4, 16, 64, 256, 1024, 4096, 16384, 65536];

impl LocalHistogram {
    pub fn new(bounds: &'static [u64], divisor: f64) -> Self {
        LocalHistogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
            divisor,
        }
    }

    #[inline]
    pub fn observe(&self, v: u64) {
        self.observe_n(v, 1);
    }

    /// Observes `now - stamp` for each stamp, one bucket search per run of
    /// equal stamps (the records of one socket read share a receive stamp).
    #[inline]
    pub fn observe_ages(&self, now: u64, stamps: impl IntoIterator<Item = u64>) {
        let mut run = Run::default();
        for t in stamps {
            run.add(self, now.saturating_sub(t));
        }
        run.flush(self);
    }

    /// Observes `v` `n` times (frames that share one measured latency).
    #[inline]
    pub fn observe_n(&self, v: u64, n: u64) {
        // The first buckets one by one (a parse time lands there, on
        // branches that predict), the rest by binary search: as a search
        // from the start, each step waited on the last, per frame.
        let head = self.bounds.len().min(4);
        let i = match self.bounds[..head].iter().position(|&b| b >= v) {
            Some(i) => i,
            None => head + self.bounds[head..].partition_point(|&b| b < v),
        };
        let b = &self.buckets[i];
        b.store(b.load(Relaxed) + n, Relaxed);
        self.sum.store(
            self.sum.load(Relaxed).wrapping_add(v.wrapping_mul(n)),
            Relaxed,
        );
        self.count.store(self.count.load(Relaxed) + n, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// (upper bound in export units, non-cumulative count), `+Inf` last.
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut out = Vec::with_capacity(self.buckets.len());
        for (i, b) in self.buckets.iter().enumerate() {
            let upper = self
                .bounds
                .get(i)
                .map(|&x| x as f64 / self.divisor)
                .unwrap_or(f64::INFINITY);
            out.push((upper, b.load(Relaxed)));
        }
        (
            self.sum.load(Relaxed) as f64 / self.divisor,
            self.count(),
            out,
        )
    }

    /// Upper bound (export units) of the bucket holding quantile `q`.
    pub fn quantile_upper_bound(&self, q: f64) -> Option<f64> {
        let (_, count, buckets) = self.snapshot();
        if count == 0 {
            return None;
        }
        let target = (q * count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (upper, n) in buckets {
            seen += n;
            if seen >= target {
                return Some(upper);
            }
        }
        None
    }
}
