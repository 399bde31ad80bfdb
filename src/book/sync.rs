//! Per-symbol sync state machine: applies one venue's documented procedure
//! ([`SyncRule`]) to decide, for each message, whether it is applied, buffered,
//! ignored as stale, or reveals a gap (then the book is discarded and the
//! engine is asked for a REST snapshot or a resubscription). What it answers
//! ([`BookAction`]) and counts ([`BookStats`]) live here too, so `books`
//! depends on this module and not the other way round.

use super::msg::{BookMsg, SyncRule};
use super::order_book::OrderBook;

/// Where a book stands (for the engine and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// Nothing received since start or disconnect.
    Unsynced,
    /// Binance: diffs are buffered until a REST snapshot arrives;
    /// `requested`: a FetchSnapshot is outstanding (false after a failure).
    AwaitingRestSnapshot { requested: bool },
    /// WS-snapshot venues: a resubscription was asked for; updates are
    /// dropped until the fresh snapshot.
    AwaitingWsSnapshot,
    /// The book is verified and published.
    Synced,
}

/// What the engine must do for a book after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookAction {
    None,
    /// Fetch a REST snapshot of this symbol and hand it to
    /// [`Books::on_rest_snapshot`](crate::book::Books::on_rest_snapshot).
    FetchSnapshot,
    /// Unsubscribe and resubscribe this symbol's book channel (WS-snapshot venues).
    Resubscribe,
}

/// Counters of one venue's books on this core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BookStats {
    /// Incremental updates applied to a verified book.
    pub updates_applied: u64,
    /// Snapshots (REST or WS) loaded.
    pub snapshots_applied: u64,
    /// Books discarded (gap, crossed, checksum) and restarted.
    pub resyncs: u64,
    /// Sequence breaks detected.
    pub gaps: u64,
    pub checksum_failures: u64,
    /// Books found crossed (best bid >= best ask) after applying.
    pub crossed: u64,
    /// Updates older than the book, ignored.
    pub stale_dropped: u64,
    /// Messages of a rotation's replacement connection ahead of the book
    /// (left for the old connection to deliver).
    pub shadow_ahead: u64,
    /// Messages buffered while waiting for a REST snapshot.
    pub buffered: u64,
    /// `orderbook` records published.
    pub published: u64,
    /// Messages of symbols not registered.
    pub unknown_symbol: u64,
    /// `orderbook_delta` records published.
    pub deltas_published: u64,
    /// FetchSnapshot requests made.
    pub snapshot_requests: u64,
    /// REST snapshots older than the first buffered event (fetched again).
    pub stale_snapshots: u64,
    /// REST snapshot requests the engine reported failed.
    pub snapshot_failures: u64,
    /// Snapshots that arrived when none was expected.
    pub ignored_snapshots: u64,
    /// Buffers that hit the limit (cleared, snapshot fetched again).
    pub buffer_overflows: u64,
    /// Updates dropped while waiting for a WS snapshot.
    pub dropped_unsynced: u64,
    /// Venue checksums compared (OKX).
    pub checksums_verified: u64,
    /// Levels skipped as malformed (negative price or quantity).
    pub invalid_levels: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Unsynced,
    Buffering {
        fetching: bool,
    },
    AwaitWs,
    /// `bridge`: the next Binance event must bridge the REST snapshot.
    Synced {
        bridge: bool,
    },
}

/// What one message did to the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    pub action: BookAction,
    /// The verified book changed (publish it).
    pub changed: bool,
}

impl Step {
    const NONE: Step = Step {
        action: BookAction::None,
        changed: false,
    };

    fn act(action: BookAction) -> Step {
        Step {
            action,
            changed: false,
        }
    }
}

enum Verdict {
    Apply,
    Stale,
    Gap,
}

/// Why the book was discarded.
enum Bad {
    Gap,
    Crossed,
    Checksum,
}

#[inline]
/// A message's previous-update id as published (OKX's snapshot `-1`: none).
fn prev_of(msg: &BookMsg) -> Option<u64> {
    msg.prev_id.and_then(|p| u64::try_from(p).ok())
}

