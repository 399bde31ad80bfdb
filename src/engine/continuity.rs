//! Stream continuity across connections: one record per event however many
//! connections carry a stream, and the loss a reconnect caused made known.
//!
//! Every streamed record (books excepted: their sync rules do this job) has a
//! key that orders its stream: the trade sequence number where the venue has
//! one (Binance trade / aggregate id, OKX `tradeId`, Deribit `trade_seq`), an
//! update id (Binance `bookTicker`), else the exchange time. The last key
//! kept per stream, and the connection it came from, decide each record:
//!
//! - same connection as the last kept record: kept (a venue's own stream is
//!   trusted as sent);
//! - another connection while that one is still up (rotation overlap): kept
//!   only if its key is newer, so two connections carrying the same stream
//!   merge into one copy, whichever delivers first. A replacement joins a
//!   stream only once it has delivered something the old connection already
//!   had: until then its records are ahead of the old one's backlog and are
//!   deferred (dropped; the old connection delivers them), so the backlog is
//!   not mistaken for duplicates;
//! - another connection after that one went down (a reconnect): a repeat of
//!   the last record is dropped; for a sequence key, a jump past `last + 1`
//!   is a gap `[last + 1, key - 1]` to backfill; for a time key, the loss
//!   cannot be measured and a possible gap is reported.

use crate::batch::{Record, Trade};
use crate::model::{DataType, VenueId};
use crate::venue::sym::{Sym, SymKey};
use rustc_hash::FxHashMap;

/// How a record orders its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Consecutive per stream: gaps are measurable.
    Seq(u64),
    /// Increasing, unique, not consecutive (an update id).
    Id(u64),
    /// Exchange time (ms): several records may share one.
    Time(u64),
}

impl Key {
    fn value(self) -> u64 {
        match self {
            Key::Seq(v) | Key::Id(v) | Key::Time(v) => v,
        }
    }
}

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    Duplicate,
    /// A replacement's record ahead of the connection it replaces (dropped:
    /// that one delivers it).
    Deferred,
    /// Kept; sequence numbers `from..=to` were missed before it.
    Gap {
        from: u64,
        to: u64,
        since_ms: u64,
    },
    /// Kept; the stream was down since `since_ms` and loss cannot be measured.
    MaybeGap {
        since_ms: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Mark {
    key: u64,
    conn: u32,
    /// The replacement connection that has joined this stream (0: none).
    joined: u32,
    /// Exchange time of the last kept record (gap records say "since when").
    ts_ms: u64,
    /// Receive time (ns) of the stream's last record from any connection,
    /// kept or duplicate (stream liveness).
    seen_ns: u64,
}

/// A reconnect's loss on one stream, for the shard to backfill or report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamGap {
    pub venue: VenueId,
    pub data_type: DataType,
    pub raw_symbol: String,
    pub symbol: String,
    /// Missing sequence numbers (`None`: not measurable).
    pub range: Option<(u64, u64)>,
    pub from_ts_ms: u64,
    pub to_ts_ms: u64,
}

impl StreamGap {
    /// Its id range as log lines print it: `ids 5..=9`, or `ids unknown`
    /// (a venue without sequence numbers, a book resync).
    pub fn ids(&self) -> GapIds {
        GapIds(self.range)
    }
}

/// See [`StreamGap::ids`].
pub struct GapIds(Option<(u64, u64)>);

impl std::fmt::Display for GapIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some((a, b)) => write!(f, "ids {a}..={b}"),
            None => f.write_str("ids unknown"),
        }
    }
}

/// Per-core continuity state.
#[derive(Default)]
pub struct Continuity {
    /// `[venue][data type]`: raw symbol → last kept record.
    marks: Vec<Vec<FxHashMap<SymKey, Mark>>>,
    /// Connections (by epoch) currently up.
    live: Vec<u32>,
    /// (retired, replacement) pairs of rotations: a retired connection is
    /// live for comparison while its replacement is.
    retired: Vec<(u32, u32)>,
    pub duplicates: u64,
    /// Records of replacements deferred, and when the last one was (ns).
    pub deferred: u64,
    pub last_deferred_ns: u64,
}

