//! Binance combined-stream frames → records. **This is where a Binance frame
//! becomes a record.**
//!
//! A combined frame wraps each event: `{"stream":"btcusdt@trade","data":{...}}`.
//! Documented trade payload (spot docs, "Trade Streams"):
//! `{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}`
//! `m` = "is the buyer the market maker", so the taker sold when `m` is true.
//!
//! Control answers have no `stream`: `{"result":null,"id":1}`, errors either
//! `{"code":2,"msg":"..."}` or (live servers) `{"error":{"code":2,"msg":"..."},"id":1}`.
//!
//! Parsing is one typed pass with sonic-rs over borrowed `&str`s (no allocation);
//! decimals go straight from the received string to `rust_decimal` (never f64).

use crate::batch::{Batch, Record, Trade, TradeId};
use crate::model::{Side, VenueId};
use crate::venue::{FrameOutcome, InstrumentMap, Malformed};
use rust_decimal::Decimal;
use serde::de::IgnoredAny;
use serde::Deserialize;

/// Envelope of every frame; unknown fields are ignored.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow, default)]
    stream: Option<&'a str>,
    #[serde(borrow, default)]
    data: Option<Event<'a>>,
    #[serde(default)]
    error: Option<IgnoredAny>,
    #[serde(default)]
    code: Option<IgnoredAny>,
}

/// Event fields we read (union over the events we handle; all optional so the
/// event type decides which are required).
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "e", borrow, default)]
    event: Option<&'a str>,
    #[serde(rename = "E", default)]
    event_time: Option<u64>,
    #[serde(rename = "s", borrow, default)]
    symbol: Option<&'a str>,
    #[serde(rename = "t", default)]
    trade_id: Option<u64>,
    #[serde(rename = "p", borrow, default)]
    price: Option<&'a str>,
    #[serde(rename = "q", borrow, default)]
    quantity: Option<&'a str>,
    #[serde(rename = "T", default)]
    trade_time: Option<u64>,
    #[serde(rename = "m", default)]
    buyer_is_maker: Option<bool>,
}

/// Parses one text frame into `batch`.
pub fn on_text(
    text: &str,
    receive_ns: u64,
    instruments: &InstrumentMap,
    batch: &mut Batch,
) -> FrameOutcome {
    let frame: Frame<'_> = match sonic_rs::from_str(text) {
        Ok(f) => f,
        Err(e) if e.is_unmatched_type() => return FrameOutcome::Malformed(Malformed::WrongType),
        Err(_) => return FrameOutcome::Malformed(Malformed::BadJson),
    };
    let (stream, data) = match (frame.stream, frame.data) {
        (Some(s), Some(d)) => (s, d),
        (None, None) if frame.error.is_some() || frame.code.is_some() => {
            return FrameOutcome::ControlError
        }
        (None, None) => return FrameOutcome::Control,
        _ => return FrameOutcome::Malformed(Malformed::WrongType),
    };
    match data.event {
        Some("trade") if stream.ends_with("@trade") => trade(data, receive_ns, instruments, batch),
        _ => FrameOutcome::Malformed(Malformed::UnknownEvent),
    }
}

fn trade(
    ev: Event<'_>,
    receive_ns: u64,
    instruments: &InstrumentMap,
    batch: &mut Batch,
) -> FrameOutcome {
    let (Some(raw_symbol), Some(id), Some(p), Some(q), Some(t), Some(m)) = (
        ev.symbol,
        ev.trade_id,
        ev.price,
        ev.quantity,
        ev.trade_time,
        ev.buyer_is_maker,
    ) else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    let (Some(price), Some(quantity)) = (decimal(p), decimal(q)) else {
        return FrameOutcome::Malformed(Malformed::InvalidNumber);
    };
    let Some(symbol) = instruments.normalize(raw_symbol) else {
        return FrameOutcome::Malformed(Malformed::UnknownSymbol);
    };
    let pushed = batch.push_with::<()>(receive_ns, |bump| {
        Ok(Record::Trade(Trade {
            venue: VenueId::BinanceSpot,
            symbol: bump.alloc_str(symbol),
            raw_symbol: bump.alloc_str(raw_symbol),
            trade_id: TradeId::Num(id),
            price,
            quantity,
            side: if m { Side::Sell } else { Side::Buy },
            contracts: None,
            is_maker: Some(m),
            trade_ts_ms: t,
            ts_ms: ev.event_time.unwrap_or(t),
            receive_ts_ns: receive_ns,
        }))
    });
    match pushed {
        Ok(()) => FrameOutcome::Records(1),
        Err(()) => FrameOutcome::Malformed(Malformed::WrongType),
    }
}

