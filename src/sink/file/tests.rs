//! File sink tests: rotation, write modes, crash recovery, full disk.

use super::*;
use crate::batch::{Record, Trade, TradeId};
use crate::model::{Side, VenueId};
use rust_decimal::Decimal;
use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

fn batch_of(n: u64, first_id: u64) -> Batch {
    let mut b = Batch::new(n as usize, 1 << 16);
    for id in first_id..first_id + n {
        b.push_with::<()>(id, |bump| {
            Ok(Record::Trade(Trade {
                seq: None,
                backfilled: false,
                venue: VenueId::BinanceSpot,
                symbol: bump.alloc_str("BTC-USDT"),
                raw_symbol: bump.alloc_str("BTCUSDT"),
                trade_id: TradeId::Num(id),
                price: Decimal::new(12345, 2),
                quantity: Decimal::ONE,
                contracts: None,
                side: Side::Buy,
                is_maker: Some(false),
                trade_ts_ms: id,
                ts_ms: id,
                receive_ts_ns: id,
            }))
        })
        .unwrap();
    }
    b
}

fn plan(dir: &Path, max_bytes: u64) -> FileSinkPlan {
    FileSinkPlan {
        path: dir.to_path_buf(),
        rotate_max_bytes: max_bytes,
        rotate_interval: Duration::from_secs(3600),
        write_mode: WriteMode::Inline,
        io_worker_cpus: Vec::new(),
        io_worker_cpus_configured: None,
    }
}

/// Output files in write order (the run-marker directory aside).
fn files_of(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != STATE_DIR)
        .collect();
    files.sort_by_key(|p| file_order(p.file_name().unwrap().to_str().unwrap()));
    files
}

/// Every line of every file, parsed; each file must end with a newline.
fn read_lines(dir: &Path) -> Vec<sonic_rs::Value> {
    let mut out = Vec::new();
    for f in files_of(dir) {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'), "torn {f:?}");
        for line in text.lines() {
            out.push(sonic_rs::from_str(line).unwrap_or_else(|e| panic!("{f:?}: {e}: {line}")));
        }
    }
    out
}

fn field<'a>(v: &'a sonic_rs::Value, k: &str) -> &'a str {
    use sonic_rs::JsonValueTrait;
    v.get(k).and_then(|x| x.as_str()).unwrap_or("")
}

fn read_ids(dir: &Path) -> (Vec<u64>, usize) {
    let files = files_of(dir);
    let mut ids = Vec::new();
    for f in &files {
        assert_eq!(f.extension().unwrap(), "jsonl");
        for line in std::fs::read_to_string(f).unwrap().lines() {
            let v: sonic_rs::Value = sonic_rs::from_str(line).unwrap();
            use sonic_rs::JsonValueTrait;
            ids.push(
                v.get("trade_id")
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
            );
        }
    }
    (ids, files.len())
}

#[test]
fn writes_lines_and_rotates_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&plan(dir.path(), 8192), 3).unwrap();
    for i in 0..10 {
        let r = sink.write_batch(&batch_of(20, i * 20)).unwrap();
        assert_eq!(r.records, 20);
    }
    sink.close().unwrap();
    let (ids, files) = read_ids(dir.path());
    assert_eq!(ids, (0..200).collect::<Vec<u64>>());
    assert!(files > 1, "expected rotation, got {files} file(s)");
    let name = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    assert!(name.to_str().unwrap().starts_with("core03-"), "{name:?}");
}

#[test]
fn pre_encoded_lines_match_batch_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let batch = batch_of(5, 0);
    let mut sa = FileSink::open(&plan(&a, 1 << 30), 0).unwrap();
    sa.write_batch(&batch).unwrap();
    sa.close().unwrap();
    let mut sb = FileSink::open(&plan(&b, 1 << 30), 0).unwrap();
    let mut buf = Vec::new();
    for r in batch.iter() {
        buf.clear();
        crate::sink::encode::encode_json(&mut buf, r);
        sb.push_encoded(r, &buf);
    }
    assert_eq!(sb.write_queued().unwrap().records, 5);
    sb.close().unwrap();
    let read = |d: &Path| {
        let f = std::fs::read_dir(d)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::read(f).unwrap()
    };
    assert_eq!(read(&a), read(&b));
}

