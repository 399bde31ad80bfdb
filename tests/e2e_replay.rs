//! Raw capture → replay: a live run over TLS records every frame; replaying
//! the capture reproduces the live output record for record, byte for byte,
//! and two replays of the same capture produce identical files.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn sorted_lines(dir: &Path) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    for f in files {
        lines.extend(
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    lines.sort();
    lines
}

fn concat(dir: &Path) -> Vec<u8> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap())
        .collect()
}

#[test]
fn replay_reproduces_the_live_output_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let (mock, addr) = start_mock(
        &tls,
        &["--trades-per-symbol", "3000", "--malformed-every", "700"],
    );
    let live = dir.path().join("live");
    let cfg = dir.path().join("live.toml");
    std::fs::write(
        &cfg,
        format!(
            "[engine]\ncores=[0,1]\n[http]\nlisten=\"127.0.0.1:0\"\n[sink]\npath=\"{}\"\nraw=true\n\
             [exchanges.binance_spot]\nws_url=\"wss://localhost:{p}\"\nrest_url=\"https://localhost:{p}\"\n\
             symbols=[\"BTCUSDT\",\"ETHUSDT\",\"BNBUSDT\",\"ETHBTC\"]\ndata_types=[\"trade\"]\n\
             streams_per_connection=2\nca_file=\"{}\"\n",
            live.display(),
            tls.join("ca.pem").display(),
            p = addr.port()
        ),
    )
    .unwrap();
    let (mut collector, metrics) = start_collector(&cfg);
    wait_until("all trades written", Duration::from_secs(60), || {
        let (_, m) = http_get(metrics, "/metrics");
        metric_sum(&m, "marketprism_messages_written_total", &[]) as u64 >= 12_000
    });
    let (_, m) = http_get(metrics, "/metrics");
    let malformed_live = metric_sum(&m, "marketprism_malformed_frames_total", &[]) as u64;
    assert!(malformed_live > 0);
    assert!(
        metric_sum(&m, "marketprism_raw_frames_captured_total", &[]) as u64
            >= 12_000 + malformed_live,
        "{}",
        m.lines()
            .filter(|l| l.contains("raw_"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        collector
            .signal_and_wait(libc::SIGTERM, Duration::from_secs(15))
            .code(),
        Some(0)
    );
    drop(mock);
    let raw = live.join("raw");
    assert!(raw.join("instruments-binance_spot.tsv").exists());

    let replay = |name: &str| -> (std::path::PathBuf, String) {
        let out = dir.path().join(name);
        let c = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &c,
            format!(
                "[sink]\npath=\"{}\"\n[exchanges.binance_spot]\nsymbols=[\"BTCUSDT\"]\ndata_types=[\"trade\"]\n",
                out.display()
            ),
        )
        .unwrap();
        let o = Command::new(BIN)
            .args([
                "replay",
                "--input",
                raw.to_str().unwrap(),
                "--config",
                c.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(
            o.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        (out, stdout)
    };
    let (out1, said) = replay("replay1");
    let (out2, _) = replay("replay2");
    assert!(said.contains("12000 records written"), "{said}");
    assert!(
        said.contains(&format!("{malformed_live} malformed")),
        "{said}"
    );

    // Same capture, same bytes.
    let a = concat(&out1);
    assert!(!a.is_empty());
    assert_eq!(a, concat(&out2), "two replays differ");
    // And the very records the live run wrote (the live run split them per core).
    let live_lines = sorted_lines(&live);
    assert_eq!(live_lines.len(), 12_000);
    assert_eq!(sorted_lines(&out1), live_lines);

    // The same capture into NATS JetStream: every record acknowledged, exactly
    // once, and a second replay adds nothing (message ids dedupe it).
    let (port, mport) = (free_port(), free_port());
    let nats = start_nats(port, mport, &dir.path().join("nats"));
    let c = dir.path().join("nats.toml");
    std::fs::write(
        &c,
        format!(
            "[sink]\nkind=\"nats\"\npath=\"{}\"\n[sink.nats]\nservers=[\"nats://127.0.0.1:{port}\"]\n\
             stream=\"REPLAY\"\n[exchanges.binance_spot]\nsymbols=[\"BTCUSDT\"]\ndata_types=[\"trade\"]\n",
            dir.path().join("nats-out").display()
        ),
    )
    .unwrap();
    for round in 0..2 {
        let o = Command::new(BIN)
            .args([
                "replay",
                "--input",
                raw.to_str().unwrap(),
                "--config",
                c.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "round {round}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(stream_messages(mport, "REPLAY"), 12_000, "round {round}");
    }
    drop(nats);
}

#[test]
fn replay_rejects_bad_input_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .args([
            "replay",
            "--input",
            dir.path().to_str().unwrap(),
            "--config",
            "config/demo.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no *.raw.gz captures"));
    let o = Command::new(BIN)
        .args(["replay", "--speed", "fast"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
