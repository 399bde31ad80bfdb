//! Bybit v5 public frames → records. **This is where a Bybit frame becomes a
//! record** (or a book message).
//!
//! Every data frame is `{"topic":..,"type":"snapshot"|"delta","ts":..,"data":..}`
//! (key order varies: never relied on). Documented examples:
//! - trade `{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617}]}`:
//!   `S` taker side, `i` trade id, `T` fill time; several trades per message.
//! - book `{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":..,"data":{"s":..,"b":[["16493.50","0.006"]],"a":[..],"u":18521288,"seq":..},"cts":..}`:
//!   `type` snapshot → full book, delta → absolute sizes ("0" deletes); `u` update id.
//! - liquidation `{"topic":"allLiquidation.ROSEUSDT","type":"snapshot","ts":..,"data":[{"T":..,"s":"ROSEUSDT","S":"Sell","v":"20000","p":"0.04499"}]}`:
//!   `S` is the liquidated **position** side (Buy = a long was liquidated).
//! - tickers `{"topic":"tickers.BTCUSDT","type":"snapshot"|"delta","data":{..},"cs":..,"ts":..}`.
//!
//! Control frames carry no `topic`: pongs (`{"success":true,"ret_msg":"pong",..,"op":"ping"}`,
//! option-style `{"args":[..],"op":"pong"}`) and acks (`success:true`) → Control;
//! `success:false` → ControlError.
//!
//! ## The shared `tickers` channel
//! `tickers.{sym}` feeds ticker, funding_rate and open_interest. Linear tickers
//! are a snapshot followed by deltas that carry only changed fields, so
//! [`State`] keeps one merged entry per symbol (allocated when a symbol first
//! appears, updated in place afterwards; a snapshot replaces the entry, a
//! field sent as `""` clears it). From the merged entry, for each type the
//! instrument wants:
//! - `ticker` on a snapshot, or when the delta carries a best bid/ask field or
//!   `lastPrice` (spot tickers have no bid/ask: last price only);
//! - `funding_rate` on a snapshot, or when the delta carries `fundingRate` or
//!   `nextFundingTime` (mark/index price ride along from the merged state but
//!   alone do not trigger a record: they change every push);
//! - `open_interest` on a snapshot, or when the delta carries `openInterest`
//!   or `openInterestValue`.
//!
//! A type is emitted only once the merged state has its main value. A frame
//! that triggers nothing is `Ignored`.
//!
//! Parsing is typed sonic-rs over borrowed `&str`s; nested arrays are read
//! in place (no `Vec` per message); decimals come from the received strings
//! (never f64). Multi-item messages are validated completely before anything
//! is pushed, so a rejected frame leaves no partial records in the batch.

use crate::batch::{Batch, FundingRate, Level, Liquidation, OpenInterest, Origin, Record, Ticker};
use crate::batch::{Trade, TradeId};
use crate::model::{DataType, Side, VenueId};
use crate::venue::json::{classify, each, range_in, too_deep};
use crate::venue::{FrameOutcome, Instrument, Malformed, ParseCtx};
use rust_decimal::Decimal;
use sonic_rs::LazyValue;
use std::cell::RefCell;
use std::collections::HashMap;

/// Per-connection parser state: the merged `tickers` entry of each symbol.
#[derive(Debug, Default)]
pub struct State {
    tickers: HashMap<Box<str>, TickerState>,
}

impl State {
    /// The merged ticker fields of `raw_symbol` (tests and diagnostics).
    pub fn ticker(&self, raw_symbol: &str) -> Option<&TickerState> {
        self.tickers.get(raw_symbol)
    }
}

/// Last known value of each ticker field we record (`None`: never sent or cleared).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct TickerState {
    pub bid_price: Option<Decimal>,
    pub bid_size: Option<Decimal>,
    pub ask_price: Option<Decimal>,
    pub ask_size: Option<Decimal>,
    pub last_price: Option<Decimal>,
    pub mark_price: Option<Decimal>,
    pub index_price: Option<Decimal>,
    pub funding_rate: Option<Decimal>,
    pub next_funding_ms: Option<u64>,
    pub open_interest: Option<Decimal>,
    pub open_interest_value: Option<Decimal>,
}

