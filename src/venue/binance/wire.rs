//! Binance combined-stream frames → records or book messages, for spot and
//! USDⓈ-M alike (same envelope, same one-letter field names). **This is where
//! a Binance frame becomes a record.**
//!
//! A combined frame wraps each event: `{"stream":"btcusdt@trade","data":{...}}`.
//! Documented payloads (spot docs "Trade Streams" etc.; USDⓈ-M "Websocket
//! Market Streams"), each one a test below or in `tests/venue_binance.rs`:
//!
//! | event | example | becomes |
//! |---|---|---|
//! | `trade` (spot) | `{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}` | `Trade`, id `t` |
//! | `aggTrade` | `{"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100","nq":"100","f":100,"l":105,"T":123456785,"m":true}` | `Trade`, id `a` |
//! | `depthUpdate` | `{"e":"depthUpdate","E":123456789,"T":123456788,"s":"BTCUSDT","U":157,"u":160,"pu":149,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}` | `BookMsg` (`pu` USDⓈ-M only) |
//! | `bookTicker` | spot `{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}` (no `e`, no time); USDⓈ-M adds `e`,`E`,`T` | `Ticker` |
//! | `markPriceUpdate` | `{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","ap":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}` | `FundingRate` |
//! | `forceOrder` | `{"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014","T":1568014460893}}` | `Liquidation` |
//! | `serverShutdown` | `{"e":"serverShutdown","E":1770123456789}` | `Notice` (rotate) |
//!
//! `m` = "is the buyer the market maker", so the taker sold when `m` is true.
//! Control answers have no `stream`: `{"result":null,"id":1}`, errors either
//! `{"code":2,"msg":"..."}` or (live servers) `{"error":{"code":2,"msg":"..."},"id":1}`.
//!
//! Parsing is one sonic-rs pass over the borrowed `&str`: a hand-written
//! visitor (the one-letter keys mean different things per event: `a` is an
//! aggregate trade id, an ask price or the ask levels) that writes book
//! levels straight into the reused [`BookMsg`] vectors, so no frame allocates.
//! Decimals go straight from the received string to `rust_decimal` (never f64).

use crate::batch::{
    Batch, FundingRate, Level, Liquidation, Origin, Record, Ticker, Trade, TradeId,
};
use crate::book::BookMsg;
use crate::model::{Side, VenueId};
use crate::venue::flat::{Scalar, Scanner};
use crate::venue::{FrameOutcome, InstrumentMap, Malformed};
use rust_decimal::Decimal;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// Parses one text frame of `venue` into `batch` (records) or `book` (a
/// depth update; the caller applies it when [`FrameOutcome::Book`] is returned).
pub fn on_frame(
    text: &str,
    receive_ns: u64,
    venue: VenueId,
    instruments: &InstrumentMap,
    book: &mut BookMsg,
    batch: &mut Batch,
) -> FrameOutcome {
    on_frame_with(
        Reader::Layout,
        text,
        receive_ns,
        venue,
        instruments,
        book,
        batch,
    )
}

/// Which readers a frame may take: benches compare them, and the fuzz
/// suite holds the fast ones to [`Reader::Serde`] (same outcome, same
/// records). The protocol always uses [`Reader::Layout`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The trade layout reader, then the flat scanner, then serde.
    Layout,
    /// The flat scanner, then serde.
    Flat,
    /// sonic-rs typed serde only.
    Serde,
}

/// [`on_frame`] with a choice of readers.
#[doc(hidden)]
pub fn on_frame_with(
    reader: Reader,
    text: &str,
    receive_ns: u64,
    venue: VenueId,
    instruments: &InstrumentMap,
    book: &mut BookMsg,
    batch: &mut Batch,
) -> FrameOutcome {
    let cx = Cx {
        venue,
        receive_ns,
        instruments,
    };
    parse(text, &cx, reader, book, batch)
}

fn parse(
    text: &str,
    cx: &Cx<'_>,
    reader: Reader,
    book: &mut BookMsg,
    batch: &mut Batch,
) -> FrameOutcome {
    book.clear();
    // Flat events (trades, tickers, funding) take the fast scanner; anything
    // it declines (book levels, control answers, odd JSON) the full parser.
    let fast = match reader {
        Reader::Layout => trade_layout(text).or_else(|| flat_frame(text)),
        Reader::Flat => flat_frame(text),
        Reader::Serde => None,
    };
    if let Some((stream, data)) = fast {
        return dispatch(cx, stream, &data, false, book, batch);
    }
    on_frame_full(text, cx, book, batch)
}

/// The full serde parser (frames the fast scanner declines).
fn on_frame_full(text: &str, cx: &Cx<'_>, book: &mut BookMsg, batch: &mut Batch) -> FrameOutcome {
    if crate::venue::json::too_deep(text.as_bytes()) {
        return FrameOutcome::Malformed(Malformed::BadJson);
    }
    let mut bad_level = false;
    let mut de = sonic_rs::Deserializer::from_str(text);
    let parsed = FrameSeed {
        book: &mut *book,
        bad_level: &mut bad_level,
    }
    .deserialize(&mut de)
    .and_then(|f| de.end().map(|()| f));
    let frame = match parsed {
        Ok(f) => f,
        Err(e) => return FrameOutcome::Malformed(json_error(&e)),
    };
    let (stream, data) = match (frame.stream, frame.data) {
        (Some(s), Some(d)) => (s, d),
        (None, None) if frame.error => return FrameOutcome::ControlError,
        (None, None) => {
            // A raw (non-combined) event: only the shutdown notice is expected.
            return match frame.event {
                Some("serverShutdown") => FrameOutcome::Notice,
                None => FrameOutcome::Control,
                Some(_) => FrameOutcome::Malformed(Malformed::UnknownEvent),
            };
        }
        _ => return FrameOutcome::Malformed(Malformed::WrongType),
    };
    dispatch(cx, stream, &data, bad_level, book, batch)
}

