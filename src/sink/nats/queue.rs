//! The per-core publish queue: every message not yet delivered, already
//! encoded (HPUB/PUB bytes) in one reusable byte buffer, in publish order,
//! indexed by a ring of small entries. Sending copies a run of entries out;
//! a reconnect marks every unacked entry for resending in the original order,
//! with no re-encoding. Acks may arrive out of order: each marks its entry,
//! and entries are released from the front only.

use std::collections::VecDeque;

mod ring;
use ring::Ring;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not written on the current connection.
    Queued,
    /// Written, waiting for its PubAck.
    Sent,
    /// Answered "no responders": waits to be written again (not in flight,
    /// so no ack timeout runs for it).
    Parked,
    /// Acked (or, for core-NATS messages, written): releasable.
    Done,
}

#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub seq: u64,
    /// Offset of the encoded bytes in the ring.
    off: usize,
    len: u32,
    /// JetStream publish (expects an ack) vs core-NATS PUB.
    pub ack: bool,
    pub state: State,
    /// Written at least once (a later write is a resend).
    pub written: bool,
    pub queued_ns: u64,
    pub sent_ns: u64,
    /// The record's `receive_ts_ns` (wall clock), 0 when unknown.
    pub receive_ns: u64,
}

/// What [`Queue::gather`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Gathered {
    pub first_seq: u64,
    pub end_seq: u64,
    pub fresh: u64,
    pub resent: u64,
    pub core: u64,
}

/// Outcome of an ack for a sequence number.
#[derive(Debug, PartialEq, Eq)]
pub enum AckMatch {
    /// Latency (ns since queued) and the record's `receive_ts_ns` (0: unknown).
    Acked(u64, u64),
    /// Not ours or already settled (late ack of a resend, ...).
    Unknown,
}

pub struct Queue {
    /// Encoded messages, in entry order.
    ring: Ring,
    entries: VecDeque<Entry>,
    next_seq: u64,
    /// Next sequence to consider for writing on the current connection.
    cursor: u64,
    in_flight: usize,
    live_bytes: usize,
}

impl Queue {
    pub fn new(entries_cap: usize, bytes_cap: usize) -> Self {
        Queue {
            ring: Ring::new(bytes_cap),
            entries: VecDeque::with_capacity(entries_cap),
            next_seq: 1,
            cursor: 1,
            in_flight: 0,
            live_bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The sequence number the next [`Queue::push`] will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn live_bytes(&self) -> usize {
        self.live_bytes
    }

    /// Messages not yet delivered (acked, or written for core NATS).
    pub fn undelivered(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.state != State::Done)
            .count()
    }

    /// Appends one message: `encode` writes exactly `len` bytes for sequence
    /// `seq` into the buffer. `receive_ns`: the record's receive time (wall
    /// clock, 0 when unknown), handed back with its ack. Returns the sequence
    /// number.
    pub fn push(
        &mut self,
        len: usize,
        ack: bool,
        now_ns: u64,
        receive_ns: u64,
        encode: impl FnOnce(&mut Vec<u8>, u64),
    ) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let head = self.entries.front().map(|e| e.off);
        let (off, written, moved) = self.ring.push(len, head, |buf| encode(buf, seq));
        if let Some(m) = moved {
            for e in self.entries.iter_mut() {
                e.off = m.apply(e.off);
            }
        }
        self.entries.push_back(Entry {
            seq,
            off,
            len: written as u32,
            ack,
            state: State::Queued,
            written: false,
            queued_ns: now_ns,
            sent_ns: 0,
            receive_ns,
        });
        self.live_bytes += written;
        seq
    }

    fn index(&self, seq: u64) -> Option<usize> {
        let front = self.entries.front()?.seq;
        let i = seq.checked_sub(front)? as usize;
        (i < self.entries.len()).then_some(i)
    }

    fn bytes(&self, e: &Entry) -> &[u8] {
        self.ring.bytes(e.off, e.len as usize)
    }

    /// The in-flight limit to write under now: once the window is full, no
    /// JetStream message is written until a quarter of it is acked, so acks
    /// trickling in one by one do not each cost a write of one message (under
    /// backpressure that was a send and a wake-up per few records). Below
    /// that, `max_in_flight` (a paced flow never fills the window, so its
    /// latency is unchanged).
    pub fn window(&self, max_in_flight: usize) -> usize {
        let refill = (max_in_flight / 4).max(1);
        if self.in_flight + refill > max_in_flight {
            self.in_flight
        } else {
            max_in_flight
        }
    }

    /// Acks still needed before [`Queue::window`] reopens a full window (0
    /// when it is open).
    pub fn acks_to_reopen(&self, max_in_flight: usize) -> usize {
        let refill = (max_in_flight / 4).max(1);
        (self.in_flight + refill).saturating_sub(max_in_flight)
    }

    /// True when something is waiting to be written.
    pub fn has_unsent(&self, max_in_flight: usize) -> bool {
        let Some(front) = self.entries.front() else {
            return false;
        };
        let mut i = self.cursor.saturating_sub(front.seq) as usize;
        while let Some(e) = self.entries.get(i) {
            if e.state == State::Queued {
                return !e.ack || self.in_flight < max_in_flight;
            }
            i += 1;
        }
        false
    }

