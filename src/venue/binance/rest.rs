//! Binance REST answers → book snapshots and polled records.
//!
//! Documented answers (each one a fixture in `tests/fixtures/binance/`):
//! - spot `GET /api/v3/depth`: `{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"]]}`
//! - USDⓈ-M `GET /fapi/v1/depth`: the same plus `"E"` (message output time) and `"T"` (transaction time)
//! - `GET /fapi/v1/openInterest`: `{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}`
//! - `GET /futures/data/topLongShortPositionRatio` and `/globalLongShortAccountRatio`:
//!   `[{"symbol":"BTCUSDT","longShortRatio":"1.4342","longAccount":"0.5344","shortAccount":"0.4656","timestamp":"1583139600000"}]`
//!   (`timestamp` is a string in the docs, a number on live servers: both are read)
//! - errors: `{"code":-1121,"msg":"Invalid symbol."}`
//!
//! A polled answer is turned into its record(s) every time: the same 5-minute
//! datapoint polled twice yields the same record twice, and de-duplication by
//! timestamp is the engine's job.

use super::wire::{self, LevelsSeed};
use crate::batch::{Batch, LongShortRatio, OpenInterest, Origin, Record};
use crate::book::BookMsg;
use crate::model::{DataType, VenueId};
use crate::venue::{ErrorShape, FrameOutcome, Instrument, Malformed};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// Error answers, for their log line: Binance (spot and USDⓈ-M): `{"code":-1121,"msg":"Invalid symbol."}`.
pub const ERROR_SHAPE: ErrorShape = ErrorShape {
    code: &["code"],
    message: &["msg"],
};

/// Binance's "Invalid symbol." error code.
const INVALID_SYMBOL: i64 = -1121;

/// Period of the long/short ratio datapoints collected (MarketPrism's).
pub const LSR_PERIOD: &str = "5m";

/// A REST depth answer → `msg` as a full snapshot (`last_id` = `lastUpdateId`).
pub fn parse_depth_snapshot(
    raw_symbol: &str,
    body: &[u8],
    receive_ns: u64,
    msg: &mut BookMsg,
) -> Result<(), Malformed> {
    msg.clear();
    crate::venue::json::check_body(body)?;
    let mut bad_level = false;
    let mut de = sonic_rs::Deserializer::from_slice(body);
    let parsed = DepthSeed {
        msg: &mut *msg,
        bad_level: &mut bad_level,
    }
    .deserialize(&mut de)
    .and_then(|d| de.end().map(|()| d));
    let d = match parsed {
        Ok(d) => d,
        Err(e) => {
            msg.clear();
            return Err(wire::json_error(&e));
        }
    };
    if let Some(code) = d.code {
        msg.clear();
        return Err(if code == INVALID_SYMBOL {
            Malformed::UnknownSymbol
        } else {
            Malformed::WrongType
        });
    }
    let (Some(last), true, true) = (d.last_update_id, d.bids, d.asks) else {
        msg.clear();
        return Err(Malformed::WrongType);
    };
    if bad_level {
        msg.clear();
        return Err(Malformed::InvalidNumber);
    }
    msg.raw_symbol.push_str(raw_symbol);
    msg.snapshot = true;
    msg.first_id = last;
    msg.last_id = last;
    msg.prev_id = None;
    msg.ts_ms = d.event_time.unwrap_or(receive_ns / 1_000_000);
    Ok(())
}

