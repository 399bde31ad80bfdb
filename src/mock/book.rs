//! One deterministic order-book process per (venue, symbol). It keeps the
//! TRUE book (what a correct client must end up with), a bounded history of
//! updates (so connections at different positions can each encode them, and
//! older snapshots can be rebuilt by undoing them), and the faults queued by
//! `/mock/fault`. Venue encoders turn an [`Update`] into their own frame.
//!
//! Prices and quantities are integers in units of `10^-dp` of the venue's
//! formatting, so the strings sent, the REST snapshots and `/mock/book` are
//! all the same decimal text, with no float round-trips.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use super::binance::Market;

/// Book side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Bid,
    Ask,
}

/// Shape and numbers of one book.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookSpec {
    /// Mid price in price units; bids sit below, asks above, so the generated
    /// book never crosses.
    pub mid: i64,
    /// Price step between levels, in price units.
    pub tick: i64,
    /// Decimals printed for prices.
    pub price_dp: u32,
    /// Quantity step, in quantity units.
    pub qty_step: u64,
    /// Decimals printed for quantities.
    pub qty_dp: u32,
    /// Levels per side (offsets 1..=depth ticks from mid).
    pub depth: usize,
    /// Seeds the update generator.
    pub seed: u64,
    /// Sequence id of the initial book (update 0).
    pub first_id: u64,
    /// Compute OKX's CRC32 for each update (else checksum 0).
    pub okx_checksum: bool,
    /// Inject this fault into every K-th update (K, kind), besides the
    /// ones queued through `/mock/fault`.
    pub auto_fault: Option<(u64, FaultKind)>,
}

/// Faults `/mock/fault` can inject into a book stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// An update applied to the true book but never sent.
    Gap,
    /// The next REST snapshot predates the first diff the client can hold.
    StaleSnapshot,
    /// The sequence restarts lower (`seqId < prevSeqId`), as after maintenance.
    SeqReset,
    /// An empty update with `prevSeqId == seqId`.
    Keepalive,
    /// An update whose checksum does not match the book.
    BadChecksum,
    /// A mid-stream full snapshot that resets the client's book.
    Snapshot,
    /// A snapshot with `u = 1` (service restart); `u` continues from 1.
    U1,
    /// An update that would cross the book: sent, NOT applied.
    Crossed,
}

impl FaultKind {
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Gap,
        FaultKind::StaleSnapshot,
        FaultKind::SeqReset,
        FaultKind::Keepalive,
        FaultKind::BadChecksum,
        FaultKind::Snapshot,
        FaultKind::U1,
        FaultKind::Crossed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Gap => "gap",
            FaultKind::StaleSnapshot => "stale_snapshot",
            FaultKind::SeqReset => "seq_reset",
            FaultKind::Keepalive => "keepalive",
            FaultKind::BadChecksum => "bad_checksum",
            FaultKind::Snapshot => "snapshot",
            FaultKind::U1 => "u1",
            FaultKind::Crossed => "crossed",
        }
    }

    pub fn parse(s: &str) -> Option<FaultKind> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One level change of an update: `old`/`new` quantities (0 = absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub side: Side,
    pub price: i64,
    pub old: u64,
    pub new: u64,
}

/// Price levels best-first: (price units, quantity units).
pub type Levels = Vec<(i64, u64)>;

/// Update number `n` of a book.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// 1-based count of updates of this book.
    pub n: u64,
    /// Sequence id before this update (`pu`, `prevSeqId`, `prev_change_id`).
    pub prev_id: u64,
    /// First and last sequence id of this update (`U`/`u`, `seqId`,
    /// `change_id`, Bybit `seq`). A keepalive has `last_id == prev_id`.
    pub first_id: u64,
    pub last_id: u64,
    /// Bybit-style update id: +1 per update, back to 1 after a `u1` fault.
    pub u: u64,
    pub ts_ms: u64,
    pub changes: Vec<Change>,
    /// False for a `crossed` update (sent, not applied).
    pub applied: bool,
    /// True for a `gap` update (applied, never sent).
    pub hidden: bool,
    /// OKX checksum of the true book after this update (0 when disabled);
    /// deliberately wrong for a `bad_checksum` update.
    pub checksum: i32,
    /// For `snapshot` / `u1` faults: the full book after this update, sent
    /// instead of the delta.
    pub snapshot: Option<Box<(Levels, Levels)>>,
    pub fault: Option<FaultKind>,
}