fn prev_is(msg: &BookMsg, id: u64) -> bool {
    matches!(msg.prev_id, Some(p) if u64::try_from(p) == Ok(id))
}

/// Copies `src` into `dst`, reusing `dst`'s allocations.
fn copy_msg(dst: &mut BookMsg, src: &BookMsg) {
    dst.raw_symbol.clear();
    dst.raw_symbol.push_str(&src.raw_symbol);
    dst.snapshot = src.snapshot;
    dst.first_id = src.first_id;
    dst.last_id = src.last_id;
    dst.prev_id = src.prev_id;
    dst.checksum = src.checksum;
    dst.bids.clear();
    dst.bids.extend_from_slice(&src.bids);
    dst.asks.clear();
    dst.asks.extend_from_slice(&src.asks);
    dst.ts_ms = src.ts_ms;
}

/// One symbol's book and sync state.
#[derive(Debug)]
pub(crate) struct BookSync {
    pub book: OrderBook,
    rule: SyncRule,
    phase: Phase,
    /// Binance buffer: the first `buffered` entries are live; the rest are
    /// kept for their allocations.
    buf: Vec<BookMsg>,
    buffered: usize,
    /// Exchange time of the last message reflected in the book.
    pub last_ts_ms: u64,
    /// The previous-update id the last applied message carried (USDⓈ-M
    /// `pu`, OKX `prevSeqId`, Deribit `prev_change_id`); `None` after a
    /// snapshot and for venues that send none.
    pub last_prev_id: Option<u64>,
}

impl BookSync {
    pub fn new(rule: SyncRule) -> BookSync {
        BookSync {
            book: OrderBook::new(),
            rule,
            phase: Phase::Unsynced,
            buf: Vec::new(),
            buffered: 0,
            last_ts_ms: 0,
            last_prev_id: None,
        }
    }

    pub fn is_synced(&self) -> bool {
        matches!(self.phase, Phase::Synced { .. })
    }

    pub fn state(&self) -> SyncState {
        match self.phase {
            Phase::Unsynced => SyncState::Unsynced,
            Phase::Buffering { fetching } => SyncState::AwaitingRestSnapshot {
                requested: fetching,
            },
            Phase::AwaitWs => SyncState::AwaitingWsSnapshot,
            Phase::Synced { .. } => SyncState::Synced,
        }
    }

    pub fn buffered(&self) -> usize {
        self.buffered
    }

    fn is_rest_snapshot(&self) -> bool {
        self.rule.rest_snapshot()
    }

    /// The engine lost the connection: start over on the next message.
    pub fn disconnect(&mut self) {
        self.book.clear();
        self.buffered = 0;
        self.phase = Phase::Unsynced;
    }

    /// The REST snapshot request failed: the next diff asks again.
    pub fn snapshot_failed(&mut self, stats: &mut BookStats) {
        if let Phase::Buffering { fetching: true } = self.phase {
            self.phase = Phase::Buffering { fetching: false };
            stats.snapshot_failures += 1;
        }
    }

    fn push_buf(&mut self, msg: &BookMsg, stats: &mut BookStats) {
        if self.buffered < self.buf.len() {
            copy_msg(&mut self.buf[self.buffered], msg);
        } else {
            self.buf.push(msg.clone());
        }
        self.buffered += 1;
        stats.buffered += 1;
    }

    fn request_snapshot(&mut self, stats: &mut BookStats) -> Step {
        self.phase = Phase::Buffering { fetching: true };
        stats.snapshot_requests += 1;
        Step::act(BookAction::FetchSnapshot)
    }

