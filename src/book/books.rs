//! The per-core set of books: routes each message to its symbol's sync state
//! machine and publishes verified books (`orderbook`, one per interval of
//! exchange time per symbol) and applied updates (`orderbook_delta`, opt-in)
//! into the batch arena.
//!
//! Which states are published depends only on the venue's data, so that
//! redundant instances (`[cluster] replicas`) publish the same update ids and
//! JetStream stores each once: the state after the first update whose
//! exchange time enters a new `publish_interval` (floor(ts / interval)
//! grows) is published at once. A state left unpublished (later updates of
//! the same interval) goes out when no update came for one interval of local
//! time (the trailing state: the same last update, so the same id, on every
//! instance), or at the latest two intervals after it changed (a venue whose
//! clock stalls still gets published).
//!
//! Updates without an exchange time carry their receive time (the parsers'
//! fallback, e.g. Binance spot REST snapshots): their cadence is then the
//! local clock's and differs between instances. Updates without an id (OKX
//! before `seqId`) are told apart by exchange time in the message id, so a
//! crossing and a trailing state of the same millisecond share an id and
//! JetStream keeps whichever arrives first.

use super::order_book::OrderBook;
use super::sync::{BookAction, BookStats, BookSync, Step, SyncState};
use crate::batch::{Batch, BookRecord, Level, Origin, Record};
use crate::book::{BookMsg, SyncRule};
use crate::model::VenueId;
use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{BuildHasherDefault, Hasher};

/// Publishing settings (per venue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookConfig {
    /// Levels per side in `orderbook` records (MarketPrism: 400).
    pub depth: usize,
    /// One `orderbook` record per symbol per interval of exchange time
    /// (MarketPrism: 100 ms); 0: every change.
    pub publish_interval_ns: u64,
    /// Also publish every applied update as an `orderbook_delta` record.
    pub deltas: bool,
}

impl Default for BookConfig {
    /// MarketPrism's: 400 levels, 100 ms, no deltas.
    fn default() -> Self {
        BookConfig {
            depth: 400,
            publish_interval_ns: 100_000_000,
            deltas: false,
        }
    }
}

/// Messages buffered per symbol while a REST snapshot is awaited.
pub const DEFAULT_BUFFER_LIMIT: usize = 10_000;

/// FNV-1a: symbol keys are short and trusted, SipHash buys nothing here.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type SymbolIndex = HashMap<String, usize, BuildHasherDefault<Fnv>>;

struct Venue {
    cfg: BookConfig,
    rule: SyncRule,
    index: SymbolIndex,
    stats: BookStats,
}

struct Symbol {
    venue: VenueId,
    raw: String,
    symbol: String,
    sync: BookSync,
    /// Newest exchange-time interval the book has reached; `None` from a
    /// (re)start until its first verified state.
    interval: Option<u64>,
    /// Changed since its last `orderbook` record.
    dirty: bool,
    /// Receive time of the first change not yet published.
    dirty_since_ns: u64,
    /// In `Books::dirty` (at most once, so that list never outgrows its capacity).
    listed: bool,
    /// Receive time of the last message reflected in the book.
    last_receive_ns: u64,
    /// Receive time of the last WebSocket message of this book, applied or
    /// not (stream liveness).
    last_ws_ns: u64,
}

pub struct Books {
    venues: [Venue; VenueId::COUNT],
    symbols: Vec<Symbol>,
    /// Indices of symbols with an unpublished change, in marking order.
    dirty: Vec<usize>,
    buffer_limit: usize,
}

impl Books {
    /// `rule_of` gives each venue's sync procedure (the engine passes
    /// `venue::book_rule`, what each venue's protocol documents: books know
    /// no venue). Venues not listed get [`BookConfig::default`].
    pub fn new(rule_of: impl Fn(VenueId) -> SyncRule, venues: &[(VenueId, BookConfig)]) -> Books {
        let mut v: [Venue; VenueId::COUNT] = std::array::from_fn(|i| Venue {
            cfg: BookConfig::default(),
            rule: rule_of(VenueId::ALL[i]),
            index: SymbolIndex::default(),
            stats: BookStats::default(),
        });
        for &(id, cfg) in venues {
            v[id.index()].cfg = cfg;
        }
        Books {
            venues: v,
            symbols: Vec::new(),
            dirty: Vec::new(),
            buffer_limit: DEFAULT_BUFFER_LIMIT,
        }
    }

    /// Overrides a venue's sync rule. Applies to symbols registered afterwards.
    pub fn set_rule(&mut self, venue: VenueId, rule: SyncRule) {
        self.venues[venue.index()].rule = rule;
    }