/// The `(price, new quantity)` of one side's changes, best first.
pub fn side_changes(changes: &[Change], side: Side) -> Levels {
    let mut v: Levels = changes
        .iter()
        .filter(|c| c.side == side)
        .map(|c| (c.price, c.new))
        .collect();
    match side {
        Side::Bid => v.sort_by_key(|x| std::cmp::Reverse(x.0)),
        Side::Ask => v.sort_by_key(|x| x.0),
    }
    v
}

/// A plain two-sided book.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Book {
    pub bids: BTreeMap<i64, u64>,
    pub asks: BTreeMap<i64, u64>,
}

impl Book {
    fn side_mut(&mut self, s: Side) -> &mut BTreeMap<i64, u64> {
        match s {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }

    pub fn qty(&self, s: Side, price: i64) -> u64 {
        let m = match s {
            Side::Bid => &self.bids,
            Side::Ask => &self.asks,
        };
        m.get(&price).copied().unwrap_or(0)
    }

    fn set(&mut self, s: Side, price: i64, qty: u64) {
        if qty == 0 {
            self.side_mut(s).remove(&price);
        } else {
            self.side_mut(s).insert(price, qty);
        }
    }

    /// Up to `limit` levels of one side, best first.
    pub fn top(&self, s: Side, limit: usize) -> Levels {
        match s {
            Side::Bid => self
                .bids
                .iter()
                .rev()
                .take(limit)
                .map(|(p, q)| (*p, *q))
                .collect(),
            Side::Ask => self
                .asks
                .iter()
                .take(limit)
                .map(|(p, q)| (*p, *q))
                .collect(),
        }
    }

    pub fn best(&self, s: Side) -> Option<i64> {
        match s {
            Side::Bid => self.bids.keys().next_back().copied(),
            Side::Ask => self.asks.keys().next().copied(),
        }
    }
}

/// Appends `v` (in units of `10^-dp`) as fixed-point decimal text; never
/// exponent notation. `dp == 0` prints an integer.
pub fn push_dec(out: &mut String, v: i64, dp: u32) {
    if v < 0 {
        out.push('-');
    }
    let a = v.unsigned_abs();
    let p = 10u64.pow(dp);
    let _ = write!(out, "{}", a / p);
    if dp > 0 {
        let _ = write!(out, ".{:0width$}", a % p, width = dp as usize);
    }
}

/// [`push_dec`] into a new String.
pub fn dec(v: i64, dp: u32) -> String {
    let mut s = String::new();
    push_dec(&mut s, v, dp);
    s
}

/// SplitMix64: a tiny deterministic mixer for the update generator.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// OKX's book checksum: CRC32 over `bid1px:bid1sz:ask1px:ask1sz:...` of the
/// first 25 levels per side (a shorter side's entries are skipped), as a
/// signed 32-bit integer.
pub fn okx_checksum(bids: &[(String, String)], asks: &[(String, String)]) -> i32 {
    let mut s = String::with_capacity(1024);
    for i in 0..25 {
        for side in [bids, asks] {
            if let Some((p, q)) = side.get(i) {
                if !s.is_empty() {
                    s.push(':');
                }
                s.push_str(p);
                s.push(':');
                s.push_str(q);
            }
        }
    }
    let mut crc = flate2::Crc::new();
    crc.update(s.as_bytes());
    crc.sum() as i32
}

/// Updates kept for lagging connections and snapshot reconstruction.
const HISTORY: usize = 8192;

/// The book process: true book, history, queued faults, production clock.
pub struct BookFeed {
    pub spec: BookSpec,
    book: Book,
    /// Updates generated so far.
    n: u64,
    last_id: u64,
    u: u64,
    time_base_ms: u64,
    history: VecDeque<Update>,
    pending: VecDeque<FaultKind>,
    /// `Some(n at injection)` while a `stale_snapshot` fault is pending.
    stale_pending: Option<u64>,
    /// First update number the most recent stream subscriber will receive.
    last_sub_from: u64,
    clock: Market,
    pub faults_injected: u64,
}

impl BookFeed {
    /// A book with every level 1..=depth filled on both sides. `rate` updates
    /// per second (0 = on demand), at most `count` updates (0 = unlimited).
    pub fn new(spec: BookSpec, time_base_ms: u64, rate: u64, count: u64) -> BookFeed {
        let mut book = Book::default();
        for k in 1..=spec.depth as i64 {
            let q = Self::qty_for(&spec, k as u64 * 31);
            book.set(Side::Bid, spec.mid - k * spec.tick, q);
            let q = Self::qty_for(&spec, k as u64 * 37 + 5);
            book.set(Side::Ask, spec.mid + k * spec.tick, q);
        }
        BookFeed {
            spec,
            book,
            n: 0,
            last_id: spec.first_id,
            u: 0,
            time_base_ms,
            history: VecDeque::new(),
            pending: VecDeque::new(),
            stale_pending: None,
            last_sub_from: 1,
            clock: Market::new(1, rate, count, std::time::Instant::now()),
            faults_injected: 0,
        }
    }

