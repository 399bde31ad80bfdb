//! Book engine targets, per sync rule, through `Books` (REST snapshots for
//! the Binance rules):
//! - model: legal streams (gap-free ids, mid-stream snapshots, keep-alives,
//!   sequence resets, stale duplicates, disconnects with lost updates,
//!   snapshot failures, throttled publishing) against a `BTreeMap` model
//!   of the venue's book: the engine must never resync and, whenever it
//!   should be synced, must equal the model level for level (received form
//!   included) and publish the model's top N;
//! - chaos: anything (gaps, duplicates, out-of-order and extreme ids,
//!   crossed, zero, negative and extreme levels, huge depth, wrong
//!   checksums, unknown symbols, clock jumps): invariants only, then a
//!   clean resync must bring the engine back to the model.

use super::alloc;
use super::run::{self, guarded};
use fastrand::Rng;
use marketprism::batch::{Batch, BookRecord, Level, Record};
use marketprism::book::{BookAction, BookConfig, BookMsg, Books, SyncState};
use marketprism::model::VenueId;
use marketprism::venue::okx::checksum::crc32;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, VecDeque};

const SYM: &str = "X";
const NORM: &str = "X-Y";

/// The venue procedure a target models (its venue's protocol supplies the
/// engine's `SyncRule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    BinanceSpot,
    BinanceFutures,
    Okx,
    Bybit,
    Deribit,
}

fn venue_of(rule: Rule) -> VenueId {
    match rule {
        Rule::BinanceSpot => VenueId::BinanceSpot,
        Rule::BinanceFutures => VenueId::BinanceDerivatives,
        Rule::Okx => VenueId::OkxSpot,
        Rule::Bybit => VenueId::BybitLinear,
        Rule::Deribit => VenueId::DeribitDerivatives,
    }
}

fn binance(rule: Rule) -> bool {
    matches!(rule, Rule::BinanceSpot | Rule::BinanceFutures)
}

// ------------------------------------------------------------------ model

/// The venue's book: price → level as last sent (its received form kept).
#[derive(Clone, Default, Debug)]
struct Model {
    bids: BTreeMap<Decimal, Level>,
    asks: BTreeMap<Decimal, Level>,
}

impl Model {
    fn side(&mut self, bid: bool) -> &mut BTreeMap<Decimal, Level> {
        if bid {
            &mut self.bids
        } else {
            &mut self.asks
        }
    }

    /// Absolute level; 0 removes. The new form replaces the old one.
    fn set(&mut self, bid: bool, l: Level) {
        let s = self.side(bid);
        s.remove(&l.price);
        if !l.quantity.is_zero() {
            s.insert(l.price, l);
        }
    }

    fn bids_best_first(&self) -> impl Iterator<Item = &Level> {
        self.bids.values().rev()
    }

    fn asks_best_first(&self) -> impl Iterator<Item = &Level> {
        self.asks.values()
    }

    /// OKX CRC32 of the top 25, built independently of the engine's.
    fn okx_checksum(&self) -> Option<i32> {
        let (b, a): (Vec<_>, Vec<_>) = (
            self.bids_best_first().take(25).collect(),
            self.asks_best_first().take(25).collect(),
        );
        let mut parts = Vec::new();
        for i in 0..25 {
            for l in [b.get(i), a.get(i)].into_iter().flatten() {
                parts.push(format!("{}:{}", l.price, l.quantity));
            }
        }
        let c = crc32(parts.join(":").as_bytes()) as i32;
        (c != 0).then_some(c)
    }
}

/// Same number in the same received form.
fn same(a: &Level, b: &Level) -> bool {
    a.price.serialize() == b.price.serialize() && a.quantity.serialize() == b.quantity.serialize()
}

fn dec(m: i64, scale: u32) -> Decimal {
    Decimal::try_new(m, scale).unwrap_or(Decimal::ZERO)
}

/// A price of one side: bids 1.00-49.99, asks 50.01-99.99 (never crossed),
/// sometimes with extra trailing zeros (same price, another form).
fn price(rng: &mut Rng, bid: bool) -> Decimal {
    let cents = if bid {
        rng.i64(100..5000)
    } else {
        rng.i64(5001..10_000)
    };
    let extra = if rng.u8(..8) == 0 { rng.u32(1..3) } else { 0 };
    dec(cents * 10i64.pow(extra), 2 + extra)
}

fn qty(rng: &mut Rng) -> Decimal {
    dec(rng.i64(1..10_000_000), rng.u32(..9))
}

fn zero(rng: &mut Rng) -> Decimal {
    dec(0, rng.u32(..4))
}

fn random_existing(rng: &mut Rng, side: &BTreeMap<Decimal, Level>) -> Option<Decimal> {
    (!side.is_empty()).then(|| *side.keys().nth(rng.usize(..side.len())).unwrap())
}

