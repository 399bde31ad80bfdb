//! OKX REST bodies: the instrument list and the polled long/short ratios.
//!
//! Envelope: `{"code":"0","msg":"","data":[...]}`; a `code` other than `"0"`
//! is an error answer.
//!
//! Long/short ratios (rubik statistics, 5 requests / 2 s per IP each):
//! - `lsr_all_account`: `GET /api/v5/rubik/stat/contracts/long-short-account-ratio?ccy=BTC&period=5m`
//!   (MarketPrism's endpoint): the ratio of long to short **accounts** over all
//!   of the currency's contracts, so `ccy` is the instrument's base currency
//!   and the record's symbol that of the configured instrument.
//! - `lsr_top_position`: `GET /api/v5/rubik/stat/contracts/long-short-position-ratio-contract-top-trader?instId=BTC-USDT-SWAP&period=5m`:
//!   the top traders' long/short **position** ratio of one contract.
//!
//! Both answer `data: [["ts","ratio"], ...]`, newest first. The newest point
//! becomes one record (`long_short_ratio` = ratio, ts = its `ts`); OKX gives
//! only the ratio, so the long/short shares stay empty (`r/(1+r)` is not an
//! exact decimal in general).

use super::wire::{ms, size, Row};
use crate::batch::{Batch, LongShortRatio, Origin, Record};
use crate::model::{DataType, VenueId};
use crate::venue::{ErrorShape, FrameOutcome, Instrument, InstrumentMap, Malformed, RestRequest};
use rust_decimal::Decimal;
use serde::Deserialize;
use sonic_rs::LazyValue;
use std::convert::Infallible;

/// Error answers, for their log line: OKX: `{"code":"51001","msg":"…","data":[]}`.
pub const ERROR_SHAPE: ErrorShape = ErrorShape {
    code: &["code"],
    message: &["msg"],
};

/// Instrument list, followed by `SPOT` or `SWAP` (20 req / 2 s per IP).
pub const INSTRUMENTS_PATH: &str = "/api/v5/public/instruments?instType=";
pub const LSR_ACCOUNT_PATH: &str = "/api/v5/rubik/stat/contracts/long-short-account-ratio";
pub const LSR_TOP_POSITION_PATH: &str =
    "/api/v5/rubik/stat/contracts/long-short-position-ratio-contract-top-trader";
/// The ratios' granularity (MarketPrism's).
pub const LSR_PERIOD: &str = "5m";
/// Rubik endpoints allow 5 requests / 2 s: 4 units of the 20-unit budget.
pub const RUBIK_WEIGHT: u32 = 4;

#[derive(Deserialize)]
struct InstrumentsBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    data: Vec<InstrumentInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstrumentInfo {
    #[serde(default)]
    inst_id: String,
    #[serde(default)]
    inst_type: String,
    #[serde(default)]
    base_ccy: String,
    #[serde(default)]
    quote_ccy: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    ct_val: String,
    #[serde(default)]
    ct_val_ccy: String,
    #[serde(default)]
    ct_type: String,
    #[serde(default)]
    inst_family: String,
    #[serde(default)]
    uly: String,
}

fn instruments(body: &[u8]) -> Result<Vec<InstrumentInfo>, String> {
    if let Err(m) = crate::venue::json::check_body(body) {
        return Err(format!(
            "OKX instruments answer is not the expected JSON: {}",
            m.label()
        ));
    }
    let b: InstrumentsBody = sonic_rs::from_slice(body)
        .map_err(|e| format!("OKX instruments answer is not the expected JSON: {e}"))?;
    if b.code != "0" {
        return Err(format!(
            "OKX instruments answer: code {:?} {:?}",
            b.code, b.msg
        ));
    }
    Ok(b.data)
}

/// `instType=SPOT`: `instId` (`BTC-USDT`) is already `BASE-QUOTE`; returns how
/// many were added.
pub fn parse_spot_instruments(body: &[u8], map: &mut InstrumentMap) -> Result<usize, String> {
    let mut n = 0;
    for i in instruments(body)? {
        if i.inst_type != "SPOT"
            || i.inst_id.is_empty()
            || i.base_ccy.is_empty()
            || i.quote_ccy.is_empty()
        {
            continue;
        }
        map.insert(&i.inst_id, &i.base_ccy, &i.quote_ccy, i.state == "live");
        n += 1;
    }
    Ok(n)
}

