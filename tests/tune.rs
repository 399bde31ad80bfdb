//! `marketprism tune check` on fixture trees (`tests/fixtures/tune/{good,bad}`):
//! exact ok/warn per item, the rendered lines, and the CLI's exit codes.
//!
//! The library is called directly (`tune::check`, `tune::render`, `tune::cli`);
//! the memlock item reads this test process's real limit, so only its presence
//! is asserted.

use marketprism::tune::{self, Report};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tune")
        .join(name)
}

fn config() -> PathBuf {
    fixture("cores-2-3.toml")
}

/// Every item except memlock, as (name, ok), in report order.
fn verdicts(r: &Report) -> Vec<(String, bool)> {
    r.items
        .iter()
        .filter(|i| i.name != "memlock")
        .map(|i| (i.name.clone(), i.ok))
        .collect()
}

fn expect(pairs: &[(&str, bool)]) -> Vec<(String, bool)> {
    pairs.iter().map(|(n, ok)| (n.to_string(), *ok)).collect()
}

const SYSCTL_KEYS: [&str; 10] = [
    "kernel.io_uring_disabled",
    "net.core.rmem_max",
    "net.core.rmem_default",
    "net.ipv4.tcp_rmem",
    "net.core.netdev_max_backlog",
    "net.core.busy_read",
    "net.core.busy_poll",
    "vm.swappiness",
    "vm.dirty_background_bytes",
    "vm.dirty_bytes",
];

#[test]
fn good_tree_is_all_ok() {
    let r = tune::check(&fixture("good"), Some(&config()));
    let mut want: Vec<(&str, bool)> = SYSCTL_KEYS.iter().map(|k| (*k, true)).collect();
    want.extend([
        ("kernel.osrelease", true),
        ("transparent_hugepage", true),
        ("cpu2.online", true),
        ("cpu2.isolated", true),
        ("cpu2.nohz_full", true),
        ("cpu2.governor", true),
        ("cpu3.online", true),
        ("cpu3.isolated", true),
        ("cpu3.nohz_full", true),
        ("cpu3.governor", true),
        ("sink.io_worker_cpus", true),
    ]);
    assert_eq!(verdicts(&r), expect(&want), "{}", tune::render(&r));
    // The default: online, not a shard's, not isolated.
    assert_eq!(r.item("sink.io_worker_cpus").unwrap().current, "0-1");
    assert!(r.item("memlock").is_some());
    let memlock_warn = usize::from(!r.item("memlock").unwrap().ok);
    assert_eq!(r.warnings(), memlock_warn);

    // Values are what the tree holds; multi-field values keep every field.
    let rmem = r.item("net.ipv4.tcp_rmem").unwrap();
    assert_eq!(rmem.current, "4096 1048576 33554432");
    assert_eq!(rmem.recommended, "4096 1048576 16777216");
    assert_eq!(r.item("vm.swappiness").unwrap().current, "0");
    assert_eq!(
        r.item("kernel.osrelease").unwrap().current,
        "6.1.0-18-amd64"
    );
    assert_eq!(r.item("transparent_hugepage").unwrap().current, "madvise");
    assert_eq!(r.item("cpu3.governor").unwrap().current, "performance");
}