/// Legal changes of both sides (applied to `m` as they are made, in order).
fn legal_changes(rng: &mut Rng, m: &mut Model, out: &mut BookMsg, big: bool) {
    out.bids.clear();
    out.asks.clear();
    for bid in [true, false] {
        let n = if big {
            rng.usize(..300)
        } else {
            rng.usize(..5)
        };
        for _ in 0..n {
            let len = m.side(bid).len();
            let l = match rng.u8(..8) {
                // Fewer levels than ~150 per side: add more than remove.
                0..=2 if len > 0 => {
                    let p = random_existing(rng, m.side(bid)).unwrap();
                    Level::new(p, qty(rng))
                }
                3 if len > 0 => {
                    let p = random_existing(rng, m.side(bid)).unwrap();
                    Level::new(p, zero(rng))
                }
                4 => Level::new(price(rng, bid), zero(rng)),
                _ if len > 150 => {
                    let p = random_existing(rng, m.side(bid)).unwrap();
                    Level::new(p, zero(rng))
                }
                _ => Level::new(price(rng, bid), qty(rng)),
            };
            m.set(bid, l);
            if bid {
                out.bids.push(l)
            } else {
                out.asks.push(l)
            }
        }
    }
}

fn random_model(rng: &mut Rng) -> Model {
    let mut m = Model::default();
    for bid in [true, false] {
        for _ in 0..rng.usize(..60) {
            m.set(bid, Level::new(price(rng, bid), qty(rng)));
        }
    }
    m
}

/// The model as a snapshot message (best first, as venues send them).
fn snapshot_of(m: &Model, last: u64) -> BookMsg {
    BookMsg {
        raw_symbol: SYM.to_string(),
        snapshot: true,
        first_id: last,
        last_id: last,
        prev_id: None,
        checksum: None,
        bids: m.bids_best_first().copied().collect(),
        asks: m.asks_best_first().copied().collect(),
        ts_ms: 1,
        shadow: false,
    }
}

fn update(first: u64, last: u64, prev: Option<i64>) -> BookMsg {
    BookMsg {
        raw_symbol: SYM.to_string(),
        first_id: first,
        last_id: last,
        prev_id: prev,
        ts_ms: last,
        ..BookMsg::default()
    }
}

fn id(v: u64) -> Option<i64> {
    i64::try_from(v).ok()
}

// ------------------------------------------------------------------ checks

/// What the checks carry between calls.
struct Checker {
    rule: Rule,
    venue: VenueId,
    depth: usize,
    buffer_limit: usize,
    /// Id of the last applied update (or loaded snapshot) of the session.
    last: Option<u64>,
    /// The next delta is the first after a snapshot.
    bridge: bool,
    snapshots: u64,
    deltas: u64,
    /// Largest side seen (reported).
    max_side: usize,
    records: u64,
}

impl Checker {
    fn new(rule: Rule, depth: usize, buffer_limit: usize) -> Checker {
        Checker {
            rule,
            venue: venue_of(rule),
            depth,
            buffer_limit,
            last: None,
            bridge: false,
            snapshots: 0,
            deltas: 0,
            max_side: 0,
            records: 0,
        }
    }

    /// After one call into the engine: the book's invariants, the records
    /// it pushed, the action it asked for. `sent` is the message given (if
    /// any); the batch is emptied.
    fn after(
        &mut self,
        books: &Books,
        sent: Option<&BookMsg>,
        action: BookAction,
        batch: &mut Batch,
        ctx: &dyn Fn() -> String,
    ) {
        let v = self.venue;
        let st = *books.stats(v);
        match action {
            BookAction::FetchSnapshot => {
                assert!(binance(self.rule), "{}: FetchSnapshot", ctx());
                assert!(books.needs_snapshot(v, SYM), "{}", ctx());
            }
            BookAction::Resubscribe => {
                assert!(!binance(self.rule), "{}: Resubscribe", ctx());
                assert!(!books.is_synced(v, SYM), "{}", ctx());
            }
            BookAction::None => {}
        }
        assert!(
            books.buffered(v, SYM) <= self.buffer_limit,
            "{}: {} buffered",
            ctx(),
            books.buffered(v, SYM)
        );
        let book = books.book(v, SYM).unwrap();
        let (b, a) = (book.bids().as_worst_first(), book.asks().as_worst_first());
        self.max_side = self.max_side.max(b.len()).max(a.len());
        for side in [b, a] {
            for l in side {
                assert!(
                    l.quantity > Decimal::ZERO && !l.price.is_sign_negative(),
                    "{}: level {l:?} in the book",
                    ctx()
                );
            }
        }
        assert!(
            b.windows(2).all(|w| w[0].price < w[1].price),
            "{}: bids order",
            ctx()
        );
        assert!(
            a.windows(2).all(|w| w[0].price > w[1].price),
            "{}: asks order",
            ctx()
        );
        if books.is_synced(v, SYM) {
            assert!(!book.is_crossed(), "{}: synced and crossed", ctx());
        }
        // A snapshot loaded by this call starts a session.
        if st.snapshots_applied > self.snapshots {
            self.snapshots = st.snapshots_applied;
            if let Some(m) = sent {
                self.last = Some(m.last_id);
                self.bridge = true;
            }
        }
        let mut deltas = 0;
        for rec in batch.iter() {
            self.records += 1;
            let Record::Book(r) = rec else {
                panic!("{}: not a book record: {rec:?}", ctx());
            };
            assert_eq!(
                (r.origin.venue, r.origin.symbol, r.origin.raw_symbol),
                (v, NORM, SYM),
                "{}",
                ctx()
            );
            if r.delta {
                deltas += 1;
                self.delta(r, ctx);
            } else {
                check_published(r, self.depth, ctx);
            }
        }
        assert_eq!(st.deltas_published, self.deltas + deltas, "{}", ctx());
        self.deltas += deltas;
        batch.reset();
    }

