//! Binance spot endpoints and documented limits.

/// Production market-data WebSocket base.
pub const WS_URL: &str = "wss://stream.binance.com:9443";
/// Production REST base.
pub const REST_URL: &str = "https://api.binance.com";
/// Instrument list (weight 20).
pub const EXCHANGE_INFO_PATH: &str = "/api/v3/exchangeInfo";
/// "A single connection can listen to a maximum of 1024 streams."
pub const MAX_STREAMS_PER_CONNECTION: usize = 1024;
