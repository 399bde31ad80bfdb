//! Deribit JSON-RPC notifications → records. **This is where a Deribit frame
//! becomes a record** (or a book message).
//!
//! Data arrive as `{"jsonrpc":"2.0","method":"subscription","params":{"channel":"..","data":..}}`.
//! Documented/captured examples:
//! - book `{"channel":"book.BTC-PERPETUAL.100ms","data":{"type":"change","timestamp":1566347390042,"prev_change_id":14202051597,"instrument_name":"BTC-PERPETUAL","change_id":14202051674,"bids":[["change",10700.0,45690.0],["delete",10746.5,0.0]],"asks":[["change",10756.5,156690.0]]}}`:
//!   first message `type:"snapshot"` (all `new`), then `change`s chained by
//!   `prev_change_id`; `new`/`change` set the amount, `delete` → 0.
//! - trades: `data` is an array of `{trade_id, price, amount, direction, timestamp, instrument_name, ..}`;
//!   `direction` is the taker side.
//! - ticker: `{instrument_name, timestamp, best_bid_price, best_bid_amount, best_ask_price,
//!   best_ask_amount, last_price, mark_price, index_price, open_interest, current_funding, funding_8h, ..}`.
//! - volatility index `{"channel":"deribit_volatility_index.btc_usd","data":{"volatility":..,"timestamp":..,"index_name":"btc_usd"}}`.
//!
//! Control: `{"method":"heartbeat","params":{"type":"test_request"}}` → a
//! `public/test` reply queued in `ParseCtx::replies` (Control); `{"result":..}`
//! → Control; `{"error":{..}}` → ControlError.
//!
//! **Numbers.** Prices, amounts and rates are JSON numbers. They are read as
//! the number's text ([`sonic_rs::RawNumber`], inline for ≤ 30 bytes: no heap)
//! and converted with `Decimal::from_str_exact` (`from_scientific` for
//! exponent forms such as `1e-05`), never through f64: `10700.0` stays `10700.0`.
//!
//! **Units.** Inverse instruments (quote currency `USD`: `BTC-PERPETUAL`, …)
//! count amounts in USD:
//! - trade: `contracts` = amount (USD) as sent; `quantity` = amount / price,
//!   rounded half-even to 8 decimal places (derived, not sent);
//! - open interest: `contracts` = `value_usd` = open_interest (USD);
//!   `open_interest` = open_interest / mark_price rounded to 8 dp (no record
//!   without a positive mark price);
//! - book levels and ticker sizes: USD amounts as sent.
//!
//! Other instruments (USDC linear perpetuals, options) count in base units:
//! quantities as sent, `contracts` None.
//!
//! **Ticker channel.** `ticker.{instrument}` is shared by ticker, funding_rate
//! and open_interest: each message yields one record per type the instrument
//! wants. Funding: `current_funding` → funding_rate, `funding_8h` (Deribit's
//! rate over the trailing 8 hours, what other venues' 8-hour rates compare
//! with) → estimated_funding_rate; Deribit funds continuously, so there is no
//! next funding time. A side with price and amount 0 (empty side) or null is
//! reported as absent.
//!
//! **Instruments.** Book/trade/ticker messages need their instrument in the
//! list (`UnknownSymbol` otherwise). Any kind listed is accepted; the
//! production list holds perpetuals only (see [`super::rest`]), so option
//! frames are `UnknownSymbol` there. Volatility indices are not instruments.

use crate::batch::{Batch, FundingRate, Level, OpenInterest, Origin, Record, Ticker};
use crate::batch::{Trade, TradeId, VolatilityIndex};
use crate::model::{DataType, Side, VenueId};
use crate::venue::json::{classify, each, exact_decimal, range_in, too_deep};
use crate::venue::{FrameOutcome, Instrument, Malformed, ParseCtx};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::de::IgnoredAny;
use sonic_rs::{LazyValue, RawNumber};
use std::cell::RefCell;

/// Decimal places of quantities derived by division (USD → coins).
pub const DERIVED_DP: u32 = 8;

