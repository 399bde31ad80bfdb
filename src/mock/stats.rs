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
            "}},\"pings_sent\":{},\"pongs_received\":{},\"pongs_mismatched\":{},\"pong_timeouts\":{},\"subscribe_requests\":{},\"control_rejected\":{}}}",
            self.pings_sent.get(),
            self.pongs_received.get(),
            self.pongs_mismatched.get(),
            self.pong_timeouts.get(),
            self.subscribe_requests.get(),
            self.control_rejected.get()
        );
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
             \"pongs_mismatched\":0,\"pong_timeouts\":0,\"subscribe_requests\":0,\"control_rejected\":0}"
        );
        let _: sonic_rs::Value = sonic_rs::from_str(&j).unwrap();
    }
}
