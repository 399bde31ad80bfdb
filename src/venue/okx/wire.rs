//! OKX v5 WebSocket frames → records or a book message. **This is where an OKX
//! frame becomes a record.**
//!
//! Every push is `{"arg":{"channel":..,"instId":..},"data":[..]}` (books add
//! `"action":"snapshot"|"update"`); control answers carry `"event"`:
//! `subscribe`/`unsubscribe` acks, `notice` (64008: closing soon for a service
//! upgrade), `error` (60012, 60018, …). Keepalive answers are the bare text
//! `pong`. All numbers are strings except the books' `seqId`, `prevSeqId`
//! and `checksum`.
//!
//! Parsing: the envelope is one typed sonic-rs pass over borrowed `&str`s in
//! which `data` is kept as a borrowed raw slice; each `data[]` entry is then
//! parsed typed (book levels go straight into the reused [`BookMsg`]).
//! Decimals come from the received strings (`Decimal::from_str_exact`, never
//! f64). Nothing is allocated on the heap per message.
//!
//! A frame is all-or-nothing: every entry is validated before the first
//! record is pushed, so a malformed frame adds no records. A single-entry
//! frame (the usual case) is parsed once; a frame of several entries is parsed
//! a second time to push.

use crate::batch::{
    Batch, FundingRate, Level, Liquidation, OpenInterest, Origin, Record, Ticker, Trade, TradeId,
};
use crate::book::BookMsg;
use crate::model::{DataType, Side, VenueId};
use crate::venue::flat::{Scalar, Scanner};
use crate::venue::{FrameOutcome, Instrument, InstrumentMap, Malformed, ParseCtx};
use bumpalo::Bump;
use rust_decimal::Decimal;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use sonic_rs::{JsonValueTrait, LazyValue};
use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;

mod depth;

pub use depth::parse_book_snapshot;
pub(super) use depth::Row;
use depth::{book, fast_book};

/// `notice` code: "The connection will soon be closed for a service upgrade".
const NOTICE_CLOSING: &str = "64008";

/// Envelope of every frame; unknown fields are ignored.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow, default)]
    event: Option<&'a str>,
    /// `notice` / error code, e.g. `64008`.
    #[serde(borrow, default)]
    code: Option<&'a str>,
    #[serde(borrow, default)]
    arg: Option<Arg<'a>>,
    #[serde(borrow, default)]
    action: Option<&'a str>,
    #[serde(borrow, default)]
    data: Option<LazyValue<'a>>,
}

#[derive(Deserialize)]
struct Arg<'a> {
    #[serde(borrow, default)]
    channel: Option<&'a str>,
    #[serde(rename = "instId", borrow, default)]
    inst_id: Option<&'a str>,
}

/// One `data[]` entry of the record channels (union of the fields read; which
/// are required depends on the channel).
#[derive(Deserialize, Default)]
struct Entry<'a> {
    #[serde(rename = "instId", borrow, default)]
    inst_id: Option<&'a str>,
    #[serde(borrow, default)]
    ts: Option<&'a str>,
    // trades
    #[serde(rename = "tradeId", borrow, default)]
    trade_id: Option<&'a str>,
    #[serde(borrow, default)]
    px: Option<&'a str>,
    #[serde(borrow, default)]
    sz: Option<&'a str>,
    #[serde(borrow, default)]
    side: Option<&'a str>,
    // tickers
    #[serde(borrow, default)]
    last: Option<&'a str>,
    #[serde(rename = "askPx", borrow, default)]
    ask_px: Option<&'a str>,
    #[serde(rename = "askSz", borrow, default)]
    ask_sz: Option<&'a str>,
    #[serde(rename = "bidPx", borrow, default)]
    bid_px: Option<&'a str>,
    #[serde(rename = "bidSz", borrow, default)]
    bid_sz: Option<&'a str>,
    // funding-rate
    #[serde(rename = "fundingRate", borrow, default)]
    funding_rate: Option<&'a str>,
    #[serde(rename = "fundingTime", borrow, default)]
    funding_time: Option<&'a str>,
    #[serde(rename = "nextFundingTime", borrow, default)]
    next_funding_time: Option<&'a str>,
    #[serde(rename = "nextFundingRate", borrow, default)]
    next_funding_rate: Option<&'a str>,
    // open-interest
    #[serde(borrow, default)]
    oi: Option<&'a str>,
    #[serde(rename = "oiCcy", borrow, default)]
    oi_ccy: Option<&'a str>,
    #[serde(rename = "oiUsd", borrow, default)]
    oi_usd: Option<&'a str>,
    // liquidation-orders
    #[serde(borrow, default)]
    details: Option<LazyValue<'a>>,
}

