//! Local order books: one per (venue, symbol) a core collects, kept in sync by
//! each venue's documented procedure ([`SyncRule`]) and published as
//! MarketPrism `orderbook` records (top N, throttled) and optional
//! `orderbook_delta` records.
//!
//! - [`msg`]: what a venue parser hands over (one snapshot or update);
//! - [`side`] / [`order_book`]: the book structure;
//! - [`sync`]: the per-symbol state machine of each rule;
//! - [`checksum`]: OKX's CRC32 of the top 25 levels;
//! - [`books`]: the per-core set of books and publishing.

pub mod books;
pub mod checksum;
pub mod msg;
pub mod order_book;
pub mod side;
pub mod sync;

pub use books::{BookAction, BookConfig, BookStats, Books};
pub use msg::{BookMsg, SyncRule};
pub use order_book::OrderBook;
pub use sync::SyncState;

#[cfg(test)]
mod tests;
