//! Subscriptions to the deterministic feeds and books of [`venues`], and the
//! one routine that turns what is due into WebSocket frames for any venue:
//! event streams send items `next..=available`; book streams send an initial
//! snapshot where the venue does, then every non-hidden update in order.

use super::book::BookFeed;
use super::venues::Chan;
use super::ws;
use super::{binance_book, binance_futures, bybit, deribit, okx, Shared};
use crate::model::VenueId;

/// Items taken from one subscription before moving to the next (fairness).
const BURST: u64 = 64;

/// One subscribed stream of a connection.
#[derive(Debug)]
pub(crate) struct FeedSub {
    pub venue: VenueId,
    /// `Some(channel)` for an event stream, `None` for the book.
    pub chan: Option<Chan>,
    /// Feed index (see [`venues::symbols`](super::venues::symbols)).
    pub idx: usize,
    /// The name the client used: Binance stream, OKX `channel:instId`, Bybit
    /// topic, Deribit channel. Used for unsubscribe and in frames.
    pub name: String,
    /// Native symbol (stats, frames).
    pub symbol: String,
    /// Next item / update number to send.
    pub next: u64,
    /// The first push must be a snapshot (books; Bybit linear tickers).
    pub fresh: bool,
    /// Accepted but never fed (Binance USDⓈ-M stream on the wrong route).
    pub silent: bool,
}

