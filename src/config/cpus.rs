//! The CPUs this process may pin to, and those left for the file sink's
//! kernel workers.

/// CPUs this process's threads may be pinned to.
pub(super) fn allowed_cpus() -> Vec<usize> {
    crate::sys::pinnable_cpus()
}

/// The default `sink.io_worker_cpus`: the CPUs this process may use that
/// no shard is pinned to and the kernel does not isolate (isolated cores
/// are kept for latency-critical work); failing that, any not pinned to; none
/// if the shards take them all (the workers then share the shard's core).
pub(super) fn housekeeping_cpus(shard_cpus: &[usize]) -> Vec<usize> {
    let isolated = std::fs::read_to_string("/sys/devices/system/cpu/isolated")
        .ok()
        .and_then(|t| crate::sys::cpulist::parse(&t).ok())
        .unwrap_or_default();
    io_worker_default(&allowed_cpus(), shard_cpus, &isolated)
}

/// [`housekeeping_cpus`] from given lists (also `tune check`'s, on its tree).
pub fn io_worker_default(allowed: &[usize], shards: &[usize], isolated: &[usize]) -> Vec<usize> {
    let free: Vec<usize> = allowed
        .iter()
        .copied()
        .filter(|c| !shards.contains(c))
        .collect();
    let housekeeping: Vec<usize> = free
        .iter()
        .copied()
        .filter(|c| !isolated.contains(c))
        .collect();
    if housekeeping.is_empty() {
        free
    } else {
        housekeeping
    }
}