    fn qty_for(spec: &BookSpec, r: u64) -> u64 {
        spec.qty_step.saturating_mul(1 + mix(spec.seed ^ r) % 500)
    }

    pub fn book(&self) -> &Book {
        &self.book
    }
    /// Updates generated so far.
    pub fn n(&self) -> u64 {
        self.n
    }
    pub fn last_id(&self) -> u64 {
        self.last_id
    }
    pub fn u(&self) -> u64 {
        self.u
    }
    /// True when update `next` will never exist (update cap reached).
    pub fn exhausted(&self, next: u64) -> bool {
        self.clock.exhausted(next)
    }

    /// Updates per second (0 = on demand).
    pub fn rate(&self) -> u64 {
        self.clock.rate()
    }

    /// Time stamp of update `n` (and of the snapshot after it).
    pub fn ts_of(&self, n: u64) -> u64 {
        self.time_base_ms.wrapping_add(n.wrapping_mul(10))
    }

    /// Queues a fault for the next update (or the next REST snapshot).
    pub fn inject(&mut self, kind: FaultKind) {
        self.faults_injected += 1;
        if kind == FaultKind::StaleSnapshot {
            self.stale_pending = Some(self.n);
        } else {
            self.pending.push_back(kind);
        }
    }

    /// Brings the book to what the clock has produced by now.
    pub fn catch_up(&mut self) {
        let target = self.clock.produced(0);
        self.advance_to(target);
    }

    /// Lets a stream consumer that wants update `next` pull the production
    /// forward (on-demand mode) and returns the highest update available.
    pub fn pull(&mut self, next: u64) -> u64 {
        let target = self.clock.available_up_to(0, next);
        self.advance_to(target);
        self.n
    }

    /// Generates updates until `n == target`.
    pub fn advance_to(&mut self, target: u64) {
        while self.n < target {
            let u = self.generate();
            self.history.push_back(u);
            if self.history.len() > HISTORY {
                self.history.pop_front();
            }
        }
    }

    /// Update `n` if still in the history.
    pub fn update(&self, n: u64) -> Option<&Update> {
        let first = self.history.front()?.n;
        if n < first {
            return None;
        }
        self.history.get((n - first) as usize)
    }

    /// Oldest update number still in the history (n + 1 when empty).
    pub fn oldest(&self) -> u64 {
        self.history.front().map(|u| u.n).unwrap_or(self.n + 1)
    }

    /// Records that a stream subscriber starts at update `from`.
    pub fn note_subscriber(&mut self, from: u64) {
        self.last_sub_from = from;
    }

    fn rng(&self, n: u64, k: u64) -> u64 {
        mix(self.spec.seed ^ mix(n.wrapping_mul(0x1000).wrapping_add(k)))
    }

    /// Prices/quantities as the venue's strings, best first.
    pub fn fmt_levels(&self, levels: &[(i64, u64)]) -> Vec<(String, String)> {
        levels
            .iter()
            .map(|(p, q)| {
                (
                    dec(*p, self.spec.price_dp),
                    dec(*q as i64, self.spec.qty_dp),
                )
            })
            .collect()
    }

