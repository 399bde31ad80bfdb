//! Lifetime counters of the mock, served as JSON on `GET /mock/stats` so tests
//! can check what the collector actually did. Single-threaded (the mock runs on
//! one glommio executor), hence plain `Cell`s.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::binance::MalformedKind;
use super::MockSymbol;

/// Counter helper: `c.add(1)`.
pub(crate) trait Bump {
    fn add(&self, n: u64);
}

impl Bump for Cell<u64> {
    #[inline]
    fn add(&self, n: u64) {
        self.set(self.get().wrapping_add(n));
    }
}

/// All counters. `connections_*` count WebSocket sessions only (REST calls,
/// including polls of this endpoint, would otherwise perturb them).
#[derive(Default)]
pub(crate) struct Stats {
    pub connections_total: Cell<u64>,
    pub connections_open: Cell<u64>,
    pub trades_sent_total: Cell<u64>,
    /// Indexed like the mock's symbol list.
    pub trades_sent: Vec<Cell<u64>>,
    pub malformed_sent: Cell<u64>,
    pub malformed_by_kind: [Cell<u64>; 5],
    pub pings_sent: Cell<u64>,
    pub pongs_received: Cell<u64>,
    pub pongs_mismatched: Cell<u64>,
    pub pong_timeouts: Cell<u64>,
    /// SUBSCRIBE control messages received (accepted or not).
    pub subscribe_requests: Cell<u64>,
    /// Control messages answered with an error.
    pub control_rejected: Cell<u64>,
    /// Round trip of the Binance WebSocket pings answered (spot and USDⓈ-M).
    pub pong_rtt: RttHistogram,
}

/// Buckets of [`RttHistogram`]: exact below 8 µs, then 8 per power of two
/// (each at most 12.5 % wide) up to 2^24 µs (16.8 s); longer goes in the last
/// (its quantiles then read 2^24; `max` stays exact).
const RTT_BUCKETS: usize = 176;

/// Log-spaced, fixed-size histogram of round-trip times in whole µs: no
/// allocation per sample. Quantiles are reported as the (exclusive) upper
/// edge of their bucket, so "p99 = 80" means 99 % of the samples were
/// below 80 µs.
pub(crate) struct RttHistogram {
    counts: [Cell<u64>; RTT_BUCKETS],
    count: Cell<u64>,
    max_us: Cell<u64>,
}

impl Default for RttHistogram {
    fn default() -> Self {
        RttHistogram {
            counts: std::array::from_fn(|_| Cell::new(0)),
            count: Cell::new(0),
            max_us: Cell::new(0),
        }
    }
}

impl RttHistogram {
    fn bucket(us: u64) -> usize {
        if us < 8 {
            return us as usize;
        }
        let e = 63 - us.leading_zeros() as usize; // 2^e <= us, e >= 3
        let m = ((us >> (e - 3)) & 7) as usize;
        ((e - 2) * 8 + m).min(RTT_BUCKETS - 1)
    }

    /// Exclusive upper edge of bucket `i` in µs.
    fn edge(i: usize) -> u64 {
        if i < 8 {
            return i as u64 + 1;
        }
        let (e, m) = (i / 8 + 2, (i % 8) as u64);
        (9 + m) << (e - 3)
    }

    pub fn record(&self, rtt: std::time::Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.counts[Self::bucket(us)].add(1);
        self.count.add(1);
        self.max_us.set(self.max_us.get().max(us));
    }

    /// Upper bucket edge (µs) below which `permille`/1000 of the samples
    /// lie; 0 without samples.
    pub fn quantile(&self, permille: u64) -> u64 {
        let n = self.count.get();
        if n == 0 {
            return 0;
        }
        let target = (n * permille).div_ceil(1000).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.get();
            if seen >= target {
                return Self::edge(i);
            }
        }
        Self::edge(RTT_BUCKETS - 1)
    }

    pub fn reset(&self) {
        for c in &self.counts {
            c.set(0);
        }
        self.count.set(0);
        self.max_us.set(0);
    }

    /// `{"count":N,"p50":..,"p99":..,"p999":..,"max":..}` (µs; the
    /// quantiles are upper bucket edges, `max` is exact).
    pub fn to_json(&self, o: &mut String) {
        let _ = write!(
            o,
            "{{\"count\":{},\"p50\":{},\"p99\":{},\"p999\":{},\"max\":{}}}",
            self.count.get(),
            self.quantile(500),
            self.quantile(990),
            self.quantile(999),
            self.max_us.get()
        );
    }
}