/// `/fapi/v1/openInterest` → one [`OpenInterest`] (base coins: USDⓈ-M
/// quantities are in the base asset).
pub fn parse_open_interest(
    venue: VenueId,
    inst: &Instrument,
    body: &[u8],
    receive_ns: u64,
    batch: &mut Batch,
) -> FrameOutcome {
    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(rename = "openInterest", borrow, default)]
        open_interest: Option<&'a str>,
        #[serde(borrow, default)]
        symbol: Option<&'a str>,
        #[serde(default)]
        time: Option<u64>,
        #[serde(default)]
        code: Option<IgnoredAny>,
    }
    if let Err(m) = crate::venue::json::check_body(body) {
        return FrameOutcome::Malformed(m);
    }
    let b: Body<'_> = match sonic_rs::from_slice(body) {
        Ok(b) => b,
        Err(e) => return FrameOutcome::Malformed(wire::json_error(&e)),
    };
    let (Some(oi), Some(time)) = (b.open_interest, b.time) else {
        if b.code.is_some() {
            return FrameOutcome::ControlError;
        }
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    let Some(open_interest) = wire::decimal(oi) else {
        return FrameOutcome::Malformed(Malformed::InvalidNumber);
    };
    if b.symbol.is_some_and(|s| s != inst.native) {
        return FrameOutcome::Malformed(Malformed::UnknownSymbol);
    }
    wire::push(batch, receive_ns, |bump| {
        Record::OpenInterest(OpenInterest {
            origin: Origin {
                venue,
                symbol: bump.alloc_str(&inst.normalized),
                raw_symbol: bump.alloc_str(&inst.native),
                ts_ms: time,
                receive_ts_ns: receive_ns,
            },
            open_interest,
            contracts: None,
            value_usd: None,
        })
    })
}

/// `/futures/data/*LongShort*Ratio` → one [`LongShortRatio`] per listed
/// datapoint (one with `limit=1`), `period` [`LSR_PERIOD`]. An empty list is
/// `Records(0)`. All or nothing: a rejected body (a bad entry, or JSON cut
/// after complete entries) leaves no records in the batch.
pub fn parse_long_short_ratio(
    venue: VenueId,
    dt: DataType,
    inst: &Instrument,
    body: &[u8],
    receive_ns: u64,
    batch: &mut Batch,
) -> FrameOutcome {
    if let Err(m) = crate::venue::json::check_body(body) {
        return FrameOutcome::Malformed(m);
    }
    let first = body.iter().find(|c| !c.is_ascii_whitespace());
    if first == Some(&b'{') {
        return error_object(body);
    }
    let start = batch.len();
    let mut pushed = 0u32;
    let mut failed = None;
    let mut de = sonic_rs::Deserializer::from_slice(body);
    let parsed = LsrSeed {
        venue,
        dt,
        inst,
        receive_ns,
        batch,
        pushed: &mut pushed,
        failed: &mut failed,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    let out = match (parsed, failed) {
        (Err(e), _) => FrameOutcome::Malformed(wire::json_error(&e)),
        (Ok(()), Some(m)) => FrameOutcome::Malformed(m),
        (Ok(()), None) => return FrameOutcome::Records(pushed),
    };
    batch.truncate(start);
    out
}

/// An object where a list was expected: the venue's error answer, or not ours.
fn error_object(body: &[u8]) -> FrameOutcome {
    #[derive(Deserialize)]
    struct Err {
        #[serde(default)]
        code: Option<IgnoredAny>,
    }
    match sonic_rs::from_slice::<Err>(body) {
        Ok(Err { code: Some(_) }) => FrameOutcome::ControlError,
        Ok(_) => FrameOutcome::Malformed(Malformed::WrongType),
        Err(e) => FrameOutcome::Malformed(wire::json_error(&e)),
    }
}

// ---------------------------------------------------------------------------

/// What a depth answer held besides its levels.
struct Depth {
    last_update_id: Option<u64>,
    event_time: Option<u64>,
    bids: bool,
    asks: bool,
    code: Option<i64>,
}

struct DepthSeed<'v> {
    msg: &'v mut BookMsg,
    bad_level: &'v mut bool,
}