/// A combined-stream event → record or book message, by its `e`.
fn dispatch(
    cx: &Cx<'_>,
    stream: &str,
    data: &Event<'_>,
    bad_level: bool,
    book: &mut BookMsg,
    batch: &mut Batch,
) -> FrameOutcome {
    match data.event {
        Some("trade") => {
            let Some(id) = data.trade_id else {
                return FrameOutcome::Malformed(Malformed::WrongType);
            };
            trade(cx, data, id, batch)
        }
        Some("aggTrade") => {
            let Field::Num(id) = data.a else {
                return FrameOutcome::Malformed(Malformed::WrongType);
            };
            trade(cx, data, id, batch)
        }
        Some("depthUpdate") if is_diff_depth(stream) => depth(cx, data, bad_level, book),
        Some("bookTicker") => ticker(cx, data, batch),
        // Spot bookTicker payloads carry no `e`.
        None if stream.ends_with("@bookTicker") => ticker(cx, data, batch),
        Some("markPriceUpdate") => funding(cx, data, batch),
        Some("forceOrder") => liquidation(cx, data, batch),
        Some("serverShutdown") => FrameOutcome::Notice,
        _ => FrameOutcome::Malformed(Malformed::UnknownEvent),
    }
}

/// A trade or aggregate trade in the exact layout Binance writes (docs and
/// recorded sessions: compact, keys in this order), read literal by literal;
/// any difference (another event, key order, whitespace, escapes) is `None`
/// and [`flat_frame`] reads the frame. It accepts a subset of what
/// `flat_frame` accepts and fills the same [`Event`]: `nq`, `f`, `l` and
/// `M`, which `flat_event` ignores, must be scalars of their documented type.
/// Why: trades are most of the volume, and a compare per member is about
/// half the cost of scanning each key and matching it.
fn trade_layout(text: &str) -> Option<(&str, Event<'_>)> {
    let mut sc = Scanner::new(text);
    sc.literal(br#"{"stream":""#)?;
    let stream = sc.string_rest()?;
    sc.literal(br#","data":{"e":""#)?;
    let mut ev = Event::empty();
    let event = sc.string_rest()?;
    ev.event = Some(event);
    let agg = match event {
        "trade" => false,
        "aggTrade" => true,
        _ => return None,
    };
    sc.literal(br#","E":"#)?;
    ev.event_time = Some(sc.number()?);
    sc.literal(br#","s":""#)?;
    ev.symbol = Some(sc.string_rest()?);
    if agg {
        sc.literal(br#","a":"#)?;
        ev.a = Field::Num(sc.number()?);
    } else {
        sc.literal(br#","t":"#)?;
        ev.trade_id = Some(sc.number()?);
    }
    sc.literal(br#","p":""#)?;
    ev.price = Some(sc.string_rest()?);
    sc.literal(br#","q":""#)?;
    ev.quantity = Some(sc.string_rest()?);
    if agg {
        // USDⓈ-M adds the notional `nq`; spot does not.
        if sc.literal(br#","nq":""#).is_some() {
            sc.string_rest()?;
        }
        sc.literal(br#","f":"#)?;
        sc.number()?;
        sc.literal(br#","l":"#)?;
        sc.number()?;
    }
    sc.literal(br#","T":"#)?;
    ev.time = Some(sc.number()?);
    sc.literal(br#","m":"#)?;
    ev.buyer_is_maker = Some(sc.boolean()?);
    if sc.literal(br#","M":"#).is_some() {
        sc.boolean()?;
    }
    sc.literal(b"}}")?;
    sc.end()?;
    Some((stream, ev))
}

/// `{"stream":"…","data":{flat event}}` read by the fast scanner, or `None`
/// (the full parser decides). Reads each key exactly as [`EventSeed`] does;
/// a value of another type than that key's declines, so the full parser
/// reports it.
fn flat_frame(text: &str) -> Option<(&str, Event<'_>)> {
    let mut sc = Scanner::new(text);
    let mut stream = None;
    let mut data = None;
    sc.object(|key, sc| {
        match key {
            "stream" => stream = Some(sc.string()?),
            "data" => data = Some(flat_event(sc)?),
            // Control answers and raw events: the full parser's.
            _ => return None,
        }
        Some(())
    })?;
    sc.end()?;
    Some((stream?, data?))
}

/// The `data` object of [`flat_frame`].
fn flat_event<'a>(sc: &mut Scanner<'a>) -> Option<Event<'a>> {
    let mut ev = Event::empty();
    sc.object(|key, sc| {
        let v = sc.scalar()?;
        let (s, n, flag) = match v {
            Scalar::Str(s) => (Some(s), None, None),
            Scalar::U64(n) => (None, Some(n), None),
            Scalar::Bool(b) => (None, None, Some(b)),
        };
        match key {
            "e" => ev.event = Some(s?),
            "E" => ev.event_time = Some(n?),
            "T" => ev.time = Some(n?),
            "s" => ev.symbol = Some(s?),
            "t" => ev.trade_id = Some(n?),
            "p" => ev.price = Some(s?),
            "q" => ev.quantity = Some(s?),
            "m" => ev.buyer_is_maker = Some(flag?),
            "U" => ev.first_update = Some(n?),
            "u" => ev.last_update = Some(n?),
            "pu" => ev.prev_update = Some(i64::try_from(n?).ok()?),
            "A" => ev.ask_qty = Some(s?),
            "B" => ev.bid_qty = Some(s?),
            "r" => ev.funding_rate = Some(s?),
            "i" => ev.index_price = Some(s?),
            "a" | "b" => {
                let f = match v {
                    Scalar::Str(s) => Field::Str(s),
                    Scalar::U64(n) => Field::Num(n),
                    Scalar::Bool(_) => return None,
                };
                if key == "a" {
                    ev.a = f;
                } else {
                    ev.b = f;
                }
            }
            // `forceOrder`'s `o` must be an object (the full parser reports
            // a scalar there).
            "o" => return None,
            _ => {}
        }
        Some(())
    })?;
    Some(ev)
}

/// Spot trade-path entry for callers without a [`crate::venue::ParseCtx`]
/// (benches): book messages are parsed into a throwaway [`BookMsg`], which
/// allocates only for depth frames. The protocol uses [`on_frame`].
pub fn on_text(
    text: &str,
    receive_ns: u64,
    instruments: &InstrumentMap,
    batch: &mut Batch,
) -> FrameOutcome {
    let mut book = BookMsg::default();
    on_frame(
        text,
        receive_ns,
        VenueId::BinanceSpot,
        instruments,
        &mut book,
        batch,
    )
}

/// A sonic-rs error → why the frame was rejected.
pub(super) fn json_error(e: &sonic_rs::Error) -> Malformed {
    if e.is_unmatched_type() {
        Malformed::WrongType
    } else {
        Malformed::BadJson
    }
}

/// `<sym>@depth` / `<sym>@depth@100ms` (a diff stream), not the partial
/// `<sym>@depth5@100ms` (USDⓈ-M partial books are `depthUpdate`s too).
fn is_diff_depth(stream: &str) -> bool {
    match stream.find("@depth") {
        Some(i) => {
            let rest = &stream[i + "@depth".len()..];
            rest.is_empty() || rest.starts_with('@')
        }
        None => false,
    }
}

struct Cx<'i> {
    venue: VenueId,
    receive_ns: u64,
    instruments: &'i InstrumentMap,
}

fn trade(cx: &Cx<'_>, ev: &Event<'_>, id: u64, batch: &mut Batch) -> FrameOutcome {
    let (Some(raw_symbol), Some(p), Some(q), Some(t), Some(m)) =
        (ev.symbol, ev.price, ev.quantity, ev.time, ev.buyer_is_maker)
    else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    let (Some(price), Some(quantity)) = (decimal(p), decimal(q)) else {
        return FrameOutcome::Malformed(Malformed::InvalidNumber);
    };
    let Some(symbol) = cx.instruments.normalize(raw_symbol) else {
        return FrameOutcome::Malformed(Malformed::UnknownSymbol);
    };
    let venue = cx.venue;
    let receive_ns = cx.receive_ns;
    let pushed = batch.push_with::<()>(receive_ns, |bump| {
        Ok(Record::Trade(Trade {
            venue,
            symbol: bump.alloc_str(symbol),
            raw_symbol: bump.alloc_str(raw_symbol),
            trade_id: TradeId::Num(id),
            price,
            quantity,
            side: if m { Side::Sell } else { Side::Buy },
            contracts: None,
            is_maker: Some(m),
            trade_ts_ms: t,
            seq: Some(id),
            backfilled: false,
            ts_ms: ev.event_time.unwrap_or(t),
            receive_ts_ns: receive_ns,
        }))
    });
    match pushed {
        Ok(()) => FrameOutcome::Records(1),
        Err(()) => FrameOutcome::Malformed(Malformed::WrongType),
    }
}

/// `depthUpdate` → `book` (levels were written during the parse).
fn depth(cx: &Cx<'_>, ev: &Event<'_>, bad_level: bool, book: &mut BookMsg) -> FrameOutcome {
    let (Some(raw_symbol), Some(first), Some(last), Field::Levels, Field::Levels) =
        (ev.symbol, ev.first_update, ev.last_update, ev.b, ev.a)
    else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    // USDⓈ-M continuity is `pu == previous u`: without it the book cannot sync.
    if cx.venue == VenueId::BinanceDerivatives && ev.prev_update.is_none() {
        return FrameOutcome::Malformed(Malformed::WrongType);
    }
    if bad_level {
        return FrameOutcome::Malformed(Malformed::InvalidNumber);
    }
    if cx.instruments.get(raw_symbol).is_none() {
        return FrameOutcome::Malformed(Malformed::UnknownSymbol);
    }
    book.raw_symbol.push_str(raw_symbol);
    book.snapshot = false;
    book.first_id = first;
    book.last_id = last;
    book.prev_id = ev.prev_update;
    book.ts_ms = ev.event_time.unwrap_or(cx.receive_ns / 1_000_000);
    FrameOutcome::Book
}

/// `bookTicker`: spot sends no time at all (→ receive time), USDⓈ-M sends `E`.
fn ticker(cx: &Cx<'_>, ev: &Event<'_>, batch: &mut Batch) -> FrameOutcome {
    let (Some(raw_symbol), Some(u), Field::Str(b), Some(bq), Field::Str(a), Some(aq)) = (
        ev.symbol,
        ev.last_update,
        ev.b,
        ev.bid_qty,
        ev.a,
        ev.ask_qty,
    ) else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    let (Some(bid), Some(bid_qty), Some(ask), Some(ask_qty)) =
        (decimal(b), decimal(bq), decimal(a), decimal(aq))
    else {
        return FrameOutcome::Malformed(Malformed::InvalidNumber);
    };
    let Some(symbol) = cx.instruments.normalize(raw_symbol) else {
        return FrameOutcome::Malformed(Malformed::UnknownSymbol);
    };
    let (venue, receive_ns) = (cx.venue, cx.receive_ns);
    let ts_ms = ev.event_time.unwrap_or(receive_ns / 1_000_000);
    push(batch, receive_ns, |bump| {
        Record::Ticker(Ticker {
            origin: Origin {
                venue,
                symbol: bump.alloc_str(symbol),
                raw_symbol: bump.alloc_str(raw_symbol),
                ts_ms,
                receive_ts_ns: receive_ns,
            },
            bid_price: Some(bid),
            bid_quantity: Some(bid_qty),
            ask_price: Some(ask),
            ask_quantity: Some(ask_qty),
            last_price: None,
            update_id: Some(u),
        })
    })
}

/// `markPriceUpdate`: `r` is the rate settled at `T` (the next funding time).
fn funding(cx: &Cx<'_>, ev: &Event<'_>, batch: &mut Batch) -> FrameOutcome {
    let (Some(raw_symbol), Some(r), Some(e)) = (ev.symbol, ev.funding_rate, ev.event_time) else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    // Delivery contracts (in `!markPrice@arr`) carry `"r":""`: no funding.
    if r.is_empty() {
        return FrameOutcome::Ignored;
    }
    let Some(rate) = signed_decimal(r) else {
        return FrameOutcome::Malformed(Malformed::InvalidNumber);
    };
    let (mark, index) = match (opt_decimal(ev.price), opt_decimal(ev.index_price)) {
        (Ok(m), Ok(i)) => (m, i),
        _ => return FrameOutcome::Malformed(Malformed::InvalidNumber),
    };
    let Some(symbol) = cx.instruments.normalize(raw_symbol) else {
        return FrameOutcome::Malformed(Malformed::UnknownSymbol);
    };
    let (venue, receive_ns) = (cx.venue, cx.receive_ns);
    let next = ev.time.filter(|&t| t > 0);
    push(batch, receive_ns, |bump| {
        Record::Funding(FundingRate {
            origin: Origin {
                venue,
                symbol: bump.alloc_str(symbol),
                raw_symbol: bump.alloc_str(raw_symbol),
                ts_ms: e,
                receive_ts_ns: receive_ns,
            },
            funding_rate: rate,
            estimated_rate: None,
            funding_ts_ms: None,
            next_funding_ts_ms: next,
            mark_price: mark,
            index_price: index,
        })
    })
}

/// `forceOrder`: `S` is the liquidation **order** side (a SELL closes a long).
/// Price: the average fill price `ap` where it is non-zero (what was actually
/// paid, and what MarketPrism publishes), else the order price `p`.
fn liquidation(cx: &Cx<'_>, ev: &Event<'_>, batch: &mut Batch) -> FrameOutcome {
    let Some(o) = &ev.order else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    let (Some(raw_symbol), Some(s), Some(p), Some(q), Some(t)) =
        (o.symbol, o.side, o.price, o.quantity, o.time)
    else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    let (side, position_side) = match s {
        "SELL" => (Side::Sell, "long"),
        "BUY" => (Side::Buy, "short"),
        _ => return FrameOutcome::Malformed(Malformed::WrongType),
    };
    let (Some(order_price), Some(quantity), Ok(avg)) =
        (decimal(p), decimal(q), opt_decimal(o.avg_price))
    else {
        return FrameOutcome::Malformed(Malformed::InvalidNumber);
    };
    let price = match avg {
        Some(ap) if !ap.is_zero() => ap,
        _ => order_price,
    };
    let Some(symbol) = cx.instruments.normalize(raw_symbol) else {
        return FrameOutcome::Malformed(Malformed::UnknownSymbol);
    };
    let (venue, receive_ns) = (cx.venue, cx.receive_ns);
    let ts_ms = ev.event_time.unwrap_or(t);
    push(batch, receive_ns, |bump| {
        Record::Liquidation(Liquidation {
            origin: Origin {
                venue,
                symbol: bump.alloc_str(symbol),
                raw_symbol: bump.alloc_str(raw_symbol),
                ts_ms,
                receive_ts_ns: receive_ns,
            },
            side,
            position_side: Some(position_side),
            price,
            quantity,
            contracts: None,
            liquidation_ts_ms: t,
        })
    })
}

/// Pushes one record built by `f` (which copies strings into the arena).
#[inline]
pub(super) fn push(
    batch: &mut Batch,
    receive_ns: u64,
    f: impl for<'b> FnOnce(&'b bumpalo::Bump) -> Record<'b>,
) -> FrameOutcome {
    match batch.push_with::<()>(receive_ns, |bump| Ok(f(bump))) {
        Ok(()) => FrameOutcome::Records(1),
        Err(()) => FrameOutcome::Malformed(Malformed::WrongType),
    }
}

/// Exact decimal from the venue's string; negative values are not prices or sizes.
#[inline]
pub(super) fn decimal(s: &str) -> Option<Decimal> {
    let d = crate::venue::json::exact_decimal(s)?;
    if d.is_sign_negative() {
        return None;
    }
    Some(d)
}

/// Exact decimal that may be negative (funding rates).
#[inline]
pub(super) fn signed_decimal(s: &str) -> Option<Decimal> {
    crate::venue::json::exact_decimal(s)
}

/// An optional non-negative decimal: absent is fine, present must parse.
#[inline]
fn opt_decimal(s: Option<&str>) -> Result<Option<Decimal>, ()> {
    match s {
        None => Ok(None),
        Some(s) => decimal(s).map(Some).ok_or(()),
    }
}

// ---------------------------------------------------------------------------
// The one-pass deserializer.
// ---------------------------------------------------------------------------

/// Envelope of a frame. Unknown keys are skipped.
struct Frame<'a> {
    stream: Option<&'a str>,
    data: Option<Event<'a>>,
    /// `error` or `code` present: a control error answer.
    error: bool,
    /// Top-level `e` (raw, non-combined event).
    event: Option<&'a str>,
}

/// A value of the keys whose type depends on the event (`a`, `b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field<'a> {
    Absent,
    Str(&'a str),
    Num(u64),
    /// Levels written into the book message.
    Levels,
}

/// Union of the event fields read (the event type decides which are required).
struct Event<'a> {
    event: Option<&'a str>,
    event_time: Option<u64>,
    /// `T`: trade time, transaction time or next funding time.
    time: Option<u64>,
    symbol: Option<&'a str>,
    trade_id: Option<u64>,
    /// aggTrade id / bookTicker ask price / depth asks.
    a: Field<'a>,
    /// bookTicker bid price / depth bids.
    b: Field<'a>,
    ask_qty: Option<&'a str>,
    bid_qty: Option<&'a str>,
    /// `p`: trade price or mark price.
    price: Option<&'a str>,
    quantity: Option<&'a str>,
    buyer_is_maker: Option<bool>,
    first_update: Option<u64>,
    last_update: Option<u64>,
    prev_update: Option<i64>,
    funding_rate: Option<&'a str>,
    index_price: Option<&'a str>,
    order: Option<ForceOrder<'a>>,
}

impl Event<'_> {
    fn empty() -> Self {
        Event {
            event: None,
            event_time: None,
            time: None,
            symbol: None,
            trade_id: None,
            a: Field::Absent,
            b: Field::Absent,
            ask_qty: None,
            bid_qty: None,
            price: None,
            quantity: None,
            buyer_is_maker: None,
            first_update: None,
            last_update: None,
            prev_update: None,
            funding_rate: None,
            index_price: None,
            order: None,
        }
    }
}

/// `forceOrder.o`. Unknown fields are ignored.
#[derive(Deserialize)]
struct ForceOrder<'a> {
    #[serde(rename = "s", borrow, default)]
    symbol: Option<&'a str>,
    #[serde(rename = "S", borrow, default)]
    side: Option<&'a str>,
    #[serde(rename = "q", borrow, default)]
    quantity: Option<&'a str>,
    #[serde(rename = "p", borrow, default)]
    price: Option<&'a str>,
    #[serde(rename = "ap", borrow, default)]
    avg_price: Option<&'a str>,
    #[serde(rename = "T", default)]
    time: Option<u64>,
}

struct FrameSeed<'v> {
    book: &'v mut BookMsg,
    bad_level: &'v mut bool,
}

impl<'de> DeserializeSeed<'de> for FrameSeed<'_> {
    type Value = Frame<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Frame<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FrameSeed<'_> {
    type Value = Frame<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Binance stream frame")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Frame<'de>, M::Error> {
        let mut frame = Frame {
            stream: None,
            data: None,
            error: false,
            event: None,
        };
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "stream" => frame.stream = Some(map.next_value()?),
                "data" => {
                    frame.data = Some(map.next_value_seed(EventSeed {
                        book: &mut *self.book,
                        bad_level: &mut *self.bad_level,
                    })?)
                }
                "error" | "code" => {
                    map.next_value::<IgnoredAny>()?;
                    frame.error = true;
                }
                "e" => frame.event = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(frame)
    }
}

struct EventSeed<'v> {
    book: &'v mut BookMsg,
    bad_level: &'v mut bool,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = Event<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Event<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_> {
    type Value = Event<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Binance event object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Event<'de>, M::Error> {
        let mut ev = Event::empty();
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "e" => ev.event = Some(map.next_value()?),
                "E" => ev.event_time = Some(map.next_value()?),
                "T" => ev.time = Some(map.next_value()?),
                "s" => ev.symbol = Some(map.next_value()?),
                "t" => ev.trade_id = Some(map.next_value()?),
                "p" => ev.price = Some(map.next_value()?),
                "q" => ev.quantity = Some(map.next_value()?),
                "m" => ev.buyer_is_maker = Some(map.next_value()?),
                "U" => ev.first_update = Some(map.next_value()?),
                "u" => ev.last_update = Some(map.next_value()?),
                "pu" => ev.prev_update = Some(map.next_value()?),
                "A" => ev.ask_qty = Some(map.next_value()?),
                "B" => ev.bid_qty = Some(map.next_value()?),
                "r" => ev.funding_rate = Some(map.next_value()?),
                "i" => ev.index_price = Some(map.next_value()?),
                "a" => {
                    ev.a = map.next_value_seed(FieldSeed {
                        levels: &mut self.book.asks,
                        bad_level: &mut *self.bad_level,
                    })?
                }
                "b" => {
                    ev.b = map.next_value_seed(FieldSeed {
                        levels: &mut self.book.bids,
                        bad_level: &mut *self.bad_level,
                    })?
                }
                "o" => ev.order = map.next_value_seed(OrderSeed)?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ev)
    }
}

