//! Publishing (throttle, deltas, depth, previous ids) and the rotation overlap.

use super::*;

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