#[test]
fn rotates_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = plan(dir.path(), 1 << 30);
    p.rotate_interval = Duration::from_millis(1);
    let mut sink = FileSink::open(&p, 0).unwrap();
    sink.write_batch(&batch_of(3, 0)).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let r = sink.write_batch(&batch_of(3, 3)).unwrap();
    assert!(r.rotated);
    sink.close().unwrap();
    let (ids, files) = read_ids(dir.path());
    assert_eq!(ids, (0..6).collect::<Vec<u64>>());
    assert_eq!(files, 2);
}

#[test]
fn failed_writes_keep_records_for_the_next_flush() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("gone");
    let mut sink = FileSink::open(&plan(&sub, 1 << 30), 0).unwrap();
    sink.write_batch(&batch_of(2, 0)).unwrap();
    // Make the next rotation fail: the directory disappears.
    sink.file = None;
    std::fs::remove_dir_all(&sub).unwrap();
    let err = sink.write_batch(&batch_of(2, 2)).unwrap_err();
    assert_eq!(err.pending_records, 2);
    assert!(!err.disk_full);
    std::fs::create_dir_all(&sub).unwrap();
    let r = sink.write_batch(&batch_of(2, 4)).unwrap();
    assert_eq!(r.records, 4);
    sink.close().unwrap();
    let (ids, _) = read_ids(&sub);
    assert_eq!(ids, vec![2, 3, 4, 5]);
}

#[test]
fn utc_stamps() {
    assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
    assert_eq!(
        utc_stamp(UNIX_EPOCH + Duration::from_secs(1_764_100_800)),
        "20251125T200000Z"
    );
    assert_eq!(
        utc_stamp(UNIX_EPOCH + Duration::from_secs(951_782_400)),
        "20000229T000000Z"
    );
}

fn trade_ids(lines: &[sonic_rs::Value]) -> Vec<u64> {
    lines
        .iter()
        .filter(|v| field(v, "data_type") == "trade")
        .map(|v| field(v, "trade_id").parse().unwrap())
        .collect()
}

fn gaps(lines: &[sonic_rs::Value]) -> Vec<&sonic_rs::Value> {
    lines
        .iter()
        .filter(|v| field(v, "data_type") == "gap")
        .collect()
}

fn num(v: &sonic_rs::Value, k: &str) -> u64 {
    use sonic_rs::JsonValueTrait;
    v.get(k).and_then(|x| x.as_u64()).unwrap_or(u64::MAX)
}

#[test]
fn clean_close_leaves_no_marker_and_no_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&plan(dir.path(), 1 << 30), 0).unwrap();
    assert!(dir.path().join(STATE_DIR).join("core00.run").exists());
    sink.write_batch(&batch_of(3, 0)).unwrap();
    sink.close().unwrap();
    assert!(!dir.path().join(STATE_DIR).exists());
    let sink = FileSink::open(&plan(dir.path(), 1 << 30), 0).unwrap();
    assert!(!sink.recovery().unclean);
    assert!(!sink.has_pending());
    assert_eq!(
        sink.recovery().last_file.as_deref(),
        files_of(dir.path())[0].file_name().unwrap().to_str()
    );
}

