use super::*;

impl Queue {
    /// Claims runs until none is left (or `max_bytes`), copying each out as
    /// the writer sends it, and advancing through it in two steps (a partial
    /// write, then the rest).
    fn gather(
        &mut self,
        out: &mut Vec<u8>,
        max_bytes: usize,
        max_in_flight: usize,
        now_ns: u64,
    ) -> Gathered {
        let mut all = Gathered::default();
        loop {
            let g = self.claim(max_bytes.saturating_sub(out.len()), max_in_flight, now_ns);
            if all.end_seq == 0 {
                all.first_seq = g.first_seq;
            }
            if g.bytes == 0 {
                all.end_seq = all.end_seq.max(g.end_seq);
                return all;
            }
            all.end_seq = g.end_seq;
            all.fresh += g.fresh;
            all.resent += g.resent;
            all.core += g.core;
            all.bytes += g.bytes;
            let mut run = Run::new(&g);
            let half = self.unsent(&run).unwrap().len() / 2 + 1;
            out.extend_from_slice(&self.unsent(&run).unwrap()[..half.min(run.left)]);
            self.advance(&mut run, half);
            if run.left > 0 {
                out.extend_from_slice(self.unsent(&run).unwrap());
                let n = run.left;
                self.advance(&mut run, n);
            }
            assert_eq!(run.left, 0);
        }
    }
}

fn push(q: &mut Queue, s: &str, ack: bool) -> u64 {
    q.push(s.len(), ack, 0, 0, |b, _| b.extend_from_slice(s.as_bytes()))
}

#[test]
fn parked_messages_leave_the_window_and_are_written_again() {
    let mut q = Queue::new(16, 1 << 16);
    let a = push(&mut q, "a", true);
    let b = push(&mut q, "b", true);
    let mut out = Vec::new();
    q.gather(&mut out, 1 << 20, 16, 0);
    assert_eq!(q.in_flight(), 2);
    assert!(q.park(a));
    assert!(!q.park(a));
    assert_eq!((q.in_flight(), q.oldest_sent_ns().is_some()), (1, true));
    assert_eq!(q.ack(b, 1), AckMatch::Acked(1, 0));
    assert_eq!(
        q.oldest_sent_ns(),
        None,
        "a parked message has no ack timeout"
    );
    out.clear();
    assert_eq!(
        q.gather(&mut out, 1 << 20, 16, 2).fresh + q.in_flight() as u64,
        0
    );
    assert!(q.unpark(a));
    out.clear();
    let g = q.gather(&mut out, 1 << 20, 16, 3);
    assert_eq!((g.resent, q.in_flight()), (1, 1));
    assert_eq!(out, q.entry_bytes(a).unwrap());
    assert!(q.park(a));
    let mut got = Vec::new();
    assert!(q.settle(a, |f| got.extend_from_slice(f)));
    assert!(q.is_empty());
    assert!(!got.is_empty());
}

#[test]
fn an_ack_hands_back_the_records_receive_time() {
    let mut q = Queue::new(4, 64);
    let a = q.push(2, true, 100, 7_000, |b, _| b.extend_from_slice(b"a;"));
    let b = q.push(2, true, 150, 0, |b, _| b.extend_from_slice(b"b;"));
    q.gather(&mut Vec::new(), 1 << 20, 4, 200);
    assert_eq!(q.ack(b, 400), AckMatch::Acked(250, 0));
    assert_eq!(q.ack(a, 500), AckMatch::Acked(400, 7_000));
    assert!(q.is_empty());
}

#[test]
fn a_full_window_reopens_once_a_quarter_is_acked() {
    let mut q = Queue::new(16, 1 << 10);
    let seqs: Vec<u64> = (0..10)
        .map(|i| push(&mut q, &format!("m{i};"), true))
        .collect();
    push(&mut q, "core;", false);
    let mut out = Vec::new();
    q.gather(&mut out, 1 << 20, q.window(8), 0);
    assert_eq!((q.in_flight(), out.len()), (8, 24));
    assert_eq!(q.acks_to_reopen(8), 2);
    // 7 in flight: a write would carry one message; wait for the quarter.
    q.ack(seqs[0], 1);
    assert_eq!(q.window(8), 7);
    assert_eq!(q.acks_to_reopen(8), 1);
    assert!(!q.has_unsent(q.window(8)));
    out.clear();
    let g = q.gather(&mut out, 1 << 20, q.window(8), 2);
    assert_eq!((g.fresh, out.len()), (0, 0));
    q.ack(seqs[1], 3);
    assert_eq!(q.window(8), 8);
    assert_eq!(q.acks_to_reopen(8), 0);
    assert!(q.has_unsent(q.window(8)));
    out.clear();
    let g = q.gather(&mut out, 1 << 20, q.window(8), 4);
    assert_eq!(out, b"m8;m9;core;");
    assert_eq!((g.fresh, g.core, q.in_flight()), (3, 1, 8));
    // A window of 1 is never held back.
    let mut one = Queue::new(4, 64);
    let a = push(&mut one, "a;", true);
    push(&mut one, "b;", true);
    one.gather(&mut out, 1 << 20, one.window(1), 0);
    assert_eq!(one.window(1), 1);
    one.ack(a, 1);
    assert!(one.has_unsent(one.window(1)));
}