#[derive(serde::Deserialize)]
struct Frame<'a> {
    #[serde(borrow, default)]
    topic: Option<&'a str>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a str>,
    #[serde(default)]
    ts: Option<u64>,
    #[serde(default)]
    cts: Option<u64>,
    #[serde(borrow, default)]
    data: Option<LazyValue<'a>>,
    #[serde(default)]
    success: Option<bool>,
    #[serde(borrow, default)]
    op: Option<&'a str>,
}

#[derive(serde::Deserialize)]
struct BookData<'a> {
    #[serde(borrow)]
    s: &'a str,
    #[serde(borrow)]
    b: LazyValue<'a>,
    #[serde(borrow)]
    a: LazyValue<'a>,
    u: u64,
}

#[derive(serde::Deserialize)]
struct TradeItem<'a> {
    #[serde(rename = "T")]
    time: u64,
    #[serde(rename = "S", borrow)]
    side: &'a str,
    #[serde(borrow)]
    v: &'a str,
    #[serde(borrow)]
    p: &'a str,
    #[serde(borrow)]
    i: &'a str,
}

#[derive(serde::Deserialize)]
struct LiquidationItem<'a> {
    #[serde(rename = "T")]
    time: u64,
    #[serde(rename = "S", borrow)]
    side: &'a str,
    #[serde(borrow)]
    v: &'a str,
    #[serde(borrow)]
    p: &'a str,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TickerData<'a> {
    #[serde(borrow, default)]
    symbol: Option<&'a str>,
    #[serde(borrow, default)]
    last_price: Option<&'a str>,
    #[serde(borrow, default)]
    mark_price: Option<&'a str>,
    #[serde(borrow, default)]
    index_price: Option<&'a str>,
    #[serde(borrow, default)]
    open_interest: Option<&'a str>,
    #[serde(borrow, default)]
    open_interest_value: Option<&'a str>,
    #[serde(borrow, default)]
    funding_rate: Option<&'a str>,
    #[serde(borrow, default)]
    next_funding_time: Option<&'a str>,
    #[serde(rename = "bid1Price", borrow, default)]
    bid1_price: Option<&'a str>,
    #[serde(rename = "bid1Size", borrow, default)]
    bid1_size: Option<&'a str>,
    #[serde(rename = "ask1Price", borrow, default)]
    ask1_price: Option<&'a str>,
    #[serde(rename = "ask1Size", borrow, default)]
    ask1_size: Option<&'a str>,
}

/// One validated trade or liquidation waiting to be pushed; `id` is a byte
/// range of the `data` text (trade id), so the scratch list owns no strings.
struct Parsed {
    price: Decimal,
    quantity: Decimal,
    side: Side,
    time: u64,
    id: (usize, usize),
}

thread_local! {
    /// Reused per thread (thread-per-core: no contention, no steady-state allocation).
    static SCRATCH: RefCell<Vec<Parsed>> = const { RefCell::new(Vec::new()) };
}

