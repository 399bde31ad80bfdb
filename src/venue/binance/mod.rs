//! Binance. Docs: <https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams>.
//!
//! - [`spot`]: endpoints and limits of the spot market.
//! - [`wire`]: combined-stream frames → records (payload examples double as tests).
//! - [`instruments`]: `/api/v3/exchangeInfo` → symbol normalization.

pub mod futures;
pub mod instruments;
pub mod spot;
pub mod wire;

use crate::model::DataType;
use url::Url;

/// `<symbol>@<channel>`, symbol lower-case as Binance requires.
pub fn stream_name(symbol: &str, dt: DataType) -> String {
    let channel = match dt {
        DataType::Trade => "trade",
        _ => "unsupported",
    };
    format!("{}@{}", symbol.to_ascii_lowercase(), channel)
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
mod tests {
    use super::*;

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
}