    /// Copies queued messages, in order, into `out` until `max_bytes` or the
    /// in-flight window is reached. Acked messages become `Sent`; core
    /// messages stay `Queued` until [`Queue::written`] confirms the write.
    pub fn gather(
        &mut self,
        out: &mut Vec<u8>,
        max_bytes: usize,
        max_in_flight: usize,
        now_ns: u64,
    ) -> Gathered {
        let mut g = Gathered::default();
        let Some(front) = self.entries.front().map(|e| e.seq) else {
            return g;
        };
        self.cursor = self.cursor.max(front);
        g.first_seq = self.cursor;
        while out.len() < max_bytes {
            let i = (self.cursor - front) as usize;
            let Some(e) = self.entries.get(i).copied() else {
                break;
            };
            if e.state != State::Queued {
                self.cursor += 1;
                continue;
            }
            if e.ack && self.in_flight >= max_in_flight {
                break;
            }
            out.extend_from_slice(self.bytes(&e));
            let m = &mut self.entries[i];
            if m.written {
                g.resent += 1;
            } else {
                g.fresh += 1;
                m.written = true;
            }
            if m.ack {
                m.state = State::Sent;
                m.sent_ns = now_ns;
                self.in_flight += 1;
            } else {
                g.core += 1;
            }
            self.cursor += 1;
        }
        g.end_seq = self.cursor;
        g
    }

    /// The bytes of `g` reached the socket: core messages in it are done.
    pub fn written(&mut self, g: &Gathered) {
        if g.core == 0 {
            return;
        }
        for seq in g.first_seq..g.end_seq {
            if let Some(i) = self.index(seq) {
                let e = &mut self.entries[i];
                if !e.ack && e.state == State::Queued {
                    e.state = State::Done;
                }
            }
        }
        self.release_front();
    }

    /// A successful PubAck for `seq`.
    pub fn ack(&mut self, seq: u64, now_ns: u64) -> AckMatch {
        let Some(i) = self.index(seq) else {
            return AckMatch::Unknown;
        };
        let e = &mut self.entries[i];
        if e.state != State::Sent {
            return AckMatch::Unknown;
        }
        e.state = State::Done;
        self.in_flight -= 1;
        let (lat, receive_ns) = (now_ns.saturating_sub(e.queued_ns), e.receive_ns);
        self.release_front();
        AckMatch::Acked(lat, receive_ns)
    }

    /// Settles `seq` without an ack (the server refused it for good): hands
    /// its encoded frame to `f` (to be set aside) and releases it.
    pub fn settle(&mut self, seq: u64, f: impl FnOnce(&[u8])) -> bool {
        let Some(i) = self.index(seq) else {
            return false;
        };
        match self.entries[i].state {
            State::Sent => self.in_flight -= 1,
            State::Parked => {}
            _ => return false,
        }
        f(self.bytes(&self.entries[i]));
        self.entries[i].state = State::Done;
        self.release_front();
        true
    }

    /// Takes a sent message out of flight to be written again later.
    pub fn park(&mut self, seq: u64) -> bool {
        let Some(i) = self.index(seq) else {
            return false;
        };
        if self.entries[i].state != State::Sent {
            return false;
        }
        self.entries[i].state = State::Parked;
        self.in_flight -= 1;
        true
    }

    /// A parked message is written again (in its place in the order of
    /// what is still queued).
    pub fn unpark(&mut self, seq: u64) -> bool {
        let Some(i) = self.index(seq) else {
            return false;
        };
        if self.entries[i].state != State::Parked {
            return false;
        }
        self.entries[i].state = State::Queued;
        self.cursor = self.cursor.min(seq);
        true
    }

    /// Whether `seq` is a message awaiting its ack.
    pub fn is_sent(&self, seq: u64) -> bool {
        self.index(seq)
            .is_some_and(|i| self.entries[i].state == State::Sent)
    }

    /// Send time of the oldest unacked message, if any.
    pub fn oldest_sent_ns(&self) -> Option<u64> {
        // Entries are written in order, so the first `Sent` one is the
        // oldest; only a few written-but-unconfirmed core messages can sit
        // before it.
        self.entries
            .iter()
            .take(1024)
            .find(|e| e.state == State::Sent)
            .map(|e| e.sent_ns)
    }

    /// The connection is gone: every unacked message goes back to `Queued`
    /// and the next connection starts writing from the front again.
    pub fn requeue(&mut self) {
        for e in self.entries.iter_mut() {
            if matches!(e.state, State::Sent | State::Parked) {
                e.state = State::Queued;
            }
        }
        self.in_flight = 0;
        self.cursor = self.entries.front().map_or(self.next_seq, |e| e.seq);
    }

    fn release_front(&mut self) {
        while let Some(e) = self.entries.front() {
            if e.state != State::Done {
                break;
            }
            self.live_bytes -= e.len as usize;
            self.entries.pop_front();
        }
        self.ring.released(self.entries.front().map(|e| e.off));
    }

    /// Encoded frames not yet acked (or, for core NATS, not yet written),
    /// oldest first.
    pub fn undelivered_frames(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.entries
            .iter()
            .filter(|e| e.state != State::Done)
            .map(|e| self.bytes(e))
    }

    /// Between connections: every queued JetStream message, oldest first,
    /// as (seq, written before, frame); those `skip` returns true for are
    /// released unwritten (the stream holds them already). Returns how many.
    pub fn skip_queued(&mut self, mut skip: impl FnMut(u64, bool, &[u8]) -> bool) -> u64 {
        let mut n = 0;
        for i in 0..self.entries.len() {
            let e = self.entries[i];
            if !e.ack || e.state != State::Queued {
                continue;
            }
            if skip(e.seq, e.written, self.ring.bytes(e.off, e.len as usize)) {
                self.entries[i].state = State::Done;
                n += 1;
            }
        }
        if n > 0 {
            self.release_front();
        }
        n
    }

    /// Forgets everything (after [`Queue::undelivered_frames`] were saved elsewhere).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.ring.clear();
        self.in_flight = 0;
        self.live_bytes = 0;
        self.cursor = self.next_seq;
    }

    #[cfg(test)]
    fn entry_bytes(&self, seq: u64) -> Option<&[u8]> {
        self.index(seq).map(|i| self.bytes(&self.entries[i]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