#[test]
fn torn_line_is_cut_and_reported_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&plan(dir.path(), 1 << 30), 2).unwrap();
    sink.write_batch(&batch_of(5, 0)).unwrap();
    let path = sink.current_path().unwrap().to_path_buf();
    // kill -9 mid-write: the sink is never closed, half a line is on disk.
    drop(sink);
    let whole = std::fs::read(&path).unwrap();
    let torn = br#"{"data_type":"trade","exchange":"binance","market_type":"sp"#;
    std::fs::write(&path, [whole.as_slice(), torn].concat()).unwrap();
    // Another core's files are not this core's business.
    let other = dir.path().join("core03-20000101T000000Z-0001.jsonl");
    std::fs::write(&other, b"{\"a\":1}\n{\"b\"").unwrap();

    let mut sink = FileSink::open(&plan(dir.path(), 1 << 30), 2).unwrap();
    let r = sink.recovery().clone();
    assert!(r.unclean);
    assert!(
        r.previous_run.as_deref().unwrap().starts_with("pid "),
        "{r:?}"
    );
    assert_eq!(r.torn_bytes, torn.len() as u64);
    assert_eq!(r.torn_lines, 1);
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    assert_eq!(r.torn_files, vec![name.clone()]);
    // Receive time of trade 4 (ns = id in `batch_of`), in ms.
    assert_eq!(r.last_ts_ms, Some(0));
    assert_eq!(std::fs::read(&path).unwrap(), whole);
    assert_eq!(std::fs::read(&other).unwrap(), b"{\"a\":1}\n{\"b\"");
    std::fs::remove_file(&other).unwrap();
    // The gap record is written even before any data comes.
    assert!(sink.has_pending());
    let rep = sink.write_queued().unwrap();
    assert_eq!((rep.gaps, rep.records), (1, 0));
    sink.write_batch(&batch_of(3, 5)).unwrap();
    let new_file = sink.current_path().unwrap().to_path_buf();
    sink.close().unwrap();

    let first = std::fs::read_to_string(&new_file).unwrap();
    let gap: sonic_rs::Value = sonic_rs::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(field(&gap, "data_type"), "gap");
    assert_eq!(field(&gap, "reason"), "crash_recovery");
    assert_eq!(field(&gap, "exchange"), "*");
    assert_eq!(field(&gap, "file"), name);
    assert_eq!(num(&gap, "core"), 2);
    assert_eq!(num(&gap, "dropped_bytes"), torn.len() as u64);
    assert_eq!(num(&gap, "dropped_lines"), 1);
    assert_eq!(num(&gap, "from_ts_ms"), 0);
    assert!(num(&gap, "to_ts_ms") > 1_600_000_000_000);
    let lines = read_lines(dir.path());
    assert_eq!(trade_ids(&lines), (0..8).collect::<Vec<u64>>());
    assert_eq!(gaps(&lines).len(), 1);
}

#[test]
fn unclean_stop_without_torn_line_is_still_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&plan(dir.path(), 1 << 30), 0).unwrap();
    sink.write_batch(&batch_of(2, 7_000_000)).unwrap();
    drop(sink);
    let mut sink = FileSink::open(&plan(dir.path(), 1 << 30), 0).unwrap();
    let r = sink.recovery().clone();
    assert!(r.unclean);
    assert_eq!((r.torn_bytes, r.torn_lines), (0, 0));
    // Trade 7000001 was received at 7000001 ns.
    assert_eq!(r.last_ts_ms, Some(7));
    sink.close().unwrap();
    let lines = read_lines(dir.path());
    let g = gaps(&lines);
    assert_eq!(g.len(), 1);
    assert_eq!(num(g[0], "dropped_bytes"), 0);
    assert_eq!(num(g[0], "from_ts_ms"), 7);
    // That start was clean again: no second report.
    let sink = FileSink::open(&plan(dir.path(), 1 << 30), 0).unwrap();
    assert!(!sink.recovery().unclean);
}

fn ring_plan(dir: &Path, max_bytes: u64, write_mode: WriteMode) -> FileSinkPlan {
    FileSinkPlan {
        write_mode,
        // CPU 0 exists everywhere.
        io_worker_cpus: vec![0],
        ..plan(dir, max_bytes)
    }
}

fn direct_plan(dir: &Path, max_bytes: u64) -> FileSinkPlan {
    ring_plan(dir, max_bytes, WriteMode::Direct)
}

const RING_MODES: [WriteMode; 2] = [WriteMode::Offload, WriteMode::Direct];

/// Ring mode: a write counts when it lands, which a later call sees.
fn wait_landed(sink: &mut FileSink, total: &mut WriteReport) {
    let t = Instant::now();
    while sink.in_flight() {
        assert!(t.elapsed() < Duration::from_secs(10), "write never landed");
        std::thread::sleep(Duration::from_micros(200));
        total.merge(sink.write_queued().unwrap());
    }
}

