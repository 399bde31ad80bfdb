//! Publishing (throttle, deltas, depth, previous ids) and the rotation overlap.

use super::*;

// ---------------------------------------------------------------- publishing

const MS: u64 = 1_000_000;

/// A Bybit update `id` at exchange time `ts_ms` setting bid `px`.
fn at(id: u64, ts_ms: u64, px: &str) -> BookMsg {
    BookMsg {
        ts_ms,
        ..upd(id, id, None, &[(px, "1")], &[])
    }
}

#[test]
fn cadence_follows_exchange_time_then_the_trailing_state() {
    let cfg = BookConfig {
        depth: 400,
        publish_interval_ns: 100 * MS,
        deltas: false,
    };
    let (mut b, mut batch) = setup(BY, cfg);
    let mut s = snap(1, &[("10", "1")], &[("20", "1")]);
    s.ts_ms = 1_000;
    b.on_ws(BY, &s, 5_000, &mut batch);
    // A (re)started book waits: its snapshot id is this instance's own.
    assert!(batch.is_empty());
    assert_eq!(b.next_publish_ns(), Some(5_000 + 100 * MS));
    b.on_ws(BY, &at(2, 1_050, "11"), 10_000, &mut batch);
    assert!(batch.is_empty(), "same interval (10) as the snapshot");
    // Quiet after the last change, capped two intervals after the first.
    assert_eq!(b.next_publish_ns(), Some(10_000 + 100 * MS));
    // ts 1100 enters interval 11: published at once, nothing left pending.
    b.on_ws(BY, &at(3, 1_100, "12"), 20_000, &mut batch);
    assert_eq!(ids(&batch), [(false, 3)]);
    assert_eq!(b.next_publish_ns(), None);
    assert_eq!(b.publish_due(u64::MAX - 1, &mut batch), None);
    assert_eq!(batch.len(), 1);
    // Later updates of interval 11 wait for a quiet interval.
    b.on_ws(BY, &at(4, 1_150, "13"), 30_000, &mut batch);
    b.on_ws(BY, &at(5, 1_199, "14"), 40_000, &mut batch);
    assert_eq!(batch.len(), 1);
    let due = 40_000 + 100 * MS;
    assert_eq!(b.publish_due(due - 1, &mut batch), Some(due));
    assert_eq!(batch.len(), 1);
    assert_eq!(b.publish_due(due, &mut batch), None);
    let recs = records(&batch);
    assert_eq!((recs.len(), recs[1].1), (2, 5), "the trailing state, once");
    assert_eq!(recs[1].2[0], ("14".to_string(), "1".to_string()));
    let r = batch.iter().last().copied().unwrap();
    let o = r.origin();
    assert_eq!((o.ts_ms, o.receive_ts_ns), (1_199, 40_000));
    // A pending state is superseded by the next crossing.
    b.on_ws(BY, &at(6, 1_199, "15"), due + 10, &mut batch);
    b.on_ws(BY, &at(7, 1_200, "16"), due + 20, &mut batch);
    assert_eq!(b.publish_due(u64::MAX - 1, &mut batch), None);
    assert_eq!(ids(&batch)[2..], [(false, 7)]);
    // Unchanged book (stale update): nothing pending.
    b.on_ws(BY, &at(7, 1_300, "17"), due + 30, &mut batch);
    assert_eq!(b.next_publish_ns(), None);
    // An exchange clock going back never crosses; one that stalls while
    // updates keep coming is published two intervals after the first.
    let t0 = due + 100;
    b.on_ws(BY, &at(8, 1_150, "17"), t0, &mut batch);
    for k in 1..=3 {
        let t = t0 + k * 60 * MS;
        b.on_ws(
            BY,
            &at(8 + k, 1_250, &format!("{}.5", 10 + k)),
            t,
            &mut batch,
        );
        let want = (t + 100 * MS).min(t0 + 200 * MS);
        assert_eq!(b.next_publish_ns(), Some(want), "update {k}");
    }
    assert_eq!(b.publish_due(t0 + 200 * MS, &mut batch), None);
    assert_eq!(ids(&batch)[3..], [(false, 11)]);
    // Pending, then the book is discarded (crossed): the record goes with it.
    b.on_ws(BY, &at(12, 1_260, "18"), t0 + 201 * MS, &mut batch);
    b.on_ws(BY, &at(13, 1_260, "25"), t0 + 202 * MS, &mut batch);
    assert!(!b.is_synced(BY, "X"));
    assert_eq!(b.publish_due(u64::MAX - 1, &mut batch), None);
    // The fresh snapshot waits again; the next crossing goes out.
    let mut s = snap(20, &[("10", "1")], &[("20", "1")]);
    s.ts_ms = 5_000;
    b.on_ws(BY, &s, t0 + 300 * MS, &mut batch);
    b.on_ws(BY, &at(21, 5_100, "11"), t0 + 301 * MS, &mut batch);
    assert_eq!(
        ids(&batch),
        [(false, 3), (false, 5), (false, 7), (false, 11), (false, 21)]
    );
    assert_eq!(b.stats(BY).published, 5);
}

