//! Per-core raw frame recorder (gzip, rotated like the file sink).

use super::{FrameKind, MAGIC};
use crate::json::push_u64;
use crate::model::VenueId;
use crate::venue::InstrumentMap;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct RawWriter {
    dir: PathBuf,
    shard: usize,
    max_bytes: u64,
    interval: Duration,
    enc: Option<GzEncoder<File>>,
    bytes_in_file: u64,
    opened_at: Instant,
    seq: u64,
    head: Vec<u8>,
    frames: u64,
}

impl RawWriter {
    pub fn open(
        dir: &Path,
        shard: usize,
        max_bytes: u64,
        interval: Duration,
    ) -> io::Result<RawWriter> {
        std::fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create raw capture dir {}: {e}", dir.display()),
            )
        })?;
        Ok(RawWriter {
            dir: dir.to_path_buf(),
            shard,
            max_bytes,
            interval,
            enc: None,
            bytes_in_file: 0,
            opened_at: Instant::now(),
            seq: 0,
            head: Vec::with_capacity(96),
            frames: 0,
        })
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    fn rotate(&mut self) -> io::Result<()> {
        if let Some(enc) = self.enc.take() {
            enc.finish()?.sync_data()?;
        }
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let (y, mo, d, h, mi, s) = crate::sys::civil_utc(secs);
        loop {
            self.seq += 1;
            let path = self.dir.join(format!(
                "core{:02}-{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z-{:04}.raw.gz",
                self.shard, self.seq
            ));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => {
                    let mut enc = GzEncoder::new(f, Compression::fast());
                    writeln!(enc, "{MAGIC} core={}", self.shard)?;
                    self.enc = Some(enc);
                    self.bytes_in_file = 0;
                    self.opened_at = Instant::now();
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Records one frame.
    pub fn record(
        &mut self,
        receive_ns: u64,
        conn_id: usize,
        venue: VenueId,
        kind: FrameKind,
        payload: &[u8],
    ) -> io::Result<()> {
        if self.enc.is_none()
            || self.bytes_in_file >= self.max_bytes
            || self.opened_at.elapsed() >= self.interval
        {
            self.rotate()?;
        }
        self.head.clear();
        push_u64(&mut self.head, receive_ns);
        self.head.push(b' ');
        push_u64(&mut self.head, conn_id as u64);
        self.head.push(b' ');
        self.head.extend_from_slice(venue.config_key().as_bytes());
        self.head.push(b' ');
        self.head.push(kind.tag());
        self.head.push(b' ');
        push_u64(&mut self.head, payload.len() as u64);
        self.head.push(b'\n');
        let Some(enc) = self.enc.as_mut() else {
            return Err(io::Error::other("no raw capture file open"));
        };
        enc.write_all(&self.head)?;
        enc.write_all(payload)?;
        enc.write_all(b"\n")?;
        self.bytes_in_file += (self.head.len() + payload.len() + 1) as u64;
        self.frames += 1;
        Ok(())
    }

    /// Makes everything recorded so far decodable on disk (gzip sync flush).
    pub fn flush(&mut self) -> io::Result<()> {
        match self.enc.as_mut() {
            Some(enc) => enc.flush(),
            None => Ok(()),
        }
    }

    /// Finishes the gzip stream and syncs the file.
    pub fn close(&mut self) -> io::Result<()> {
        if let Some(enc) = self.enc.take() {
            enc.finish()?.sync_all()?;
        }
        Ok(())
    }
}

/// Writes `instruments-<venue>.tsv` beside the captures (idempotent).
pub fn write_instruments(dir: &Path, venue: VenueId, map: &InstrumentMap) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut rows: Vec<String> = map
        .iter()
        .map(|i| format!("{}\t{}\t{}\t{}", i.native, i.base, i.quote, i.trading))
        .collect();
    rows.sort();
    let path = dir.join(format!("instruments-{}.tsv", venue.config_key()));
    let tmp = path.with_extension("tsv.tmp");
    std::fs::write(&tmp, rows.join("\n") + "\n")?;
    std::fs::rename(tmp, path)
}