#[test]
fn ring_modes_write_every_record_once_and_close_without_padding() {
    for mode in RING_MODES {
        ring_mode_writes_every_record_once(mode);
    }
}

fn ring_mode_writes_every_record_once(mode: WriteMode) {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&ring_plan(dir.path(), 1 << 30, mode), 1).unwrap();
    assert!(sink.is_ring());
    let mut total = WriteReport::default();
    let mut next = 0;
    // Batch sizes that leave the file's end mid-block and cross blocks;
    // some calls find the previous write still in flight.
    for (i, n) in [1u64, 7, 40, 3, 100, 1, 250, 12].into_iter().enumerate() {
        total.merge(sink.write_batch(&batch_of(n, next)).unwrap());
        next += n;
        if i % 3 == 2 {
            wait_landed(&mut sink, &mut total);
        }
    }
    wait_landed(&mut sink, &mut total);
    let path = sink.current_path().unwrap().to_path_buf();
    // While open, the file holds every line, then (direct) zeros to a
    // whole block.
    let live = std::fs::read(&path).unwrap();
    let data_end = live.iter().rposition(|&b| b != 0).unwrap() + 1;
    if mode == WriteMode::Direct {
        assert_eq!(live.len() % 4096, 0);
        assert!(data_end < live.len());
    } else {
        assert_eq!(data_end, live.len());
    }
    assert_eq!(live[data_end - 1], b'\n');
    assert_eq!(total.bytes, data_end as u64);
    total.merge(sink.close().unwrap());
    assert_eq!(total.records, next);
    assert_eq!(
        total.written[VenueId::BinanceSpot.index()][DataType::Trade.index()],
        next
    );
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(on_disk, live[..data_end]);
    let (ids, files) = read_ids(dir.path());
    assert_eq!(ids, (0..next).collect::<Vec<u64>>());
    assert_eq!(files, 1);
    assert!(!dir.path().join(STATE_DIR).exists());
}

#[test]
fn ring_modes_report_the_receive_times_of_what_landed() {
    for mode in RING_MODES {
        ring_mode_reports_the_receive_times_of_what_landed(mode);
    }
}

fn ring_mode_reports_the_receive_times_of_what_landed(mode: WriteMode) {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&ring_plan(dir.path(), 1 << 30, mode), 0).unwrap();
    let first = sink.write_batch(&batch_of(3, 10)).unwrap();
    // Submitted, not yet known to have landed.
    assert_eq!(first.records, 0);
    assert!(sink.in_flight() && sink.has_pending());
    assert_eq!(sink.pending_records(), 3);
    let mut total = WriteReport::default();
    let t = Instant::now();
    let mut seen = Vec::new();
    while total.records < 3 {
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_micros(200));
        total.merge(sink.write_queued().unwrap());
        seen.extend_from_slice(sink.written_receive_ns());
    }
    // `batch_of` receives trade `id` at `id` ns.
    assert_eq!(seen, vec![10, 11, 12]);
    assert_eq!(sink.pending_records(), 0);
    assert!(!sink.has_pending());
    sink.close().unwrap();
}

/// After an outage the backlog's memory is given back once written.
#[test]
fn offload_buffers_shrink_after_a_large_backlog_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&ring_plan(dir.path(), 1 << 40, WriteMode::Offload), 0).unwrap();
    sink.set_limits(1 << 30, Duration::from_millis(1));
    fault::ROOM.with(|r| r.set(Some((0, libc::ENOSPC))));
    // About 70 MiB of records pile up while the disk is full.
    let mut total = WriteReport::default();
    let mut next = 0;
    for _ in 0..200 {
        total.merge(
            sink.write_batch(&batch_of(1000, next))
                .unwrap_or_else(|e| *e.written),
        );
        next += 1000;
    }
    // The last write of the backlog then takes all of `pending` (swapped,
    // not copied) while more than 1 MiB is left: the writer ends up with
    // the big buffer.
    let tail = |s: &FileSink| s.pending.len() % uring::MAX_WRITE;
    while !(3 << 20..6 << 20).contains(&tail(&sink)) {
        let _ = sink.write_batch(&batch_of(500, next));
        next += 500;
    }
    assert!(
        sink.pending.capacity() > uring::SHRINK_ABOVE,
        "{} bytes pending in {}",
        sink.pending.len(),
        sink.pending.capacity()
    );
    fault::ROOM.with(|r| r.set(None));
    std::thread::sleep(Duration::from_millis(2));
    let t = Instant::now();
    while total.records < next {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "backlog never written"
        );
        std::thread::sleep(Duration::from_micros(200));
        match sink.write_queued() {
            Ok(r) => total.merge(r),
            Err(e) => total.merge(*e.written),
        }
    }
    let ring = sink.ring.as_ref().unwrap();
    let held = sink.pending.capacity() + ring.writer.buffer_capacity();
    assert!(held <= uring::SHRINK_ABOVE, "{held} bytes still held");
    total.merge(sink.close().unwrap());
    assert_eq!(total.records, next);
    assert_eq!(read_ids(dir.path()).0, (0..next).collect::<Vec<u64>>());
}

