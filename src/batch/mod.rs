//! Batching: records accumulate in a per-core [`Batch`] (bump arena) until the
//! shard flushes them to its sink by size or age.

pub mod arena;
pub mod record;

pub use arena::Batch;
pub use record::{
    BookRecord, FundingRate, Gap, Level, Liquidation, LongShortRatio, OpenInterest, Origin, Record,
    Ticker, Trade, TradeId, VolatilityIndex,
};
