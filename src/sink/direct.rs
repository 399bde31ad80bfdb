//! O_DIRECT appends for the file sink (`sink.direct_io = true`).
//!
//! A buffered `write(2)` makes the core copy every byte into the page cache
//! and allocate a page for every 4 KiB: about a fifth of a trade's cost on
//! the core (measured in `tuning/README.md`). Here a flush is copied once
//! into an aligned buffer of ours and handed to the device through an
//! io_uring the core owns; the core goes on parsing while the device reads
//! the buffer, and learns at a later flush (or the flusher's next tick)
//! that the write finished.
//!
//! The device takes whole blocks at block offsets, so each write starts at
//! the block holding the file's end, rewrites that block's partial content
//! (kept here), and is zero-padded to a whole block. One write is in flight
//! at a time: the next one rewrites the block this one ends in. The padding
//! is cut off when the file is closed; after a crash, start-up recovery
//! cuts it (it is not a torn line).

use io_uring::{opcode, types, IoUring};
use std::alloc::{self, Layout};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Write granularity and alignment: the largest logical block size in use
/// (512-byte devices accept it too).
pub const BLOCK: usize = 4096;

/// The most a single write carries; a larger backlog goes in several.
pub const MAX_WRITE: usize = 8 << 20;

/// Unwritten bytes past which a flush waits for the write in flight rather
/// than queue more in memory: a device slower than the input then slows
/// reading (TCP pushes back), as page-cache throttling does for `write(2)`.
pub const MAX_BACKLOG: usize = 2 * MAX_WRITE;

/// Creates a new output file for O_DIRECT writes.
pub fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::EINVAL) {
                io::Error::new(
                    e.kind(),
                    format!(
                        "the filesystem of {} does not support O_DIRECT; set sink.direct_io = false",
                        path.display()
                    ),
                )
            } else {
                e
            }
        })
}

/// A `BLOCK`-aligned heap buffer.
struct Aligned {
    ptr: *mut u8,
    cap: usize,
}

impl Aligned {
    fn empty() -> Aligned {
        Aligned {
            ptr: std::ptr::null_mut(),
            cap: 0,
        }
    }

    /// At least `n` bytes (contents not kept).
    fn reserve(&mut self, n: usize) {
        if n <= self.cap {
            return;
        }
        // Whole MiB (a power of two would make 8 MiB + a block 16 MiB).
        let cap = n.div_ceil(1 << 20) * (1 << 20);
        self.free();
        let layout = Layout::from_size_align(cap, BLOCK).expect("buffer layout");
        // SAFETY: non-zero size.
        let ptr = unsafe { alloc::alloc(layout) };
        if ptr.is_null() {
            alloc::handle_alloc_error(layout);
        }
        self.ptr = ptr;
        self.cap = cap;
    }

    fn free(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: allocated by `reserve` with this layout.
            unsafe {
                alloc::dealloc(
                    self.ptr,
                    Layout::from_size_align(self.cap, BLOCK).expect("buffer layout"),
                )
            };
            self.ptr = std::ptr::null_mut();
            self.cap = 0;
        }
    }

    fn as_mut_slice(&mut self, len: usize) -> &mut [u8] {
        assert!(len <= self.cap);
        if len == 0 {
            return &mut [];
        }
        // SAFETY: `len` bytes of our allocation; u8 has no invalid values
        // (`reserve` does not zero, but every byte is written before use).
        unsafe { std::slice::from_raw_parts_mut(self.ptr, len) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        self.free();
    }
}

/// The write the device is working on.
#[derive(Debug, Clone, Copy)]
struct Flight {
    /// Bytes of new data in it (after the rewritten partial block).
    data: usize,
    /// Bytes of the rewritten partial block in front of the data.
    head: usize,
    /// Offset of the file's true end once it lands.
    end: u64,
    #[cfg(test)]
    fake: Option<i32>,
}