    fn checksum_of(&self, book: &Book) -> i32 {
        if !self.spec.okx_checksum {
            return 0;
        }
        let b = self.fmt_levels(&book.top(Side::Bid, 25));
        let a = self.fmt_levels(&book.top(Side::Ask, 25));
        okx_checksum(&b, &a)
    }

    /// Checksum of the current true book (for a subscription snapshot).
    pub fn checksum(&self) -> i32 {
        self.checksum_of(&self.book)
    }

    fn generate(&mut self) -> Update {
        let n = self.n + 1;
        let auto = match self.spec.auto_fault {
            Some((every, kind)) if every > 0 && n % every == 0 => Some(kind),
            _ => None,
        };
        let fault = self.pending.pop_front().or(auto);
        let spec = self.spec;
        let mut changes = Vec::with_capacity(3);
        let mut applied = true;
        match fault {
            Some(FaultKind::Keepalive) => {}
            Some(FaultKind::Crossed) => {
                // A bid at (or through) the best ask: crosses the book.
                let px = self.book.best(Side::Ask).unwrap_or(spec.mid + spec.tick);
                changes.push(Change {
                    side: Side::Bid,
                    price: px,
                    old: self.book.qty(Side::Bid, px),
                    new: spec.qty_step.max(1),
                });
                applied = false;
            }
            _ => {
                let k = 1 + self.rng(n, 0) % 3;
                for i in 0..k {
                    let r = self.rng(n, 1 + i);
                    let side = if r & 1 == 0 { Side::Bid } else { Side::Ask };
                    let off = 1 + ((r >> 1) % spec.depth.max(1) as u64) as i64;
                    let price = match side {
                        Side::Bid => spec.mid - off * spec.tick,
                        Side::Ask => spec.mid + off * spec.tick,
                    };
                    if changes
                        .iter()
                        .any(|c: &Change| c.side == side && c.price == price)
                    {
                        continue;
                    }
                    let old = self.book.qty(side, price);
                    let new = if old != 0 && (r >> 20) % 4 == 0 {
                        0
                    } else {
                        let mut q = Self::qty_for(&spec, r >> 8);
                        if q == old {
                            q += spec.qty_step.max(1);
                        }
                        q
                    };
                    changes.push(Change {
                        side,
                        price,
                        old,
                        new,
                    });
                }
            }
        }
        if applied {
            for c in &changes {
                self.book.set(c.side, c.price, c.new);
            }
        }
        let prev_id = self.last_id;
        let (first_id, last_id) = match fault {
            Some(FaultKind::Keepalive) => (prev_id, prev_id),
            Some(FaultKind::SeqReset) => {
                let l = (prev_id / 2).max(1);
                (l.saturating_sub(1).max(1), l)
            }
            _ => {
                let f = prev_id.wrapping_add(1);
                (f, f.wrapping_add(self.rng(n, 99) % 3))
            }
        };
        self.u = if fault == Some(FaultKind::U1) {
            1
        } else {
            self.u + 1
        };
        self.last_id = last_id;
        self.n = n;
        let mut checksum = self.checksum_of(&self.book);
        if fault == Some(FaultKind::BadChecksum) {
            checksum = checksum.wrapping_add(1).max(1);
            if checksum == self.checksum_of(&self.book) {
                checksum = checksum.wrapping_add(1);
            }
        }
        let snapshot = match fault {
            Some(FaultKind::Snapshot) | Some(FaultKind::U1) => Some(Box::new((
                self.book.top(Side::Bid, usize::MAX),
                self.book.top(Side::Ask, usize::MAX),
            ))),
            _ => None,
        };
        Update {
            n,
            prev_id,
            first_id,
            last_id,
            u: self.u,
            ts_ms: self.ts_of(n),
            changes,
            applied,
            hidden: fault == Some(FaultKind::Gap),
            checksum,
            snapshot,
            fault,
        }
    }

    /// The true book after update `n` (undoing newer updates), when the
    /// history still reaches back that far.
    pub fn book_at(&self, n: u64) -> Option<Book> {
        if n > self.n {
            return None;
        }
        if n + 1 < self.oldest() && n != self.n {
            return None;
        }
        let mut b = self.book.clone();
        for u in self.history.iter().rev().take_while(|u| u.n > n) {
            if u.applied {
                for c in u.changes.iter().rev() {
                    b.set(c.side, c.price, c.old);
                }
            }
        }
        Some(b)
    }

