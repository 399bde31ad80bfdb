//! The venues the mock speaks besides Binance spot trades: their config keys,
//! native symbol tables, the per-(venue, channel) deterministic event
//! producers and the per-(venue, symbol) book processes, all owned by one
//! [`Feeds`] registry in the mock's shared state.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use super::binance::Market;
use super::book::{mix, BookFeed, BookSpec, FaultKind};
use super::{okx, MockOptions};
use crate::model::VenueId;

/// Book faults that make sense for a venue's sequencing.
pub fn supports(v: VenueId, f: FaultKind) -> bool {
    use FaultKind::*;
    match v {
        VenueId::BinanceSpot | VenueId::BinanceDerivatives => {
            matches!(f, Gap | StaleSnapshot | Crossed)
        }
        VenueId::OkxSpot | VenueId::OkxDerivatives => {
            matches!(f, Gap | SeqReset | Keepalive | BadChecksum | Crossed)
        }
        VenueId::BybitSpot | VenueId::BybitLinear => matches!(f, Gap | Snapshot | U1 | Crossed),
        VenueId::DeribitDerivatives => matches!(f, Gap | Crossed),
    }
}

/// The number that seeds a venue's books: its place in the mock's venue list
/// as it was first written (Deribit last), so every book stays the same
/// sequence whatever order [`VenueId`] lists the venues in.
fn seed_index(v: VenueId) -> u64 {
    match v {
        VenueId::BinanceSpot => 0,
        VenueId::BinanceDerivatives => 1,
        VenueId::OkxSpot => 2,
        VenueId::OkxDerivatives => 3,
        VenueId::BybitSpot => 4,
        VenueId::BybitLinear => 5,
        VenueId::DeribitDerivatives => 6,
    }
}

pub use super::chan::Chan;

/// USDⓈ-M, Bybit spot/linear native symbols (base, quote).
pub const BTC_ETH_USDT: [(&str, &str, &str); 2] =
    [("BTCUSDT", "BTC", "USDT"), ("ETHUSDT", "ETH", "USDT")];

/// Deribit perpetuals.
pub const DERIBIT_INSTRUMENTS: [&str; 2] = ["BTC-PERPETUAL", "ETH-PERPETUAL"];

/// Deribit volatility indices.
pub const DERIBIT_VOL_INDICES: [&str; 2] = ["btc_usd", "eth_usd"];

/// The (feed index, native symbol) pairs of a venue. The index is what the
/// venue module's pure functions take: the position in the venue's own table
/// (for OKX the position in [`okx::instrument`]'s table, spot 0-1, swap 2-3,
/// then the extra pairs; for
/// Binance spot the position in `MockOptions::symbols`).
pub fn symbols(opts: &MockOptions, v: VenueId) -> Vec<(usize, String)> {
    match v {
        VenueId::BinanceSpot => opts
            .symbols
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.symbol.clone()))
            .collect(),
        VenueId::BinanceDerivatives | VenueId::BybitSpot | VenueId::BybitLinear => BTC_ETH_USDT
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.0.to_string()))
            .collect(),
        VenueId::OkxSpot | VenueId::OkxDerivatives => okx::listed(opts.okx_extra_pairs)
            .filter(|(_, i)| i.swap == (v == VenueId::OkxDerivatives))
            .map(|(k, i)| (k, i.inst_id.to_string()))
            .collect(),
        VenueId::DeribitDerivatives => DERIBIT_INSTRUMENTS
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.to_string()))
            .collect(),
    }
}

/// Feed index of a native symbol on a venue (exact, case-sensitive).
pub fn find(opts: &MockOptions, v: VenueId, native: &str) -> Option<usize> {
    symbols(opts, v)
        .into_iter()
        .find(|(_, s)| s == native)
        .map(|(i, _)| i)
}

/// Price level of a symbol's book: BTC near 30000, ETH near 2000, others
/// small and distinct.
fn mid_whole(native: &str, idx: usize) -> i64 {
    if native.starts_with("BTC") {
        30_000
    } else if native.starts_with("ETH") && !native.ends_with("BTC") {
        2_000
    } else {
        10 + 7 * idx as i64
    }
}

