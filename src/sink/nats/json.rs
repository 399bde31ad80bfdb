//! The JSON bodies of the NATS protocol we read and write: INFO, CONNECT,
//! PubAcks and JetStream API replies, stream settings. (Re-exported by
//! [`super::proto`].)

use super::proto_error::{perr, ProtoError};
use serde::{Deserialize, Serialize};

/// The fields of INFO we use.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServerInfo {
    #[serde(default)]
    pub server_id: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub max_payload: Option<u64>,
    #[serde(default)]
    pub headers: bool,
    #[serde(default)]
    pub tls_required: bool,
    #[serde(default)]
    pub tls_available: bool,
    #[serde(default)]
    pub auth_required: bool,
    #[serde(default)]
    pub jetstream: bool,
    #[serde(default)]
    pub connect_urls: Vec<String>,
}

pub fn parse_info(json: &[u8]) -> Result<ServerInfo, ProtoError> {
    sonic_rs::from_slice(json).map_err(|e| ProtoError(format!("bad INFO JSON: {e}")))
}

/// CONNECT options. Serialized with serde so strings are escaped.
#[derive(Serialize)]
pub struct Connect<'a> {
    pub verbose: bool,
    pub pedantic: bool,
    pub tls_required: bool,
    pub name: &'a str,
    pub lang: &'a str,
    pub version: &'a str,
    pub protocol: u8,
    pub headers: bool,
    pub no_responders: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<&'a str>,
}

/// `CONNECT {json}\r\nPING\r\n`
pub fn encode_connect(out: &mut Vec<u8>, c: &Connect<'_>) {
    out.extend_from_slice(b"CONNECT ");
    // Serializing a struct of strings and bools into a Vec cannot fail.
    if sonic_rs::to_writer(&mut *out, c).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\r\nPING\r\n");
}

/// A JetStream API error object.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub code: u32,
    #[serde(default)]
    pub err_code: u32,
    #[serde(default)]
    pub description: String,
}

/// A PubAck (`{"stream":..,"seq":..,"duplicate":..}`) or an API error.
#[derive(Debug, Deserialize)]
pub struct PubAck<'a> {
    /// Borrowed from the reply; `None` if absent or escaped (never allocated).
    #[serde(default, borrow)]
    pub stream: Borrowed<'a>,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default)]
    pub duplicate: bool,
    #[serde(default)]
    pub error: Option<ApiError>,
}

/// A JSON string borrowed from the input, or `None` (absent, `null`, or
/// escaped: an escaped string would need a copy, and no stream name needs it).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Borrowed<'a>(pub Option<&'a str>);

impl<'de: 'a, 'a> Deserialize<'de> for Borrowed<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Borrowed<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Borrowed(Some(v)))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Borrowed(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Borrowed(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Borrowed(None))
            }
        }
        d.deserialize_str(V)
    }
}

pub fn parse_pub_ack(json: &[u8]) -> Result<PubAck<'_>, ProtoError> {
    if let Some(a) = plain_pub_ack(json) {
        return Ok(a);
    }
    sonic_rs::from_slice(json).map_err(|e| perr(&format!("bad PubAck ({e})"), json))
}

/// The PubAck nats-server writes for every stored message,
/// `{"stream":"<name>", "seq":<n>}` (the space is the server's; accepted with
/// or without) and an optional `,"duplicate":true|false`,
/// read without a JSON parser (one per record under load); anything else
/// (escapes, other fields, errors) is left to the full parser.
fn plain_pub_ack(json: &[u8]) -> Option<PubAck<'_>> {
    let rest = json.strip_prefix(br#"{"stream":""#)?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    if rest[end] != b'"' {
        return None;
    }
    let stream = std::str::from_utf8(&rest[..end]).ok()?;
    let rest = rest[end + 1..].strip_prefix(b",")?;
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let rest = rest.strip_prefix(br#""seq":"#)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    // u64 has at most 20 digits; a leading zero is not JSON.
    if digits == 0 || digits > 19 || (digits > 1 && rest[0] == b'0') {
        return None;
    }
    let seq = rest[..digits]
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    let duplicate = match &rest[digits..] {
        b"}" => false,
        br#","duplicate":true}"# | br#", "duplicate":true}"# => true,
        br#","duplicate":false}"# | br#", "duplicate":false}"# => false,
        _ => return None,
    };
    Some(PubAck {
        stream: Borrowed(Some(stream)),
        seq: Some(seq),
        duplicate,
        error: None,
    })
}