/// The ordering key of a streamed record; `None`: not tracked (books, gaps).
#[inline]
pub fn key_of(rec: &Record<'_>) -> Option<Key> {
    Some(match rec {
        Record::Trade(Trade { seq: Some(s), .. }) => Key::Seq(*s),
        Record::Trade(t) => Key::Time(t.trade_ts_ms),
        Record::Ticker(t) => match t.update_id {
            Some(u) => Key::Id(u),
            None => Key::Time(t.origin.ts_ms),
        },
        Record::Liquidation(l) => Key::Time(l.liquidation_ts_ms),
        Record::Book(_) | Record::Gap(_) => return None,
        other => Key::Time(other.origin().ts_ms),
    })
}

impl Continuity {
    pub fn conn_up(&mut self, epoch: u32) {
        if !self.live.contains(&epoch) {
            self.live.push(epoch);
        }
    }

    pub fn conn_down(&mut self, epoch: u32) {
        self.live.retain(|&e| e != epoch);
        self.retired.retain(|&(_, n)| n != epoch);
    }

    /// `old` was replaced by `new` (make-before-break rotation).
    pub fn retire(&mut self, old: u32, new: u32) {
        self.live.retain(|&e| e != old);
        // Earlier connections this one stood for now stand for `new`.
        for r in self.retired.iter_mut() {
            if r.1 == old {
                r.1 = new;
            }
        }
        self.retired.push((old, new));
    }

    fn is_live(&self, epoch: u32) -> bool {
        self.live.contains(&epoch)
            || self
                .retired
                .iter()
                .any(|&(o, n)| o == epoch && self.live.contains(&n))
    }

