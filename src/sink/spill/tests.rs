use super::*;

fn entries(s: &mut Spill, stop_after: usize) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    s.drain(|_, a, b, c| {
        if out.len() == stop_after {
            return false;
        }
        out.push((
            String::from_utf8_lossy(a).into(),
            String::from_utf8_lossy(b).into(),
            String::from_utf8_lossy(c).into(),
        ));
        true
    })
    .unwrap();
    out
}

/// Entries spanning read-ahead chunks, one larger than a chunk, and
/// pushes while the same segment is being read.
#[test]
fn read_ahead_across_chunks_while_writing() {
    let dir = tempfile::tempdir().unwrap();
    let payload = |i: usize| {
        let n = if i == 1500 {
            READ_CHUNK + 1000
        } else {
            100 + i % 300
        };
        let c = (b'a' + (i % 26) as u8) as char;
        c.to_string().repeat(n)
    };
    let s = &mut Spill::open(dir.path(), 1 << 30, 64 << 20).unwrap();
    let mut next_in = 0;
    let mut next_out = 0;
    for round in 0..6 {
        for _ in 0..700 {
            let p = payload(next_in);
            s.push(b"subj", format!("id{next_in}").as_bytes(), p.as_bytes())
                .unwrap();
            next_in += 1;
        }
        let got = entries(s, 450 + round * 10);
        for (subj, id, p) in got {
            assert_eq!(subj, "subj");
            assert_eq!(id, format!("id{next_out}"));
            assert_eq!(p, payload(next_out), "entry {next_out}");
            next_out += 1;
        }
    }
    for (_, id, p) in entries(s, usize::MAX) {
        assert_eq!(id, format!("id{next_out}"));
        assert_eq!(p, payload(next_out));
        next_out += 1;
    }
    assert_eq!(next_out, next_in);
    assert!(s.is_empty());
}

/// Buffered and written-through pushes keep one order across write
/// chunks and segments; reads see buffered entries; a dropped spill
/// leaves its buffered entries on disk for the next run.
#[test]
fn buffered_pushes_keep_order_and_survive_drop() {
    let dir = tempfile::tempdir().unwrap();
    let payload = |i: usize| "x".repeat(200 + i % 500);
    let mut next_in = 0;
    let mut next_out = 0;
    {
        // Segments of 256 KiB: ~600 entries each, several write chunks.
        let s = &mut Spill::open(dir.path(), 1 << 30, 256 << 10).unwrap();
        for round in 0..4 {
            for k in 0..3000 {
                let id = format!("id{next_in}");
                let p = payload(next_in);
                if k % 7 == 0 {
                    s.push(b"s", id.as_bytes(), p.as_bytes()).unwrap();
                } else {
                    s.push_buffered(b"s", id.as_bytes(), p.as_bytes()).unwrap();
                }
                next_in += 1;
            }
            assert_eq!(s.len(), (next_in - next_out) as u64);
            for (_, id, p) in entries(s, 2000 + round * 100) {
                assert_eq!(id, format!("id{next_out}"));
                assert_eq!(p, payload(next_out), "entry {next_out}");
                next_out += 1;
            }
        }
        for _ in 0..10 {
            let p = payload(next_in);
            s.push_buffered(b"s", format!("id{next_in}").as_bytes(), p.as_bytes())
                .unwrap();
            next_in += 1;
        }
    }
    let s = &mut Spill::open(dir.path(), 1 << 30, 256 << 10).unwrap();
    // Reopened: whole segments come back (the read position is not kept),
    // so skip to where this run left off, then all the rest in order.
    let all = entries(s, usize::MAX);
    let first: usize = all[0].1[2..].parse().unwrap();
    assert!(first <= next_out, "{first} > {next_out}");
    for (k, (_, id, p)) in all.iter().enumerate() {
        assert_eq!(*id, format!("id{}", first + k));
        assert_eq!(*p, payload(first + k));
    }
    assert_eq!(first + all.len(), next_in);
}