    /// Sequence id after update `n` (`first_id` for n = 0).
    pub fn id_at(&self, n: u64) -> u64 {
        if n == self.n {
            return self.last_id;
        }
        match self.update(n) {
            Some(u) => u.last_id,
            None if n == 0 => self.spec.first_id,
            None => self
                .update(n + 1)
                .map(|u| u.prev_id)
                .unwrap_or(self.last_id),
        }
    }

    /// A REST snapshot: (update number, id, book), normally the current book;
    /// after a `stale_snapshot` fault, once, a book from before the latest
    /// stream subscription's first update.
    pub fn rest_snapshot(&mut self) -> (u64, u64, Book) {
        self.catch_up();
        if let Some(injected_at) = self.stale_pending.take() {
            // A client buffers diffs from its (re)subscription or from the
            // fault on; go two updates before the earlier of the two, so that
            // even the pre-2024 rule (`U <= lastUpdateId + 1`) calls it stale.
            let at = self
                .last_sub_from
                .min(injected_at + 1)
                .saturating_sub(3)
                .max(self.oldest().saturating_sub(1));
            if at < self.n {
                if let Some(b) = self.book_at(at) {
                    return (at, self.id_at(at), b);
                }
            }
        }
        (self.n, self.last_id, self.book.clone())
    }

    /// `/mock/book` body: the true book, full depth, best first.
    pub fn mock_json(&mut self) -> String {
        self.catch_up();
        let mut o = String::with_capacity(4096);
        let _ = write!(
            o,
            "{{\"last_update_id\":{},\"update_count\":{},\"u\":{},\"bids\":",
            self.last_id, self.n, self.u
        );
        self.push_levels_json(&mut o, &self.book.top(Side::Bid, usize::MAX));
        o.push_str(",\"asks\":");
        self.push_levels_json(&mut o, &self.book.top(Side::Ask, usize::MAX));
        o.push('}');
        o
    }

    /// `[["p","q"],...]` with the venue's strings.
    pub fn push_levels_json(&self, o: &mut String, levels: &[(i64, u64)]) {
        o.push('[');
        for (i, (p, q)) in levels.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            o.push_str("[\"");
            push_dec(o, *p, self.spec.price_dp);
            o.push_str("\",\"");
            push_dec(o, *q as i64, self.spec.qty_dp);
            o.push_str("\"]");
        }
        o.push(']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(depth: usize) -> BookSpec {
        BookSpec {
            mid: 3_000_000,
            tick: 10,
            price_dp: 2,
            qty_step: 1000,
            qty_dp: 4,
            depth,
            seed: 7,
            first_id: 1_000_000,
            okx_checksum: true,
            auto_fault: None,
        }
    }

    fn apply(b: &mut Book, u: &Update) {
        for c in &u.changes {
            b.set(c.side, c.price, c.new);
        }
    }

    #[test]
    fn okx_checksum_doc_vectors() {
        let s = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            okx_checksum(
                &s(&[("3366.1", "7"), ("3366", "6")]),
                &s(&[("3366.8", "9"), ("3368", "8")])
            ),
            -1881014294
        );
        assert_eq!(
            okx_checksum(
                &s(&[("3366.1", "7")]),
                &s(&[("3366.8", "9"), ("3368", "8"), ("3372", "8")])
            ),
            831078360
        );
    }

    #[test]
    fn decimals() {
        assert_eq!(dec(1070000, 2), "10700.00");
        assert_eq!(dec(12, 5), "0.00012");
        assert_eq!(dec(-5, 3), "-0.005");
        assert_eq!(dec(7, 0), "7");
    }

