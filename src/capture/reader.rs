//! Reads raw captures back in receive order across all cores' files.

use super::MAGIC;
use crate::model::VenueId;
use crate::venue::InstrumentMap;
use flate2::read::MultiGzDecoder;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

/// One recorded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub receive_ns: u64,
    pub conn_id: usize,
    pub venue: VenueId,
    pub binary: bool,
    pub payload: Vec<u8>,
}

struct Source {
    name: String,
    rd: BufReader<MultiGzDecoder<std::fs::File>>,
    next: Option<RawFrame>,
}

impl Source {
    fn advance(&mut self) -> io::Result<()> {
        self.next = read_frame(&mut self.rd, &self.name)?;
        Ok(())
    }
}

/// Merges every `*.raw.gz` of a directory by receive time (ties: file order).
pub struct RawReader {
    sources: Vec<Source>,
}

impl RawReader {
    pub fn open(dir: &Path) -> io::Result<RawReader> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".raw.gz"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no *.raw.gz captures in {}", dir.display()),
            ));
        }
        let mut sources = Vec::new();
        for f in files {
            let name = f.display().to_string();
            let mut rd = BufReader::new(MultiGzDecoder::new(std::fs::File::open(&f)?));
            let mut first = String::new();
            rd.read_line(&mut first)?;
            if !first.starts_with(MAGIC) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{name}: not a marketprism raw capture"),
                ));
            }
            let mut s = Source {
                name,
                rd,
                next: None,
            };
            s.advance()?;
            sources.push(s);
        }
        Ok(RawReader { sources })
    }

    /// Next frame in receive order, `None` at the end of every file.
    pub fn next_frame(&mut self) -> io::Result<Option<RawFrame>> {
        let mut best: Option<usize> = None;
        for (i, s) in self.sources.iter().enumerate() {
            if let Some(f) = &s.next {
                if best.is_none_or(|b| {
                    self.sources[b]
                        .next
                        .as_ref()
                        .is_some_and(|bf| f.receive_ns < bf.receive_ns)
                }) {
                    best = Some(i);
                }
            }
        }
        let Some(i) = best else { return Ok(None) };
        let frame = self.sources[i].next.take();
        self.sources[i].advance()?;
        Ok(frame)
    }
}

fn bad(name: &str, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{name}: {what}"))
}

fn read_frame(rd: &mut impl BufRead, name: &str) -> io::Result<Option<RawFrame>> {
    let mut head = String::new();
    // A capture cut short by a crash ends in a partial gzip member or entry:
    // stop there rather than fail the whole replay.
    match rd.read_line(&mut head) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    if !head.ends_with('\n') {
        return Ok(None);
    }
    let parts: Vec<&str> = head.trim_end().split(' ').collect();
    let [ns, conn, venue, kind, len] = parts[..] else {
        return Err(bad(name, &format!("bad entry header {head:?}")));
    };
    let receive_ns = ns.parse().map_err(|_| bad(name, "bad receive time"))?;
    let conn_id = conn.parse().map_err(|_| bad(name, "bad connection id"))?;
    let venue = VenueId::from_config_key(venue)
        .ok_or_else(|| bad(name, &format!("unknown venue {venue}")))?;
    let len: usize = len.parse().map_err(|_| bad(name, "bad length"))?;
    if len > 64 << 20 {
        return Err(bad(name, "entry too large"));
    }
    let mut payload = vec![0u8; len + 1];
    match rd.read_exact(&mut payload) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    if payload.pop() != Some(b'\n') {
        return Err(bad(name, "entry not terminated"));
    }
    Ok(Some(RawFrame {
        receive_ns,
        conn_id,
        venue,
        binary: kind == "B",
        payload,
    }))
}

/// Loads `instruments-<venue>.tsv` written by the capture.
pub fn read_instruments(dir: &Path, venue: VenueId) -> io::Result<InstrumentMap> {
    let path = dir.join(format!("instruments-{}.tsv", venue.config_key()));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut map = InstrumentMap::default();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let [native, base, quote, trading] = f[..] else {
            return Err(bad(
                &path.display().to_string(),
                &format!("bad line {line:?}"),
            ));
        };
        map.insert(native, base, quote, trading == "true");
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::super::{FrameKind, RawWriter};
    use super::*;
    use std::time::Duration;

    #[test]
    fn round_trip_merges_cores_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = RawWriter::open(dir.path(), 0, 1 << 30, Duration::from_secs(3600)).unwrap();
        let mut b = RawWriter::open(dir.path(), 1, 1 << 30, Duration::from_secs(3600)).unwrap();
        a.record(10, 0, VenueId::BinanceSpot, FrameKind::Text, b"{\"a\":1}")
            .unwrap();
        b.record(15, 1, VenueId::BinanceSpot, FrameKind::Text, b"line\nbreak")
            .unwrap();
        a.record(
            20,
            0,
            VenueId::BinanceSpot,
            FrameKind::Binary,
            &[0xff, 0, 1],
        )
        .unwrap();
        b.record(20, 1, VenueId::BinanceSpot, FrameKind::Text, b"")
            .unwrap();
        a.flush().unwrap();
        a.close().unwrap();
        b.close().unwrap();
        let mut r = RawReader::open(dir.path()).unwrap();
        let mut got = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            got.push((f.receive_ns, f.conn_id, f.binary, f.payload));
        }
        assert_eq!(
            got,
            vec![
                (10, 0, false, b"{\"a\":1}".to_vec()),
                (15, 1, false, b"line\nbreak".to_vec()),
                (20, 0, true, vec![0xff, 0, 1]),
                (20, 1, false, vec![]),
            ]
        );
    }

    #[test]
    fn instruments_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = InstrumentMap::default();
        m.insert("BTCUSDT", "BTC", "USDT", true);
        m.insert("LUNAUSDT", "LUNA", "USDT", false);
        super::super::write_instruments(dir.path(), VenueId::BinanceSpot, &m).unwrap();
        let back = read_instruments(dir.path(), VenueId::BinanceSpot).unwrap();
        assert_eq!(back.normalize("BTCUSDT"), Some("BTC-USDT"));
        assert!(!back.get("LUNAUSDT").unwrap().trading);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.raw.gz"), b"not gzip").unwrap();
        assert!(RawReader::open(dir.path()).is_err());
    }
}