#[test]
fn replayed_binance_diffs_set_the_interval_not_the_snapshot_time() {
    let cfg = BookConfig {
        depth: 10,
        publish_interval_ns: 100 * MS,
        deltas: false,
    };
    let (mut b, mut batch) = setup(BS, cfg);
    let d = |first: u64, last: u64, ts_ms: u64| BookMsg {
        ts_ms,
        ..diff(first, last)
    };
    b.on_ws(BS, &d(1, 3, 1_090), 1, &mut batch);
    b.on_ws(BS, &d(4, 5, 1_120), 2, &mut batch);
    // Spot REST snapshots carry no exchange time: the parser's receive time.
    let mut r = rest(2);
    r.ts_ms = 1_350;
    b.on_rest_snapshot(BS, &r, 3, &mut batch);
    assert!(batch.is_empty(), "a (re)started book waits");
    // Interval 11 was reached by the last replayed diff (ts 1120).
    b.on_ws(BS, &d(6, 6, 1_190), 4, &mut batch);
    assert!(batch.is_empty());
    b.on_ws(BS, &d(7, 7, 1_200), 5, &mut batch);
    assert_eq!(ids(&batch), [(false, 7)]);
}

/// Update ids of the records from the `n`-th on.
fn ids_from(batch: &Batch, n: usize) -> impl Iterator<Item = u64> + '_ {
    batch.iter().skip(n).map(|r| match r {
        Record::Book(b) => b.last_update_id,
        _ => panic!("not a book record"),
    })
}

/// Two instances fed the same updates with different receive timings (and
/// timer ticks) publish the same update ids at the interval crossings; the
/// only other records are trailing states, identical by id and content.
#[test]
fn instances_publish_the_same_ids_whatever_the_receive_timing() {
    let cfg = BookConfig {
        depth: 25,
        publish_interval_ns: 100 * MS,
        deltas: false,
    };
    let mut rng = fastrand::Rng::with_seed(18);
    let mut s = snap(1_000, &[("100", "1")], &[("200", "1")]);
    s.ts_ms = 10_000_040;
    let mut msgs = vec![s];
    let (mut ts, mut id) = (10_000_040u64, 1_000u64);
    // Bursts within an interval, quiet spells beyond one, equal times.
    for _ in 0..3_000 {
        ts += match rng.u8(..100) {
            0..=9 => 0,
            10..=94 => rng.u64(1..25),
            _ => rng.u64(100..400),
        };
        let prev = id;
        id += rng.u64(1..3);
        let px = format!("{}", 101 + rng.u64(..98));
        let q = if rng.u8(..4) == 0 { "0" } else { "2" };
        let mut m = upd(id, id, Some(prev as i64), &[(&px, q)], &[]);
        m.ts_ms = ts;
        msgs.push(m);
    }
    // Expected crossings: the first update of each newer interval.
    let mut want = Vec::new();
    let mut reached = msgs[0].ts_ms / 100;
    for m in &msgs[1..] {
        if m.ts_ms / 100 > reached {
            want.push(m.last_id);
        }
        reached = reached.max(m.ts_ms / 100);
    }
    type Published = (Vec<u64>, Vec<u64>, Vec<Rec>);
    let run = |seed: u64, max_lat_ms: u64, tick_ns: u64| -> Published {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (mut b, mut batch) = setup(DB, cfg);
        let (mut crossing, mut trailing) = (Vec::new(), Vec::new());
        let (mut recv, mut tick) = (0u64, 0u64);
        let flush = |b: &mut Books, batch: &mut Batch, now: u64, out: &mut Vec<u64>| {
            let n = batch.len();
            b.publish_due(now, batch);
            out.extend(ids_from(batch, n));
        };
        for m in &msgs {
            recv = recv.max(m.ts_ms * MS + rng.u64(..max_lat_ms * MS));
            while tick + tick_ns <= recv {
                tick += tick_ns;
                flush(&mut b, &mut batch, tick, &mut trailing);
            }
            let n = batch.len();
            assert_eq!(b.on_ws(DB, m, recv, &mut batch), NONE);
            crossing.extend(ids_from(&batch, n));
        }
        flush(&mut b, &mut batch, u64::MAX, &mut trailing);
        assert_eq!(b.stats(DB).resyncs, 0);
        (crossing, trailing, records(&batch))
    };
    let (ca, ta, ra) = run(1, 5, 5 * MS);
    let (cb, tb, rb) = run(2, 60, MS);
    assert_eq!(ca, want);
    assert_eq!(cb, want);
    assert_eq!(want.len(), 471);
    // Both end with the last state; trailing states are rare under flow.
    let last = msgs.last().unwrap().last_id;
    assert_eq!((ra.last().unwrap().1, rb.last().unwrap().1), (last, last));
    for t in [&ta, &tb] {
        assert!(t.len() < want.len() / 2, "{} trailing", t.len());
    }
    // Same id, same content, whichever instance published it.
    let by_id: std::collections::HashMap<u64, &Rec> = ra.iter().map(|r| (r.1, r)).collect();
    let mut shared = 0;
    for r in &rb {
        if let Some(a) = by_id.get(&r.1) {
            assert_eq!(*a, r, "id {}", r.1);
            shared += 1;
        }
    }
    // Every id one instance has and the other lacks is a trailing state.
    let ids_a: Vec<u64> = ra.iter().map(|r| r.1).collect();
    let ids_b: Vec<u64> = rb.iter().map(|r| r.1).collect();
    for (mine, trail, other) in [(&ids_a, &ta, &ids_b), (&ids_b, &tb, &ids_a)] {
        for id in mine.iter().filter(|i| !other.contains(i)) {
            assert!(
                trail.contains(id),
                "id {id} only in one instance, not trailing"
            );
        }
    }
    assert!(shared >= want.len());
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
