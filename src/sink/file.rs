//! The embedded default sink: per core, JSON Lines files under `sink.path`,
//! rotated by size and age. Each batch is encoded into one buffer and written
//! with (usually) one `write(2)`.
//!
//! The write is a plain blocking syscall on the core's thread: appends land in
//! the page cache in microseconds, and one syscall per batch (not per record)
//! keeps it off the profile.
//!
//! Crash safety:
//! - A write either lands whole or not at all: a failed write is cut back to
//!   the last complete line (`ftruncate`) and its bytes stay pending, in
//!   order, for the next attempt. Files never hold a torn line we made.
//! - `kill -9` mid-`write(2)` can still leave one: at start-up, before the
//!   first file of this run is opened, the core's files are checked and a
//!   partial last line is cut off (counted, logged, and described by a
//!   `crash_recovery` gap record, the first line of the run's first file).
//! - A marker `.marketprism/coreNN.run`, created (and locked) at start and
//!   removed by a clean close, tells the next start that this run died and
//!   lost its unflushed batch even when no line was torn.
//!
//! Disk full (ENOSPC, EDQUOT, EFBIG): writes stop and are retried every
//! `disk_full_retry`; records wait in memory up to `max_pending_bytes`, then
//! new ones are dropped, counted per stream, and described by `gap` records
//! written as soon as the disk takes data again.

use super::encode::{encode_record, json_str, push_u64};
use super::file_config::{FileSinkPlan, WriteMode};
use super::uring::{self, RingMode, UringWriter};
use crate::batch::{Batch, Record, TradeId};
use crate::model::{DataType, VenueId};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Default memory for records a failing disk does not take.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 256 * 1024 * 1024;
/// Default wait between write attempts while the disk is full.
pub const DEFAULT_DISK_FULL_RETRY: Duration = Duration::from_secs(1);
/// Sub-directory of `sink.path` holding the per-core run markers.
pub const STATE_DIR: &str = ".marketprism";

/// Records per venue × data type.
pub type Counts = [[u64; DataType::COUNT]; VenueId::COUNT];

pub struct FileSink {
    dir: PathBuf,
    shard: usize,
    max_bytes: u64,
    interval: Duration,
    file: Option<File>,
    path: PathBuf,
    bytes_in_file: u64,
    opened_at: Instant,
    seq: u64,
    /// Encoded lines not yet written (normally empty between flushes).
    pending: Vec<u8>,
    pending_records: u64,
    /// `pending_records` by stream kind, for `messages_written` once written.
    pending_counts: Counts,
    /// Gap lines in `pending` (not records).
    pending_gaps: u64,
    files_opened: u64,
    max_pending: usize,
    retry_every: Duration,
    /// The last write failed: new records count against `max_pending`.
    failing: bool,
    /// Set while the disk refuses data: no write is tried before `retry_at`.
    disk_full: Option<Instant>,
    /// A file a failed write left torn because cutting it back failed too:
    /// (path, length of its complete lines), retried before every write.
    torn: Option<(PathBuf, u64)>,
    /// Records dropped since the last [`FileSink::take_dropped`].
    dropped: u64,
    /// Streams with dropped records, until their gap line is queued.
    gaps: Vec<DropGap>,
    marker: Option<Marker>,
    recovery: Recovery,
    /// `sink.write_mode` offload or direct: writes through the core's
    /// io_uring (see `uring`).
    ring: Option<Ring>,
    /// Receive times of the records the last call found written (ring
    /// mode: they are not the batch just passed).
    written_ns: Vec<u64>,
}

/// The ring's way of writing for a ring `sink.write_mode`.
fn ring_mode(mode: WriteMode) -> RingMode {
    match mode {
        WriteMode::Direct => RingMode::Direct,
        WriteMode::Inline | WriteMode::Offload => RingMode::Offload,
    }
}

/// Ring-mode state: which lines `pending` and the write in flight hold,
/// so a write that lands counts exactly its own records.
struct Ring {
    writer: UringWriter,
    /// Lines of `pending`, in order.
    lines: Vec<Line>,
    /// Lines of the write in flight (their bytes are in the writer's buffer).
    flight: Vec<Line>,
    /// Pending bytes past which a flush waits for the device.
    backlog: usize,
    /// Flushes that did.
    waits: u64,
}

/// One line of `pending` in ring mode.
#[derive(Debug, Clone, Copy)]
struct Line {
    /// Offset just past its `\n`, from the start of its buffer.
    end: usize,
    /// `venue * DataType::COUNT + data_type`, or [`GAP_LINE`].
    kind: u16,
    receive_ns: u64,
}

const GAP_LINE: u16 = u16::MAX;