/// One `details[]` entry of `liquidation-orders`.
#[derive(Deserialize)]
struct Detail<'a> {
    #[serde(rename = "bkPx", borrow, default)]
    bk_px: Option<&'a str>,
    #[serde(rename = "posSide", borrow, default)]
    pos_side: Option<&'a str>,
    #[serde(borrow, default)]
    side: Option<&'a str>,
    #[serde(borrow, default)]
    sz: Option<&'a str>,
    #[serde(borrow, default)]
    ts: Option<&'a str>,
}

/// The record channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Trades,
    Tickers,
    Funding,
    OpenInterest,
    Liquidations,
}

/// Parses one text frame: records into `batch`, or a book message into `cx.book`.
pub fn on_text(
    text: &str,
    receive_ns: u64,
    cx: &mut ParseCtx<'_>,
    batch: &mut Batch,
) -> FrameOutcome {
    if text == "pong" {
        return FrameOutcome::Control;
    }
    if let Some(r) = fast_book(text, cx) {
        return book_outcome(r, cx);
    }
    on_text_full(text, receive_ns, cx, batch)
}

fn book_outcome(r: Result<(), Malformed>, cx: &mut ParseCtx<'_>) -> FrameOutcome {
    match r {
        Ok(()) => FrameOutcome::Book,
        Err(m) => {
            cx.book.clear();
            FrameOutcome::Malformed(m)
        }
    }
}

/// [`on_text`] without the books fast path.
fn on_text_full(
    text: &str,
    receive_ns: u64,
    cx: &mut ParseCtx<'_>,
    batch: &mut Batch,
) -> FrameOutcome {
    if crate::venue::json::too_deep(text.as_bytes()) {
        return FrameOutcome::Malformed(Malformed::BadJson);
    }
    let frame: Frame<'_> = match sonic_rs::from_str(text) {
        Ok(f) => f,
        Err(e) => return FrameOutcome::Malformed(classify(&e)),
    };
    if let Some(event) = frame.event {
        // `error`, `channel-conn-count-error`; else acks, `notice`, `login`, …
        return if event == "error" || event.ends_with("-error") {
            FrameOutcome::ControlError
        } else if event == "notice" && frame.code == Some(NOTICE_CLOSING) {
            FrameOutcome::Notice
        } else {
            FrameOutcome::Control
        };
    }
    let (Some(arg), Some(data)) = (frame.arg, frame.data) else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    let Some(channel) = arg.channel else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    let channel = match channel {
        "trades" => Channel::Trades,
        "tickers" => Channel::Tickers,
        "funding-rate" => Channel::Funding,
        "open-interest" => Channel::OpenInterest,
        "liquidation-orders" => Channel::Liquidations,
        "books" => {
            let Some(raw) = array_str(&data) else {
                return FrameOutcome::Malformed(Malformed::WrongType);
            };
            let r = book(arg.inst_id, frame.action, raw, cx);
            return book_outcome(r, cx);
        }
        _ => return FrameOutcome::Malformed(Malformed::UnknownEvent),
    };
    let Some(raw) = array_str(&data) else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    records(
        channel,
        arg.inst_id,
        raw,
        cx.venue,
        cx.instruments,
        receive_ns,
        batch,
    )
}