/// The read loop's cheap look: a landed write counts, the next starts.
#[test]
fn collect_landed_counts_a_finished_write_and_starts_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&ring_plan(dir.path(), 1 << 30, WriteMode::Offload), 0).unwrap();
    assert_eq!(sink.collect_landed().unwrap(), WriteReport::default());
    assert_eq!(sink.write_batch(&batch_of(4, 0)).unwrap().records, 0);
    // Queued behind the write in flight; on a loaded machine the kernel's
    // worker may already have landed it, and then this flush counts it and
    // submits its own: either way the first four count exactly once.
    let mut total = sink.write_batch(&batch_of(2, 4)).unwrap();
    assert!(matches!(total.records, 0 | 4), "{total:?}");
    let t = Instant::now();
    while total.records < 4 {
        assert!(t.elapsed() < Duration::from_secs(10), "never landed");
        std::thread::sleep(Duration::from_micros(200));
        total.merge(sink.collect_landed().unwrap());
    }
    assert_eq!(total.records, 4);
    // The two queued records are now the write in flight.
    assert!(sink.in_flight());
    assert_eq!(sink.pending_records(), 2);
    total.merge(sink.close().unwrap());
    assert_eq!(total.records, 6);
    assert_eq!(read_ids(dir.path()).0, (0..6).collect::<Vec<u64>>());
}

#[test]
fn ring_modes_wait_for_the_write_in_flight_once_the_backlog_is_full() {
    for mode in RING_MODES {
        ring_mode_waits_once_the_backlog_is_full(mode);
    }
}

fn ring_mode_waits_once_the_backlog_is_full(mode: WriteMode) {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&ring_plan(dir.path(), 1 << 30, mode), 0).unwrap();
    sink.ring.as_mut().unwrap().backlog = 1;
    assert_eq!(sink.write_batch(&batch_of(5, 0)).unwrap().records, 0);
    assert!(sink.in_flight());
    // The next flush finds the first write in flight and the backlog
    // full: it waits for it (its records count now) and submits its own.
    let r = sink.write_batch(&batch_of(3, 5)).unwrap();
    assert_eq!(r.records, 5);
    assert_eq!(sink.device_waits(), 1);
    assert_eq!(sink.pending_records(), 3);
    let mut total = r;
    total.merge(sink.close().unwrap());
    assert_eq!(total.records, 8);
    assert_eq!(read_ids(dir.path()).0, (0..8).collect::<Vec<u64>>());
}

#[test]
fn ring_modes_rotation_cuts_each_file_to_its_lines() {
    for mode in RING_MODES {
        ring_mode_rotation_cuts_each_file_to_its_lines(mode);
    }
}

fn ring_mode_rotation_cuts_each_file_to_its_lines(mode: WriteMode) {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&ring_plan(dir.path(), 6000, mode), 0).unwrap();
    let mut total = WriteReport::default();
    for i in 0..12 {
        total.merge(sink.write_batch(&batch_of(9, i * 9)).unwrap());
        wait_landed(&mut sink, &mut total);
    }
    total.merge(sink.close().unwrap());
    assert_eq!(total.records, 108);
    let (ids, files) = read_ids(dir.path());
    assert_eq!(ids, (0..108).collect::<Vec<u64>>());
    assert!(files > 3, "{files} files");
    for f in files_of(dir.path()) {
        let b = std::fs::read(&f).unwrap();
        assert!(!b.contains(&0), "padding left in {f:?}");
        assert_eq!(b.last(), Some(&b'\n'));
    }
}

