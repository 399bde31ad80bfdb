//! The file sink's configuration types: what `[sink]` plans for it. Owned
//! here so the sink needs nothing from `config`, which assembles them.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `sink.write_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// `write(2)` from the core: the core copies into the page cache.
    Inline,
    /// Buffered writes through the core's io_uring, copied into the page
    /// cache by kernel workers on `io_worker_cpus`.
    #[default]
    Offload,
    /// O_DIRECT through the core's io_uring: the device reads our buffer.
    /// Needs a filesystem that supports O_DIRECT; the live file ends in
    /// zero padding until closed.
    Direct,
}

/// `sink.max_pending_bytes`, `sink.disk_full_retry_ms`.
#[derive(Debug, Clone, Copy)]
pub struct FileLimits {
    pub max_pending_bytes: usize,
    pub disk_full_retry: Duration,
}

/// Where and how the file sink writes.
#[derive(Debug, Clone)]
pub struct FileSinkPlan {
    pub path: PathBuf,
    pub rotate_max_bytes: u64,
    pub rotate_interval: Duration,
    /// `write(2)`, or writes through the core's io_uring (see `sink::uring`).
    pub write_mode: WriteMode,
    /// Where the ring's kernel workers run (empty: wherever the shard's
    /// thread may, i.e. its own core).
    pub io_worker_cpus: Vec<usize>,
    /// `sink.io_worker_cpus` as written (`None`: the default was taken).
    pub io_worker_cpus_configured: Option<Vec<usize>>,
}
