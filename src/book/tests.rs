//! Rule-by-rule tests of the sync state machines and of publishing.

use crate::venue::okx::checksum::okx_checksum;
use super::*;
use crate::batch::{Batch, Level, Record};
use crate::model::VenueId;
use rust_decimal::Decimal;
use std::str::FromStr;

const BS: VenueId = VenueId::BinanceSpot;
const BF: VenueId = VenueId::BinanceDerivatives;
const OKX: VenueId = VenueId::OkxSpot;
const BY: VenueId = VenueId::BybitLinear;
const DB: VenueId = VenueId::DeribitDerivatives;
const NONE: BookAction = BookAction::None;
const FETCH: BookAction = BookAction::FetchSnapshot;
const RESUB: BookAction = BookAction::Resubscribe;

type Lv<'a> = &'a [(&'a str, &'a str)];

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn levels(l: Lv<'_>) -> Vec<Level> {
    l.iter().map(|(p, q)| Level::new(d(p), d(q))).collect()
}

fn upd(first: u64, last: u64, prev: Option<i64>, bids: Lv<'_>, asks: Lv<'_>) -> BookMsg {
    BookMsg {
        raw_symbol: "X".into(),
        snapshot: false,
        first_id: first,
        last_id: last,
        prev_id: prev,
        checksum: None,
        bids: levels(bids),
        asks: levels(asks),
        ts_ms: last,
        shadow: false,
    }
}

fn snap(last: u64, bids: Lv<'_>, asks: Lv<'_>) -> BookMsg {
    BookMsg {
        snapshot: true,
        prev_id: Some(-1),
        ..upd(last, last, None, bids, asks)
    }
}

/// Binance diff `U..=u` (spot: no `pu`).
fn diff(first: u64, last: u64) -> BookMsg {
    upd(first, last, None, &[("10", "1")], &[("11", "1")])
}

/// USDⓈ-M diff with `pu`.
fn fdiff(first: u64, last: u64, pu: i64) -> BookMsg {
    upd(first, last, Some(pu), &[("10", "1")], &[("11", "1")])
}

fn rest(last: u64) -> BookMsg {
    BookMsg {
        snapshot: true,
        prev_id: None,
        ..upd(
            last,
            last,
            None,
            &[("10", "5"), ("9", "5")],
            &[("11", "5"), ("12", "5")],
        )
    }
}

const CFG: BookConfig = BookConfig {
    depth: 400,
    publish_interval_ns: 0,
    deltas: false,
};

fn setup(venue: VenueId, cfg: BookConfig) -> (Books, Batch) {
    let mut b = Books::new(crate::venue::book_rule, &[(venue, cfg)]);
    b.register(venue, "X", "X-USDT");
    (b, Batch::new(1024, 1 << 20))
}

/// (delta, last id, bids, asks) of the book records in the batch.
type Rec = (bool, u64, Vec<(String, String)>, Vec<(String, String)>);

fn records(batch: &Batch) -> Vec<Rec> {
    let s = |l: &[Level]| {
        l.iter()
            .map(|l| (l.price.to_string(), l.quantity.to_string()))
            .collect::<Vec<_>>()
    };
    batch
        .iter()
        .filter_map(|r| match r {
            Record::Book(b) => Some((b.delta, b.last_update_id, s(b.bids), s(b.asks))),
            _ => None,
        })
        .collect()
}

fn ids(batch: &Batch) -> Vec<(bool, u64)> {
    records(batch).into_iter().map(|r| (r.0, r.1)).collect()
}

// ---------------------------------------------------------------- Binance spot

#[test]
fn spot_buffers_then_bridges() {
    let (mut b, mut batch) = setup(BS, CFG);
    assert_eq!(b.sync_state(BS, "X"), Some(SyncState::Unsynced));
    assert_eq!(b.on_ws(BS, &diff(1, 3), 1, &mut batch), FETCH);
    assert_eq!(b.on_ws(BS, &diff(4, 5), 2, &mut batch), NONE);
    assert_eq!(b.on_ws(BS, &diff(6, 6), 3, &mut batch), NONE);
    assert!(b.needs_snapshot(BS, "X"));
    assert_eq!(b.waiting_for_snapshot(BS).collect::<Vec<_>>(), ["X"]);
    assert_eq!(b.buffered(BS, "X"), 3);
    assert!(batch.is_empty(), "nothing published before sync");
    // lastUpdateId 4: (1,3) dropped, (4,5) bridges 4 <= 5 <= 5, (6,6) follows.
    assert_eq!(b.on_rest_snapshot(BS, &rest(4), 4, &mut batch), NONE);
    assert!(b.is_synced(BS, "X"));
    assert!(!b.needs_snapshot(BS, "X"));
    assert_eq!(b.book(BS, "X").unwrap().last_update_id(), 6);
    assert_eq!(b.on_ws(BS, &diff(7, 9), 5, &mut batch), NONE);
    let st = *b.stats(BS);
    assert_eq!(
        (
            st.updates_applied,
            st.stale_dropped,
            st.gaps,
            st.snapshots_applied
        ),
        (3, 1, 0, 1)
    );
    assert_eq!(ids(&batch), [(false, 6), (false, 9)]);
}

