//! Binance book-side formats, spot and USDⓈ-M: `depthUpdate` diff events
//! (`U`/`u`, plus `pu`/`E`/`T` on futures), REST depth snapshots and the
//! spot `bookTicker` sequence. Field order follows the official examples.

use std::fmt::Write as _;

use super::book::{push_dec, side_changes, Book, BookFeed, BookSpec, Side, Update};

/// Appends the raw `depthUpdate` event for update `u` of `symbol`'s book.
/// Futures add `T` (transaction time, `E - 1`) and `pu` (previous `u`).
pub(crate) fn write_depth_update(
    o: &mut String,
    symbol: &str,
    f: &BookFeed,
    u: &Update,
    futures: bool,
) {
    let _ = write!(o, "{{\"e\":\"depthUpdate\",\"E\":{}", u.ts_ms);
    if futures {
        let _ = write!(o, ",\"T\":{}", u.ts_ms.saturating_sub(1));
    }
    let _ = write!(
        o,
        ",\"s\":\"{symbol}\",\"U\":{},\"u\":{}",
        u.first_id, u.last_id
    );
    if futures {
        let _ = write!(o, ",\"pu\":{}", u.prev_id);
    }
    o.push_str(",\"b\":");
    f.push_levels_json(o, &side_changes(&u.changes, Side::Bid));
    o.push_str(",\"a\":");
    f.push_levels_json(o, &side_changes(&u.changes, Side::Ask));
    o.push('}');
}

/// The `depthUpdate` of update `u` of a book, as a String (for tests).
pub fn depth_update(symbol: &str, f: &BookFeed, u: &Update, futures: bool) -> String {
    let mut o = String::new();
    write_depth_update(&mut o, symbol, f, u, futures);
    o
}

/// REST depth body: spot `{"lastUpdateId","bids","asks"}`; futures add
/// `E` (message time) and `T` (transaction time) after `lastUpdateId`.
pub fn depth_snapshot_json(
    f: &BookFeed,
    id: u64,
    n: u64,
    book: &Book,
    limit: usize,
    futures: bool,
) -> String {
    let mut o = String::with_capacity(64 + limit * 60);
    let _ = write!(o, "{{\"lastUpdateId\":{id}");
    if futures {
        let ts = f.ts_of(n);
        let _ = write!(o, ",\"E\":{},\"T\":{}", ts + 1, ts);
    }
    o.push_str(",\"bids\":");
    f.push_levels_json(&mut o, &book.top(Side::Bid, limit));
    o.push_str(",\"asks\":");
    f.push_levels_json(&mut o, &book.top(Side::Ask, limit));
    o.push('}');
    o
}

/// Spot REST depth weight by limit (1-100: 5, 101-500: 25, 501-1000: 50, else 250).
pub fn spot_depth_weight(limit: usize) -> u64 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

/// USDⓈ-M REST depth weight by limit (≤50: 2, 100: 5, 500: 10, 1000: 20).
pub fn futures_depth_weight(limit: usize) -> u64 {
    match limit {
        0..=50 => 2,
        51..=100 => 5,
        101..=500 => 10,
        _ => 20,
    }
}

/// Appends the spot `bookTicker` event number `n` (1-based) of `symbol`,
/// priced around its book `spec`: no `e`, no event time.
pub(crate) fn write_book_ticker(o: &mut String, spec: &BookSpec, symbol: &str, n: u64) {
    let bid = spec.mid - spec.tick * (1 + (n % 7) as i64);
    let ask = spec.mid + spec.tick * (1 + (n % 5) as i64);
    let _ = write!(o, "{{\"u\":{},\"s\":\"{}\",\"b\":\"", n, symbol);
    push_dec(o, bid, spec.price_dp);
    o.push_str("\",\"B\":\"");
    push_dec(o, (spec.qty_step * (1 + n % 113)) as i64, spec.qty_dp);
    o.push_str("\",\"a\":\"");
    push_dec(o, ask, spec.price_dp);
    o.push_str("\",\"A\":\"");
    push_dec(o, (spec.qty_step * (1 + n % 89)) as i64, spec.qty_dp);
    o.push_str("\"}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::book::BookFeed;
    use crate::mock::venues::{book_spec, spot_book_ticker as book_ticker};
    use crate::mock::MockOptions;
    use crate::model::VenueId;
    use sonic_rs::{JsonContainerTrait, JsonValueTrait};

    #[test]
    fn depth_update_shapes_and_chain() {
        let o = MockOptions {
            time_base_ms: 1000,
            ..MockOptions::default()
        };
        let mut f = BookFeed::new(
            book_spec(&o, VenueId::BinanceDerivatives, 0, "BTCUSDT"),
            1000,
            0,
            0,
        );
        f.advance_to(3);
        let mut prev_u = None;
        for n in 1..=3 {
            let s = depth_update("BTCUSDT", &f, f.update(n).unwrap(), true);
            let v: sonic_rs::Value = sonic_rs::from_str(&s).unwrap();
            assert_eq!(v.get("e").unwrap().as_str(), Some("depthUpdate"));
            let (uu, u, pu) = (
                v.get("U").unwrap().as_u64().unwrap(),
                v.get("u").unwrap().as_u64().unwrap(),
                v.get("pu").unwrap().as_u64().unwrap(),
            );
            assert!(uu <= u);
            if let Some(p) = prev_u {
                assert_eq!(pu, p);
                assert_eq!(uu, p + 1);
            }
            prev_u = Some(u);
            assert!(v.get("T").is_some() && v.get("b").unwrap().is_array());
        }
        let spot = depth_update("BTCUSDT", &f, f.update(1).unwrap(), false);
        assert!(!spot.contains("\"pu\"") && !spot.contains("\"T\""));
        let (n, id, b) = f.rest_snapshot();
        let snap = depth_snapshot_json(&f, id, n, &b, 5, true);
        let v: sonic_rs::Value = sonic_rs::from_str(&snap).unwrap();
        assert_eq!(
            v.get("lastUpdateId").unwrap().as_u64(),
            Some(prev_u.unwrap())
        );
        assert_eq!(v.get("bids").unwrap().as_array().unwrap().len(), 5);
        assert!(snap.starts_with("{\"lastUpdateId\":") && snap.contains(",\"E\":"));
    }

    #[test]
    fn book_ticker_shape() {
        let o = MockOptions::default();
        let s = book_ticker(&o, 0, 3);
        assert_eq!(
            s,
            "{\"u\":3,\"s\":\"BTCUSDT\",\"b\":\"29999.96000000\",\"B\":\"0.00040000\",\"a\":\"30000.04000000\",\"A\":\"0.00040000\"}"
        );
        assert!(book_ticker(&o, 99, 1).is_empty());
        assert_eq!((spot_depth_weight(100), spot_depth_weight(5000)), (5, 250));
        assert_eq!(
            (futures_depth_weight(50), futures_depth_weight(1000)),
            (2, 20)
        );
    }
}