impl Stats {
    pub fn new(symbols: usize) -> Stats {
        Stats {
            trades_sent: (0..symbols).map(|_| Cell::new(0)).collect(),
            ..Stats::default()
        }
    }

    pub fn count_trades(&self, symbol_index: usize, n: u64) {
        self.trades_sent_total.add(n);
        if let Some(c) = self.trades_sent.get(symbol_index) {
            c.add(n);
        }
    }

    pub fn count_malformed(&self, kind: MalformedKind) {
        self.malformed_sent.add(1);
        self.malformed_by_kind[kind.index()].add(1);
    }

    pub fn to_json(&self, symbols: &[MockSymbol]) -> String {
        let mut o = String::with_capacity(512);
        let _ = write!(
            o,
            "{{\"connections_total\":{},\"connections_open\":{},\"trades_sent_total\":{},\"trades_sent\":{{",
            self.connections_total.get(),
            self.connections_open.get(),
            self.trades_sent_total.get()
        );
        for (i, (sym, n)) in symbols.iter().zip(&self.trades_sent).enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(o, "\"{}\":{}", sym.symbol, n.get());
        }
        let _ = write!(
            o,
            "}},\"malformed_sent\":{},\"malformed_by_kind\":{{",
            self.malformed_sent.get()
        );
        for (i, kind) in MalformedKind::CYCLE.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(
                o,
                "\"{}\":{}",
                kind.name(),
                self.malformed_by_kind[kind.index()].get()
            );
        }
        let _ = write!(
            o,
            "}},\"pings_sent\":{},\"pongs_received\":{},\"pongs_mismatched\":{},\"pong_timeouts\":{},\"subscribe_requests\":{},\"control_rejected\":{},\"pong_rtt_us\":",
            self.pings_sent.get(),
            self.pongs_received.get(),
            self.pongs_mismatched.get(),
            self.pong_timeouts.get(),
            self.subscribe_requests.get(),
            self.control_rejected.get()
        );
        self.pong_rtt.to_json(&mut o);
        o.push('}');
        o
    }
}

/// Per-venue counters (keyed by venue config key; the OKX WebSocket endpoint
/// is shared by spot and swap, so its connection-level counters are under
/// `okx`, while subscriptions count under `okx_spot` / `okx_derivatives`).
#[derive(Default)]
pub(crate) struct VenueCounters {
    pub connections_total: u64,
    pub connections_open: u64,
    /// Subscribe requests accepted, per native symbol (any channel).
    pub subscriptions: BTreeMap<String, u64>,
    /// Subscriptions of a (channel, symbol) the same connection had already
    /// subscribed before (e.g. unsubscribe + subscribe to resync a book).
    pub resubscriptions: BTreeMap<String, u64>,
    pub unsubscriptions: BTreeMap<String, u64>,
    /// REST requests per path.
    pub rest: BTreeMap<String, u64>,
    /// Client keepalives: WS ping frames, text `ping`, `{"op":"ping"}`, `public/test`.
    pub pings_received: u64,
    /// Pongs answering the mock's pings / heartbeats.
    pub pongs_received: u64,
    pub pings_sent: u64,
    /// Faults injected, per `SYMBOL:kind`.
    pub faults: BTreeMap<String, u64>,
    /// Requests answered with the venue's error.
    pub rejected: u64,
}

fn push_map(o: &mut String, name: &str, m: &BTreeMap<String, u64>) {
    let _ = write!(o, "\"{name}\":{{");
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(o, "\"{}\":{v}", k.replace(['"', '\\'], "_"));
    }
    o.push('}');
}

