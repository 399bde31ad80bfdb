//! File sink writes through an io_uring the core owns (`sink.write_mode`
//! `"offload"` or `"direct"`).
//!
//! A buffered `write(2)` makes the core copy every byte into the page cache
//! and allocate a page for every 4 KiB: about a fifth of a trade's cost on
//! the core (profile in README.md). Here a flush is copied once into a
//! buffer of ours and handed to the ring; the core goes on parsing and
//! learns at a later flush (or the flusher's next tick) that the write
//! finished. Two ways:
//!
//! - **offload**: a buffered write marked `IOSQE_ASYNC`, so one of the
//!   kernel's io_uring workers does the page-cache copy, on the CPUs given
//!   to [`UringWriter::new`] (housekeeping cores, not the shard's own: a
//!   worker inherits the pinning of the thread that made the ring).
//! - **direct**: `O_DIRECT`, the device reads our buffer. The device takes
//!   whole blocks at block offsets, so each write starts at the block
//!   holding the file's end, rewrites that block's partial content (kept
//!   here), and is zero-padded to a whole block. The padding is cut off
//!   when the file is closed; after a crash, start-up recovery cuts it (it
//!   is not a torn line).
//!
//! One write is in flight at a time: a direct write rewrites the block the
//! one before it ends in, and a file never has a hole to recover.

use io_uring::{opcode, squeue, types, IoUring};
use std::alloc::{self, Layout};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// How the ring writes (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingMode {
    Offload,
    Direct,
}

/// Write granularity and alignment: the largest logical block size in use
/// (512-byte devices accept it too).
pub const BLOCK: usize = 4096;

/// The most a single write carries; a larger backlog goes in several.
pub const MAX_WRITE: usize = 8 << 20;

/// Unwritten bytes past which a flush waits for the write in flight rather
/// than queue more in memory: a device slower than the input then slows
/// reading (TCP pushes back), as page-cache throttling does for `write(2)`.
pub const MAX_BACKLOG: usize = 2 * MAX_WRITE;

/// Buffers grown past this held a disk outage's backlog (in normal running
/// they stay under [`MAX_BACKLOG`] and a batch): once it is written, their
/// memory goes back.
pub const SHRINK_ABOVE: usize = 2 * MAX_BACKLOG;