#[test]
fn skipped_entries_are_released_unwritten() {
    let mut q = Queue::new(8, 1 << 10);
    for i in 0..4 {
        push(&mut q, &format!("m{i};"), true);
    }
    push(&mut q, "core;", false);
    let mut out = Vec::new();
    q.gather(&mut out, 1 << 20, 2, 0);
    q.requeue();
    let mut seen = Vec::new();
    let n = q.skip_queued(|seq, written, frame| {
        seen.push((seq, written, String::from_utf8_lossy(frame).into_owned()));
        seq == 1 || seq == 3
    });
    assert_eq!(n, 2);
    assert_eq!(
        seen,
        vec![
            (1, true, "m0;".to_string()),
            (2, true, "m1;".to_string()),
            (3, false, "m2;".to_string()),
            (4, false, "m3;".to_string()),
        ],
        "JetStream entries only, oldest first"
    );
    assert_eq!(q.len(), 4, "seq 1 released from the front");
    out.clear();
    let g = q.gather(&mut out, 1 << 20, 8, 1);
    assert_eq!(out, b"m1;m3;core;");
    assert_eq!((g.resent, g.fresh), (1, 2));
}

#[test]
fn window_out_of_order_acks_and_resend() {
    let mut q = Queue::new(4, 64);
    for i in 0..5 {
        push(&mut q, &format!("m{i};"), true);
    }
    let mut out = Vec::new();
    let g = q.gather(&mut out, 1 << 20, 3, 10);
    assert_eq!(out, b"m0;m1;m2;");
    assert_eq!((g.fresh, g.resent, q.in_flight()), (3, 0, 3));
    assert!(!q.has_unsent(3));
    // Out of order: seq 2 acked first; nothing released until seq 1.
    assert_eq!(q.ack(2, 20), AckMatch::Acked(20, 0));
    assert_eq!(q.ack(2, 20), AckMatch::Unknown);
    assert_eq!(q.len(), 5);
    assert!(q.has_unsent(3));
    out.clear();
    q.gather(&mut out, 1 << 20, 3, 30);
    assert_eq!(out, b"m3;");
    assert_eq!(q.ack(1, 40), AckMatch::Acked(40, 0));
    assert_eq!(q.len(), 3); // 1 and 2 released
                            // Connection lost: 3 and 4 unacked are resent in order; 4 new.
    q.requeue();
    out.clear();
    let g = q.gather(&mut out, 1 << 20, 3, 50);
    assert_eq!(out, b"m2;m3;m4;"); // m2, m3 resent; m4 fresh
    assert_eq!((g.fresh, g.resent), (1, 2));
    assert_eq!(q.ack(99, 0), AckMatch::Unknown);
    q.ack(3, 60);
    q.ack(4, 60);
    q.ack(5, 60);
    assert!(q.is_empty());
    assert_eq!(q.live_bytes(), 0);
}