    /// Decides one record of `conn` (see the module doc); `shadow`: `conn`
    /// is a replacement still overlapping the connection it replaces.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &mut self,
        venue: VenueId,
        dt: DataType,
        raw_symbol: &str,
        key: Key,
        ts_ms: u64,
        conn: u32,
        shadow: bool,
        now_ns: u64,
    ) -> Verdict {
        let (vi, di) = (venue.index(), dt.index());
        if self.marks.len() <= vi {
            self.marks.resize_with(VenueId::COUNT, Vec::new);
        }
        if self.marks[vi].len() <= di {
            self.marks[vi].resize_with(DataType::COUNT, FxHashMap::default);
        }
        let k = key.value();
        // The common case, in one lookup: the stream's last record came on
        // this same connection, so this one is kept (the full rules below
        // give `Keep` too).
        if let Some(mm) = self.marks[vi][di].get_mut(Sym::of(raw_symbol)) {
            if mm.conn == conn {
                mm.seen_ns = now_ns;
                mm.key = k;
                mm.ts_ms = ts_ms;
                return Verdict::Keep;
            }
        }
        let Some(m) = self.marks[vi][di].get(Sym::of(raw_symbol)).copied() else {
            // First record of the stream on this core: a one-time allocation.
            self.marks[vi][di].insert(
                SymKey::new(raw_symbol),
                Mark {
                    key: k,
                    conn,
                    joined: 0,
                    ts_ms,
                    seen_ns: now_ns,
                },
            );
            return Verdict::Keep;
        };
        if shadow && m.conn != conn && m.joined != conn {
            if k <= m.key {
                // Behind the old connection: from here on the two overlap.
                if let Some(mm) = self.marks[vi][di].get_mut(Sym::of(raw_symbol)) {
                    mm.joined = conn;
                    mm.seen_ns = now_ns;
                }
                self.duplicates += 1;
                return Verdict::Duplicate;
            }
            self.deferred += 1;
            self.last_deferred_ns = now_ns;
            return Verdict::Deferred;
        }
        let verdict = if m.conn == conn {
            Verdict::Keep
        } else if self.is_live(m.conn) {
            if k > m.key {
                Verdict::Keep
            } else {
                Verdict::Duplicate
            }
        } else {
            match key {
                Key::Seq(_) | Key::Id(_) if k == m.key => Verdict::Duplicate,
                Key::Seq(_) if k > m.key.saturating_add(1) => Verdict::Gap {
                    from: m.key + 1,
                    to: k - 1,
                    since_ms: m.ts_ms,
                },
                // A repeated state sample (venues resend the current value on
                // subscribe); trades may share a millisecond, so they pass.
                Key::Time(_) if k == m.key && dt != DataType::Trade => Verdict::Duplicate,
                Key::Time(_) if dt == DataType::Trade || dt == DataType::Liquidation => {
                    Verdict::MaybeGap { since_ms: m.ts_ms }
                }
                // Seq/Id at or below the mark from a new connection: the
                // venue's sequence restarted (maintenance); follow it.
                _ => Verdict::Keep,
            }
        };
        if let Some(mm) = self.marks[vi][di].get_mut(Sym::of(raw_symbol)) {
            mm.seen_ns = now_ns;
            if verdict != Verdict::Duplicate {
                mm.key = k;
                mm.conn = conn;
                mm.ts_ms = ts_ms;
            }
        }
        if verdict == Verdict::Duplicate {
            self.duplicates += 1;
        }
        verdict
    }

    fn mark(&self, venue: VenueId, dt: DataType, raw_symbol: &str) -> Option<&Mark> {
        self.marks
            .get(venue.index())?
            .get(dt.index())?
            .get(Sym::of(raw_symbol))
    }

    /// Receive time (ns) of the stream's last record; 0: none yet.
    pub fn last_seen_ns(&self, venue: VenueId, dt: DataType, raw_symbol: &str) -> u64 {
        self.mark(venue, dt, raw_symbol).map_or(0, |m| m.seen_ns)
    }

    /// A takeover: the stream already holds trades up to `key` (another
    /// instance stored them), so the next record is judged as after a
    /// reconnect from there: a jump is a gap to backfill from `key + 1`,
    /// nothing at or before `key` is fetched again.
    pub fn seed(&mut self, venue: VenueId, dt: DataType, raw_symbol: &str, key: u64, ts_ms: u64) {
        let (vi, di) = (venue.index(), dt.index());
        if self.marks.len() <= vi {
            self.marks.resize_with(VenueId::COUNT, Vec::new);
        }
        if self.marks[vi].len() <= di {
            self.marks[vi].resize_with(DataType::COUNT, FxHashMap::default);
        }
        let seen_ns = self.last_seen_ns(venue, dt, raw_symbol);
        // Epochs start at 1: 0 is never a live connection.
        self.marks[vi][di].insert(
            SymKey::new(raw_symbol),
            Mark {
                key,
                conn: 0,
                joined: 0,
                ts_ms,
                seen_ns,
            },
        );
    }

    /// The stream stopped on a connection still up (the venue dropped the
    /// subscription) and is being subscribed again: its next record is
    /// judged as after a reconnect, so what it missed is measured and
    /// backfilled or reported instead of trusted as consecutive.
    pub fn stream_lost(&mut self, venue: VenueId, dt: DataType, raw_symbol: &str) {
        if let Some(m) = self
            .marks
            .get_mut(venue.index())
            .and_then(|v| v.get_mut(dt.index()))
            .and_then(|d| d.get_mut(Sym::of(raw_symbol)))
        {
            // Epochs start at 1: 0 is never a live connection.
            m.conn = 0;
            m.joined = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: VenueId = VenueId::BinanceSpot;
    const T: DataType = DataType::Trade;

    #[test]
    fn gap_ids_print_the_range_or_unknown() {
        let mut g = StreamGap {
            venue: VenueId::OkxSpot,
            data_type: DataType::Trade,
            raw_symbol: "BTC-USDT".into(),
            symbol: "BTC-USDT".into(),
            range: Some((5, 9)),
            from_ts_ms: 0,
            to_ts_ms: 0,
        };
        assert_eq!(g.ids().to_string(), "ids 5..=9");
        g.range = None;
        assert_eq!(g.ids().to_string(), "ids unknown");
    }

    #[test]
    fn overlap_merges_two_connections_into_one_copy() {
        let mut c = Continuity::default();
        c.conn_up(1);
        c.conn_up(2);
        let mut kept = Vec::new();
        // Old (1) and new (2) deliver 10..=20 interleaved, each in order.
        let order = [
            (1, 10),
            (1, 11),
            (2, 11),
            (2, 12),
            (1, 12),
            (1, 13),
            (2, 13),
            (2, 14),
            (2, 15),
            (1, 14),
            (1, 15),
            (1, 16),
            (2, 16),
        ];
        for (conn, id) in order {
            if c.check(V, T, "BTCUSDT", Key::Seq(id), id, conn, false, 0) == Verdict::Keep {
                kept.push(id);
            }
        }
        assert_eq!(kept, (10..=16).collect::<Vec<_>>());
        assert_eq!(c.duplicates, 6);
    }

    #[test]
    fn a_replacement_ahead_of_the_old_backlog_is_deferred_until_it_joins() {
        let mut c = Continuity::default();
        c.conn_up(1);
        assert_eq!(
            c.check(V, T, "X", Key::Seq(10), 0, 1, false, 0),
            Verdict::Keep
        );
        c.conn_up(2);
        // The replacement subscribed later: it starts at 14 while the old
        // connection's 11..=13 are still on their way.
        assert_eq!(
            c.check(V, T, "X", Key::Seq(14), 0, 2, true, 5),
            Verdict::Deferred
        );
        assert_eq!(c.last_deferred_ns, 5);
        for id in 11..=14 {
            assert_eq!(
                c.check(V, T, "X", Key::Seq(id), 0, 1, false, 0),
                Verdict::Keep
            );
        }
        // Still ahead: deferred. A copy of what the old one had: joined.
        assert_eq!(
            c.check(V, T, "X", Key::Seq(15), 0, 2, true, 6),
            Verdict::Deferred
        );
        assert_eq!(
            c.check(V, T, "X", Key::Seq(14), 0, 2, true, 6),
            Verdict::Duplicate
        );
        // Merged from here on, whichever delivers first.
        assert_eq!(
            c.check(V, T, "X", Key::Seq(15), 0, 2, true, 6),
            Verdict::Keep
        );
        assert_eq!(
            c.check(V, T, "X", Key::Seq(15), 0, 1, false, 0),
            Verdict::Duplicate
        );
        assert_eq!(
            c.check(V, T, "X", Key::Seq(16), 0, 1, false, 0),
            Verdict::Keep
        );
        assert_eq!(
            c.check(V, T, "X", Key::Seq(16), 0, 2, true, 7),
            Verdict::Duplicate
        );
        assert_eq!(c.deferred, 2);
    }

    #[test]
    fn reconnect_reports_the_missing_sequence_range() {
        let mut c = Continuity::default();
        c.conn_up(1);
        assert_eq!(
            c.check(V, T, "X", Key::Seq(5), 500, 1, false, 0),
            Verdict::Keep
        );
        c.conn_down(1);
        c.conn_up(2);
        assert_eq!(
            c.check(V, T, "X", Key::Seq(9), 900, 2, false, 0),
            Verdict::Gap {
                from: 6,
                to: 8,
                since_ms: 500
            }
        );
        assert_eq!(
            c.check(V, T, "X", Key::Seq(10), 1000, 2, false, 0),
            Verdict::Keep
        );
        // No gap when the next one follows on directly.
        c.conn_down(2);
        c.conn_up(3);
        assert_eq!(
            c.check(V, T, "X", Key::Seq(11), 1100, 3, false, 0),
            Verdict::Keep
        );
        // A sequence restart is followed.
        c.conn_down(3);
        c.conn_up(4);
        assert_eq!(
            c.check(V, T, "X", Key::Seq(1), 1200, 4, false, 0),
            Verdict::Keep
        );
        assert_eq!(
            c.check(V, T, "X", Key::Seq(2), 1300, 4, false, 0),
            Verdict::Keep
        );
    }

    #[test]
    fn time_keys_drop_resent_samples_and_flag_unmeasurable_trade_loss() {
        let mut c = Continuity::default();
        let f = DataType::FundingRate;
        c.conn_up(1);
        assert_eq!(
            c.check(V, f, "X", Key::Time(100), 100, 1, false, 0),
            Verdict::Keep
        );
        c.conn_down(1);
        c.conn_up(2);
        assert_eq!(
            c.check(V, f, "X", Key::Time(100), 100, 2, false, 0),
            Verdict::Duplicate
        );
        assert_eq!(
            c.check(V, f, "X", Key::Time(200), 200, 2, false, 0),
            Verdict::Keep
        );
        assert_eq!(
            c.check(V, T, "Y", Key::Time(100), 100, 2, false, 0),
            Verdict::Keep
        );
        c.conn_down(2);
        c.conn_up(3);
        assert_eq!(
            c.check(V, T, "Y", Key::Time(150), 150, 3, false, 0),
            Verdict::MaybeGap { since_ms: 100 }
        );
        // Streams and venues are independent.
        assert_eq!(
            c.check(VenueId::OkxSpot, T, "Y", Key::Time(1), 1, 3, false, 0),
            Verdict::Keep
        );
    }

    #[test]
    fn a_seed_makes_the_first_live_trade_reveal_what_the_stream_lacks() {
        let mut c = Continuity::default();
        // This core carried the stream before (up to 5), another instance
        // stored up to 40 meanwhile: the seed wins.
        c.conn_up(1);
        c.check(V, T, "X", Key::Seq(5), 5, 1, false, 1);
        c.conn_down(1);
        c.seed(V, T, "X", 40, 400);
        c.conn_up(2);
        assert_eq!(
            c.check(V, T, "X", Key::Seq(44), 440, 2, false, 2),
            Verdict::Gap {
                from: 41,
                to: 43,
                since_ms: 400
            }
        );
        // A fresh stream: the next one on is kept, the stored one dropped.
        c.seed(V, T, "Y", 7, 70);
        assert_eq!(
            c.check(V, T, "Y", Key::Seq(7), 70, 2, false, 3),
            Verdict::Duplicate
        );
        assert_eq!(
            c.check(V, T, "Y", Key::Seq(8), 80, 2, false, 4),
            Verdict::Keep
        );
    }

    #[test]
    fn a_lost_stream_on_a_live_connection_measures_what_it_missed() {
        let mut c = Continuity::default();
        c.conn_up(1);
        assert_eq!(c.last_seen_ns(V, T, "BTCUSDT"), 0);
        for id in 1..=5 {
            c.check(V, T, "BTCUSDT", Key::Seq(id), id, 1, false, id * 10);
        }
        assert_eq!(c.last_seen_ns(V, T, "BTCUSDT"), 50);
        // The same connection's next record is trusted as consecutive...
        assert_eq!(
            c.check(V, T, "BTCUSDT", Key::Seq(9), 9, 1, false, 60),
            Verdict::Keep
        );
        // ...unless the stream was lost and resubscribed meanwhile.
        c.stream_lost(V, T, "BTCUSDT");
        assert_eq!(
            c.check(V, T, "BTCUSDT", Key::Seq(15), 15, 1, false, 70),
            Verdict::Gap {
                from: 10,
                to: 14,
                since_ms: 9
            }
        );
        assert_eq!(
            c.check(V, T, "BTCUSDT", Key::Seq(16), 16, 1, false, 80),
            Verdict::Keep
        );
        // A duplicate also shows the stream is alive.
        c.conn_up(2);
        assert_eq!(
            c.check(V, T, "BTCUSDT", Key::Seq(16), 16, 2, false, 90),
            Verdict::Duplicate
        );
        assert_eq!(c.last_seen_ns(V, T, "BTCUSDT"), 90);
        // Unknown streams are a no-op.
        c.stream_lost(V, T, "ETHUSDT");
        assert_eq!(c.last_seen_ns(V, T, "ETHUSDT"), 0);
    }
}