#[test]
fn spot_stale_snapshot_is_fetched_again() {
    let (mut b, mut batch) = setup(BS, CFG);
    b.on_ws(BS, &diff(10, 12), 1, &mut batch);
    assert_eq!(b.on_rest_snapshot(BS, &rest(9), 2, &mut batch), FETCH);
    assert_eq!(b.stats(BS).stale_snapshots, 1);
    assert!(!b.is_synced(BS, "X"));
    // lastUpdateId == U: accepted, and the event bridges.
    assert_eq!(b.on_rest_snapshot(BS, &rest(10), 3, &mut batch), NONE);
    assert!(b.is_synced(BS, "X"));
    assert_eq!(b.book(BS, "X").unwrap().last_update_id(), 12);
}

#[test]
fn spot_gap_resyncs_keeping_the_revealing_event() {
    let (mut b, mut batch) = setup(BS, CFG);
    b.on_ws(BS, &diff(1, 3), 1, &mut batch);
    b.on_rest_snapshot(BS, &rest(3), 2, &mut batch);
    assert!(b.is_synced(BS, "X"));
    assert_eq!(b.on_ws(BS, &diff(4, 5), 3, &mut batch), NONE);
    assert_eq!(b.on_ws(BS, &diff(7, 8), 4, &mut batch), FETCH);
    assert!(!b.is_synced(BS, "X"));
    assert!(b.book(BS, "X").unwrap().bids().is_empty());
    assert_eq!(b.buffered(BS, "X"), 1);
    let st = *b.stats(BS);
    assert_eq!((st.gaps, st.resyncs), (1, 1));
    // Overlapping U (not prev u + 1) is a gap too.
    b.on_rest_snapshot(BS, &rest(7), 5, &mut batch);
    assert_eq!(b.book(BS, "X").unwrap().last_update_id(), 8);
    assert_eq!(b.on_ws(BS, &diff(8, 10), 6, &mut batch), FETCH);
    assert_eq!(b.stats(BS).gaps, 2);
}

#[test]
fn spot_first_event_must_bridge() {
    let (mut b, mut batch) = setup(BS, CFG);
    b.on_ws(BS, &diff(5, 6), 1, &mut batch);
    b.on_ws(BS, &diff(9, 10), 2, &mut batch);
    // lastUpdateId 7: (5,6) dropped, (9,10) has U 9 > 8.
    assert_eq!(b.on_rest_snapshot(BS, &rest(7), 3, &mut batch), FETCH);
    assert!(!b.is_synced(BS, "X"));
    assert_eq!(b.buffered(BS, "X"), 1, "(9,10) starts the new buffer");
    assert_eq!(b.stats(BS).gaps, 1);
    assert_eq!(b.on_rest_snapshot(BS, &rest(9), 4, &mut batch), NONE);
    assert_eq!(b.book(BS, "X").unwrap().last_update_id(), 10);
    assert_eq!(ids(&batch), [(false, 10)]);
}

#[test]
fn spot_stale_events_ignored_and_empty_buffer_snapshot() {
    let (mut b, mut batch) = setup(BS, CFG);
    b.on_ws(BS, &diff(1, 2), 1, &mut batch);
    b.on_ws(BS, &diff(3, 4), 1, &mut batch);
    // Every buffered diff is older: the snapshot stands, the next diff bridges.
    b.on_rest_snapshot(BS, &rest(20), 2, &mut batch);
    assert!(b.is_synced(BS, "X"));
    assert_eq!(b.on_ws(BS, &diff(15, 20), 3, &mut batch), NONE);
    assert_eq!(b.on_ws(BS, &diff(18, 22), 4, &mut batch), NONE);
    assert_eq!(b.book(BS, "X").unwrap().last_update_id(), 22);
    assert_eq!(b.on_ws(BS, &diff(21, 22), 5, &mut batch), NONE);
    assert_eq!(b.stats(BS).stale_dropped, 4);
    // A snapshot nobody asked for is ignored.
    assert_eq!(b.on_rest_snapshot(BS, &rest(100), 6, &mut batch), NONE);
    assert_eq!(b.stats(BS).ignored_snapshots, 1);
    assert_eq!(b.book(BS, "X").unwrap().last_update_id(), 22);
}

#[test]
fn buffer_overflow_clears_and_refetches() {
    let (mut b, mut batch) = setup(BS, CFG);
    b.set_buffer_limit(3);
    assert_eq!(b.on_ws(BS, &diff(1, 1), 1, &mut batch), FETCH);
    assert_eq!(b.on_ws(BS, &diff(2, 2), 1, &mut batch), NONE);
    assert_eq!(b.on_ws(BS, &diff(3, 3), 1, &mut batch), NONE);
    assert_eq!(b.on_ws(BS, &diff(4, 4), 1, &mut batch), FETCH);
    assert_eq!(b.buffered(BS, "X"), 1);
    let st = *b.stats(BS);
    assert_eq!(
        (st.buffer_overflows, st.snapshot_requests, st.buffered),
        (1, 2, 4)
    );
    // The old snapshot (for the cleared buffer) is stale now.
    assert_eq!(b.on_rest_snapshot(BS, &rest(2), 2, &mut batch), FETCH);
    // lastUpdateId < U is stale even when lastUpdateId + 1 == U (documented).
    assert_eq!(b.on_rest_snapshot(BS, &rest(3), 3, &mut batch), FETCH);
    assert_eq!(b.on_rest_snapshot(BS, &rest(4), 3, &mut batch), NONE);
    assert_eq!(b.book(BS, "X").unwrap().last_update_id(), 4);
}

