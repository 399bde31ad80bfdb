//! The queue's bytes: encoded frames in one buffer used as a ring of
//! contiguous frames (a bip buffer). New frames go after the newest; when
//! the buffer's end is reached they start again at its front, below the
//! oldest live frame. Frames never move while the ring has room, so
//! releasing the oldest costs nothing: under backpressure the queue holds
//! tens of MiB, and moving them down (as a compacting buffer does) was
//! one more copy of every record. Only when the live frames outgrow the
//! buffer are they moved, once, into a larger one ([`Moved`]).

/// Live frames were moved into a larger buffer: every offset changes by
/// [`Moved::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// Start of the older run (the oldest frame).
    head: usize,
    /// End of the older run, where the newer run (from offset 0) follows.
    end: usize,
}

impl Moved {
    /// The new offset of a frame that was at `off`.
    pub fn apply(&self, off: usize) -> usize {
        if off >= self.head {
            off - self.head
        } else {
            off + (self.end - self.head)
        }
    }
}

pub struct Ring {
    buf: Vec<u8>,
    /// Where the next frame goes.
    tail: usize,
    /// While wrapped: the end of the older run `[head, end)`; newer frames
    /// are at `[0, tail)`, below `head`.
    wrap_end: Option<usize>,
}

impl Ring {
    pub fn new(cap: usize) -> Ring {
        Ring {
            buf: Vec::with_capacity(cap),
            tail: 0,
            wrap_end: None,
        }
    }

    /// The `len` bytes at `off`.
    pub fn bytes(&self, off: usize, len: usize) -> &[u8] {
        &self.buf[off..off + len]
    }

