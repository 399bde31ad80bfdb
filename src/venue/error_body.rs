//! The code and message of a venue's REST error answer, for the log line
//! that reports it (a cold path: only called when such an answer is logged).
//!
//! Binance: `{"code":-1121,"msg":"Invalid symbol."}`; OKX:
//! `{"code":"51001","msg":"…","data":[]}`; Bybit: `{"retCode":10001,
//! "retMsg":"…"}`; Deribit: `{"error":{"code":10009,"message":"…"}}`.

use crate::model::{DataType, VenueId};
use sonic_rs::JsonValueTrait;

/// The first of `paths` present in `body`, as text (strings unquoted).
fn first_of(body: &[u8], paths: &[&[&str]]) -> Option<String> {
    paths.iter().find_map(|p| {
        let v = sonic_rs::get(body, p.iter()).ok()?;
        match v.as_str() {
            Some(s) => Some(s.to_string()),
            None if v.is_null() => None,
            None => Some(v.as_raw_str().to_string()),
        }
    })
}

/// `code <c>: <message>` of an error answer; the body's start when it holds
/// neither (not JSON, another shape).
pub fn describe(body: &[u8]) -> String {
    let code = first_of(body, &[&["code"], &["retCode"], &["error", "code"]]);
    let msg = first_of(body, &[&["msg"], &["retMsg"], &["error", "message"]]);
    match (code, msg) {
        (None, None) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(160)]);
            format!("body {text:?}")
        }
        (c, m) => format!(
            "code {}: {}",
            c.as_deref().unwrap_or("?"),
            m.as_deref().unwrap_or("(no message)")
        ),
    }
}

/// The log line of a polled REST answer that is an error body: venue,
/// request (data type and instrument), code and message.
pub fn poll_error(venue: VenueId, dt: DataType, raw_symbol: &str, body: &[u8]) -> String {
    format!(
        "{venue}: REST poll of {dt} for {raw_symbol} answered an error: {}",
        describe(body)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_error_line_names_venue_request_code_and_message() {
        assert_eq!(
            poll_error(
                VenueId::OkxDerivatives,
                DataType::LsrTopPosition,
                "BTC-USDT-SWAP",
                br#"{"code":"51001","msg":"Instrument ID does not exist","data":[]}"#
            ),
            "okx_derivatives: REST poll of lsr_top_position for BTC-USDT-SWAP answered an error: \
             code 51001: Instrument ID does not exist"
        );
    }

    #[test]
    fn each_venues_error_shape() {
        let cases: [(&str, &str); 6] = [
            (
                r#"{"code":-1121,"msg":"Invalid symbol."}"#,
                "code -1121: Invalid symbol.",
            ),
            (
                r#"{"code":"51001","msg":"Instrument ID does not exist","data":[]}"#,
                "code 51001: Instrument ID does not exist",
            ),
            (
                r#"{"retCode":10001,"retMsg":"params error: symbol invalid","result":{}}"#,
                "code 10001: params error: symbol invalid",
            ),
            (
                r#"{"jsonrpc":"2.0","error":{"code":10009,"message":"not_enough_funds"}}"#,
                "code 10009: not_enough_funds",
            ),
            (r#"{"code":500}"#, "code 500: (no message)"),
            (
                "<html>Bad Gateway</html>",
                r#"body "<html>Bad Gateway</html>""#,
            ),
        ];
        for (body, want) in cases {
            assert_eq!(describe(body.as_bytes()), want, "{body}");
        }
    }
}
