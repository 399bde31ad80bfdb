//! The building blocks of the mock's REST answers (an answer, query
//! parameters, Binance's weight headers and error bodies), shared by the
//! routes (`rest`) and the trade history endpoints (`history`).

use super::Shared;

/// One REST answer.
pub(crate) struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

pub(crate) fn reply(status: u16, body: String) -> Reply {
    Reply {
        status,
        body,
        headers: Vec::new(),
    }
}

pub(crate) fn param(q: &[(String, String)], k: &str) -> Option<String> {
    q.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone())
}

pub(crate) fn futures_weight(shared: &Shared, w: u64) -> Vec<(&'static str, String)> {
    let total = shared.futures_weight.get().wrapping_add(w);
    shared.futures_weight.set(total);
    vec![("X-MBX-USED-WEIGHT-1M", total.to_string())]
}

pub(crate) fn spot_weight(shared: &Shared, w: u64) -> Vec<(&'static str, String)> {
    let total = shared.weight.get().wrapping_add(w);
    shared.weight.set(total);
    vec![("X-MBX-USED-WEIGHT-1M", total.to_string())]
}

pub(crate) const BINANCE_INVALID_SYMBOL: &str = "{\"code\":-1121,\"msg\":\"Invalid symbol.\"}";
pub(crate) const BINANCE_MISSING_SYMBOL: &str = "{\"code\":-1102,\"msg\":\"Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.\"}";

pub(crate) fn binance_err(body: &str, headers: Vec<(&'static str, String)>) -> Reply {
    Reply {
        status: 400,
        body: body.to_string(),
        headers,
    }
}