#[test]
fn fifo_across_segments_and_partial_drains() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spill::open(dir.path(), 1 << 20, 4096).unwrap();
    for i in 0..200 {
        s.push(
            b"trade.x",
            format!("id{i}").as_bytes(),
            format!("{{\"n\":{i}}}").as_bytes(),
        )
        .unwrap();
    }
    assert_eq!(s.len(), 200);
    assert!(
        std::fs::read_dir(dir.path()).unwrap().count() > 1,
        "segments rotate"
    );
    let first = entries(&mut s, 50);
    assert_eq!(first.len(), 50);
    assert_eq!(
        first[0],
        ("trade.x".into(), "id0".into(), "{\"n\":0}".into())
    );
    assert_eq!(first[49].1, "id49");
    // New entries go behind the old ones.
    s.push(b"trade.y", b"late", b"{}").unwrap();
    let rest = entries(&mut s, usize::MAX);
    assert_eq!(rest.len(), 151);
    assert_eq!(rest[0].1, "id50");
    assert_eq!(rest[149].1, "id199");
    assert_eq!(rest[150].1, "late");
    assert!(s.is_empty());
    assert_eq!(s.bytes(), 0);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "drained segments deleted"
    );
}

/// Journal mode: an entry stays until popped, and after a restart the
/// journal resumes at the cursor, across deleted segments.
#[test]
fn journal_resumes_at_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = Entry::default();
    {
        let mut j = Spill::open_journal(dir.path(), 1 << 20, 4096).unwrap();
        for i in 0..100 {
            j.push(b"trades", format!("tok{i}").as_bytes(), &[b'x'; 100])
                .unwrap();
        }
        assert!(j.front(&mut e).unwrap());
        assert!(j.front(&mut e).unwrap(), "front does not take");
        assert_eq!(e.id, b"tok0");
        for i in 0..57 {
            assert!(j.front(&mut e).unwrap());
            assert_eq!(e.id, format!("tok{i}").as_bytes());
            j.pop_front().unwrap();
        }
        assert!(j.front(&mut e).unwrap());
        assert_eq!(e.id, b"tok57");
        // Dropped without popping 57: a crash while it was in flight.
    }
    let mut j = Spill::open_journal(dir.path(), 1 << 20, 4096).unwrap();
    assert_eq!(j.len(), 43);
    let mut ids = Vec::new();
    while j.front(&mut e).unwrap() {
        ids.push(String::from_utf8(e.id.clone()).unwrap());
        j.pop_front().unwrap();
    }
    assert_eq!(
        ids,
        (57..100).map(|i| format!("tok{i}")).collect::<Vec<_>>()
    );
    assert!(j.is_empty());
    assert_eq!(j.bytes(), 0);
}

#[test]
fn budget_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spill::open(dir.path(), 100, 4096).unwrap();
    s.push(b"a", b"b", &[b'x'; 50]).unwrap();
    assert!(matches!(
        s.push(b"a", b"b", &[b'x'; 50]),
        Err(SpillError::Full)
    ));
    assert_eq!(s.len(), 1);
}

#[test]
fn survives_restart_and_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Spill::open(dir.path(), 1 << 20, 1 << 20).unwrap();
        for i in 0..10 {
            s.push(b"s", format!("{i}").as_bytes(), b"payload").unwrap();
        }
    }
    // Simulate a crash mid-write: half an entry at the end.
    let seg = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[40, 0, 0, 0, 1, 0]).unwrap();
    drop(f);
    let mut s = Spill::open(dir.path(), 1 << 20, 1 << 20).unwrap();
    assert_eq!(s.len(), 10);
    s.push(b"s", b"10", b"payload").unwrap();
    let got: Vec<String> = entries(&mut s, usize::MAX)
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert_eq!(got, (0..=10).map(|i| i.to_string()).collect::<Vec<_>>());
}

/// An entry as handed back: (framed, subject, id or meta, payload or frame).
type Tagged = (bool, Vec<u8>, Vec<u8>, Vec<u8>);

/// Every entry with its `framed` flag.
fn tagged(s: &mut Spill) -> Vec<Tagged> {
    let mut out = Vec::new();
    s.drain(|f, a, b, c| {
        out.push((f, a.to_vec(), b.to_vec(), c.to_vec()));
        true
    })
    .unwrap();
    out
}