/// Exact decimal from the venue's string; negative values are not prices or sizes.
#[inline]
fn decimal(s: &str) -> Option<Decimal> {
    let d = Decimal::from_str_exact(s).ok()?;
    if d.is_sign_negative() {
        return None;
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instruments() -> InstrumentMap {
        let mut m = InstrumentMap::default();
        m.insert("BNBBTC", "BNB", "BTC", true);
        m.insert("BTCUSDT", "BTC", "USDT", true);
        m
    }

    fn one(text: &str) -> (FrameOutcome, Option<String>) {
        let mut b = Batch::new(4, 4096);
        let out = on_text(text, 42, &instruments(), &mut b);
        let rec = b.iter().next().map(|r| format!("{r:?}"));
        (out, rec)
    }

    /// The documented example, wrapped as a combined stream frame.
    const DOC_TRADE: &str = r#"{"stream":"bnbbtc@trade","data":{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}}"#;

    #[test]
    fn documented_trade_becomes_a_record() {
        let mut b = Batch::new(4, 4096);
        assert_eq!(
            on_text(DOC_TRADE, 7, &instruments(), &mut b),
            FrameOutcome::Records(1)
        );
        let Some(Record::Trade(t)) = b.iter().next() else {
            panic!("no record")
        };
        assert_eq!(t.symbol, "BNB-BTC");
        assert_eq!(t.raw_symbol, "BNBBTC");
        assert_eq!(t.trade_id, TradeId::Num(12345));
        assert_eq!(t.price.to_string(), "0.001");
        assert_eq!(t.quantity.to_string(), "100");
        assert_eq!(
            t.side,
            Side::Sell,
            "m:true means the buyer was maker: taker sold"
        );
        assert_eq!(t.is_maker, Some(true));
        assert_eq!(t.trade_ts_ms, 1672515782136);
        assert_eq!(t.ts_ms, 1672515782136);
        assert_eq!(t.receive_ts_ns, 7);
    }

    #[test]
    fn keeps_trailing_zeros_and_buy_side() {
        let f = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"64000.10000000","q":"0.00100000","T":1,"m":false,"M":true,"x":"new field"}}"#;
        let mut b = Batch::new(4, 4096);
        assert_eq!(
            on_text(f, 1, &instruments(), &mut b),
            FrameOutcome::Records(1)
        );
        let Some(Record::Trade(t)) = b.iter().next() else {
            panic!()
        };
        assert_eq!(t.price.to_string(), "64000.10000000");
        assert_eq!(t.quantity.to_string(), "0.00100000");
        assert_eq!(t.side, Side::Buy);
        assert_eq!((t.trade_ts_ms, t.ts_ms), (1, 2));
    }

    #[test]
    fn more_digits_than_f64_survive() {
        let f = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"0.1000000000000000055511151231","q":"1","T":1,"m":false}}"#;
        let mut b = Batch::new(4, 4096);
        assert_eq!(
            on_text(f, 1, &instruments(), &mut b),
            FrameOutcome::Records(1)
        );
        let Some(Record::Trade(t)) = b.iter().next() else {
            panic!()
        };
        assert_eq!(t.price.to_string(), "0.1000000000000000055511151231");
    }

    #[test]
    fn control_frames() {
        assert_eq!(one(r#"{"result":null,"id":1}"#).0, FrameOutcome::Control);
        assert_eq!(
            one(r#"{"result":["btcusdt@trade"],"id":"abc"}"#).0,
            FrameOutcome::Control
        );
        assert_eq!(
            one(r#"{"code": 2, "msg": "Invalid request: too many parameters"}"#).0,
            FrameOutcome::ControlError
        );
        assert_eq!(
            one(r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":1}"#).0,
            FrameOutcome::ControlError
        );
    }

    #[test]
    fn malformed_frames_are_classified_and_push_nothing() {
        let cases = [
            (
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":17"#,
                Malformed::BadJson,
            ),
            ("not json", Malformed::BadJson),
            ("", Malformed::BadJson),
            (
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":123.45,"q":"1","T":1,"m":false}}"#,
                Malformed::WrongType,
            ),
            (
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":"9","p":"1","q":"1","T":1,"m":false}}"#,
                Malformed::WrongType,
            ),
            (
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","p":"1","q":"1","T":1,"m":false}}"#,
                Malformed::WrongType,
            ),
            (
                r#"{"stream":"btcusdt@weird","data":{"e":"weird","E":1}}"#,
                Malformed::UnknownEvent,
            ),
            (
                r#"{"stream":"btcusdt@trade","data":{"E":1}}"#,
                Malformed::UnknownEvent,
            ),
            (
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"12.3.4","q":"1","T":1,"m":false}}"#,
                Malformed::InvalidNumber,
            ),
            (
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"1e5","q":"1","T":1,"m":false}}"#,
                Malformed::InvalidNumber,
            ),
            (
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"-1","q":"1","T":1,"m":false}}"#,
                Malformed::InvalidNumber,
            ),
            (
                r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"1","q":"99999999999999999999999999999999","T":1,"m":false}}"#,
                Malformed::InvalidNumber,
            ),
            (
                r#"{"stream":"dogeusdt@trade","data":{"e":"trade","E":2,"s":"DOGEUSDT","t":9,"p":"1","q":"1","T":1,"m":false}}"#,
                Malformed::UnknownSymbol,
            ),
            (r#"{"stream":"btcusdt@trade"}"#, Malformed::WrongType),
            (r#"[1,2,3]"#, Malformed::WrongType),
        ];
        for (text, want) in cases {
            let (out, rec) = one(text);
            assert_eq!(out, FrameOutcome::Malformed(want), "{text}");
            assert_eq!(rec, None, "{text}");
        }
    }

    #[test]
    fn escaped_strings_are_rejected_not_panicking() {
        let f = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":2,"s":"BTC\u0055SDT","t":9,"p":"1","q":"1","T":1,"m":false}}"#;
        assert!(matches!(one(f).0, FrameOutcome::Malformed(_)));
    }

    /// Real aggTrade frames from the 2021 capture are a stream this build does
    /// not subscribe to: they must be counted as unknown, never mis-parsed.
    #[test]
    fn recorded_frames_never_panic() {
        let text = std::fs::read_to_string("../shared/captures/BINANCE.ws.1.0").expect("capture");
        let mut b = Batch::new(64, 1 << 16);
        let mut unknown = 0;
        for line in text
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        {
            let Some(i) = line.find(": ") else { continue };
            let frame = &line[i + 2..];
            match on_text(frame, 0, &instruments(), &mut b) {
                FrameOutcome::Malformed(Malformed::UnknownEvent) => unknown += 1,
                FrameOutcome::Control => {}
                other => panic!("{other:?} for {frame}"),
            }
        }
        assert!(unknown > 100, "{unknown}");
        assert!(b.is_empty());
    }
}
