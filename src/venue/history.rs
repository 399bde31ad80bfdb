//! REST trade history → backfilled trades, for the gaps a reconnect leaves
//! in a trade stream (see `engine::continuity`). Only venues whose trades
//! carry a per-instrument consecutive number can be backfilled by id; each
//! such venue writes its request and reads its answer in its own `history`
//! module (`Protocol::trade_history_request` / `parse_trade_history`) and
//! hands the trades it read to [`push`]:
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

use super::{Instrument, Malformed};
use crate::batch::{Batch, Record, Trade, TradeId};
use crate::model::{Side, VenueId};
use rust_decimal::Decimal;

/// One trade of a history answer, venue fields already read.
pub struct Item {
    pub seq: u64,
    pub price: Decimal,
    pub quantity: Decimal,
    pub contracts: Option<Decimal>,
    pub side: Side,
    pub is_maker: Option<bool>,
    pub time: u64,
    /// The venue's text id (OKX, Deribit); Binance's is `seq` itself.
    pub id: Option<String>,
}

/// Pushes the trades of `items` in `from..=to`, oldest first, as `venue`'s.
/// Returns the lowest and highest sequence number pushed.
pub fn push(
    venue: VenueId,
    inst: &Instrument,
    mut items: Vec<Item>,
    (from, to): (u64, u64),
    receive_ns: u64,
    batch: &mut Batch,
) -> Result<Option<(u64, u64)>, Malformed> {
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

/// A JSON error of a history answer, classified.
pub fn json_err(e: sonic_rs::Error) -> Malformed {
    super::json::classify(&e)
}

/// A non-negative exact decimal.
pub fn exact(s: &str) -> Result<Decimal, Malformed> {
    match Decimal::from_str_exact(s) {
        Ok(d) if !d.is_sign_negative() => Ok(d),
        _ => Err(Malformed::InvalidNumber),
    }
}
