//! `/api/v3/exchangeInfo` → [`InstrumentMap`]: `symbols[].symbol/baseAsset/quoteAsset/status`.

use crate::venue::InstrumentMap;
use serde::Deserialize;

#[derive(Deserialize)]
struct ExchangeInfo {
    symbols: Vec<SymbolInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SymbolInfo {
    symbol: String,
    #[serde(default)]
    status: String,
    base_asset: String,
    quote_asset: String,
}

/// Adds the listed symbols to `map`.
pub fn parse_exchange_info(body: &[u8], map: &mut InstrumentMap) -> Result<(), String> {
    let info: ExchangeInfo = sonic_rs::from_slice(body)
        .map_err(|e| format!("exchangeInfo is not the expected JSON: {e}"))?;
    for s in &info.symbols {
        if s.symbol.is_empty() || s.base_asset.is_empty() || s.quote_asset.is_empty() {
            continue;
        }
        map.insert(
            &s.symbol,
            &s.base_asset,
            &s.quote_asset,
            s.status == "TRADING",
        );
    }
    if map.is_empty() {
        return Err("exchangeInfo lists no symbols".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real answer recorded with the captures (1.8 MB, 2021).
    const CAPTURE: &str = "../shared/captures/BINANCE.0";

    #[test]
    fn parses_recorded_exchange_info() {
        let Ok(text) = std::fs::read_to_string(CAPTURE) else {
            panic!("capture {CAPTURE} missing; tests expect ../shared beside the repo");
        };
        let line = text
            .lines()
            .find(|l| l.starts_with("https://api.binance.com/api/v3/exchangeInfo"))
            .expect("exchangeInfo line");
        let body = &line[line.find(": ").unwrap() + 2..];
        let mut map = InstrumentMap::default();
        parse_exchange_info(body.as_bytes(), &mut map).unwrap();
        assert!(map.len() > 1000, "{}", map.len());
        assert_eq!(map.normalize("BTCUSDT"), Some("BTC-USDT"));
        assert_eq!(map.normalize("NKNUSDT"), Some("NKN-USDT"));
        assert_eq!(map.normalize("BLZETH"), Some("BLZ-ETH"));
        assert_eq!(map.normalize("RUNEEUR"), Some("RUNE-EUR"));
        assert!(map.get("BTCUSDT").unwrap().trading);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_exchange_info(b"{\"code\":-1121}", &mut InstrumentMap::default()).is_err());
        assert!(parse_exchange_info(b"{\"symbols\":[]}", &mut InstrumentMap::default()).is_err());
        assert!(parse_exchange_info(b"<html>", &mut InstrumentMap::default()).is_err());
    }
}
