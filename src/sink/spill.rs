//! Per-core on-disk FIFO for records a network sink cannot take right now
//! (queue full, server down). Records keep their order: once anything is
//! spilled, newer records go behind it until the spill is drained.
//!
//! Layout: `<dir>/seg-<seq>.spill` segment files of framed entries
//! `[u32 LE rest_len][u16 LE subject_len][u16 LE id_len][subject][id][payload]`,
//! where `rest_len` counts the bytes after the 8-byte header. Its top bit
//! ([`FRAMED`]) marks an entry stored in its transport's ready-to-send form
//! ([`Spill::push_framed_buffered`]: `id` holds the transport's bookkeeping,
//! `payload` its frame); entries written before that form existed never
//! have the bit set and are read as records.
//! A segment is deleted once fully handed back. On open, leftover segments
//! from a previous run are picked up in order (a torn last entry from a crash
//! is cut off), so a restart resends them; the sink's message ids let the
//! server drop any that were already delivered.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const HEADER: usize = 8;
/// Top bit of `rest_len`: the entry is a transport frame, not a record.
const FRAMED: u32 = 1 << 31;
/// Entries larger than this are refused (they would not fit a NATS payload anyway).
const MAX_ENTRY: usize = 64 << 20;

/// Why a push was refused.
#[derive(Debug)]
pub enum SpillError {
    /// The disk budget is used up; the record was not stored.
    Full,
    Io(io::Error),
}

impl std::fmt::Display for SpillError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpillError::Full => f.write_str("spill disk budget exhausted"),
            SpillError::Io(e) => write!(f, "spill I/O: {e}"),
        }
    }
}

struct Segment {
    seq: u64,
    bytes: u64,
    entries: u64,
}

/// Bytes read from a segment ahead of time: entries are handed back from
/// this buffer, one `pread` per [`READ_CHUNK`] instead of a seek and two
/// reads per entry (those were most of the spill's cost under backpressure).
struct Reader {
    file: File,
    /// Segment offset of the next entry.
    pos: u64,
    /// Segment offset of `buf[0]`.
    buf_pos: u64,
    buf: Vec<u8>,
}

const READ_CHUNK: usize = 256 << 10;

/// Buffered entries ([`Spill::push_buffered`]) are written once this many
/// bytes are waiting: one `write` per chunk instead of one per entry (under
/// backpressure every record goes through the spill).
const WRITE_CHUNK: usize = 256 << 10;

impl Reader {
    /// The `len` bytes at segment offset `at` (< `end`, the bytes written),
    /// reading ahead up to [`READ_CHUNK`].
    fn bytes_at(&mut self, at: u64, len: usize, end: u64) -> io::Result<&[u8]> {
        use std::os::unix::fs::FileExt;
        let have = at >= self.buf_pos && at + len as u64 <= self.buf_pos + self.buf.len() as u64;
        if !have {
            let want = (end.saturating_sub(at) as usize).min(READ_CHUNK.max(len));
            if want < len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "spill entry runs past its segment",
                ));
            }
            self.buf.resize(want, 0);
            let mut got = 0;
            while got < want {
                match self.file.read_at(&mut self.buf[got..], at + got as u64)? {
                    0 => break,
                    n => got += n,
                }
            }
            self.buf.truncate(got);
            self.buf_pos = at;
            if got < len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "spill segment shorter than recorded",
                ));
            }
        }
        let from = (at - self.buf_pos) as usize;
        Ok(&self.buf[from..from + len])
    }

    /// The entry at the read position: (its size, framed, subject, id, payload).
    fn entry(&mut self, seg_bytes: u64) -> io::Result<EntryRef<'_>> {
        let pos = self.pos;
        let head = self.bytes_at(pos, HEADER, seg_bytes)?;
        let raw = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let framed = raw & FRAMED != 0;
        let body = (raw & !FRAMED) as usize;
        let sl = u16::from_le_bytes([head[4], head[5]]) as usize;
        let il = u16::from_le_bytes([head[6], head[7]]) as usize;
        if sl + il > body || body > MAX_ENTRY {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "corrupt spill entry",
            ));
        }
        let entry = self.bytes_at(pos, HEADER + body, seg_bytes)?;
        let (subject, rest) = entry[HEADER..].split_at(sl);
        let (id, payload) = rest.split_at(il);
        Ok(((HEADER + body) as u64, framed, subject, id, payload))
    }
}