    /// An applied update follows the previous one as its rule says.
    fn delta(&mut self, r: &BookRecord<'_>, ctx: &dyn Fn() -> String) {
        let (first, u, prev) = (r.first_update_id, r.last_update_id, r.prev_update_id);
        if let Some(last) = self.last {
            let ok = match (self.rule, self.bridge) {
                (Rule::BinanceSpot, true) => first <= last.saturating_add(1) && last < u,
                (Rule::BinanceSpot, false) => first == last.saturating_add(1) && last < u,
                (Rule::BinanceFutures, true) => first <= last && last <= u,
                (Rule::BinanceFutures, false) => prev == Some(last) && last < u,
                // OKX without ids (pre-2022) is checked by checksum only.
                (Rule::Okx, _) => prev.is_none_or(|p| p == last),
                (Rule::Deribit, _) => prev == Some(last),
                (Rule::Bybit, _) => last < u,
            };
            assert!(
                ok,
                "{}: delta {first}..{u} prev {prev:?} after {last} (bridge {})",
                ctx(),
                self.bridge
            );
        }
        self.last = Some(u);
        self.bridge = false;
    }
}

/// An `orderbook` record: best first, within depth, positive sizes, not crossed.
fn check_published(r: &BookRecord<'_>, depth: usize, ctx: &dyn Fn() -> String) {
    assert!(
        r.bids.len() <= depth && r.asks.len() <= depth,
        "{}: depth",
        ctx()
    );
    assert!(
        r.bids.windows(2).all(|w| w[0].price > w[1].price),
        "{}",
        ctx()
    );
    assert!(
        r.asks.windows(2).all(|w| w[0].price < w[1].price),
        "{}",
        ctx()
    );
    assert!(
        r.bids
            .iter()
            .chain(r.asks)
            .all(|l| l.quantity > Decimal::ZERO),
        "{}",
        ctx()
    );
    if let (Some(b), Some(a)) = (r.bids.first(), r.asks.first()) {
        assert!(b.price < a.price, "{}: published crossed", ctx());
    }
}

/// The engine's book is the model, level for level.
fn assert_equal(books: &Books, v: VenueId, m: &Model, ctx: &dyn Fn() -> String) {
    let book = books.book(v, SYM).unwrap();
    let got_b: Vec<&Level> = book.bids().as_worst_first().iter().collect();
    let got_a: Vec<&Level> = book.asks().as_worst_first().iter().rev().collect();
    let want_b: Vec<&Level> = m.bids.values().collect();
    let want_a: Vec<&Level> = m.asks.values().collect();
    let eq =
        |g: &[&Level], w: &[&Level]| g.len() == w.len() && g.iter().zip(w).all(|(a, b)| same(a, b));
    assert!(
        eq(&got_b, &want_b) && eq(&got_a, &want_a),
        "{}: engine book differs from the model\nengine bids {got_b:?}\nmodel bids  {want_b:?}\nengine asks {got_a:?}\nmodel asks  {want_a:?}",
        ctx()
    );
}

/// The `orderbook` records of the batch are the model's top `depth`.
fn assert_published_model(batch: &Batch, m: &Model, depth: usize, ctx: &dyn Fn() -> String) {
    for rec in batch.iter() {
        let Record::Book(r) = rec else { continue };
        if r.delta {
            continue;
        }
        let want_b: Vec<&Level> = m.bids_best_first().take(depth).collect();
        let want_a: Vec<&Level> = m.asks_best_first().take(depth).collect();
        let ok = r.bids.len() == want_b.len()
            && r.asks.len() == want_a.len()
            && r.bids.iter().zip(&want_b).all(|(a, b)| same(a, b))
            && r.asks.iter().zip(&want_a).all(|(a, b)| same(a, b));
        assert!(ok, "{}: published top {depth} is not the model's", ctx());
    }
}

fn config(rng: &mut Rng) -> BookConfig {
    BookConfig {
        depth: [1, 3, 25, 400][rng.usize(..4)],
        publish_interval_ns: [0, 1_000, 100_000_000][rng.usize(..3)],
        deltas: true,
    }
}

fn engine(rule: Rule, cfg: BookConfig, buffer_limit: usize) -> Books {
    let v = venue_of(rule);
    let mut b = Books::new(marketprism::venue::book_rule, &[(v, cfg)]);
    b.set_buffer_limit(buffer_limit);
    b.register(v, SYM, NORM);
    b
}

// ------------------------------------------------------------------ ids