/// Creates a new output file for the ring's writes.
pub fn create(path: &Path, mode: RingMode) -> io::Result<File> {
    let flags = match mode {
        RingMode::Offload => 0,
        RingMode::Direct => libc::O_DIRECT,
    };
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| {
            if mode == RingMode::Direct && e.raw_os_error() == Some(libc::EINVAL) {
                io::Error::new(
                    e.kind(),
                    format!(
                        "the filesystem of {} does not support O_DIRECT; use another sink.write_mode",
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
    /// Bytes of the submission that landed in earlier completions (a short
    /// write is continued, not failed: a filling disk takes part, and only
    /// the next attempt says ENOSPC).
    done: usize,
    /// The file written (open until the write is reaped).
    fd: RawFd,
    #[cfg(test)]
    fake: Option<i32>,
}

/// One core's ring writer: its ring, its buffer, the partial last block
/// of the file being written (direct mode).
pub struct UringWriter {
    mode: RingMode,
    ring: IoUring,
    /// Direct mode: the aligned buffer the device reads.
    buf: Aligned,
    /// Offload mode: the bytes of the write in flight (swapped with the
    /// caller's, not copied, when the write takes all of them).
    owned: Vec<u8>,
    /// Direct mode: the file's content past its last whole block
    /// (`len % BLOCK` bytes).
    tail: Vec<u8>,
    flight: Option<Flight>,
    /// (head, data) of the last write submitted: where its data sits in `buf`.
    last: (usize, usize),
}

impl UringWriter {
    /// `worker_cpus`: where the kernel's io_uring workers for this ring may
    /// run (empty: where the calling thread may).
    pub fn new(mode: RingMode, worker_cpus: &[usize]) -> io::Result<UringWriter> {
        let ring = IoUring::new(4).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot set up io_uring for sink.write_mode: {e}"),
            )
        })?;
        if !worker_cpus.is_empty() {
            // SAFETY: a plain C bit set, all zero is the empty set.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            for &c in worker_cpus {
                if c >= libc::CPU_SETSIZE as usize {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("sink.io_worker_cpus: cpu {c} is out of range"),
                    ));
                }
                // SAFETY: `c` is within the set, checked above.
                unsafe { libc::CPU_SET(c, &mut set) };
            }
            ring.submitter().register_iowq_aff(&set).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot pin io_uring workers to sink.io_worker_cpus {worker_cpus:?}: {e}"
                    ),
                )
            })?;
        }
        Ok(UringWriter {
            mode,
            ring,
            buf: Aligned::empty(),
            owned: Vec::new(),
            tail: Vec::with_capacity(BLOCK),
            flight: None,
            last: (0, 0),
        })
    }

    pub fn mode(&self) -> RingMode {
        self.mode
    }

    /// A new, empty file: nothing of the old one's last block is kept.
    pub fn start_file(&mut self) {
        debug_assert!(self.flight.is_none());
        self.tail.clear();
    }

    pub fn in_flight(&self) -> bool {
        self.flight.is_some()
    }

    /// Bytes held for writes (both modes' buffers).
    pub fn buffer_capacity(&self) -> usize {
        self.owned.capacity() + self.buf.cap
    }

    /// Hands the first `n` bytes of `pending` (whole lines) to the ring,
    /// to land at `len`, the file's true length, and takes them out of
    /// `pending`. One write at a time: the caller reaps first.
    pub fn submit(
        &mut self,
        file: &File,
        len: u64,
        pending: &mut Vec<u8>,
        n: usize,
    ) -> io::Result<()> {
        assert!(self.flight.is_none(), "one ring write at a time");
        let head = self.tail.len();
        let total = match self.mode {
            RingMode::Offload => n,
            RingMode::Direct => (head + n).div_ceil(BLOCK) * BLOCK,
        };
        // What can fail is checked before the bytes leave `pending`.
        let total32 = u32::try_from(total).map_err(|_| io::Error::other("ring write too large"))?;
        if self.ring.submission().is_full() {
            return Err(io::Error::other("io_uring submission queue full"));
        }
        let ptr = match self.mode {
            RingMode::Offload => {
                self.owned.clear();
                if n == pending.len() {
                    std::mem::swap(&mut self.owned, pending);
                } else {
                    self.owned.extend_from_slice(&pending[..n]);
                    pending.drain(..n);
                }
                self.owned.as_ptr()
            }
            RingMode::Direct => {
                debug_assert_eq!(head as u64, len % BLOCK as u64);
                self.buf.reserve(total);
                let buf = self.buf.as_mut_slice(total);
                buf[..head].copy_from_slice(&self.tail);
                buf[head..head + n].copy_from_slice(&pending[..n]);
                buf[head + n..].fill(0);
                pending.drain(..n);
                buf.as_ptr()
            }
        };
        self.last = (head, n);
        let data_len = n;
        let flight = Flight {
            data: data_len,
            head,
            end: len + data_len as u64,
            done: 0,
            fd: file.as_raw_fd(),
            #[cfg(test)]
            fake: None,
        };
        #[cfg(test)]
        if let Some((room, errno)) = fault::ROOM.with(|r| r.get()) {
            // A filling disk: a write that does not fit fails whole (the
            // retry rewrites the same blocks anyway).
            if room < data_len {
                fault::ROOM.with(|r| r.set(Some((0, errno))));
                self.flight = Some(Flight {
                    fake: Some(errno),
                    ..flight
                });
                return Ok(());
            }
            fault::ROOM.with(|r| r.set(Some((room - data_len, errno))));
        }
        let offset = len - head as u64;
        // SAFETY: `ptr` is our buffer of `total32` bytes.
        if unsafe { self.push(file.as_raw_fd(), ptr, total32, offset) }.is_err() {
            // Checked above; should it happen, the bytes go back.
            let back = self.last_data().to_vec();
            pending.splice(0..0, back);
            return Err(io::Error::other("io_uring submission queue full"));
        }
        // From here the kernel owns the buffer until the completion.
        self.flight = Some(flight);
        self.enter();
        Ok(())
    }

    /// Queues one write of `len` bytes at `ptr` to `offset` of `fd`.
    ///
    /// # Safety
    /// The bytes stay allocated and untouched until the completion is
    /// reaped (`reap`, or `Drop` waits for it).
    unsafe fn push(&mut self, fd: RawFd, ptr: *const u8, len: u32, offset: u64) -> Result<(), ()> {
        let entry = opcode::Write::new(types::Fd(fd), ptr, len)
            .offset(offset)
            .build()
            .flags(match self.mode {
                // Straight to a worker: tried inline, the copy would run here.
                RingMode::Offload => squeue::Flags::ASYNC,
                RingMode::Direct => squeue::Flags::empty(),
            })
            .user_data(offset);
        // SAFETY: the caller's promise.
        unsafe { self.ring.submission().push(&entry) }.map_err(drop)
    }

    /// Hands what is queued to the kernel.
    fn enter(&mut self) {
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
    }

    /// The data of the last write submitted, once it finished (a failed
    /// write's bytes go back to the caller's queue).
    pub fn last_data(&mut self) -> &[u8] {
        assert!(self.flight.is_none(), "the kernel may still read it");
        let (head, data) = self.last;
        match self.mode {
            RingMode::Offload => &self.owned[..data],
            RingMode::Direct => &self.buf.as_mut_slice(head + data)[head..],
        }
    }

    /// The write in flight, once finished: the data bytes it appended, or
    /// why it failed (nothing counts as written then; the retry rewrites
    /// from the same block). `wait`: block until it finishes.
    pub fn reap(&mut self, wait: bool) -> Option<io::Result<usize>> {
        self.reap_with(wait, true)
    }

    /// [`UringWriter::reap`]; `enter: false` only looks at the completion
    /// queue (shared memory, no syscall): cheap enough for the read loop.
    pub fn reap_with(&mut self, wait: bool, enter: bool) -> Option<io::Result<usize>> {
        loop {
            match self.reap_once(wait, true, enter) {
                Reaped::Done(r) => return Some(r),
                Reaped::InFlight if wait => {}
                Reaped::InFlight | Reaped::WaitFailed => return None,
            }
        }
    }

    /// One completion. `resume`: a short write goes on with the rest (the
    /// file is still open; not while dropping).
    fn reap_once(&mut self, wait: bool, resume: bool, enter: bool) -> Reaped {
        let Some(mut flight) = self.flight else {
            return Reaped::WaitFailed;
        };
        #[cfg(test)]
        if let Some(errno) = flight.fake {
            self.flight = None;
            return Reaped::Done(Err(io::Error::from_raw_os_error(errno)));
        }
        // Without `wait`: look, enter the kernel once (that runs the
        // completion's task work), look again.
        let mut entered = false;
        let cqe = loop {
            if let Some(c) = self.ring.completion().next() {
                break c;
            }
            if (entered || !enter) && !wait {
                return Reaped::InFlight;
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
                        return Reaped::WaitFailed;
                    }
                }
            }
        };
        self.flight = None;
        let res = cqe.result();
        if res < 0 {
            return Reaped::Done(Err(io::Error::from_raw_os_error(-res)));
        }
        let total = match self.mode {
            RingMode::Offload => flight.data,
            RingMode::Direct => (flight.head + flight.data).div_ceil(BLOCK) * BLOCK,
        };
        flight.done += res as usize;
        let covered = flight.done;
        if covered < flight.head + flight.data {
            // Short: go on from where it stopped (O_DIRECT only from a
            // block boundary); the next attempt lands or says why not.
            let rest_ok = self.mode == RingMode::Offload || covered % BLOCK == 0;
            if resume && res > 0 && rest_ok {
                let base = match self.mode {
                    RingMode::Offload => self.owned.as_ptr(),
                    RingMode::Direct => self.buf.ptr.cast_const(),
                };
                let offset = flight.end - (flight.head + flight.data) as u64 + covered as u64;
                // SAFETY: the rest of the same buffer, untouched since submit.
                let ptr = unsafe { base.add(covered) };
                let pushed = unsafe { self.push(flight.fd, ptr, (total - covered) as u32, offset) };
                if pushed.is_ok() {
                    self.flight = Some(flight);
                    self.enter();
                    return Reaped::InFlight;
                }
            }
            return Reaped::Done(Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "short write: {covered} of {} bytes",
                    flight.head + flight.data
                ),
            )));
        }
        // Direct: the new partial last block, for the next write to rewrite.
        let end = flight.head + flight.data;
        if self.mode == RingMode::Direct {
            let keep = (flight.end % BLOCK as u64) as usize;
            self.tail.clear();
            let buf = self.buf.as_mut_slice(end);
            self.tail.extend_from_slice(&buf[end - keep..end]);
        } else if self.owned.capacity() > SHRINK_ABOVE {
            self.owned = Vec::new();
        }
        Reaped::Done(Ok(flight.data))
    }
}

