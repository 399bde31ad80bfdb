//! The code and message of a venue's REST error answer, for the log line
//! that reports it (a cold path: only called when such an answer is logged).
//! Where they sit is the venue's fact ([`Protocol::rest_error_shape`]).
//!
//! [`Protocol::rest_error_shape`]: super::Protocol::rest_error_shape

use super::ErrorShape;
use crate::model::{DataType, VenueId};
use sonic_rs::JsonValueTrait;

/// The value at `path` in `body`, as text (strings unquoted; null is none).
fn value_at(body: &[u8], path: &[&str]) -> Option<String> {
    let v = sonic_rs::get(body, path.iter()).ok()?;
    match v.as_str() {
        Some(s) => Some(s.to_string()),
        None if v.is_null() => None,
        None => Some(v.as_raw_str().to_string()),
    }
}

/// `code <c>: <message>` of `venue`'s error answer; the body's start when it
/// holds neither (not JSON, another shape).
pub fn describe(venue: VenueId, body: &[u8]) -> String {
    describe_as(&super::protocol(venue).rest_error_shape(), body)
}

/// [`describe`] of a body in error shape `shape`.
pub fn describe_as(shape: &ErrorShape, body: &[u8]) -> String {
    let code = value_at(body, shape.code);
    let msg = value_at(body, shape.message);
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
        describe(venue, body)
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
        let cases: [(VenueId, &str, &str); 7] = [
            (
                VenueId::BinanceSpot,
                r#"{"code":-1121,"msg":"Invalid symbol."}"#,
                "code -1121: Invalid symbol.",
            ),
            (
                VenueId::BinanceDerivatives,
                r#"{"code":-1121,"msg":"Invalid symbol."}"#,
                "code -1121: Invalid symbol.",
            ),
            (
                VenueId::OkxSpot,
                r#"{"code":"51001","msg":"Instrument ID does not exist","data":[]}"#,
                "code 51001: Instrument ID does not exist",
            ),
            (
                VenueId::BybitSpot,
                r#"{"retCode":10001,"retMsg":"params error: symbol invalid","result":{}}"#,
                "code 10001: params error: symbol invalid",
            ),
            (
                VenueId::BybitLinear,
                r#"{"retCode":10001,"retMsg":"params error: symbol invalid","result":{}}"#,
                "code 10001: params error: symbol invalid",
            ),
            (
                VenueId::DeribitDerivatives,
                r#"{"jsonrpc":"2.0","error":{"code":10009,"message":"not_enough_funds"}}"#,
                "code 10009: not_enough_funds",
            ),
            // Another venue's shape is not this venue's error: the body is shown.
            (
                VenueId::DeribitDerivatives,
                r#"{"code":-1121,"msg":"Invalid symbol."}"#,
                r#"body "{\"code\":-1121,\"msg\":\"Invalid symbol.\"}""#,
            ),
        ];
        for (venue, body, want) in cases {
            assert_eq!(describe(venue, body.as_bytes()), want, "{venue} {body}");
        }
    }

    #[test]
    fn partial_and_foreign_bodies() {
        let shape = ErrorShape {
            code: &["code"],
            message: &["msg"],
        };
        assert_eq!(
            describe_as(&shape, br#"{"code":500}"#),
            "code 500: (no message)"
        );
        assert_eq!(describe_as(&shape, br#"{"msg":"busy"}"#), "code ?: busy");
        assert_eq!(
            describe_as(&shape, br#"{"code":null,"msg":null}"#),
            r#"body "{\"code\":null,\"msg\":null}""#
        );
        assert_eq!(
            describe_as(&shape, b"<html>Bad Gateway</html>"),
            r#"body "<html>Bad Gateway</html>""#
        );
    }
}