/// One text frame → records in `batch` or a book message in `cx.book`.
pub fn on_text(
    venue: VenueId,
    text: &str,
    receive_ns: u64,
    cx: &mut ParseCtx<'_>,
    batch: &mut Batch,
) -> FrameOutcome {
    if too_deep(text.as_bytes()) {
        return FrameOutcome::Malformed(Malformed::BadJson);
    }
    let frame: Frame<'_> = match sonic_rs::from_str(text) {
        Ok(f) => f,
        Err(e) => return FrameOutcome::Malformed(classify(&e)),
    };
    let Some(topic) = frame.topic else {
        return match (frame.success, frame.op) {
            (Some(false), _) => FrameOutcome::ControlError,
            (Some(true), _) => FrameOutcome::Control,
            (None, Some("pong" | "ping" | "subscribe" | "unsubscribe")) => FrameOutcome::Control,
            _ => FrameOutcome::Malformed(Malformed::UnknownEvent),
        };
    };
    let Some((channel, rest)) = topic.split_once('.') else {
        return FrameOutcome::Malformed(Malformed::UnknownEvent);
    };
    let Some(data) = frame.data.as_ref() else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    let ts_ms = frame.ts.unwrap_or(receive_ns / 1_000_000);
    let snapshot = match frame.kind {
        Some("snapshot") => true,
        Some("delta") => false,
        _ => return FrameOutcome::Malformed(Malformed::WrongType),
    };
    let raw = data.as_raw_str();
    let result = match channel {
        "publicTrade" => trades(venue, rest, raw, ts_ms, receive_ns, cx, batch),
        "orderbook" => {
            let ts = frame.cts.unwrap_or(ts_ms);
            book(rest, raw, snapshot, ts, cx)
        }
        "tickers" => tickers(venue, rest, raw, snapshot, ts_ms, receive_ns, cx, batch),
        "allLiquidation" => liquidations(venue, rest, raw, ts_ms, receive_ns, cx, batch),
        _ => Err(Malformed::UnknownEvent),
    };
    result.unwrap_or_else(FrameOutcome::Malformed)
}

fn instrument<'i>(cx: &ParseCtx<'i>, raw_symbol: &str) -> Result<&'i Instrument, Malformed> {
    cx.instruments
        .get(raw_symbol)
        .ok_or(Malformed::UnknownSymbol)
}

fn side(s: &str) -> Result<Side, Malformed> {
    match s {
        "Buy" => Ok(Side::Buy),
        "Sell" => Ok(Side::Sell),
        _ => Err(Malformed::WrongType),
    }
}

fn trades(
    venue: VenueId,
    raw_symbol: &str,
    raw: &str,
    ts_ms: u64,
    receive_ns: u64,
    cx: &mut ParseCtx<'_>,
    batch: &mut Batch,
) -> Result<FrameOutcome, Malformed> {
    let inst = instrument(cx, raw_symbol)?;
    SCRATCH.with(|scratch| {
        let mut items = scratch.borrow_mut();
        items.clear();
        each(raw, |t: TradeItem<'_>| {
            items.push(Parsed {
                price: decimal(t.p)?,
                quantity: decimal(t.v)?,
                side: side(t.side)?,
                time: t.time,
                id: range_in(raw, t.i)?,
            });
            Ok(())
        })?;
        for t in items.iter() {
            let id = &raw[t.id.0..t.id.1];
            batch
                .push_with::<()>(receive_ns, |bump| {
                    Ok(Record::Trade(Trade {
                        venue,
                        symbol: bump.alloc_str(&inst.normalized),
                        raw_symbol: bump.alloc_str(&inst.native),
                        trade_id: TradeId::Str(bump.alloc_str(id)),
                        price: t.price,
                        quantity: t.quantity,
                        contracts: None,
                        side: t.side,
                        is_maker: None,
                        trade_ts_ms: t.time,
                        // Bybit trade ids are not consecutive: no seq.
                        seq: None,
                        backfilled: false,
                        ts_ms,
                        receive_ts_ns: receive_ns,
                    }))
                })
                .map_err(|()| Malformed::WrongType)?;
        }
        Ok(counted(items.len()))
    })
}

fn liquidations(
    venue: VenueId,
    raw_symbol: &str,
    raw: &str,
    ts_ms: u64,
    receive_ns: u64,
    cx: &mut ParseCtx<'_>,
    batch: &mut Batch,
) -> Result<FrameOutcome, Malformed> {
    let inst = instrument(cx, raw_symbol)?;
    SCRATCH.with(|scratch| {
        let mut items = scratch.borrow_mut();
        items.clear();
        each(raw, |l: LiquidationItem<'_>| {
            items.push(Parsed {
                price: decimal(l.p)?,
                quantity: decimal(l.v)?,
                // `S` is the position side; the liquidation order is opposite.
                side: side(l.side)?,
                time: l.time,
                id: (0, 0),
            });
            Ok(())
        })?;
        for l in items.iter() {
            batch
                .push_with::<()>(receive_ns, |bump| {
                    Ok(Record::Liquidation(Liquidation {
                        origin: Origin {
                            venue,
                            symbol: bump.alloc_str(&inst.normalized),
                            raw_symbol: bump.alloc_str(&inst.native),
                            ts_ms,
                            receive_ts_ns: receive_ns,
                        },
                        side: l.side.opposite(),
                        position_side: Some(match l.side {
                            Side::Buy => "long",
                            Side::Sell => "short",
                        }),
                        price: l.price,
                        quantity: l.quantity,
                        contracts: None,
                        liquidation_ts_ms: l.time,
                    }))
                })
                .map_err(|()| Malformed::WrongType)?;
        }
        Ok(counted(items.len()))
    })
}