/// sonic-rs error → reason: broken JSON, or JSON of the wrong shape.
fn classify(e: &sonic_rs::Error) -> Malformed {
    if e.is_syntax() || e.is_eof() {
        Malformed::BadJson
    } else {
        Malformed::WrongType
    }
}

/// The raw text of a JSON array value, borrowed from the frame.
pub(super) fn array_str<'a>(v: &LazyValue<'a>) -> Option<&'a str> {
    if !v.is_array() {
        return None;
    }
    match v.as_raw_cow() {
        Cow::Borrowed(s) => Some(s),
        Cow::Owned(_) => None,
    }
}

// ---------------------------------------------------------------- records

/// A validated record, not yet in the batch (strings still borrow the frame).
#[derive(Clone, Copy)]
enum Prep<'a, 'i> {
    Trade {
        inst: &'i Instrument,
        id: &'a str,
        price: Decimal,
        quantity: Decimal,
        contracts: Option<Decimal>,
        side: Side,
        ts: u64,
    },
    Ticker {
        inst: &'i Instrument,
        bid_price: Option<Decimal>,
        bid_quantity: Option<Decimal>,
        ask_price: Option<Decimal>,
        ask_quantity: Option<Decimal>,
        last_price: Option<Decimal>,
        ts: u64,
    },
    Funding {
        inst: &'i Instrument,
        rate: Decimal,
        estimated: Option<Decimal>,
        funding_ts: Option<u64>,
        next_funding_ts: Option<u64>,
        ts: u64,
    },
    OpenInterest {
        inst: &'i Instrument,
        coins: Decimal,
        contracts: Option<Decimal>,
        usd: Option<Decimal>,
        ts: u64,
    },
    Liquidation {
        inst: &'i Instrument,
        side: Side,
        position_side: Option<&'a str>,
        price: Decimal,
        quantity: Decimal,
        contracts: Option<Decimal>,
        ts: u64,
    },
}

/// Validates every entry, then pushes the records (all or nothing).
fn records<'a, 'i>(
    channel: Channel,
    arg_inst: Option<&'a str>,
    data: &'a str,
    venue: VenueId,
    map: &'i InstrumentMap,
    receive_ns: u64,
    batch: &mut Batch,
) -> FrameOutcome {
    let mut n = 0u32;
    let mut first: Option<Prep<'a, 'i>> = None;
    let checked = each(channel, arg_inst, data, map, &mut |p| {
        if n == 0 {
            first = Some(p);
        }
        n += 1;
    });
    if let Err(m) = checked {
        return FrameOutcome::Malformed(m);
    }
    match (n, first) {
        (0, _) | (_, None) => FrameOutcome::Ignored,
        (1, Some(p)) => {
            push(&p, venue, receive_ns, batch);
            FrameOutcome::Records(1)
        }
        _ => {
            // Validated above: this pass cannot fail.
            let _ = each(channel, arg_inst, data, map, &mut |p| {
                push(&p, venue, receive_ns, batch)
            });
            FrameOutcome::Records(n)
        }
    }
}

/// Every record of a `data` array, in order, to `emit`.
fn each<'a, 'i>(
    channel: Channel,
    arg_inst: Option<&'a str>,
    data: &'a str,
    map: &'i InstrumentMap,
    emit: &mut dyn FnMut(Prep<'a, 'i>),
) -> Result<(), Malformed> {
    for item in sonic_rs::to_array_iter(data) {
        let item = item.map_err(|e| classify(&e))?;
        let raw = match item.as_raw_cow() {
            Cow::Borrowed(s) => s,
            Cow::Owned(_) => return Err(Malformed::WrongType),
        };
        let e: Entry<'a> = match flat_entry(raw) {
            Some(e) => e,
            None => sonic_rs::from_str(raw).map_err(|e| classify(&e))?,
        };
        if channel == Channel::Liquidations {
            liquidations(&e, map, emit)?;
            continue;
        }
        let Some(native) = e.inst_id.or(arg_inst) else {
            return Err(Malformed::WrongType);
        };
        let inst = map.get(native).ok_or(Malformed::UnknownSymbol)?;
        emit(match channel {
            Channel::Trades => trade(&e, inst)?,
            Channel::Tickers => ticker(&e, inst)?,
            Channel::Funding => funding(&e, inst)?,
            Channel::OpenInterest => open_interest(&e, inst)?,
            Channel::Liquidations => unreachable!("handled above"),
        });
    }
    Ok(())
}