/// Stream settings sent to `$JS.API.STREAM.CREATE|UPDATE.<name>`.
#[derive(Debug, Serialize)]
pub struct StreamConfig<'a> {
    pub name: &'a str,
    pub subjects: &'a [String],
    pub storage: &'a str,
    /// Nanoseconds.
    pub max_age: u64,
    /// Nanoseconds.
    pub duplicate_window: u64,
    pub retention: &'a str,
    pub discard: &'a str,
    pub num_replicas: u32,
}

pub fn encode_json<T: Serialize>(v: &T) -> Vec<u8> {
    sonic_rs::to_vec(v).unwrap_or_default()
}

/// Reply to a stream create/update: the error if any.
#[derive(Debug, Deserialize)]
pub struct ApiReply {
    #[serde(default)]
    pub error: Option<ApiError>,
}

pub fn parse_api_reply(json: &[u8]) -> Result<ApiReply, ProtoError> {
    sonic_rs::from_slice(json).map_err(|e| perr(&format!("bad API reply ({e})"), json))
}

#[cfg(test)]
mod pub_ack_tests {
    use super::*;

    fn full(json: &[u8]) -> PubAck<'_> {
        sonic_rs::from_slice(json).unwrap()
    }

    /// The hand-read PubAck says exactly what the JSON parser says, and
    /// leaves every other shape to it.
    #[test]
    fn plain_pub_ack_agrees_with_the_parser() {
        let plain: [&[u8]; 7] = [
            br#"{"stream":"MARKET_DATA", "seq":12}"#,
            br#"{"stream":"MARKET_DATA", "seq":13, "duplicate":true}"#,
            br#"{"stream":"MARKET_DATA","seq":12}"#,
            br#"{"stream":"S","seq":0}"#,
            br#"{"stream":"MARKET_DATA","seq":1234567890123456789,"duplicate":true}"#,
            br#"{"stream":"MARKET_DATA","seq":7,"duplicate":false}"#,
            br#"{"stream":"","seq":3}"#,
        ];
        for j in plain {
            let (a, b) = (plain_pub_ack(j).unwrap(), full(j));
            assert_eq!(
                (a.stream, a.seq, a.duplicate, a.error.is_none()),
                (b.stream, b.seq, b.duplicate, b.error.is_none()),
                "{}",
                String::from_utf8_lossy(j)
            );
        }
        let other: [&[u8]; 9] = [
            br#"{"stream":"S", "domain":"hub", "seq":1}"#,
            br#"{"stream":"A\u0042","seq":1}"#,
            br#"{"seq":1}"#,
            br#"{"stream":"S","seq":01}"#,
            br#"{"stream":"S","seq":12345678901234567890}"#,
            br#"{"stream":"S","seq":1,"domain":"hub"}"#,
            br#"{"stream":"S","seq":}"#,
            br#"{"stream":"S","seq":1} "#,
            br#"{"error":{"code":503,"err_code":10039,"description":"x"}}"#,
        ];
        for j in other {
            assert!(plain_pub_ack(j).is_none(), "{}", String::from_utf8_lossy(j));
        }
        let a = parse_pub_ack(br#"{"stream":"S","seq":1,"domain":"hub"}"#).unwrap();
        assert_eq!((a.stream, a.seq), (Borrowed(Some("S")), Some(1)));
    }
}