/// What one flush did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteReport {
    pub bytes: u64,
    pub records: u64,
    /// `records` per venue × data type.
    pub written: Counts,
    /// Gap lines written.
    pub gaps: u64,
    pub rotated: bool,
    /// This write ended a run of failures.
    pub resumed: bool,
}

/// A flush that failed; its records stay pending.
#[derive(Debug)]
pub struct WriteError {
    pub error: io::Error,
    /// What the same call did write before failing (ring mode: a write
    /// that landed, then the next one failed). Boxed: errors are rare and
    /// the report is large.
    pub written: Box<WriteReport>,
    pub pending_records: u64,
    /// ENOSPC / EDQUOT / EFBIG: retried every `disk_full_retry`.
    pub disk_full: bool,
}

/// What start-up found of this core's previous run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The previous run did not stop cleanly (marker left, or a torn file).
    pub unclean: bool,
    /// What the previous run wrote into its marker (`pid N started STAMP`).
    pub previous_run: Option<String>,
    /// Files whose partial last line was cut off.
    pub torn_files: Vec<String>,
    pub torn_bytes: u64,
    pub torn_lines: u64,
    /// Newest file of this core before this run.
    pub last_file: Option<String>,
    /// Receive time (ms) of the last complete line of `last_file`.
    pub last_ts_ms: Option<u64>,
    /// Another live process holds this core's marker: nothing was checked.
    pub skipped_busy: bool,
    /// Zero padding of an unfinished O_DIRECT file, cut off (not a loss).
    pub padding_bytes: u64,
}

/// Dropped records of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DropGap {
    venue: VenueId,
    data_type: DataType,
    symbol: String,
    reason: &'static str,
    count: u64,
    from_ts_ms: u64,
    to_ts_ms: u64,
    from_id: Option<String>,
    to_id: Option<String>,
}

/// This core's run marker, locked (`flock`) for as long as the sink lives.
struct Marker {
    file: File,
    path: PathBuf,
}

/// A record's line kind in ring mode: venue × data type.
#[inline]
fn line_kind(rec: &Record<'_>) -> u16 {
    (rec.venue().index() * DataType::COUNT + rec.data_type().index()) as u16
}

fn disk_full_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG)
    ) || matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
    )
}