#[test]
fn ring_modes_disk_full_keeps_records_in_order_and_resumes() {
    for mode in RING_MODES {
        ring_mode_disk_full_keeps_records_in_order_and_resumes(mode);
    }
}

fn ring_mode_disk_full_keeps_records_in_order_and_resumes(mode: WriteMode) {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&ring_plan(dir.path(), 1 << 30, mode), 0).unwrap();
    sink.set_limits(1 << 20, Duration::from_millis(1));
    let mut total = WriteReport::default();
    total.merge(sink.write_batch(&batch_of(4, 0)).unwrap());
    wait_landed(&mut sink, &mut total);
    assert_eq!(total.records, 4);
    // The next write does not fit.
    fault::ROOM.with(|r| r.set(Some((10, libc::ENOSPC))));
    total.merge(sink.write_batch(&batch_of(5, 4)).unwrap());
    let e = sink.write_queued().unwrap_err();
    assert!(e.disk_full);
    assert_eq!(e.pending_records, 5);
    assert!(sink.disk_full());
    // More come while the disk is full: kept behind the first ones; the
    // retry (due after 1 ms) fails again, seen by the next call.
    std::thread::sleep(Duration::from_millis(2));
    total.merge(sink.write_batch(&batch_of(3, 9)).unwrap());
    let e = sink.write_queued().unwrap_err();
    assert_eq!(e.pending_records, 8);
    fault::ROOM.with(|r| r.set(None));
    std::thread::sleep(Duration::from_millis(2));
    let r = sink.write_batch(&batch_of(2, 12)).unwrap();
    total.merge(r);
    wait_landed(&mut sink, &mut total);
    total.merge(sink.close().unwrap());
    assert_eq!(total.records, 14);
    assert!(total.resumed);
    let (ids, files) = read_ids(dir.path());
    assert_eq!(ids, (0..14).collect::<Vec<u64>>());
    assert_eq!(files, 1);
}

#[test]
fn direct_mode_padding_left_by_a_crash_is_cut_not_counted_torn() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&direct_plan(dir.path(), 1 << 30), 0).unwrap();
    let mut total = WriteReport::default();
    total.merge(sink.write_batch(&batch_of(6, 0)).unwrap());
    wait_landed(&mut sink, &mut total);
    let path = sink.current_path().unwrap().to_path_buf();
    // kill -9: never closed, the padding stays.
    drop(sink);
    let padded = std::fs::read(&path).unwrap();
    let data = padded.iter().rposition(|&b| b != 0).unwrap() + 1;
    assert!(data < padded.len());

    let sink = FileSink::open(&direct_plan(dir.path(), 1 << 30), 0).unwrap();
    let r = sink.recovery().clone();
    assert!(r.unclean);
    assert_eq!((r.torn_lines, r.torn_bytes), (0, 0));
    assert_eq!(r.padding_bytes, (padded.len() - data) as u64);
    assert_eq!(std::fs::read(&path).unwrap(), padded[..data]);
    drop(sink);

    // A torn line under the padding (a write that landed partly) is cut
    // as a torn line, the padding as padding.
    let torn = b"{\"data_type\":\"trade\",\"exch";
    let mut bytes = padded[..data].to_vec();
    bytes.extend_from_slice(torn);
    bytes.resize(bytes.len().div_ceil(4096) * 4096, 0);
    std::fs::write(&path, &bytes).unwrap();
    let sink = FileSink::open(&direct_plan(dir.path(), 1 << 30), 0).unwrap();
    let r = sink.recovery().clone();
    assert_eq!((r.torn_lines, r.torn_bytes), (1, torn.len() as u64));
    assert_eq!(r.padding_bytes, (bytes.len() - data - torn.len()) as u64);
    assert_eq!(std::fs::read(&path).unwrap(), padded[..data]);
    drop(sink);
    let (ids, _) = read_ids(dir.path());
    assert_eq!(ids, (0..6).collect::<Vec<u64>>());
}