/// The venue's id sequence and, for Binance, what a REST snapshot needs.
struct Ids {
    rule: Rule,
    /// Id of the venue's current state.
    last: u64,
    /// Binance: the next diff's `U..=u`, decided in advance so a snapshot
    /// can be taken "between" the last diff sent and the next.
    next: (u64, u64),
}

impl Ids {
    fn new(rng: &mut Rng, rule: Rule) -> Ids {
        let last = rng.u64(1..1 << 40);
        let mut ids = Ids {
            rule,
            last,
            next: (0, 0),
        };
        ids.plan(rng);
        ids
    }

    fn plan(&mut self, rng: &mut Rng) {
        // Spot ranges are contiguous; USDⓈ-M ones skip ids.
        let skip = if self.rule == Rule::BinanceFutures {
            rng.u64(..3)
        } else {
            0
        };
        let first = self.last + 1 + skip;
        self.next = (first, first + rng.u64(..4));
    }

    /// The next update's ids (advancing the venue).
    fn advance(&mut self, rng: &mut Rng) -> BookMsg {
        let prev = self.last;
        let m = match self.rule {
            Rule::BinanceSpot => update(self.next.0, self.next.1, None),
            Rule::BinanceFutures => update(self.next.0, self.next.1, id(prev)),
            Rule::Okx | Rule::Deribit => {
                let u = prev + rng.u64(1..4);
                update(u, u, id(prev))
            }
            Rule::Bybit => {
                let u = prev + rng.u64(1..4);
                update(u, u, None)
            }
        };
        self.last = m.last_id;
        self.plan(rng);
        m
    }
}

// ------------------------------------------------------------------ model target

/// A diff sent while the engine buffers: its range and the book before it.
struct Sent {
    first: u64,
    last: u64,
    before: Model,
}

pub fn model_target(rule: Rule, ci_iters: u64) {
    let target = format!("book_model_{rule:?}");
    let (mut rng, iters) = run::start(&target, ci_iters);
    let mut steps = 0u64;
    let mut episodes = 0;
    let mut max_side = 0;
    let live0 = alloc::live();
    while steps < iters {
        let n = rng.u64(50..600).min(iters - steps);
        let seed = rng.u64(..);
        max_side = max_side.max(guarded(
            &|| format!("{target}: episode seed {seed}"),
            || model_episode(&mut Rng::with_seed(seed), rule, n, seed),
        ));
        steps += n;
        episodes += 1;
    }
    let growth = alloc::live() - live0;
    assert!(growth < 1 << 20, "{target}: heap grew {growth} bytes");
    eprintln!(
        "fuzz {target}: {steps} messages in {:.1} s, {episodes} episodes, largest side {max_side}",
        run::elapsed()
    );
}