/// A `data[]` entry read by the flat scanner (OKX's entries are flat objects
/// of strings), or `None`: serde then reads it and accepts or rejects it as
/// before. Whatever this accepts, serde reads the same way (a test holds it
/// to that): every member a scalar, each known key a string and present
/// once, `details` (liquidations, an array) left to serde. Why: serde's
/// visit of `Entry`'s 18 optional fields costs more than one byte scan (an
/// OKX trade frame: 1.32–1.35 → 1.16–1.17 µs in the `parse` bench).
fn flat_entry(raw: &str) -> Option<Entry<'_>> {
    let mut e = Entry::default();
    let mut sc = Scanner::new(raw);
    sc.object(|key, sc| {
        let v = sc.scalar()?;
        let slot = match key {
            "instId" => &mut e.inst_id,
            "ts" => &mut e.ts,
            "tradeId" => &mut e.trade_id,
            "px" => &mut e.px,
            "sz" => &mut e.sz,
            "side" => &mut e.side,
            "last" => &mut e.last,
            "askPx" => &mut e.ask_px,
            "askSz" => &mut e.ask_sz,
            "bidPx" => &mut e.bid_px,
            "bidSz" => &mut e.bid_sz,
            "fundingRate" => &mut e.funding_rate,
            "fundingTime" => &mut e.funding_time,
            "nextFundingTime" => &mut e.next_funding_time,
            "nextFundingRate" => &mut e.next_funding_rate,
            "oi" => &mut e.oi,
            "oiCcy" => &mut e.oi_ccy,
            "oiUsd" => &mut e.oi_usd,
            "details" => return None,
            // Other members are ignored, as serde ignores them.
            _ => return Some(()),
        };
        // serde rejects a repeated field and a non-string for these.
        match (v, &slot) {
            (Scalar::Str(s), None) => *slot = Some(s),
            _ => return None,
        }
        Some(())
    })?;
    sc.end()?;
    Some(e)
}

fn trade<'a, 'i>(e: &Entry<'a>, inst: &'i Instrument) -> Result<Prep<'a, 'i>, Malformed> {
    let (Some(id), Some(px), Some(sz), Some(side), Some(ts)) =
        (e.trade_id, e.px, e.sz, e.side, e.ts)
    else {
        return Err(Malformed::WrongType);
    };
    let (quantity, contracts) = in_base(inst, size(sz)?)?;
    Ok(Prep::Trade {
        inst,
        id,
        price: size(px)?,
        quantity,
        contracts,
        side: side_of(side)?,
        ts: ms(ts)?,
    })
}

/// Best bid/ask sizes of swaps are converted to base units like trades.
fn ticker<'a, 'i>(e: &Entry<'a>, inst: &'i Instrument) -> Result<Prep<'a, 'i>, Malformed> {
    let Some(ts) = e.ts else {
        return Err(Malformed::WrongType);
    };
    let base = |s: Option<&str>| -> Result<Option<Decimal>, Malformed> {
        match opt_size(s)? {
            Some(q) => Ok(Some(in_base(inst, q)?.0)),
            None => Ok(None),
        }
    };
    Ok(Prep::Ticker {
        inst,
        bid_price: opt_size(e.bid_px)?,
        bid_quantity: base(e.bid_sz)?,
        ask_price: opt_size(e.ask_px)?,
        ask_quantity: base(e.ask_sz)?,
        last_price: opt_size(e.last)?,
        ts: ms(ts)?,
    })
}

