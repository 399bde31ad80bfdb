//! The write modes: `inline` (one `write(2)` per flush on the core's thread)
//! and the io_uring modes `offload` / `direct` (the write is submitted and
//! counted when it lands; see [`crate::sink::uring`]). Either way a file
//! holds whole lines only: a failed write is cut back and retried in order.

use super::{FileSink, WriteError, WriteReport};
use crate::batch::Record;
use crate::model::DataType;
use crate::sink::file_config::WriteMode;
use crate::sink::uring::{self, RingMode, UringWriter};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::time::Instant;

/// The ring's way of writing for a ring `sink.write_mode`.
pub(super) fn ring_mode(mode: WriteMode) -> RingMode {
    match mode {
        WriteMode::Direct => RingMode::Direct,
        WriteMode::Inline | WriteMode::Offload => RingMode::Offload,
    }
}

/// Ring-mode state: which lines `pending` and the write in flight hold,
/// so a write that lands counts exactly its own records.
pub(super) struct Ring {
    pub(super) writer: UringWriter,
    /// Lines of `pending`, in order.
    pub(super) lines: Vec<Line>,
    /// Lines of the write in flight (their bytes are in the writer's buffer).
    pub(super) flight: Vec<Line>,
    /// Pending bytes past which a flush waits for the device.
    pub(super) backlog: usize,
    /// Flushes that did.
    pub(super) waits: u64,
}

/// One line of `pending` in ring mode.
#[derive(Debug, Clone, Copy)]
pub(super) struct Line {
    /// Offset just past its `\n`, from the start of its buffer.
    pub(super) end: usize,
    /// `venue * DataType::COUNT + data_type`, or [`GAP_LINE`].
    pub(super) kind: u16,
    pub(super) receive_ns: u64,
}

pub(super) const GAP_LINE: u16 = u16::MAX;

/// A record's line kind in ring mode: venue × data type.
#[inline]
pub(super) fn line_kind(rec: &Record<'_>) -> u16 {
    (rec.venue().index() * DataType::COUNT + rec.data_type().index()) as u16
}

impl FileSink {
    /// Ring mode: notes the line just appended to `pending`.
    #[inline]
    pub(super) fn note_line(&mut self, kind: u16, receive_ns: u64) {
        if let Some(d) = self.ring.as_mut() {
            d.lines.push(Line {
                end: self.pending.len(),
                kind,
                receive_ns,
            });
        }
    }

    /// Writes everything pending, whole lines only. `force`: ignore the
    /// disk-full wait (shutdown).
    pub(super) fn write_pending(&mut self, force: bool) -> Result<WriteReport, WriteError> {
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
    pub(super) fn write_ring(
        &mut self,
        force: bool,
        enter: bool,
    ) -> Result<WriteReport, WriteError> {
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
}

/// One `write(2)`. Tests can make the disk take only so many more bytes and
/// then fail with an errno, exactly like a filling disk.
fn write_some(file: &mut File, buf: &[u8]) -> io::Result<usize> {
    #[cfg(test)]
    if let Some((room, errno)) = crate::sink::uring::fault::ROOM.with(|r| r.get()) {
        if room == 0 {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let n = file.write(&buf[..buf.len().min(room)])?;
        crate::sink::uring::fault::ROOM.with(|r| r.set(Some((room - n, errno))));
        return Ok(n);
    }
    file.write(buf)
}