#[derive(serde::Deserialize)]
struct Frame<'a> {
    #[serde(borrow, default)]
    method: Option<&'a str>,
    #[serde(borrow, default)]
    params: Option<Params<'a>>,
    #[serde(default)]
    result: Option<IgnoredAny>,
    #[serde(default)]
    error: Option<IgnoredAny>,
    #[serde(default)]
    id: Option<IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct Params<'a> {
    #[serde(borrow, default)]
    channel: Option<&'a str>,
    #[serde(borrow, default)]
    data: Option<LazyValue<'a>>,
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a str>,
}

#[derive(serde::Deserialize)]
struct BookData<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<&'a str>,
    timestamp: u64,
    #[serde(borrow)]
    instrument_name: &'a str,
    change_id: u64,
    #[serde(default)]
    prev_change_id: Option<u64>,
    #[serde(borrow)]
    bids: LazyValue<'a>,
    #[serde(borrow)]
    asks: LazyValue<'a>,
}

#[derive(serde::Deserialize)]
struct TradeItem<'a> {
    #[serde(borrow)]
    trade_id: &'a str,
    price: RawNumber,
    amount: RawNumber,
    #[serde(borrow)]
    direction: &'a str,
    timestamp: u64,
    #[serde(borrow)]
    instrument_name: &'a str,
    /// Per-instrument consecutive number (gap detection, backfill).
    #[serde(default)]
    trade_seq: Option<u64>,
}

#[derive(serde::Deserialize)]
struct TickerData<'a> {
    #[serde(borrow)]
    instrument_name: &'a str,
    timestamp: u64,
    #[serde(default)]
    best_bid_price: Option<RawNumber>,
    #[serde(default)]
    best_bid_amount: Option<RawNumber>,
    #[serde(default)]
    best_ask_price: Option<RawNumber>,
    #[serde(default)]
    best_ask_amount: Option<RawNumber>,
    #[serde(default)]
    last_price: Option<RawNumber>,
    #[serde(default)]
    mark_price: Option<RawNumber>,
    #[serde(default)]
    index_price: Option<RawNumber>,
    #[serde(default)]
    open_interest: Option<RawNumber>,
    #[serde(default)]
    current_funding: Option<RawNumber>,
    #[serde(default)]
    funding_8h: Option<RawNumber>,
}

#[derive(serde::Deserialize)]
struct VolatilityData<'a> {
    volatility: RawNumber,
    timestamp: u64,
    #[serde(borrow)]
    index_name: &'a str,
}

/// One validated trade waiting to be pushed; `id` is a byte range of the data text.
struct Parsed {
    price: Decimal,
    quantity: Decimal,
    contracts: Option<Decimal>,
    side: Side,
    time: u64,
    id: (usize, usize),
    seq: Option<u64>,
}

thread_local! {
    /// Reused per thread (thread-per-core: no contention, no steady-state allocation).
    static SCRATCH: RefCell<Vec<Parsed>> = const { RefCell::new(Vec::new()) };
}

/// One text frame → records in `batch`, a book message in `cx.book`, or a reply.
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
    if frame.error.is_some() {
        return FrameOutcome::ControlError;
    }
    match frame.method {
        Some("subscription") => {}
        Some("heartbeat") => {
            if frame.params.and_then(|p| p.kind) == Some("test_request") {
                cx.replies.push(super::test_reply());
            }
            return FrameOutcome::Control;
        }
        Some(_) => return FrameOutcome::Malformed(Malformed::UnknownEvent),
        None if frame.result.is_some() || frame.id.is_some() => return FrameOutcome::Control,
        None => return FrameOutcome::Malformed(Malformed::UnknownEvent),
    }
    let Some(Params {
        channel: Some(channel),
        data: Some(data),
        ..
    }) = frame.params
    else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    let raw = data.as_raw_str();
    let Some((kind, rest)) = channel.split_once('.') else {
        return FrameOutcome::Malformed(Malformed::UnknownEvent);
    };
    // `{kind}.{instrument}.{interval}`; instrument names have no dots.
    let instrument = rest.split('.').next().unwrap_or(rest);
    let result = match kind {
        "book" => book(instrument, raw, receive_ns, cx),
        "trades" => trades(venue, instrument, raw, receive_ns, cx, batch),
        "ticker" => ticker(venue, instrument, raw, receive_ns, cx, batch),
        "deribit_volatility_index" => volatility(venue, rest, raw, receive_ns, batch),
        _ => Err(Malformed::UnknownEvent),
    };
    result.unwrap_or_else(FrameOutcome::Malformed)
}