#[test]
fn core_messages_done_after_write_and_the_ring_keeps_bytes() {
    let mut q = Queue::new(4, 16);
    let big = "x".repeat(300_000);
    let mut seqs = Vec::new();
    for i in 0..10 {
        seqs.push(push(&mut q, &format!("{i}{big}"), i % 2 == 0));
    }
    let cap = q.ring.capacity();
    let mut out = Vec::new();
    let g = q.gather(&mut out, usize::MAX, 100, 0);
    assert_eq!(g.core, 5);
    q.written(&g);
    for (i, &s) in seqs.iter().enumerate().take(8) {
        if i % 2 == 0 {
            q.ack(s, 1);
        }
    }
    // 8 released, 2 left intact.
    assert_eq!(q.len(), 2);
    assert_eq!(q.entry_bytes(seqs[8]).unwrap()[0], b'8');
    assert_eq!(q.entry_bytes(seqs[9]).unwrap()[0], b'9');
    assert_eq!(q.undelivered(), 1);
    // New frames fill the buffer's end, then start again at its front,
    // below the two live ones, without moving them.
    let mut n = 10;
    while !q.ring.wrapped() {
        seqs.push(push(&mut q, &format!("{n}{big}"), true));
        n += 1;
    }
    assert_eq!(q.ring.capacity(), cap);
    // Outgrowing the buffer while wrapped moves every frame, once, in order.
    while q.ring.capacity() == cap {
        seqs.push(push(&mut q, &format!("{n}{big}"), true));
        n += 1;
    }
    assert!(!q.ring.wrapped());
    assert_eq!(q.len(), n - 8);
    for (i, &s) in seqs.iter().enumerate().skip(8) {
        let b = q.entry_bytes(s).unwrap();
        assert_eq!(b.len(), 300_000 + i.to_string().len());
        assert!(b.starts_with(i.to_string().as_bytes()), "frame {i}");
    }
    let mut out = Vec::new();
    q.gather(&mut out, usize::MAX, 1 << 20, 2);
    // Frames 8 (sent, unacked) and 9 (core, written) are not written again.
    let want: String = (10..n).map(|i| format!("{i}{big}")).collect();
    assert_eq!(out.len(), want.len());
    assert!(out == want.as_bytes());
}

#[test]
fn a_run_is_written_from_the_ring_across_partial_writes_and_a_move() {
    let mut q = Queue::new(8, 16);
    let a = push(&mut q, "aaaa;", true);
    push(&mut q, "bb;", false);
    push(&mut q, "cccc;", true);
    let g = q.claim(1 << 20, 8, 0);
    assert_eq!((g.first_seq, g.end_seq, g.bytes), (1, 4, 13));
    assert_eq!((g.fresh, g.core, q.in_flight()), (3, 1, 2));
    let mut run = Run::new(&g);
    let mut out = Vec::new();
    // Into the second message.
    out.extend_from_slice(&q.unsent(&run).unwrap()[..7]);
    q.advance(&mut run, 7);
    assert_eq!(q.unsent(&run).unwrap(), b";cccc;");
    // The first message acked and released; a push outgrows the ring (a new
    // buffer): the rest is read from it.
    assert_eq!(q.ack(a, 1), AckMatch::Acked(1, 0));
    let big = "x".repeat(64);
    push(&mut q, &big, true);
    assert_eq!(q.unsent(&run).unwrap(), b";cccc;");
    out.extend_from_slice(q.unsent(&run).unwrap());
    q.advance(&mut run, 6);
    assert_eq!(run.left, 0);
    assert_eq!(out, b"aaaa;bb;cccc;");
    q.written(&g);
    assert_eq!((q.len(), q.undelivered()), (2, 2), "core message done");
    // The next run is the new message only.
    let g = q.claim(1 << 20, 8, 2);
    assert_eq!((g.first_seq, g.end_seq, g.bytes), (4, 5, 64));
}

#[test]
fn a_run_ends_where_the_ring_wraps_or_at_a_message_not_to_write() {
    let mut q = Queue::new(8, 12);
    let a = push(&mut q, "aaaaaa;", true);
    push(&mut q, "bb;", true);
    q.claim(1 << 20, 8, 0);
    q.ack(a, 1);
    // "cc;" goes below the live "bb;": the ring wraps.
    push(&mut q, "cc;", true);
    assert!(q.ring.wrapped());
    push(&mut q, "dd;", true);
    q.requeue();
    let g = q.claim(1 << 20, 8, 2);
    assert_eq!((g.first_seq, g.end_seq, g.bytes, g.resent), (2, 3, 3, 1));
    let g = q.claim(1 << 20, 8, 2);
    assert_eq!((g.first_seq, g.end_seq, g.bytes, g.fresh), (3, 5, 6, 2));
    assert_eq!(q.unsent(&Run::new(&g)).unwrap(), b"cc;dd;");
    // A sent message in the middle splits the runs after a parked one returns.
    assert!(q.park(3));
    assert!(q.unpark(3));
    let g = q.claim(1 << 20, 8, 3);
    assert_eq!((g.first_seq, g.end_seq, g.bytes), (3, 4, 3));
    assert_eq!(q.claim(1 << 20, 8, 3).bytes, 0);
}