fn model_episode(rng: &mut Rng, rule: Rule, n: u64, seed: u64) -> usize {
    let v = venue_of(rule);
    let cfg = config(rng);
    let mut books = engine(rule, cfg, 10_000);
    let mut batch = Batch::new(1024, 1 << 16);
    let mut chk = Checker::new(rule, cfg.depth, 10_000);
    let mut m = random_model(rng);
    let mut ids = Ids::new(rng, rule);
    let mut now = 1_000_000_000u64;
    // Binance: diffs since the engine began buffering; a fetch is pending.
    let mut buffered: VecDeque<Sent> = VecDeque::new();
    let mut fetching = false;
    let mut fetch_in = 0;
    // WS rules: the venue sends a snapshot first (and after a reconnect).
    let mut need_snapshot = true;
    let mut recent: VecDeque<BookMsg> = VecDeque::new();
    let mut okx_reset = false;
    for step in 0..n {
        now += rng.u64(..50_000_000);
        let ctx = || format!("{rule:?} episode seed {seed} step {step}");
        let synced = books.is_synced(v, SYM);
        let r = rng.u8(..100);
        if r < 3 {
            // Disconnect; the venue moves on meanwhile (updates lost).
            books.on_disconnect(v, SYM);
            chk.after(&books, None, BookAction::None, &mut batch, &ctx);
            assert!(!books.is_synced(v, SYM), "{}", ctx());
            let mut scratch = BookMsg::default();
            for _ in 0..rng.usize(..4) {
                ids.advance(rng);
                legal_changes(rng, &mut m, &mut scratch, false);
            }
            buffered.clear();
            fetching = false;
            need_snapshot = true;
            recent.clear();
            continue;
        }
        if r < 10 {
            let next = books.publish_due(now, &mut batch);
            if let Some(t) = next {
                assert!(t > now, "{}: due {t} not after {now}", ctx());
            }
            assert_published_model(&batch, &m, cfg.depth, &ctx);
            chk.after(&books, None, BookAction::None, &mut batch, &ctx);
            continue;
        }
        if binance(rule) {
            if fetching && fetch_in == 0 {
                if rng.u8(..6) == 0 {
                    books.on_snapshot_failed(v, SYM);
                    chk.after(&books, None, BookAction::None, &mut batch, &ctx);
                    fetching = false;
                    continue;
                }
                // Snapshot at diff j (j == len: before the next, unsent diff).
                let j = rng.usize(..=buffered.len());
                let (first, last, before) = match buffered.get(j) {
                    Some(s) => (s.first, s.last, s.before.clone()),
                    None => (ids.next.0, ids.next.1, m.clone()),
                };
                let l = if rule == Rule::BinanceSpot {
                    rng.u64(first - 1..last)
                } else {
                    rng.u64(first..=last)
                };
                let mut snap = snapshot_of(&before, l);
                snap.prev_id = None;
                let stale = buffered.front().is_some_and(|s| l < s.first);
                let a = books.on_rest_snapshot(v, &snap, now, &mut batch);
                let ctx2 = || format!("{} REST snapshot {l} (j {j} of {})", ctx(), buffered.len());
                assert_published_model(&batch, &m, cfg.depth, &ctx2);
                chk.after(&books, Some(&snap), a, &mut batch, &ctx2);
                if stale {
                    assert_eq!(a, BookAction::FetchSnapshot, "{}", ctx2());
                    fetch_in = rng.usize(..3);
                } else {
                    assert_eq!(a, BookAction::None, "{}", ctx2());
                    assert!(books.is_synced(v, SYM), "{}", ctx2());
                    assert_equal(&books, v, &m, &ctx2);
                    fetching = false;
                    buffered.clear();
                }
                continue;
            }
            if synced && r < 15 && !recent.is_empty() {
                // A diff already applied, again: stale.
                let old = recent[rng.usize(..recent.len())].clone();
                let a = books.on_ws(v, &old, now, &mut batch);
                assert_eq!(a, BookAction::None, "{}", ctx());
                chk.after(&books, Some(&old), a, &mut batch, &ctx);
                assert_equal(&books, v, &m, &ctx);
                continue;
            }
            let before = m.clone();
            let mut msg = ids.advance(rng);
            let big = rng.u8(..30) == 0;
            legal_changes(rng, &mut m, &mut msg, big);
            let state = books.sync_state(v, SYM).unwrap();
            let a = books.on_ws(v, &msg, now, &mut batch);
            if synced {
                assert_eq!(a, BookAction::None, "{}", ctx());
                assert_published_model(&batch, &m, cfg.depth, &ctx);
                chk.after(&books, Some(&msg), a, &mut batch, &ctx);
                assert_equal(&books, v, &m, &ctx);
                recent.push_back(msg);
                if recent.len() > 8 {
                    recent.pop_front();
                }
            } else {
                let want = match state {
                    SyncState::AwaitingRestSnapshot { requested: true } => BookAction::None,
                    _ => BookAction::FetchSnapshot,
                };
                assert_eq!(a, want, "{}: in {state:?}", ctx());
                chk.after(&books, Some(&msg), a, &mut batch, &ctx);
                if a == BookAction::FetchSnapshot {
                    fetching = true;
                    fetch_in = rng.usize(..4);
                } else {
                    fetch_in = fetch_in.saturating_sub(1);
                }
                // The engine starts a new buffer only from Unsynced.
                if state == SyncState::Unsynced {
                    buffered.clear();
                }
                buffered.push_back(Sent {
                    first: msg.first_id,
                    last: msg.last_id,
                    before,
                });
            }
            continue;
        }
        // WS-snapshot rules.
        let msg = if need_snapshot || r < 13 {
            need_snapshot = false;
            okx_reset = false;
            if rng.u8(..4) == 0 {
                // The venue's book changes between snapshots too.
                let mut scratch = BookMsg::default();
                legal_changes(rng, &mut m, &mut scratch, true);
            }
            let mut s = snapshot_of(&m, ids.last);
            if rule == Rule::Okx {
                s.prev_id = Some(-1);
                s.checksum = m.okx_checksum();
            }
            s
        } else if rule == Rule::Bybit && r < 18 && !recent.is_empty() {
            // Stale duplicate.
            recent[rng.usize(..recent.len())].clone()
        } else if rule == Rule::Bybit && r < 19 {
            // Service restart: `u == 1` carries the whole book.
            ids.last = 1;
            let mut s = snapshot_of(&m, 1);
            s.snapshot = false;
            s
        } else if rule == Rule::Okx && r < 18 {
            // Keep-alive: prevSeqId == seqId, no levels.
            update(ids.last, ids.last, id(ids.last))
        } else if rule == Rule::Okx && r < 19 && !okx_reset && ids.last > 10 {
            // Sequence reset: seqId below prevSeqId.
            okx_reset = true;
            let prev = ids.last;
            ids.last = rng.u64(1..prev);
            let mut u = update(ids.last, ids.last, id(prev));
            legal_changes(rng, &mut m, &mut u, false);
            u.checksum = m.okx_checksum();
            u
        } else {
            let mut u = ids.advance(rng);
            let big = rng.u8(..30) == 0;
            legal_changes(rng, &mut m, &mut u, big);
            if rule == Rule::Okx && rng.u8(..4) > 0 {
                u.checksum = m.okx_checksum();
            }
            u
        };
        let a = books.on_ws(v, &msg, now, &mut batch);
        assert_eq!(a, BookAction::None, "{}: {msg:?}", ctx());
        assert!(books.is_synced(v, SYM), "{}", ctx());
        assert_published_model(&batch, &m, cfg.depth, &ctx);
        chk.after(&books, Some(&msg), a, &mut batch, &ctx);
        assert_equal(&books, v, &m, &ctx);
        if !msg.snapshot && msg.last_id > 1 {
            recent.push_back(msg);
            if recent.len() > 8 {
                recent.pop_front();
            }
        } else {
            recent.clear();
        }
    }
    let st = *books.stats(v);
    assert_eq!(
        (
            st.gaps,
            st.resyncs,
            st.crossed,
            st.checksum_failures,
            st.invalid_levels
        ),
        (0, 0, 0, 0, 0),
        "{rule:?} episode seed {seed}: a legal stream was not kept in sync: {st:?}"
    );
    chk.max_side
}