impl FileSink {
    /// Opens the core's sink: takes its run marker, repairs what a previous
    /// run left torn, and queues a `crash_recovery` gap record if that run
    /// did not stop cleanly. No output file is opened until data comes.
    pub fn open(plan: &FileSinkPlan, shard: usize) -> io::Result<FileSink> {
        std::fs::create_dir_all(&plan.path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create sink.path {}: {e}", plan.path.display()),
            )
        })?;
        let mut recovery = Recovery::default();
        let marker = match Marker::acquire(&plan.path, shard)? {
            Some((m, previous)) => {
                recovery.previous_run = previous;
                recover_files(&plan.path, shard, &mut recovery)?;
                recovery.unclean = recovery.previous_run.is_some() || recovery.torn_lines > 0;
                Some(m)
            }
            None => {
                // Someone else writes this core's files here: touching them
                // could cut a line they are writing right now.
                log::warn!(
                    "core {shard}: another running process holds {}; skipping crash recovery of its files",
                    plan.path.join(STATE_DIR).display()
                );
                recovery.skipped_busy = true;
                None
            }
        };
        let mut sink = FileSink {
            dir: plan.path.clone(),
            shard,
            max_bytes: plan.rotate_max_bytes,
            interval: plan.rotate_interval,
            file: None,
            path: PathBuf::new(),
            bytes_in_file: 0,
            opened_at: Instant::now(),
            seq: 0,
            pending: Vec::with_capacity(1 << 20),
            pending_records: 0,
            pending_counts: [[0; DataType::COUNT]; VenueId::COUNT],
            pending_gaps: 0,
            files_opened: 0,
            max_pending: DEFAULT_MAX_PENDING_BYTES,
            retry_every: DEFAULT_DISK_FULL_RETRY,
            failing: false,
            disk_full: None,
            torn: None,
            dropped: 0,
            gaps: Vec::new(),
            marker,
            recovery,
            ring: match plan.write_mode {
                WriteMode::Inline => None,
                WriteMode::Offload | WriteMode::Direct => Some(Ring {
                    writer: UringWriter::new(ring_mode(plan.write_mode), &plan.io_worker_cpus)?,
                    lines: Vec::new(),
                    flight: Vec::new(),
                    backlog: uring::MAX_BACKLOG,
                    waits: 0,
                }),
            },
            written_ns: Vec::new(),
        };
        match plan.write_mode {
            WriteMode::Inline => {}
            WriteMode::Offload => log::info!(
                "core {shard}: file sink writes {} through io_uring, copied by kernel workers on cpus {:?}",
                plan.path.display(),
                plan.io_worker_cpus
            ),
            WriteMode::Direct => log::info!(
                "core {shard}: file sink writes {} with O_DIRECT through io_uring",
                plan.path.display()
            ),
        }
        if sink.recovery.unclean {
            let r = &sink.recovery;
            log::warn!(
                "core {shard}: the previous run did not shut down cleanly ({}); its last unflushed batch is lost{}; a crash_recovery gap record opens this run's output",
                r.previous_run.as_deref().unwrap_or("no run marker"),
                if r.torn_lines > 0 {
                    format!(
                        ", and a torn last line ({} bytes) was cut from {}",
                        r.torn_bytes,
                        r.torn_files.join(", ")
                    )
                } else {
                    String::new()
                }
            );
            sink.queue_recovery_gap();
        }
        Ok(sink)
    }

    /// Memory for records the disk does not take, and the wait between
    /// attempts while it is full.
    pub fn set_limits(&mut self, max_pending_bytes: usize, disk_full_retry: Duration) {
        self.max_pending = max_pending_bytes;
        self.retry_every = disk_full_retry;
    }

    /// What start-up found of the previous run.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// Path of the file being written, if one is open.
    pub fn current_path(&self) -> Option<&Path> {
        self.file.as_ref().map(|_| self.path.as_path())
    }

    pub fn files_opened(&self) -> u64 {
        self.files_opened
    }

    /// The disk refused the last write (full, quota, file size limit).
    pub fn disk_full(&self) -> bool {
        self.disk_full.is_some()
    }

    /// Lines (records or gap records) wait to be written.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || !self.gaps.is_empty() || self.in_flight()
    }

    /// Ring mode: a write is with the ring.
    pub fn in_flight(&self) -> bool {
        self.ring.as_ref().is_some_and(|d| d.writer.in_flight())
    }

    /// Ring mode: flushes that waited for the write in flight (backlog full).
    pub fn device_waits(&self) -> u64 {
        self.ring.as_ref().map_or(0, |d| d.waits)
    }

    /// Ring mode (`sink.write_mode` offload or direct): records count as
    /// written when their write lands, not when the call returns.
    pub fn is_ring(&self) -> bool {
        self.ring.is_some()
    }

    /// Receive times of the records the last write call found written, in
    /// ring mode (inline they are the batch passed in).
    pub fn written_receive_ns(&self) -> &[u64] {
        &self.written_ns
    }

    /// Ring mode: notes the line just appended to `pending`.
    #[inline]
    fn note_line(&mut self, kind: u16, receive_ns: u64) {
        if let Some(d) = self.ring.as_mut() {
            d.lines.push(Line {
                end: self.pending.len(),
                kind,
                receive_ns,
            });
        }
    }

    pub fn pending_records(&self) -> u64 {
        self.pending_records
    }

    /// Records dropped since the last call.
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// With the memory limit reached by failed writes, once a retry is due:
    /// writes the backlog alone, so the next batch is admitted against an
    /// emptied buffer rather than dropped. Call before queueing a batch;
    /// `None`: nothing to do.
    pub fn catch_up(&mut self) -> Option<Result<WriteReport, WriteError>> {
        let due = self.failing
            && self.pending.len() >= self.max_pending
            && self.disk_full.is_none_or(|at| Instant::now() >= at);
        due.then(|| self.write_pending(false))
    }

    /// Encodes and writes every record of `batch` (after any pending bytes).
    pub fn write_batch(&mut self, batch: &Batch) -> Result<WriteReport, WriteError> {
        for rec in batch.iter() {
            if self.admit(rec) {
                encode_record(&mut self.pending, rec);
                self.note_line(line_kind(rec), rec.receive_ts_ns());
            }
        }
        self.write_pending(false)
    }

    /// Queues `rec`, already encoded as JSON (no newline) for another sink;
    /// [`FileSink::write_queued`] writes it.
    pub fn push_encoded(&mut self, rec: &Record<'_>, json: &[u8]) {
        if self.admit(rec) {
            self.pending.extend_from_slice(json);
            self.pending.push(b'\n');
            self.note_line(line_kind(rec), rec.receive_ts_ns());
        }
    }

    /// Writes what [`FileSink::push_encoded`] queued (and anything pending).
    pub fn write_queued(&mut self) -> Result<WriteReport, WriteError> {
        self.write_pending(false)
    }

    /// Ring mode: counts the write in flight if its completion is already
    /// posted (no syscall to look) and starts the next one.
    pub fn collect_landed(&mut self) -> Result<WriteReport, WriteError> {
        if !self.in_flight() {
            return Ok(WriteReport::default());
        }
        self.write_ring(false, false)
    }

    /// Room for `rec`? Counts it if so, else counts the drop for its gap.
    #[inline]
    fn admit(&mut self, rec: &Record<'_>) -> bool {
        // The limit only binds while writes fail: a healthy flush of any
        // size goes through.
        if self.failing && self.pending.len() >= self.max_pending {
            self.note_drop(rec);
            return false;
        }
        if !self.gaps.is_empty() {
            // The drops came before this record: describe them first.
            self.queue_drop_gaps();
        }
        self.pending_records += 1;
        self.pending_counts[rec.venue().index()][rec.data_type().index()] += 1;
        true
    }

    /// Drop path only (may allocate).
    #[cold]
    fn note_drop(&mut self, rec: &Record<'_>) {
        self.dropped += 1;
        let o = rec.origin();
        let dt = rec.data_type();
        let ms = o.receive_ts_ns / 1_000_000;
        let id = match rec {
            Record::Trade(t) => Some(match t.trade_id {
                TradeId::Num(n) => n.to_string(),
                TradeId::Str(s) => s.to_string(),
            }),
            Record::Book(b) => Some(b.last_update_id.to_string()),
            _ => None,
        };
        let reason = if self.disk_full.is_some() {
            "disk_full"
        } else {
            "file_sink_error"
        };
        match self
            .gaps
            .iter_mut()
            .find(|g| g.venue == o.venue && g.data_type == dt && g.symbol == o.symbol)
        {
            Some(g) => {
                g.count += 1;
                g.to_ts_ms = ms;
                if id.is_some() {
                    g.to_id = id;
                }
            }
            None => self.gaps.push(DropGap {
                venue: o.venue,
                data_type: dt,
                symbol: o.symbol.to_string(),
                reason,
                count: 1,
                from_ts_ms: ms,
                to_ts_ms: ms,
                from_id: id.clone(),
                to_id: id,
            }),
        }
    }

    /// One `gap` line per stream that lost records (same fields as the
    /// message sink's gap records, `reason` `disk_full` or `file_sink_error`).
    fn queue_drop_gaps(&mut self) {
        for g in std::mem::take(&mut self.gaps) {
            let o = &mut self.pending;
            o.extend_from_slice(b"{\"data_type\":\"gap\",\"exchange\":");
            json_str(o, g.venue.exchange());
            o.extend_from_slice(b",\"market_type\":");
            json_str(o, g.venue.market_type_of(g.data_type));
            o.extend_from_slice(b",\"symbol\":");
            json_str(o, &g.symbol);
            o.extend_from_slice(b",\"channel\":");
            json_str(o, g.data_type.name());
            o.extend_from_slice(b",\"reason\":");
            json_str(o, g.reason);
            o.extend_from_slice(b",\"lost\":");
            push_u64(o, g.count);
            o.extend_from_slice(b",\"from_ts_ms\":");
            push_u64(o, g.from_ts_ms);
            o.extend_from_slice(b",\"to_ts_ms\":");
            push_u64(o, g.to_ts_ms);
            if let (Some(a), Some(b)) = (&g.from_id, &g.to_id) {
                o.extend_from_slice(b",\"from_id\":");
                json_str(o, a);
                o.extend_from_slice(b",\"to_id\":");
                json_str(o, b);
            }
            o.extend_from_slice(b",\"filled\":false,\"ts_ms\":");
            push_u64(o, g.to_ts_ms);
            o.extend_from_slice(b",\"data_source\":\"marketprism\"}\n");
            self.pending_gaps += 1;
            self.note_line(GAP_LINE, 0);
        }
    }

    /// The record that says the previous run died: which file lost its
    /// torn tail (or where the run stopped), bytes and lines cut, and the
    /// window of the loss (last surviving receive time → this start).
    /// The loss covers every stream of the core, hence `"*"`.
    fn queue_recovery_gap(&mut self) {
        let now = crate::sys::now_ms();
        let r = &self.recovery;
        let o = &mut self.pending;
        o.extend_from_slice(
            b"{\"data_type\":\"gap\",\"exchange\":\"*\",\"market_type\":\"*\",\"symbol\":\"*\",\
              \"channel\":\"*\",\"reason\":\"crash_recovery\",\"core\":",
        );
        push_u64(o, self.shard as u64);
        o.extend_from_slice(b",\"file\":");
        match r.torn_files.last().or(r.last_file.as_ref()) {
            Some(f) => json_str(o, f),
            None => o.extend_from_slice(b"null"),
        }
        o.extend_from_slice(b",\"dropped_bytes\":");
        push_u64(o, r.torn_bytes);
        o.extend_from_slice(b",\"dropped_lines\":");
        push_u64(o, r.torn_lines);
        o.extend_from_slice(b",\"previous_run\":");
        match &r.previous_run {
            Some(p) => json_str(o, p),
            None => o.extend_from_slice(b"null"),
        }
        if let Some(t) = r.last_ts_ms {
            o.extend_from_slice(b",\"from_ts_ms\":");
            push_u64(o, t);
        }
        o.extend_from_slice(b",\"to_ts_ms\":");
        push_u64(o, now);
        o.extend_from_slice(b",\"filled\":false,\"ts_ms\":");
        push_u64(o, now);
        o.extend_from_slice(b",\"data_source\":\"marketprism\"}\n");
        self.pending_gaps += 1;
        self.note_line(GAP_LINE, 0);
    }

    /// Writes everything pending, whole lines only. `force`: ignore the
    /// disk-full wait (shutdown).
    fn write_pending(&mut self, force: bool) -> Result<WriteReport, WriteError> {
        if self.ring.is_some() {
            return self.write_ring(force, true);
        }
        if !self.gaps.is_empty() && !self.failing {
            self.queue_drop_gaps();
        }
        if self.pending.is_empty() {
            return Ok(WriteReport::default());
        }
        if let Some(at) = self.disk_full {
            if !force && Instant::now() < at {
                return Ok(WriteReport::default());
            }
        }
        if let Some((path, len)) = self.torn.take() {
            let cut = OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(len));
            if let Err(e) = cut {
                self.torn = Some((path, len));
                return Err(self.failed(e));
            }
        }
        let mut report = WriteReport::default();
        if self.needs_rotation() {
            if let Err(error) = self.rotate() {
                return Err(self.failed(error));
            }
            report.rotated = true;
        }
        let Some(file) = self.file.as_mut() else {
            return Err(self.failed(io::Error::other("no file open")));
        };
        let mut written = 0;
        let error = loop {
            if written == self.pending.len() {
                break None;
            }
            match write_some(file, &self.pending[written..]) {
                Ok(0) => {
                    break Some(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "file accepted no bytes",
                    ))
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(e),
            }
        };
        if let Some(e) = error {
            // Cut a partial write back off: the file keeps whole lines only
            // and every pending byte is retried, in order.
            if written > 0 {
                if let Err(t) = file.set_len(self.bytes_in_file) {
                    log::error!(
                        "cannot cut a partial write off {}: {t}; retrying before the next write",
                        self.path.display()
                    );
                    self.torn = Some((self.path.clone(), self.bytes_in_file));
                    self.file = None;
                }
            }
            return Err(self.failed(e));
        }
        self.bytes_in_file += written as u64;
        report.bytes = written as u64;
        report.records = std::mem::take(&mut self.pending_records);
        report.written = std::mem::take(&mut self.pending_counts);
        report.gaps = std::mem::take(&mut self.pending_gaps);
        report.resumed = self.failing;
        self.failing = false;
        self.disk_full = None;
        self.pending.clear();
        if self.pending.capacity() > 8 << 20 {
            // A long outage grew the buffer: give the memory back.
            self.pending = Vec::with_capacity(1 << 20);
        }
        Ok(report)
    }

    /// Ring mode: collects the write in flight if it finished (`force`:
    /// waits for it) and hands what is pending to the ring when it is
    /// free. `force` (shutdown) repeats until nothing is pending.
    fn write_ring(&mut self, force: bool, enter: bool) -> Result<WriteReport, WriteError> {
        let mut report = WriteReport::default();
        self.written_ns.clear();
        loop {
            let Some(d) = self.ring.as_mut() else {
                unreachable!("ring mode")
            };
            // A full backlog waits for the device (backpressure).
            let wait = force || (d.writer.in_flight() && self.pending.len() >= d.backlog);
            if wait && !force {
                d.waits += 1;
            }
            match d.writer.reap_with(wait, enter) {
                Some(Ok(n)) => {
                    self.bytes_in_file += n as u64;
                    report.bytes += n as u64;
                    // Taken and put back emptied: its capacity is reused.
                    let mut flight = std::mem::take(&mut d.flight);
                    for l in flight.drain(..) {
                        if l.kind == GAP_LINE {
                            report.gaps += 1;
                            self.pending_gaps -= 1;
                        } else {
                            let (v, t) = (
                                l.kind as usize / DataType::COUNT,
                                l.kind as usize % DataType::COUNT,
                            );
                            report.records += 1;
                            report.written[v][t] += 1;
                            self.pending_records -= 1;
                            self.pending_counts[v][t] -= 1;
                            self.written_ns.push(l.receive_ns);
                        }
                    }
                    if let Some(d) = self.ring.as_mut() {
                        d.flight = flight;
                    }
                    if self.pending.capacity() > uring::SHRINK_ABOVE && self.pending.len() < 1 << 20
                    {
                        self.pending.shrink_to(1 << 20);
                    }
                    report.resumed |= self.failing;
                    self.failing = false;
                    self.disk_full = None;
                }
                Some(Err(e)) => {
                    // Back in front of what came since, in order; retried
                    // from the same block.
                    let data = d.writer.last_data();
                    let n = data.len();
                    self.pending.splice(0..0, data.iter().copied());
                    for l in &mut d.lines {
                        l.end += n;
                    }
                    let flight = d.flight.drain(..);
                    d.lines.splice(0..0, flight);
                    let mut err = self.failed(e);
                    err.written = Box::new(report);
                    return Err(err);
                }
                None => {}
            }
            if self.in_flight() {
                if force {
                    let mut err = self.failed(io::Error::other(
                        "a file write did not finish (io_uring wait failed)",
                    ));
                    err.written = Box::new(report);
                    return Err(err);
                }
                return Ok(report);
            }
            if !self.gaps.is_empty() && !self.failing {
                self.queue_drop_gaps();
            }
            if self.pending.is_empty() {
                return Ok(report);
            }
            if let Some(at) = self.disk_full {
                if !force && Instant::now() < at {
                    return Ok(report);
                }
            }
            if self.needs_rotation() {
                if let Err(error) = self.rotate() {
                    let mut err = self.failed(error);
                    err.written = Box::new(report);
                    return Err(err);
                }
                report.rotated = true;
            }
            // Whole lines, at most `MAX_WRITE` unless one line is longer.
            let Some(d) = self.ring.as_mut() else {
                unreachable!("ring mode")
            };
            let k = match d.lines.iter().position(|l| l.end > uring::MAX_WRITE) {
                Some(0) => 1,
                Some(k) => k,
                None => d.lines.len(),
            };
            let n = d.lines[k - 1].end;
            let Some(file) = self.file.as_ref() else {
                let mut err = self.failed(io::Error::other("no file open"));
                err.written = Box::new(report);
                return Err(err);
            };
            // The bytes live in the writer's buffer until the write lands.
            if let Err(e) = d
                .writer
                .submit(file, self.bytes_in_file, &mut self.pending, n)
            {
                let mut err = self.failed(e);
                err.written = Box::new(report);
                return Err(err);
            }
            if k == d.lines.len() {
                std::mem::swap(&mut d.flight, &mut d.lines);
                d.lines.clear();
            } else {
                d.flight.extend(d.lines.drain(..k));
                for l in &mut d.lines {
                    l.end -= n;
                }
            }
            if !force {
                return Ok(report);
            }
        }
    }

    fn failed(&mut self, error: io::Error) -> WriteError {
        self.failing = true;
        let full = disk_full_error(&error);
        if full {
            self.disk_full = Some(Instant::now() + self.retry_every);
            // A file at its size limit: the next attempt starts a new one.
            if error.kind() == io::ErrorKind::FileTooLarge && self.bytes_in_file > 0 {
                self.finish_file();
            }
        } else {
            self.disk_full = None;
        }
        WriteError {
            error,
            written: Box::default(),
            pending_records: self.pending_records,
            disk_full: full,
        }
    }

    /// No file yet, or what is pending would pass the size limit, or the
    /// file is old enough.
    fn needs_rotation(&self) -> bool {
        match self.file {
            None => true,
            Some(_) => {
                (self.bytes_in_file > 0
                    && self.bytes_in_file + self.pending.len() as u64 > self.max_bytes)
                    || self.opened_at.elapsed() >= self.interval
            }
        }
    }

    /// Closes the current file (rotation): its O_DIRECT padding is cut off.
    fn finish_file(&mut self) {
        if let Some(f) = self.file.take() {
            if self.ring.is_some() {
                if let Err(e) = f.set_len(self.bytes_in_file) {
                    // Recovery at the next start cuts it instead.
                    log::warn!(
                        "cannot cut the O_DIRECT padding off {}: {e}",
                        self.path.display()
                    );
                }
            }
            // Best effort: the data is in the page cache (or on the device).
            let _ = f.sync_data();
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.finish_file();
        let stamp = utc_stamp(std::time::SystemTime::now());
        loop {
            self.seq += 1;
            let path = self.dir.join(format!(
                "core{:02}-{}-{:04}.jsonl",
                self.shard, stamp, self.seq
            ));
            let opened = match self.ring.as_mut() {
                Some(d) => {
                    d.writer.start_file();
                    uring::create(&path, d.writer.mode())
                }
                None => OpenOptions::new().append(true).create_new(true).open(&path),
            };
            match opened {
                Ok(f) => {
                    self.file = Some(f);
                    self.path = path;
                    self.bytes_in_file = 0;
                    self.opened_at = Instant::now();
                    self.files_opened += 1;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot create {}: {e}", path.display()),
                    ))
                }
            }
        }
    }

    /// Clean shutdown: writes what is pending (now, whatever the disk-full
    /// wait), syncs the file and removes the run marker. On error nothing
    /// is lost yet: pending lines stay for another attempt.
    pub fn close(&mut self) -> Result<WriteReport, WriteError> {
        let mut report = self.write_pending(true)?;
        if self.has_pending() {
            // Gap lines for drops, queued once the backlog went out.
            report.merge(self.write_pending(true)?);
        }
        if let Some(f) = self.file.take() {
            if self.ring.is_some() {
                f.set_len(self.bytes_in_file).map_err(|error| WriteError {
                    error,
                    written: Box::new(report),
                    pending_records: 0,
                    disk_full: false,
                })?;
            }
            f.sync_all().map_err(|error| WriteError {
                error,
                written: Box::new(report),
                pending_records: 0,
                disk_full: false,
            })?;
        }
        if let Some(m) = self.marker.take() {
            m.release();
        }
        Ok(report)
    }

    /// Gives up a sink that never wrote (file sink turned off): its marker
    /// goes, nothing else is touched.
    pub fn abandon(mut self) {
        if let Some(m) = self.marker.take() {
            m.release();
        }
    }
}

