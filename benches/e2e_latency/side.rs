//! Side by side: one paced mock feeding, at the same time and all on CPU 0,
//! the bare receiver and two collectors, one parking through glommio
//! (`poll_before_park_us = 0`) and one waiting in the core's `ppoll` (the
//! default, 50 000). Run one after the other, this VM's neighbours moved the
//! bare receiver's own cost per frame 22–67 µs between runs, more than the
//! difference measured; side by side the noise falls on all three alike.
//! CPU per frame only: one send log cannot time three connections.

use super::*;

/// The collector settings compared, in print order.
const POLLS: [(&str, u64); 2] = [("parking through glommio", 0), ("waiting in ppoll", 50_000)];

/// What runs beside the bare receiver: (name, `poll_before_park_us`, the
/// build, `None` for this one). With `E2E_SIDE_BASE=<binary>`, that build
/// and this one, both waiting in `ppoll`, instead of the two settings: two
/// builds compared under the same neighbours.
fn compared() -> Vec<(String, u64, Option<String>)> {
    match std::env::var("E2E_SIDE_BASE") {
        Ok(base) => vec![
            ("base build, ppoll".into(), 50_000, Some(base)),
            ("this build, ppoll".into(), 50_000, None),
        ],
        Err(_) => POLLS
            .iter()
            .map(|&(name, poll)| (name.to_string(), poll, None))
            .collect(),
    }
}

/// Starts a collector on `cfg`, of `bin` if given (else as [`start_collector`]).
fn start(cfg: &Path, bin: Option<&str>) -> Proc {
    let Some(bin) = bin else {
        return start_collector(cfg).0;
    };
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["run", "--config", cfg.to_str().unwrap()])
        .env("MARKETPRISM_LOG", "info");
    let p = spawn_cmd(cmd);
    p.wait_line("metrics and health on http://", Duration::from_secs(30));
    p
}

pub fn side_by_side(rates: &[u64], secs: u64) {
    assert!(
        std::env::var("E2E_POLL_US").is_err(),
        "E2E_POLL_US: the side-by-side scenario sets poll_before_park_us itself"
    );
    println!(
        "side by side: one mock (cpu 1), the bare receiver and two collectors (1 core each) all on cpu 0 at once; Binance spot trades, 4 streams evenly spaced, {secs} s measured after {} s; CPU per frame sent",
        WARM_UP.as_secs()
    );
    for &rate in rates {
        let dir = tempfile::tempdir_in(data_base()).unwrap();
        let (mock, addr, _log) = mock(dir.path(), rate);
        let syms: Vec<String> = SYMBOLS.iter().map(|s| s.to_string()).collect();
        let ca = dir.path().join("tls").join("ca.pem");
        let mut collectors = Vec::new();
        let runs = compared();
        for (i, (_, poll, bin)) in runs.iter().enumerate() {
            let sub = dir.path().join(format!("c{i}"));
            std::fs::create_dir_all(&sub).unwrap();
            let text = engine_toml(&sub, false, 0).replacen(
                "[engine]\n",
                &format!("[engine]\npoll_before_park_us = {poll}\n"),
                1,
            ) + &venue_toml(
                "binance_spot",
                "",
                addr.port(),
                &ca.display().to_string(),
                &syms,
                "\"trade\"",
            );
            let cfg = sub.join("collector.toml");
            std::fs::write(&cfg, text).unwrap();
            collectors.push((start(&cfg, bin.as_deref()), sub));
        }
        std::thread::sleep(WARM_UP);
        let from = marketprism::sys::now_ns() + 50_000_000;
        let until = from + secs * 1_000_000_000;
        let pids: Vec<u32> = collectors.iter().map(|(c, _)| c.child.id()).collect();
        // The collectors' window, sampled on a thread of its own while the
        // bare receiver reads on CPU 0.
        let sampler = std::thread::spawn(move || {
            let at = |t: u64| {
                std::thread::sleep(Duration::from_nanos(
                    t.saturating_sub(marketprism::sys::now_ns()),
                ));
                pids.iter()
                    .map(|&p| process_cpu_ns(p))
                    .collect::<Vec<u64>>()
            };
            let c0 = at(from);
            let c1 = at(until);
            c0.iter().zip(&c1).map(|(a, b)| b - a).collect::<Vec<u64>>()
        });
        let cap = (rate * (secs + 4)) as usize;
        let b = bare::run(addr, &ca, &streams_path(), false, (from, until), cap);
        let cpu = sampler.join().unwrap();
        let frames = (rate * secs) as f64;
        let bare_us = b.cpu_ns as f64 / frames / 1e3;
        println!("  {rate} frames/s");
        println!(
            "    bare receiver                     CPU {bare_us:>7.2} µs/frame ({} frames read)",
            b.frames.len()
        );
        let mut first = None;
        for (((name, poll, _), (mut c, sub)), ns) in runs.into_iter().zip(collectors).zip(cpu) {
            let status = c.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
            assert_eq!(
                status.code(),
                Some(0),
                "collector with poll_before_park_us = {poll}"
            );
            let lines = written_lines(&sub.join("data"));
            let us = ns as f64 / frames / 1e3;
            let vs = first
                .map(|f: f64| format!(", {:.2}× the first", us / f))
                .unwrap_or_default();
            first.get_or_insert(us);
            println!(
                "    collector, {name:<23} CPU {us:>7.2} µs/frame ({lines} trades written; {:.2}× the bare receiver{vs})",
                us / bare_us
            );
        }
        drop(mock);
    }
}

/// Lines (records) in the JSON Lines files under `data`.
fn written_lines(data: &Path) -> usize {
    std::fs::read_dir(data)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .sum()
}
