//! Binance trade history (see `venue::history`): spot `historicalTrades`
//! (by trade id), USDⓈ-M `aggTrades` (by aggregate id); both ascending.

use crate::model::Side;
use crate::venue::history::{exact, json_err, Item};
use crate::venue::{Malformed, RestRequest};
use serde::Deserialize;

/// Most trades asked for in one request (the venue's maximum).
const LIMIT: u64 = 1000;

/// Spot: the trades from id `from` (at most up to `to`).
pub fn spot_request(raw_symbol: &str, from: u64, to: u64) -> RestRequest {
    let n = to.saturating_sub(from) + 1;
    RestRequest {
        path: format!(
            "/api/v3/historicalTrades?symbol={raw_symbol}&fromId={from}&limit={}",
            n.min(LIMIT)
        ),
        weight: 25,
    }
}

/// USDⓈ-M: the aggregate trades from id `from` (at most up to `to`).
pub fn futures_request(raw_symbol: &str, from: u64, to: u64) -> RestRequest {
    let n = to.saturating_sub(from) + 1;
    RestRequest {
        path: format!(
            "/fapi/v1/aggTrades?symbol={raw_symbol}&fromId={from}&limit={}",
            n.min(LIMIT)
        ),
        weight: 20,
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

pub fn parse_spot(body: &[u8]) -> Result<Vec<Item>, Malformed> {
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

pub fn parse_futures(body: &[u8]) -> Result<Vec<Item>, Malformed> {
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