fn instrument<'i>(cx: &ParseCtx<'i>, name: &str) -> Result<&'i Instrument, Malformed> {
    cx.instruments.get(name).ok_or(Malformed::UnknownSymbol)
}

/// Amounts in USD (inverse contracts) rather than base units.
#[inline]
pub(crate) fn is_inverse(inst: &Instrument) -> bool {
    inst.quote == "USD"
}

fn book(
    channel_instrument: &str,
    raw: &str,
    receive_ns: u64,
    cx: &mut ParseCtx<'_>,
) -> Result<FrameOutcome, Malformed> {
    let d: BookData<'_> = sonic_rs::from_str(raw).map_err(|e| classify(&e))?;
    if d.instrument_name != channel_instrument {
        return Err(Malformed::WrongType);
    }
    instrument(cx, d.instrument_name)?;
    let snapshot = match d.kind {
        Some("snapshot") => true,
        Some("change") => false,
        None => d.prev_change_id.is_none(),
        Some(_) => return Err(Malformed::WrongType),
    };
    if !snapshot && d.prev_change_id.is_none() {
        return Err(Malformed::WrongType);
    }
    let prev_id = match d.prev_change_id {
        Some(p) => Some(i64::try_from(p).map_err(|_| Malformed::InvalidNumber)?),
        None => None,
    };
    let msg = &mut *cx.book;
    msg.clear();
    msg.raw_symbol.push_str(d.instrument_name);
    msg.snapshot = snapshot;
    msg.first_id = d.change_id;
    msg.last_id = d.change_id;
    msg.prev_id = prev_id;
    msg.ts_ms = if d.timestamp > 0 {
        d.timestamp
    } else {
        receive_ns / 1_000_000
    };
    levels(d.bids.as_raw_str(), &mut msg.bids)?;
    levels(d.asks.as_raw_str(), &mut msg.asks)?;
    Ok(FrameOutcome::Book)
}

fn levels(raw: &str, out: &mut Vec<Level>) -> Result<(), Malformed> {
    each(
        raw,
        |(action, price, amount): (&str, RawNumber, RawNumber)| {
            let price = decimal(&price)?;
            let quantity = match action {
                "new" | "change" => decimal(&amount)?,
                "delete" => Decimal::ZERO,
                _ => return Err(Malformed::WrongType),
            };
            out.push(Level::new(price, quantity));
            Ok(())
        },
    )
}

fn trades(
    venue: VenueId,
    channel_instrument: &str,
    raw: &str,
    receive_ns: u64,
    cx: &mut ParseCtx<'_>,
    batch: &mut Batch,
) -> Result<FrameOutcome, Malformed> {
    let inst = instrument(cx, channel_instrument)?;
    let inverse = is_inverse(inst);
    SCRATCH.with(|scratch| {
        let mut items = scratch.borrow_mut();
        items.clear();
        each(raw, |t: TradeItem<'_>| {
            if t.instrument_name != channel_instrument {
                return Err(Malformed::WrongType);
            }
            let price = decimal(&t.price)?;
            let amount = decimal(&t.amount)?;
            let (quantity, contracts) = if inverse {
                (derived(amount, price)?, Some(amount))
            } else {
                (amount, None)
            };
            items.push(Parsed {
                price,
                quantity,
                contracts,
                side: match t.direction {
                    "buy" => Side::Buy,
                    "sell" => Side::Sell,
                    _ => return Err(Malformed::WrongType),
                },
                time: t.timestamp,
                id: range_in(raw, t.trade_id)?,
                seq: t.trade_seq,
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
                        contracts: t.contracts,
                        side: t.side,
                        is_maker: None,
                        trade_ts_ms: t.time,
                        seq: t.seq,
                        backfilled: false,
                        ts_ms: t.time,
                        receive_ts_ns: receive_ns,
                    }))
                })
                .map_err(|()| Malformed::WrongType)?;
        }
        Ok(counted(items.len()))
    })
}

