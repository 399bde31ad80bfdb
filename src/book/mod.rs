//! Local order books: one per (venue, symbol) a core collects, kept in sync by
//! the procedure its venue documents ([`SyncRule`], chosen by the venue's
//! protocol; a checksum, if any, is the venue's too) and published as
//! MarketPrism `orderbook` records (top N, throttled) and optional
//! `orderbook_delta` records.
//!
//! - [`msg`]: what a venue parser hands over (one snapshot or update);
//! - [`side`] / [`order_book`]: the book structure;
//! - [`sync`]: the per-symbol state machine of each rule, what it answers
//!   and counts;
//! - [`books`]: the per-core set of books and publishing.

pub mod books;
pub mod msg;
pub mod order_book;
pub mod side;
pub mod sync;

pub use books::{BookConfig, Books};
pub use msg::{BookMsg, Checksum, SyncRule};
pub use order_book::OrderBook;
pub use sync::{BookAction, BookStats, SyncState};

#[cfg(test)]
mod tests;