/// A framed entry on disk, byte for byte: the flag in `rest_len`'s top bit,
/// the parts concatenated as the payload; records around it unchanged; a
/// restart reads both kinds back in order.
#[test]
fn framed_entries_round_trip_with_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Spill::open(dir.path(), 1 << 20, 1 << 20).unwrap();
        s.push_buffered(b"t.a", b"id1", b"{}").unwrap();
        s.push_framed_buffered(b"t.a", &7u64.to_le_bytes(), &[b" 3 5\r\n", b"ab", b"\r\n"])
            .unwrap();
        s.flush().unwrap();
        assert_eq!((s.len(), s.bytes()), (2, 8 + 8 + 8 + 3 + 8 + 10));
    }
    let seg = dir.path().join("seg-0000000001.spill");
    let mut want = Vec::new();
    want.extend_from_slice(&[8, 0, 0, 0, 3, 0, 3, 0]);
    want.extend_from_slice(b"t.aid1{}");
    want.extend_from_slice(&[21, 0, 0, 0x80, 3, 0, 8, 0]);
    want.extend_from_slice(b"t.a");
    want.extend_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0]);
    want.extend_from_slice(b" 3 5\r\nab\r\n");
    assert_eq!(std::fs::read(&seg).unwrap(), want);
    // A crash while writing the next framed entry: its head and part of it.
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[21, 0, 0, 0x80, 3, 0, 8, 0, b't']).unwrap();
    drop(f);
    let mut s = Spill::open(dir.path(), 1 << 20, 1 << 20).unwrap();
    assert_eq!(std::fs::read(&seg).unwrap(), want, "the torn entry cut off");
    assert_eq!((s.len(), s.bytes()), (2, want.len() as u64));
    assert_eq!(
        tagged(&mut s),
        vec![
            (false, b"t.a".to_vec(), b"id1".to_vec(), b"{}".to_vec()),
            (
                true,
                b"t.a".to_vec(),
                7u64.to_le_bytes().to_vec(),
                b" 3 5\r\nab\r\n".to_vec()
            ),
        ]
    );
    assert!(s.is_empty());
}

/// A segment written before framed entries existed (the bytes of the old
/// layout, no flag) is read as records, and new framed entries go behind it.
#[test]
fn a_segment_of_the_old_layout_is_read_as_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = Vec::new();
    for (id, p) in [
        (&b"trade:1"[..], &b"{\"n\":1}"[..]),
        (b"trade:2", b"{\"n\":2}"),
    ] {
        let body = 5 + id.len() + p.len();
        old.extend_from_slice(&(body as u32).to_le_bytes());
        old.extend_from_slice(&5u16.to_le_bytes());
        old.extend_from_slice(&(id.len() as u16).to_le_bytes());
        old.extend_from_slice(b"t.b.c");
        old.extend_from_slice(id);
        old.extend_from_slice(p);
    }
    std::fs::write(dir.path().join("seg-0000000004.spill"), &old).unwrap();
    let mut s = Spill::open(dir.path(), 1 << 20, 1 << 20).unwrap();
    assert_eq!(s.len(), 2);
    s.push_framed_buffered(b"t.b.c", b"m", &[b"frame"]).unwrap();
    let got = tagged(&mut s);
    assert_eq!(
        got,
        vec![
            (
                false,
                b"t.b.c".to_vec(),
                b"trade:1".to_vec(),
                b"{\"n\":1}".to_vec()
            ),
            (
                false,
                b"t.b.c".to_vec(),
                b"trade:2".to_vec(),
                b"{\"n\":2}".to_vec()
            ),
            (true, b"t.b.c".to_vec(), b"m".to_vec(), b"frame".to_vec()),
        ]
    );
}

/// A journal (ClickHouse) refuses a framed entry instead of handing its
/// frame over as a block.
#[test]
fn a_journal_refuses_a_framed_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Spill::open_journal(dir.path(), 1 << 20, 1 << 20).unwrap();
    j.push_framed_buffered(b"s", b"m", &[b"f"]).unwrap();
    let err = j.front(&mut Entry::default()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}

/// A segment cut short behind the spill's back is an error, not a fault on
/// the mapped window.
#[test]
fn a_segment_shorter_than_recorded_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spill::open(dir.path(), 1 << 20, 1 << 20).unwrap();
    for i in 0..3 {
        s.push(b"s", format!("{i}").as_bytes(), &[b'x'; 5000])
            .unwrap();
    }
    let seg = dir.path().join("seg-0000000001.spill");
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(6000)
        .unwrap();
    let mut ids = Vec::new();
    let err = s
        .drain(|_, _, id, _| {
            ids.push(id.to_vec());
            true
        })
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(ids, [b"0".to_vec()], "the entry the file still holds");
    assert_eq!(s.len(), 2);
}
