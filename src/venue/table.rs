//! The one table of venues: each [`VenueId`] with its config key, the
//! `exchange` and `market_type` of its records, and its [`Protocol`].
//! Every fact about a venue that is not in its protocol module is a column
//! here; `VenueId`'s methods read this table (the id itself stays in
//! `model`, the vocabulary every layer shares).

use super::{binance, bybit, deribit, okx, Protocol};
use crate::model::{DataType, VenueId};
use std::fmt;

/// One row of [`VENUES`].
pub struct Venue {
    pub id: VenueId,
    /// Key under `[exchanges.*]` in the config (MarketPrism's).
    pub config_key: &'static str,
    /// `exchange` field of records (MarketPrism's base exchange name).
    pub exchange: &'static str,
    /// `market_type` field of records (a protocol may override it per data
    /// type: [`Protocol::market_type_of`]).
    pub market_type: &'static str,
    /// The start of a `trade` record's JSON, up to the symbol's value (the
    /// encoder's hot path writes it in one copy).
    pub trade_head: &'static str,
    pub protocol: &'static dyn Protocol,
}

/// One row: the trade head is spelled out from the two names at compile time.
macro_rules! venue {
    ($id:ident, $key:literal, $exchange:literal, $market:literal, $protocol:expr) => {
        Venue {
            id: VenueId::$id,
            config_key: $key,
            exchange: $exchange,
            market_type: $market,
            trade_head: concat!(
                r#"{"data_type":"trade","exchange":""#,
                $exchange,
                r#"","market_type":""#,
                $market,
                r#"","symbol":"#
            ),
            protocol: $protocol,
        }
    };
}

/// Every venue, in [`VenueId`] order (a test checks it).
#[rustfmt::skip]
pub static VENUES: [Venue; VenueId::COUNT] = [
    venue!(BinanceSpot,        "binance_spot",        "binance", "spot",      &binance::spot::SPOT),
    venue!(BinanceDerivatives, "binance_derivatives", "binance", "perpetual", &binance::futures::FUTURES),
    venue!(OkxSpot,            "okx_spot",            "okx",     "spot",      &okx::OKX_SPOT),
    venue!(OkxDerivatives,     "okx_derivatives",     "okx",     "perpetual", &okx::OKX_SWAP),
    venue!(DeribitDerivatives, "deribit_derivatives", "deribit", "perpetual", &deribit::DERIBIT),
    venue!(BybitSpot,          "bybit_spot",          "bybit",   "spot",      &bybit::BYBIT_SPOT),
    venue!(BybitLinear,        "bybit_linear",        "bybit",   "perpetual", &bybit::BYBIT_LINEAR),
];

impl VenueId {
    /// This venue's row of [`VENUES`].
    #[inline]
    pub fn row(self) -> &'static Venue {
        &VENUES[self.index()]
    }

    /// Key under `[exchanges.*]` in the config.
    pub fn config_key(self) -> &'static str {
        self.row().config_key
    }

    pub fn from_config_key(key: &str) -> Option<VenueId> {
        VENUES.iter().find(|v| v.config_key == key).map(|v| v.id)
    }

    /// `exchange` field of records (MarketPrism's base exchange name).
    pub fn exchange(self) -> &'static str {
        self.row().exchange
    }

    /// `market_type` field of records. Deribit's volatility index is the
    /// exception (`options`, as MarketPrism publishes it): see
    /// [`VenueId::market_type_of`].
    pub fn market_type(self) -> &'static str {
        self.row().market_type
    }

    /// `market_type` of a record of `dt` from this venue.
    pub fn market_type_of(self, dt: DataType) -> &'static str {
        let row = self.row();
        row.protocol.market_type_of(dt).unwrap_or(row.market_type)
    }

    /// The start of this venue's `trade` records, up to the symbol's value.
    #[inline]
    pub fn trade_head(self) -> &'static [u8] {
        self.row().trade_head.as_bytes()
    }

    /// The venue's protocol.
    #[inline]
    pub fn protocol(self) -> &'static dyn Protocol {
        self.row().protocol
    }
}

impl fmt::Display for VenueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.config_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_in_id_order() {
        for (i, row) in VENUES.iter().enumerate() {
            assert_eq!(row.id.index(), i);
            assert_eq!(row.protocol.id(), row.id, "{}", row.config_key);
        }
    }
}
