//! Output files: `coreNN-STAMP-SEQ.jsonl`, a new one when the size or age
//! limit is reached (O_DIRECT padding cut off the one closed).

use super::FileSink;
use crate::sink::uring;
use std::fs::OpenOptions;
use std::io;
use std::time::Instant;

impl FileSink {
    /// No file yet, or what is pending would pass the size limit, or the
    /// file is old enough.
    pub(super) fn needs_rotation(&self) -> bool {
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
    pub(super) fn finish_file(&mut self) {
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

    pub(super) fn rotate(&mut self) -> io::Result<()> {
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
}

/// `YYYYMMDDTHHMMSSZ` for file names.
pub(super) fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, mo, d, h, mi, s) = crate::sys::civil_utc(secs);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}