impl WriteReport {
    fn merge(&mut self, o: WriteReport) {
        self.bytes += o.bytes;
        self.records += o.records;
        for (a, b) in self.written.iter_mut().zip(o.written) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.gaps += o.gaps;
        self.rotated |= o.rotated;
        self.resumed |= o.resumed;
    }
}

impl Marker {
    /// Creates and locks `.marketprism/coreNN.run`, returning what a previous
    /// run left in it. `Ok(None)`: a live process holds it.
    fn acquire(dir: &Path, shard: usize) -> io::Result<Option<(Marker, Option<String>)>> {
        use std::os::fd::AsRawFd;
        let state = dir.join(STATE_DIR);
        let path = state.join(format!("core{shard:02}.run"));
        let ctx =
            |e: io::Error| io::Error::new(e.kind(), format!("run marker {}: {e}", path.display()));
        for _ in 0..10 {
            std::fs::create_dir_all(&state).map_err(ctx)?;
            let file = match OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
            {
                Ok(f) => f,
                // Another core's clean close removed the directory: again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ctx(e)),
            };
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                    return Ok(None);
                }
                return Err(ctx(e));
            }
            // The holder before us may have removed it after our open.
            let ours = file.metadata().map_err(ctx)?;
            match std::fs::metadata(&path) {
                Ok(m) if m.ino() == ours.ino() && m.dev() == ours.dev() => {}
                _ => continue,
            }
            let mut buf = [0u8; 512];
            let n = file.read_at(&mut buf, 0).map_err(ctx)?;
            let text = String::from_utf8_lossy(&buf[..n]).trim().to_string();
            let previous = (!text.is_empty()).then_some(text);
            file.set_len(0).map_err(ctx)?;
            let line = format!(
                "pid {} started {}\n",
                std::process::id(),
                utc_stamp(std::time::SystemTime::now())
            );
            match file.write_all_at(line.as_bytes(), 0) {
                Ok(()) => {
                    let _ = file.sync_data();
                }
                Err(e) => log::warn!(
                    "cannot write {}: {e}; if this run dies, the next start will not know",
                    path.display()
                ),
            }
            return Ok(Some((Marker { file, path }, previous)));
        }
        Err(ctx(io::Error::other("keeps disappearing")))
    }

    /// Clean stop: the next start finds no marker.
    fn release(self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(state) = self.path.parent() {
            // Only succeeds once every core's marker is gone.
            let _ = std::fs::remove_dir(state);
        }
        drop(self.file);
    }
}

