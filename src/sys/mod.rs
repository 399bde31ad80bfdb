//! Process-level OS knobs shared by the collector and the mock exchange.
//!
//! glommio 0.9 refuses to build an executor when `RLIMIT_MEMLOCK` is below
//! 512 KiB (its io_uring rings are locked memory), so every binary that starts an
//! executor calls [`ensure_memlock`] first and fails with an actionable message.

pub mod cpulist;

use std::fmt;

/// glommio's own hard floor.
pub const MEMLOCK_MIN: u64 = 512 * 1024;
/// What we ask for when allowed: rings for a few executors plus headroom.
pub const MEMLOCK_WANTED: u64 = 64 * 1024 * 1024;

/// RLIMIT_MEMLOCK could not be brought to [`MEMLOCK_MIN`].
#[derive(Debug)]
pub struct MemlockError {
    pub current: u64,
    pub hard: u64,
}

impl fmt::Display for MemlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "locked-memory limit too low for io_uring: RLIMIT_MEMLOCK is {} bytes (hard limit {}), \
             glommio needs at least {} bytes. Raise it: `ulimit -l 65536` in the shell, \
             `LimitMEMLOCK=64M` in the systemd unit, or `--ulimit memlock=-1` for containers",
            self.current, self.hard, MEMLOCK_MIN
        )
    }
}

impl std::error::Error for MemlockError {}

/// Raises the soft (and, if privileged, hard) memlock limit towards
/// [`MEMLOCK_WANTED`]. Returns the resulting soft limit.
pub fn ensure_memlock() -> Result<u64, MemlockError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return Err(MemlockError {
            current: 0,
            hard: 0,
        });
    }
    let cur: u64 = lim.rlim_cur;
    let hard: u64 = lim.rlim_max;
    if cur >= MEMLOCK_WANTED || lim.rlim_cur == libc::RLIM_INFINITY {
        return Ok(cur);
    }
    // First try raising the hard limit too (works with CAP_SYS_RESOURCE).
    let want_hard = if lim.rlim_max == libc::RLIM_INFINITY {
        lim.rlim_max
    } else {
        hard.max(MEMLOCK_WANTED) as libc::rlim_t
    };
    let attempts = [
        libc::rlimit {
            rlim_cur: MEMLOCK_WANTED as libc::rlim_t,
            rlim_max: want_hard,
        },
        libc::rlimit {
            rlim_cur: (hard.min(MEMLOCK_WANTED)) as libc::rlim_t,
            rlim_max: lim.rlim_max,
        },
    ];
    for a in attempts {
        // SAFETY: setrlimit only reads the struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &a) } == 0 {
            let now: u64 = a.rlim_cur;
            if now >= MEMLOCK_MIN {
                return Ok(now);
            }
        }
    }
    if cur >= MEMLOCK_MIN {
        return Ok(cur);
    }
    Err(MemlockError { current: cur, hard })
}

/// The binary's global allocator: the system allocator plus a per-thread
/// allocation count, so each core can report its own allocations (the
/// message path should make none). A thread-local `Cell`: no atomics.
pub struct CountingAlloc;

