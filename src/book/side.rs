//! One side of a book: a sorted vector of absolute levels.
//!
//! Stored **worst first, best last**: updates cluster near the best price, so
//! inserting or removing there moves only the few levels behind it (a
//! best-first vector would shift the whole side on every top-of-book change).
//! Readers get best-first views through [`BookSide::top`].
//!
//! Each price also has an integer key (its mantissa at the side's largest
//! scale), kept in a parallel vector: searching compares `u64`s instead of
//! `Decimal`s (whose comparison is an out-of-line call, most of an update's
//! cost). A price whose key would overflow switches the side to `Decimal`
//! comparisons until it is reloaded.

use crate::batch::Level;
use rust_decimal::Decimal;
use std::cmp::Ordering;
use std::iter::Rev;
use std::slice::Iter;

/// Best-first iterator over the top levels of a side.
pub type TopIter<'a> = Rev<Iter<'a, Level>>;

const fn pow10_table() -> [u128; 39] {
    let mut t = [1u128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
}

pub(super) static POW10: [u128; 39] = pow10_table();

/// The powers of ten a `u64` holds (keys: 8 bytes, one compare each).
static POW10_64: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// Most levels a side keeps (the best ones). Venues send at most a few
/// thousand (Binance snapshots: 5 000), but diffs add levels they never
/// remove, so without a cap a side grew for as long as the stream ran.
pub const MAX_LEVELS: usize = 20_000;

/// Bids (best = highest) or asks (best = lowest).
#[derive(Debug, Clone, Default)]
pub struct BookSide {
    /// Worst first, best last; prices unique, quantities non-zero.
    levels: Vec<Level>,
    /// `keys[i]` is `levels[i].price` at `scale` (valid while `exact`).
    keys: Vec<u64>,
    scale: u32,
    exact: bool,
    is_bid: bool,
}

/// Same number in the same received form (scale), so a replaced level keeps
/// the string OKX's checksum expects.
#[inline]
fn same_repr(a: &Decimal, b: &Decimal) -> bool {
    a.serialize() == b.serialize()
}

impl BookSide {
    pub fn new(is_bid: bool) -> BookSide {
        BookSide {
            levels: Vec::new(),
            keys: Vec::new(),
            scale: 0,
            exact: true,
            is_bid,
        }
    }

    /// The integer key of `price`, rescaling the side first if `price` has
    /// more decimals. `None`: no exact key (the side falls back to Decimal).
    #[inline]
    fn key_of(&mut self, price: &Decimal) -> Option<u64> {
        let m = u64::try_from(price.mantissa()).ok()?;
        let s = price.scale();
        if s > self.scale {
            let f = *POW10_64.get((s - self.scale) as usize)?;
            for k in self.keys.iter_mut() {
                *k = k.checked_mul(f)?;
            }
            self.scale = s;
        }
        m.checked_mul(*POW10_64.get((self.scale - s) as usize)?)
    }

    fn drop_keys(&mut self) {
        self.exact = false;
        self.keys.clear();
    }

    /// Storage position of `key`: galloping from the best end (updates
    /// cluster there), then bisecting the bracket found.
    #[inline]
    fn find_key(&self, key: u64) -> Result<usize, usize> {
        let order = |k: &u64| if self.is_bid { k.cmp(&key) } else { key.cmp(k) };
        // Everything in [hi, len) is better than `key`.
        let mut hi = self.keys.len();
        let mut step = 1;
        let lo = loop {
            if step > hi {
                break 0;
            }
            let i = hi - step;
            match order(&self.keys[i]) {
                Ordering::Equal => return Ok(i),
                Ordering::Less => break i + 1,
                Ordering::Greater => {
                    hi = i;
                    step *= 2;
                }
            }
        };
        match self.keys[lo..hi].binary_search_by(order) {
            Ok(j) => Ok(lo + j),
            Err(j) => Err(lo + j),
        }
    }

    pub fn is_bid(&self) -> bool {
        self.is_bid
    }

    /// Storage order: worst to best.
    #[inline]
    fn order(is_bid: bool, a: &Decimal, b: &Decimal) -> Ordering {
        if is_bid {
            a.cmp(b)
        } else {
            b.cmp(a)
        }
    }

    #[inline]
    fn find_decimal(&self, price: &Decimal) -> Result<usize, usize> {
        let is_bid = self.is_bid;
        let n = self.levels.len();
        // Most updates touch the best few levels: look there before bisecting.
        if let Some(best) = self.levels.last() {
            match Self::order(is_bid, &best.price, price) {
                Ordering::Equal => return Ok(n - 1),
                Ordering::Less => return Err(n),
                Ordering::Greater => {}
            }
        }
        self.levels
            .binary_search_by(|l| Self::order(is_bid, &l.price, price))
    }

    /// Sets the absolute quantity at `price` (0 removes; removing an unknown
    /// level is a no-op). Returns whether the side changed.
    #[inline]
    pub fn set(&mut self, price: Decimal, quantity: Decimal) -> bool {
        let mut key = None;
        if self.exact {
            key = self.key_of(&price);
            if key.is_none() {
                self.drop_keys();
            }
        }
        let pos = match key {
            Some(k) => self.find_key(k),
            None => self.find_decimal(&price),
        };
        match pos {
            Ok(i) => {
                if quantity.is_zero() {
                    self.levels.remove(i);
                    if self.exact {
                        self.keys.remove(i);
                    }
                    true
                } else {
                    let l = &mut self.levels[i];
                    if same_repr(&l.quantity, &quantity) && l.price.scale() == price.scale() {
                        false
                    } else {
                        *l = Level::new(price, quantity);
                        true
                    }
                }
            }
            Err(i) => {
                if quantity.is_zero() {
                    return false;
                }
                let mut i = i;
                if self.levels.len() >= MAX_LEVELS {
                    // Full: the worst level (first) makes room, or the new
                    // one is the worst and is not kept.
                    if i == 0 {
                        return false;
                    }
                    self.levels.remove(0);
                    if self.exact {
                        self.keys.remove(0);
                    }
                    i -= 1;
                }
                self.levels.insert(i, Level::new(price, quantity));
                if let Some(k) = key {
                    self.keys.insert(i, k);
                }
                true
            }
        }
    }

    /// Replaces the side with `levels` (any order; zero quantities skipped;
    /// on duplicate prices one of them is kept).
    pub fn load(&mut self, levels: &[Level]) {
        self.levels.clear();
        self.levels
            .extend(levels.iter().rev().filter(|l| !l.quantity.is_zero()));
        let is_bid = self.is_bid;
        // Venues send snapshots best first, so the reversed copy is usually
        // already in storage order.
        let sorted = self
            .levels
            .windows(2)
            .all(|w| Self::order(is_bid, &w[0].price, &w[1].price) == Ordering::Less);
        if !sorted {
            self.levels
                .sort_by(|a, b| Self::order(is_bid, &a.price, &b.price));
            self.levels.dedup_by(|a, b| a.price == b.price);
        }
        let extra = self.levels.len().saturating_sub(MAX_LEVELS);
        self.levels.drain(..extra);
        self.rebuild_keys();
    }

    fn rebuild_keys(&mut self) {
        self.keys.clear();
        self.exact = true;
        self.scale = self
            .levels
            .iter()
            .map(|l| l.price.scale())
            .max()
            .unwrap_or(0);
        for i in 0..self.levels.len() {
            let p = self.levels[i].price;
            match self.key_of(&p) {
                Some(k) => self.keys.push(k),
                None => return self.drop_keys(),
            }
        }
    }

    pub fn clear(&mut self) {
        self.levels.clear();
        self.keys.clear();
        self.exact = true;
        self.scale = 0;
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    #[inline]
    pub fn best(&self) -> Option<&Level> {
        self.levels.last()
    }

    /// The best price's integer key and the side's scale (`None`: empty or
    /// keys dropped), so both sides compare without a `Decimal` compare.
    #[inline]
    pub(super) fn best_key(&self) -> Option<(u128, u32)> {
        if self.exact {
            self.keys.last().map(|&k| (u128::from(k), self.scale))
        } else {
            None
        }
    }

    /// The best `n` levels (fewer if the side is shorter), best first.
    #[inline]
    pub fn top(&self, n: usize) -> TopIter<'_> {
        let len = self.levels.len();
        self.levels[len - n.min(len)..].iter().rev()
    }

    /// The `i`-th best level (0 = best).
    #[inline]
    pub fn nth_best(&self, i: usize) -> Option<&Level> {
        let len = self.levels.len();
        if i < len {
            self.levels.get(len - 1 - i)
        } else {
            None
        }
    }

    /// All levels in storage order: **worst first**.
    pub fn as_worst_first(&self) -> &[Level] {
        &self.levels
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn prices(s: &BookSide) -> Vec<String> {
        s.top(usize::MAX).map(|l| l.price.to_string()).collect()
    }

    #[test]
    fn bids_best_first_and_zero_deletes() {
        let mut s = BookSide::new(true);
        assert!(s.set(d("10"), d("1")));
        assert!(s.set(d("12"), d("1")));
        assert!(s.set(d("11"), d("1")));
        assert!(s.set(d("9.5"), d("1")));
        assert_eq!(prices(&s), ["12", "11", "10", "9.5"]);
        assert!(
            !s.set(d("13"), d("0")),
            "deleting an unknown level is a no-op"
        );
        assert!(s.set(d("11"), d("0")));
        assert_eq!(prices(&s), ["12", "10", "9.5"]);
        assert!(!s.set(d("12"), d("1")), "same quantity: no change");
        assert!(s.set(d("12"), d("1.0")), "new received form replaces");
        assert_eq!(s.best().unwrap().quantity.to_string(), "1.0");
        assert_eq!(s.nth_best(1).unwrap().price, d("10"));
        assert_eq!(s.nth_best(3), None);
        assert_eq!(s.top(2).len(), 2);
    }

    #[test]
    fn asks_ascending_and_load_unsorted() {
        let mut s = BookSide::new(false);
        let lv = |p: &str, q: &str| Level::new(d(p), d(q));
        s.load(&[
            lv("5", "1"),
            lv("3", "1"),
            lv("4", "0"),
            lv("4.5", "2"),
            lv("3", "7"),
        ]);
        assert_eq!(prices(&s), ["3", "4.5", "5"]);
        s.load(&[lv("1", "1"), lv("2", "1")]);
        assert_eq!(prices(&s), ["1", "2"]);
        s.set(d("0.5"), d("1"));
        s.set(d("1.5"), d("1"));
        assert_eq!(prices(&s), ["0.5", "1", "1.5", "2"]);
        assert_eq!(s.top(0).count(), 0);
        assert!(s.exact);
        s.clear();
        assert!(s.is_empty() && s.best().is_none());
    }

    #[test]
    fn a_side_keeps_at_most_max_levels_the_best_ones() {
        let lv = |p: i64| Level::new(Decimal::new(p, 2), Decimal::ONE);
        for is_bid in [true, false] {
            let mut s = BookSide::new(is_bid);
            let n = MAX_LEVELS as i64 + 100;
            s.load(&(1..=n).map(lv).collect::<Vec<_>>());
            assert_eq!(s.len(), MAX_LEVELS);
            let (best, worst) = if is_bid {
                (n, 101)
            } else {
                (1, MAX_LEVELS as i64)
            };
            assert_eq!(s.best().unwrap().price, Decimal::new(best, 2));
            assert_eq!(s.as_worst_first()[0].price, Decimal::new(worst, 2));
            // A new best pushes the worst out; a new worst is not kept.
            let (better, worse) = if is_bid { (n + 1, 1) } else { (0, n + 1) };
            assert!(s.set(Decimal::new(better, 2), Decimal::ONE));
            assert!(!s.set(Decimal::new(worse, 2), Decimal::ONE));
            assert_eq!(s.len(), MAX_LEVELS);
            assert_eq!(s.best().unwrap().price, Decimal::new(better, 2));
            let w = s.as_worst_first();
            assert!(w
                .windows(2)
                .all(|p| BookSide::order(is_bid, &p[0].price, &p[1].price).is_lt()));
            assert_eq!(s.keys.len(), s.levels.len());
        }
    }

    /// Keys and Decimal order agree through rescaling, and a side that
    /// cannot key a price still works (by Decimal).
    #[test]
    fn keys_rescale_and_fall_back() {
        let mut rng = fastrand::Rng::with_seed(5);
        for is_bid in [true, false] {
            let mut s = BookSide::new(is_bid);
            let mut model = std::collections::BTreeMap::<Decimal, Decimal>::new();
            for step in 0..4000 {
                let scale = rng.u32(0..4);
                let price = Decimal::new(rng.i64(0..300), scale);
                let q = if rng.bool() {
                    Decimal::ZERO
                } else {
                    Decimal::new(rng.i64(1..9), 1)
                };
                if step == 3000 {
                    // Overflows any u64 key: Decimal mode from here on.
                    let tiny = Decimal::from_str("0.0000000000000000000000000001").unwrap();
                    for p in [tiny, Decimal::MAX] {
                        s.set(p, Decimal::ONE);
                        model.insert(p, Decimal::ONE);
                    }
                    assert!(!s.exact);
                }
                s.set(price, q);
                if q.is_zero() {
                    model.remove(&price);
                } else {
                    model.insert(price, q);
                }
                let got: Vec<Decimal> = s.top(usize::MAX).map(|l| l.price).collect();
                let mut want: Vec<Decimal> = model.keys().copied().collect();
                if is_bid {
                    want.reverse();
                }
                assert_eq!(got, want, "step {step}");
                if s.exact {
                    assert_eq!(s.keys.len(), s.levels.len());
                }
            }
        }
        let mut s = BookSide::new(true);
        s.set(Decimal::MAX, Decimal::ONE);
        s.set(Decimal::from_str("1.5").unwrap(), Decimal::ONE);
        s.set(Decimal::from_str("-1").unwrap(), Decimal::ONE);
        assert!(!s.exact);
        assert_eq!(s.len(), 3);
        assert_eq!(s.best().unwrap().price, Decimal::MAX);
    }
}
