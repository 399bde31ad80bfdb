//! The standard Prometheus process metrics (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_start_time_seconds`,
//! `process_open_fds`, ...), unprefixed as every Prometheus client exports
//! them and MarketPrism's dashboard and alerts query them. Read from /proc at
//! scrape time: nothing is kept between scrapes.

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// What /proc says about this process now.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcessSample {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub start_time_seconds: f64,
    pub open_fds: u64,
    pub max_fds: u64,
}

/// Fields of `/proc/self/stat` after the command name: (utime, stime,
/// starttime in clock ticks, vsize bytes, rss pages).
pub fn parse_stat(stat: &str) -> Option<(u64, u64, u64, u64, u64)> {
    // The command name may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): field n is f[n - 3].
    let n = |i: usize| f.get(i - 3).and_then(|x| x.parse::<u64>().ok());
    Some((n(14)?, n(15)?, n(22)?, n(23)?, n(24)?))
}

/// `btime` (boot time, Unix seconds) from `/proc/stat`.
pub fn parse_btime(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Process start (Unix seconds), read once: it never changes, and `/proc/stat`
/// (every CPU's and interrupt's counters) is the costliest file a scrape
/// would read; a scrape every few ms showed it in the core's profile.
fn start_time_seconds(start_ticks: u64, tick: f64) -> f64 {
    static START: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        std::fs::read_to_string("/proc/stat")
            .ok()
            .as_deref()
            .and_then(parse_btime)
            .map_or(0.0, |bt| bt as f64 + start_ticks as f64 / tick)
    })
}

/// Reads the process figures; a figure /proc does not give is 0.
pub fn sample() -> ProcessSample {
    // SAFETY: sysconf has no preconditions.
    let (tick, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK).max(1) as f64,
            libc::sysconf(libc::_SC_PAGESIZE).max(0) as u64,
        )
    };
    let mut s = ProcessSample::default();
    if let Some((ut, st, start, vsize, rss)) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .as_deref()
        .and_then(parse_stat)
    {
        s.cpu_seconds = (ut + st) as f64 / tick;
        s.virtual_bytes = vsize;
        s.resident_bytes = rss * page;
        s.start_time_seconds = start_time_seconds(start, tick);
    }
    s.open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        s.max_fds = lim.rlim_cur;
    }
    s
}

/// Registered without the `marketprism` prefix.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessCollector;

impl prometheus_client::collector::Collector for ProcessCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_sample(&mut e, &sample())
    }
}

pub fn encode_sample(e: &mut DescriptorEncoder, s: &ProcessSample) -> Result<(), std::fmt::Error> {
    let m = e.encode_descriptor(
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(s.cpu_seconds).encode(m)?;
    let gauges: [(&str, &str, f64); 5] = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            s.resident_bytes as f64,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            s.virtual_bytes as f64,
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            s.start_time_seconds,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors",
            s.open_fds as f64,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors",
            s.max_fds as f64,
        ),
    ];
    for (name, help, v) in gauges {
        let m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
        ConstGauge::new(v).encode(m)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_a_spaced_name() {
        // Fields 3..=24 of a real line; the name holds ") (" on purpose.
        let line = "4242 (core0 ) (x) S 1 4242 4242 0 -1 4194560 1200 0 0 0 \
                    250 130 0 0 20 0 7 0 123456 987654321 2048 18446744073709551615";
        assert_eq!(parse_stat(line), Some((250, 130, 123456, 987654321, 2048)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(
            parse_btime("cpu  1 2 3\nbtime 1764900000\nprocesses 9\n"),
            Some(1_764_900_000)
        );
    }

    #[test]
    fn renders_the_standard_names_unprefixed() {
        let s = ProcessSample {
            cpu_seconds: 3.8,
            resident_bytes: 8_388_608,
            virtual_bytes: 1 << 30,
            start_time_seconds: 1_764_900_123.5,
            open_fds: 17,
            max_fds: 1024,
        };
        #[derive(Debug)]
        struct Fixed(ProcessSample);
        impl prometheus_client::collector::Collector for Fixed {
            fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
                encode_sample(&mut e, &self.0)
            }
        }
        let mut r = prometheus_client::registry::Registry::default();
        r.register_collector(Box::new(Fixed(s)));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
        for line in [
            "# TYPE process_cpu_seconds counter\n",
            "\nprocess_cpu_seconds_total 3.8\n",
            "\nprocess_resident_memory_bytes 8388608.0\n",
            "\nprocess_virtual_memory_bytes 1073741824.0\n",
            "\nprocess_start_time_seconds 1764900123.5\n",
            "\nprocess_open_fds 17.0\n",
            "\nprocess_max_fds 1024.0\n",
        ] {
            assert!(out.contains(line), "{line:?} missing in\n{out}");
        }
    }

    #[test]
    fn sample_reads_this_process() {
        let s = sample();
        assert!(s.resident_bytes > 0 && s.open_fds >= 3 && s.max_fds >= s.open_fds);
        let now = crate::sys::now_ms() as f64 / 1000.0;
        assert!(s.start_time_seconds > now - 86_400.0 && s.start_time_seconds <= now + 1.0);
    }
}
