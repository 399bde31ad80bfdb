//! Bybit REST: the instrument list and the long/short account-ratio poll.
//!
//! - `GET /v5/market/instruments-info?category=spot|linear&limit=1000[&cursor=..]`
//!   → `{"retCode":0,"result":{"list":[{symbol,baseCoin,quoteCoin,status,contractType,..}],"nextPageCursor":".."}}`.
//!   Linear keeps `LinearPerpetual` only (no dated futures); `status == "Trading"` marks it trading.
//! - `GET /v5/market/account-ratio?category=linear&symbol=..&period=5min&limit=1`
//!   → `{"retCode":0,"result":{"list":[{"symbol":"BTCUSDT","buyRatio":"0.5777","sellRatio":"0.4223","timestamp":"1695772800000"}]}}`.
//!   `long_short_ratio = buyRatio / sellRatio` (Bybit's own definition), an
//!   exact rust_decimal division rounded half-even to 8 decimal places.

use crate::batch::{Batch, LongShortRatio, Origin, Record};
use crate::model::{DataType, VenueId};
use crate::venue::{ErrorShape, FrameOutcome, Instrument, InstrumentMap, Malformed, RestRequest};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;
use sonic_rs::RawNumber;

/// Error answers, for their log line: Bybit: `{"retCode":10001,"retMsg":"…","result":{}}`.
pub const ERROR_SHAPE: ErrorShape = ErrorShape {
    code: &["retCode"],
    message: &["retMsg"],
};

pub const INSTRUMENTS_PATH: &str = "/v5/market/instruments-info";
pub const ACCOUNT_RATIO_PATH: &str = "/v5/market/account-ratio";
/// Period polled and recorded (`5m` in records, `5min` in the request).
pub const LSR_PERIOD: &str = "5m";
/// Decimal places of the derived long/short ratio.
pub const LSR_RATIO_DP: u32 = 8;

/// Instrument list request (one page; `cursor` from the previous page).
pub fn instruments_request(category: &str, cursor: Option<&str>) -> RestRequest {
    let mut path = format!("{INSTRUMENTS_PATH}?category={category}&limit=1000");
    if let Some(c) = cursor.filter(|c| !c.is_empty()) {
        path.push_str("&cursor=");
        push_query_escaped(&mut path, c);
    }
    RestRequest { path, weight: 1 }
}

/// Cursors come back percent-encoded already (`first%3D..%26last%3D..`):
/// pass `%` and unreserved characters through, escape anything else.
fn push_query_escaped(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'%') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(rename = "retCode")]
    ret_code: i64,
    #[serde(rename = "retMsg", default)]
    ret_msg: String,
    result: Option<T>,
}

#[derive(Deserialize)]
struct InstrumentPage {
    #[serde(default)]
    list: Vec<InstrumentInfo>,
    #[serde(rename = "nextPageCursor", default)]
    next_page_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstrumentInfo {
    symbol: String,
    base_coin: String,
    quote_coin: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    contract_type: Option<String>,
}

/// Adds one page of `instruments-info` to `map`; returns the next page's cursor.
pub fn parse_instruments(
    body: &[u8],
    linear: bool,
    map: &mut InstrumentMap,
) -> Result<Option<String>, String> {
    if let Err(m) = crate::venue::json::check_body(body) {
        return Err(format!(
            "instruments-info is not the expected JSON: {}",
            m.label()
        ));
    }
    let env: Envelope<InstrumentPage> = sonic_rs::from_slice(body)
        .map_err(|e| format!("instruments-info is not the expected JSON: {e}"))?;
    if env.ret_code != 0 {
        return Err(format!(
            "instruments-info retCode {}: {}",
            env.ret_code, env.ret_msg
        ));
    }
    let page = env
        .result
        .ok_or_else(|| "instruments-info has no result".to_string())?;
    for i in &page.list {
        if i.symbol.is_empty() || i.base_coin.is_empty() || i.quote_coin.is_empty() {
            continue;
        }
        if linear && i.contract_type.as_deref() != Some("LinearPerpetual") {
            continue;
        }
        map.insert(
            &i.symbol,
            &i.base_coin,
            &i.quote_coin,
            i.status == "Trading",
        );
    }
    if map.is_empty() {
        return Err("instruments-info lists no instruments".to_string());
    }
    Ok(page.next_page_cursor.filter(|c| !c.is_empty()))
}

/// Poll of the latest 5-minute all-account long/short ratio of one symbol.
pub fn account_ratio_request(native: &str) -> RestRequest {
    RestRequest {
        path: format!("{ACCOUNT_RATIO_PATH}?category=linear&symbol={native}&period=5min&limit=1"),
        weight: 1,
    }
}

#[derive(Deserialize)]
struct RatioPage<'a> {
    #[serde(borrow, default)]
    list: Vec<RatioItem<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RatioItem<'a> {
    #[serde(borrow)]
    symbol: &'a str,
    #[serde(borrow)]
    buy_ratio: &'a str,
    #[serde(borrow)]
    sell_ratio: &'a str,
    /// A string of ms in the docs; a number is accepted too.
    timestamp: RawNumber,
}

