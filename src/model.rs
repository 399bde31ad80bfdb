//! The small closed vocabularies every layer shares: venues, data types, sides.
//!
//! They are plain `Copy` enums with dense indices so per-core metrics can be
//! fixed-size arrays (no map lookups, no locks on the message path).

use std::fmt;

/// A configured venue (exchange × market). Its config key is MarketPrism's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VenueId {
    BinanceSpot,
}

impl VenueId {
    pub const ALL: [VenueId; 1] = [VenueId::BinanceSpot];
    pub const COUNT: usize = Self::ALL.len();

    /// Key under `[exchanges.*]` in the config.
    pub fn config_key(self) -> &'static str {
        match self {
            VenueId::BinanceSpot => "binance_spot",
        }
    }

    pub fn from_config_key(key: &str) -> Option<VenueId> {
        Self::ALL.into_iter().find(|v| v.config_key() == key)
    }

    /// `exchange` field of records (MarketPrism's base exchange name).
    pub fn exchange(self) -> &'static str {
        match self {
            VenueId::BinanceSpot => "binance",
        }
    }

    /// `market_type` field of records.
    pub fn market_type(self) -> &'static str {
        match self {
            VenueId::BinanceSpot => "spot",
        }
    }

    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for VenueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.config_key())
    }
}

/// A MarketPrism data type. Only the ones this build collects are listed in
/// [`DataType::ALL`]; [`DataType::KNOWN_UNSUPPORTED`] are recognised names that
/// a later version implements, so config errors can say which is which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    Trade,
}

impl DataType {
    pub const ALL: [DataType; 1] = [DataType::Trade];
    pub const COUNT: usize = Self::ALL.len();
    pub const KNOWN_UNSUPPORTED: [&'static str; 8] = [
        "orderbook",
        "funding_rate",
        "open_interest",
        "liquidation",
        "lsr_top_position",
        "lsr_all_account",
        "volatility_index",
        "ticker",
    ];

    pub fn name(self) -> &'static str {
        match self {
            DataType::Trade => "trade",
        }
    }

    pub fn from_name(name: &str) -> Option<DataType> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Taker (aggressor) side of a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venue_keys_round_trip() {
        for v in VenueId::ALL {
            assert_eq!(VenueId::from_config_key(v.config_key()), Some(v));
            assert_eq!(VenueId::ALL[v.index()], v);
        }
        assert_eq!(VenueId::from_config_key("binance"), None);
    }

    #[test]
    fn data_type_names_round_trip() {
        for d in DataType::ALL {
            assert_eq!(DataType::from_name(d.name()), Some(d));
            assert_eq!(DataType::ALL[d.index()], d);
        }
        assert_eq!(DataType::from_name("orderbook"), None);
    }
}
