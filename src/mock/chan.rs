//! The mock's non-book event channels: a leaf the venue modules and the
//! venue table (`venues`) both name.

/// Non-book event channels (each a deterministic sequence per symbol).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Chan {
    Trade,
    AggTrade,
    BookTicker,
    Ticker,
    MarkPrice,
    ForceOrder,
    Funding,
    OpenInterest,
    Liquidation,
    Volatility,
}