impl<'de> DeserializeSeed<'de> for DepthSeed<'_> {
    type Value = Depth;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Depth, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DepthSeed<'_> {
    type Value = Depth;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Binance depth answer")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Depth, M::Error> {
        let mut d = Depth {
            last_update_id: None,
            event_time: None,
            bids: false,
            asks: false,
            code: None,
        };
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "lastUpdateId" => d.last_update_id = Some(map.next_value()?),
                "E" => d.event_time = Some(map.next_value()?),
                "bids" => {
                    map.next_value_seed(LevelsSeed {
                        out: &mut self.msg.bids,
                        bad_level: &mut *self.bad_level,
                    })?;
                    d.bids = true;
                }
                "asks" => {
                    map.next_value_seed(LevelsSeed {
                        out: &mut self.msg.asks,
                        bad_level: &mut *self.bad_level,
                    })?;
                    d.asks = true;
                }
                "code" => d.code = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(d)
    }
}

/// A millisecond time sent as a number or as a string of digits.
struct Millis(u64);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Millis;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("milliseconds as a number or a string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Millis, E> {
                Ok(Millis(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Millis, E> {
                v.parse()
                    .map(Millis)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// One long/short ratio datapoint. The top-trader *position* endpoint names
/// its shares `longAccount`/`shortAccount` too (COIN-M: `longPosition`).
#[derive(Deserialize)]
struct LsrEntry<'a> {
    #[serde(borrow, default)]
    symbol: Option<&'a str>,
    #[serde(rename = "longShortRatio", borrow, default)]
    ratio: Option<&'a str>,
    #[serde(rename = "longAccount", alias = "longPosition", borrow, default)]
    long: Option<&'a str>,
    #[serde(rename = "shortAccount", alias = "shortPosition", borrow, default)]
    short: Option<&'a str>,
    #[serde(default)]
    timestamp: Option<Millis>,
}

struct LsrSeed<'v> {
    venue: VenueId,
    dt: DataType,
    inst: &'v Instrument,
    receive_ns: u64,
    batch: &'v mut Batch,
    pushed: &'v mut u32,
    failed: &'v mut Option<Malformed>,
}

impl<'de> DeserializeSeed<'de> for LsrSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LsrSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of long/short ratio datapoints")
    }

    fn visit_seq<S: SeqAccess<'de>>(mut self, mut seq: S) -> Result<(), S::Error> {
        while let Some(e) = seq.next_element::<LsrEntry<'de>>()? {
            if self.failed.is_some() {
                continue;
            }
            match self.entry(&e) {
                Ok(()) => *self.pushed += 1,
                Err(m) => *self.failed = Some(m),
            }
        }
        Ok(())
    }
}

impl LsrSeed<'_> {
    fn entry(&mut self, e: &LsrEntry<'_>) -> Result<(), Malformed> {
        let (Some(r), Some(Millis(ts))) = (e.ratio, &e.timestamp) else {
            return Err(Malformed::WrongType);
        };
        let ratio = wire::decimal(r).ok_or(Malformed::InvalidNumber)?;
        let share = |s: Option<&str>| match s {
            None => Ok(None),
            Some(s) => wire::decimal(s).map(Some).ok_or(Malformed::InvalidNumber),
        };
        let (long, short) = (share(e.long)?, share(e.short)?);
        if e.symbol.is_some_and(|s| s != self.inst.native) {
            return Err(Malformed::UnknownSymbol);
        }
        let (venue, dt, inst, receive_ns, ts) =
            (self.venue, self.dt, self.inst, self.receive_ns, *ts);
        match wire::push(self.batch, receive_ns, |bump| {
            Record::Lsr(LongShortRatio {
                origin: Origin {
                    venue,
                    symbol: bump.alloc_str(&inst.normalized),
                    raw_symbol: bump.alloc_str(&inst.native),
                    ts_ms: ts,
                    receive_ts_ns: receive_ns,
                },
                data_type: dt,
                long_short_ratio: ratio,
                long_ratio: long,
                short_ratio: short,
                period: LSR_PERIOD,
            })
        }) {
            FrameOutcome::Malformed(m) => Err(m),
            _ => Ok(()),
        }
    }
}