    /// Discards the book and asks for a fresh start (the caller decides what
    /// stays buffered).
    fn resync(&mut self, why: Bad, stats: &mut BookStats) -> Step {
        stats.resyncs += 1;
        match why {
            Bad::Gap => stats.gaps += 1,
            Bad::Crossed => stats.crossed += 1,
            Bad::Checksum => stats.checksum_failures += 1,
        }
        self.book.clear();
        if self.is_rest_snapshot() {
            self.request_snapshot(stats)
        } else {
            self.phase = Phase::AwaitWs;
            Step::act(BookAction::Resubscribe)
        }
    }

    /// A WebSocket book message. `applied` sees every update applied to a
    /// verified book (for delta records).
    pub fn on_ws(
        &mut self,
        msg: &BookMsg,
        stats: &mut BookStats,
        buffer_limit: usize,
        applied: &mut dyn FnMut(&BookMsg),
    ) -> Step {
        if msg.shadow && self.is_synced() {
            return self.shadow_ws(msg, stats, applied);
        }
        if self.is_rest_snapshot() {
            self.binance_ws(msg, stats, buffer_limit, applied)
        } else {
            self.ws_snapshot_rule(msg, stats, applied)
        }
    }

    fn binance_ws(
        &mut self,
        msg: &BookMsg,
        stats: &mut BookStats,
        buffer_limit: usize,
        applied: &mut dyn FnMut(&BookMsg),
    ) -> Step {
        if msg.snapshot {
            // Binance snapshots come over REST only.
            stats.ignored_snapshots += 1;
            return Step::NONE;
        }
        match self.phase {
            Phase::Unsynced | Phase::AwaitWs => {
                self.buffered = 0;
                self.push_buf(msg, stats);
                self.request_snapshot(stats)
            }
            Phase::Buffering { fetching } => {
                if self.buffered >= buffer_limit.max(1) {
                    stats.buffer_overflows += 1;
                    self.buffered = 0;
                    self.push_buf(msg, stats);
                    return self.request_snapshot(stats);
                }
                self.push_buf(msg, stats);
                if fetching {
                    Step::NONE
                } else {
                    self.request_snapshot(stats)
                }
            }
            Phase::Synced { bridge } => match self.binance_apply(msg, bridge, stats, applied) {
                Ok(changed) => Step {
                    action: BookAction::None,
                    changed,
                },
                Err(Bad::Gap) => {
                    let s = self.resync(Bad::Gap, stats);
                    // The event that revealed the gap starts the new buffer.
                    self.buffered = 0;
                    self.push_buf(msg, stats);
                    s
                }
                Err(why) => {
                    let s = self.resync(why, stats);
                    self.buffered = 0;
                    s
                }
            },
        }
    }

    /// A message of a replacement connection overlapping the current one
    /// (make-before-break rotation). Both carry the same updates; whichever
    /// delivers an update first applies it. Anything that does not extend
    /// the book exactly (its snapshot, an update the old connection has not
    /// reached yet) is left to the old connection instead of resyncing.
    fn shadow_ws(
        &mut self,
        msg: &BookMsg,
        stats: &mut BookStats,
        applied: &mut dyn FnMut(&BookMsg),
    ) -> Step {
        let last = self.book.last_update_id();
        let verdict = if msg.snapshot {
            if msg.last_id > last {
                Verdict::Gap
            } else {
                Verdict::Stale
            }
        } else {
            match (self.rule, self.phase) {
                (
                    SyncRule::RestSnapshotConsecutive | SyncRule::RestSnapshotLinked,
                    Phase::Synced { bridge },
                ) => self.binance_verdict(msg, bridge),
                (SyncRule::WsSnapshotLinked { .. }, _) if prev_is(msg, last) => Verdict::Apply,
                (SyncRule::WsSnapshotIncreasing, _) if msg.last_id == last + 1 => Verdict::Apply,
                _ if msg.last_id <= last => Verdict::Stale,
                _ => Verdict::Gap,
            }
        };
        match verdict {
            Verdict::Apply => {
                if self.is_rest_snapshot() {
                    self.phase = Phase::Synced { bridge: false };
                }
                match self.apply_update(msg, stats, applied) {
                    Ok(changed) => Step {
                        action: BookAction::None,
                        changed,
                    },
                    Err(why) => self.resync(why, stats),
                }
            }
            Verdict::Gap => {
                // Ahead of the old connection, which will deliver the rest.
                stats.shadow_ahead += 1;
                Step::NONE
            }
            Verdict::Stale => {
                stats.stale_dropped += 1;
                Step::NONE
            }
        }
    }

