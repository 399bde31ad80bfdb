//! The per-core batch: records live in a bump arena that is rewound after each
//! flush, so steady-state parsing allocates nothing on the heap.
//!
//! Safety design: records are stored as pointers into `arena`. They are only
//! handed out as `&Record<'a>` tied to a borrow of the batch, and the pointer
//! list is cleared before the arena is reset, so no record outlives its memory.

use super::record::Record;
use bumpalo::Bump;
use std::ptr::NonNull;

pub struct Batch {
    /// Points into `arena`; cleared before `arena` is reset.
    records: Vec<NonNull<Record<'static>>>,
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
        let r: &mut Record<'_> = self.arena.alloc(rec);
        // Erase the arena lifetime; see the module doc for why this is sound.
        self.records
            .push(NonNull::from(r).cast::<Record<'static>>());
        if self.oldest_receive_ns.is_none() {
            self.oldest_receive_ns = Some(receive_ns);
        }
        Ok(())
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
        self.records.truncate(len);
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
                self.records[w] = p;
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

    #[test]
    fn a_failed_build_pushes_nothing() {
        let mut b = Batch::new(8, 1024);
        let r = b.push_with(5, |_| Err::<Record<'_>, &str>("bad"));
        assert_eq!(r, Err("bad"));
        assert!(b.is_empty());
        assert_eq!(b.oldest_receive_ns(), None);
    }
}