/// All venues' counters.
#[derive(Default)]
pub(crate) struct VenueStats(RefCell<BTreeMap<&'static str, VenueCounters>>);

impl VenueStats {
    /// Counters for these keys exist (at zero) from the start, so the JSON
    /// shape does not depend on what happened.
    pub fn with_keys(keys: &[&'static str]) -> VenueStats {
        let s = VenueStats::default();
        for k in keys {
            s.with(k, |_| ());
        }
        s
    }

    pub fn with<R>(&self, venue: &'static str, f: impl FnOnce(&mut VenueCounters) -> R) -> R {
        f(self.0.borrow_mut().entry(venue).or_default())
    }

    pub fn to_json(&self) -> String {
        let mut o = String::with_capacity(1024);
        o.push('{');
        for (i, (k, c)) in self.0.borrow().iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(
                o,
                "\"{k}\":{{\"connections_total\":{},\"connections_open\":{},\"pings_received\":{},\"pongs_received\":{},\"pings_sent\":{},\"rejected\":{},",
                c.connections_total,
                c.connections_open,
                c.pings_received,
                c.pongs_received,
                c.pings_sent,
                c.rejected
            );
            push_map(&mut o, "subscriptions", &c.subscriptions);
            o.push(',');
            push_map(&mut o, "resubscriptions", &c.resubscriptions);
            o.push(',');
            push_map(&mut o, "unsubscriptions", &c.unsubscriptions);
            o.push(',');
            push_map(&mut o, "rest", &c.rest);
            o.push(',');
            push_map(&mut o, "faults", &c.faults);
            o.push('}');
        }
        o.push('}');
        o
    }
}

/// Adds one to a per-name counter.
pub(crate) fn bump(m: &mut BTreeMap<String, u64>, k: &str) {
    *m.entry(k.to_string()).or_default() += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::binance::default_symbols;

    #[test]
    fn json_shape() {
        let syms = &default_symbols()[..2];
        let s = Stats::new(2);
        s.connections_total.add(3);
        s.count_trades(1, 5);
        s.count_trades(7, 1); // out of range: only the total moves
        s.count_malformed(MalformedKind::WrongType);
        s.pings_sent.add(2);
        let j = s.to_json(syms);
        assert_eq!(
            j,
            "{\"connections_total\":3,\"connections_open\":0,\"trades_sent_total\":6,\
             \"trades_sent\":{\"BTCUSDT\":0,\"ETHUSDT\":5},\"malformed_sent\":1,\
             \"malformed_by_kind\":{\"truncated_json\":0,\"wrong_type\":1,\"unknown_event\":0,\
             \"invalid_number\":0,\"binary_frame\":0},\"pings_sent\":2,\"pongs_received\":0,\
             \"pongs_mismatched\":0,\"pong_timeouts\":0,\"subscribe_requests\":0,\"control_rejected\":0,\"pong_rtt_us\":{\"count\":0,\"p50\":0,\"p99\":0,\"p999\":0,\"max\":0}}"
        );
        let _: sonic_rs::Value = sonic_rs::from_str(&j).unwrap();
    }

    #[test]
    fn rtt_buckets() {
        // Contiguous: every value's bucket edges enclose it, and the buckets
        // are consecutive with no gap.
        let mut last = 0;
        for us in 0..100_000u64 {
            let b = RttHistogram::bucket(us);
            assert!(b == last || b == last + 1, "{us}");
            last = b;
            let lower = if b == 0 { 0 } else { RttHistogram::edge(b - 1) };
            assert!(
                lower <= us && us < RttHistogram::edge(b),
                "{us} in bucket {b}"
            );
        }
        assert_eq!(RttHistogram::edge(8), 9);
        assert_eq!(RttHistogram::edge(15), 16);
        assert_eq!(RttHistogram::edge(16), 18);
        assert_eq!(RttHistogram::bucket(1 << 30), RTT_BUCKETS - 1);
        assert_eq!(RttHistogram::edge(RTT_BUCKETS - 1), 1 << 24);
    }

    #[test]
    fn rtt_quantiles() {
        use std::time::Duration;
        let h = RttHistogram::default();
        // 1000 samples: 500 × 3 µs, 490 × 100 µs, 9 × 1 ms, 1 × 2.5 s.
        let us = |n: u64| Duration::from_micros(n);
        for _ in 0..500 {
            h.record(us(3));
        }
        for _ in 0..490 {
            h.record(Duration::from_nanos(100_900)); // whole µs: 100
        }
        for _ in 0..9 {
            h.record(us(1000));
        }
        h.record(us(2_500_000));
        let mut o = String::new();
        h.to_json(&mut o);
        // 3 µs is exact (edge 4); 100 µs is in [96, 104); 1000 in [960, 1024);
        // the 1000th sample alone is above p99.9.
        assert_eq!(
            o,
            "{\"count\":1000,\"p50\":4,\"p99\":104,\"p999\":1024,\"max\":2500000}"
        );
        h.record(us(5));
        assert_eq!(h.quantile(500), 6); // 501st of 1001: the 5 µs sample
        assert_eq!(h.quantile(1000), 2_621_440); // 2.5 s is in [2^21·1.125, 2^21·1.25)
        h.reset();
        let mut o = String::new();
        h.to_json(&mut o);
        assert_eq!(o, "{\"count\":0,\"p50\":0,\"p99\":0,\"p999\":0,\"max\":0}");
    }
}