/// One core's O_DIRECT writer: its ring, its buffer, the partial last
/// block of the file being written.
pub struct DirectWriter {
    ring: IoUring,
    buf: Aligned,
    /// The file's content past its last whole block (`len % BLOCK` bytes).
    tail: Vec<u8>,
    flight: Option<Flight>,
    /// (head, data) of the last write submitted: where its data sits in `buf`.
    last: (usize, usize),
}

impl DirectWriter {
    pub fn new() -> io::Result<DirectWriter> {
        Ok(DirectWriter {
            ring: IoUring::new(4).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot set up io_uring for sink.direct_io: {e}"),
                )
            })?,
            buf: Aligned::empty(),
            tail: Vec::with_capacity(BLOCK),
            flight: None,
            last: (0, 0),
        })
    }

    /// A new, empty file: nothing of the old one's last block is kept.
    pub fn start_file(&mut self) {
        debug_assert!(self.flight.is_none());
        self.tail.clear();
    }

    pub fn in_flight(&self) -> bool {
        self.flight.is_some()
    }

    /// Hands `data` (whole lines) to the device, to land at `len`, the
    /// file's true length. One write at a time: the caller reaps first.
    pub fn submit(&mut self, file: &File, len: u64, data: &[u8]) -> io::Result<()> {
        assert!(self.flight.is_none(), "one O_DIRECT write at a time");
        debug_assert_eq!(self.tail.len() as u64, len % BLOCK as u64);
        let head = self.tail.len();
        let total = (head + data.len()).div_ceil(BLOCK) * BLOCK;
        self.buf.reserve(total);
        let buf = self.buf.as_mut_slice(total);
        buf[..head].copy_from_slice(&self.tail);
        buf[head..head + data.len()].copy_from_slice(data);
        buf[head + data.len()..].fill(0);
        self.last = (head, data.len());
        let flight = Flight {
            data: data.len(),
            head,
            end: len + data.len() as u64,
            #[cfg(test)]
            fake: None,
        };
        #[cfg(test)]
        if let Some((room, errno)) = super::file::fault::ROOM.with(|r| r.get()) {
            // A filling disk: a write that does not fit fails whole (the
            // retry rewrites the same blocks anyway).
            if room < data.len() {
                super::file::fault::ROOM.with(|r| r.set(Some((0, errno))));
                self.flight = Some(Flight {
                    fake: Some(errno),
                    ..flight
                });
                return Ok(());
            }
            super::file::fault::ROOM.with(|r| r.set(Some((room - data.len(), errno))));
        }
        let offset = len - head as u64;
        let entry = opcode::Write::new(
            types::Fd(file.as_raw_fd()),
            buf.as_ptr(),
            u32::try_from(total).map_err(|_| io::Error::other("O_DIRECT write too large"))?,
        )
        .offset(offset)
        .build()
        .user_data(offset);
        // SAFETY: the buffer stays allocated and untouched until the
        // completion is reaped (`reap`, or `Drop` waits for it).
        unsafe {
            self.ring
                .submission()
                .push(&entry)
                .map_err(|_| io::Error::other("io_uring submission queue full"))?;
        }
        // From here the kernel owns the buffer until the completion.
        self.flight = Some(flight);
        loop {
            match self.ring.submit() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // The entry stays queued; the next reap enters the
                    // kernel again and submits it.
                    log::warn!("io_uring submit failed: {e}; retried at the next reap");
                    break;
                }
            }
        }
        Ok(())
    }

    /// The data of the last write submitted, once it finished (a failed
    /// write's bytes go back to the caller's queue).
    pub fn last_data(&mut self) -> &[u8] {
        assert!(self.flight.is_none(), "the device may still read it");
        let (head, data) = self.last;
        &self.buf.as_mut_slice(head + data)[head..]
    }

    /// The write in flight, once finished: the data bytes it appended, or
    /// why it failed (nothing counts as written then; the retry rewrites
    /// from the same block). `wait`: block until it finishes.
    pub fn reap(&mut self, wait: bool) -> Option<io::Result<usize>> {
        let flight = self.flight?;
        #[cfg(test)]
        if let Some(errno) = flight.fake {
            self.flight = None;
            return Some(Err(io::Error::from_raw_os_error(errno)));
        }
        // Without `wait`: look, enter the kernel once (that runs the
        // completion's task work), look again.
        let mut entered = false;
        let cqe = loop {
            if let Some(c) = self.ring.completion().next() {
                break c;
            }
            if entered && !wait {
                return None;
            }
            entered = true;
            let r = if wait {
                self.ring.submit_and_wait(1)
            } else {
                self.ring.submit()
            };
            match r {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => {
                    log::error!("io_uring wait failed: {e}");
                    if wait {
                        return None;
                    }
                }
            }
        };
        self.flight = None;
        let res = cqe.result();
        if res < 0 {
            return Some(Err(io::Error::from_raw_os_error(-res)));
        }
        let covered = res as usize;
        if covered < flight.head + flight.data {
            return Some(Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "short O_DIRECT write: {covered} of {} bytes",
                    flight.head + flight.data
                ),
            )));
        }
        // The new partial last block, for the next write to rewrite.
        let end = flight.head + flight.data;
        let keep = (flight.end % BLOCK as u64) as usize;
        self.tail.clear();
        let buf = self.buf.as_mut_slice(end);
        self.tail.extend_from_slice(&buf[end - keep..end]);
        Some(Ok(flight.data))
    }
}