#[test]
fn snapshot_failure_asks_again_on_next_diff() {
    let (mut b, mut batch) = setup(BS, CFG);
    b.on_ws(BS, &diff(1, 1), 1, &mut batch);
    b.on_snapshot_failed(BS, "X");
    assert_eq!(
        b.sync_state(BS, "X"),
        Some(SyncState::AwaitingRestSnapshot { requested: false })
    );
    assert!(b.needs_snapshot(BS, "X"));
    assert_eq!(b.on_ws(BS, &diff(2, 2), 2, &mut batch), FETCH);
    assert_eq!(b.on_ws(BS, &diff(3, 3), 3, &mut batch), NONE);
    assert_eq!(b.stats(BS).snapshot_failures, 1);
    assert_eq!(b.on_rest_snapshot(BS, &rest(1), 4, &mut batch), NONE);
    assert_eq!(b.book(BS, "X").unwrap().last_update_id(), 3);
}

#[test]
fn disconnect_starts_over() {
    let (mut b, mut batch) = setup(BS, CFG);
    b.on_ws(BS, &diff(1, 1), 1, &mut batch);
    b.on_rest_snapshot(BS, &rest(1), 2, &mut batch);
    assert!(b.is_synced(BS, "X"));
    b.on_disconnect(BS, "X");
    assert!(!b.is_synced(BS, "X"));
    assert_eq!(b.on_ws(BS, &diff(50, 51), 3, &mut batch), FETCH);
    assert_eq!(b.stats(BS).resyncs, 0, "a disconnect is not a resync");

    let (mut o, mut batch) = setup(OKX, CFG);
    o.on_ws(OKX, &snap(10, &[("1", "1")], &[("2", "1")]), 1, &mut batch);
    o.on_venue_disconnect(OKX);
    assert_eq!(
        o.on_ws(OKX, &upd(11, 11, Some(10), &[], &[]), 2, &mut batch),
        NONE
    );
    assert_eq!(o.stats(OKX).dropped_unsynced, 1);
    o.on_ws(OKX, &snap(20, &[("1", "1")], &[("2", "1")]), 3, &mut batch);
    assert!(o.is_synced(OKX, "X"));
}

// ---------------------------------------------------------------- USDⓈ-M

#[test]
fn futures_pu_chain() {
    let (mut b, mut batch) = setup(BF, CFG);
    assert_eq!(b.on_ws(BF, &fdiff(80, 95, 70), 1, &mut batch), FETCH);
    b.on_ws(BF, &fdiff(100, 110, 95), 1, &mut batch);
    b.on_ws(BF, &fdiff(111, 120, 110), 1, &mut batch);
    // lastUpdateId 110: (80,95) dropped (u < 110), (100,110) kept: U <= 110 <= u.
    assert_eq!(b.on_rest_snapshot(BF, &rest(110), 2, &mut batch), NONE);
    assert!(b.is_synced(BF, "X"));
    assert_eq!(b.book(BF, "X").unwrap().last_update_id(), 120);
    assert_eq!(b.on_ws(BF, &fdiff(125, 130, 120), 3, &mut batch), NONE);
    let st = *b.stats(BF);
    assert_eq!((st.updates_applied, st.stale_dropped, st.gaps), (3, 1, 0));
    // pu mismatch.
    assert_eq!(b.on_ws(BF, &fdiff(140, 150, 135), 4, &mut batch), FETCH);
    assert_eq!((b.stats(BF).gaps, b.stats(BF).resyncs), (1, 1));
    assert!(!b.is_synced(BF, "X"));
}

#[test]
fn futures_first_event_must_cover_snapshot() {
    let (mut b, mut batch) = setup(BF, CFG);
    b.on_ws(BF, &fdiff(90, 100, 80), 1, &mut batch);
    b.on_ws(BF, &fdiff(120, 130, 115), 1, &mut batch);
    assert_eq!(b.on_rest_snapshot(BF, &rest(110), 2, &mut batch), FETCH);
    assert_eq!(b.stats(BF).gaps, 1);
    // No pu at all cannot be verified: a gap, never a panic.
    let (mut b, mut batch) = setup(BF, CFG);
    b.on_ws(BF, &fdiff(90, 100, 80), 1, &mut batch);
    b.on_rest_snapshot(BF, &rest(95), 2, &mut batch);
    assert_eq!(b.on_ws(BF, &diff(101, 105), 3, &mut batch), FETCH);
}

// ---------------------------------------------------------------- OKX