    /// Messages buffered per symbol while a REST snapshot is awaited.
    pub fn set_buffer_limit(&mut self, max_msgs: usize) {
        self.buffer_limit = max_msgs.max(1);
    }

    pub fn config(&self, venue: VenueId) -> BookConfig {
        self.venues[venue.index()].cfg
    }

    /// Adds a book (idempotent; re-registering renames the normalized symbol).
    pub fn register(&mut self, venue: VenueId, raw_symbol: &str, symbol: &str) {
        let v = &mut self.venues[venue.index()];
        if let Some(&i) = v.index.get(raw_symbol) {
            let s = &mut self.symbols[i];
            s.symbol.clear();
            s.symbol.push_str(symbol);
            return;
        }
        let i = self.symbols.len();
        v.index.insert(raw_symbol.to_string(), i);
        self.symbols.push(Symbol {
            venue,
            raw: raw_symbol.to_string(),
            symbol: symbol.to_string(),
            sync: BookSync::new(v.rule),
            interval: None,
            dirty: false,
            dirty_since_ns: 0,
            listed: false,
            last_receive_ns: 0,
            last_ws_ns: 0,
        });
        let n = self.symbols.len();
        self.dirty.reserve(n.saturating_sub(self.dirty.len()));
    }

    fn find(&self, venue: VenueId, raw_symbol: &str) -> Option<usize> {
        self.venues[venue.index()].index.get(raw_symbol).copied()
    }

    /// A WebSocket book message. `receive_ns` is also the trailing-state
    /// clock (the same clock as `publish_due`'s `now_ns`).
    pub fn on_ws(
        &mut self,
        venue: VenueId,
        msg: &BookMsg,
        receive_ns: u64,
        batch: &mut Batch,
    ) -> BookAction {
        self.handle(venue, msg, receive_ns, batch, false)
    }

    /// A REST snapshot the engine fetched after [`BookAction::FetchSnapshot`].
    pub fn on_rest_snapshot(
        &mut self,
        venue: VenueId,
        msg: &BookMsg,
        receive_ns: u64,
        batch: &mut Batch,
    ) -> BookAction {
        self.handle(venue, msg, receive_ns, batch, true)
    }

    fn handle(
        &mut self,
        venue: VenueId,
        msg: &BookMsg,
        receive_ns: u64,
        batch: &mut Batch,
        rest: bool,
    ) -> BookAction {
        let v = &mut self.venues[venue.index()];
        let Some(&i) = v.index.get(msg.raw_symbol.as_str()) else {
            v.stats.unknown_symbol += 1;
            return BookAction::None;
        };
        let cfg = v.cfg;
        let stats = &mut v.stats;
        let s = &mut self.symbols[i];
        if !rest {
            s.last_ws_ns = receive_ns;
        }
        let mut deltas = 0u64;
        let step: Step = {
            let (sym, raw) = (s.symbol.as_str(), s.raw.as_str());
            let mut on_applied = |m: &BookMsg| {
                if cfg.deltas {
                    push_delta(batch, venue, sym, raw, m, receive_ns);
                    deltas += 1;
                }
            };
            if rest {
                s.sync.on_rest_snapshot(msg, stats, &mut on_applied)
            } else {
                s.sync.on_ws(msg, stats, self.buffer_limit, &mut on_applied)
            }
        };
        stats.deltas_published += deltas;
        if !s.sync.is_synced() {
            // Never publish a book that is not verified; a pending record of
            // the discarded book is dropped with it.
            s.dirty = false;
            s.interval = None;
        } else if step.changed {
            s.last_receive_ns = receive_ns;
            let now = interval_of(s.sync.last_ts_ms, cfg.publish_interval_ns);
            // A (re)started book waits for the first crossing (or goes out as
            // the trailing state): its snapshot's id is this instance's own.
            let crossed = match s.interval {
                Some(prev) => now > prev || cfg.publish_interval_ns == 0,
                None => cfg.publish_interval_ns == 0,
            };
            s.interval = Some(s.interval.map_or(now, |p| p.max(now)));
            if crossed {
                publish(s, cfg.depth, stats, batch);
            } else {
                if !s.dirty {
                    s.dirty = true;
                    s.dirty_since_ns = receive_ns;
                }
                if !s.listed {
                    s.listed = true;
                    self.dirty.push(i);
                }
            }
        }
        step.action
    }

    /// The engine could not get a REST snapshot: the next diff asks again
    /// (and [`Books::needs_snapshot`] stays true).
    pub fn on_snapshot_failed(&mut self, venue: VenueId, raw_symbol: &str) {
        if let Some(i) = self.find(venue, raw_symbol) {
            let stats = &mut self.venues[venue.index()].stats;
            self.symbols[i].sync.snapshot_failed(stats);
        }
    }

