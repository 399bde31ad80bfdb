//! `--send-log`: when each paced Binance spot trade left the mock, for the
//! latency benchmarks. One [`SendStamp`] per symbol per chunk, stamped after
//! the chunk's flush on the collector's clock (`CLOCK_REALTIME` ns): a frame's
//! latency is its record's `receive_ts_ns` minus this stamp.

use std::io::Write;

/// Bytes of one stamp in the file: four little-endian u64.
pub const STAMP_BYTES: usize = 32;

/// Trades `first..=last` of symbol `symbol` (index in the mock's symbol
/// list) left in a chunk whose flush ended at `sent_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendStamp {
    pub symbol: u64,
    pub first: u64,
    pub last: u64,
    pub sent_ns: u64,
}

impl SendStamp {
    fn encode(&self, out: &mut [u8]) {
        for (i, v) in [self.symbol, self.first, self.last, self.sent_ns]
            .iter()
            .enumerate()
        {
            out[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
    }

    /// Every whole stamp in `bytes` (a trailing partial one is ignored).
    pub fn decode_all(bytes: &[u8]) -> Vec<SendStamp> {
        bytes
            .chunks_exact(STAMP_BYTES)
            .map(|c| {
                let u = |i: usize| u64::from_le_bytes(c[i * 8..i * 8 + 8].try_into().unwrap());
                SendStamp {
                    symbol: u(0),
                    first: u(1),
                    last: u(2),
                    sent_ns: u(3),
                }
            })
            .collect()
    }
}

/// Per-chunk id ranges collected before the write, stamped after it.
#[derive(Default)]
pub(crate) struct Pending {
    /// (symbol index, first id, last id).
    ranges: Vec<(u64, u64, u64)>,
}

impl Pending {
    /// Remembers each subscription's next id before the chunk is filled.
    pub fn before(&mut self, subs: impl Iterator<Item = (usize, u64)>) {
        self.ranges.clear();
        self.ranges
            .extend(subs.map(|(i, next)| (i as u64, next, next)));
    }

    /// Turns the remembered ids into the ranges the chunk carried
    /// (subscriptions in the same order as [`before`](Self::before)).
    pub fn after(&mut self, subs: impl Iterator<Item = u64>) {
        for (r, next) in self.ranges.iter_mut().zip(subs) {
            r.2 = next;
        }
        // `last` held the next id after the fill: empty ranges dropped.
        self.ranges.retain(|r| r.2 > r.1);
    }

    /// Stamps the ranges now (call after the flush) into `file`, in one
    /// write. A failed write is the benchmark's to notice (missing stamps).
    pub fn stamp(&mut self, file: &std::fs::File) {
        if self.ranges.is_empty() {
            return;
        }
        let now = crate::sys::now_ns();
        let mut buf = [0u8; STAMP_BYTES * 16];
        for part in self.ranges.chunks(16) {
            for (k, &(symbol, first, next)) in part.iter().enumerate() {
                SendStamp {
                    symbol,
                    first,
                    last: next - 1,
                    sent_ns: now,
                }
                .encode(&mut buf[k * STAMP_BYTES..(k + 1) * STAMP_BYTES]);
            }
            let _ = (&*file).write_all(&buf[..part.len() * STAMP_BYTES]);
        }
        self.ranges.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_skip_empty_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let file = std::fs::File::create(&path).unwrap();
        let mut p = Pending::default();
        p.before([(0, 5), (1, 9), (2, 3)].into_iter());
        p.after([8, 9, 4].into_iter());
        let t0 = crate::sys::now_ns();
        p.stamp(&file);
        let got = SendStamp::decode_all(&std::fs::read(&path).unwrap());
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].symbol, got[0].first, got[0].last), (0, 5, 7));
        assert_eq!((got[1].symbol, got[1].first, got[1].last), (2, 3, 3));
        assert_eq!(got[0].sent_ns, got[1].sent_ns);
        assert!(got[0].sent_ns >= t0);
        // Nothing pending: nothing written.
        p.stamp(&file);
        assert_eq!(std::fs::read(&path).unwrap().len(), 2 * STAMP_BYTES);
    }
}