    fn binance_verdict(&self, msg: &BookMsg, bridge: bool) -> Verdict {
        let last = self.book.last_update_id();
        let (first, u) = (msg.first_id, msg.last_id);
        match (self.rule, bridge) {
            // Spot, first after the snapshot: U <= lastUpdateId+1 <= u.
            (SyncRule::RestSnapshotConsecutive, true) => {
                if u <= last {
                    Verdict::Stale
                } else if first <= last.saturating_add(1) {
                    Verdict::Apply
                } else {
                    Verdict::Gap
                }
            }
            (SyncRule::RestSnapshotConsecutive, false) => {
                if u <= last {
                    Verdict::Stale
                } else if first == last.saturating_add(1) {
                    Verdict::Apply
                } else {
                    Verdict::Gap
                }
            }
            // USDⓈ-M, first: drop u < lastUpdateId; need U <= lastUpdateId <= u.
            (_, true) => {
                if u < last {
                    Verdict::Stale
                } else if first <= last {
                    Verdict::Apply
                } else {
                    Verdict::Gap
                }
            }
            // USDⓈ-M: pu == previous u.
            (_, false) => {
                if u <= last {
                    Verdict::Stale
                } else if prev_is(msg, last) {
                    Verdict::Apply
                } else {
                    Verdict::Gap
                }
            }
        }
    }

    /// Applies one Binance diff to a synced book.
    fn binance_apply(
        &mut self,
        msg: &BookMsg,
        bridge: bool,
        stats: &mut BookStats,
        applied: &mut dyn FnMut(&BookMsg),
    ) -> Result<bool, Bad> {
        match self.binance_verdict(msg, bridge) {
            Verdict::Stale => {
                stats.stale_dropped += 1;
                Ok(false)
            }
            Verdict::Gap => Err(Bad::Gap),
            Verdict::Apply => {
                self.phase = Phase::Synced { bridge: false };
                self.apply_update(msg, stats, applied)
            }
        }
    }

    /// Applies an update whose sequence is verified; checks the result.
    fn apply_update(
        &mut self,
        msg: &BookMsg,
        stats: &mut BookStats,
        applied: &mut dyn FnMut(&BookMsg),
    ) -> Result<bool, Bad> {
        let a = self.book.apply(&msg.bids, &msg.asks, msg.last_id);
        stats.updates_applied += 1;
        stats.invalid_levels += a.invalid as u64;
        self.last_ts_ms = msg.ts_ms;
        self.last_prev_id = prev_of(msg);
        self.verify(msg, stats)?;
        applied(msg);
        Ok(a.changed)
    }

    fn verify(&self, msg: &BookMsg, stats: &mut BookStats) -> Result<(), Bad> {
        if let SyncRule::WsSnapshotLinked {
            checksum: Some(checksum),
        } = self.rule
        {
            if let Some(expected) = msg.checksum {
                stats.checksums_verified += 1;
                if checksum(&self.book) != expected {
                    return Err(Bad::Checksum);
                }
            }
        }
        if self.book.is_crossed() {
            return Err(Bad::Crossed);
        }
        Ok(())
    }