#[test]
fn okx_sequence_keepalive_and_reset() {
    let (mut b, mut batch) = setup(OKX, CFG);
    // Updates before the snapshot are dropped.
    assert_eq!(
        b.on_ws(OKX, &upd(9, 9, Some(8), &[], &[]), 1, &mut batch),
        NONE
    );
    assert_eq!(b.stats(OKX).dropped_unsynced, 1);
    // §3.4: snapshot (-1,10) → (10,15) → (15,15) → (15,3) → (3,5).
    let s = snap(10, &[("100", "1")], &[("101", "1")]);
    assert_eq!(b.on_ws(OKX, &s, 2, &mut batch), NONE);
    let steps = [
        upd(15, 15, Some(10), &[("99", "2")], &[]),
        upd(15, 15, Some(15), &[], &[]),
        upd(3, 3, Some(15), &[], &[("102", "3")]),
        upd(5, 5, Some(3), &[("100", "0")], &[]),
    ];
    for m in &steps {
        assert_eq!(b.on_ws(OKX, m, 3, &mut batch), NONE);
    }
    let book = b.book(OKX, "X").unwrap();
    assert_eq!(book.last_update_id(), 5);
    assert_eq!(book.best_bid().unwrap().price, d("99"));
    assert_eq!(book.asks().len(), 2);
    let st = *b.stats(OKX);
    assert_eq!((st.gaps, st.resyncs, st.updates_applied), (0, 0, 4));
    // Any other mismatch: gap → resubscribe, then drop until the snapshot.
    assert_eq!(
        b.on_ws(OKX, &upd(8, 8, Some(7), &[], &[]), 4, &mut batch),
        RESUB
    );
    assert_eq!(b.sync_state(OKX, "X"), Some(SyncState::AwaitingWsSnapshot));
    assert_eq!(
        b.on_ws(OKX, &upd(9, 9, Some(8), &[], &[]), 5, &mut batch),
        NONE
    );
    assert_eq!(b.stats(OKX).dropped_unsynced, 2);
    // An update claiming prevSeqId -1 is not a snapshot.
    b.on_ws(OKX, &s, 6, &mut batch);
    assert_eq!(
        b.on_ws(OKX, &upd(11, 11, Some(-1), &[], &[]), 7, &mut batch),
        RESUB
    );
    assert_eq!(b.stats(OKX).gaps, 2);
}

#[test]
fn okx_checksum_verified_and_mismatch_resubscribes() {
    let (mut b, mut batch) = setup(OKX, CFG);
    let mut s = snap(
        1,
        &[("3366.1", "7"), ("3366", "6")],
        &[("3366.8", "9"), ("3368", "8")],
    );
    s.checksum = Some(-1881014294);
    assert_eq!(b.on_ws(OKX, &s, 1, &mut batch), NONE);
    // → the second documented vector.
    let mut u = upd(2, 2, Some(1), &[("3366", "0")], &[("3372", "8")]);
    u.checksum = Some(831078360);
    assert_eq!(b.on_ws(OKX, &u, 2, &mut batch), NONE);
    assert_eq!(okx_checksum(b.book(OKX, "X").unwrap()), 831078360);
    let mut bad = upd(3, 3, Some(2), &[("3366.2", "1")], &[]);
    bad.checksum = Some(831078360);
    assert_eq!(b.on_ws(OKX, &bad, 3, &mut batch), RESUB);
    let st = *b.stats(OKX);
    assert_eq!(
        (st.checksums_verified, st.checksum_failures, st.resyncs),
        (3, 1, 1)
    );
    assert!(!b.is_synced(OKX, "X"));
    // A snapshot that fails its own checksum is not trusted either.
    s.checksum = Some(1);
    assert_eq!(b.on_ws(OKX, &s, 4, &mut batch), RESUB);
    assert_eq!(b.stats(OKX).checksum_failures, 2);
}

// ---------------------------------------------------------------- Bybit

#[test]
fn bybit_snapshots_reset_and_stale_deltas() {
    let (mut b, mut batch) = setup(BY, CFG);
    assert_eq!(
        b.on_ws(BY, &upd(5, 5, None, &[("1", "1")], &[]), 1, &mut batch),
        NONE
    );
    assert_eq!(b.stats(BY).dropped_unsynced, 1);
    assert!(!b.is_synced(BY, "X"));
    b.on_ws(
        BY,
        &snap(100, &[("10", "1"), ("9", "1")], &[("11", "1")]),
        2,
        &mut batch,
    );
    assert_eq!(
        b.on_ws(BY, &upd(101, 101, None, &[("9", "0")], &[]), 3, &mut batch),
        NONE
    );
    assert_eq!(
        b.on_ws(BY, &upd(101, 101, None, &[("8", "1")], &[]), 4, &mut batch),
        NONE
    );
    assert_eq!(b.stats(BY).stale_dropped, 1);
    assert_eq!(b.book(BY, "X").unwrap().bids().len(), 1);
    // Mid-stream snapshot replaces everything.
    b.on_ws(
        BY,
        &snap(500, &[("20", "1")], &[("21", "1")]),
        5,
        &mut batch,
    );
    let book = b.book(BY, "X").unwrap();
    assert_eq!(
        (book.bids().len(), book.best_bid().unwrap().price),
        (1, d("20"))
    );
    // u == 1: the service restarted; overwrite even when sent as a delta.
    b.on_ws(
        BY,
        &upd(1, 1, None, &[("30", "1")], &[("31", "1")]),
        6,
        &mut batch,
    );
    let book = b.book(BY, "X").unwrap();
    assert_eq!((book.last_update_id(), book.bids().len()), (1, 1));
    assert_eq!(book.best_ask().unwrap().price, d("31"));
    assert_eq!(
        b.on_ws(BY, &upd(2, 2, None, &[("29", "1")], &[]), 7, &mut batch),
        NONE
    );
    let st = *b.stats(BY);
    assert_eq!(
        (st.snapshots_applied, st.updates_applied, st.resyncs),
        (3, 2, 0)
    );
}