/// Sort key of an output file name `coreNN-STAMP-SEQ.jsonl` (run, then seq).
fn file_order(name: &str) -> (String, u64) {
    let stem = name.strip_suffix(".jsonl").unwrap_or(name);
    match stem.rsplit_once('-') {
        Some((head, seq)) => (head.to_string(), seq.parse().unwrap_or(0)),
        None => (stem.to_string(), 0),
    }
}

/// Cuts the partial last line (a write `kill -9` interrupted) off this
/// core's files, and finds where the previous run stopped.
fn recover_files(dir: &Path, shard: usize, r: &mut Recovery) -> io::Result<()> {
    let prefix = format!("core{shard:02}-");
    let mut names: Vec<String> = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if name.starts_with(&prefix) && name.ends_with(".jsonl") && e.file_type()?.is_file() {
            names.push(name);
        }
    }
    names.sort_by_cached_key(|n| file_order(n));
    for name in &names {
        let path = dir.join(name);
        let ctx = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("crash recovery of {}: {e}", path.display()),
            )
        };
        // Read-only first: whole files (maybe archived read-only) stay untouched.
        let f = File::open(&path).map_err(ctx)?;
        let len = f.metadata().map_err(ctx)?.len();
        if len == 0 {
            continue;
        }
        let mut last = [0u8];
        f.read_exact_at(&mut last, len - 1).map_err(ctx)?;
        if last[0] == b'\n' {
            continue;
        }
        // An O_DIRECT file the run did not close ends in zero padding;
        // under it the data may still end mid-line.
        let data_end = if last[0] == 0 {
            let end = end_after_last(&f, len, |b| b != 0).map_err(ctx)?;
            r.padding_bytes += len - end;
            end
        } else {
            len
        };
        let torn = if last[0] != 0 {
            true
        } else if data_end == 0 {
            false
        } else {
            f.read_exact_at(&mut last, data_end - 1).map_err(ctx)?;
            last[0] != b'\n'
        };
        let keep = if torn {
            end_after_last(&f, data_end, |b| b == b'\n').map_err(ctx)?
        } else {
            data_end
        };
        let w = OpenOptions::new().write(true).open(&path).map_err(ctx)?;
        w.set_len(keep).map_err(ctx)?;
        let _ = w.sync_data();
        if torn {
            r.torn_files.push(name.clone());
            r.torn_bytes += data_end - keep;
            r.torn_lines += 1;
        }
    }
    if let Some(name) = names.last() {
        r.last_file = Some(name.clone());
        r.last_ts_ms = last_line_ts_ms(&dir.join(name)).unwrap_or(None);
    }
    Ok(())
}

