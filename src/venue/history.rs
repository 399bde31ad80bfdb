//! REST trade history → backfilled trades, for the gaps a reconnect leaves
//! in a trade stream (see `engine::continuity`). Only venues whose trades
//! carry a per-instrument consecutive number can be backfilled by id:
//!
//! | venue | request | answer |
//! |---|---|---|
//! | Binance spot | `GET /api/v3/historicalTrades?symbol=&fromId=&limit=` (weight 25) | `[{"id","price","qty","quoteQty","time","isBuyerMaker","isBestMatch"}]` ascending |
//! | Binance USDⓈ-M | `GET /fapi/v1/aggTrades?symbol=&fromId=&limit=` (weight 20) | `[{"a","p","q","f","l","T","m"}]` ascending |
//! | OKX | `GET /api/v5/market/history-trades?instId=&type=1&after=&limit=100` | `{"code":"0","data":[{"instId","side","sz","px","tradeId","ts"}]}`, ids below `after`, newest first |
//! | Deribit | `GET /api/v2/public/get_last_trades_by_instrument?instrument_name=&start_seq=&end_seq=&count=&sorting=asc` | `{"result":{"trades":[…as streamed…],"has_more"}}` |
//!
//! Bybit trades have no such number: its reconnect gaps are reported, not filled.
//! Trades outside the asked range are ignored; those inside are pushed oldest
//! first with `backfilled = true`.

use super::json::digits_u64;
use super::{Instrument, Malformed, RestRequest};
use crate::batch::{Batch, Record, Trade, TradeId};
use crate::model::{Side, VenueId};
use rust_decimal::Decimal;
use serde::Deserialize;
use sonic_rs::RawNumber;

/// Most trades asked for in one request (each venue's maximum or less).
const BINANCE_LIMIT: u64 = 1000;
const OKX_LIMIT: u64 = 100;
const DERIBIT_LIMIT: u64 = 1000;

/// The request covering (the start of) `from..=to`.
pub fn request(venue: VenueId, raw_symbol: &str, from: u64, to: u64) -> Option<RestRequest> {
    let n = to.saturating_sub(from) + 1;
    Some(match venue {
        VenueId::BinanceSpot => RestRequest {
            path: format!(
                "/api/v3/historicalTrades?symbol={raw_symbol}&fromId={from}&limit={}",
                n.min(BINANCE_LIMIT)
            ),
            weight: 25,
        },
        VenueId::BinanceDerivatives => RestRequest {
            path: format!(
                "/fapi/v1/aggTrades?symbol={raw_symbol}&fromId={from}&limit={}",
                n.min(BINANCE_LIMIT)
            ),
            weight: 20,
        },
        // Pages go down from `after` (exclusive): the newest part of the gap first.
        VenueId::OkxSpot | VenueId::OkxDerivatives => RestRequest {
            path: format!(
                "/api/v5/market/history-trades?instId={raw_symbol}&type=1&after={}&limit={}",
                to + 1,
                n.min(OKX_LIMIT)
            ),
            weight: 1,
        },
        VenueId::DeribitDerivatives => RestRequest {
            path: format!(
                "/api/v2/public/get_last_trades_by_instrument?instrument_name={raw_symbol}&start_seq={from}&end_seq={to}&count={}&sorting=asc",
                n.min(DERIBIT_LIMIT)
            ),
            weight: 1,
        },
        VenueId::BybitSpot | VenueId::BybitLinear => return None,
    })
}

/// One trade of a history answer, venue fields already read.
struct Item {
    seq: u64,
    price: Decimal,
    quantity: Decimal,
    contracts: Option<Decimal>,
    side: Side,
    is_maker: Option<bool>,
    time: u64,
    /// The venue's text id (OKX, Deribit); Binance's is `seq` itself.
    id: Option<String>,
}

/// Parses a history answer of `venue` and pushes the trades in `from..=to`,
/// oldest first. Returns the lowest and highest sequence number pushed.
pub fn parse(
    venue: VenueId,
    inst: &Instrument,
    body: &[u8],
    (from, to): (u64, u64),
    receive_ns: u64,
    batch: &mut Batch,
) -> Result<Option<(u64, u64)>, Malformed> {
    let mut items = match venue {
        VenueId::BinanceSpot => binance_spot(body)?,
        VenueId::BinanceDerivatives => binance_futures(body)?,
        VenueId::OkxSpot | VenueId::OkxDerivatives => okx(inst, body)?,
        VenueId::DeribitDerivatives => deribit(inst, body)?,
        VenueId::BybitSpot | VenueId::BybitLinear => return Err(Malformed::UnknownEvent),
    };
    items.retain(|t| (from..=to).contains(&t.seq));
    items.sort_by_key(|t| t.seq);
    items.dedup_by_key(|t| t.seq);
    let range = match (items.first(), items.last()) {
        (Some(a), Some(b)) => Some((a.seq, b.seq)),
        _ => None,
    };
    for t in &items {
        batch
            .push_with::<()>(receive_ns, |bump| {
                Ok(Record::Trade(Trade {
                    venue,
                    symbol: bump.alloc_str(&inst.normalized),
                    raw_symbol: bump.alloc_str(&inst.native),
                    trade_id: match &t.id {
                        Some(id) => TradeId::Str(bump.alloc_str(id)),
                        None => TradeId::Num(t.seq),
                    },
                    price: t.price,
                    quantity: t.quantity,
                    contracts: t.contracts,
                    side: t.side,
                    is_maker: t.is_maker,
                    trade_ts_ms: t.time,
                    seq: Some(t.seq),
                    backfilled: true,
                    ts_ms: t.time,
                    receive_ts_ns: receive_ns,
                }))
            })
            .map_err(|()| Malformed::WrongType)?;
    }
    Ok(range)
}