// ------------------------------------------------------------------ chaos target

use marketprism::book::side::MAX_LEVELS;

/// `m` as a snapshot plus `extra` levels per side far from the touch (a
/// deep book, past the engine's cap when `extra` is large).
fn deep_snapshot(rng: &mut Rng, m: &Model, last: u64, extra: usize) -> BookMsg {
    let mut s = snapshot_of(m, last);
    // Distinct prices: bids below 1, asks above 100.
    for k in 0..extra as i64 {
        let step = 999_999_999 / extra.max(1) as i64;
        let bid = dec(1 + k * step + rng.i64(0..step.max(1)), 9);
        let ask = dec(100_000 + k * 1_000 + rng.i64(0..1_000), 3);
        s.bids.push(Level::new(bid, qty(rng)));
        s.asks.push(Level::new(ask, qty(rng)));
    }
    s
}

/// A deep book stays within the cap and keeps its best levels: a snapshot
/// past the cap, then updates adding levels beyond it, for every rule.
pub fn deep_book_is_capped() {
    let mut rng = Rng::with_seed(run::seed());
    for rule in [
        Rule::BinanceSpot,
        Rule::BinanceFutures,
        Rule::Okx,
        Rule::Bybit,
        Rule::Deribit,
    ] {
        let v = venue_of(rule);
        let cfg = BookConfig {
            depth: 400,
            publish_interval_ns: 0,
            deltas: false,
        };
        let mut books = engine(rule, cfg, 10_000);
        let mut batch = Batch::new(1024, 1 << 16);
        let mut m = random_model(&mut rng);
        let mut ids = Ids::new(&mut rng, rule);
        let snap = deep_snapshot(&mut rng, &m, ids.last, MAX_LEVELS + 5_000);
        // The venue's book is all of it; the engine keeps the best.
        m = Model::default();
        for l in &snap.bids {
            m.set(true, *l);
        }
        for l in &snap.asks {
            m.set(false, *l);
        }
        if binance(rule) {
            let d = ids.advance(&mut rng);
            assert_eq!(books.on_ws(v, &d, 1, &mut batch), BookAction::FetchSnapshot);
            let mut s = snap;
            (s.first_id, s.last_id) = (d.last_id, d.last_id);
            assert_eq!(
                books.on_rest_snapshot(v, &s, 2, &mut batch),
                BookAction::None
            );
        } else {
            assert_eq!(books.on_ws(v, &snap, 2, &mut batch), BookAction::None);
        }
        assert!(books.is_synced(v, SYM), "{rule:?}");
        for _ in 0..20 {
            // Changes near the touch, then 500 new far levels a side.
            let mut u = ids.advance(&mut rng);
            legal_changes(&mut rng, &mut m, &mut u, false);
            let far = deep_snapshot(&mut rng, &Model::default(), 0, 500);
            for l in far.bids {
                m.set(true, l);
                u.bids.push(l);
            }
            for l in far.asks {
                m.set(false, l);
                u.asks.push(l);
            }
            assert_eq!(
                books.on_ws(v, &u, 3, &mut batch),
                BookAction::None,
                "{rule:?}"
            );
        }
        let book = books.book(v, SYM).unwrap();
        assert_eq!(book.bids().len(), MAX_LEVELS, "{rule:?}");
        assert_eq!(book.asks().len(), MAX_LEVELS, "{rule:?}");
        // What is kept is the best: the model's top 400 are all there.
        let eq = |a: Vec<&Level>, b: Vec<&Level>| {
            a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| same(x, y))
        };
        assert!(
            eq(
                book.top_bids(400).collect(),
                m.bids_best_first().take(400).collect()
            ),
            "{rule:?} bids"
        );
        assert!(
            eq(
                book.top_asks(400).collect(),
                m.asks_best_first().take(400).collect()
            ),
            "{rule:?} asks"
        );
    }
}

pub fn chaos_target(rule: Rule, ci_iters: u64) {
    let target = format!("book_chaos_{rule:?}");
    let (mut rng, iters) = run::start(&target, ci_iters);
    let mut steps = 0u64;
    let mut episodes = 0;
    let mut max_side = 0;
    let mut records = 0;
    let live0 = alloc::live();
    while steps < iters {
        let n = rng.u64(20..500).min(iters - steps);
        let seed = rng.u64(..);
        let (side, recs) = guarded(&|| format!("{target}: episode seed {seed}"), || {
            chaos_episode(&mut Rng::with_seed(seed), rule, n, seed)
        });
        max_side = max_side.max(side);
        records += recs;
        steps += n;
        episodes += 1;
    }
    let growth = alloc::live() - live0;
    assert!(growth < 1 << 20, "{target}: heap grew {growth} bytes");
    eprintln!(
        "fuzz {target}: {steps} messages in {:.1} s, {episodes} episodes, {records} records, largest side {max_side}",
        run::elapsed()
    );
}