/// Offset just past the last byte of the first `len` bytes that `hit`
/// accepts (0: none), read backwards in 64 KiB chunks: the last `\n`, or
/// the end of the data under O_DIRECT zero padding.
fn end_after_last(f: &File, len: u64, hit: impl Fn(u8) -> bool) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 << 10];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        f.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|&b| hit(b)) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Receive time (ms) of a file's last line: `receive_ts_ns`, or `ts_ms`
/// for a gap line. `None` if the line is unusually long or has neither.
fn last_line_ts_ms(path: &Path) -> io::Result<Option<u64>> {
    const TAIL: u64 = 256 << 10;
    let f = File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(TAIL);
    let mut buf = vec![0u8; (len - start) as usize];
    f.read_exact_at(&mut buf, start)?;
    let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
    let line = match body.iter().rposition(|&b| b == b'\n') {
        Some(i) => &body[i + 1..],
        None if start == 0 => body,
        None => return Ok(None),
    };
    let number_after = |key: &[u8]| -> Option<u64> {
        let at = line.windows(key.len()).position(|w| w == key)? + key.len();
        let digits = line[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        std::str::from_utf8(&line[at..at + digits])
            .ok()?
            .parse()
            .ok()
    };
    Ok(number_after(b"\"receive_ts_ns\":")
        .map(|ns| ns / 1_000_000)
        .or_else(|| number_after(b"\"ts_ms\":")))
}

/// `YYYYMMDDTHHMMSSZ` for file names.
fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, mo, d, h, mi, s) = crate::sys::civil_utc(secs);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// One `write(2)`. Tests can make the disk take only so many more bytes and
/// then fail with an errno, exactly like a filling disk.
fn write_some(file: &mut File, buf: &[u8]) -> io::Result<usize> {
    #[cfg(test)]
    if let Some((room, errno)) = fault::ROOM.with(|r| r.get()) {
        if room == 0 {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let n = file.write(&buf[..buf.len().min(room)])?;
        fault::ROOM.with(|r| r.set(Some((room - n, errno))));
        return Ok(n);
    }
    file.write(buf)
}

#[cfg(test)]
pub(crate) mod fault {
    use std::cell::Cell;
    thread_local! {
        /// (bytes the disk still takes, errno after that); per test thread.
        pub static ROOM: Cell<Option<(usize, i32)>> = const { Cell::new(None) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Record, Trade, TradeId};
    use crate::model::{Side, VenueId};
    use rust_decimal::Decimal;
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
        let mut sink =
            FileSink::open(&ring_plan(dir.path(), 1 << 40, WriteMode::Offload), 0).unwrap();
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
        let mut sink =
            FileSink::open(&ring_plan(dir.path(), 1 << 30, WriteMode::Offload), 0).unwrap();
        assert_eq!(sink.collect_landed().unwrap(), WriteReport::default());
        assert_eq!(sink.write_batch(&batch_of(4, 0)).unwrap().records, 0);
        // Queued behind the write in flight.
        assert_eq!(sink.write_batch(&batch_of(2, 4)).unwrap().records, 0);
        let mut total = WriteReport::default();
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
}