#[test]
fn bybit_u1_right_after_a_u0_snapshot_is_a_delta() {
    let (mut b, mut batch) = setup(BY, CFG);
    b.on_ws(
        BY,
        &snap(0, &[("10", "1"), ("9", "1")], &[("11", "1")]),
        1,
        &mut batch,
    );
    // The first delta after a `u == 0` snapshot: applied, not a restart.
    b.on_ws(BY, &upd(1, 1, None, &[("8", "2")], &[]), 2, &mut batch);
    let book = b.book(BY, "X").unwrap();
    assert_eq!((book.last_update_id(), book.bids().len()), (1, 3));
    assert_eq!(book.asks().len(), 1);
    let st = *b.stats(BY);
    assert_eq!((st.snapshots_applied, st.updates_applied), (1, 1));
}

// ---------------------------------------------------------------- Deribit

#[test]
fn deribit_change_id_chain() {
    let (mut b, mut batch) = setup(DB, CFG);
    assert_eq!(
        b.on_ws(DB, &upd(99, 99, Some(98), &[], &[]), 1, &mut batch),
        NONE
    );
    b.on_ws(
        DB,
        &snap(100, &[("0.1", "5")], &[("0.2", "5")]),
        2,
        &mut batch,
    );
    assert_eq!(
        b.on_ws(
            DB,
            &upd(105, 105, Some(100), &[("0.15", "1")], &[]),
            3,
            &mut batch
        ),
        NONE
    );
    assert_eq!(b.book(DB, "X").unwrap().last_update_id(), 105);
    assert_eq!(
        b.on_ws(DB, &upd(110, 110, Some(104), &[], &[]), 4, &mut batch),
        RESUB
    );
    assert_eq!(
        b.on_ws(DB, &upd(111, 111, None, &[], &[]), 5, &mut batch),
        NONE
    );
    let st = *b.stats(DB);
    assert_eq!((st.gaps, st.resyncs, st.dropped_unsynced), (1, 1, 2));
    b.on_ws(
        DB,
        &snap(200, &[("0.1", "5")], &[("0.2", "5")]),
        6,
        &mut batch,
    );
    assert!(b.is_synced(DB, "X"));
}

// ---------------------------------------------------------------- crossed

#[test]
fn crossed_book_resyncs() {
    let (mut b, mut batch) = setup(BY, CFG);
    b.on_ws(BY, &snap(1, &[("10", "1")], &[("11", "1")]), 1, &mut batch);
    assert_eq!(
        b.on_ws(BY, &upd(2, 2, None, &[("11", "1")], &[]), 2, &mut batch),
        RESUB
    );
    let st = *b.stats(BY);
    assert_eq!((st.crossed, st.resyncs), (1, 1));
    assert!(!b.is_synced(BY, "X"));

    let (mut b, mut batch) = setup(BS, CFG);
    b.on_ws(BS, &diff(1, 1), 1, &mut batch);
    b.on_rest_snapshot(BS, &rest(1), 2, &mut batch);
    let crossing = upd(2, 2, None, &[], &[("9.5", "1")]);
    assert_eq!(b.on_ws(BS, &crossing, 3, &mut batch), FETCH);
    assert_eq!(b.stats(BS).crossed, 1);
    assert!(b.needs_snapshot(BS, "X"));
    // A crossed REST snapshot is refetched.
    b.on_ws(BS, &diff(3, 3), 4, &mut batch);
    let mut bad = rest(3);
    bad.bids = levels(&[("13", "1")]);
    assert_eq!(b.on_rest_snapshot(BS, &bad, 5, &mut batch), FETCH);
    assert_eq!(b.stats(BS).crossed, 2);
    assert_eq!(b.on_rest_snapshot(BS, &rest(3), 6, &mut batch), NONE);
    assert!(b.is_synced(BS, "X"));
    // Only the two verified books were published.
    assert_eq!(ids(&batch), [(false, 1), (false, 3)]);
}

// ---------------------------------------------------------------- robustness

