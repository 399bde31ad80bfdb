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
//!
//! Overflow policy (the file sink's own, see [`crate::sink::overflow`] for the
//! asynchronous sinks'): memory up to `max_pending_bytes`, then drop with a
//! `gap` line; the disk itself is the spill.
//!
//! One job per file: this one holds the type, its limits and the calls a
//! core makes; `writer` the write modes (inline `write(2)`, io_uring offload
//! or O_DIRECT), `rotation` file naming and rotation, `recovery` the run
//! marker and crash repair at start-up, `gaps` the `gap` lines for records
//! dropped under the memory bound and for an unclean previous run.

mod gaps;
mod recovery;
mod rotation;
mod writer;

use super::encode::encode_record;
use super::file_config::FileSinkPlan;
use super::file_config::WriteMode;
#[cfg(test)]
pub(crate) use super::uring::fault;
use super::uring::{self, UringWriter};
use super::Sink;
use crate::batch::{Batch, Record};
use crate::metrics::CoreStats;
use crate::model::{DataType, VenueId};
use gaps::DropGap;
pub use recovery::Recovery;
use recovery::{recover_files, Marker};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use writer::{line_kind, ring_mode, Ring};
#[cfg(test)]
use {
    recovery::{file_order, last_line_ts_ms},
    rotation::utc_stamp,
};

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

/// The file sink as a core's [`Sink`]. Beside an asynchronous sink the
/// pipeline queues the lines it already encoded ([`FileSink::push_encoded`])
/// and writes them with [`FileSink::write_queued`] instead.
impl Sink for FileSink {
    type Report = Result<WriteReport, WriteError>;

    fn write(&mut self, batch: &Batch, _: &CoreStats) -> Self::Report {
        self.write_batch(batch)
    }

    /// Retries what is pending; in ring mode collects the write in flight
    /// and starts the next.
    fn poll(&mut self, _: &CoreStats) -> Self::Report {
        self.write_queued()
    }

    fn close(&mut self, _: &CoreStats) -> Self::Report {
        FileSink::close(self)
    }

    fn has_pending(&self) -> bool {
        FileSink::has_pending(self)
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

#[cfg(test)]
mod tests;