    #[test]
    fn replaying_updates_gives_the_true_book_and_never_crosses() {
        let mut f = BookFeed::new(spec(50), 0, 0, 0);
        let mut replica = f.book().clone();
        assert_eq!(replica.bids.len(), 50);
        f.advance_to(2000);
        let mut prev = 1_000_000;
        for n in 1..=2000 {
            let u = f.update(n).unwrap();
            assert_eq!(u.prev_id, prev);
            assert!(u.first_id == prev + 1 && u.last_id >= u.first_id && u.last_id <= prev + 3);
            assert_eq!(u.u, n);
            prev = u.last_id;
            apply(&mut replica, u);
            assert!(replica.best(Side::Bid).unwrap() < replica.best(Side::Ask).unwrap());
            assert!(replica.bids.len() <= 50 && replica.asks.len() <= 50);
        }
        assert_eq!(&replica, f.book());
        assert_eq!(f.last_id(), prev);
        // Undo reconstructs older books exactly.
        let mut r2 = BookFeed::new(spec(50), 0, 0, 0);
        r2.advance_to(1500);
        assert_eq!(f.book_at(1500).unwrap(), *r2.book());
        assert_eq!(f.id_at(1500), r2.last_id());
        // Determinism.
        let mut g = BookFeed::new(spec(50), 0, 0, 0);
        g.advance_to(2000);
        assert_eq!(g.book(), f.book());
    }

    #[test]
    fn faults_do_what_they_claim() {
        let mut f = BookFeed::new(spec(20), 0, 0, 0);
        f.advance_to(5);
        let before = f.book().clone();
        f.inject(FaultKind::Crossed);
        f.advance_to(6);
        let u = f.update(6).unwrap();
        assert!(!u.applied);
        assert_eq!(f.book(), &before, "crossed is not applied");
        assert!(u.changes[0].price >= before.best(Side::Ask).unwrap());
        assert_eq!(u.prev_id, f.update(5).unwrap().last_id);

        f.inject(FaultKind::Gap);
        f.advance_to(7);
        assert!(f.update(7).unwrap().hidden && f.update(7).unwrap().applied);

        f.inject(FaultKind::Keepalive);
        f.advance_to(8);
        let k = f.update(8).unwrap();
        assert!(k.changes.is_empty() && k.prev_id == k.last_id);

        f.inject(FaultKind::SeqReset);
        f.advance_to(9);
        let r = f.update(9).unwrap().clone();
        assert!(r.last_id < r.prev_id);
        f.advance_to(10);
        assert_eq!(f.update(10).unwrap().prev_id, r.last_id);

        f.inject(FaultKind::BadChecksum);
        f.advance_to(11);
        let b = f.update(11).unwrap();
        assert_ne!(b.checksum, f.checksum());
        assert_eq!(
            f.update(10).unwrap().checksum,
            f.book_at(10).map(|bk| f.checksum_of(&bk)).unwrap()
        );

        f.inject(FaultKind::U1);
        f.advance_to(13);
        let s = f.update(12).unwrap();
        assert_eq!(s.u, 1);
        assert!(s.snapshot.is_some());
        assert_eq!(f.update(13).unwrap().u, 2);
        f.inject(FaultKind::Snapshot);
        f.advance_to(14);
        let s = f.update(14).unwrap();
        let snap = s.snapshot.as_ref().unwrap();
        assert_eq!(snap.0, f.book().top(Side::Bid, usize::MAX));
        assert_eq!(s.u, 3);
    }

    #[test]
    fn auto_faults_every_k_updates() {
        let mut s = spec(10);
        s.auto_fault = Some((4, FaultKind::Gap));
        let mut f = BookFeed::new(s, 0, 0, 0);
        f.advance_to(12);
        let hidden: Vec<u64> = (1..=12).filter(|n| f.update(*n).unwrap().hidden).collect();
        assert_eq!(hidden, [4, 8, 12]);
    }

    #[test]
    fn stale_snapshot_predates_the_subscription() {
        let mut f = BookFeed::new(spec(20), 0, 0, 0);
        f.advance_to(100);
        f.note_subscriber(101);
        f.inject(FaultKind::StaleSnapshot);
        let (n, id, b) = f.rest_snapshot();
        assert!(n <= 98 && id < f.update(99).unwrap().last_id);
        assert_eq!(b, f.book_at(n).unwrap());
        let (n2, id2, b2) = f.rest_snapshot();
        assert_eq!((n2, id2, &b2), (100, f.last_id(), f.book()));
    }
}