fn ticker(
    venue: VenueId,
    channel_instrument: &str,
    raw: &str,
    receive_ns: u64,
    cx: &mut ParseCtx<'_>,
    batch: &mut Batch,
) -> Result<FrameOutcome, Malformed> {
    let t: TickerData<'_> = sonic_rs::from_str(raw).map_err(|e| classify(&e))?;
    if t.instrument_name != channel_instrument {
        return Err(Malformed::WrongType);
    }
    let inst = instrument(cx, t.instrument_name)?;
    let opt = |n: &Option<RawNumber>| n.as_ref().map(decimal).transpose();
    let (bid_price, bid_quantity) = side_quote(opt(&t.best_bid_price)?, opt(&t.best_bid_amount)?);
    let (ask_price, ask_quantity) = side_quote(opt(&t.best_ask_price)?, opt(&t.best_ask_amount)?);
    let last_price = opt(&t.last_price)?;
    let mark_price = opt(&t.mark_price)?;
    let index_price = opt(&t.index_price)?;
    let open_interest = opt(&t.open_interest)?;
    let signed = |n: &Option<RawNumber>| n.as_ref().map(signed_decimal).transpose();
    let current_funding = signed(&t.current_funding)?;
    let funding_8h = signed(&t.funding_8h)?;
    let ts_ms = t.timestamp;

    let mut n = 0usize;
    let mut push = |rec: &dyn Fn(Origin<'_>) -> Record<'_>| {
        let r = batch.push_with::<()>(receive_ns, |bump| {
            Ok(rec(Origin {
                venue,
                symbol: bump.alloc_str(&inst.normalized),
                raw_symbol: bump.alloc_str(&inst.native),
                ts_ms,
                receive_ts_ns: receive_ns,
            }))
        });
        if r.is_ok() {
            n += 1;
        }
    };
    if inst.wants(DataType::Ticker) {
        push(&|origin| {
            Record::Ticker(Ticker {
                origin,
                bid_price,
                bid_quantity,
                ask_price,
                ask_quantity,
                last_price,
                update_id: None,
            })
        });
    }
    if inst.wants(DataType::FundingRate) {
        if let Some(rate) = current_funding {
            push(&|origin| {
                Record::Funding(FundingRate {
                    origin,
                    funding_rate: rate,
                    estimated_rate: funding_8h,
                    funding_ts_ms: None,
                    next_funding_ts_ms: None,
                    mark_price,
                    index_price,
                })
            });
        }
    }
    if inst.wants(DataType::OpenInterest) {
        if let Some(oi) = open_interest {
            let coins = if is_inverse(inst) {
                mark_price
                    .filter(|m| !m.is_zero())
                    .and_then(|m| derived(oi, m).ok())
                    .map(|coins| (coins, Some(oi), Some(oi)))
            } else {
                Some((oi, None, None))
            };
            if let Some((open_interest, contracts, value_usd)) = coins {
                push(&|origin| {
                    Record::OpenInterest(OpenInterest {
                        origin,
                        open_interest,
                        contracts,
                        value_usd,
                    })
                });
            }
        }
    }
    Ok(counted(n))
}

/// An empty side is sent as price 0 / amount 0 (or null): report it absent.
fn side_quote(
    price: Option<Decimal>,
    amount: Option<Decimal>,
) -> (Option<Decimal>, Option<Decimal>) {
    match (price, amount) {
        (Some(p), Some(a)) if p.is_zero() && a.is_zero() => (None, None),
        (p, a) => (p, a),
    }
}

fn volatility(
    venue: VenueId,
    index: &str,
    raw: &str,
    receive_ns: u64,
    batch: &mut Batch,
) -> Result<FrameOutcome, Malformed> {
    let v: VolatilityData<'_> = sonic_rs::from_str(raw).map_err(|e| classify(&e))?;
    if v.index_name != index {
        return Err(Malformed::WrongType);
    }
    let value = decimal(&v.volatility)?;
    // `btc_usd` → currency `BTC` (MarketPrism's symbol for DVOL).
    let currency = index.split('_').next().unwrap_or(index);
    if currency.is_empty() {
        return Err(Malformed::WrongType);
    }
    batch
        .push_with::<()>(receive_ns, |bump| {
            let symbol = bump.alloc_str(currency);
            symbol.make_ascii_uppercase();
            Ok(Record::Volatility(VolatilityIndex {
                origin: Origin {
                    venue,
                    symbol,
                    raw_symbol: bump.alloc_str(index),
                    ts_ms: v.timestamp,
                    receive_ts_ns: receive_ns,
                },
                volatility_index: value,
                index_name: bump.alloc_str(index),
            }))
        })
        .map_err(|()| Malformed::WrongType)?;
    Ok(FrameOutcome::Records(1))
}

fn counted(n: usize) -> FrameOutcome {
    if n == 0 {
        FrameOutcome::Ignored
    } else {
        FrameOutcome::Records(n as u32)
    }
}

/// `amount / price` rounded half-even to [`DERIVED_DP`] places.
pub(crate) fn derived(amount: Decimal, price: Decimal) -> Result<Decimal, Malformed> {
    if price.is_zero() {
        return Err(Malformed::InvalidNumber);
    }
    amount
        .checked_div(price)
        .map(|q| q.round_dp_with_strategy(DERIVED_DP, RoundingStrategy::MidpointNearestEven))
        .ok_or(Malformed::InvalidNumber)
}

/// Exact decimal from a JSON number's text; prices and sizes are never negative.
#[inline]
pub fn decimal(n: &RawNumber) -> Result<Decimal, Malformed> {
    let d = signed_decimal(n)?;
    if d.is_sign_negative() {
        return Err(Malformed::InvalidNumber);
    }
    Ok(d)
}

/// Exact decimal from a JSON number's text, sign allowed (funding rates).
#[inline]
pub fn signed_decimal(n: &RawNumber) -> Result<Decimal, Malformed> {
    number_text(n.as_str())
}

/// `10700.0` → 10700.0 (scale kept); `1e-05` / `2.5E+3` via the exponent.
pub fn number_text(s: &str) -> Result<Decimal, Malformed> {
    let Some(e) = s.find(['e', 'E']) else {
        return exact_decimal(s).ok_or(Malformed::InvalidNumber);
    };
    // `from_scientific` alone rounds a mantissa of too many digits.
    let (mantissa, exp) = (&s[..e], &s[e + 1..]);
    let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
    if exact_decimal(mantissa).is_none()
        || !(1..=3).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(Malformed::InvalidNumber);
    }
    Decimal::from_scientific(s).map_err(|_| Malformed::InvalidNumber)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_text_is_exact() {
        assert_eq!(number_text("10700.0").unwrap().to_string(), "10700.0");
        assert_eq!(number_text("45690.0").unwrap().to_string(), "45690.0");
        assert_eq!(number_text("1e-05").unwrap().to_string(), "0.00001");
        assert_eq!(number_text("2.5E-7").unwrap().to_string(), "0.00000025");
        assert_eq!(number_text("-0.00012").unwrap().to_string(), "-0.00012");
        assert!(number_text("1.2.3").is_err());
        // Exact or refused: a rounded mantissa, odd exponents, huge texts.
        assert!(number_text("1.00000000000000000000000000001e0").is_err());
        assert!(number_text("1e400").is_err());
        assert!(number_text("1e").is_err());
        assert!(number_text("1e+").is_err());
        assert!(number_text(&"0".repeat(1 << 20)).is_err());
        assert_eq!(number_text("2.5E+3").unwrap().to_string(), "2500");
    }

    #[test]
    fn derived_rounds_half_even() {
        let d = |s: &str| number_text(s).unwrap();
        assert_eq!(derived(d("10"), d("40000")).unwrap().to_string(), "0.00025");
        assert_eq!(
            derived(d("100"), d("30000.5")).unwrap().to_string(),
            "0.00333328"
        );
        assert!(derived(d("1"), d("0")).is_err());
    }
}