impl Drop for DirectWriter {
    fn drop(&mut self) {
        // The kernel may still read the buffer: wait before freeing it.
        while self.flight.is_some() {
            if self.reap(true).is_none() && self.flight.is_some() {
                // The wait itself failed: leak the buffer rather than free
                // memory the device may still read.
                std::mem::forget(std::mem::replace(&mut self.buf, Aligned::empty()));
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_all(w: &mut DirectWriter, f: &File, len: &mut u64, data: &[u8]) {
        w.submit(f, *len, data).unwrap();
        let n = w.reap(true).unwrap().unwrap();
        assert_eq!(n, data.len());
        *len += n as u64;
    }

    #[test]
    fn appends_rewrite_the_partial_block_and_pad_with_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.jsonl");
        let f = create(&path).unwrap();
        let mut w = DirectWriter::new().unwrap();
        let mut len = 0u64;
        let mut expect = Vec::new();
        // Sizes that end mid-block, exactly on a block, and span several.
        for (i, n) in [10usize, 4086, 1, 5000, 8192, 3, 12_000].iter().enumerate() {
            let mut chunk = vec![b'a' + i as u8; n - 1];
            chunk.push(b'\n');
            write_all(&mut w, &f, &mut len, &chunk);
            expect.extend_from_slice(&chunk);
            let on_disk = std::fs::read(&path).unwrap();
            assert_eq!(on_disk.len() as u64, len.div_ceil(4096) * 4096);
            assert_eq!(&on_disk[..expect.len()], &expect[..]);
            assert!(on_disk[expect.len()..].iter().all(|&b| b == 0));
        }
        f.set_len(len).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expect);
    }

    #[test]
    fn a_non_blocking_reap_sees_the_write_finish() {
        let dir = tempfile::tempdir().unwrap();
        let f = create(&dir.path().join("f")).unwrap();
        let mut w = DirectWriter::new().unwrap();
        w.submit(&f, 0, b"x\n").unwrap();
        assert!(w.in_flight());
        let t = std::time::Instant::now();
        let done = loop {
            if let Some(r) = w.reap(false) {
                break r;
            }
            assert!(t.elapsed() < std::time::Duration::from_secs(10));
            std::thread::sleep(std::time::Duration::from_micros(100));
        };
        assert_eq!(done.unwrap(), 2);
        assert!(!w.in_flight());
        assert!(w.reap(false).is_none());
    }
}
