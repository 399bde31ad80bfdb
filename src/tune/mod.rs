//! `marketprism tune check`: audits the host against the tuning kit
//! (`tuning/`) and the config's cores. Read-only: it never writes anything.
//!
//! Every /proc and /sys path is read under a root directory (`--root`, default
//! `/`), so tests run on fixture trees. Each item is `ok` or `warn`; a file
//! that cannot be read is a `warn` saying what could not be read.
//!
//! - [`sysctl`]: the kit's `sysctl.conf`, compiled in, and the comparison rules;
//! - [`cpulist`]: the kernel's CPU list format (it lives in `sys`, which pins threads by it).

pub use crate::sys::cpulist;
pub mod sysctl;

use crate::config;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// glommio's floor for `RLIMIT_MEMLOCK` (its io_uring rings are locked memory).
pub const MEMLOCK_MIN: u64 = crate::sys::MEMLOCK_MIN;
/// What the kit's unit sets (`LimitMEMLOCK=64M`).
pub const MEMLOCK_RECOMMENDED: u64 = crate::sys::MEMLOCK_WANTED;
/// Oldest kernel glommio 0.9 supports.
pub const KERNEL_MIN: (u32, u32) = (5, 8);

const USAGE: &str = "\
marketprism tune: host tuning audit

USAGE:
  marketprism tune check [--config FILE] [--root DIR]
      Audit the running host against tuning/ (sysctl.conf, memlock, THP,
      kernel version) and, with a config, its engine.cores (online,
      isolated, nohz_full, cpufreq governor). Reads only; never writes.
      --config FILE  config whose engine.cores are checked
                     (default config/default.toml if it exists, else CPU
                     items are skipped)
      --root DIR     prefix for every /proc and /sys path (default /)

Output: `ok|warn  <item>  current=<v>  recommended=<v>  (<why>)`, one line per
item, then a summary. Exit codes: 0 all ok, 1 any warn, 2 usage/config error.
See tuning/README.md for what each item means and how to fix it.
";

const DEFAULT_CONFIG: &str = "config/default.toml";

/// One audited item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Stable name, e.g. `net.core.rmem_max`, `memlock`, `cpu2.isolated`.
    pub name: String,
    pub current: String,
    pub recommended: String,
    pub ok: bool,
    /// Short reason: why it matters, or what is wrong.
    pub why: String,
}

impl Item {
    fn new(
        name: impl Into<String>,
        current: impl Into<String>,
        recommended: impl Into<String>,
        ok: bool,
        why: impl Into<String>,
    ) -> Self {
        Item {
            name: name.into(),
            current: current.into(),
            recommended: recommended.into(),
            ok,
            why: why.into(),
        }
    }

    /// A file that could not be read: always a warn.
    fn unreadable(
        name: impl Into<String>,
        recommended: impl Into<String>,
        path: &Path,
        e: &io::Error,
    ) -> Self {
        Item::new(
            name,
            "unreadable",
            recommended,
            false,
            format!("cannot read {}: {e}", path.display()),
        )
    }
}

/// The audit's result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub items: Vec<Item>,
    /// The config whose cores were checked, and those cores; `None` when the
    /// CPU items were skipped.
    pub config: Option<(PathBuf, Vec<usize>)>,
}

impl Report {
    /// Number of `warn` items.
    pub fn warnings(&self) -> usize {
        self.items.iter().filter(|i| !i.ok).count()
    }

    /// The item of that name, if audited.
    pub fn item(&self, name: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.name == name)
    }
}

/// Audits the host under `root`. With `config`, its `engine.cores` are checked
/// too; a config that does not load becomes a `config` warn item (the CLI
/// rejects it with exit 2 before getting here).
pub fn check(root: &Path, config: Option<&Path>) -> Report {
    match config {
        None => check_with(root, None),
        Some(path) => match config::load(path) {
            Ok(plan) => check_with(root, Some(ConfigCpus::of(path, &plan))),
            Err(e) => {
                let mut r = check_with(root, None);
                r.items.push(Item::new(
                    "config",
                    "invalid",
                    "valid",
                    false,
                    format!("{}: {e}; CPU items skipped", path.display()),
                ));
                r
            }
        },
    }
}