fn json_err(e: sonic_rs::Error) -> Malformed {
    super::json::classify(&e)
}

fn exact(s: &str) -> Result<Decimal, Malformed> {
    match Decimal::from_str_exact(s) {
        Ok(d) if !d.is_sign_negative() => Ok(d),
        _ => Err(Malformed::InvalidNumber),
    }
}

#[derive(Deserialize)]
struct BinanceSpotTrade<'a> {
    id: u64,
    price: &'a str,
    qty: &'a str,
    time: u64,
    #[serde(rename = "isBuyerMaker")]
    is_buyer_maker: bool,
}

fn binance_spot(body: &[u8]) -> Result<Vec<Item>, Malformed> {
    let list: Vec<BinanceSpotTrade<'_>> = sonic_rs::from_slice(body).map_err(json_err)?;
    list.iter()
        .map(|t| {
            Ok(Item {
                seq: t.id,
                price: exact(t.price)?,
                quantity: exact(t.qty)?,
                contracts: None,
                // The buyer was the maker: the taker sold (as the stream's `m`).
                side: if t.is_buyer_maker {
                    Side::Sell
                } else {
                    Side::Buy
                },
                is_maker: Some(t.is_buyer_maker),
                time: t.time,
                id: None,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct BinanceAggTrade<'a> {
    a: u64,
    p: &'a str,
    q: &'a str,
    #[serde(rename = "T")]
    time: u64,
    m: bool,
}

fn binance_futures(body: &[u8]) -> Result<Vec<Item>, Malformed> {
    let list: Vec<BinanceAggTrade<'_>> = sonic_rs::from_slice(body).map_err(json_err)?;
    list.iter()
        .map(|t| {
            Ok(Item {
                seq: t.a,
                price: exact(t.p)?,
                quantity: exact(t.q)?,
                contracts: None,
                side: if t.m { Side::Sell } else { Side::Buy },
                is_maker: Some(t.m),
                time: t.time,
                id: None,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct OkxAnswer<'a> {
    code: &'a str,
    #[serde(borrow, default)]
    data: Vec<OkxTrade<'a>>,
}

#[derive(Deserialize)]
struct OkxTrade<'a> {
    #[serde(rename = "instId")]
    inst_id: &'a str,
    side: &'a str,
    sz: &'a str,
    px: &'a str,
    #[serde(rename = "tradeId")]
    trade_id: &'a str,
    ts: &'a str,
}

fn okx(inst: &Instrument, body: &[u8]) -> Result<Vec<Item>, Malformed> {
    let a: OkxAnswer<'_> = sonic_rs::from_slice(body).map_err(json_err)?;
    if a.code != "0" {
        return Err(Malformed::WrongType);
    }
    let mut out = Vec::with_capacity(a.data.len());
    for t in &a.data {
        if t.inst_id != inst.native {
            return Err(Malformed::WrongType);
        }
        let seq = digits_u64(t.trade_id).ok_or(Malformed::InvalidNumber)?;
        let (quantity, contracts) = super::okx::wire::in_base(inst, exact(t.sz)?)?;
        out.push(Item {
            seq,
            price: exact(t.px)?,
            quantity,
            contracts,
            side: super::okx::wire::side_of(t.side)?,
            is_maker: None,
            time: super::okx::wire::ms(t.ts)?,
            id: Some(t.trade_id.to_string()),
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct DeribitAnswer<'a> {
    #[serde(borrow)]
    result: DeribitResult<'a>,
}

#[derive(Deserialize)]
struct DeribitResult<'a> {
    #[serde(borrow)]
    trades: Vec<DeribitTrade<'a>>,
}

#[derive(Deserialize)]
struct DeribitTrade<'a> {
    trade_seq: u64,
    trade_id: &'a str,
    price: RawNumber,
    amount: RawNumber,
    direction: &'a str,
    timestamp: u64,
    instrument_name: &'a str,
}

fn deribit(inst: &Instrument, body: &[u8]) -> Result<Vec<Item>, Malformed> {
    use super::deribit::wire as dw;
    let a: DeribitAnswer<'_> = sonic_rs::from_slice(body).map_err(json_err)?;
    let mut out = Vec::with_capacity(a.result.trades.len());
    for t in &a.result.trades {
        if t.instrument_name != inst.native {
            return Err(Malformed::WrongType);
        }
        let price = dw::decimal(&t.price)?;
        let amount = dw::decimal(&t.amount)?;
        let (quantity, contracts) = if dw::is_inverse(inst) {
            (dw::derived(amount, price)?, Some(amount))
        } else {
            (amount, None)
        };
        out.push(Item {
            seq: t.trade_seq,
            price,
            quantity,
            contracts,
            side: match t.direction {
                "buy" => Side::Buy,
                "sell" => Side::Sell,
                _ => return Err(Malformed::WrongType),
            },
            is_maker: None,
            time: t.timestamp,
            id: Some(t.trade_id.to_string()),
        });
    }
    Ok(out)
}
