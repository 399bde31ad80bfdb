//! Normalized records. They borrow their strings from the batch arena, so
//! building one costs a bump-pointer move, not a heap allocation.

use crate::model::{DataType, Side, VenueId};
use rust_decimal::Decimal;

/// A venue's trade id: numeric (Binance) or an opaque string (others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeId<'b> {
    Num(u64),
    Str(&'b str),
}

/// One public trade, MarketPrism's `trade` payload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trade<'b> {
    pub venue: VenueId,
    /// Normalized `BASE-QUOTE`.
    pub symbol: &'b str,
    /// The venue's own symbol, e.g. `BTCUSDT`.
    pub raw_symbol: &'b str,
    pub trade_id: TradeId<'b>,
    /// Exact, parsed from the received string (scale kept: "0.00100000").
    pub price: Decimal,
    pub quantity: Decimal,
    /// Taker side.
    pub side: Side,
    /// Venue's maker flag as MarketPrism forwards it (Binance: `m`, "buyer is maker").
    pub is_maker: Option<bool>,
    /// Trade (match) time, ms.
    pub trade_ts_ms: u64,
    /// Exchange event time, ms.
    pub ts_ms: u64,
    /// Local receive time, ns since the epoch.
    pub receive_ts_ns: u64,
}

/// Any record a batch can hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Record<'b> {
    Trade(Trade<'b>),
}

impl Record<'_> {
    #[inline]
    pub fn data_type(&self) -> DataType {
        match self {
            Record::Trade(_) => DataType::Trade,
        }
    }

    #[inline]
    pub fn venue(&self) -> VenueId {
        match self {
            Record::Trade(t) => t.venue,
        }
    }

    #[inline]
    pub fn receive_ts_ns(&self) -> u64 {
        match self {
            Record::Trade(t) => t.receive_ts_ns,
        }
    }
}
