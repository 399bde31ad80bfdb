//! Scale-out: two collector instances split the symbols (rendezvous hashing)
//! and publish into one JetStream stream: every record exactly once in the
//! stream, and no symbol collected by both.

mod common;

use common::*;
use sonic_rs::JsonValueTrait;
use std::collections::BTreeSet;
use std::time::Duration;

const SYMBOLS: [&str; 6] = [
    "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ETHBTC",
];

#[test]
fn two_instances_split_the_work_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (np, mp) = (free_port(), free_port());
    let _nats = start_nats(np, mp, &dir.path().join("js"));
    let (mock, addr) = start_mock(&dir.path().join("tls"), &["--trades-per-symbol", "3000"]);
    let syms: Vec<String> = SYMBOLS.iter().map(|s| format!("\"{s}\"")).collect();
    let mut instances = Vec::new();
    for i in 1..=2 {
        let d = dir.path().join(format!("i{i}"));
        std::fs::create_dir_all(&d).unwrap();
        let cfg = d.join("c.toml");
        std::fs::write(
            &cfg,
            format!(
                "[cluster]\ninstance={i}\ninstances=2\n[engine]\ncores=[0,1]\n[http]\nlisten=\"127.0.0.1:0\"\n\
                 [sink]\nkind=[\"file\",\"nats\"]\npath=\"{}\"\n[sink.nats]\nservers=[\"nats://127.0.0.1:{np}\"]\n\
                 [exchanges.binance_spot]\nws_url=\"wss://localhost:{p}\"\nrest_url=\"https://localhost:{p}\"\n\
                 symbols=[{}]\ndata_types=[\"trade\"]\nstreams_per_connection=2\nca_file=\"{}\"\n",
                d.join("data").display(),
                syms.join(","),
                dir.path().join("tls/ca.pem").display(),
                p = addr.port()
            ),
        )
        .unwrap();
        // check-config shows what this instance owns.
        let out = std::process::Command::new(BIN)
            .args(["check-config", cfg.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            text.contains(&format!("cluster: instance {i} of 2")),
            "{text}"
        );
        instances.push((d, start_collector(&cfg)));
    }
    let total = 3000 * SYMBOLS.len() as u64;
    wait_until(
        "both instances acked everything",
        Duration::from_secs(90),
        || {
            instances
                .iter()
                .map(|(_, (_, m))| {
                    metric_sum(
                        &http_get(*m, "/metrics").1,
                        "marketprism_nats_acked_total",
                        &[],
                    ) as u64
                })
                .sum::<u64>()
                >= total
        },
    );
    assert_eq!(stream_messages(mp, "MARKET_DATA"), total);
    let mut owned: Vec<BTreeSet<String>> = Vec::new();
    for (d, (mut p, _)) in instances {
        assert_eq!(
            p.signal_and_wait(libc::SIGTERM, Duration::from_secs(20))
                .code(),
            Some(0)
        );
        let syms: BTreeSet<String> = read_records(&d.join("data"))
            .iter()
            .map(|(_, r)| {
                r.get("raw_symbol")
                    .and_then(|v| v.as_str())
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert!(!syms.is_empty(), "an instance collected nothing");
        owned.push(syms);
    }
    drop(mock);
    assert!(
        owned[0].is_disjoint(&owned[1]),
        "a symbol collected twice: {owned:?}"
    );
    let all: BTreeSet<String> = owned.iter().flatten().cloned().collect();
    assert_eq!(
        all,
        SYMBOLS
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>()
    );
}
