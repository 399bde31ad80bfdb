//! Binance. Docs: <https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams>.
//!
//! USDⓈ-M: <https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams>.
//!
//! - [`spot`]: endpoints, channels and limits of the spot market.
//! - [`futures`]: the same for USDⓈ-M perpetuals (routed `public`/`market` entry points, REST polls).
//! - [`wire`]: combined-stream frames of both → records / book messages (payload examples double as tests).
//! - [`rest`]: REST answers → book snapshots, open interest, long/short ratios.
//! - [`instruments`]: `exchangeInfo` → symbol normalization.

pub mod futures;
pub mod history;
pub mod instruments;
pub mod rest;
pub mod spot;
pub mod wire;

use crate::model::DataType;
use url::Url;

/// Spot `<symbol>@<channel>`, symbol lower-case as Binance requires.
/// `orderbook` and `orderbook_delta` share the diff-depth stream.
pub fn stream_name(symbol: &str, dt: DataType) -> String {
    let channel = match dt {
        DataType::Trade => "trade",
        DataType::OrderBook | DataType::OrderBookDelta => "depth@100ms",
        DataType::Ticker => "bookTicker",
        _ => "unsupported",
    };
    channel_name(symbol, channel)
}

/// `<symbol lower-case>@<channel>`.
pub(crate) fn channel_name(symbol: &str, channel: &str) -> String {
    let mut s = String::with_capacity(symbol.len() + 1 + channel.len());
    for c in symbol.chars() {
        s.push(c.to_ascii_lowercase());
    }
    s.push('@');
    s.push_str(channel);
    s
}

/// `UNSUBSCRIBE` then `SUBSCRIBE` of `channels` on a live connection (the
/// URL subscribed them at connect; JSON methods are the way afterwards).
/// Two control messages whatever the count: within the 5 (spot) / 10
/// (USDⓈ-M) messages a connection may send per second.
pub fn resubscribe_frames(channels: &[String]) -> Vec<String> {
    if channels.is_empty() {
        return Vec::new();
    }
    let params = channels
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(",");
    vec![
        format!("{{\"method\":\"UNSUBSCRIBE\",\"params\":[{params}],\"id\":1}}"),
        format!("{{\"method\":\"SUBSCRIBE\",\"params\":[{params}],\"id\":2}}"),
    ]
}

/// `wss://host[/route]/stream?streams=a/b/c`: subscribing in the URL costs
/// none of the control messages/s a connection is allowed. `route` is USDⓈ-M's
/// `public` / `market` entry point ("" for spot).
pub fn combined_stream_url(base: &Url, route: &str, channels: &[String]) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    if route.is_empty() {
        url.set_path(&format!("{prefix}/stream"));
    } else {
        url.set_path(&format!("{prefix}/{route}/stream"));
    }
    // Stream names are [a-z0-9@_!] so they need no escaping; `/` is literal.
    url.set_query(Some(&format!("streams={}", channels.join("/"))));
    url
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A recorded capture, from `tests/fixtures/captures/` (in the checkout).
    pub(crate) fn capture(name: &str) -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/captures/");
        std::fs::read_to_string(format!("{path}{name}"))
            .unwrap_or_else(|e| panic!("capture {path}{name}: {e}"))
    }

    #[test]
    fn combined_url_lists_streams() {
        let base = Url::parse(spot::WS_URL).unwrap();
        let ch = vec!["btcusdt@trade".to_string(), "ethusdt@trade".to_string()];
        assert_eq!(
            combined_stream_url(&base, "", &ch).as_str(),
            "wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@trade"
        );
        let base = Url::parse("wss://fstream.binance.com").unwrap();
        assert_eq!(
            combined_stream_url(&base, "market", &ch[..1]).as_str(),
            "wss://fstream.binance.com/market/stream?streams=btcusdt@trade"
        );
    }

    #[test]
    fn resubscription_is_two_control_messages() {
        let ch = vec![
            "btcusdt@trade".to_string(),
            "ethusdt@depth@100ms".to_string(),
        ];
        assert_eq!(
            resubscribe_frames(&ch),
            vec![
                r#"{"method":"UNSUBSCRIBE","params":["btcusdt@trade","ethusdt@depth@100ms"],"id":1}"#,
                r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","ethusdt@depth@100ms"],"id":2}"#,
            ]
        );
        assert!(resubscribe_frames(&[]).is_empty());
    }
}