#[test]
fn unknown_symbols_and_absurd_input_do_not_panic() {
    let (mut b, mut batch) = setup(BS, CFG);
    let mut m = diff(1, 1);
    m.raw_symbol = "NOPE".into();
    assert_eq!(b.on_ws(BS, &m, 1, &mut batch), NONE);
    assert_eq!(b.on_rest_snapshot(BS, &m, 1, &mut batch), NONE);
    b.on_disconnect(BS, "NOPE");
    b.on_snapshot_failed(BS, "NOPE");
    assert_eq!(b.stats(BS).unknown_symbol, 2);
    assert!(b.book(BS, "NOPE").is_none() && !b.is_synced(BS, "NOPE"));

    b.on_ws(BS, &diff(u64::MAX, 3), 1, &mut batch);
    b.on_rest_snapshot(BS, &rest(u64::MAX), 2, &mut batch);
    b.on_ws(BS, &diff(u64::MAX, u64::MAX), 3, &mut batch);
    b.on_ws(BS, &diff(0, 0), 4, &mut batch);
    let neg = upd(
        0,
        u64::MAX,
        Some(i64::MIN),
        &[("-1", "1"), ("5", "-3")],
        &[],
    );
    b.on_ws(BS, &neg, 5, &mut batch);
    b.on_ws(
        BS,
        &BookMsg {
            raw_symbol: "X".into(),
            ..Default::default()
        },
        6,
        &mut batch,
    );

    for v in [OKX, BY, DB, BF] {
        let (mut o, mut batch) = setup(v, CFG);
        let huge = "79228162514264337593543950335";
        let wild = upd(
            u64::MAX,
            u64::MAX,
            Some(i64::MAX),
            &[(huge, huge)],
            &[(huge, "0")],
        );
        o.on_ws(v, &snap(0, &[], &[]), 1, &mut batch);
        o.on_ws(v, &wild, 2, &mut batch);
        o.on_ws(
            v,
            &snap(u64::MAX, &[(huge, "1"), ("0", "1")], &[]),
            3,
            &mut batch,
        );
        o.on_ws(v, &neg, 4, &mut batch);
        o.on_rest_snapshot(v, &rest(0), 5, &mut batch);
        o.publish_due(u64::MAX, &mut batch);
    }
}

// ---------------------------------------------------------------- publishing

#[test]
fn throttle_publishes_when_due_and_always_the_final_state() {
    let cfg = BookConfig {
        depth: 400,
        publish_interval_ns: 100,
        deltas: false,
    };
    let (mut b, mut batch) = setup(BY, cfg);
    let q = |id: u64, px: &str| upd(id, id, None, &[(px, "1")], &[]);
    b.on_ws(
        BY,
        &snap(1, &[("10", "1")], &[("20", "1")]),
        1000,
        &mut batch,
    );
    assert_eq!(ids(&batch), [(false, 1)], "first change: published at once");
    assert_eq!(b.next_publish_ns(), None);
    b.on_ws(BY, &q(2, "11"), 1010, &mut batch);
    b.on_ws(BY, &q(3, "12"), 1050, &mut batch);
    assert_eq!(batch.len(), 1, "throttled");
    assert_eq!(b.next_publish_ns(), Some(1100));
    assert_eq!(b.publish_due(1099, &mut batch), Some(1100));
    assert_eq!(batch.len(), 1);
    assert_eq!(b.publish_due(1100, &mut batch), None);
    let recs = records(&batch);
    assert_eq!((recs.len(), recs[1].1), (2, 3), "the latest state, once");
    assert_eq!(recs[1].2[0], ("12".to_string(), "1".to_string()));
    assert_eq!(b.publish_due(5000, &mut batch), None, "nothing left");
    // Unchanged book (stale delta): nothing to publish.
    b.on_ws(BY, &q(3, "13"), 1150, &mut batch);
    assert_eq!(b.next_publish_ns(), None);
    // Due again at 1200: immediate.
    b.on_ws(BY, &q(4, "13"), 1200, &mut batch);
    assert_eq!(batch.len(), 3);
    // Throttled, then the book is discarded: the pending record goes with it.
    b.on_ws(BY, &q(5, "14"), 1210, &mut batch);
    b.on_ws(BY, &upd(6, 6, None, &[("25", "1")], &[]), 1220, &mut batch);
    assert_eq!(b.publish_due(2000, &mut batch), None);
    assert_eq!(batch.len(), 3);
    // The fresh snapshot is published (throttle permitting: due already).
    b.on_ws(
        BY,
        &snap(9, &[("10", "1")], &[("20", "1")]),
        1300,
        &mut batch,
    );
    assert_eq!(
        ids(&batch),
        [(false, 1), (false, 3), (false, 4), (false, 9)]
    );
    assert_eq!(b.stats(BY).published, 4);
    // Origin and timing fields.
    let r = batch.iter().last().copied().unwrap();
    let o = r.origin();
    assert_eq!(
        (o.symbol, o.raw_symbol, o.ts_ms, o.receive_ts_ns),
        ("X-USDT", "X", 9, 1300)
    );
}