/// `account-ratio` body → one `lsr_all_account` record (the newest entry).
pub fn parse_account_ratio(
    venue: VenueId,
    inst: &Instrument,
    body: &[u8],
    receive_ns: u64,
    batch: &mut Batch,
) -> FrameOutcome {
    if let Err(m) = crate::venue::json::check_body(body) {
        return FrameOutcome::Malformed(m);
    }
    let env: Envelope<RatioPage<'_>> = match sonic_rs::from_slice(body) {
        Ok(e) => e,
        Err(e) => return FrameOutcome::Malformed(crate::venue::json::classify(&e)),
    };
    if env.ret_code != 0 {
        return FrameOutcome::ControlError;
    }
    let Some(page) = env.result else {
        return FrameOutcome::Malformed(Malformed::WrongType);
    };
    // Newest first (Bybit sorts descending); `limit=1` sends just that one.
    let Some(item) = page.list.first() else {
        return FrameOutcome::Ignored;
    };
    if item.symbol != inst.native {
        return FrameOutcome::Malformed(Malformed::UnknownSymbol);
    }
    let (Ok(long), Ok(short)) = (
        super::wire::decimal(item.buy_ratio),
        super::wire::decimal(item.sell_ratio),
    ) else {
        return FrameOutcome::Malformed(Malformed::InvalidNumber);
    };
    let Ok(ts_ms) = item.timestamp.as_str().parse::<u64>() else {
        return FrameOutcome::Malformed(Malformed::InvalidNumber);
    };
    let Some(ratio) = long_short_ratio(long, short) else {
        return FrameOutcome::Malformed(Malformed::InvalidNumber);
    };
    let pushed = batch.push_with::<()>(receive_ns, |bump| {
        Ok(Record::Lsr(LongShortRatio {
            origin: Origin {
                venue,
                symbol: bump.alloc_str(&inst.normalized),
                raw_symbol: bump.alloc_str(&inst.native),
                ts_ms,
                receive_ts_ns: receive_ns,
            },
            data_type: DataType::LsrAllAccount,
            long_short_ratio: ratio,
            long_ratio: Some(long),
            short_ratio: Some(short),
            period: LSR_PERIOD,
        }))
    });
    match pushed {
        Ok(()) => FrameOutcome::Records(1),
        Err(()) => FrameOutcome::Malformed(Malformed::WrongType),
    }
}

/// `long / short`, rounded half-even to [`LSR_RATIO_DP`] places; `None` if short is 0.
pub fn long_short_ratio(long: Decimal, short: Decimal) -> Option<Decimal> {
    let q = long.checked_div(short)?;
    Some(q.round_dp_with_strategy(LSR_RATIO_DP, RoundingStrategy::MidpointNearestEven))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_is_appended_escaped() {
        assert_eq!(
            instruments_request("linear", None).path,
            "/v5/market/instruments-info?category=linear&limit=1000"
        );
        assert_eq!(
            instruments_request("linear", Some("first%3D1%26last%3D2")).path,
            "/v5/market/instruments-info?category=linear&limit=1000&cursor=first%3D1%26last%3D2"
        );
        assert_eq!(
            instruments_request("spot", Some("a=b&c")).path,
            "/v5/market/instruments-info?category=spot&limit=1000&cursor=a%3Db%26c"
        );
    }

    #[test]
    fn ratio_is_rounded_to_8_places() {
        let d = |s: &str| Decimal::from_str_exact(s).unwrap();
        assert_eq!(
            long_short_ratio(d("0.5777"), d("0.4223"))
                .unwrap()
                .to_string(),
            "1.36798484"
        );
        assert_eq!(
            long_short_ratio(d("0.5"), d("0.5")).unwrap().to_string(),
            "1"
        );
        assert_eq!(long_short_ratio(d("1"), d("0")), None);
    }
}
