//! The per-core publish queue: every message not yet delivered, already
//! encoded (HPUB/PUB bytes) in one reusable byte buffer, in publish order,
//! indexed by a ring of small entries. Sending writes a run of entries
//! straight from the buffer;
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
    /// Bytes in the run.
    pub bytes: usize,
}

/// Where the writer stands in a claimed run: the message it is in, bytes of
/// it already written, and bytes of the run left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    seq: u64,
    skip: usize,
    pub left: usize,
}

impl Run {
    pub fn new(g: &Gathered) -> Run {
        Run {
            seq: g.first_seq,
            skip: 0,
            left: g.bytes,
        }
    }
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

    /// Claims the next run of queued messages for one write, in order, until
    /// `max_bytes` or the in-flight window is reached: acked messages become
    /// `Sent`; core messages stay `Queued` until [`Queue::written`] confirms
    /// the write. A run is contiguous in the ring (it ends where the ring
    /// wraps or at a message not to be written), so the writer sends it
    /// straight from the ring ([`Queue::unsent`]) with no copy.
    pub fn claim(&mut self, max_bytes: usize, max_in_flight: usize, now_ns: u64) -> Gathered {
        let mut g = Gathered::default();
        let Some(front) = self.entries.front().map(|e| e.seq) else {
            return g;
        };
        self.cursor = self.cursor.max(front);
        g.first_seq = self.cursor;
        let mut next_off = None;
        while g.bytes < max_bytes {
            let i = (self.cursor - front) as usize;
            let Some(e) = self.entries.get(i).copied() else {
                break;
            };
            if e.state != State::Queued {
                if g.bytes > 0 {
                    break;
                }
                self.cursor += 1;
                g.first_seq = self.cursor;
                continue;
            }
            if (e.ack && self.in_flight >= max_in_flight) || next_off.is_some_and(|o| o != e.off) {
                break;
            }
            next_off = Some(e.off + e.len as usize);
            g.bytes += e.len as usize;
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

    /// The bytes of a claimed run still to be written, from where `run`
    /// stands. None if the queue was emptied meanwhile ([`Queue::clear`]).
    /// Offsets are looked up at each call: a push may have moved the ring.
    pub fn unsent(&self, run: &Run) -> Option<&[u8]> {
        let e = &self.entries[self.index(run.seq)?];
        Some(self.ring.bytes(e.off + run.skip, run.left))
    }

    /// `n` more bytes of `run` reached the socket. Until a message is fully
    /// written it cannot be acked, so the entry `run` stands in stays live.
    pub fn advance(&self, run: &mut Run, mut n: usize) {
        n = n.min(run.left);
        run.left -= n;
        let Some(mut i) = self.index(run.seq) else {
            run.left = 0;
            return;
        };
        while n > 0 {
            let rest = self.entries[i].len as usize - run.skip;
            if n < rest {
                run.skip += n;
                return;
            }
            n -= rest;
            run.skip = 0;
            run.seq += 1;
            i += 1;
        }
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
mod tests;