#[test]
fn bad_tree_warns_exactly_where_it_is_off() {
    let r = tune::check(&fixture("bad"), Some(&config()));
    let want = [
        ("kernel.io_uring_disabled", false),
        ("net.core.rmem_max", false),
        ("net.core.rmem_default", false),
        ("net.ipv4.tcp_rmem", false),
        ("net.core.netdev_max_backlog", true),
        ("net.core.busy_read", false),
        ("net.core.busy_poll", false), // file missing: unreadable
        ("vm.swappiness", false),
        ("vm.dirty_background_bytes", false), // 0: ratio-based
        ("vm.dirty_bytes", true),
        ("kernel.osrelease", false),
        ("transparent_hugepage", false),
        ("cpu2.online", true),
        ("cpu2.isolated", false),
        ("cpu2.nohz_full", false),
        ("cpu2.governor", false),
        ("cpu3.online", false),
        ("cpu3.isolated", false),
        ("cpu3.nohz_full", false),
        ("cpu3.governor", false),
        ("sink.io_worker_cpus", true),
    ];
    assert_eq!(verdicts(&r), expect(&want), "{}", tune::render(&r));
    let memlock_warn = usize::from(!r.item("memlock").unwrap().ok);
    assert_eq!(r.warnings(), 17 + memlock_warn);

    let busy_poll = r.item("net.core.busy_poll").unwrap();
    assert_eq!(busy_poll.current, "unreadable");
    assert!(busy_poll.why.contains("cannot read"), "{}", busy_poll.why);
    assert!(
        busy_poll.why.contains("proc/sys/net/core/busy_poll"),
        "{}",
        busy_poll.why
    );
    let tcp = r.item("net.ipv4.tcp_rmem").unwrap();
    assert_eq!(tcp.current, "4096 131072 6291456");
    assert!(tcp.why.contains("field 2"), "{}", tcp.why);
    assert!(r
        .item("vm.dirty_background_bytes")
        .unwrap()
        .why
        .contains("ratio"));
    assert_eq!(r.item("transparent_hugepage").unwrap().current, "always");
    assert_eq!(r.item("cpu2.governor").unwrap().current, "powersave");
    let cpu3 = r.item("cpu3.governor").unwrap();
    assert_eq!(cpu3.current, "none");
    assert!(cpu3.why.contains("no cpufreq (VM?)"), "{}", cpu3.why);
    assert_eq!(r.item("cpu2.isolated").unwrap().current, "no");
    assert!(r.item("cpu3.online").unwrap().why.contains("online: 0-2"));
}

#[test]
fn rendered_lines_follow_the_format() {
    let r = tune::check(&fixture("bad"), Some(&config()));
    let text = tune::render(&r);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), r.items.len() + 1, "{text}");
    assert!(
        lines.contains(
            &"warn  vm.swappiness  current=60  recommended=1  (60 is above 1; never swap the collector's working set)"
        ),
        "{text}"
    );
    assert!(
        lines.contains(
            &"ok  net.core.netdev_max_backlog  current=16384  recommended=16384  (min; packets queued per CPU before the kernel drops)"
        ),
        "{text}"
    );
    assert!(
        text.contains("warn  net.ipv4.tcp_rmem  current=\"4096 131072 6291456\"  recommended=\"4096 1048576 16777216\"  ("),
        "{text}"
    );
    assert!(
        text.contains("warn  transparent_hugepage  current=always  recommended=madvise  ("),
        "{text}"
    );
    assert!(text.contains("\nok  memlock  current=") || text.contains("\nwarn  memlock  current="));
    for l in &lines[..lines.len() - 1] {
        assert!(l.starts_with("ok  ") || l.starts_with("warn  "), "{l}");
        assert!(
            l.contains("  current=") && l.contains("  recommended=") && l.ends_with(')'),
            "{l}"
        );
    }
    let summary = lines.last().unwrap();
    assert!(
        summary.starts_with(&format!(
            "summary: {} items, {} ok, {} warn; cores 2-3 from ",
            r.items.len(),
            r.items.len() - r.warnings(),
            r.warnings()
        )),
        "{summary}"
    );
}

/// The io_uring workers of the file sink: warned on a shard's CPU, with no
/// CPU left over, or offline; no item when the sink writes inline.
#[test]
fn io_worker_cpus_are_checked_against_the_shards() {
    let dir = tempfile::tempdir().unwrap();
    let item = |sink: &str, cores: &str| {
        let cfg = dir.path().join("c.toml");
        std::fs::write(
            &cfg,
            format!("[engine]\ncores = {cores}\n[sink]\n{sink}\n[exchanges.binance_spot]\nsymbols = [\"BTCUSDT\"]\ndata_types = [\"trade\"]\n"),
        )
        .unwrap();
        let r = tune::check(&fixture("good"), Some(&cfg));
        r.item("sink.io_worker_cpus").cloned()
    };
    let on_shard = item("io_worker_cpus = [1, 2]", "[2, 3]").unwrap();
    assert!(!on_shard.ok);
    assert_eq!(on_shard.current, "1-2");
    assert!(
        on_shard.why.contains("CPU(s) 2 run shards"),
        "{}",
        on_shard.why
    );
    let offline = item("io_worker_cpus = [7]", "[2, 3]").unwrap();
    assert!(!offline.ok);
    assert!(offline.why.contains("7 not online"), "{}", offline.why);
    let none_left = item("", "[0, 1, 2, 3]").unwrap();
    assert!(!none_left.ok);
    assert_eq!(none_left.current, "none");
    // Only isolated CPUs are left: the default takes them rather than none.
    let isolated = item("", "[0, 1]").unwrap();
    assert!(isolated.ok);
    assert_eq!(isolated.current, "2-3");
    assert!(item("write_mode = \"inline\"", "[2, 3]").is_none());
}