/// Writes `a` then `b`, vectored.
fn write_both(w: &mut File, a: &[u8], b: &[u8]) -> io::Result<()> {
    let mut done = 0;
    let total = a.len() + b.len();
    while done < total {
        let n = if done < a.len() {
            w.write_vectored(&[io::IoSlice::new(&a[done..]), io::IoSlice::new(b)])?
        } else {
            w.write(&b[done - a.len()..])?
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "spill write wrote nothing",
            ));
        }
        done += n;
    }
    Ok(())
}

/// How [`Spill::append`] stores an entry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Written now, one `writev`.
    Through,
    /// Into the write buffer.
    Buffered,
    /// Into the write buffer, marked [`FRAMED`].
    Framed,
}

/// (size, framed, subject, id, payload) of an entry in the read buffer.
type EntryRef<'a> = (u64, bool, &'a [u8], &'a [u8], &'a [u8]);

pub struct Spill {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    /// Segments on disk, oldest first; the last one is being written.
    segments: VecDeque<Segment>,
    writer: Option<File>,
    reader: Option<Reader>,
    next_seq: u64,
    total_bytes: u64,
    entries: u64,
    scratch: Vec<u8>,
    /// Entries pushed but not yet written to the last segment; counted in
    /// `entries`, `total_bytes` and the segment's `bytes` already, written
    /// before anything is read, before the next segment starts, and by
    /// [`Spill::flush`].
    wbuf: Vec<u8>,
    /// Size of the entry [`Spill::front`] last showed (what `pop_front` takes).
    front_len: Option<u64>,
    /// Journal mode: the read position, rewritten at every `pop_front`.
    cursor: Option<File>,
}

