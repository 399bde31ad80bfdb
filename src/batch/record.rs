//! Normalized records. They borrow their strings (and book levels) from the
//! batch arena, so building one costs a bump-pointer move, not a heap
//! allocation. Field names follow MarketPrism's payloads (see `sink::encode`).

use crate::model::{DataType, Side, VenueId};
use rust_decimal::Decimal;

/// A venue's trade id: numeric (Binance) or an opaque string (others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeId<'b> {
    Num(u64),
    Str(&'b str),
}

/// Where a record comes from: the fields every record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'b> {
    pub venue: VenueId,
    /// Normalized `BASE-QUOTE` (Deribit volatility index: the currency, `BTC`).
    pub symbol: &'b str,
    /// The venue's own instrument name, e.g. `BTCUSDT`, `BTC-USDT-SWAP`.
    pub raw_symbol: &'b str,
    /// Exchange event time, ms (receive time when the venue sends none).
    pub ts_ms: u64,
    /// Local receive time, ns since the epoch.
    pub receive_ts_ns: u64,
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
    /// In base units (contracts × contract value where the venue counts contracts).
    pub quantity: Decimal,
    /// The venue's own count when it is in contracts (OKX swap `sz`, Deribit amount).
    pub contracts: Option<Decimal>,
    /// Taker side.
    pub side: Side,
    /// Venue's maker flag as MarketPrism forwards it (Binance: `m`, "buyer is maker").
    pub is_maker: Option<bool>,
    /// Trade (match) time, ms.
    pub trade_ts_ms: u64,
    /// The venue's per-instrument consecutive trade number, where it has one
    /// (Binance trade / aggregate id, OKX `tradeId`, Deribit `trade_seq`):
    /// what reconnect gaps are detected and backfilled by.
    pub seq: Option<u64>,
    /// Fetched over REST after a disconnect rather than streamed.
    pub backfilled: bool,
    /// Exchange event time, ms.
    pub ts_ms: u64,
    /// Local receive time, ns since the epoch.
    pub receive_ts_ns: u64,
}

/// One price level, as received (scale kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Level {
    pub price: Decimal,
    pub quantity: Decimal,
}

impl Level {
    pub fn new(price: Decimal, quantity: Decimal) -> Level {
        Level { price, quantity }
    }
}

/// `orderbook` (top N of a verified book) or `orderbook_delta` (one applied
/// update: changed levels, quantity 0 = removed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BookRecord<'b> {
    pub origin: Origin<'b>,
    /// `true`: an `orderbook_delta` record.
    pub delta: bool,
    /// The venue's update id of the book state (Binance `u`, OKX `seqId`,
    /// Bybit `u`, Deribit `change_id`).
    pub last_update_id: u64,
    /// First update id covered (Binance `U`; deltas only, else = last).
    pub first_update_id: u64,
    /// Previous update id where the venue sends one (`pu`, `prevSeqId`, `prev_change_id`).
    pub prev_update_id: Option<u64>,
    /// Best first: bids descending, asks ascending.
    pub bids: &'b [Level],
    pub asks: &'b [Level],
}

/// `funding_rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FundingRate<'b> {
    pub origin: Origin<'b>,
    pub funding_rate: Decimal,
    /// Predicted rate of the next period, where the venue gives one.
    pub estimated_rate: Option<Decimal>,
    /// Settlement time this rate applies to, ms.
    pub funding_ts_ms: Option<u64>,
    pub next_funding_ts_ms: Option<u64>,
    pub mark_price: Option<Decimal>,
    pub index_price: Option<Decimal>,
}

/// `open_interest`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenInterest<'b> {
    pub origin: Origin<'b>,
    /// In base units (coins).
    pub open_interest: Decimal,
    /// The venue's contract count, where it counts contracts.
    pub contracts: Option<Decimal>,
    /// Notional value in USD/quote, where the venue gives it.
    pub value_usd: Option<Decimal>,
}

/// `liquidation`. `side` is the liquidation **order** side (Binance `S`, OKX
/// `side`); a `sell` closes a long. `position_side` is the liquidated position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Liquidation<'b> {
    pub origin: Origin<'b>,
    pub side: Side,
    pub position_side: Option<&'b str>,
    pub price: Decimal,
    /// In base units.
    pub quantity: Decimal,
    pub contracts: Option<Decimal>,
    pub liquidation_ts_ms: u64,
}