/// `a` / `b`: a string, a number, or an array of levels (written to `levels`).
struct FieldSeed<'v> {
    levels: &'v mut Vec<Level>,
    bad_level: &'v mut bool,
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Field<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Field<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, an unsigned integer or an array of [price, quantity]")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Field<'de>, E> {
        Ok(Field::Str(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field<'de>, E> {
        Ok(Field::Num(v))
    }

    fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Field<'de>, S::Error> {
        LevelsSeed {
            out: self.levels,
            bad_level: self.bad_level,
        }
        .visit_seq(seq)?;
        Ok(Field::Levels)
    }
}

/// `[["price","qty"], ...]` appended to `out`; a level that is not an exact
/// non-negative decimal sets `bad_level` (the parse goes on, the caller rejects).
pub(super) struct LevelsSeed<'v> {
    pub out: &'v mut Vec<Level>,
    pub bad_level: &'v mut bool,
}

impl<'de> DeserializeSeed<'de> for LevelsSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LevelsSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of [price, quantity]")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        while let Some(LevelStr(p, q)) = seq.next_element()? {
            match (decimal(p), decimal(q)) {
                (Some(price), Some(quantity)) => self.out.push(Level { price, quantity }),
                _ => *self.bad_level = true,
            }
        }
        Ok(())
    }
}

