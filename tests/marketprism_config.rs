//! `config/marketprism.toml` is MarketPrism's shipped collector configuration
//! translated: it plans, and the plan holds exactly the venues, symbols and data
//! types of its `unified_data_collection.yaml`, with its book depth and cadence,
//! poll intervals, NATS transports and ports.

mod common;

use common::BIN;
use marketprism::config::Plan;
use marketprism::model::{DataType, VenueId};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const CONFIG: &str = "config/marketprism.toml";

/// MarketPrism's `exchanges.<venue>.symbols` × `data_types`, as shipped.
fn marketprism_deployment() -> BTreeSet<(String, String, String)> {
    let derivatives = [
        "orderbook",
        "trade",
        "funding_rate",
        "open_interest",
        "liquidation",
        "lsr_top_position",
        "lsr_all_account",
    ];
    let venues: [(&str, &[&str], &[&str]); 5] = [
        (
            "binance_spot",
            &["BTCUSDT", "ETHUSDT"],
            &["orderbook", "trade"],
        ),
        ("binance_derivatives", &["BTCUSDT", "ETHUSDT"], &derivatives),
        (
            "okx_spot",
            &["BTC-USDT", "ETH-USDT"],
            &["orderbook", "trade"],
        ),
        (
            "okx_derivatives",
            &["BTC-USDT-SWAP", "ETH-USDT-SWAP"],
            &derivatives,
        ),
        (
            "deribit_derivatives",
            &["BTC", "ETH"],
            &["volatility_index"],
        ),
    ];
    let mut want = BTreeSet::new();
    for (venue, symbols, types) in venues {
        for s in symbols {
            for t in types {
                want.insert((venue.to_string(), s.to_string(), t.to_string()));
            }
        }
    }
    want
}

fn plan() -> Plan {
    marketprism::config::load(Path::new(CONFIG)).expect("config/marketprism.toml plans")
}

#[test]
fn check_config_accepts_the_marketprism_config() {
    let o = Command::new(BIN)
        .args(["check-config", CONFIG])
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    // 28 WebSocket streams on 6 connections + 10 polls.
    assert!(
        out.contains("plan: 1 core(s), 6 connection(s), 38 stream(s)"),
        "{out}"
    );
    assert!(out.contains("sink nats:nats://127.0.0.1:4222"), "{out}");
    let venues: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("venue "))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        venues,
        [
            "binance_derivatives",
            "binance_spot",
            "deribit_derivatives",
            "okx_derivatives",
            "okx_spot"
        ]
    );
}

#[test]
fn the_plan_holds_exactly_marketprisms_venues_symbols_and_data_types() {
    let plan = plan();
    let mut got = BTreeSet::new();
    let mut n = 0;
    for core in &plan.cores {
        for c in &core.connections {
            for s in &c.streams {
                n += 1;
                got.insert((
                    c.venue.config_key().to_string(),
                    s.symbol.clone(),
                    s.data_type.name().to_string(),
                ));
            }
        }
        for p in &core.polls {
            n += 1;
            got.insert((
                p.venue.config_key().to_string(),
                p.symbol.clone(),
                p.data_type.name().to_string(),
            ));
        }
    }
    let want = marketprism_deployment();
    assert_eq!(want.len(), 38);
    assert_eq!(got, want);
    assert_eq!(n, 38, "every (venue, symbol, data type) planned once");
    let mut venues: Vec<VenueId> = plan.venues.iter().map(|v| v.id).collect();
    venues.sort_by_key(|v| v.config_key());
    assert_eq!(
        venues,
        [
            VenueId::BinanceDerivatives,
            VenueId::BinanceSpot,
            VenueId::DeribitDerivatives,
            VenueId::OkxDerivatives,
            VenueId::OkxSpot
        ]
    );
}

#[test]
fn books_and_polls_at_marketprisms_cadence() {
    let plan = plan();
    for v in &plan.venues {
        if v.data_types.contains(&DataType::OrderBook) {
            // MarketPrism's snapshot mode: 100 levels per side, once a second.
            assert_eq!(v.book_depth, 100, "{:?}", v.id);
            assert_eq!(
                v.book_publish_interval,
                Duration::from_secs(1),
                "{:?}",
                v.id
            );
        }
    }
    let mut polls: Vec<String> = plan
        .cores
        .iter()
        .flat_map(|c| &c.polls)
        .map(|p| {
            format!(
                "{} {} {} {}",
                p.venue.config_key(),
                p.symbol,
                p.data_type.name(),
                p.every.as_secs()
            )
        })
        .collect();
    polls.sort();
    assert_eq!(
        polls,
        [
            "binance_derivatives BTCUSDT lsr_all_account 20",
            "binance_derivatives BTCUSDT lsr_top_position 20",
            "binance_derivatives BTCUSDT open_interest 300",
            "binance_derivatives ETHUSDT lsr_all_account 20",
            "binance_derivatives ETHUSDT lsr_top_position 20",
            "binance_derivatives ETHUSDT open_interest 300",
            "okx_derivatives BTC-USDT-SWAP lsr_all_account 20",
            "okx_derivatives BTC-USDT-SWAP lsr_top_position 20",
            "okx_derivatives ETH-USDT-SWAP lsr_all_account 20",
            "okx_derivatives ETH-USDT-SWAP lsr_top_position 20",
        ]
    );
}

#[test]
fn nats_and_http_as_marketprism_deploys_them() {
    let plan = plan();
    assert!(!plan.file_sink, "MarketPrism's collector writes NATS only");
    let nats = plan.nats.as_ref().expect("NATS sink on");
    assert_eq!(nats.config.servers, ["nats://127.0.0.1:4222"]);
    assert_eq!(nats.config.stream, "MARKET_DATA");
    assert!(nats.config.jetstream);
    // Trades and books over core NATS, as MarketPrism sends them.
    assert_eq!(
        nats.config.core_nats_data_types,
        marketprism::sink::nats::CoreNats::List(vec!["trade".into(), "orderbook".into()])
    );
    // Only used when the stream is absent: MarketPrism's broker settings.
    assert_eq!(nats.config.max_age_s, 172_800);
    assert_eq!(nats.config.duplicate_window_s, 300);
    assert_eq!(nats.config.storage, "file");
    assert_eq!(nats.config.replicas, 1);
    assert_eq!(plan.http_listen.to_string(), "0.0.0.0:9092");
    assert_eq!(
        plan.http.health_listen.map(|a| a.to_string()).as_deref(),
        Some("0.0.0.0:8087")
    );
}