/// `lsr_top_position` / `lsr_all_account`: long/short ratio for one period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LongShortRatio<'b> {
    pub origin: Origin<'b>,
    /// `LsrTopPosition` or `LsrAllAccount`.
    pub data_type: DataType,
    pub long_short_ratio: Decimal,
    /// Long share (position share for top positions, account share otherwise).
    pub long_ratio: Option<Decimal>,
    pub short_ratio: Option<Decimal>,
    /// `5m` style period.
    pub period: &'b str,
}

/// `volatility_index` (Deribit DVOL).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VolatilityIndex<'b> {
    pub origin: Origin<'b>,
    pub volatility_index: Decimal,
    /// e.g. `btc_usd`.
    pub index_name: &'b str,
}

/// `ticker`: best bid/offer (and last price where streamed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ticker<'b> {
    pub origin: Origin<'b>,
    pub bid_price: Option<Decimal>,
    pub bid_quantity: Option<Decimal>,
    pub ask_price: Option<Decimal>,
    pub ask_quantity: Option<Decimal>,
    pub last_price: Option<Decimal>,
    /// The venue's update id, where it sends one (Binance bookTicker `u`).
    pub update_id: Option<u64>,
}

/// `gap`: what one stream lost and could not recover (a trade range no
/// history covered, a book that had to be resynchronized).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap<'b> {
    /// Symbol of the stream; `ts_ms` = when the loss was established.
    pub origin: Origin<'b>,
    /// The stream's data type (`channel` in the record).
    pub stream: DataType,
    /// `disconnect`, `book_resync`, ...
    pub reason: &'static str,
    /// Sequence ids of the first and last record missing, where known.
    pub from_id: Option<u64>,
    pub to_id: Option<u64>,
    /// Times (ms) between which the loss happened.
    pub from_ts_ms: u64,
    pub to_ts_ms: u64,
    /// Records known missing (`None`: unknown, e.g. a venue without trade
    /// sequence numbers).
    pub missing: Option<u64>,
}

/// Any record a batch can hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Record<'b> {
    Trade(Trade<'b>),
    Book(BookRecord<'b>),
    Funding(FundingRate<'b>),
    OpenInterest(OpenInterest<'b>),
    Liquidation(Liquidation<'b>),
    Lsr(LongShortRatio<'b>),
    Volatility(VolatilityIndex<'b>),
    Ticker(Ticker<'b>),
    Gap(Gap<'b>),
}

impl<'b> Record<'b> {
    #[inline]
    pub fn data_type(&self) -> DataType {
        match self {
            Record::Trade(_) => DataType::Trade,
            Record::Book(b) if b.delta => DataType::OrderBookDelta,
            Record::Book(_) => DataType::OrderBook,
            Record::Funding(_) => DataType::FundingRate,
            Record::OpenInterest(_) => DataType::OpenInterest,
            Record::Liquidation(_) => DataType::Liquidation,
            Record::Lsr(l) => l.data_type,
            Record::Volatility(_) => DataType::VolatilityIndex,
            Record::Ticker(_) => DataType::Ticker,
            Record::Gap(_) => DataType::Gap,
        }
    }

    /// The common fields (a trade's are inline for its hot path).
    #[inline]
    pub fn origin(&self) -> Origin<'b> {
        match self {
            Record::Trade(t) => Origin {
                venue: t.venue,
                symbol: t.symbol,
                raw_symbol: t.raw_symbol,
                ts_ms: t.ts_ms,
                receive_ts_ns: t.receive_ts_ns,
            },
            Record::Book(r) => r.origin,
            Record::Funding(r) => r.origin,
            Record::OpenInterest(r) => r.origin,
            Record::Liquidation(r) => r.origin,
            Record::Lsr(r) => r.origin,
            Record::Volatility(r) => r.origin,
            Record::Ticker(r) => r.origin,
            Record::Gap(r) => r.origin,
        }
    }

    #[inline]
    pub fn venue(&self) -> VenueId {
        match self {
            Record::Trade(t) => t.venue,
            _ => self.origin().venue,
        }
    }

    #[inline]
    pub fn symbol(&self) -> &'b str {
        match self {
            Record::Trade(t) => t.symbol,
            _ => self.origin().symbol,
        }
    }

    #[inline]
    pub fn receive_ts_ns(&self) -> u64 {
        match self {
            Record::Trade(t) => t.receive_ts_ns,
            _ => self.origin().receive_ts_ns,
        }
    }
}