thread_local! {
    static THREAD_ALLOCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[inline]
fn count_alloc() {
    // try_with: the slot may already be gone while a thread exits.
    let _ = THREAD_ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        count_alloc();
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: std::alloc::Layout) -> *mut u8 {
        count_alloc();
        unsafe { std::alloc::System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, n: usize) -> *mut u8 {
        count_alloc();
        unsafe { std::alloc::System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(p, l) }
    }
}

/// Allocations made so far by the calling thread (0 unless [`CountingAlloc`]
/// is the global allocator).
pub fn thread_allocations() -> u64 {
    THREAD_ALLOCS.try_with(|c| c.get()).unwrap_or(0)
}

/// `d` in nanoseconds, saturating (for deadlines on [`now_ns`]'s scale).
#[inline]
pub fn duration_ns(d: std::time::Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// Wall-clock time in nanoseconds since the Unix epoch (vDSO, no syscall).
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the struct we own.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPUs a thread of this process can be pinned to: the online ones within
/// its cgroup's cpuset. Not the process's affinity mask: a systemd
/// `CPUAffinity=` keeps housekeeping threads off the shards' cores, and the
/// executors pin themselves out of it. Falls back to the mask when sysfs
/// says nothing.
pub fn pinnable_cpus() -> Vec<usize> {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let Some(mut cpus) =
        read("/sys/devices/system/cpu/online").and_then(|t| cpulist::parse(&t).ok())
    else {
        return affinity_cpus();
    };
    let cgroup = read("/proc/self/cgroup").unwrap_or_default();
    if let Some(path) = cpuset_file(&cgroup) {
        if let Some(set) = read(&path).and_then(|t| cpulist::parse(&t).ok()) {
            if !set.is_empty() {
                cpus.retain(|c| set.contains(c));
            }
        }
    }
    cpus
}

/// The affinity mask of the calling thread.
fn affinity_cpus() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// The cpuset file of a `/proc/self/cgroup` text: cgroup v1's cpuset
/// controller line, else v2's unified line.
fn cpuset_file(cgroup: &str) -> Option<String> {
    let mut v2 = None;
    for line in cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
        let path = path.trim_end_matches('/');
        if ctrl.split(',').any(|c| c == "cpuset") {
            return Some(format!("/sys/fs/cgroup/cpuset{path}/cpuset.effective_cpus"));
        }
        if ctrl.is_empty() {
            v2 = Some(format!("/sys/fs/cgroup{path}/cpuset.cpus.effective"));
        }
    }
    v2
}

/// Wall-clock time in milliseconds since the Unix epoch.
#[inline]
pub fn now_ms() -> u64 {
    now_ns() / 1_000_000
}

/// (year, month, day, hour, minute, second) of Unix seconds, UTC, without a
/// date library (civil-from-days, proleptic Gregorian).
pub fn civil_utc(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

/// The first of `vars` set to a non-empty value.
pub fn first_set(
    get: &dyn Fn(&str) -> Option<String>,
    vars: &[&'static str],
) -> Option<(&'static str, String)> {
    vars.iter()
        .find_map(|v| get(v).filter(|s| !s.trim().is_empty()).map(|s| (*v, s)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpuset_file_of_cgroup_v1_and_v2() {
        let v1 = "9:name=systemd:/\n3:cpuset:/pinned\n0::/\n";
        assert_eq!(
            cpuset_file(v1).as_deref(),
            Some("/sys/fs/cgroup/cpuset/pinned/cpuset.effective_cpus")
        );
        let v1_root = "3:cpuset,cpu:/\n";
        assert_eq!(
            cpuset_file(v1_root).as_deref(),
            Some("/sys/fs/cgroup/cpuset/cpuset.effective_cpus")
        );
        let v2 = "0::/system.slice/marketprism.service\n";
        assert_eq!(
            cpuset_file(v2).as_deref(),
            Some("/sys/fs/cgroup/system.slice/marketprism.service/cpuset.cpus.effective")
        );
        assert_eq!(cpuset_file(""), None);
    }

    #[test]
    fn pinnable_cpus_ignore_the_affinity_mask() {
        // This thread pinned to one CPU still sees every online one.
        let all = pinnable_cpus();
        assert!(!all.is_empty());
        let one = all[0];
        std::thread::spawn(move || {
            assert!(core_affinity::set_for_current(core_affinity::CoreId {
                id: one
            }));
            assert_eq!(affinity_cpus(), vec![one]);
            assert_eq!(pinnable_cpus(), all);
        })
        .join()
        .unwrap();
    }

    use super::*;

    #[test]
    fn memlock_is_raised_or_explained() {
        match ensure_memlock() {
            Ok(v) => assert!(v >= MEMLOCK_MIN),
            Err(e) => assert!(e.to_string().contains("LimitMEMLOCK")),
        }
    }

    #[test]
    fn clocks_agree() {
        let ms = now_ms();
        let ns = now_ns();
        assert!(ns / 1_000_000 >= ms);
        assert!(ns / 1_000_000 - ms < 1000);
    }
}