impl Spill {
    /// Opens (creating) `dir` and recovers segments left by a previous run.
    pub fn open(dir: &Path, max_bytes: u64, segment_bytes: u64) -> io::Result<Spill> {
        std::fs::create_dir_all(dir)?;
        let mut seqs: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix("seg-")?
                    .strip_suffix(".spill")?
                    .parse()
                    .ok()
            })
            .collect();
        seqs.sort_unstable();
        let mut s = Spill {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_bytes: segment_bytes.max(4096),
            segments: VecDeque::new(),
            writer: None,
            reader: None,
            next_seq: seqs.last().map(|s| s + 1).unwrap_or(1),
            total_bytes: 0,
            entries: 0,
            scratch: Vec::new(),
            wbuf: Vec::new(),
            front_len: None,
            cursor: None,
        };
        for seq in seqs {
            let (bytes, entries) = s.recover(seq)?;
            if bytes == 0 {
                let _ = std::fs::remove_file(s.path(seq));
                continue;
            }
            s.segments.push_back(Segment {
                seq,
                bytes,
                entries,
            });
            s.total_bytes += bytes;
            s.entries += entries;
        }
        Ok(s)
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("seg-{seq:010}.spill"))
    }

    /// Counts whole entries of a segment and truncates a torn tail.
    fn recover(&mut self, seq: u64) -> io::Result<(u64, u64)> {
        let path = self.path(seq);
        let mut f = OpenOptions::new().read(true).write(true).open(&path)?;
        let len = f.metadata()?.len();
        let mut pos = 0u64;
        let mut entries = 0;
        let mut head = [0u8; HEADER];
        while pos + HEADER as u64 <= len {
            f.seek(SeekFrom::Start(pos))?;
            f.read_exact(&mut head)?;
            let raw = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            let body = u64::from(raw & !FRAMED);
            if pos + HEADER as u64 + body > len {
                break;
            }
            pos += HEADER as u64 + body;
            entries += 1;
        }
        if pos < len {
            log::warn!(
                "spill {}: cut a torn entry at byte {pos} of {len} (crash while writing)",
                path.display()
            );
            f.set_len(pos)?;
        }
        Ok((pos, entries))
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Entries waiting.
    pub fn len(&self) -> u64 {
        self.entries
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Appends one entry at the end of the queue, written through (after
    /// any buffered entries).
    pub fn push(&mut self, subject: &[u8], id: &[u8], payload: &[u8]) -> Result<(), SpillError> {
        self.flush().map_err(SpillError::Io)?;
        self.append(subject, id, &[payload], Mode::Through)
    }

    /// Appends one entry at the end of the queue, buffered: written with
    /// the entries around it once [`WRITE_CHUNK`] bytes wait, or at the next
    /// [`Spill::flush`] or read. Call `flush` before yielding so a crash
    /// loses no more than [`Spill::push`] would.
    pub fn push_buffered(
        &mut self,
        subject: &[u8],
        id: &[u8],
        payload: &[u8],
    ) -> Result<(), SpillError> {
        self.append(subject, id, &[payload], Mode::Buffered)
    }

    /// As [`Spill::push_buffered`], an entry in its transport's ready-to-send
    /// form: `meta` (its bookkeeping) in the id field and `frame`, the
    /// concatenation of `parts`, in the payload field; [`Spill::drain`] hands
    /// it back with `framed` set.
    pub fn push_framed_buffered(
        &mut self,
        subject: &[u8],
        meta: &[u8],
        parts: &[&[u8]],
    ) -> Result<(), SpillError> {
        self.append(subject, meta, parts, Mode::Framed)
    }

    /// Writes the buffered entries. On failure what was not written stays
    /// buffered (and counted) for the next try; nothing is read until then.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let Some(w) = self.writer.as_mut() else {
            return Err(io::Error::other("no spill segment open"));
        };
        let mut done = 0;
        let r = loop {
            if done == self.wbuf.len() {
                break Ok(());
            }
            match w.write(&self.wbuf[done..]) {
                Ok(0) => {
                    break Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "spill write wrote nothing",
                    ))
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.wbuf.drain(..done);
        r
    }

    fn append(
        &mut self,
        subject: &[u8],
        id: &[u8],
        parts: &[&[u8]],
        mode: Mode,
    ) -> Result<(), SpillError> {
        let payload_len: usize = parts.iter().map(|p| p.len()).sum();
        let body = subject.len() + id.len() + payload_len;
        if subject.len() > u16::MAX as usize || id.len() > u16::MAX as usize || body > MAX_ENTRY {
            return Err(SpillError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "entry too large",
            )));
        }
        let entry = (HEADER + body) as u64;
        if self.total_bytes + entry > self.max_bytes {
            return Err(SpillError::Full);
        }
        let need_new = match (self.writer.as_ref(), self.segments.back()) {
            (Some(_), Some(last)) => last.bytes + entry > self.segment_bytes && last.bytes > 0,
            _ => true,
        };
        if need_new {
            // The buffered tail belongs to the segment being closed.
            self.flush().map_err(SpillError::Io)?;
            let seq = self.next_seq;
            self.next_seq += 1;
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path(seq))
                .map_err(SpillError::Io)?;
            self.writer = Some(f);
            self.segments.push_back(Segment {
                seq,
                bytes: 0,
                entries: 0,
            });
        }
        if mode != Mode::Through {
            if self.wbuf.len() + entry as usize > WRITE_CHUNK {
                // Not stored if the buffer cannot be written (as `push`).
                self.flush().map_err(SpillError::Io)?;
            }
            let flag = if mode == Mode::Framed { FRAMED } else { 0 };
            let b = &mut self.wbuf;
            b.extend_from_slice(&(body as u32 | flag).to_le_bytes());
            b.extend_from_slice(&(subject.len() as u16).to_le_bytes());
            b.extend_from_slice(&(id.len() as u16).to_le_bytes());
            b.extend_from_slice(subject);
            b.extend_from_slice(id);
            for p in parts {
                b.extend_from_slice(p);
            }
            self.account(entry);
            return Ok(());
        }
        // Written through only by `push`, which passes the payload whole.
        debug_assert_eq!(parts.len(), 1);
        let payload = parts.first().copied().unwrap_or_default();
        self.scratch.clear();
        self.scratch.extend_from_slice(&(body as u32).to_le_bytes());
        self.scratch
            .extend_from_slice(&(subject.len() as u16).to_le_bytes());
        self.scratch
            .extend_from_slice(&(id.len() as u16).to_le_bytes());
        self.scratch.extend_from_slice(subject);
        self.scratch.extend_from_slice(id);
        let Some(w) = self.writer.as_mut() else {
            return Err(SpillError::Io(io::Error::other("no spill segment open")));
        };
        // Head and payload in one writev: no copy of the payload (a
        // ClickHouse block is hundreds of KB) and one syscall per entry.
        write_both(w, &self.scratch, payload).map_err(SpillError::Io)?;
        self.account(entry);
        Ok(())
    }

    /// Counts one stored entry of `entry` bytes in the last segment.
    fn account(&mut self, entry: u64) {
        if let Some(last) = self.segments.back_mut() {
            last.bytes += entry;
            last.entries += 1;
        }
        self.total_bytes += entry;
        self.entries += 1;
    }

    /// Hands entries back oldest first to `take(framed, subject, id, payload)`
    /// until it returns false (the receiver is full; that entry stays) or the
    /// spill is empty. `framed`: pushed by [`Spill::push_framed_buffered`]
    /// (`id` is its meta, `payload` its frame). Returns how many were taken.
    pub fn drain(
        &mut self,
        mut take: impl FnMut(bool, &[u8], &[u8], &[u8]) -> bool,
    ) -> io::Result<u64> {
        let mut taken = 0;
        while let Some(seg_bytes) = self.front_segment()? {
            let Some(r) = self.reader.as_mut() else {
                break;
            };
            let (len, framed, subject, id, payload) = r.entry(seg_bytes)?;
            if !take(framed, subject, id, payload) {
                break;
            }
            r.pos += len;
            self.total_bytes -= len;
            self.entries -= 1;
            taken += 1;
        }
        Ok(taken)
    }

    /// Opens `dir` as a journal: like [`Spill::open`], but entries are taken
    /// with [`Spill::front`] + [`Spill::pop_front`] and the read position is
    /// kept on disk (`<dir>/cursor`), so after a crash only the entry that
    /// was being delivered comes back, not its whole segment. The ClickHouse
    /// sink needs this: its deduplication tokens are remembered for a number
    /// of blocks, not for a segment's worth.
    pub fn open_journal(dir: &Path, max_bytes: u64, segment_bytes: u64) -> io::Result<Spill> {
        let mut s = Spill::open(dir, max_bytes, segment_bytes)?;
        let path = dir.join("cursor");
        let mut cursor = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut raw = [0u8; 16];
        let have = cursor.read(&mut raw)? == 16;
        if have {
            let seq = u64::from_le_bytes(raw[..8].try_into().unwrap_or_default());
            let pos = u64::from_le_bytes(raw[8..].try_into().unwrap_or_default());
            // Segments before the cursor's were delivered to the end.
            while let Some(f) = s.segments.front() {
                if f.seq >= seq {
                    break;
                }
                s.total_bytes -= f.bytes;
                s.entries -= f.entries;
                let _ = std::fs::remove_file(s.path(f.seq));
                s.segments.pop_front();
            }
            if s.segments.front().is_some_and(|f| f.seq == seq) {
                let mut skip = Entry::default();
                while s.reader_pos() < pos && s.front(&mut skip)? {
                    s.pop_front()?;
                }
            }
        }
        s.cursor = Some(cursor);
        Ok(s)
    }

    /// Read position in the oldest segment (0 before the first read).
    fn reader_pos(&self) -> u64 {
        self.reader.as_ref().map_or(0, |r| r.pos)
    }

    /// Opens the oldest segment that still has entries (deleting those read
    /// to the end); its size, or None when the journal is empty.
    fn front_segment(&mut self) -> io::Result<Option<u64>> {
        // Entries are read from the file: buffered ones must be there first.
        self.flush()?;
        while let Some(front) = self.segments.front() {
            let (seq, seg_bytes) = (front.seq, front.bytes);
            if self.reader.is_none() {
                self.reader = Some(Reader {
                    file: File::open(self.path(seq))?,
                    pos: 0,
                    buf_pos: 0,
                    buf: Vec::new(),
                });
            }
            if self.reader.as_ref().is_some_and(|r| r.pos >= seg_bytes) {
                // Fully handed back: the segment is no longer needed; new
                // entries go into a fresh segment rather than this one.
                if self.segments.len() == 1 {
                    self.writer = None;
                }
                self.reader = None;
                self.segments.pop_front();
                let _ = std::fs::remove_file(self.path(seq));
                continue;
            }
            return Ok(Some(seg_bytes));
        }
        Ok(None)
    }

    /// Copies the oldest entry into `out` without taking it; false when the
    /// journal is empty.
    pub fn front(&mut self, out: &mut Entry) -> io::Result<bool> {
        self.front_len = None;
        let Some(seg_bytes) = self.front_segment()? else {
            return Ok(false);
        };
        let Some(r) = self.reader.as_mut() else {
            return Ok(false);
        };
        let (len, framed, subject, id, payload) = r.entry(seg_bytes)?;
        if framed {
            // Only message sinks store frames; a journal never has them.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a transport frame in a journal",
            ));
        }
        out.subject.clear();
        out.subject.extend_from_slice(subject);
        out.id.clear();
        out.id.extend_from_slice(id);
        out.payload.clear();
        out.payload.extend_from_slice(payload);
        self.front_len = Some(len);
        Ok(true)
    }

    /// Takes the oldest entry without reading it, when the caller still
    /// has it in memory: `subject`, `id` and `payload` lengths as pushed.
    pub fn skip_front(&mut self, subject: usize, id: usize, payload: usize) -> io::Result<()> {
        if self.front_segment()?.is_none() {
            return Ok(());
        }
        self.front_len = Some((HEADER + subject + id + payload) as u64);
        self.pop_front()
    }

    /// Takes the entry [`Spill::front`] last showed (delivered); in journal
    /// mode the new read position is written down.
    pub fn pop_front(&mut self) -> io::Result<()> {
        let (Some(len), Some(r)) = (self.front_len.take(), self.reader.as_mut()) else {
            return Ok(());
        };
        r.pos += len;
        self.total_bytes -= len;
        self.entries -= 1;
        if let (Some(c), Some(f)) = (self.cursor.as_ref(), self.segments.front()) {
            use std::os::unix::fs::FileExt;
            let mut raw = [0u8; 16];
            raw[..8].copy_from_slice(&f.seq.to_le_bytes());
            raw[8..].copy_from_slice(&r.pos.to_le_bytes());
            c.write_all_at(&raw, 0)?;
        }
        Ok(())
    }
}

impl Drop for Spill {
    /// Buffered entries reach the file at shutdown too (best effort: a
    /// failure here has no one left to tell but the log).
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            log::error!(
                "spill {}: buffered entries not written: {e}",
                self.dir.display()
            );
        }
    }
}

/// One entry copied out of a journal by [`Spill::front`] (buffers reused).
#[derive(Debug, Default, Clone)]
pub struct Entry {
    pub subject: Vec<u8>,
    pub id: Vec<u8>,
    pub payload: Vec<u8>,
}

#[cfg(test)]
mod tests;