/// `instType=SWAP`: linear swaps only. Normalized from `instFamily` (2022
/// answers: `uly`), e.g. `BTC-USDT`; `ctVal` (base units per contract) is the
/// contract value. Inverse swaps (`ctVal` in USD) are skipped.
pub fn parse_swap_instruments(body: &[u8], map: &mut InstrumentMap) -> Result<usize, String> {
    let mut n = 0;
    for i in instruments(body)? {
        if i.inst_type != "SWAP" || i.ct_type != "linear" || i.inst_id.is_empty() {
            continue;
        }
        let family = if i.inst_family.is_empty() {
            &i.uly
        } else {
            &i.inst_family
        };
        let Some((base, quote)) = family.split_once('-') else {
            continue;
        };
        if base.is_empty() || quote.is_empty() || (!i.ct_val_ccy.is_empty() && i.ct_val_ccy != base)
        {
            continue;
        }
        let Some(ct_val) = crate::venue::json::exact_decimal(&i.ct_val) else {
            continue;
        };
        if ct_val <= Decimal::ZERO {
            continue;
        }
        map.insert_contract(&i.inst_id, base, quote, i.state == "live", Some(ct_val));
        n += 1;
    }
    Ok(n)
}

/// The REST request polling a long/short ratio of `inst`.
pub fn lsr_request(dt: DataType, inst: &Instrument) -> Option<RestRequest> {
    let path = match dt {
        DataType::LsrAllAccount => {
            format!("{LSR_ACCOUNT_PATH}?ccy={}&period={LSR_PERIOD}", inst.base)
        }
        DataType::LsrTopPosition => format!(
            "{LSR_TOP_POSITION_PATH}?instId={}&period={LSR_PERIOD}",
            inst.native
        ),
        _ => return None,
    };
    Some(RestRequest {
        path,
        weight: RUBIK_WEIGHT,
    })
}

#[derive(Deserialize)]
struct LsrBody<'a> {
    #[serde(borrow, default)]
    code: Option<&'a str>,
    #[serde(borrow, default)]
    data: Option<LazyValue<'a>>,
}

/// A ratio body → one record of its newest point.
pub fn parse_lsr(
    venue: VenueId,
    dt: DataType,
    inst: &Instrument,
    body: &[u8],
    receive_ns: u64,
    batch: &mut Batch,
) -> FrameOutcome {
    if !matches!(dt, DataType::LsrAllAccount | DataType::LsrTopPosition) {
        return FrameOutcome::Malformed(Malformed::UnknownEvent);
    }
    if let Err(m) = crate::venue::json::check_body(body) {
        return FrameOutcome::Malformed(m);
    }
    let b: LsrBody<'_> = match sonic_rs::from_slice(body) {
        Ok(b) => b,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return FrameOutcome::Malformed(Malformed::BadJson)
        }
        Err(_) => return FrameOutcome::Malformed(Malformed::WrongType),
    };
    match b.code {
        Some("0") => {}
        Some(_) => return FrameOutcome::ControlError,
        None => return FrameOutcome::Malformed(Malformed::WrongType),
    }
    let Some(data) = b.data.as_ref().and_then(super::wire::array_str) else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    let newest = match newest(data) {
        Ok(Some(p)) => p,
        Ok(None) => return FrameOutcome::Ignored,
        Err(m) => return FrameOutcome::Malformed(m),
    };
    let (ts, ratio) = newest;
    let _ = batch.push_with::<Infallible>(receive_ns, |bump| {
        Ok(Record::Lsr(LongShortRatio {
            origin: Origin {
                venue,
                symbol: bump.alloc_str(&inst.normalized),
                raw_symbol: bump.alloc_str(&inst.native),
                ts_ms: ts,
                receive_ts_ns: receive_ns,
            },
            data_type: dt,
            long_short_ratio: ratio,
            long_ratio: None,
            short_ratio: None,
            period: LSR_PERIOD,
        }))
    });
    FrameOutcome::Records(1)
}