/// What one look at the ring found.
enum Reaped {
    Done(io::Result<usize>),
    /// Not finished (or a short write's rest was just queued).
    InFlight,
    /// Nothing in flight, or the wait itself failed.
    WaitFailed,
}

impl Drop for UringWriter {
    fn drop(&mut self) {
        // The kernel may still read the buffer: wait before freeing it.
        while self.flight.is_some() {
            let failed = matches!(self.reap_once(true, false, true), Reaped::WaitFailed);
            if failed && self.flight.is_some() {
                // The wait itself failed: leak the buffers rather than free
                // memory the kernel may still read.
                std::mem::forget(std::mem::replace(&mut self.buf, Aligned::empty()));
                std::mem::forget(std::mem::take(&mut self.owned));
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_all(w: &mut UringWriter, f: &File, len: &mut u64, data: &[u8]) {
        let mut pending = data.to_vec();
        pending.extend_from_slice(b"rest");
        w.submit(f, *len, &mut pending, data.len()).unwrap();
        assert_eq!(pending, b"rest");
        let n = w.reap(true).unwrap().unwrap();
        assert_eq!(n, data.len());
        *len += n as u64;
    }

    /// Direct: each write rewrites the partial last block and pads it with
    /// zeros; offload: plain appends. Sizes that end mid-block, exactly on a
    /// block, and span several.
    #[test]
    fn appends_land_in_order_padded_only_when_direct() {
        for mode in [RingMode::Direct, RingMode::Offload] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f.jsonl");
            let f = create(&path, mode).unwrap();
            // Offload workers pinned to CPU 0, which every machine has.
            let mut w = UringWriter::new(mode, &[0]).unwrap();
            let mut len = 0u64;
            let mut expect = Vec::new();
            for (i, n) in [10usize, 4086, 1, 5000, 8192, 3, 12_000].iter().enumerate() {
                let mut chunk = vec![b'a' + i as u8; n - 1];
                chunk.push(b'\n');
                write_all(&mut w, &f, &mut len, &chunk);
                expect.extend_from_slice(&chunk);
                let on_disk = std::fs::read(&path).unwrap();
                let padded = match mode {
                    RingMode::Direct => len.div_ceil(4096) * 4096,
                    RingMode::Offload => len,
                };
                assert_eq!(on_disk.len() as u64, padded, "{mode:?}");
                assert_eq!(&on_disk[..expect.len()], &expect[..]);
                assert!(on_disk[expect.len()..].iter().all(|&b| b == 0));
            }
            f.set_len(len).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), expect);
        }
    }