    /// A REST snapshot (Binance rules); other rules ignore it.
    pub fn on_rest_snapshot(
        &mut self,
        msg: &BookMsg,
        stats: &mut BookStats,
        applied: &mut dyn FnMut(&BookMsg),
    ) -> Step {
        if !self.is_rest_snapshot() || !matches!(self.phase, Phase::Buffering { .. }) {
            stats.ignored_snapshots += 1;
            return Step::NONE;
        }
        let l = msg.last_id;
        if self.buffered > 0 && l < self.buf[0].first_id {
            stats.stale_snapshots += 1;
            return self.request_snapshot(stats);
        }
        let a = self.book.load(&msg.bids, &msg.asks, l);
        stats.snapshots_applied += 1;
        stats.invalid_levels += a.invalid as u64;
        self.last_ts_ms = msg.ts_ms;
        self.last_prev_id = None;
        self.phase = Phase::Synced { bridge: true };
        if self.book.is_crossed() {
            // The buffered diffs still continue the stream: they stay.
            return self.resync(Bad::Crossed, stats);
        }
        // Replay the buffer; it is moved out so the book can be borrowed.
        let buf = std::mem::take(&mut self.buf);
        let n = self.buffered;
        self.buffered = 0;
        let mut out = Step {
            action: BookAction::None,
            changed: true,
        };
        for (i, m) in buf[..n].iter().enumerate() {
            let bridge = matches!(self.phase, Phase::Synced { bridge: true });
            match self.binance_apply(m, bridge, stats, applied) {
                Ok(_) => {}
                Err(why) => {
                    // A gap keeps its revealing event; after a crossed book
                    // the next ones continue the stream.
                    let keep = if matches!(why, Bad::Gap) { i } else { i + 1 };
                    out = self.resync(why, stats);
                    self.buf = buf;
                    self.buf[..n].rotate_left(keep);
                    self.buffered = n - keep;
                    return out;
                }
            }
        }
        self.buf = buf;
        out
    }

    /// WS-snapshot rules: the stream's snapshot (re)starts the book.
    fn ws_snapshot_rule(
        &mut self,
        msg: &BookMsg,
        stats: &mut BookStats,
        applied: &mut dyn FnMut(&BookMsg),
    ) -> Step {
        // Bybit: `u == 1` is a snapshot after a service restart, unless it
        // directly continues a synced book that is at `u == 0` (a delta then).
        let snapshot = msg.snapshot
            || (matches!(self.rule, SyncRule::WsSnapshotIncreasing)
                && msg.last_id == 1
                && !(self.is_synced() && self.book.last_update_id() == 0));
        if snapshot {
            let a = self.book.load(&msg.bids, &msg.asks, msg.last_id);
            stats.snapshots_applied += 1;
            stats.invalid_levels += a.invalid as u64;
            self.last_ts_ms = msg.ts_ms;
            self.last_prev_id = prev_of(msg);
            self.phase = Phase::Synced { bridge: false };
            return match self.verify(msg, stats) {
                Ok(()) => Step {
                    action: BookAction::None,
                    changed: true,
                },
                Err(why) => self.resync(why, stats),
            };
        }
        if !self.is_synced() {
            stats.dropped_unsynced += 1;
            return Step::NONE;
        }
        let last = self.book.last_update_id();
        let verdict = match self.rule {
            // No ids (pre-2022 OKX): only the checksum can tell.
            SyncRule::WsSnapshotLinked { checksum: Some(_) } if msg.prev_id.is_none() => {
                Verdict::Apply
            }
            // Also the keep-alive (prev == seq == last) and the reset (seq < prev).
            SyncRule::WsSnapshotLinked { .. } if prev_is(msg, last) => Verdict::Apply,
            // Already applied from the other connection of a rotation overlap.
            SyncRule::WsSnapshotLinked { .. } if msg.last_id <= last && !msg.snapshot => {
                Verdict::Stale
            }
            SyncRule::WsSnapshotLinked { .. } => Verdict::Gap,
            _ if msg.last_id <= last => Verdict::Stale,
            _ => Verdict::Apply,
        };
        match verdict {
            Verdict::Stale => {
                stats.stale_dropped += 1;
                Step::NONE
            }
            Verdict::Gap => self.resync(Bad::Gap, stats),
            Verdict::Apply => match self.apply_update(msg, stats, applied) {
                Ok(changed) => Step {
                    action: BookAction::None,
                    changed,
                },
                Err(why) => self.resync(why, stats),
            },
        }
    }
}
