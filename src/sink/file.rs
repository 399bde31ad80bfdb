//! The embedded default sink: per core, JSON Lines files under `sink.path`,
//! rotated by size and age. Each batch is encoded into one buffer and written
//! with (usually) one `write(2)`.
//!
//! The write is a plain blocking syscall on the core's thread: appends land in
//! the page cache in microseconds, and one syscall per batch (not per record)
//! keeps it off the profile. A failed write keeps the encoded bytes and retries
//! them first at the next flush, so nothing already encoded is lost or reordered.

use super::encode::encode_record;
use crate::batch::Batch;
use crate::config::plan::FileSinkPlan;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Pending (unwritten) bytes beyond this are dropped and reported, so a dead
/// disk cannot grow memory without bound. (Spilling comes with the buffer work.)
const MAX_PENDING_BYTES: usize = 256 * 1024 * 1024;

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
    /// Encoded records not yet written (normally empty between flushes).
    pending: Vec<u8>,
    pending_records: u64,
    files_opened: u64,
}

/// What one flush did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteReport {
    pub bytes: u64,
    pub records: u64,
    pub rotated: bool,
}

/// A flush that failed; the records stay pending unless `dropped` says otherwise.
#[derive(Debug)]
pub struct WriteError {
    pub error: io::Error,
    pub pending_records: u64,
    pub dropped_records: u64,
}

impl FileSink {
    pub fn open(plan: &FileSinkPlan, shard: usize) -> io::Result<FileSink> {
        std::fs::create_dir_all(&plan.path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create sink.path {}: {e}", plan.path.display()),
            )
        })?;
        Ok(FileSink {
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
            files_opened: 0,
        })
    }

    /// Path of the file being written, if one is open.
    pub fn current_path(&self) -> Option<&Path> {
        self.file.as_ref().map(|_| self.path.as_path())
    }

    pub fn files_opened(&self) -> u64 {
        self.files_opened
    }

    /// Encodes and writes every record of `batch` (after any pending bytes).
    pub fn write_batch(&mut self, batch: &Batch) -> Result<WriteReport, WriteError> {
        for rec in batch.iter() {
            encode_record(&mut self.pending, rec);
        }
        self.pending_records += batch.len() as u64;
        self.write_pending()
    }

    /// Queues one record already encoded as JSON (no newline), for a caller
    /// that encoded it for another sink; [`FileSink::write_queued`] writes it.
    pub fn push_encoded(&mut self, json: &[u8]) {
        self.pending.extend_from_slice(json);
        self.pending.push(b'\n');
        self.pending_records += 1;
    }

    /// Writes what [`FileSink::push_encoded`] queued (and anything pending).
    pub fn write_queued(&mut self) -> Result<WriteReport, WriteError> {
        self.write_pending()
    }

    fn write_pending(&mut self) -> Result<WriteReport, WriteError> {
        if self.pending.is_empty() {
            return Ok(WriteReport::default());
        }
        let mut report = WriteReport::default();
        let needs_rotation = match self.file {
            None => true,
            Some(_) => {
                (self.bytes_in_file > 0
                    && self.bytes_in_file + self.pending.len() as u64 > self.max_bytes)
                    || self.opened_at.elapsed() >= self.interval
            }
        };
        if needs_rotation {
            if let Err(error) = self.rotate() {
                return Err(self.failed(error));
            }
            report.rotated = true;
        }
        let Some(file) = self.file.as_mut() else {
            return Err(self.failed(io::Error::other("no file open")));
        };
        let mut written = 0;
        while written < self.pending.len() {
            match file.write(&self.pending[written..]) {
                Ok(0) => {
                    self.pending.drain(..written);
                    self.bytes_in_file += written as u64;
                    return Err(self.failed(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "file accepted no bytes",
                    )));
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Keep what was not written, in order, for the next flush.
                    // A partial line already on disk would tear the file, so
                    // finish the current file here and continue in a new one.
                    let torn = written > 0 && self.pending[written - 1] != b'\n';
                    self.pending.drain(..written);
                    self.bytes_in_file += written as u64;
                    if torn {
                        self.file = None;
                    }
                    return Err(self.failed(e));
                }
            }
        }
        self.bytes_in_file += written as u64;
        report.bytes = written as u64;
        report.records = self.pending_records;
        self.pending.clear();
        self.pending_records = 0;
        Ok(report)
    }

    fn failed(&mut self, error: io::Error) -> WriteError {
        let mut dropped = 0;
        if self.pending.len() > MAX_PENDING_BYTES {
            dropped = self.pending_records;
            self.pending.clear();
            self.pending_records = 0;
        }
        WriteError {
            error,
            pending_records: self.pending_records,
            dropped_records: dropped,
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(f) = self.file.take() {
            // Best effort: the data is in the page cache either way.
            let _ = f.sync_data();
        }
        let stamp = utc_stamp(std::time::SystemTime::now());
        loop {
            self.seq += 1;
            let path = self.dir.join(format!(
                "core{:02}-{}-{:04}.jsonl",
                self.shard, stamp, self.seq
            ));
            match OpenOptions::new().append(true).create_new(true).open(&path) {
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

    /// Writes what is pending and syncs the current file (clean shutdown).
    pub fn close(&mut self) -> Result<(), WriteError> {
        self.write_pending()?;
        if let Some(f) = self.file.take() {
            f.sync_all().map_err(|error| WriteError {
                error,
                pending_records: 0,
                dropped_records: 0,
            })?;
        }
        Ok(())
    }
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
        }
    }

    fn read_ids(dir: &Path) -> (Vec<u64>, usize) {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
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
            sb.push_encoded(&buf);
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
        assert_eq!(err.dropped_records, 0);
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
}