/// Any decimal a level might carry, legal or not.
fn wild_decimal(rng: &mut Rng) -> Decimal {
    match rng.u8(..12) {
        0 => Decimal::ZERO,
        1 => dec(0, rng.u32(..29)),
        2 => -qty(rng),
        3 => Decimal::MAX,
        4 => Decimal::MIN,
        5 => dec(1, 28),
        6 => Decimal::from_i128_with_scale(rng.i128(1..1 << 95), rng.u32(..29)),
        7 => dec(rng.i64(..100_000), rng.u32(..6)),
        _ => {
            let bid = rng.bool();
            price(rng, bid)
        }
    }
}

/// Levels of any kind: legal, crossing, zero, negative, extreme, repeated.
fn wild_levels(rng: &mut Rng, out: &mut Vec<Level>, bid: bool, huge: bool) {
    out.clear();
    let n = if huge {
        rng.usize(1000..5000)
    } else {
        rng.usize(..8)
    };
    for _ in 0..n {
        if huge && rng.bool() {
            // Far from the touch, never crossing: these accumulate.
            let p = if bid {
                dec(rng.i64(1..1_000_000_000), 9)
            } else {
                dec(rng.i64(100_000..1_000_000_000_000), 3)
            };
            out.push(Level::new(p, qty(rng)));
            continue;
        }
        let l = match rng.u8(..10) {
            0 => Level::new(wild_decimal(rng), wild_decimal(rng)),
            1 => Level::new(price(rng, !bid), qty(rng)),
            2 => Level::new(price(rng, bid), zero(rng)),
            3 => Level::new(price(rng, bid), -qty(rng)),
            4 if !out.is_empty() => out[rng.usize(..out.len())],
            _ => Level::new(price(rng, bid), qty(rng)),
        };
        out.push(l);
    }
}

fn wild_id(rng: &mut Rng, near: u64) -> u64 {
    match rng.u8(..8) {
        0 => 0,
        1 => u64::MAX,
        2 => rng.u64(..),
        3 => near.saturating_sub(rng.u64(..4)),
        _ => near.saturating_add(rng.u64(..4)),
    }
}

fn wild_prev(rng: &mut Rng, near: u64) -> Option<i64> {
    match rng.u8(..8) {
        0 => None,
        1 => Some(-1),
        2 => Some(i64::MIN),
        3 => Some(i64::MAX),
        _ => id(wild_id(rng, near)),
    }
}