    /// Appends one frame: `encode` writes exactly `len` bytes (checked in
    /// debug builds). `head`: offset of the oldest live frame, None when
    /// nothing is live. Returns the frame's offset, the bytes written, and
    /// whether live frames moved.
    pub fn push(
        &mut self,
        len: usize,
        head: Option<usize>,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> (usize, usize, Option<Moved>) {
        let Some(head) = head else {
            self.buf.clear();
            self.tail = 0;
            self.wrap_end = None;
            return self.write_at(0, len, encode, None);
        };
        match self.wrap_end {
            Some(_) if self.tail + len <= head => self.write_at(self.tail, len, encode, None),
            Some(end) => {
                let moved = self.grow(head, end, len);
                self.write_at(self.tail, len, encode, Some(moved))
            }
            None if self.tail + len <= self.buf.capacity() => {
                self.write_at(self.tail, len, encode, None)
            }
            // The end is reached: start again below the oldest frame when
            // that leaves room worth having (half the buffer). Below that,
            // the next pushes would soon meet the oldest frame and move every
            // live one ([`Ring::grow`]: a copy of the whole backlog and a
            // fresh buffer to fault in, 5–10 % of a JetStream burst); a
            // larger buffer now costs neither (`realloc` moves pages).
            None if len <= head && head >= self.buf.capacity() / 2 => {
                self.wrap_end = Some(self.tail);
                self.write_at(0, len, encode, None)
            }
            None => {
                // No room at either end: a larger buffer (the live bytes
                // stay where they are).
                self.buf.truncate(self.tail);
                self.buf.reserve(len.max(self.buf.capacity()));
                self.write_at(self.tail, len, encode, None)
            }
        }
    }

    /// Moves the live frames (`[head, end)` then `[0, tail)`) to the front
    /// of a buffer with room for `len` more.
    fn grow(&mut self, head: usize, end: usize, len: usize) -> Moved {
        let live = (end - head) + self.tail;
        let mut next = Vec::with_capacity((2 * self.buf.capacity()).max(live + len));
        next.extend_from_slice(&self.buf[head..end]);
        next.extend_from_slice(&self.buf[..self.tail]);
        let moved = Moved { head, end };
        self.buf = next;
        self.tail = live;
        self.wrap_end = None;
        moved
    }

    fn write_at(
        &mut self,
        at: usize,
        len: usize,
        encode: impl FnOnce(&mut Vec<u8>),
        moved: Option<Moved>,
    ) -> (usize, usize, Option<Moved>) {
        let keep = self.buf.len();
        // Encoders append to a Vec: cut it at `at` (bytes past it are kept
        // in memory, u8 has no drop), append, then restore the length.
        self.buf.truncate(at);
        encode(&mut self.buf);
        let written = self.buf.len() - at;
        debug_assert_eq!(written, len);
        if self.buf.len() < keep {
            // SAFETY: `[0, keep)` was initialized before the truncate, and
            // truncating a Vec<u8> leaves its memory as it was; the
            // encoder only wrote `[at, at + written)`, below `keep`.
            unsafe { self.buf.set_len(keep) };
        }
        self.tail = at + written;
        (at, written, moved)
    }

    /// The oldest live frame is now at `head` (None: nothing is live). Once
    /// the older run is released, the newer one is the only run.
    pub fn released(&mut self, head: Option<usize>) {
        match head {
            None => {
                self.buf.clear();
                self.tail = 0;
                self.wrap_end = None;
            }
            // The oldest frame is in the newer run (below `tail`).
            Some(h) if self.wrap_end.is_some() && h < self.tail => self.wrap_end = None,
            Some(_) => {}
        }
    }

    /// Forgets every frame.
    pub fn clear(&mut self) {
        self.released(None);
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    #[cfg(test)]
    pub fn wrapped(&self) -> bool {
        self.wrap_end.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(r: &mut Ring, head: Option<usize>, b: &[u8]) -> (usize, Option<Moved>) {
        let (off, n, moved) = r.push(b.len(), head, |v| v.extend_from_slice(b));
        assert_eq!(n, b.len());
        (off, moved)
    }

    #[test]
    fn frames_wrap_below_the_oldest_and_move_only_when_outgrown() {
        let mut r = Ring::new(8);
        assert_eq!(put(&mut r, None, b"aaaa"), (0, None));
        assert_eq!(put(&mut r, Some(0), b"bbb"), (4, None));
        // "aaaa" released; "ccc" does not fit the end (7 + 3 > 8), fits below 4.
        r.released(Some(4));
        assert_eq!(put(&mut r, Some(4), b"ccc"), (0, None));
        assert!(r.wrapped());
        assert_eq!(r.bytes(4, 3), b"bbb");
        assert_eq!(r.bytes(0, 3), b"ccc");
        // No room below "bbb": both runs move, oldest first, into a larger buffer.
        let (off, moved) = put(&mut r, Some(4), b"dd");
        let m = moved.unwrap();
        assert_eq!((m.apply(4), m.apply(0), off), (0, 3, 6));
        assert_eq!(r.bytes(0, 8), b"bbbcccdd");
        assert!(!r.wrapped() && r.capacity() >= 16);
        // Once the older run is released the newer one is the only run.
        let mut r = Ring::new(8);
        put(&mut r, None, b"aaaa");
        put(&mut r, Some(0), b"bbb");
        r.released(Some(4));
        assert_eq!(put(&mut r, Some(4), b"cc"), (0, None));
        r.released(Some(0));
        assert!(!r.wrapped());
        assert_eq!(put(&mut r, Some(0), b"d"), (2, None));
        assert_eq!(r.bytes(0, 3), b"ccd");
        r.released(None);
        assert_eq!(put(&mut r, None, b"e"), (0, None));
    }

    /// Less than half the buffer free below the oldest frame: no wrap into
    /// the sliver, the buffer grows where it is and nothing moves.
    #[test]
    fn a_sliver_below_the_oldest_frame_grows_the_buffer_instead() {
        let mut r = Ring::new(8);
        put(&mut r, None, b"aaa");
        put(&mut r, Some(0), b"bbbb");
        r.released(Some(3));
        assert_eq!(put(&mut r, Some(3), b"cc"), (7, None));
        assert!(!r.wrapped() && r.capacity() >= 16);
        assert_eq!(r.bytes(3, 6), b"bbbbcc");
    }
}
