//! Takeover of trades: the last trade the stream holds for a symbol's
//! subject seeds the core's continuity, so the first live trade shows what
//! was missed and the REST backfill fetches exactly that, nothing older.

use crate::model::{DataType, VenueId};

/// The trade subject of a symbol (`trade.binance.spot.BTC-USDT`).
pub fn trade_subject(venue: VenueId, symbol: &str) -> String {
    crate::sink::encode::subject_of(DataType::Trade, venue, symbol)
}

/// (trade id, trade time ms) of a stored trade record.
pub fn stored_trade(payload: &[u8]) -> Option<(u64, u64)> {
    #[derive(serde::Deserialize)]
    struct T<'a> {
        #[serde(borrow)]
        trade_id: &'a str,
        trade_ts_ms: u64,
    }
    let t: T<'_> = sonic_rs::from_slice(payload).ok()?;
    Some((t.trade_id.parse().ok()?, t.trade_ts_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_trades_give_their_id_and_time() {
        let p = br#"{"data_type":"trade","exchange":"binance","market_type":"spot","symbol":"BTC-USDT","instrument_id":"BTCUSDT","raw_symbol":"BTCUSDT","trade_id":"12345","price":"1.0","quantity":"2","side":"buy","trade_ts_ms":1700000000123,"ts_ms":1700000000124}"#;
        assert_eq!(stored_trade(p), Some((12345, 1_700_000_000_123)));
        assert_eq!(
            stored_trade(br#"{"trade_id":"ETH-1","trade_ts_ms":1}"#),
            None
        );
        assert_eq!(stored_trade(b"garbage"), None);
        assert_eq!(
            trade_subject(VenueId::BinanceSpot, "BTC-USDT"),
            "trade.binance.spot.BTC-USDT"
        );
        assert_eq!(
            trade_subject(VenueId::OkxDerivatives, "BTC.USDT"),
            "trade.okx.perpetual.BTC_USDT"
        );
        assert!(crate::venue::protocol(VenueId::BinanceSpot).trade_id_is_seq());
        assert!(!crate::venue::protocol(VenueId::DeribitDerivatives).trade_id_is_seq());
    }
}
