//! Rule-by-rule tests of the sync state machines; publishing and rotation
//! overlap in `publish`.

use super::*;
use crate::batch::{Batch, Level, Record};
use crate::model::VenueId;
use crate::venue::okx::checksum::okx_checksum;
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

mod publish;