fn funding<'a, 'i>(e: &Entry<'a>, inst: &'i Instrument) -> Result<Prep<'a, 'i>, Malformed> {
    let (Some(rate), Some(ts)) = (e.funding_rate, e.ts) else {
        return Err(Malformed::WrongType);
    };
    Ok(Prep::Funding {
        inst,
        rate: signed(rate)?,
        estimated: match e.next_funding_rate {
            None | Some("") => None,
            Some(r) => Some(signed(r)?),
        },
        funding_ts: opt_ms(e.funding_time)?,
        next_funding_ts: opt_ms(e.next_funding_time)?,
        ts: ms(ts)?,
    })
}

/// `oiCcy` (coins) is the open interest; `oi` is in contracts, `oiUsd` in USD.
fn open_interest<'a, 'i>(e: &Entry<'a>, inst: &'i Instrument) -> Result<Prep<'a, 'i>, Malformed> {
    let (Some(coins), Some(ts)) = (e.oi_ccy, e.ts) else {
        return Err(Malformed::WrongType);
    };
    Ok(Prep::OpenInterest {
        inst,
        coins: size(coins)?,
        contracts: opt_size(e.oi)?,
        usd: opt_size(e.oi_usd)?,
        ts: ms(ts)?,
    })
}

/// One record per `details[]` entry of a wanted instrument; entries of other
/// (or unlisted) instruments of the instType-wide broadcast are skipped.
fn liquidations<'a, 'i>(
    e: &Entry<'a>,
    map: &'i InstrumentMap,
    emit: &mut dyn FnMut(Prep<'a, 'i>),
) -> Result<(), Malformed> {
    let Some(native) = e.inst_id else {
        return Err(Malformed::WrongType);
    };
    let Some(inst) = map.get(native) else {
        return Ok(());
    };
    if !inst.wants(DataType::Liquidation) {
        return Ok(());
    }
    let Some(raw) = e.details.as_ref().and_then(array_str) else {
        return Err(Malformed::WrongType);
    };
    for item in sonic_rs::to_array_iter(raw) {
        let item = item.map_err(|e| classify(&e))?;
        let raw = match item.as_raw_cow() {
            Cow::Borrowed(s) => s,
            Cow::Owned(_) => return Err(Malformed::WrongType),
        };
        let d: Detail<'a> = sonic_rs::from_str(raw).map_err(|e| classify(&e))?;
        let (Some(px), Some(side), Some(sz), Some(ts)) = (d.bk_px, d.side, d.sz, d.ts) else {
            return Err(Malformed::WrongType);
        };
        let (quantity, contracts) = in_base(inst, size(sz)?)?;
        emit(Prep::Liquidation {
            inst,
            side: side_of(side)?,
            position_side: d.pos_side.filter(|s| !s.is_empty()),
            price: size(px)?,
            quantity,
            contracts,
            ts: ms(ts)?,
        });
    }
    Ok(())
}

