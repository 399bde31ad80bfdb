//! A local order book: bids, asks and the venue update id of its state.

use super::side::{BookSide, TopIter, POW10};
use crate::batch::Level;
use rust_decimal::Decimal;

/// What applying one message did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Some level changed.
    pub changed: bool,
    /// Levels skipped as malformed (negative price or quantity).
    pub invalid: u32,
}

#[derive(Debug, Clone)]
pub struct OrderBook {
    bids: BookSide,
    asks: BookSide,
    last_update_id: u64,
}

impl Default for OrderBook {
    fn default() -> Self {
        OrderBook::new()
    }
}

#[inline]
fn valid(l: &Level) -> bool {
    !l.price.is_sign_negative() && !l.quantity.is_sign_negative()
}

impl OrderBook {
    pub fn new() -> OrderBook {
        OrderBook {
            bids: BookSide::new(true),
            asks: BookSide::new(false),
            last_update_id: 0,
        }
    }

    /// Empties both sides (capacity kept).
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.last_update_id = 0;
    }

    /// Replaces the book with a full snapshot.
    pub fn load(&mut self, bids: &[Level], asks: &[Level], last_update_id: u64) -> Applied {
        let invalid = count_invalid(bids) + count_invalid(asks);
        if invalid == 0 {
            self.bids.load(bids);
            self.asks.load(asks);
        } else {
            // Rare: filter through the update path instead of allocating.
            self.bids.clear();
            self.asks.clear();
            for l in bids.iter().filter(|l| valid(l)) {
                self.bids.set(l.price, l.quantity);
            }
            for l in asks.iter().filter(|l| valid(l)) {
                self.asks.set(l.price, l.quantity);
            }
        }
        self.last_update_id = last_update_id;
        Applied {
            changed: true,
            invalid,
        }
    }

    /// Applies absolute levels (0 removes) and sets the update id.
    pub fn apply(&mut self, bids: &[Level], asks: &[Level], last_update_id: u64) -> Applied {
        let mut a = Applied::default();
        for l in bids {
            if valid(l) {
                a.changed |= self.bids.set(l.price, l.quantity);
            } else {
                a.invalid += 1;
            }
        }
        for l in asks {
            if valid(l) {
                a.changed |= self.asks.set(l.price, l.quantity);
            } else {
                a.invalid += 1;
            }
        }
        a.changed |= self.last_update_id != last_update_id;
        self.last_update_id = last_update_id;
        a
    }

    #[inline]
    pub fn last_update_id(&self) -> u64 {
        self.last_update_id
    }

    pub fn bids(&self) -> &BookSide {
        &self.bids
    }

    pub fn asks(&self) -> &BookSide {
        &self.asks
    }

    #[inline]
    pub fn best_bid(&self) -> Option<&Level> {
        self.bids.best()
    }

    #[inline]
    pub fn best_ask(&self) -> Option<&Level> {
        self.asks.best()
    }

    /// Best bid >= best ask: the local book cannot be the venue's.
    #[inline]
    pub fn is_crossed(&self) -> bool {
        // Integer keys at a common scale when both sides have them (a
        // `Decimal` compare is an out-of-line call, checked once per update).
        if let (Some((b, bs)), Some((a, as_))) = (self.bids.best_key(), self.asks.best_key()) {
            let up = |k: u128, from: u32, to: u32| k.checked_mul(POW10[(to - from) as usize]);
            let keys = if bs >= as_ {
                up(a, as_, bs).map(|a| (b, a))
            } else {
                up(b, bs, as_).map(|b| (b, a))
            };
            if let Some((b, a)) = keys {
                return b >= a;
            }
        }
        match (self.best_bid(), self.best_ask()) {
            (Some(b), Some(a)) => b.price >= a.price,
            _ => false,
        }
    }

    /// Top `n` bids, best (highest) first.
    #[inline]
    pub fn top_bids(&self, n: usize) -> TopIter<'_> {
        self.bids.top(n)
    }

    /// Top `n` asks, best (lowest) first.
    #[inline]
    pub fn top_asks(&self, n: usize) -> TopIter<'_> {
        self.asks.top(n)
    }

    /// Mid price, if both sides have a level.
    pub fn mid(&self) -> Option<Decimal> {
        let (b, a) = (self.best_bid()?, self.best_ask()?);
        b.price
            .checked_add(a.price)
            .and_then(|s| s.checked_div(Decimal::TWO))
    }
}