fn counted(n: usize) -> FrameOutcome {
    if n == 0 {
        FrameOutcome::Ignored
    } else {
        FrameOutcome::Records(n as u32)
    }
}

fn book(
    rest: &str,
    raw: &str,
    snapshot: bool,
    ts_ms: u64,
    cx: &mut ParseCtx<'_>,
) -> Result<FrameOutcome, Malformed> {
    // `orderbook.{depth}.{symbol}`
    let Some((_depth, topic_symbol)) = rest.split_once('.') else {
        return Err(Malformed::UnknownEvent);
    };
    let d: BookData<'_> = sonic_rs::from_str(raw).map_err(|e| classify(&e))?;
    if d.s != topic_symbol {
        return Err(Malformed::WrongType);
    }
    instrument(cx, d.s)?;
    let msg = &mut *cx.book;
    msg.clear();
    msg.raw_symbol.push_str(d.s);
    msg.snapshot = snapshot;
    msg.first_id = d.u;
    msg.last_id = d.u;
    msg.prev_id = None;
    msg.ts_ms = ts_ms;
    levels(d.b.as_raw_str(), &mut msg.bids)?;
    levels(d.a.as_raw_str(), &mut msg.asks)?;
    Ok(FrameOutcome::Book)
}

fn levels(raw: &str, out: &mut Vec<Level>) -> Result<(), Malformed> {
    each(raw, |(p, q): (&str, &str)| {
        out.push(Level::new(decimal(p)?, decimal(q)?));
        Ok(())
    })
}

/// A ticker field as sent: absent → `None` (unchanged), `""` → `Some(None)` (cleared).
fn field(
    s: Option<&str>,
    parse: fn(&str) -> Result<Decimal, Malformed>,
) -> Result<Option<Option<Decimal>>, Malformed> {
    match s {
        None => Ok(None),
        Some("") => Ok(Some(None)),
        Some(s) => parse(s).map(|d| Some(Some(d))),
    }
}

fn apply<T>(slot: &mut Option<T>, v: Option<Option<T>>, snapshot: bool) {
    match v {
        Some(v) => *slot = v,
        None if snapshot => *slot = None,
        None => {}
    }
}