    /// The symbol's connection dropped: its book is unsynced until the venue's
    /// procedure completes again on the new connection.
    pub fn on_disconnect(&mut self, venue: VenueId, raw_symbol: &str) {
        if let Some(i) = self.find(venue, raw_symbol) {
            let s = &mut self.symbols[i];
            s.sync.disconnect();
            s.dirty = false;
            s.interval = None;
        }
    }

    /// [`Books::on_disconnect`] for every symbol of `venue`.
    pub fn on_venue_disconnect(&mut self, venue: VenueId) {
        for s in self.symbols.iter_mut().filter(|s| s.venue == venue) {
            s.sync.disconnect();
            s.dirty = false;
            s.interval = None;
        }
    }

    /// Publishes the trailing state of every book whose deadline has passed
    /// (see the module doc); returns the earliest deadline still pending.
    pub fn publish_due(&mut self, now_ns: u64, batch: &mut Batch) -> Option<u64> {
        let mut next: Option<u64> = None;
        let mut keep = 0;
        for k in 0..self.dirty.len() {
            let i = self.dirty[k];
            let s = &mut self.symbols[i];
            if !s.dirty || !s.sync.is_synced() {
                s.dirty = false;
                s.listed = false;
                continue;
            }
            let v = &mut self.venues[s.venue.index()];
            let due = trailing_due(s, v.cfg.publish_interval_ns);
            if now_ns >= due {
                publish(s, v.cfg.depth, &mut v.stats, batch);
                s.listed = false;
            } else {
                next = Some(next.map_or(due, |n| n.min(due)));
                self.dirty[keep] = i;
                keep += 1;
            }
        }
        self.dirty.truncate(keep);
        next
    }

    /// Publishes a synced book now, whatever the cadence says (on demand,
    /// benches). Returns false if the book is unknown or not synced.
    pub fn publish_now(&mut self, venue: VenueId, raw_symbol: &str, batch: &mut Batch) -> bool {
        let Some(i) = self.find(venue, raw_symbol) else {
            return false;
        };
        let s = &mut self.symbols[i];
        if !s.sync.is_synced() {
            return false;
        }
        let v = &mut self.venues[venue.index()];
        publish(s, v.cfg.depth, &mut v.stats, batch);
        true
    }

    /// Earliest time a pending trailing state is due, if any.
    pub fn next_publish_ns(&self) -> Option<u64> {
        self.dirty
            .iter()
            .map(|&i| &self.symbols[i])
            .filter(|s| s.dirty && s.sync.is_synced())
            .map(|s| trailing_due(s, self.venues[s.venue.index()].cfg.publish_interval_ns))
            .min()
    }

    pub fn stats(&self, venue: VenueId) -> &BookStats {
        &self.venues[venue.index()].stats
    }

    /// Receive time (ns) of the symbol's last WebSocket book message; 0: none.
    pub fn last_ws_ns(&self, venue: VenueId, raw_symbol: &str) -> u64 {
        self.find(venue, raw_symbol)
            .map_or(0, |i| self.symbols[i].last_ws_ns)
    }

    pub fn book(&self, venue: VenueId, raw_symbol: &str) -> Option<&OrderBook> {
        self.find(venue, raw_symbol)
            .map(|i| &self.symbols[i].sync.book)
    }

    pub fn is_synced(&self, venue: VenueId, raw_symbol: &str) -> bool {
        self.find(venue, raw_symbol)
            .is_some_and(|i| self.symbols[i].sync.is_synced())
    }

    pub fn sync_state(&self, venue: VenueId, raw_symbol: &str) -> Option<SyncState> {
        self.find(venue, raw_symbol)
            .map(|i| self.symbols[i].sync.state())
    }

    /// Waiting for a REST snapshot (requested or to be retried).
    pub fn needs_snapshot(&self, venue: VenueId, raw_symbol: &str) -> bool {
        matches!(
            self.sync_state(venue, raw_symbol),
            Some(SyncState::AwaitingRestSnapshot { .. })
        )
    }

    /// Raw symbols of `venue` waiting for a REST snapshot.
    pub fn waiting_for_snapshot(&self, venue: VenueId) -> impl Iterator<Item = &str> + '_ {
        self.symbols
            .iter()
            .filter(move |s| {
                s.venue == venue && matches!(s.sync.state(), SyncState::AwaitingRestSnapshot { .. })
            })
            .map(|s| s.raw.as_str())
    }

    /// Messages currently buffered for a symbol (Binance, awaiting a snapshot).
    pub fn buffered(&self, venue: VenueId, raw_symbol: &str) -> usize {
        self.find(venue, raw_symbol)
            .map_or(0, |i| self.symbols[i].sync.buffered())
    }
}

