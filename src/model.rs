//! The small closed vocabularies every layer shares: venues, data types, sides.
//!
//! They are plain `Copy` enums with dense indices so per-core metrics can be
//! fixed-size arrays (no map lookups, no locks on the message path).

use std::fmt;

/// Declares a dense enum (discriminants 0, 1, …) with `ALL` (every variant,
/// in order), `COUNT` and `index` from its one list of variants, so adding a
/// variant is one line.
macro_rules! dense_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident,)+ }
    ) => {
        $(#[$meta])*
        $vis enum $name { $($(#[$vmeta])* $variant,)+ }

        impl $name {
            /// Every variant, in index order.
            pub const ALL: [$name; [$($name::$variant),+].len()] = [$($name::$variant),+];
            pub const COUNT: usize = Self::ALL.len();

            #[inline]
            pub fn index(self) -> usize {
                self as usize
            }
        }
    };
}

dense_enum! {
    /// A configured venue (exchange × market). Its facts (config key, record
    /// names, protocol) are its row in `venue::table`, which `VenueId`'s
    /// methods read.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum VenueId {
        BinanceSpot,
        /// Binance USDⓈ-M perpetuals.
        BinanceDerivatives,
        OkxSpot,
        /// OKX perpetual swaps.
        OkxDerivatives,
        DeribitDerivatives,
        BybitSpot,
        /// Bybit USDT/USDC linear perpetuals.
        BybitLinear,
    }
}

dense_enum! {
    /// A MarketPrism data type (plus `ticker` and `orderbook_delta`, ours).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum DataType {
        Trade,
        OrderBook,
        /// Every applied book update (opt-in per venue: `book_deltas = true`).
        OrderBookDelta,
        FundingRate,
        OpenInterest,
        Liquidation,
        LsrTopPosition,
        LsrAllAccount,
        VolatilityIndex,
        /// Best bid/offer (top of book) where the venue streams it.
        Ticker,
        /// What a stream lost (or may have lost): emitted by the collector, never
        /// configured.
        Gap,
    }
}

impl DataType {
    pub fn name(self) -> &'static str {
        match self {
            DataType::Trade => "trade",
            DataType::OrderBook => "orderbook",
            DataType::OrderBookDelta => "orderbook_delta",
            DataType::FundingRate => "funding_rate",
            DataType::OpenInterest => "open_interest",
            DataType::Liquidation => "liquidation",
            DataType::LsrTopPosition => "lsr_top_position",
            DataType::LsrAllAccount => "lsr_all_account",
            DataType::VolatilityIndex => "volatility_index",
            DataType::Ticker => "ticker",
            DataType::Gap => "gap",
        }
    }

    pub fn from_name(name: &str) -> Option<DataType> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Bit of this type in a [`DataTypeSet`].
    #[inline]
    pub fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of data types as a bit mask (what a symbol is configured to collect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct DataTypeSet(pub u16);

impl DataTypeSet {
    #[inline]
    pub fn contains(self, dt: DataType) -> bool {
        self.0 & dt.bit() != 0
    }

    #[inline]
    pub fn insert(&mut self, dt: DataType) {
        self.0 |= dt.bit();
    }

    pub fn all() -> DataTypeSet {
        DataTypeSet(DataType::ALL.iter().fold(0, |m, d| m | d.bit()))
    }
}

/// Taker (aggressor) side of a trade; order side of a liquidation.
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

    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
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
        assert_eq!(VenueId::COUNT, 7);
        assert_eq!(VenueId::ALL[0], VenueId::BinanceSpot);
        assert_eq!(VenueId::ALL[6], VenueId::BybitLinear);
        assert_eq!(VenueId::from_config_key("binance"), None);
    }

    #[test]
    fn data_type_names_round_trip() {
        for d in DataType::ALL {
            assert_eq!(DataType::from_name(d.name()), Some(d));
            assert_eq!(DataType::ALL[d.index()], d);
        }
        assert_eq!(DataType::COUNT, 11);
        assert_eq!(DataType::ALL[10], DataType::Gap);
        assert_eq!(DataType::from_name("orderbooks"), None);
        let mut s = DataTypeSet::default();
        s.insert(DataType::Ticker);
        assert!(s.contains(DataType::Ticker) && !s.contains(DataType::Trade));
    }

    #[test]
    fn deribit_volatility_is_options() {
        assert_eq!(
            VenueId::DeribitDerivatives.market_type_of(DataType::VolatilityIndex),
            "options"
        );
        assert_eq!(VenueId::OkxDerivatives.market_type(), "perpetual");
    }
}