/// The point with the largest `ts` (OKX sends newest first; not relied on).
fn newest(data: &str) -> Result<Option<(u64, Decimal)>, Malformed> {
    let mut best: Option<(u64, Decimal)> = None;
    for item in sonic_rs::to_array_iter(data) {
        let item = item.map_err(|_| Malformed::BadJson)?;
        let Row(ts, ratio) =
            sonic_rs::from_str(item.as_raw_str()).map_err(|_| Malformed::WrongType)?;
        let (ts, ratio) = (ms(ts)?, size(ratio)?);
        if best.is_none_or(|(t, _)| ts > t) {
            best = Some((ts, ratio));
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swap(native: &str, base: &str) -> Instrument {
        let mut m = InstrumentMap::default();
        m.insert_contract(native, base, "USDT", true, Some(Decimal::new(1, 2)));
        m.get(native).unwrap().clone()
    }

    #[test]
    fn requests() {
        let i = swap("BTC-USDT-SWAP", "BTC");
        let r = lsr_request(DataType::LsrAllAccount, &i).unwrap();
        assert_eq!(
            r.path,
            "/api/v5/rubik/stat/contracts/long-short-account-ratio?ccy=BTC&period=5m"
        );
        assert_eq!(r.weight, 4);
        let r = lsr_request(DataType::LsrTopPosition, &i).unwrap();
        assert_eq!(
            r.path,
            "/api/v5/rubik/stat/contracts/long-short-position-ratio-contract-top-trader?instId=BTC-USDT-SWAP&period=5m"
        );
        assert_eq!(lsr_request(DataType::Trade, &i), None);
    }

    #[test]
    fn newest_point_only() {
        let i = swap("ETH-USDT-SWAP", "ETH");
        let body = br#"{"code":"0","msg":"","data":[["1701417900000","1.26"],["1701417600000","1.25"],["1701417300000","1.3"]]}"#;
        let mut b = Batch::new(4, 4096);
        let out = parse_lsr(
            VenueId::OkxDerivatives,
            DataType::LsrAllAccount,
            &i,
            body,
            5,
            &mut b,
        );
        assert_eq!(out, FrameOutcome::Records(1));
        let Some(Record::Lsr(l)) = b.iter().next() else {
            panic!()
        };
        assert_eq!(l.origin.ts_ms, 1701417900000);
        assert_eq!(l.long_short_ratio.to_string(), "1.26");
        assert_eq!(l.origin.symbol, "ETH-USDT");
        assert_eq!(l.origin.raw_symbol, "ETH-USDT-SWAP");
        assert_eq!((l.long_ratio, l.short_ratio), (None, None));
    }

    #[test]
    fn errors() {
        let i = swap("ETH-USDT-SWAP", "ETH");
        let mut b = Batch::new(4, 4096);
        let mut run = |body: &[u8]| {
            parse_lsr(
                VenueId::OkxDerivatives,
                DataType::LsrTopPosition,
                &i,
                body,
                5,
                &mut b,
            )
        };
        assert_eq!(
            run(br#"{"code":"50011","msg":"Too Many Requests","data":[]}"#),
            FrameOutcome::ControlError
        );
        assert_eq!(
            run(br#"{"code":"0","msg":"","data":[]}"#),
            FrameOutcome::Ignored
        );
        assert_eq!(
            run(br#"{"code":"0","data":[["x","1"]]}"#),
            FrameOutcome::Malformed(Malformed::InvalidNumber)
        );
        assert_eq!(
            run(br#"{"code":"0","data":[["1","1.2.3"]]}"#),
            FrameOutcome::Malformed(Malformed::InvalidNumber)
        );
        assert_eq!(
            run(br#"{"code":"0","data":[[1,"1"]]}"#),
            FrameOutcome::Malformed(Malformed::WrongType)
        );
        assert_eq!(
            run(br#"{"code":"0","data":{}}"#),
            FrameOutcome::Malformed(Malformed::WrongType)
        );
        assert_eq!(
            run(br#"{"code":"0","data":[["1"#),
            FrameOutcome::Malformed(Malformed::BadJson)
        );
        assert_eq!(run(b"<html>"), FrameOutcome::Malformed(Malformed::BadJson));
        assert!(b.is_empty());
    }

    #[test]
    fn instrument_kinds() {
        let body = br#"{"code":"0","msg":"","data":[
            {"instId":"BTC-USDT-SWAP","instType":"SWAP","ctType":"linear","ctVal":"0.01","ctValCcy":"BTC","instFamily":"BTC-USDT","uly":"BTC-USDT","state":"live","settleCcy":"USDT"},
            {"instId":"ETH-USDC-SWAP","instType":"SWAP","ctType":"linear","ctVal":"0.001","ctValCcy":"ETH","uly":"ETH-USDC","state":"suspend"},
            {"instId":"BTC-USD-SWAP","instType":"SWAP","ctType":"inverse","ctVal":"100","ctValCcy":"USD","instFamily":"BTC-USD","state":"live"},
            {"instId":"BAD-USDT-SWAP","instType":"SWAP","ctType":"linear","ctVal":"","ctValCcy":"BAD","instFamily":"BAD-USDT","state":"live"}
        ]}"#;
        let mut m = InstrumentMap::default();
        assert_eq!(parse_swap_instruments(body, &mut m), Ok(2));
        let btc = m.get("BTC-USDT-SWAP").unwrap();
        assert_eq!(btc.normalized, "BTC-USDT");
        assert_eq!(btc.contract_value, Some(Decimal::new(1, 2)));
        assert!(btc.trading);
        let eth = m.get("ETH-USDC-SWAP").unwrap();
        assert_eq!(eth.normalized, "ETH-USDC");
        assert!(!eth.trading);
        assert!(m.get("BTC-USD-SWAP").is_none());
        assert!(parse_swap_instruments(br#"{"code":"50011","msg":"x"}"#, &mut m).is_err());
        assert!(parse_spot_instruments(b"<html>", &mut m).is_err());
    }
}