#[test]
fn throttle_across_symbols_counts_exactly() {
    let cfg = BookConfig {
        depth: 10,
        publish_interval_ns: 100,
        deltas: false,
    };
    let mut b = Books::new(crate::venue::book_rule, &[(BY, cfg)]);
    let mut batch = Batch::new(4096, 1 << 20);
    for s in ["A", "B", "C"] {
        b.register(BY, s, s);
    }
    let mut next = None;
    // 3 symbols, one change each every 10 ns for 1000 ns; timer honoured.
    for t in 0..100u64 {
        let now = 10_000 + t * 10;
        if next.is_some_and(|n| now >= n) {
            b.publish_due(now, &mut batch);
        }
        for s in ["A", "B", "C"] {
            let mut m = if t == 0 {
                snap(1, &[("1", "1")], &[("1000", "1")])
            } else {
                upd(t + 1, t + 1, None, &[(&format!("{}", t + 1), "1")], &[])
            };
            m.raw_symbol = s.into();
            b.on_ws(BY, &m, now, &mut batch);
        }
        next = b.next_publish_ns();
    }
    assert_eq!(b.publish_due(20_000, &mut batch), None);
    // Every 100 ns per symbol over [10000, 10990], plus the final state.
    assert_eq!(batch.len(), 3 * 11);
    for s in ["A", "B", "C"] {
        let last = batch.iter().filter(|r| r.symbol() == s).last().copied();
        match last {
            Some(Record::Book(r)) => {
                assert_eq!(r.last_update_id, 100);
                assert_eq!(r.bids.len(), 10);
                assert_eq!(r.bids[0].price, d("100"));
            }
            _ => panic!("no record for {s}"),
        }
    }
}

#[test]
fn deltas_and_depth() {
    let cfg = BookConfig {
        depth: 2,
        publish_interval_ns: 0,
        deltas: true,
    };
    let (mut b, mut batch) = setup(BF, cfg);
    b.on_ws(BF, &fdiff(5, 6, 4), 1, &mut batch);
    let mut u = upd(
        7,
        9,
        Some(6),
        &[("9.5", "2"), ("10", "0")],
        &[("10.5", "1")],
    );
    b.on_ws(BF, &u, 2, &mut batch);
    assert!(batch.is_empty());
    let mut s = rest(6);
    s.bids = levels(&[("10", "1"), ("9", "1"), ("8", "1")]);
    b.on_rest_snapshot(BF, &s, 3, &mut batch);
    u.first_id = 10;
    u.last_id = 12;
    u.prev_id = Some(9);
    u.bids = levels(&[("9.5", "0")]);
    u.asks.clear();
    b.on_ws(BF, &u, 4, &mut batch);
    let recs = records(&batch);
    let p = |a: &str, b: &str| (a.to_string(), b.to_string());
    // (5,6) replayed as a delta, (7,9) too, then the book; then (10,12) and the book.
    assert_eq!(
        recs.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        [(true, 6), (true, 9), (false, 9), (true, 12), (false, 12)]
    );
    assert_eq!(recs[1].2, [p("10", "0"), p("9.5", "2")], "best first");
    assert_eq!(recs[2].2, [p("9.5", "2"), p("9", "1")], "top 2, best first");
    assert_eq!(recs[2].3, [p("10.5", "1"), p("11", "1")]);
    assert_eq!(recs[4].2, [p("9", "1"), p("8", "1")]);
    match batch.iter().nth(3) {
        Some(Record::Book(r)) => {
            assert_eq!((r.first_update_id, r.prev_update_id), (10, Some(9)));
        }
        _ => panic!("not a book record"),
    }
    // `orderbook` records carry the `pu` of the last update they reflect.
    assert_eq!(prevs(&batch), [Some(4), Some(6), Some(6), Some(9), Some(9)]);
    let st = *b.stats(BF);
    assert_eq!((st.deltas_published, st.published), (3, 2));
}

/// `prev_update_id` of the book records in the batch.
fn prevs(batch: &Batch) -> Vec<Option<u64>> {
    batch
        .iter()
        .filter_map(|r| match r {
            Record::Book(b) => Some(b.prev_update_id),
            _ => None,
        })
        .collect()
}

#[test]
fn orderbook_prev_update_id_per_venue() {
    // OKX: none on the snapshot (`prevSeqId` -1), then each update's `prevSeqId`.
    let (mut b, mut batch) = setup(OKX, CFG);
    b.on_ws(OKX, &snap(10, &[("9", "1")], &[("11", "1")]), 1, &mut batch);
    b.on_ws(
        OKX,
        &upd(12, 12, Some(10), &[("9", "2")], &[]),
        2,
        &mut batch,
    );
    // Deribit: `prev_change_id`.
    let (mut db, mut dbatch) = setup(DB, CFG);
    let mut s = snap(20, &[("9", "1")], &[("11", "1")]);
    s.prev_id = None;
    db.on_ws(DB, &s, 1, &mut dbatch);
    db.on_ws(
        DB,
        &upd(21, 21, Some(20), &[("9", "3")], &[]),
        2,
        &mut dbatch,
    );
    // Binance spot and Bybit send no previous id.
    let (mut bs, mut bsbatch) = setup(BS, CFG);
    bs.on_ws(BS, &diff(5, 7), 1, &mut bsbatch);
    bs.on_rest_snapshot(BS, &rest(6), 2, &mut bsbatch);
    let (mut by, mut bybatch) = setup(BY, CFG);
    by.on_ws(BY, &snap(3, &[("9", "1")], &[("11", "1")]), 1, &mut bybatch);
    by.on_ws(BY, &upd(4, 4, None, &[("9", "2")], &[]), 2, &mut bybatch);
    assert_eq!(
        [
            prevs(&batch),
            prevs(&dbatch),
            prevs(&bsbatch),
            prevs(&bybatch)
        ],
        [
            vec![None, Some(10)],
            vec![None, Some(20)],
            vec![None],
            vec![None, None]
        ]
    );
}