/// The exchange-time interval `ts_ms` falls in (0 for interval 0).
#[inline]
fn interval_of(ts_ms: u64, interval_ns: u64) -> u64 {
    const MS: u64 = 1_000_000;
    if interval_ns == 0 {
        0
    } else if interval_ns % MS == 0 {
        ts_ms / (interval_ns / MS)
    } else {
        // Sub-millisecond intervals (tests): exact in u128.
        (u128::from(ts_ms) * u128::from(MS) / u128::from(interval_ns)) as u64
    }
}

/// When a pending state goes out: one quiet interval after its last change,
/// and at the latest two intervals after the first unpublished one.
#[inline]
fn trailing_due(s: &Symbol, interval_ns: u64) -> u64 {
    let quiet = s.last_receive_ns.saturating_add(interval_ns);
    let cap = s
        .dirty_since_ns
        .saturating_add(interval_ns.saturating_mul(2));
    quiet.min(cap)
}

/// Pushes the top `depth` levels of a verified book as an `orderbook` record.
fn publish(s: &mut Symbol, depth: usize, stats: &mut BookStats, batch: &mut Batch) {
    let book = &s.sync.book;
    let (sym, raw) = (s.symbol.as_str(), s.raw.as_str());
    let (venue, ts_ms, recv) = (s.venue, s.sync.last_ts_ms, s.last_receive_ns);
    let (id, prev) = (book.last_update_id(), s.sync.last_prev_id);
    let _ = batch.push_with::<Infallible>(recv, |bump| {
        Ok(Record::Book(BookRecord {
            origin: Origin {
                venue,
                symbol: bump.alloc_str(sym),
                raw_symbol: bump.alloc_str(raw),
                ts_ms,
                receive_ts_ns: recv,
            },
            delta: false,
            last_update_id: id,
            first_update_id: id,
            prev_update_id: prev,
            bids: best_first(bump, book.bids().as_worst_first(), depth),
            asks: best_first(bump, book.asks().as_worst_first(), depth),
        }))
    });
    s.dirty = false;
    stats.published += 1;
}

/// The best `depth` of a worst-first side, best first, in the arena: one
/// reversed copy (a copy then an in-place reverse read and wrote it twice).
fn best_first<'b>(bump: &'b bumpalo::Bump, worst_first: &[Level], depth: usize) -> &'b [Level] {
    let n = worst_first.len();
    let src = &worst_first[n - depth.min(n)..];
    let len = src.len();
    bump.alloc_slice_fill_with(len, |i| src[len - 1 - i])
}

/// Sorts one side of a delta best first (`desc`: bids) in place: a binary
/// insertion sort, because it is stable (a price sent twice in one message
/// keeps its order, the later one wins), allocates nothing, and the venues
/// send their levels sorted already, which makes it one pass of compares.
fn sort_best_first(levels: &mut [Level], desc: bool) {
    let before = |a: &Level, b: &Level| {
        if desc {
            a.price >= b.price
        } else {
            a.price <= b.price
        }
    };
    for i in 1..levels.len() {
        if before(&levels[i - 1], &levels[i]) {
            continue;
        }
        let x = levels[i];
        let j = levels[..i].partition_point(|l| before(l, &x));
        levels[j..=i].rotate_right(1);
    }
}

/// Pushes one applied update as an `orderbook_delta` record (levels best
/// first, as in `orderbook` records).
fn push_delta(batch: &mut Batch, venue: VenueId, sym: &str, raw: &str, m: &BookMsg, recv: u64) {
    let _ = batch.push_with::<Infallible>(recv, |bump| {
        Ok(Record::Book(BookRecord {
            origin: Origin {
                venue,
                symbol: bump.alloc_str(sym),
                raw_symbol: bump.alloc_str(raw),
                ts_ms: m.ts_ms,
                receive_ts_ns: recv,
            },
            delta: true,
            last_update_id: m.last_id,
            first_update_id: m.first_id,
            prev_update_id: m.prev_id.and_then(|p| u64::try_from(p).ok()),
            bids: {
                let b = bump.alloc_slice_copy(&m.bids);
                sort_best_first(b, true);
                b
            },
            asks: {
                let a = bump.alloc_slice_copy(&m.asks);
                sort_best_first(a, false);
                a
            },
        }))
    });
}