fn count_invalid(levels: &[Level]) -> u32 {
    levels.iter().filter(|l| !valid(l)).count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn lv(p: &str, q: &str) -> Level {
        Level::new(Decimal::from_str(p).unwrap(), Decimal::from_str(q).unwrap())
    }

    fn strs(it: TopIter<'_>) -> Vec<(String, String)> {
        it.map(|l| (l.price.to_string(), l.quantity.to_string()))
            .collect()
    }

    #[test]
    fn top_n_order_and_content() {
        let mut b = OrderBook::new();
        b.load(
            &[lv("100.10", "1"), lv("100.30", "3"), lv("100.20", "2")],
            &[lv("100.50", "5"), lv("100.40", "4"), lv("100.60", "6")],
            7,
        );
        assert_eq!(
            strs(b.top_bids(2)),
            [("100.30".into(), "3".into()), ("100.20".into(), "2".into())]
        );
        assert_eq!(
            strs(b.top_asks(10)),
            [
                ("100.40".into(), "4".into()),
                ("100.50".into(), "5".into()),
                ("100.60".into(), "6".into())
            ]
        );
        assert_eq!(b.last_update_id(), 7);
        assert!(!b.is_crossed());
        assert_eq!(b.mid(), Some(Decimal::from_str("100.35").unwrap()));
        let a = b.apply(
            &[lv("100.30", "0"), lv("100.25", "9")],
            &[lv("100.40", "1.5")],
            8,
        );
        assert!(a.changed && a.invalid == 0);
        assert_eq!(strs(b.top_bids(1)), [("100.25".into(), "9".into())]);
        assert_eq!(b.best_ask().unwrap().quantity.to_string(), "1.5");
    }

    /// The key compare agrees with `Decimal` across scales, and falls back
    /// when a side has no keys.
    #[test]
    fn crossed_by_keys_across_scales() {
        for (bid, ask, crossed) in [
            ("10", "10.00", true),
            ("10.001", "10.01", false),
            ("10.01", "10.001", true),
            ("9.9999999", "10", false),
            ("100", "99.5", true),
            ("0.5", "0.50000001", false),
        ] {
            let mut b = OrderBook::new();
            b.load(&[lv(bid, "1")], &[lv(ask, "1")], 1);
            assert!(b.bids.best_key().is_some() && b.asks.best_key().is_some());
            assert_eq!(b.is_crossed(), crossed, "{bid} / {ask}");
        }
        // An ask side whose keys overflow (a huge and a 28-decimal price)
        // drops them: compared by Decimal.
        for (bid, crossed) in [
            ("0.0000000000000000000000000001", false),
            ("0.0000000000000000000000000003", true),
        ] {
            let mut b = OrderBook::new();
            let asks = [
                lv("0.0000000000000000000000000002", "1"),
                lv("79228162514264337593543950335", "1"),
            ];
            b.load(&[lv(bid, "1")], &asks, 1);
            assert!(b.asks.best_key().is_none() && b.bids.best_key().is_some());
            assert_eq!(b.is_crossed(), crossed, "{bid}");
        }
        // Keys that overflow when brought to the other side's scale.
        let mut b = OrderBook::new();
        b.load(
            &[lv("79228162514264337593543950335", "1")],
            &[lv("0.0000000001", "1")],
            1,
        );
        assert!(b.is_crossed());
    }

    #[test]
    fn crossed_and_invalid_levels() {
        let mut b = OrderBook::new();
        b.load(&[lv("10", "1")], &[lv("11", "1")], 1);
        let a = b.apply(&[lv("-1", "1"), lv("10.5", "-2")], &[], 2);
        assert_eq!(a.invalid, 2);
        assert_eq!(b.bids().len(), 1);
        b.apply(&[lv("11", "1")], &[], 3);
        assert!(b.is_crossed());
        let a = b.load(&[lv("5", "1"), lv("-5", "1")], &[lv("6", "1")], 4);
        assert_eq!(a.invalid, 1);
        assert_eq!(b.bids().len(), 1);
        b.clear();
        assert!(!b.is_crossed() && b.best_bid().is_none() && b.mid().is_none());
    }
}
