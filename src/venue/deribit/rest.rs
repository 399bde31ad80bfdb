//! `GET /api/v2/public/get_instruments?currency=any&kind=future` → [`InstrumentMap`].
//!
//! Keeps the perpetuals (`settlement_period == "perpetual"`), normalized from
//! the listed currencies: `BTC-PERPETUAL` (base BTC, quote USD, inverse) →
//! `BTC-USD`; `BTC_USDC-PERPETUAL` (base BTC, quote USDC, linear) → `BTC-USDC`.
//! Amounts of instruments quoted in `USD` are USD (see [`super::wire`]);
//! `contract_value` stays `None` (Deribit amounts are not contract counts).

use crate::venue::{ErrorShape, InstrumentMap, RestRequest};
use serde::Deserialize;

/// Error answers, for their log line: Deribit (JSON-RPC): `{"jsonrpc":"2.0","error":{"code":10009,"message":"…"}}`.
pub const ERROR_SHAPE: ErrorShape = ErrorShape {
    code: &["error", "code"],
    message: &["error", "message"],
};

pub const INSTRUMENTS_PATH: &str = "/api/v2/public/get_instruments?currency=any&kind=future";

pub fn instruments_request() -> RestRequest {
    RestRequest {
        path: INSTRUMENTS_PATH.to_string(),
        weight: 1,
    }
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    result: Option<Vec<InstrumentInfo>>,
    #[serde(default)]
    error: Option<sonic_rs::Value>,
}

#[derive(Deserialize)]
struct InstrumentInfo {
    instrument_name: String,
    base_currency: String,
    quote_currency: String,
    #[serde(default)]
    settlement_period: String,
    #[serde(default)]
    is_active: bool,
}

/// Adds the listed perpetuals to `map`.
pub fn parse_instruments(body: &[u8], map: &mut InstrumentMap) -> Result<(), String> {
    if let Err(m) = crate::venue::json::check_body(body) {
        return Err(format!(
            "get_instruments is not the expected JSON: {}",
            m.label()
        ));
    }
    let resp: Response = sonic_rs::from_slice(body)
        .map_err(|e| format!("get_instruments is not the expected JSON: {e}"))?;
    if let Some(e) = resp.error {
        return Err(format!("get_instruments error: {e}"));
    }
    let list = resp
        .result
        .ok_or_else(|| "get_instruments has no result".to_string())?;
    for i in &list {
        if i.settlement_period != "perpetual"
            || i.instrument_name.is_empty()
            || i.base_currency.is_empty()
            || i.quote_currency.is_empty()
        {
            continue;
        }
        map.insert(
            &i.instrument_name,
            &i.base_currency,
            &i.quote_currency,
            i.is_active,
        );
    }
    if map.is_empty() {
        return Err("get_instruments lists no perpetuals".to_string());
    }
    Ok(())
}