/// The book of (venue, symbol): formatting per venue as the real one prints.
pub fn book_spec(opts: &MockOptions, v: VenueId, idx: usize, native: &str) -> BookSpec {
    let btc = native.starts_with("BTC");
    // (price decimals, tick in price units, quantity decimals, quantity step)
    let (price_dp, tick, qty_dp, qty_step): (u32, i64, u32, u64) = match v {
        VenueId::BinanceSpot => (8, if btc { 1_000_000 } else { 100_000 }, 8, 10_000),
        VenueId::BinanceDerivatives => (2, if btc { 10 } else { 1 }, 3, 1),
        VenueId::OkxSpot => (if btc { 1 } else { 2 }, 1, 8, 100_000),
        VenueId::OkxDerivatives => (if btc { 1 } else { 2 }, 1, 0, 1),
        VenueId::BybitSpot => (2, if btc { 10 } else { 1 }, 6, 100),
        VenueId::BybitLinear => (2, if btc { 10 } else { 1 }, 3, 1),
        VenueId::DeribitDerivatives => {
            if btc {
                (1, 5, 1, 100)
            } else {
                (2, 5, 1, 10)
            }
        }
    };
    let seed = mix(seed_index(v) * 1_000_003 + idx as u64 + 1);
    BookSpec {
        mid: mid_whole(native, idx) * 10i64.pow(price_dp),
        tick,
        price_dp,
        qty_step,
        qty_dp,
        depth: opts.book_depth.max(1),
        seed,
        first_id: 1_000_000_000 + (seed % 1000) * 1_000_000,
        okx_checksum: opts.okx_checksum,
        auto_fault: opts.book_fault_every.filter(|(_, k)| supports(v, *k)),
    }
}

/// All producers of one mock.
pub(crate) struct Feeds {
    books: HashMap<(VenueId, usize), RefCell<BookFeed>>,
    markets: HashMap<(VenueId, Chan), Market>,
}

impl Feeds {
    pub fn new(opts: &MockOptions, start: Instant) -> Feeds {
        let mut books = HashMap::new();
        for v in VenueId::ALL {
            for (i, native) in symbols(opts, v) {
                let spec = book_spec(opts, v, i, &native);
                books.insert(
                    (v, i),
                    RefCell::new(BookFeed::new(
                        spec,
                        opts.time_base_ms,
                        opts.book_rate,
                        opts.book_updates,
                    )),
                );
            }
        }
        let n = opts.symbols.len().max(okx::count(opts.okx_extra_pairs));
        let mut markets = HashMap::new();
        use Chan::*;
        let chans: &[(VenueId, &[Chan])] = &[
            (VenueId::BinanceSpot, &[BookTicker]),
            (
                VenueId::BinanceDerivatives,
                &[AggTrade, BookTicker, MarkPrice, ForceOrder],
            ),
            (
                VenueId::OkxSpot,
                &[Trade, Ticker, Funding, OpenInterest, Liquidation],
            ),
            (
                VenueId::OkxDerivatives,
                &[Trade, Ticker, Funding, OpenInterest, Liquidation],
            ),
            (VenueId::BybitSpot, &[Trade, Ticker]),
            (VenueId::BybitLinear, &[Trade, Ticker, Liquidation]),
            (VenueId::DeribitDerivatives, &[Trade, Ticker, Volatility]),
        ];
        for (v, cs) in chans {
            for c in cs.iter() {
                markets.insert(
                    (*v, *c),
                    Market::new(n, opts.event_rate, opts.events_per_stream, start),
                );
            }
        }
        Feeds { books, markets }
    }

    pub fn book(&self, v: VenueId, idx: usize) -> Option<&RefCell<BookFeed>> {
        self.books.get(&(v, idx))
    }

    pub fn market(&self, v: VenueId, c: Chan) -> Option<&Market> {
        self.markets.get(&(v, c))
    }
}