#[test]
fn a_live_holder_keeps_its_files_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let mut live = FileSink::open(&plan(dir.path(), 1 << 30), 0).unwrap();
    live.write_batch(&batch_of(2, 0)).unwrap();
    let path = live.current_path().unwrap().to_path_buf();
    // A write in progress, as a second process would see it.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{\"data_type\":")
        .unwrap();
    let second = FileSink::open(&plan(dir.path(), 1 << 30), 0).unwrap();
    assert!(second.recovery().skipped_busy);
    assert!(!second.recovery().unclean);
    assert!(std::fs::read(&path).unwrap().ends_with(b"{\"data_type\":"));
    // The second one leaves the holder's marker alone.
    second.abandon();
    assert!(dir.path().join(STATE_DIR).join("core00.run").exists());
    drop(live);
}

#[test]
fn disk_full_keeps_whole_lines_pauses_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&plan(dir.path(), 1 << 30), 0).unwrap();
    sink.set_limits(1 << 20, Duration::from_millis(50));
    sink.write_batch(&batch_of(4, 0)).unwrap();
    let path = sink.current_path().unwrap().to_path_buf();
    let before = std::fs::read(&path).unwrap();
    // The disk takes 100 more bytes (part of a line), then ENOSPC.
    fault::ROOM.with(|r| r.set(Some((100, libc::ENOSPC))));
    let e = sink.write_batch(&batch_of(4, 4)).unwrap_err();
    assert!(e.disk_full);
    assert_eq!(e.pending_records, 4);
    assert!(sink.disk_full());
    // The partial line was cut back off.
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // Paused: no write is tried before the retry time (the disk would
    // fail it, and the count of bytes it takes would change).
    let rep = sink.write_batch(&batch_of(4, 8)).unwrap();
    assert_eq!((rep.bytes, rep.records), (0, 0));
    assert_eq!(fault::ROOM.with(|r| r.get()), Some((0, libc::ENOSPC)));
    assert_eq!(sink.pending_records(), 8);
    // Still full at the retry: counted as a failure again.
    std::thread::sleep(Duration::from_millis(60));
    assert!(sink.write_batch(&batch_of(4, 12)).unwrap_err().disk_full);
    // Space again.
    fault::ROOM.with(|r| r.set(None));
    assert!(sink.catch_up().is_none(), "below the memory limit");
    std::thread::sleep(Duration::from_millis(60));
    let rep = sink.write_batch(&batch_of(4, 16)).unwrap();
    assert!(rep.resumed);
    assert_eq!(rep.records, 16);
    assert_eq!(
        rep.written[VenueId::BinanceSpot.index()][DataType::Trade.index()],
        16
    );
    assert!(!sink.disk_full());
    assert_eq!(sink.take_dropped(), 0);
    sink.close().unwrap();
    let lines = read_lines(dir.path());
    assert_eq!(trade_ids(&lines), (0..20).collect::<Vec<u64>>());
    assert!(gaps(&lines).is_empty());
}

