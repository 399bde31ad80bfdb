//! OKX trade history (see `venue::history`): `history-trades` by trade id,
//! pages going down from `after` (exclusive), newest first.

use crate::venue::history::{exact, json_err, Item};
use crate::venue::json::digits_u64;
use crate::venue::{Instrument, Malformed, RestRequest};
use serde::Deserialize;

/// Most trades asked for in one request (the venue's maximum).
const LIMIT: u64 = 100;

/// The request covering the newest part of `from..=to` (pages go down from
/// `after`, exclusive).
pub fn request(raw_symbol: &str, from: u64, to: u64) -> RestRequest {
    let n = to.saturating_sub(from) + 1;
    RestRequest {
        path: format!(
            "/api/v5/market/history-trades?instId={raw_symbol}&type=1&after={}&limit={}",
            to + 1,
            n.min(LIMIT)
        ),
        weight: 1,
    }
}

#[derive(Deserialize)]
struct OkxAnswer<'a> {
    code: &'a str,
    #[serde(borrow, default)]
    data: Vec<OkxTrade<'a>>,
}

#[derive(Deserialize)]
struct OkxTrade<'a> {
    #[serde(rename = "instId")]
    inst_id: &'a str,
    side: &'a str,
    sz: &'a str,
    px: &'a str,
    #[serde(rename = "tradeId")]
    trade_id: &'a str,
    ts: &'a str,
}

pub fn parse(inst: &Instrument, body: &[u8]) -> Result<Vec<Item>, Malformed> {
    let a: OkxAnswer<'_> = sonic_rs::from_slice(body).map_err(json_err)?;
    if a.code != "0" {
        return Err(Malformed::WrongType);
    }
    let mut out = Vec::with_capacity(a.data.len());
    for t in &a.data {
        if t.inst_id != inst.native {
            return Err(Malformed::WrongType);
        }
        let seq = digits_u64(t.trade_id).ok_or(Malformed::InvalidNumber)?;
        let (quantity, contracts) = super::wire::in_base(inst, exact(t.sz)?)?;
        out.push(Item {
            seq,
            price: exact(t.px)?,
            quantity,
            contracts,
            side: super::wire::side_of(t.side)?,
            is_maker: None,
            time: super::wire::ms(t.ts)?,
            id: Some(t.trade_id.to_string()),
        });
    }
    Ok(out)
}
