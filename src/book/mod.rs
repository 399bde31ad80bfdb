//! Local order books: one per (venue, symbol) a core collects, kept in sync by
//! each venue's documented procedure ([`SyncRule`]) and published as
//! MarketPrism `orderbook` records (top N, throttled) and optional
//! `orderbook_delta` records.
//!
//! - [`msg`]: what a venue parser hands over (one snapshot or update);
//! - [`books`]: the per-core set of books, sync state machines and publishing.

pub mod books;
pub mod msg;

pub use books::{BookAction, BookConfig, BookStats, Books};
pub use msg::{BookMsg, SyncRule};
