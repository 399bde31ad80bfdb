//! The per-core batch: records live in a bump arena that is rewound after each
//! flush, so steady-state parsing allocates nothing on the heap.
//!
//! Safety design: records are stored as pointers into `arena`. They are only
//! handed out as `&Record<'a>` tied to a borrow of the batch, and the pointer
//! list is cleared before the arena is reset, so no record outlives its memory.
//!
//! A parser may also write a record's JSON as it builds it (a trade while its
//! frame is at hand: its numbers are copied rather than printed); the file
//! sink then copies that instead of encoding the record.

use super::record::Record;
use bumpalo::Bump;
use std::ptr::NonNull;

pub struct Batch {
    /// Points into `arena`; cleared before `arena` is reset.
    records: Vec<NonNull<Record<'static>>>,
    /// Per record, its line in `json` (`start..end`, the newline included),
    /// or empty: not written.
    json_at: Vec<(u32, u32)>,
    /// Lines written by the parsers: what `sink::encode::encode_json` would
    /// write for the record, and a newline.
    json: Vec<u8>,
    /// Every record has its line and `json` is exactly those lines, in order.
    json_whole: bool,
    /// Whether parsers should write lines (a file sink takes them).
    lines_wanted: bool,
    arena: Bump,
    oldest_receive_ns: Option<u64>,
    high_water_bytes: usize,
    resets: u64,
}

impl Batch {
    /// A batch for up to `max_events` records; the arena is pre-sized for
    /// `arena_bytes` so the first batches do not have to grow it.
    pub fn new(max_events: usize, arena_bytes: usize) -> Batch {
        Batch {
            records: Vec::with_capacity(max_events),
            json_at: Vec::with_capacity(max_events),
            json: Vec::new(),
            json_whole: true,
            lines_wanted: true,
            arena: Bump::with_capacity(arena_bytes),
            oldest_receive_ns: None,
            high_water_bytes: 0,
            resets: 0,
        }
    }