/// What of a config the CPU items check.
struct ConfigCpus {
    path: PathBuf,
    /// `engine.cores`.
    shards: Vec<usize>,
    /// `sink.io_worker_cpus` as configured, if the file sink writes through
    /// io_uring (`None`: `write_mode = "inline"` or no file sink).
    io_workers: Option<Option<Vec<usize>>>,
}

impl ConfigCpus {
    fn of(path: &Path, plan: &config::Plan) -> ConfigCpus {
        let ring = plan.file_sink && plan.sink.write_mode != config::WriteMode::Inline;
        ConfigCpus {
            path: path.to_path_buf(),
            shards: plan.cores.iter().map(|c| c.cpu).collect(),
            io_workers: ring.then(|| plan.sink.io_worker_cpus_configured.clone()),
        }
    }
}

fn check_with(root: &Path, config: Option<ConfigCpus>) -> Report {
    let mut items = Vec::new();
    check_sysctls(root, &mut items);
    check_kernel(root, &mut items);
    items.push(check_memlock());
    items.push(check_thp(root));
    if let Some(c) = &config {
        check_cpus(root, &c.shards, &mut items);
        if let Some(workers) = &c.io_workers {
            items.push(check_io_workers(root, &c.shards, workers.as_deref()));
        }
    }
    Report {
        items,
        config: config.map(|c| (c.path, c.shards)),
    }
}

/// Where the kernel's io_uring workers copy the file sink's output: on
/// CPUs of their own, not a shard's (they would take a fifth of its time).
fn check_io_workers(root: &Path, shards: &[usize], configured: Option<&[usize]>) -> Item {
    let name = "sink.io_worker_cpus";
    let want = "online CPUs outside engine.cores";
    let online = match read_cpulist(root, "sys/devices/system/cpu/online") {
        Ok(l) => l,
        Err((path, e)) => {
            return Item::new(
                name,
                "unreadable",
                want,
                false,
                format!("cannot read {}: {e}", path.display()),
            )
        }
    };
    let isolated = read_cpulist(root, "sys/devices/system/cpu/isolated").unwrap_or_default();
    let workers = match configured {
        Some(l) => l.to_vec(),
        None => config::plan::io_worker_default(&online, shards, &isolated),
    };
    let how = if configured.is_some() {
        "configured"
    } else {
        "default"
    };
    let current = if workers.is_empty() {
        "none".to_string()
    } else {
        cpulist::format(&workers)
    };
    let on_shard: Vec<usize> = workers
        .iter()
        .copied()
        .filter(|c| shards.contains(c))
        .collect();
    let offline: Vec<usize> = workers
        .iter()
        .copied()
        .filter(|c| !online.contains(c))
        .collect();
    let (ok, why) = if workers.is_empty() {
        (
            false,
            "no CPU outside engine.cores: the page-cache copy of the output runs on the shards' own cores; leave a housekeeping CPU".to_string(),
        )
    } else if !offline.is_empty() {
        (
            false,
            format!("{how}: CPU(s) {} not online", cpulist::format(&offline)),
        )
    } else if !on_shard.is_empty() {
        (
            false,
            format!(
                "{how}: CPU(s) {} run shards: the page-cache copy takes their time",
                cpulist::format(&on_shard)
            ),
        )
    } else {
        (
            true,
            format!("{how}: the kernel's io_uring workers copy the file sink's output there"),
        )
    };
    Item::new(name, current, want, ok, why)
}