/// One `["price","qty"]` pair (extra elements are ignored).
struct LevelStr<'a>(&'a str, &'a str);

impl<'de> Deserialize<'de> for LevelStr<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LevelStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[price, quantity]")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<LevelStr<'de>, S::Error> {
                let (Some(p), Some(q)) = (seq.next_element()?, seq.next_element()?) else {
                    return Err(de::Error::invalid_length(0, &self));
                };
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LevelStr(p, q))
            }
        }
        d.deserialize_seq(V)
    }
}

/// `o`: the force order object, or anything else (24hrTicker's `o` is the
/// open price) → `None`.
struct OrderSeed;

impl<'de> DeserializeSeed<'de> for OrderSeed {
    type Value = Option<ForceOrder<'de>>;
    fn deserialize<D: de::Deserializer<'de>>(
        self,
        d: D,
    ) -> Result<Option<ForceOrder<'de>>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for OrderSeed {
    type Value = Option<ForceOrder<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a force order object")
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
        ForceOrder::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
    }

    fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instruments() -> InstrumentMap {
        let mut m = InstrumentMap::default();
        m.insert("BNBBTC", "BNB", "BTC", true);
        m.insert("BTCUSDT", "BTC", "USDT", true);
        m
    }

    fn one(text: &str) -> (FrameOutcome, Option<String>) {
        let mut b = Batch::new(4, 4096);
        let out = on_text(text, 42, &instruments(), &mut b);
        let rec = b.iter().next().map(|r| format!("{r:?}"));
        (out, rec)
    }

    /// The documented example, wrapped as a combined stream frame.
    const DOC_TRADE: &str = r#"{"stream":"bnbbtc@trade","data":{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}}"#;

    #[test]
    fn documented_trade_becomes_a_record() {
        let mut b = Batch::new(4, 4096);
        assert_eq!(
            on_text(DOC_TRADE, 7, &instruments(), &mut b),
            FrameOutcome::Records(1)
        );
        let Some(Record::Trade(t)) = b.iter().next() else {
            panic!("no record")
        };
        assert_eq!(t.symbol, "BNB-BTC");
        assert_eq!(t.raw_symbol, "BNBBTC");
        assert_eq!(t.trade_id, TradeId::Num(12345));
        assert_eq!(t.price.to_string(), "0.001");
        assert_eq!(t.quantity.to_string(), "100");
        assert_eq!(
            t.side,
            Side::Sell,
            "m:true means the buyer was maker: taker sold"
        );
        assert_eq!(t.is_maker, Some(true));
        assert_eq!(t.trade_ts_ms, 1672515782136);
        assert_eq!(t.ts_ms, 1672515782136);
        assert_eq!(t.receive_ts_ns, 7);
    }

    #[test]
    fn keeps_trailing_zeros_and_buy_side() {
        let f = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"64000.10000000","q":"0.00100000","T":1,"m":false,"M":true,"x":"new field"}}"#;
        let mut b = Batch::new(4, 4096);
        assert_eq!(
            on_text(f, 1, &instruments(), &mut b),
            FrameOutcome::Records(1)
        );
        let Some(Record::Trade(t)) = b.iter().next() else {
            panic!()
        };
        assert_eq!(t.price.to_string(), "64000.10000000");
        assert_eq!(t.quantity.to_string(), "0.00100000");
        assert_eq!(t.side, Side::Buy);
        assert_eq!((t.trade_ts_ms, t.ts_ms), (1, 2));
    }

    #[test]
    fn more_digits_than_f64_survive() {
        let f = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"0.1000000000000000055511151231","q":"1","T":1,"m":false}}"#;
        let mut b = Batch::new(4, 4096);
        assert_eq!(
            on_text(f, 1, &instruments(), &mut b),
            FrameOutcome::Records(1)
        );
        let Some(Record::Trade(t)) = b.iter().next() else {
            panic!()
        };
        assert_eq!(t.price.to_string(), "0.1000000000000000055511151231");
    }

    #[test]
    fn control_frames() {
        assert_eq!(one(r#"{"result":null,"id":1}"#).0, FrameOutcome::Control);
        assert_eq!(
            one(r#"{"result":["btcusdt@trade"],"id":"abc"}"#).0,
            FrameOutcome::Control
        );
        assert_eq!(
            one(r#"{"code": 2, "msg": "Invalid request: too many parameters"}"#).0,
            FrameOutcome::ControlError
        );
        assert_eq!(
            one(r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":1}"#).0,
            FrameOutcome::ControlError
        );
    }

    #[test]
    fn malformed_frames_are_classified_and_push_nothing() {
        let cases = [
            (
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":17"#,
                Malformed::BadJson,
            ),
            ("not json", Malformed::BadJson),
            ("", Malformed::BadJson),
            (
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":123.45,"q":"1","T":1,"m":false}}"#,
                Malformed::WrongType,
            ),
            (
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":"9","p":"1","q":"1","T":1,"m":false}}"#,
                Malformed::WrongType,
            ),
            (
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","p":"1","q":"1","T":1,"m":false}}"#,
                Malformed::WrongType,
            ),
            (
                r#"{"stream":"btcusdt@weird","data":{"e":"weird","E":1}}"#,
                Malformed::UnknownEvent,
            ),
            (
                r#"{"stream":"btcusdt@trade","data":{"E":1}}"#,
                Malformed::UnknownEvent,
            ),
            (
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"12.3.4","q":"1","T":1,"m":false}}"#,
                Malformed::InvalidNumber,
            ),
            (
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"1e5","q":"1","T":1,"m":false}}"#,
                Malformed::InvalidNumber,
            ),
            (
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"-1","q":"1","T":1,"m":false}}"#,
                Malformed::InvalidNumber,
            ),
            (
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"1","q":"99999999999999999999999999999999","T":1,"m":false}}"#,
                Malformed::InvalidNumber,
            ),
            (
                r#"{"stream":"dogeusdt@trade","data":{"e":"trade","E":2,"s":"DOGEUSDT","t":9,"p":"1","q":"1","T":1,"m":false}}"#,
                Malformed::UnknownSymbol,
            ),
            (r#"{"stream":"btcusdt@trade"}"#, Malformed::WrongType),
            (r#"[1,2,3]"#, Malformed::WrongType),
        ];
        for (text, want) in cases {
            let (out, rec) = one(text);
            assert_eq!(out, FrameOutcome::Malformed(want), "{text}");
            assert_eq!(rec, None, "{text}");
        }
    }

    #[test]
    fn escaped_strings_are_rejected_not_panicking() {
        let f = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTC\u0055SDT","t":9,"p":"1","q":"1","T":1,"m":false}}"#;
        assert!(matches!(one(f).0, FrameOutcome::Malformed(_)));
    }

    /// Both parsers on `text`: outcome, records and book message.
    fn both(text: &str, venue: VenueId) -> [(FrameOutcome, Vec<String>, String); 2] {
        let map = instruments();
        let run = |full: bool| {
            let mut book = BookMsg::default();
            let mut b = Batch::new(4, 4096);
            let out = if full {
                on_frame_with(Reader::Serde, text, 3, venue, &map, &mut book, &mut b)
            } else {
                on_frame(text, 3, venue, &map, &mut book, &mut b)
            };
            let recs = b.iter().map(|r| format!("{r:?}")).collect();
            let book = if out == FrameOutcome::Book {
                format!("{book:?}")
            } else {
                String::new()
            };
            (out, recs, book)
        };
        [run(false), run(true)]
    }

    #[test]
    fn fast_scanner_takes_flat_events_and_agrees_with_the_full_parser() {
        let flat = [
            DOC_TRADE,
            r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100","f":100,"l":105,"T":123456785,"m":true}}"#,
            r#"{"stream":"bnbbtc@bookTicker","data":{"u":400900217,"s":"BNBBTC","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}"#,
            r#" {"data":{"m":false,"T":1,"q":"1","p":"2","t":9,"s":"BTCUSDT","E":2,"e":"trade"} , "stream":"btcusdt@trade"} "#,
        ];
        for f in flat {
            assert!(flat_frame(f).is_some(), "{f}");
        }
        // Trades in Binance's own layout (docs, a recorded spot session,
        // USDⓈ-M with `nq`) take the literal reader.
        let layout = [
            DOC_TRADE,
            flat[1],
            r#"{"stream":"nknusdt@aggTrade","data":{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000","q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false,"M":true}}"#,
            r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":123456789,"s":"BTCUSDT","a":5933014,"p":"0.001","q":"100","nq":"0.1","f":100,"l":105,"T":123456785,"m":true}}"#,
        ];
        for f in layout {
            assert!(trade_layout(f).is_some(), "{f}");
        }
        assert!(trade_layout(flat[3]).is_none());
        // Every cut and every one-byte change of these frames: whatever the
        // fast scanner accepts reads exactly as the full parser reads it.
        let mut frames: Vec<String> = flat
            .iter()
            .chain(&layout[2..])
            .map(|s| s.to_string())
            .collect();
        frames.push(r#"{"stream":"bnbbtc@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BNBBTC","U":157,"u":160,"pu":149,"b":[["0.0024","10"]],"a":[]}}"#.into());
        frames.push(r#"{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"SELL","q":"1","p":"2","ap":"2","T":1}}}"#.into());
        let mut checked = 0;
        for f in &frames {
            let mut variants = Vec::new();
            for i in 0..=f.len() {
                if f.is_char_boundary(i) {
                    variants.push(f[..i].to_string());
                    for rep in [
                        "", "\\", "\"", "0", "-", ".", "e", "x", " ", "{", "[", "}", ",", "t", "n",
                    ] {
                        let mut v = f[..i].to_string();
                        v.push_str(rep);
                        v.push_str(&f[i..]);
                        variants.push(v.clone());
                        if let Some(c) = f[i..].chars().next() {
                            let mut w = f[..i].to_string();
                            w.push_str(rep);
                            w.push_str(&f[i + c.len_utf8()..]);
                            variants.push(w);
                        }
                    }
                }
            }
            for v in variants {
                for venue in [VenueId::BinanceSpot, VenueId::BinanceDerivatives] {
                    let [fast, full] = both(&v, venue);
                    assert_eq!(fast, full, "{venue} {v}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    fn book_of(text: &str, venue: VenueId) -> (FrameOutcome, BookMsg) {
        let mut book = BookMsg::default();
        let mut b = Batch::new(4, 4096);
        let out = on_frame(text, 5_000_000, venue, &instruments(), &mut book, &mut b);
        assert!(b.is_empty());
        (out, book)
    }

    #[test]
    fn documented_spot_depth_update_becomes_a_book_message() {
        let f = r#"{"stream":"bnbbtc@depth@100ms","data":{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}}"#;
        let (out, book) = book_of(f, VenueId::BinanceSpot);
        assert_eq!(out, FrameOutcome::Book);
        assert_eq!(book.raw_symbol, "BNBBTC");
        assert!(!book.snapshot);
        assert_eq!(
            (book.first_id, book.last_id, book.prev_id),
            (157, 160, None)
        );
        assert_eq!(book.ts_ms, 1672515782136);
        assert_eq!(book.bids, vec![Level::new(dec("0.0024"), dec("10"))]);
        assert_eq!(book.asks, vec![Level::new(dec("0.0026"), dec("100"))]);
    }

    #[test]
    fn futures_depth_needs_pu_and_keeps_it() {
        let f = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":123456789,"T":123456788,"s":"BTCUSDT","U":157,"u":160,"pu":149,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}}"#;
        let (out, book) = book_of(f, VenueId::BinanceDerivatives);
        assert_eq!(out, FrameOutcome::Book);
        assert_eq!(book.prev_id, Some(149));
        let no_pu = f.replace(r#","pu":149"#, "");
        assert_eq!(
            book_of(&no_pu, VenueId::BinanceDerivatives).0,
            FrameOutcome::Malformed(Malformed::WrongType)
        );
    }

    #[test]
    fn depth_rejections() {
        let cases = [
            // a bad level anywhere rejects the frame
            (
                r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1","x"]],"a":[]}}"#,
                Malformed::InvalidNumber,
            ),
            (
                r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1"]],"a":[]}}"#,
                Malformed::WrongType,
            ),
            (
                r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[[1,2]],"a":[]}}"#,
                Malformed::WrongType,
            ),
            (
                r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","u":2,"b":[],"a":[]}}"#,
                Malformed::WrongType,
            ),
            (
                r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":"1","a":[]}}"#,
                Malformed::WrongType,
            ),
            (
                r#"{"stream":"ethusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":1,"u":2,"b":[],"a":[]}}"#,
                Malformed::UnknownSymbol,
            ),
            // a partial book stream is not a diff stream
            (
                r#"{"stream":"btcusdt@depth5@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[],"a":[]}}"#,
                Malformed::UnknownEvent,
            ),
            (
                r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1","2"]],"a":[["1","2"]"#,
                Malformed::BadJson,
            ),
        ];
        for (f, want) in cases {
            assert_eq!(
                book_of(f, VenueId::BinanceSpot).0,
                FrameOutcome::Malformed(want),
                "{f}"
            );
        }
    }

    #[test]
    fn a_book_message_reuses_its_vectors() {
        let mut book = BookMsg::default();
        let mut b = Batch::new(4, 4096);
        let map = instruments();
        let f = r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1","2"],["3","4"]],"a":[["5","6"]]}}"#;
        assert_eq!(
            on_frame(f, 0, VenueId::BinanceSpot, &map, &mut book, &mut b),
            FrameOutcome::Book
        );
        let (bp, ap) = (book.bids.as_ptr(), book.asks.as_ptr());
        assert_eq!(
            on_frame(f, 0, VenueId::BinanceSpot, &map, &mut book, &mut b),
            FrameOutcome::Book
        );
        assert_eq!((book.bids.len(), book.asks.len()), (2, 1));
        assert_eq!((book.bids.as_ptr(), book.asks.as_ptr()), (bp, ap));
    }

    #[test]
    fn spot_book_ticker_uses_receive_time() {
        let f = r#"{"stream":"bnbbtc@bookTicker","data":{"u":400900217,"s":"BNBBTC","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}}"#;
        let mut b = Batch::new(4, 4096);
        assert_eq!(
            on_text(f, 1_700_000_000_123_456_789, &instruments(), &mut b),
            FrameOutcome::Records(1)
        );
        let Some(Record::Ticker(t)) = b.iter().next() else {
            panic!()
        };
        assert_eq!(t.origin.ts_ms, 1_700_000_000_123);
        assert_eq!(t.update_id, Some(400900217));
        assert_eq!(t.bid_price.unwrap().to_string(), "25.35190000");
        assert_eq!(t.ask_quantity.unwrap().to_string(), "40.66000000");
    }

    #[test]
    fn shutdown_and_raw_events() {
        assert_eq!(
            one(r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}"#)
                .0,
            FrameOutcome::Notice
        );
        assert_eq!(
            one(r#"{"e":"serverShutdown","E":1770123456789}"#).0,
            FrameOutcome::Notice
        );
        assert_eq!(
            one(r#"{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"1","q":"1","T":1,"m":false}"#).0,
            FrameOutcome::Malformed(Malformed::UnknownEvent)
        );
        // 24hrTicker: `o` is a price string, `b`/`a` strings; unknown, not wrong.
        assert_eq!(
            one(r#"{"stream":"bnbbtc@ticker","data":{"e":"24hrTicker","E":1672515782136,"s":"BNBBTC","p":"0.0015","P":"250.00","w":"0.0018","x":"0.0009","c":"0.0025","Q":"10","b":"0.0024","B":"10","a":"0.0026","A":"100","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18","O":0,"C":86400000,"F":0,"L":18150,"n":18151}}"#).0,
            FrameOutcome::Malformed(Malformed::UnknownEvent)
        );
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }
}
