//! Start-up after a crash: the per-core run marker (`.marketprism/coreNN.run`,
//! locked while the sink lives, removed by a clean close) and the repair of
//! a torn last line or unfinished O_DIRECT padding in this core's files.

use super::rotation::utc_stamp;
use super::STATE_DIR;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

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

/// This core's run marker, locked (`flock`) for as long as the sink lives.
pub(super) struct Marker {
    file: File,
    path: PathBuf,
}

impl Marker {
    /// Creates and locks `.marketprism/coreNN.run`, returning what a previous
    /// run left in it. `Ok(None)`: a live process holds it.
    pub(super) fn acquire(
        dir: &Path,
        shard: usize,
    ) -> io::Result<Option<(Marker, Option<String>)>> {
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
    pub(super) fn release(self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(state) = self.path.parent() {
            // Only succeeds once every core's marker is gone.
            let _ = std::fs::remove_dir(state);
        }
        drop(self.file);
    }
}

/// Sort key of an output file name `coreNN-STAMP-SEQ.jsonl` (run, then seq).
pub(super) fn file_order(name: &str) -> (String, u64) {
    let stem = name.strip_suffix(".jsonl").unwrap_or(name);
    match stem.rsplit_once('-') {
        Some((head, seq)) => (head.to_string(), seq.parse().unwrap_or(0)),
        None => (stem.to_string(), 0),
    }
}

/// Cuts the partial last line (a write `kill -9` interrupted) off this
/// core's files, and finds where the previous run stopped.
pub(super) fn recover_files(dir: &Path, shard: usize, r: &mut Recovery) -> io::Result<()> {
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
pub(super) fn last_line_ts_ms(path: &Path) -> io::Result<Option<u64>> {
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