/// Copies the strings into the arena and appends the record.
fn push(p: &Prep<'_, '_>, venue: VenueId, receive_ns: u64, batch: &mut Batch) {
    fn origin<'b>(
        bump: &'b Bump,
        venue: VenueId,
        inst: &Instrument,
        ts: u64,
        rx: u64,
    ) -> Origin<'b> {
        Origin {
            venue,
            symbol: bump.alloc_str(&inst.normalized),
            raw_symbol: bump.alloc_str(&inst.native),
            ts_ms: ts,
            receive_ts_ns: rx,
        }
    }
    let _ = batch.push_with::<Infallible>(receive_ns, |bump| {
        Ok(match *p {
            Prep::Trade {
                inst,
                id,
                price,
                quantity,
                contracts,
                side,
                ts,
            } => Record::Trade(Trade {
                venue,
                symbol: bump.alloc_str(&inst.normalized),
                raw_symbol: bump.alloc_str(&inst.native),
                trade_id: TradeId::Str(bump.alloc_str(id)),
                price,
                quantity,
                contracts,
                side,
                is_maker: None,
                trade_ts_ms: ts,
                seq: crate::venue::json::digits_u64(id),
                backfilled: false,
                ts_ms: ts,
                receive_ts_ns: receive_ns,
            }),
            Prep::Ticker {
                inst,
                bid_price,
                bid_quantity,
                ask_price,
                ask_quantity,
                last_price,
                ts,
            } => Record::Ticker(Ticker {
                origin: origin(bump, venue, inst, ts, receive_ns),
                bid_price,
                bid_quantity,
                ask_price,
                ask_quantity,
                last_price,
                update_id: None,
            }),
            Prep::Funding {
                inst,
                rate,
                estimated,
                funding_ts,
                next_funding_ts,
                ts,
            } => Record::Funding(FundingRate {
                origin: origin(bump, venue, inst, ts, receive_ns),
                funding_rate: rate,
                estimated_rate: estimated,
                funding_ts_ms: funding_ts,
                next_funding_ts_ms: next_funding_ts,
                mark_price: None,
                index_price: None,
            }),
            Prep::OpenInterest {
                inst,
                coins,
                contracts,
                usd,
                ts,
            } => Record::OpenInterest(OpenInterest {
                origin: origin(bump, venue, inst, ts, receive_ns),
                open_interest: coins,
                contracts,
                value_usd: usd,
            }),
            Prep::Liquidation {
                inst,
                side,
                position_side,
                price,
                quantity,
                contracts,
                ts,
            } => Record::Liquidation(Liquidation {
                origin: origin(bump, venue, inst, ts, receive_ns),
                side,
                position_side: position_side.map(|s| &*bump.alloc_str(s)),
                price,
                quantity,
                contracts,
                liquidation_ts_ms: ts,
            }),
        })
    });
}

// ---------------------------------------------------------------- values

/// Contracts → (base quantity, contracts) for contract-sized instruments.
#[inline]
pub(crate) fn in_base(
    inst: &Instrument,
    sz: Decimal,
) -> Result<(Decimal, Option<Decimal>), Malformed> {
    match inst.contract_value {
        Some(v) => Ok((sz.checked_mul(v).ok_or(Malformed::InvalidNumber)?, Some(sz))),
        None => Ok((sz, None)),
    }
}

/// Exact non-negative decimal (prices, sizes).
#[inline]
pub(super) fn size(s: &str) -> Result<Decimal, Malformed> {
    match crate::venue::json::exact_decimal(s) {
        Some(d) if !d.is_sign_negative() => Ok(d),
        _ => Err(Malformed::InvalidNumber),
    }
}

/// Exact decimal of either sign (rates).
#[inline]
fn signed(s: &str) -> Result<Decimal, Malformed> {
    crate::venue::json::exact_decimal(s).ok_or(Malformed::InvalidNumber)
}

/// Absent or `""` (OKX's "no value") → None.
#[inline]
fn opt_size(s: Option<&str>) -> Result<Option<Decimal>, Malformed> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => size(s).map(Some),
    }
}

/// Millisecond timestamp string.
#[inline]
pub(crate) fn ms(s: &str) -> Result<u64, Malformed> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Malformed::InvalidNumber);
    }
    s.parse().map_err(|_| Malformed::InvalidNumber)
}

#[inline]
fn opt_ms(s: Option<&str>) -> Result<Option<u64>, Malformed> {
    match s {
        None | Some("") => Ok(None),
        Some(s) => ms(s).map(Some),
    }
}

#[inline]
pub(crate) fn side_of(s: &str) -> Result<Side, Malformed> {
    match s {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        _ => Err(Malformed::WrongType),
    }
}

#[cfg(test)]
mod tests;
