//! The mock's venue table: every fact of a venue the generic mock code
//! needs besides its own module (`okx`, `bybit`, …) and its control dialect:
//! book faults it supports, native symbol tables, book formats, the event
//! channels it streams and how its frames are written (which writer of its
//! module a stream's item, book snapshot or update goes to). The
//! per-(venue, channel) deterministic event producers and per-(venue,
//! symbol) book processes are owned by one `Feeds` registry in the mock's
//! shared state.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use super::binance::Market;
use super::book::{mix, BookFeed, BookSpec, FaultKind, Update};
use super::{binance_book, binance_futures, bybit, deribit, okx, MockOptions};
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
        VenueId::BinanceDerivatives => binance_futures::SYMBOLS
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.0.to_string()))
            .collect(),
        VenueId::BybitSpot | VenueId::BybitLinear => bybit::SYMBOLS
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.0.to_string()))
            .collect(),
        VenueId::OkxSpot | VenueId::OkxDerivatives => okx::listed(opts.okx_extra_pairs)
            .filter(|(_, i)| i.swap == (v == VenueId::OkxDerivatives))
            .map(|(k, i)| (k, i.inst_id.to_string()))
            .collect(),
        VenueId::DeribitDerivatives => deribit::INSTRUMENTS
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

/// One subscribed stream, as the frame writers below see it.
pub(crate) struct Stream<'a> {
    pub venue: VenueId,
    /// Feed index (see [`symbols`]).
    pub idx: usize,
    /// The name the client subscribed (Binance stream, OKX `channel:instId`,
    /// Bybit topic, Deribit channel).
    pub name: &'a str,
    /// Native symbol.
    pub symbol: &'a str,
    /// The next push is the stream's first (a snapshot where the venue sends one).
    pub fresh: bool,
}

/// Appends Binance spot `bookTicker` event `n` of the symbol at `sym_idx`
/// of `opts.symbols`, priced around its book.
fn write_spot_book_ticker(o: &mut String, opts: &MockOptions, sym_idx: usize, n: u64) {
    let Some(sym) = opts.symbols.get(sym_idx) else {
        return;
    };
    let spec = book_spec(opts, VenueId::BinanceSpot, sym_idx, &sym.symbol);
    binance_book::write_book_ticker(o, &spec, &sym.symbol, n);
}

/// Binance spot `bookTicker` event `n` of the symbol at `sym_idx` of
/// `opts.symbols` (raw, unwrapped).
pub fn spot_book_ticker(opts: &MockOptions, sym_idx: usize, n: u64) -> String {
    let mut o = String::new();
    write_spot_book_ticker(&mut o, opts, sym_idx, n);
    o
}

/// Whether the first push of event channel `c` is a snapshot (Bybit linear
/// tickers: snapshot, then deltas).
pub fn snapshot_first(v: VenueId, c: Chan) -> bool {
    v == VenueId::BybitLinear && c == Chan::Ticker
}

/// Whether a book subscriber gets a snapshot on the WebSocket first (Binance:
/// no, its books start from a REST snapshot).
pub fn book_snapshot_on_ws(v: VenueId) -> bool {
    !matches!(v, VenueId::BinanceSpot | VenueId::BinanceDerivatives)
}

/// Binance combined-stream wrapper around a raw event written by `body`.
fn wrapped(o: &mut String, combined: bool, stream: &str, body: impl FnOnce(&mut String)) {
    if combined {
        o.push_str("{\"stream\":\"");
        o.push_str(stream);
        o.push_str("\",\"data\":");
        body(o);
        o.push('}');
    } else {
        body(o);
    }
}

/// Appends the frame text of event item `n` of `s`.
pub(crate) fn write_event(
    opts: &MockOptions,
    s: &Stream,
    c: Chan,
    n: u64,
    combined: bool,
    o: &mut String,
) {
    let base = opts.time_base_ms;
    let i = s.idx;
    match (s.venue, c) {
        (VenueId::BinanceSpot, Chan::BookTicker) => wrapped(o, combined, s.name, |o| {
            write_spot_book_ticker(o, opts, i, n)
        }),
        (VenueId::BinanceDerivatives, c) => wrapped(o, combined, s.name, |o| match c {
            Chan::AggTrade => binance_futures::write_agg_trade(o, i, n, base),
            Chan::MarkPrice => binance_futures::write_mark_price(o, i, n, base),
            Chan::ForceOrder => binance_futures::write_force_order(o, i, n, base),
            _ => binance_futures::write_book_ticker(o, i, n, base),
        }),
        (VenueId::OkxSpot | VenueId::OkxDerivatives, c) => match c {
            Chan::Trade => okx::write_trade(o, i, n, base),
            Chan::Ticker => okx::write_ticker(o, i, n, base),
            Chan::Funding => okx::write_funding(o, i, n, base),
            Chan::OpenInterest => okx::write_open_interest(o, i, n, base),
            _ => okx::write_liquidation(o, n, base),
        },
        (VenueId::BybitSpot | VenueId::BybitLinear, c) => {
            let cat = if s.venue == VenueId::BybitSpot {
                bybit::Cat::Spot
            } else {
                bybit::Cat::Linear
            };
            match c {
                Chan::Trade => bybit::write_trade(o, cat, i, n, base),
                Chan::Ticker => bybit::write_ticker(o, cat, i, n, base, s.fresh),
                _ => bybit::write_liquidation(o, i, n, base),
            }
        }
        (VenueId::DeribitDerivatives, c) => match c {
            Chan::Trade => deribit::write_trades(o, s.name, i, n, base),
            Chan::Ticker => deribit::write_ticker(o, s.name, i, n, base),
            _ => deribit::write_volatility(o, i, n, base),
        },
        _ => {}
    }
}

/// Appends the book snapshot a subscriber gets first (OKX, Bybit, Deribit).
pub(crate) fn write_book_snapshot(s: &Stream, f: &BookFeed, o: &mut String) {
    match s.venue {
        VenueId::OkxSpot | VenueId::OkxDerivatives => okx::write_books_snapshot(o, s.symbol, f),
        VenueId::BybitSpot | VenueId::BybitLinear => {
            bybit::write_orderbook_snapshot(o, s.name, s.symbol, f)
        }
        VenueId::DeribitDerivatives => deribit::write_book_snapshot(o, s.name, s.symbol, f),
        _ => {}
    }
}

/// Appends a book update as the venue streams it.
pub(crate) fn write_book_update(
    s: &Stream,
    f: &BookFeed,
    u: &Update,
    combined: bool,
    o: &mut String,
) {
    match s.venue {
        VenueId::BinanceSpot => wrapped(o, combined, s.name, |o| {
            binance_book::write_depth_update(o, s.symbol, f, u, false)
        }),
        VenueId::BinanceDerivatives => wrapped(o, combined, s.name, |o| {
            binance_book::write_depth_update(o, s.symbol, f, u, true)
        }),
        VenueId::OkxSpot | VenueId::OkxDerivatives => okx::write_books_update(o, s.symbol, f, u),
        VenueId::BybitSpot | VenueId::BybitLinear => {
            bybit::write_orderbook_update(o, s.name, s.symbol, f, u)
        }
        VenueId::DeribitDerivatives => deribit::write_book_change(o, s.name, s.symbol, f, u),
    }
}
