//! Collector configs the end-to-end tests share: every MarketPrism data type
//! from the mock exchange.

use std::path::Path;

/// `[exchanges.<v>]` on the mock at `port` (`path`: the venue's WebSocket path).
pub fn exchange_section(
    v: &str,
    port: u16,
    path: &str,
    ca: &Path,
    syms: &[&str],
    dts: &[&str],
) -> String {
    let q = |xs: &[&str]| {
        xs.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "[exchanges.{v}]\nws_url = \"wss://localhost:{port}{path}\"\nrest_url = \"https://localhost:{port}\"\n\
         ca_file = \"{}\"\nsymbols = [{}]\ndata_types = [{}]\n",
        ca.display(),
        q(syms),
        q(dts)
    )
}

/// Every MarketPrism data type, from four venues, plus Bybit funding when
/// `bybit` (MarketPrism itself has no Bybit).
pub fn every_type_exchanges(ca: &Path, mock_port: u16, bybit: bool) -> String {
    let polls = "poll_interval_ms = { open_interest = 1000, lsr_top_position = 1000, lsr_all_account = 1000 }\n";
    let mut text = exchange_section(
        "binance_spot",
        mock_port,
        "",
        ca,
        &["BTCUSDT", "ETHUSDT"],
        &["trade", "orderbook"],
    );
    text.push_str("book_publish_interval_ms = 10\nsnapshot_depth = 100\n");
    text.push_str(&exchange_section(
        "binance_derivatives",
        mock_port,
        "",
        ca,
        &["BTCUSDT"],
        &[
            "trade",
            "funding_rate",
            "liquidation",
            "open_interest",
            "lsr_top_position",
            "lsr_all_account",
        ],
    ));
    text.push_str(polls);
    text.push_str(&exchange_section(
        "okx_derivatives",
        mock_port,
        "/ws/v5/public",
        ca,
        &["BTC-USDT-SWAP"],
        &[
            "trade",
            "orderbook",
            "funding_rate",
            "open_interest",
            "liquidation",
            "lsr_top_position",
            "lsr_all_account",
        ],
    ));
    text.push_str("poll_interval_ms = { lsr_top_position = 1000, lsr_all_account = 1000 }\n");
    text.push_str("book_publish_interval_ms = 10\n");
    text.push_str(&exchange_section(
        "deribit_derivatives",
        mock_port,
        "/ws/api/v2",
        ca,
        &["BTC-PERPETUAL", "BTC"],
        &["trade", "volatility_index"],
    ));
    if bybit {
        text.push_str(&exchange_section(
            "bybit_linear",
            mock_port,
            "/v5/public/linear",
            ca,
            &["BTCUSDT"],
            &["funding_rate"],
        ));
    }
    text
}
