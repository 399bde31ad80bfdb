//! The command line contract: `check-config` prints the plan or names the bad
//! key with exit code 2; unknown commands are usage errors.

mod common;

use common::BIN;
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(BIN).args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn check_config_prints_the_plan_for_the_default_config() {
    let (code, out, err) = run(&["check-config", "config/default.toml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("plan: 1 core(s), 6 connection(s), 38 stream(s)"),
        "{out}"
    );
    // USDⓈ-M streams split by route; polled types listed as polls.
    assert!(
        out.contains("binance_derivatives#1 /public: 2 stream(s) on 2 channel(s): btcusdt@depth@100ms ethusdt@depth@100ms"),
        "{out}"
    );
    assert!(
        out.contains("poll binance_derivatives BTCUSDT open_interest every 300s"),
        "{out}"
    );
    assert!(
        out.contains("deribit_volatility_index.btc_usd deribit_volatility_index.eth_usd"),
        "{out}"
    );
}

#[test]
fn check_config_rejects_bad_keys_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[exchanges.kraken_spot]\nsymbols=[\"X\"]\ndata_types=[\"trade\"]\n", "exchanges.kraken_spot"),
        (
            "[exchanges.binance_spot]\nsymbols=[\"BTCUSDT\"]\ndata_types=[\"candles\"]\n",
            "exchanges.binance_spot.data_types[0]",
        ),
        (
            "[engine]\ncores=[0]\nbatch_max_delay_ms=0\n[exchanges.binance_spot]\nsymbols=[\"BTCUSDT\"]\ndata_types=[\"trade\"]\n",
            "engine.batch_max_delay_ms",
        ),
        (
            "[exchanges.binance_spot]\nsymbols=[\"BTCUSDT\"]\ndata_types=[\"trade\"]\nrest_timeout_ms=0\n",
            "exchanges.binance_spot.rest_timeout_ms",
        ),
        ("[engine]\nbogus=1\n", "bogus"),
    ];
    for (i, (text, key)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&p, text).unwrap();
        let (code, out, err) = run(&["check-config", p.to_str().unwrap()]);
        assert_eq!(code, 2, "{text}: {out}{err}");
        assert!(err.contains(key), "expected key {key} in: {err}");
        let (code, _, err) = run(&["run", "--config", p.to_str().unwrap()]);
        assert_eq!(code, 2, "run must refuse it too: {err}");
    }
    let (code, _, err) = run(&["check-config", "/nonexistent.toml"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["frobnicate"]).0, 2);
    assert_eq!(run(&[]).0, 2);
    assert_eq!(run(&["run", "--bogus"]).0, 2);
    assert_eq!(run(&["--version"]).0, 0);
}