    #[test]
    fn worker_cpus_out_of_range_are_refused_by_name() {
        let Err(e) = UringWriter::new(RingMode::Offload, &[1 << 20]) else {
            panic!("accepted")
        };
        assert!(e.to_string().contains("sink.io_worker_cpus"), "{e}");
    }

    #[test]
    fn a_non_blocking_reap_sees_the_write_finish() {
        for mode in [RingMode::Offload, RingMode::Direct] {
            a_non_blocking_reap_sees_the_write_finish_in(mode);
        }
    }

    fn a_non_blocking_reap_sees_the_write_finish_in(mode: RingMode) {
        let dir = tempfile::tempdir().unwrap();
        let f = create(&dir.path().join("f"), mode).unwrap();
        let mut w = UringWriter::new(mode, &[]).unwrap();
        let mut pending = b"x\n".to_vec();
        w.submit(&f, 0, &mut pending, 2).unwrap();
        assert!(pending.is_empty());
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

/// Test hook shared by both write paths (here and the file sink's `write(2)`):
/// make the disk take only so many more bytes, then fail with an errno.
#[cfg(test)]
pub(crate) mod fault {
    use std::cell::Cell;
    thread_local! {
        /// (bytes the disk still takes, errno after that); per test thread.
        pub static ROOM: Cell<Option<(usize, i32)>> = const { Cell::new(None) };
    }
}