#[test]
fn memory_limit_drops_newest_and_writes_gap_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&plan(dir.path(), 1 << 30), 0).unwrap();
    // About 10 trade lines of memory.
    sink.set_limits(2500, Duration::from_millis(20));
    sink.write_batch(&batch_of(3, 0)).unwrap();
    fault::ROOM.with(|r| r.set(Some((0, libc::EDQUOT))));
    assert!(sink.write_batch(&batch_of(5, 3)).unwrap_err().disk_full);
    let mut next = 8;
    for _ in 0..6 {
        let _ = sink.write_batch(&batch_of(5, next));
        next += 5;
    }
    let dropped = sink.take_dropped();
    assert!(dropped > 10, "{dropped}");
    assert!(sink.pending_records() + dropped == next - 3);
    fault::ROOM.with(|r| r.set(None));
    assert!(sink.catch_up().is_none(), "not before the retry time");
    std::thread::sleep(Duration::from_millis(30));
    // Backlog first (before the next batch meets the limit), then the
    // gap record, then what comes next.
    let rep = sink.catch_up().unwrap().unwrap();
    assert!(rep.resumed);
    assert_eq!(rep.gaps, 0);
    let rep = sink.write_batch(&batch_of(2, next)).unwrap();
    assert_eq!((rep.gaps, rep.records), (1, 2));
    sink.close().unwrap();
    let lines = read_lines(dir.path());
    let ids = trade_ids(&lines);
    let g = gaps(&lines);
    assert_eq!(g.len(), 1);
    assert_eq!(field(g[0], "reason"), "disk_full");
    assert_eq!(field(g[0], "exchange"), "binance");
    assert_eq!(field(g[0], "symbol"), "BTC-USDT");
    assert_eq!(field(g[0], "channel"), "trade");
    assert_eq!(num(g[0], "lost"), dropped);
    let (from, to): (u64, u64) = (
        field(g[0], "from_id").parse().unwrap(),
        field(g[0], "to_id").parse().unwrap(),
    );
    // Exactly the described range is missing, nothing twice.
    let want: Vec<u64> = (0..next + 2).filter(|i| !(from..=to).contains(i)).collect();
    assert_eq!(ids, want);
    assert_eq!(to - from + 1, dropped);
    let pos = lines
        .iter()
        .position(|v| field(v, "data_type") == "gap")
        .unwrap();
    assert_eq!(trade_ids(&lines[..pos]).last(), Some(&(from - 1)));
    assert_eq!(trade_ids(&lines[pos..]).first(), Some(&next));
}

#[test]
fn file_size_limit_moves_to_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&plan(dir.path(), 1 << 30), 0).unwrap();
    sink.set_limits(1 << 20, Duration::from_millis(10));
    sink.write_batch(&batch_of(2, 0)).unwrap();
    fault::ROOM.with(|r| r.set(Some((30, libc::EFBIG))));
    assert!(sink.write_batch(&batch_of(2, 2)).unwrap_err().disk_full);
    fault::ROOM.with(|r| r.set(None));
    std::thread::sleep(Duration::from_millis(15));
    assert!(sink.write_batch(&batch_of(2, 4)).unwrap().rotated);
    sink.close().unwrap();
    let (ids, files) = read_ids(dir.path());
    assert_eq!(ids, (0..6).collect::<Vec<u64>>());
    assert_eq!(files, 2);
}

#[test]
fn close_fails_while_the_disk_is_full_and_can_be_retried() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = FileSink::open(&plan(dir.path(), 1 << 30), 0).unwrap();
    sink.set_limits(1 << 20, Duration::from_secs(3600));
    fault::ROOM.with(|r| r.set(Some((0, libc::ENOSPC))));
    assert!(sink.write_batch(&batch_of(3, 0)).is_err());
    // Close ignores the retry wait, and keeps everything when it fails.
    let e = sink.close().unwrap_err();
    assert_eq!(e.pending_records, 3);
    assert!(dir.path().join(STATE_DIR).exists(), "marker kept");
    fault::ROOM.with(|r| r.set(None));
    assert_eq!(sink.close().unwrap().records, 3);
    assert!(!dir.path().join(STATE_DIR).exists());
    assert_eq!(read_ids(dir.path()).0, vec![0, 1, 2]);
}

#[test]
fn last_line_time_and_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.jsonl");
    std::fs::write(&f, "{\"receive_ts_ns\":5000000}\n{\"ts_ms\":9,\"x\":1}\n").unwrap();
    assert_eq!(last_line_ts_ms(&f).unwrap(), Some(9));
    std::fs::write(&f, "{\"a\":1,\"receive_ts_ns\":12000000}\n").unwrap();
    assert_eq!(last_line_ts_ms(&f).unwrap(), Some(12));
    let mut names = [
        "core00-20250102T000000Z-0001.jsonl",
        "core00-20250101T000000Z-10000.jsonl",
        "core00-20250101T000000Z-9999.jsonl",
    ];
    names.sort_by_key(|n| file_order(n));
    assert_eq!(names[1], "core00-20250101T000000Z-10000.jsonl");
}