#[allow(clippy::too_many_arguments)]
fn tickers(
    venue: VenueId,
    raw_symbol: &str,
    raw: &str,
    snapshot: bool,
    ts_ms: u64,
    receive_ns: u64,
    cx: &mut ParseCtx<'_>,
    batch: &mut Batch,
) -> Result<FrameOutcome, Malformed> {
    let t: TickerData<'_> = sonic_rs::from_str(raw).map_err(|e| classify(&e))?;
    if t.symbol.is_some_and(|s| s != raw_symbol) {
        return Err(Malformed::WrongType);
    }
    let inst = instrument(cx, raw_symbol)?;
    // Parse everything before touching the cache: a bad frame changes nothing.
    let bid_price = field(t.bid1_price, decimal)?;
    let bid_size = field(t.bid1_size, decimal)?;
    let ask_price = field(t.ask1_price, decimal)?;
    let ask_size = field(t.ask1_size, decimal)?;
    let last_price = field(t.last_price, decimal)?;
    let mark_price = field(t.mark_price, decimal)?;
    let index_price = field(t.index_price, decimal)?;
    let funding_rate = field(t.funding_rate, signed_decimal)?;
    let open_interest = field(t.open_interest, decimal)?;
    let open_interest_value = field(t.open_interest_value, decimal)?;
    let next_funding = match t.next_funding_time {
        None => None,
        Some("") => Some(None),
        Some(s) => Some(Some(
            s.parse::<u64>().map_err(|_| Malformed::InvalidNumber)?,
        )),
    };

    let cache = &mut cx.state.get_or_default::<State>().tickers;
    if !cache.contains_key(raw_symbol) {
        cache.insert(raw_symbol.into(), TickerState::default());
    }
    let st = cache.get_mut(raw_symbol).ok_or(Malformed::WrongType)?;
    let quote_sent = [bid_price, bid_size, ask_price, ask_size, last_price]
        .iter()
        .any(Option::is_some);
    let funding_sent = funding_rate.is_some() || next_funding.is_some();
    let oi_sent = open_interest.is_some() || open_interest_value.is_some();
    apply(&mut st.bid_price, bid_price, snapshot);
    apply(&mut st.bid_size, bid_size, snapshot);
    apply(&mut st.ask_price, ask_price, snapshot);
    apply(&mut st.ask_size, ask_size, snapshot);
    apply(&mut st.last_price, last_price, snapshot);
    apply(&mut st.mark_price, mark_price, snapshot);
    apply(&mut st.index_price, index_price, snapshot);
    apply(&mut st.funding_rate, funding_rate, snapshot);
    apply(&mut st.next_funding_ms, next_funding, snapshot);
    apply(&mut st.open_interest, open_interest, snapshot);
    apply(&mut st.open_interest_value, open_interest_value, snapshot);
    let st = *st;

    let mut n = 0u32;
    let mut push = |rec: &dyn Fn(Origin<'_>) -> Record<'_>| {
        batch
            .push_with::<()>(receive_ns, |bump| {
                Ok(rec(Origin {
                    venue,
                    symbol: bump.alloc_str(&inst.normalized),
                    raw_symbol: bump.alloc_str(&inst.native),
                    ts_ms,
                    receive_ts_ns: receive_ns,
                }))
            })
            .map(|()| n += 1)
    };
    let any_quote = st.bid_price.is_some() || st.ask_price.is_some() || st.last_price.is_some();
    if inst.wants(DataType::Ticker) && (snapshot || quote_sent) && any_quote {
        let _ = push(&|origin| {
            Record::Ticker(Ticker {
                origin,
                bid_price: st.bid_price,
                bid_quantity: st.bid_size,
                ask_price: st.ask_price,
                ask_quantity: st.ask_size,
                last_price: st.last_price,
                update_id: None,
            })
        });
    }
    if venue == VenueId::BybitLinear
        && inst.wants(DataType::FundingRate)
        && (snapshot || funding_sent)
    {
        if let Some(rate) = st.funding_rate {
            let _ = push(&|origin| {
                Record::Funding(FundingRate {
                    origin,
                    funding_rate: rate,
                    estimated_rate: None,
                    funding_ts_ms: None,
                    next_funding_ts_ms: st.next_funding_ms,
                    mark_price: st.mark_price,
                    index_price: st.index_price,
                })
            });
        }
    }
    if venue == VenueId::BybitLinear && inst.wants(DataType::OpenInterest) && (snapshot || oi_sent)
    {
        if let Some(oi) = st.open_interest {
            let _ = push(&|origin| {
                Record::OpenInterest(OpenInterest {
                    origin,
                    open_interest: oi,
                    contracts: None,
                    value_usd: st.open_interest_value,
                })
            });
        }
    }
    Ok(counted(n as usize))
}

/// Exact decimal from the venue's string; prices and sizes are never negative.
#[inline]
pub(crate) fn decimal(s: &str) -> Result<Decimal, Malformed> {
    let d = signed_decimal(s)?;
    if d.is_sign_negative() {
        return Err(Malformed::InvalidNumber);
    }
    Ok(d)
}

/// Exact decimal that may be negative (funding rates).
#[inline]
pub(crate) fn signed_decimal(s: &str) -> Result<Decimal, Malformed> {
    crate::venue::json::exact_decimal(s).ok_or(Malformed::InvalidNumber)
}