impl FeedSub {
    /// A subscription starting from "now": after what the feed has produced.
    pub fn new(
        shared: &Shared,
        venue: VenueId,
        chan: Option<Chan>,
        idx: usize,
        name: String,
        symbol: String,
    ) -> FeedSub {
        let mut s = FeedSub {
            venue,
            chan,
            idx,
            name,
            symbol,
            next: 1,
            fresh: false,
            silent: false,
        };
        match chan {
            Some(c) => {
                if let Some(m) = shared.feeds.market(venue, c) {
                    s.next = m.produced(idx).saturating_add(1);
                }
                s.fresh = venue == VenueId::BybitLinear && c == Chan::Ticker;
            }
            None => {
                let snapshots =
                    !matches!(venue, VenueId::BinanceSpot | VenueId::BinanceDerivatives);
                s.fresh = snapshots;
                if let Some(b) = shared.feeds.book(venue, idx) {
                    let mut b = b.borrow_mut();
                    b.catch_up();
                    s.next = b.n() + 1;
                    if !snapshots {
                        b.note_subscriber(s.next);
                    }
                }
            }
        }
        s
    }
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
fn write_event(shared: &Shared, s: &FeedSub, c: Chan, n: u64, combined: bool, o: &mut String) {
    let base = shared.opts.time_base_ms;
    let i = s.idx;
    match (s.venue, c) {
        (VenueId::BinanceSpot, Chan::BookTicker) => wrapped(o, combined, &s.name, |o| {
            binance_book::write_book_ticker(o, &shared.opts, i, n)
        }),
        (VenueId::BinanceDerivatives, c) => wrapped(o, combined, &s.name, |o| match c {
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
            Chan::Trade => deribit::write_trades(o, &s.name, i, n, base),
            Chan::Ticker => deribit::write_ticker(o, &s.name, i, n, base),
            _ => deribit::write_volatility(o, i, n, base),
        },
        _ => {}
    }
}

/// Appends the book snapshot a subscriber gets first (OKX, Bybit, Deribit).
fn write_book_snapshot(s: &FeedSub, f: &BookFeed, o: &mut String) {
    match s.venue {
        VenueId::OkxSpot | VenueId::OkxDerivatives => okx::write_books_snapshot(o, &s.symbol, f),
        VenueId::BybitSpot | VenueId::BybitLinear => {
            bybit::write_orderbook_snapshot(o, &s.name, &s.symbol, f)
        }
        VenueId::DeribitDerivatives => deribit::write_book_snapshot(o, &s.name, &s.symbol, f),
        _ => {}
    }
}

fn write_book_update(
    s: &FeedSub,
    f: &BookFeed,
    u: &super::book::Update,
    combined: bool,
    o: &mut String,
) {
    match s.venue {
        VenueId::BinanceSpot => wrapped(o, combined, &s.name, |o| {
            binance_book::write_depth_update(o, &s.symbol, f, u, false)
        }),
        VenueId::BinanceDerivatives => wrapped(o, combined, &s.name, |o| {
            binance_book::write_depth_update(o, &s.symbol, f, u, true)
        }),
        VenueId::OkxSpot | VenueId::OkxDerivatives => okx::write_books_update(o, &s.symbol, f, u),
        VenueId::BybitSpot | VenueId::BybitLinear => {
            bybit::write_orderbook_update(o, &s.name, &s.symbol, f, u)
        }
        VenueId::DeribitDerivatives => deribit::write_book_change(o, &s.name, &s.symbol, f, u),
    }
}

/// Appends due frames of every subscription (round robin, `BURST` items
/// each) until `cap` bytes; returns whether anything was written.
pub(crate) fn fill(
    shared: &Shared,
    subs: &mut [FeedSub],
    combined: bool,
    buf: &mut Vec<u8>,
    scratch: &mut String,
    cap: usize,
) -> bool {
    let mut any = false;
    loop {
        let mut progressed = false;
        for s in subs.iter_mut() {
            if s.silent || buf.len() >= cap {
                continue;
            }
            let mut sent = 0;
            match s.chan {
                Some(c) => {
                    let Some(m) = shared.feeds.market(s.venue, c) else {
                        continue;
                    };
                    let avail = m.available_up_to(s.idx, s.next);
                    while s.next <= avail && sent < BURST && buf.len() < cap {
                        scratch.clear();
                        write_event(shared, s, c, s.next, combined, scratch);
                        ws::write_frame(buf, ws::OP_TEXT, scratch.as_bytes());
                        s.fresh = false;
                        s.next += 1;
                        sent += 1;
                    }
                }
                None => {
                    let Some(cell) = shared.feeds.book(s.venue, s.idx) else {
                        continue;
                    };
                    let mut f = cell.borrow_mut();
                    if s.fresh {
                        f.catch_up();
                        scratch.clear();
                        write_book_snapshot(s, &f, scratch);
                        ws::write_frame(buf, ws::OP_TEXT, scratch.as_bytes());
                        s.next = f.n() + 1;
                        s.fresh = false;
                        sent += 1;
                    }
                    let avail = f.pull(s.next);
                    if s.next < f.oldest() {
                        // Fell out of the history: the client sees a gap.
                        s.next = f.oldest();
                    }
                    while s.next <= avail && sent < BURST && buf.len() < cap {
                        if let Some(u) = f.update(s.next) {
                            if !u.hidden {
                                scratch.clear();
                                write_book_update(s, &f, u, combined, scratch);
                                ws::write_frame(buf, ws::OP_TEXT, scratch.as_bytes());
                            }
                        }
                        s.next += 1;
                        sent += 1;
                    }
                }
            }
            if sent > 0 {
                progressed = true;
            }
        }
        any |= progressed;
        if !progressed || buf.len() >= cap {
            return any;
        }
    }
}

/// Whether any subscription is paced by a clock and not finished (the
/// writer then polls at a short interval instead of sleeping long;
/// on-demand feeds are filled on every pass anyway).
pub(crate) fn active(shared: &Shared, subs: &[FeedSub]) -> bool {
    subs.iter().any(|s| {
        if s.silent {
            return false;
        }
        match s.chan {
            Some(c) => shared
                .feeds
                .market(s.venue, c)
                .is_some_and(|m| m.rate() > 0 && !m.exhausted(s.next)),
            None => shared.feeds.book(s.venue, s.idx).is_some_and(|b| {
                let b = b.borrow();
                b.rate() > 0 && !b.exhausted(s.next)
            }),
        }
    })
}