    /// Builds a record with `f` (which may copy strings into the arena) and
    /// appends it. `receive_ns` is the frame's receive time.
    #[inline]
    pub fn push_with<E>(
        &mut self,
        receive_ns: u64,
        f: impl for<'b> FnOnce(&'b Bump) -> Result<Record<'b>, E>,
    ) -> Result<(), E> {
        let rec = f(&self.arena)?;
        let r = NonNull::from(self.arena.alloc(rec));
        self.json_whole = false;
        self.append(receive_ns, r.cast(), (0, 0));
        Ok(())
    }

    /// Whether the parsers' lines are used: with the file sink off, or fed
    /// by another sink's encoding (NATS), writing them is wasted work.
    pub fn set_lines_wanted(&mut self, wanted: bool) {
        self.lines_wanted = wanted;
    }

    /// See [`Self::set_lines_wanted`]; a parser that can write lines checks it.
    #[inline]
    pub fn lines_wanted(&self) -> bool {
        self.lines_wanted
    }

    /// [`Self::push_with`] where `f` also appends the record's JSON (exactly
    /// what `sink::encode::encode_json` writes for it) to the buffer it is
    /// given.
    #[inline]
    pub fn push_encoded<E>(
        &mut self,
        receive_ns: u64,
        f: impl for<'b> FnOnce(&'b Bump, &mut Vec<u8>) -> Result<Record<'b>, E>,
    ) -> Result<(), E> {
        let start = self.json.len();
        let rec = match f(&self.arena, &mut self.json) {
            Ok(r) => r,
            Err(e) => {
                self.json.truncate(start);
                return Err(e);
            }
        };
        self.json.push(b'\n');
        // Offsets past 4 GiB of one batch's JSON: encoded again at the sink.
        let at = match (u32::try_from(start), u32::try_from(self.json.len())) {
            (Ok(s), Ok(e)) => (s, e),
            _ => {
                self.json_whole = false;
                (0, 0)
            }
        };
        let r = NonNull::from(self.arena.alloc(rec));
        self.append(receive_ns, r.cast(), at);
        Ok(())
    }

    /// `r`: the record just allocated in the arena, its lifetime erased
    /// (see the module doc for why this is sound).
    #[inline(always)]
    fn append(&mut self, receive_ns: u64, r: NonNull<Record<'static>>, json_at: (u32, u32)) {
        self.records.push(r);
        self.json_at.push(json_at);
        if self.oldest_receive_ns.is_none() {
            self.oldest_receive_ns = Some(receive_ns);
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Receive time of the oldest record, if any.
    #[inline]
    pub fn oldest_receive_ns(&self) -> Option<u64> {
        self.oldest_receive_ns
    }

    /// Drops the records from position `len` on (a polled answer that repeated
    /// the last datapoint). Their arena bytes stay until the next reset.
    pub fn truncate(&mut self, len: usize) {
        if len < self.records.len() && self.json_whole {
            // The lines of the records kept end where the last one's does.
            let end = len.checked_sub(1).map_or(0, |i| self.json_at[i].1);
            self.json.truncate(end as usize);
        }
        self.records.truncate(len);
        self.json_at.truncate(len);
        if self.records.is_empty() {
            self.oldest_receive_ns = None;
        }
    }

    /// Keeps, from position `start` on, only the records `keep` accepts (in
    /// order). Dropped records' arena bytes stay until the next reset.
    pub fn retain_from(&mut self, start: usize, mut keep: impl FnMut(&Record<'_>) -> bool) {
        let start = start.min(self.records.len());
        let mut w = start;
        for r in start..self.records.len() {
            let p = self.records[r];
            // SAFETY: as in `iter`; the record is read before any reset.
            if keep(unsafe { p.cast::<Record<'_>>().as_ref() }) {
                if w != r {
                    // A kept line after a dropped one: no longer one run.
                    self.json_whole = false;
                }
                self.records[w] = p;
                self.json_at[w] = self.json_at[r];
                w += 1;
            }
        }
        self.truncate(w);
    }

    /// The records from position `start` on (those one frame just added).
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = &Record<'_>> + '_ {
        // SAFETY: as in `iter`.
        self.records[start.min(self.records.len())..]
            .iter()
            .map(|p| unsafe { p.cast::<Record<'_>>().as_ref() })
    }

    /// The records in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = &Record<'_>> + '_ {
        // SAFETY: every pointer refers to a live record in `self.arena`
        // (cleared together in `reset`); the returned lifetime is bounded by
        // the `&self` borrow, which prevents a reset while it is held.
        self.records
            .iter()
            .map(|p| unsafe { p.cast::<Record<'_>>().as_ref() })
    }

    /// The records in arrival order, each with its JSON (no newline) where
    /// its parser wrote it ([`Self::push_encoded`]).
    pub fn iter_json(&self) -> impl Iterator<Item = (&Record<'_>, Option<&[u8]>)> + '_ {
        self.iter().zip(self.json_at.iter()).map(|(r, &(s, e))| {
            let json = self.json.get(s as usize..(e as usize).saturating_sub(1));
            (r, json.filter(|_| e > s))
        })
    }

    /// Every record's line ([`Self::iter_json`] and a newline each) as one
    /// slice, when every record has one: a sink copies them at once.
    pub fn json_lines(&self) -> Option<&[u8]> {
        self.json_whole.then_some(&self.json[..])
    }

    /// Moves every record's line ([`Self::json_lines`]) into `into`, which
    /// must be empty, by swapping buffers (`into`'s capacity is reused for
    /// the next lines). `false`: not every record has its line, or `into`
    /// holds bytes; nothing moved. The records stay, without lines.
    pub fn take_json_lines(&mut self, into: &mut Vec<u8>) -> bool {
        if !self.json_whole || !into.is_empty() {
            return false;
        }
        std::mem::swap(&mut self.json, into);
        self.json.clear();
        self.json_at.fill((0, 0));
        self.json_whole = self.records.is_empty();
        true
    }

    /// Bytes currently allocated in the arena.
    pub fn arena_bytes(&self) -> usize {
        self.arena.allocated_bytes()
    }

    /// Largest arena size seen at a reset.
    pub fn high_water_bytes(&self) -> usize {
        self.high_water_bytes
    }

    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// Drops every record and rewinds the arena (keeps its largest chunk).
    pub fn reset(&mut self) {
        self.high_water_bytes = self.high_water_bytes.max(self.arena.allocated_bytes());
        self.records.clear();
        self.json_at.clear();
        self.json.clear();
        self.json_whole = true;
        self.arena.reset();
        self.oldest_receive_ns = None;
        self.resets += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::record::{Trade, TradeId};
    use crate::model::{Side, VenueId};
    use rust_decimal::Decimal;
    use std::str::FromStr;

    fn push(b: &mut Batch, sym: &str, id: u64, recv: u64) {
        b.push_with::<()>(recv, |bump| {
            Ok(Record::Trade(Trade {
                seq: None,
                backfilled: false,
                venue: VenueId::BinanceSpot,
                symbol: bump.alloc_str(sym),
                raw_symbol: bump.alloc_str("X"),
                trade_id: TradeId::Num(id),
                price: Decimal::from_str("1.50").unwrap(),
                quantity: Decimal::ONE,
                contracts: None,
                side: Side::Buy,
                is_maker: None,
                trade_ts_ms: 1,
                ts_ms: 2,
                receive_ts_ns: recv,
            }))
        })
        .unwrap();
    }

    #[test]
    fn keeps_order_and_resets() {
        let mut b = Batch::new(8, 1024);
        push(&mut b, "BTC-USDT", 1, 100);
        push(&mut b, "ETH-USDT", 2, 200);
        assert_eq!(b.len(), 2);
        assert_eq!(b.oldest_receive_ns(), Some(100));
        let ids: Vec<(String, TradeId<'_>)> = b
            .iter()
            .map(|r| match r {
                Record::Trade(t) => (t.symbol.to_string(), t.trade_id),
                _ => panic!("not a trade"),
            })
            .collect();
        assert_eq!(
            ids,
            vec![
                ("BTC-USDT".into(), TradeId::Num(1)),
                ("ETH-USDT".into(), TradeId::Num(2))
            ]
        );
        b.reset();
        assert!(b.is_empty());
        assert_eq!(b.oldest_receive_ns(), None);
        assert!(b.high_water_bytes() > 0);
        push(&mut b, "SOL-USDT", 3, 300);
        let first = b.iter().next().copied();
        match first {
            Some(Record::Trade(t)) => assert_eq!(t.symbol, "SOL-USDT"),
            _ => panic!("not the trade pushed"),
        }
    }

    fn push_line(b: &mut Batch, sym: &str, id: u64, line: &str) {
        b.push_encoded::<()>(id, |bump, json| {
            json.extend_from_slice(line.as_bytes());
            Ok(Record::Trade(Trade {
                seq: None,
                backfilled: false,
                venue: VenueId::BinanceSpot,
                symbol: bump.alloc_str(sym),
                raw_symbol: bump.alloc_str("X"),
                trade_id: TradeId::Num(id),
                price: Decimal::ONE,
                quantity: Decimal::ONE,
                contracts: None,
                side: Side::Buy,
                is_maker: None,
                trade_ts_ms: 1,
                ts_ms: 2,
                receive_ts_ns: id,
            }))
        })
        .unwrap();
    }

    fn lines(b: &Batch) -> (Option<String>, Vec<Option<String>>) {
        let text = |j: &[u8]| String::from_utf8(j.to_vec()).unwrap();
        let all = b.json_lines().map(text);
        (all, b.iter_json().map(|(_, j)| j.map(text)).collect())
    }

    #[test]
    fn lines_follow_their_records() {
        let mut b = Batch::new(8, 1024);
        push_line(&mut b, "A", 1, "{1}");
        push_line(&mut b, "A", 2, "{2}");
        push_line(&mut b, "A", 3, "{3}");
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            lines(&b),
            (
                some("{1}\n{2}\n{3}\n"),
                vec![some("{1}"), some("{2}"), some("{3}")]
            )
        );
        // Dropping the last keeps one run; a failed build adds nothing.
        b.retain_from(2, |_| false);
        assert_eq!(
            b.push_encoded(9, |_, j| {
                j.extend_from_slice(b"partial");
                Err::<Record<'_>, ()>(())
            }),
            Err(())
        );
        assert_eq!(
            lines(&b),
            (some("{1}\n{2}\n"), vec![some("{1}"), some("{2}")])
        );
        // Dropping one in the middle: each record keeps its own line only.
        push_line(&mut b, "A", 4, "{4}");
        b.retain_from(0, |r| r.receive_ts_ns() != 2);
        assert_eq!(lines(&b), (None, vec![some("{1}"), some("{4}")]));
        b.reset();
        // A record without a line: no run either.
        push_line(&mut b, "A", 5, "{5}");
        push(&mut b, "B", 6, 6);
        assert_eq!(lines(&b), (None, vec![some("{5}"), None]));
        b.reset();
        assert_eq!(lines(&b), (some(""), vec![]));
        // Handed over: the lines leave, the records stay.
        push_line(&mut b, "A", 7, "{7}");
        let mut out = b"x".to_vec();
        assert!(!b.take_json_lines(&mut out));
        out.clear();
        assert!(b.take_json_lines(&mut out));
        assert_eq!(out, b"{7}\n");
        assert_eq!((b.len(), lines(&b)), (1, (None, vec![None])));
    }

    #[test]
    fn a_failed_build_pushes_nothing() {
        let mut b = Batch::new(8, 1024);
        let r = b.push_with(5, |_| Err::<Record<'_>, &str>("bad"));
        assert_eq!(r, Err("bad"));
        assert!(b.is_empty());
        assert_eq!(b.oldest_receive_ns(), None);
    }
}