#[test]
fn delta_levels_best_first_stably() {
    let cfg = BookConfig {
        depth: 10,
        publish_interval_ns: 0,
        deltas: true,
    };
    let (mut b, mut batch) = setup(BY, cfg);
    b.on_ws(BY, &snap(1, &[("5", "1")], &[("20", "1")]), 1, &mut batch);
    // Worst first, unsorted, and a price sent twice (the later one wins).
    let u = upd(
        2,
        2,
        None,
        &[("1", "1"), ("3", "1"), ("2", "7"), ("4", "1"), ("2", "0")],
        &[
            ("30", "1"),
            ("21", "2"),
            ("25", "0"),
            ("21", "0"),
            ("22", "1"),
        ],
    );
    b.on_ws(BY, &u, 2, &mut batch);
    let recs = records(&batch);
    let p = |a: &str, b: &str| (a.to_string(), b.to_string());
    let delta = recs.iter().find(|r| r.0).unwrap();
    assert_eq!(
        delta.2,
        [
            p("4", "1"),
            p("3", "1"),
            p("2", "7"),
            p("2", "0"),
            p("1", "1")
        ]
    );
    assert_eq!(
        delta.3,
        [
            p("21", "2"),
            p("21", "0"),
            p("22", "1"),
            p("25", "0"),
            p("30", "1")
        ]
    );
    // The book applied them in frame order: 2 was removed, 21 too.
    let book = recs.iter().rfind(|r| !r.0).unwrap();
    assert_eq!(book.2, [p("5", "1"), p("4", "1"), p("3", "1"), p("1", "1")]);
    assert_eq!(book.3, [p("20", "1"), p("22", "1"), p("30", "1")]);
}

// ---------------------------------------------------------------- rotation overlap

fn shadow(mut m: BookMsg) -> BookMsg {
    m.shadow = true;
    m
}

#[test]
fn overlap_binance_takes_each_diff_once_from_either_connection() {
    let (mut b, mut batch) = setup(BS, CFG);
    b.on_ws(BS, &diff(1, 3), 1, &mut batch);
    assert_eq!(b.on_rest_snapshot(BS, &rest(2), 2, &mut batch), NONE);
    assert_eq!(b.book(BS, "X").unwrap().last_update_id(), 3);
    // The replacement is ahead: not an error, the old connection fills in.
    assert_eq!(b.on_ws(BS, &shadow(diff(6, 7)), 3, &mut batch), NONE);
    assert!(b.is_synced(BS, "X"));
    assert_eq!(b.on_ws(BS, &diff(4, 5), 4, &mut batch), NONE);
    // Exactly next: applied from whichever connection has it first.
    assert_eq!(b.on_ws(BS, &shadow(diff(6, 7)), 5, &mut batch), NONE);
    assert_eq!(b.book(BS, "X").unwrap().last_update_id(), 7);
    // The old connection's copy is stale, not a gap.
    assert_eq!(b.on_ws(BS, &diff(6, 7), 6, &mut batch), NONE);
    assert_eq!(b.on_ws(BS, &diff(8, 9), 7, &mut batch), NONE);
    assert_eq!(b.book(BS, "X").unwrap().last_update_id(), 9);
    assert_eq!(b.stats(BS).resyncs, 0);
}

#[test]
fn overlap_okx_ignores_the_replacement_snapshot_and_merges_updates() {
    let (mut b, mut batch) = setup(OKX, CFG);
    let bids: Lv<'_> = &[("10", "1")];
    let asks: Lv<'_> = &[("11", "1")];
    b.on_ws(OKX, &snap(10, bids, asks), 1, &mut batch);
    b.on_ws(OKX, &upd(11, 11, Some(10), bids, asks), 2, &mut batch);
    // The replacement's snapshot (older or newer) never restarts a synced book.
    assert_eq!(
        b.on_ws(OKX, &shadow(snap(12, bids, asks)), 3, &mut batch),
        NONE
    );
    assert_eq!(b.book(OKX, "X").unwrap().last_update_id(), 11);
    assert_eq!(
        b.on_ws(
            OKX,
            &shadow(upd(12, 12, Some(11), bids, asks)),
            4,
            &mut batch
        ),
        NONE
    );
    // The old connection's copy of 12 is stale; 13 follows on.
    assert_eq!(
        b.on_ws(OKX, &upd(12, 12, Some(11), bids, asks), 5, &mut batch),
        NONE
    );
    assert_eq!(
        b.on_ws(OKX, &upd(13, 13, Some(12), bids, asks), 6, &mut batch),
        NONE
    );
    assert_eq!(b.book(OKX, "X").unwrap().last_update_id(), 13);
    assert_eq!(b.stats(OKX).resyncs, 0);
    // A real gap on the primary still resyncs.
    assert_eq!(
        b.on_ws(OKX, &upd(20, 20, Some(19), bids, asks), 7, &mut batch),
        RESUB
    );
}