#[test]
fn without_config_cpu_items_are_skipped() {
    let r = tune::check(&fixture("good"), None);
    assert!(r.items.iter().all(|i| !i.name.starts_with("cpu")));
    assert_eq!(r.items.len(), SYSCTL_KEYS.len() + 3);
    assert!(tune::render(&r).contains("no config: CPU isolation items skipped"));
}

#[test]
fn a_bad_config_is_a_warn_item_and_a_usage_error_on_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[engine]\ncores = [2]\n").unwrap(); // no venue
    let r = tune::check(&fixture("good"), Some(&cfg));
    let item = r.item("config").expect("config item");
    assert!(!item.ok);
    assert!(r.items.iter().all(|i| !i.name.starts_with("cpu")));

    let root = fixture("good").display().to_string();
    let cfg = cfg.display().to_string();
    assert_eq!(
        cli(&["check", "--root", &root, "--config", &cfg]),
        ExitCode::from(2)
    );
}

#[test]
fn an_empty_root_warns_instead_of_crashing() {
    let dir = tempfile::tempdir().unwrap();
    let r = tune::check(dir.path(), Some(&config()));
    for i in &r.items {
        if i.name == "memlock" {
            continue;
        }
        if i.name == "kernel.io_uring_disabled" {
            // Absent before Linux 6.6: io_uring cannot be disabled, so ok.
            assert!(i.ok, "{i:?}");
            assert_eq!(i.current, "absent");
            continue;
        }
        assert!(!i.ok, "{i:?}");
    }
    let thp = r.item("transparent_hugepage").unwrap();
    assert_eq!(thp.current, "unreadable");
    assert!(thp.why.contains("cannot read"), "{}", thp.why);
    let nohz = r.item("cpu2.nohz_full").unwrap();
    assert_eq!(nohz.current, "unreadable");
    assert!(nohz.why.contains("NO_HZ_FULL"), "{}", nohz.why);
}

fn cli(args: &[&str]) -> ExitCode {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tune::cli(&args)
}

#[test]
fn cli_exit_codes() {
    let good = fixture("good").display().to_string();
    let bad = fixture("bad").display().to_string();
    let cfg = config().display().to_string();
    assert_eq!(
        cli(&["check", "--root", &bad, "--config", &cfg]),
        ExitCode::from(1)
    );
    // The good tree is all ok except, possibly, this process's real memlock.
    let memlock_ok = tune::check(&fixture("good"), None)
        .item("memlock")
        .unwrap()
        .ok;
    let want = if memlock_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    assert_eq!(cli(&["check", "--root", &good, "--config", &cfg]), want);

    assert_eq!(cli(&[]), ExitCode::from(2));
    assert_eq!(cli(&["frobnicate"]), ExitCode::from(2));
    assert_eq!(cli(&["check", "--bogus"]), ExitCode::from(2));
    assert_eq!(cli(&["check", "--root"]), ExitCode::from(2));
    assert_eq!(
        cli(&["check", "--root", "/nonexistent/tune-root"]),
        ExitCode::from(2)
    );
    assert_eq!(
        cli(&["check", "--root", &good, "--config", "/nonexistent/x.toml"]),
        ExitCode::from(2)
    );
    assert_eq!(cli(&["--help"]), ExitCode::SUCCESS);
}
