//! Deribit trade history (see `venue::history`): trades by `trade_seq`,
//! ascending, in the form they are streamed.

use crate::model::Side;
use crate::venue::history::{json_err, Item};
use crate::venue::{Instrument, Malformed, RestRequest};
use serde::Deserialize;
use sonic_rs::RawNumber;

/// Most trades asked for in one request.
const LIMIT: u64 = 1000;

/// The trades `from..=to` by sequence number.
pub fn request(raw_symbol: &str, from: u64, to: u64) -> RestRequest {
    let n = to.saturating_sub(from) + 1;
    RestRequest {
        path: format!(
            "/api/v2/public/get_last_trades_by_instrument?instrument_name={raw_symbol}&start_seq={from}&end_seq={to}&count={}&sorting=asc",
            n.min(LIMIT)
        ),
        weight: 1,
    }
}

#[derive(Deserialize)]
struct DeribitAnswer<'a> {
    #[serde(borrow)]
    result: DeribitResult<'a>,
}

#[derive(Deserialize)]
struct DeribitResult<'a> {
    #[serde(borrow)]
    trades: Vec<DeribitTrade<'a>>,
}

#[derive(Deserialize)]
struct DeribitTrade<'a> {
    trade_seq: u64,
    trade_id: &'a str,
    price: RawNumber,
    amount: RawNumber,
    direction: &'a str,
    timestamp: u64,
    instrument_name: &'a str,
}

pub fn parse(inst: &Instrument, body: &[u8]) -> Result<Vec<Item>, Malformed> {
    use super::wire as dw;
    let a: DeribitAnswer<'_> = sonic_rs::from_slice(body).map_err(json_err)?;
    let mut out = Vec::with_capacity(a.result.trades.len());
    for t in &a.result.trades {
        if t.instrument_name != inst.native {
            return Err(Malformed::WrongType);
        }
        let price = dw::decimal(&t.price)?;
        let amount = dw::decimal(&t.amount)?;
        let (quantity, contracts) = if dw::is_inverse(inst) {
            (dw::derived(amount, price)?, Some(amount))
        } else {
            (amount, None)
        };
        out.push(Item {
            seq: t.trade_seq,
            price,
            quantity,
            contracts,
            side: match t.direction {
                "buy" => Side::Buy,
                "sell" => Side::Sell,
                _ => return Err(Malformed::WrongType),
            },
            is_maker: None,
            time: t.timestamp,
            id: Some(t.trade_id.to_string()),
        });
    }
    Ok(out)
}
