//! `exchangeInfo` → [`InstrumentMap`]: `symbols[].symbol/baseAsset/quoteAsset/status`
//! (spot `/api/v3/exchangeInfo`; USDⓈ-M `/fapi/v1/exchangeInfo`, perpetuals only).

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
    /// USDⓈ-M only: `PERPETUAL`, `CURRENT_QUARTER`, ... (`""` while pending).
    #[serde(default)]
    contract_type: Option<String>,
}

/// Adds the listed spot symbols to `map`.
pub fn parse_exchange_info(body: &[u8], map: &mut InstrumentMap) -> Result<(), String> {
    parse(body, map, |_| true)
}

/// Adds the listed USDⓈ-M perpetuals to `map` (`contractType == "PERPETUAL"`;
/// quarterly `BTCUSDT_210924`-style contracts are not collected). Quantities
/// are in the base asset, so no contract value is set. Perpetuals that are
/// not `TRADING` are listed with `trading == false`, as spot symbols are.
pub fn parse_futures_exchange_info(body: &[u8], map: &mut InstrumentMap) -> Result<(), String> {
    parse(body, map, |s| {
        s.contract_type.as_deref() == Some("PERPETUAL")
    })
}

fn parse(
    body: &[u8],
    map: &mut InstrumentMap,
    keep: impl Fn(&SymbolInfo) -> bool,
) -> Result<(), String> {
    if let Err(m) = crate::venue::json::check_body(body) {
        return Err(format!(
            "exchangeInfo is not the expected JSON: {}",
            m.label()
        ));
    }
    let info: ExchangeInfo = sonic_rs::from_slice(body)
        .map_err(|e| format!("exchangeInfo is not the expected JSON: {e}"))?;
    for s in &info.symbols {
        if s.symbol.is_empty() || s.base_asset.is_empty() || s.quote_asset.is_empty() || !keep(s) {
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
    #[test]
    fn parses_recorded_exchange_info() {
        let text = super::super::tests::capture("BINANCE.0");
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
    fn futures_keeps_perpetuals_only() {
        let body = br#"{"symbols":[
            {"symbol":"BTCUSDT","pair":"BTCUSDT","contractType":"PERPETUAL","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","marginAsset":"USDT"},
            {"symbol":"BTCUSDT_210924","pair":"BTCUSDT","contractType":"CURRENT_QUARTER","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT"},
            {"symbol":"BTCSTUSDT","contractType":"","status":"PENDING_TRADING","baseAsset":"BTCST","quoteAsset":"USDT"},
            {"symbol":"OLDUSDT","contractType":"PERPETUAL","status":"SETTLING","baseAsset":"OLD","quoteAsset":"USDT"}
        ]}"#;
        let mut map = InstrumentMap::default();
        parse_futures_exchange_info(body, &mut map).unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map.normalize("BTCUSDT"), Some("BTC-USDT"));
        assert!(map.get("BTCUSDT").unwrap().trading);
        assert_eq!(map.get("BTCUSDT").unwrap().contract_value, None);
        assert!(!map.get("OLDUSDT").unwrap().trading);
        assert_eq!(map.get("BTCUSDT_210924"), None);
        let spot_only = br#"{"symbols":[{"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT"}]}"#;
        assert!(parse_futures_exchange_info(spot_only, &mut InstrumentMap::default()).is_err());
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_exchange_info(b"{\"code\":-1121}", &mut InstrumentMap::default()).is_err());
        assert!(parse_exchange_info(b"{\"symbols\":[]}", &mut InstrumentMap::default()).is_err());
        assert!(parse_exchange_info(b"<html>", &mut InstrumentMap::default()).is_err());
    }
}