/// One line per item, then a summary line.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for i in &report.items {
        let _ = writeln!(
            out,
            "{}  {}  current={}  recommended={}  ({})",
            if i.ok { "ok" } else { "warn" },
            i.name,
            quote(&i.current),
            quote(&i.recommended),
            i.why
        );
    }
    let warns = report.warnings();
    let _ = write!(
        out,
        "summary: {} items, {} ok, {} warn",
        report.items.len(),
        report.items.len() - warns,
        warns
    );
    match &report.config {
        Some((path, cpus)) => {
            let _ = writeln!(
                out,
                "; cores {} from {}",
                cpulist::format(cpus),
                path.display()
            );
        }
        None => out.push_str("; no config: CPU isolation items skipped\n"),
    }
    out
}

/// Values with spaces (multi-field sysctls) or empty values are quoted so
/// each line still splits on double spaces / `key=value`.
fn quote(v: &str) -> String {
    if v.is_empty() || v.chars().any(char::is_whitespace) {
        format!("\"{v}\"")
    } else {
        v.to_string()
    }
}

/// `marketprism tune ...`: arguments after `tune`. Exit 0 all ok, 1 any warn,
/// 2 usage or config error.
pub fn cli(args: &[String]) -> ExitCode {
    match args.first().map(String::as_str) {
        Some("check") => {}
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("unknown tune command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
        None => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    let mut config: Option<PathBuf> = None;
    let mut root = PathBuf::from("/");
    let mut i = 1;
    while i < args.len() {
        let flag = args[i].as_str();
        match flag {
            "--config" | "-c" | "--root" => {
                let Some(v) = args.get(i + 1) else {
                    eprintln!("{flag} needs a value\n\n{USAGE}");
                    return ExitCode::from(2);
                };
                if flag == "--root" {
                    root = PathBuf::from(v);
                } else {
                    config = Some(PathBuf::from(v));
                }
                i += 2;
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unexpected argument `{other}`\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if !root.is_dir() {
        eprintln!("--root {}: not a directory", root.display());
        return ExitCode::from(2);
    }
    let config = config.or_else(|| {
        let p = PathBuf::from(DEFAULT_CONFIG);
        p.is_file().then_some(p)
    });
    let config = match config {
        None => None,
        Some(path) => match config::load(&path) {
            Ok(plan) => Some(ConfigCpus::of(&path, &plan)),
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    let report = check_with(&root, config);
    print!("{}", render(&report));
    if report.warnings() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn read(root: &Path, rel: &str) -> (PathBuf, io::Result<String>) {
    let path = root.join(rel);
    let r = std::fs::read_to_string(&path);
    (path, r)
}

fn check_sysctls(root: &Path, items: &mut Vec<Item>) {
    for s in sysctl::kit() {
        let (rule, why) = sysctl::rule_for(&s);
        let (path, r) = read(root, &s.proc_path());
        let item = match r {
            Ok(text) => {
                let current = text.split_whitespace().collect::<Vec<_>>().join(" ");
                match sysctl::compare(rule, &current, &s.value) {
                    Ok(()) => Item::new(
                        &s.key,
                        current,
                        &s.value,
                        true,
                        format!("{}; {why}", rule.word()),
                    ),
                    Err(e) => Item::new(&s.key, current, &s.value, false, format!("{e}; {why}")),
                }
            }
            // io_uring_disabled appeared in Linux 6.6: without it io_uring
            // cannot be switched off, which is what we want.
            Err(e)
                if s.key == "kernel.io_uring_disabled" && e.kind() == io::ErrorKind::NotFound =>
            {
                Item::new(
                    &s.key,
                    "absent",
                    &s.value,
                    true,
                    "kernel < 6.6 has no switch: io_uring is on",
                )
            }
            Err(e) => Item::unreadable(&s.key, &s.value, &path, &e),
        };
        items.push(item);
    }
}

/// `major.minor` from an osrelease like `6.1.0-18-amd64`.
pub fn kernel_version(osrelease: &str) -> Option<(u32, u32)> {
    let mut parts = osrelease.trim().split('.');
    let num = |s: Option<&str>| -> Option<u32> {
        let s = s?;
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    Some((num(parts.next())?, num(parts.next())?))
}

fn check_kernel(root: &Path, items: &mut Vec<Item>) {
    let name = "kernel.osrelease";
    let rec = format!("{}.{}", KERNEL_MIN.0, KERNEL_MIN.1);
    let (path, r) = read(root, "proc/sys/kernel/osrelease");
    let item = match r {
        Err(e) => Item::unreadable(name, rec, &path, &e),
        Ok(text) => {
            let current = text.trim().to_string();
            match kernel_version(&current) {
                None => Item::new(name, current, rec, false, "cannot parse the kernel version"),
                Some(v) if v >= KERNEL_MIN => Item::new(
                    name,
                    current,
                    rec,
                    true,
                    "min; io_uring as glommio needs it",
                ),
                Some(_) => Item::new(
                    name,
                    current,
                    rec,
                    false,
                    "too old for glommio's io_uring: executors will not start",
                ),
            }
        }
    };
    items.push(item);
}

/// Bytes as `N KiB`/`N MiB`, `unlimited` for RLIM_INFINITY.
fn bytes(v: u64) -> String {
    let infinity: u64 = libc::RLIM_INFINITY;
    if v == infinity {
        "unlimited".to_string()
    } else if v >= 1 << 20 && v % (1 << 20) == 0 {
        format!("{}MiB", v >> 20)
    } else if v % 1024 == 0 {
        format!("{}KiB", v >> 10)
    } else {
        format!("{v}B")
    }
}

/// RLIMIT_MEMLOCK of this process. The collector raises its soft limit up to
/// the hard limit by itself, so the hard limit is what decides.
fn check_memlock() -> Item {
    let name = "memlock";
    let rec = bytes(MEMLOCK_RECOMMENDED);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        let e = io::Error::last_os_error();
        return Item::new(
            name,
            "unreadable",
            rec,
            false,
            format!("getrlimit(RLIMIT_MEMLOCK): {e}"),
        );
    }
    let (soft, hard): (u64, u64) = (lim.rlim_cur, lim.rlim_max);
    let current = if soft == hard {
        bytes(soft)
    } else {
        format!("{} (hard {})", bytes(soft), bytes(hard))
    };
    if hard >= MEMLOCK_MIN {
        Item::new(
            name,
            current,
            rec,
            true,
            "min 512KiB, glommio's io_uring floor; this shell's limit, the unit sets LimitMEMLOCK",
        )
    } else {
        Item::new(
            name,
            current,
            rec,
            false,
            "below glommio's 512KiB floor: executors will not start; ulimit -l 65536 or LimitMEMLOCK=64M",
        )
    }
}

fn check_thp(root: &Path) -> Item {
    let name = "transparent_hugepage";
    let (path, r) = read(root, "sys/kernel/mm/transparent_hugepage/enabled");
    let text = match r {
        Ok(t) => t,
        Err(e) => return Item::unreadable(name, "madvise", &path, &e),
    };
    let selected = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix('[').and_then(|w| w.strip_suffix(']')));
    match selected {
        Some(m @ ("madvise" | "never")) => Item::new(
            name,
            m,
            "madvise",
            true,
            "huge pages only where asked: no khugepaged/compaction stalls",
        ),
        Some(m @ "always") => Item::new(
            name,
            m,
            "madvise",
            false,
            "always: page-fault compaction and khugepaged stalls cause latency spikes",
        ),
        Some(m) => Item::new(name, m, "madvise", false, "unknown THP mode"),
        None => Item::new(
            name,
            text.trim(),
            "madvise",
            false,
            format!("no [selected] mode in {}", path.display()),
        ),
    }
}

fn read_cpulist(root: &Path, rel: &str) -> Result<Vec<usize>, (PathBuf, String)> {
    let (path, r) = read(root, rel);
    match r {
        Ok(text) => cpulist::parse(&text).map_err(|e| (path, e)),
        Err(e) => Err((path, e.to_string())),
    }
}

fn check_cpus(root: &Path, cpus: &[usize], items: &mut Vec<Item>) {
    let mut cpus = cpus.to_vec();
    cpus.sort_unstable();
    cpus.dedup();
    let want = cpulist::format(&cpus);
    let online = read_cpulist(root, "sys/devices/system/cpu/online");
    let isolated = read_cpulist(root, "sys/devices/system/cpu/isolated");
    let nohz_path = root.join("sys/devices/system/cpu/nohz_full");
    let nohz = if nohz_path.exists() {
        read_cpulist(root, "sys/devices/system/cpu/nohz_full")
    } else {
        Err((
            nohz_path,
            "absent: kernel built without NO_HZ_FULL".to_string(),
        ))
    };
    let cannot = |(path, e): &(PathBuf, String)| format!("cannot read {}: {e}", path.display());
    for &cpu in &cpus {
        let n = |what: &str| format!("cpu{cpu}.{what}");
        items.push(match &online {
            Ok(list) if list.contains(&cpu) => Item::new(
                n("online"),
                "yes",
                "yes",
                true,
                "the executor pins itself here",
            ),
            Ok(list) => Item::new(
                n("online"),
                "no",
                "yes",
                false,
                format!(
                    "not online (online: {}): the executor cannot pin here",
                    cpulist::format(list)
                ),
            ),
            Err(e) => Item::new(n("online"), "unreadable", "yes", false, cannot(e)),
        });
        items.push(match &isolated {
            Ok(list) => Item::new(
                n("isolated"),
                if list.contains(&cpu) { "yes" } else { "no" },
                "yes",
                list.contains(&cpu),
                format!(
                    "isolcpus={want} keeps other tasks off the core; isolated now: {}{}",
                    cpulist::format(list),
                    if cpu == 0 {
                        "; CPU 0 does housekeeping, prefer other cores"
                    } else {
                        ""
                    }
                ),
            ),
            Err(e) => Item::new(n("isolated"), "unreadable", "yes", false, cannot(e)),
        });
        items.push(match &nohz {
            Ok(list) => Item::new(
                n("nohz_full"),
                if list.contains(&cpu) { "yes" } else { "no" },
                "yes",
                list.contains(&cpu),
                format!(
                    "nohz_full={want} stops the scheduler tick on a busy core; nohz_full now: {}",
                    cpulist::format(list)
                ),
            ),
            Err(e) => Item::new(n("nohz_full"), "unreadable", "yes", false, cannot(e)),
        });
        let rel = format!("sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor");
        let (path, r) = read(root, &rel);
        items.push(match r {
            Ok(g) if g.trim() == "performance" => Item::new(
                n("governor"),
                "performance",
                "performance",
                true,
                "full clock, no frequency-ramp latency",
            ),
            Ok(g) => Item::new(
                n("governor"),
                g.trim(),
                "performance",
                false,
                "frequency ramps add latency to bursts; tuning/isolate-cpus.sh sets it",
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Item::new(
                n("governor"),
                "none",
                "performance",
                false,
                "no cpufreq (VM?): the host/BIOS decides the clock",
            ),
            Err(e) => Item::unreadable(n("governor"), "performance", &path, &e),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("5.8\n"), Some((5, 8)));
        assert_eq!(kernel_version("6.18.44-fc-v782"), Some((6, 18)));
        assert_eq!(kernel_version("garbage"), None);
        assert!(kernel_version("5.10.0").unwrap() >= KERNEL_MIN);
        assert!(kernel_version("5.4.0").unwrap() < KERNEL_MIN);
    }

    #[test]
    fn byte_formatting() {
        assert_eq!(bytes(64 << 20), "64MiB");
        assert_eq!(bytes(512 * 1024), "512KiB");
        assert_eq!(bytes(8192 * 1024), "8MiB");
        assert_eq!(bytes(1000), "1000B");
        assert_eq!(bytes(libc::RLIM_INFINITY), "unlimited");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("1"), "1");
        assert_eq!(quote("4096 1048576"), "\"4096 1048576\"");
        assert_eq!(quote(""), "\"\"");
    }
}