fn chaos_episode(rng: &mut Rng, rule: Rule, n: u64, seed: u64) -> (usize, u64) {
    let v = venue_of(rule);
    let cfg = config(rng);
    let limit = [1, 4, 64, 10_000][rng.usize(..4)];
    let mut books = engine(rule, cfg, limit);
    let mut batch = Batch::new(1024, 1 << 16);
    let mut chk = Checker::new(rule, cfg.depth, limit);
    let mut m = random_model(rng);
    let mut ids = Ids::new(rng, rule);
    let mut now = rng.u64(..1 << 62);
    let mut recent: VecDeque<BookMsg> = VecDeque::new();
    for step in 0..n {
        let ctx = || format!("{rule:?} chaos seed {seed} step {step}");
        now = match rng.u8(..16) {
            0 => now.saturating_sub(rng.u64(..1_000_000_000)),
            1 => u64::MAX - rng.u64(..2),
            2 => 0,
            _ => now.saturating_add(rng.u64(..200_000_000)),
        };
        let r = rng.u8(..100);
        let (action, sent): (BookAction, Option<BookMsg>) = match r {
            0..=2 => {
                books.on_disconnect(v, SYM);
                (BookAction::None, None)
            }
            3 => {
                books.on_venue_disconnect(v);
                (BookAction::None, None)
            }
            4..=6 => {
                books.on_snapshot_failed(v, SYM);
                (BookAction::None, None)
            }
            7..=14 => {
                books.publish_due(now, &mut batch);
                (BookAction::None, None)
            }
            15..=22 => {
                // A REST snapshot, asked for or not, of any age and content.
                let mut s = if rng.u8(..64) == 0 {
                    let extra = rng.usize(MAX_LEVELS - 1000..MAX_LEVELS + 10_000);
                    {
                        let last = wild_id(rng, ids.last);
                        deep_snapshot(rng, &m, last, extra)
                    }
                } else if rng.bool() {
                    snapshot_of(&m, wild_id(rng, ids.last))
                } else {
                    let mut s = update(0, wild_id(rng, ids.last), None);
                    s.snapshot = true;
                    s.first_id = s.last_id;
                    let big = rng.u8(..20) == 0;
                    wild_levels(rng, &mut s.bids, true, big);
                    wild_levels(rng, &mut s.asks, false, false);
                    s
                };
                if rng.u8(..10) == 0 {
                    s.raw_symbol = "UNKNOWN".into();
                }
                (books.on_rest_snapshot(v, &s, now, &mut batch), Some(s))
            }
            23..=26 if !recent.is_empty() => {
                // Duplicate or out of order.
                let old = recent[rng.usize(..recent.len())].clone();
                (books.on_ws(v, &old, now, &mut batch), Some(old))
            }
            _ => {
                let mut msg = match rng.u8(..10) {
                    // A plausible next update, possibly of bad content.
                    0..=4 => {
                        let mut u = ids.advance(rng);
                        if rng.u8(..3) == 0 {
                            wild_levels(rng, &mut u.bids, true, false);
                            wild_levels(rng, &mut u.asks, false, false);
                        } else {
                            legal_changes(rng, &mut m, &mut u, false);
                        }
                        u
                    }
                    // Ids from anywhere.
                    5 | 6 => {
                        let mut u = update(
                            wild_id(rng, ids.last),
                            wild_id(rng, ids.last),
                            wild_prev(rng, ids.last),
                        );
                        wild_levels(rng, &mut u.bids, true, false);
                        wild_levels(rng, &mut u.asks, false, false);
                        u
                    }
                    // A WebSocket snapshot (Binance: never sent that way).
                    7 => {
                        let mut s = if rng.u8(..64) == 0 {
                            let extra = rng.usize(MAX_LEVELS - 1000..MAX_LEVELS + 10_000);
                            deep_snapshot(rng, &m, ids.last, extra)
                        } else {
                            snapshot_of(&m, wild_id(rng, ids.last))
                        };
                        s.prev_id = Some(-1);
                        if rng.bool() {
                            let big = rng.u8(..10) == 0;
                            wild_levels(rng, &mut s.bids, true, big);
                        }
                        s
                    }
                    // Bybit restart marker with any content.
                    8 => {
                        let mut u = update(1, 1, None);
                        let big = rng.u8(..10) == 0;
                        wild_levels(rng, &mut u.bids, true, big);
                        wild_levels(rng, &mut u.asks, false, false);
                        u
                    }
                    _ => {
                        let mut u = ids.advance(rng);
                        wild_levels(rng, &mut u.asks, false, true);
                        u
                    }
                };
                msg.checksum = match rng.u8(..4) {
                    0 => None,
                    1 => Some(rng.i32(..)),
                    _ => m.okx_checksum(),
                };
                if rng.u8(..50) == 0 {
                    msg.raw_symbol = "UNKNOWN".into();
                }
                let a = books.on_ws(v, &msg, now, &mut batch);
                recent.push_back(msg.clone());
                if recent.len() > 16 {
                    recent.pop_front();
                }
                (a, Some(msg))
            }
        };
        let sent = sent.filter(|s| s.raw_symbol == SYM);
        chk.after(&books, sent.as_ref(), action, &mut batch, &ctx);
        if rng.u8(..32) == 0 {
            let _ = books.next_publish_ns();
        }
    }
    assert!(
        chk.max_side <= MAX_LEVELS,
        "{rule:?} chaos seed {seed}: a side grew to {} levels",
        chk.max_side
    );
    // A clean start after the chaos: the engine follows the venue again.
    let ctx = || format!("{rule:?} chaos seed {seed}: recovery");
    books.on_disconnect(v, SYM);
    chk.after(&books, None, BookAction::None, &mut batch, &ctx);
    m = random_model(rng);
    ids = Ids::new(rng, rule);
    if binance(rule) {
        let mut d = ids.advance(rng);
        legal_changes(rng, &mut m, &mut d, false);
        let a = books.on_ws(v, &d, now, &mut batch);
        assert_eq!(a, BookAction::FetchSnapshot, "{}", ctx());
        chk.after(&books, Some(&d), a, &mut batch, &ctx);
        // Taken after that diff: it is stale, the next one bridges.
        let s = snapshot_of(&m, d.last_id);
        let a = books.on_rest_snapshot(v, &s, now, &mut batch);
        assert_eq!(a, BookAction::None, "{}", ctx());
        chk.after(&books, Some(&s), a, &mut batch, &ctx);
    } else {
        let mut s = snapshot_of(&m, ids.last);
        s.prev_id = Some(-1);
        s.checksum = m.okx_checksum();
        let a = books.on_ws(v, &s, now, &mut batch);
        assert_eq!(a, BookAction::None, "{}", ctx());
        chk.after(&books, Some(&s), a, &mut batch, &ctx);
    }
    let mut u = ids.advance(rng);
    legal_changes(rng, &mut m, &mut u, false);
    u.checksum = m.okx_checksum();
    let a = books.on_ws(v, &u, now, &mut batch);
    assert_eq!(a, BookAction::None, "{}", ctx());
    chk.after(&books, Some(&u), a, &mut batch, &ctx);
    assert!(books.is_synced(v, SYM), "{}", ctx());
    assert_equal(&books, v, &m, &ctx);
    (chk.max_side, chk.records)
}
