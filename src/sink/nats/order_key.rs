//! The order of records on one subject, read back from their `Nats-Msg-Id`
//! (as `sink::encode::push_msg_id` writes it:
//! `{data_type}:{exchange}:{market_type}:{symbol}:{tail}`): the number that
//! grows as the exchange's stream advances. It lets a resend skip what the
//! stream already holds past `duplicate_window` (see [`super::resend`]).
//!
//! | data type | tail | key | unique per record |
//! |---|---|---|---|
//! | trade | trade id: digits, or `<letters>-<digits>` (Deribit) | the number | yes |
//! | trade | any other id (Bybit derivatives' UUIDs) | none | |
//! | orderbook | `<last_update_id>`, or `t<exchange ts ms>` | the number | yes |
//! | orderbook_delta | `<last>:<first>`, or `t<ts>` | `last` / ts | yes |
//! | ticker | update id, else exchange ts | the number | yes |
//! | liquidation | `<ts>:<price>:<qty>:<side>` | ts | no: equal ts possible |
//! | lsr_* | `<ts>:<period>` | ts | no: one ts per period |
//! | funding, open interest, volatility index | exchange ts | ts | yes |
//! | gap | | none | |

/// The order key of a message id, if its data type has one.
pub fn order_key(msg_id: &str) -> Option<u64> {
    let mut f = msg_id.splitn(5, ':');
    let data_type = f.next()?;
    let (_exchange, _market, _symbol) = (f.next()?, f.next()?, f.next()?);
    let tail = f.next()?;
    match data_type {
        "trade" => trade_key(tail),
        "gap" => None,
        "orderbook" | "orderbook_delta" => match tail.strip_prefix('t') {
            Some(ts) => number(ts),
            None => number(first(tail)),
        },
        _ => number(first(tail)),
    }
}

/// The tail's first `:`-separated field.
fn first(tail: &str) -> &str {
    tail.split(':').next().unwrap_or(tail)
}

/// Decimal digits only (no sign, no spaces), fitting a u64.
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Digits, or letters, `-`, digits (Deribit's `BTC-123456`: the prefix is
/// the currency, fixed per instrument). Anything else has no order.
fn trade_key(id: &str) -> Option<u64> {
    if let Some(n) = number(id) {
        return Some(n);
    }
    let (prefix, digits) = id.rsplit_once('-')?;
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    number(digits)
}

#[cfg(test)]
mod tests {
    use super::order_key;

    #[test]
    fn every_msg_id_form() {
        let cases: &[(&str, Option<u64>)] = &[
            ("trade:binance:spot:BTC-USDT:12345", Some(12345)),
            ("trade:okx:spot:BTC-USDT:242720720", Some(242720720)),
            (
                "trade:deribit:perpetual:BTC-PERPETUAL:BTC-283737573",
                Some(283737573),
            ),
            (
                "trade:bybit:perpetual:BTC-USDT:20f43950-d8dd-5b31-9112-a178eb6023af",
                None,
            ),
            ("trade:binance:spot:BTC-USDT:x_y", None),
            ("trade:binance:spot:BTC-USDT:-5", None),
            ("orderbook:binance:spot:BTC-USDT:42", Some(42)),
            ("orderbook_delta:binance:spot:BTC-USDT:43:40", Some(43)),
            (
                "orderbook:okx:spot:BTC-USDT:t1652400000100",
                Some(1652400000100),
            ),
            (
                "orderbook_delta:okx:spot:BTC-USDT:t1652400000300",
                Some(1652400000300),
            ),
            ("ticker:binance:spot:BTC-USDT:777", Some(777)),
            (
                "liquidation:binance:perpetual:BTC-USDT:1700000000123:64000.5:0.010:sell",
                Some(1700000000123),
            ),
            (
                "lsr_top_position:binance:perpetual:BTC-USDT:1700000000000:5m",
                Some(1700000000000),
            ),
            (
                "funding_rate:binance:perpetual:BTC-USDT:1700000000000",
                Some(1700000000000),
            ),
            (
                "open_interest:okx:perpetual:BTC-USDT:1700000000000",
                Some(1700000000000),
            ),
            ("gap:binance:spot:BTC-USDT:trade:1:9", None),
            ("gap:binance:spot:trade:BTC-USDT:1700000000000:3", None),
            // Not ours, or cut short: no key.
            ("trade:binance:spot:BTC-USDT", None),
            ("", None),
            ("trade:binance:spot:BTC-USDT:", None),
            ("ticker:binance:spot:BTC-USDT:99999999999999999999999", None),
        ];
        for (id, want) in cases {
            assert_eq!(order_key(id), *want, "{id}");
        }
    }
}
