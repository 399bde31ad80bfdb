//! Binance. Docs: <https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams>.
//!
//! - [`spot`]: endpoints and limits of the spot market.
//! - [`wire`]: combined-stream frames → records (payload examples double as tests).
//! - [`instruments`]: `/api/v3/exchangeInfo` → symbol normalization.

pub mod instruments;
pub mod spot;
pub mod wire;

use crate::config::ConnectionPlan;
use crate::model::DataType;
use url::Url;

/// `<symbol>@<channel>`, symbol lower-case as Binance requires.
pub fn stream_name(symbol: &str, dt: DataType) -> String {
    let channel = match dt {
        DataType::Trade => "trade",
    };
    format!("{}@{}", symbol.to_ascii_lowercase(), channel)
}

/// `wss://host/stream?streams=a/b/c`: subscribing in the URL costs none of the
/// 5 control messages/s a connection is allowed.
pub fn combined_stream_url(base: &Url, conn: &ConnectionPlan) -> Url {
    let mut url = base.clone();
    url.set_path("/stream");
    let names: Vec<String> = conn
        .streams
        .iter()
        .map(|s| stream_name(&s.symbol, s.data_type))
        .collect();
    // Stream names are [a-z0-9@_] so they need no escaping; `/` is literal.
    url.set_query(Some(&format!("streams={}", names.join("/"))));
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StreamSpec;
    use crate::model::VenueId;

    #[test]
    fn combined_url_lists_streams() {
        let conn = ConnectionPlan {
            id: 0,
            venue: VenueId::BinanceSpot,
            venue_conn: 0,
            streams: vec![
                StreamSpec {
                    symbol: "BTCUSDT".into(),
                    data_type: DataType::Trade,
                },
                StreamSpec {
                    symbol: "ETHUSDT".into(),
                    data_type: DataType::Trade,
                },
            ],
        };
        let base = Url::parse(spot::WS_URL).unwrap();
        assert_eq!(
            combined_stream_url(&base, &conn).as_str(),
            "wss://stream.binance.com:9443/stream?streams=btcusdt@trade/ethusdt@trade"
        );
    }
}
