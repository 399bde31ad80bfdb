//! Raw capture and replay: every received frame, with its local receive time
//! (ns) and connection id, recorded to per-core gzip files, and read back in
//! receive order so `marketprism replay` can feed the same parsers and sinks.
//!
//! File format (`coreNN-<UTC start>-<seq>.raw.gz`, gzip of):
//! ```text
//! #marketprism-raw v1 core=N
//! <receive_ns> <conn_id> <venue_key> <T|B> <len>\n<len payload bytes>\n
//! ...
//! ```
//! plus `instruments-<venue_key>.tsv` (native, base, quote, trading) written
//! at start, so a replay normalizes symbols exactly as the live run did.

pub mod reader;
pub mod writer;

pub use reader::{read_instruments, RawFrame, RawReader};
pub use writer::{write_instruments, RawWriter};

/// Frame kinds as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Text,
    Binary,
}

impl FrameKind {
    pub fn tag(self) -> u8 {
        match self {
            FrameKind::Text => b'T',
            FrameKind::Binary => b'B',
        }
    }
}

pub(crate) const MAGIC: &str = "#marketprism-raw v1";
