//! A hash-map key for native symbols whose equality is compared inline.
//!
//! Every trade looks its symbol up twice (instrument map, continuity
//! marks). With `Box<str>` keys each lookup ended in a `memcmp` call for a
//! 7-byte string (2 % of the core's samples at full speed, beside 3.4 % for
//! the two lookups' hashing and probing); symbols of 4–16 bytes are compared
//! here as two overlapping words instead. Maps are keyed by [`SymKey`] and looked up by [`Sym::of`] a
//! `&str` (no copy); both hash as `str`.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

/// A symbol to look a [`SymKey`] up by.
#[derive(Debug)]
#[repr(transparent)]
pub struct Sym(str);

impl Sym {
    /// `s` as a lookup key (no copy).
    #[inline]
    pub fn of(s: &str) -> &Sym {
        // SAFETY: `Sym` is a `repr(transparent)` wrapper of `str`.
        unsafe { &*(s as *const str as *const Sym) }
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A symbol as a map key (owned; looked up by [`Sym::of`]).
#[derive(Debug, Clone)]
pub struct SymKey(Box<str>);

impl SymKey {
    pub fn new(s: &str) -> SymKey {
        SymKey(s.into())
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Borrow<Sym> for SymKey {
    #[inline]
    fn borrow(&self) -> &Sym {
        Sym::of(&self.0)
    }
}

// Equality and hash as `Sym`'s, as `Borrow` requires.
impl PartialEq for SymKey {
    #[inline]
    fn eq(&self, other: &SymKey) -> bool {
        Sym::of(&self.0) == Sym::of(&other.0)
    }
}

impl Eq for SymKey {}

impl Hash for SymKey {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        Sym::of(&self.0).hash(h)
    }
}

impl PartialEq for Sym {
    #[inline]
    fn eq(&self, other: &Sym) -> bool {
        crate::swar::same(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for Sym {}

impl Hash for Sym {
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.hash(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustc_hash::FxHashMap;

    #[test]
    fn equal_exactly_when_the_strings_are() {
        let mut checked = 0;
        for n in 0..=24usize {
            let a: String = (0..n).map(|i| char::from(b'A' + (i % 26) as u8)).collect();
            assert_eq!(Sym::of(&a), Sym::of(&a.clone()));
            // One byte different, anywhere.
            for at in 0..n {
                let mut b = a.clone().into_bytes();
                b[at] = b'z';
                let b = String::from_utf8(b).unwrap();
                assert_ne!(Sym::of(&a), Sym::of(&b), "{a} {b}");
                checked += 1;
            }
            // A prefix or an extension.
            assert_ne!(Sym::of(&a), Sym::of(&format!("{a}A")));
            if n > 0 {
                assert_ne!(Sym::of(&a), Sym::of(&a[..n - 1]));
            }
        }
        assert_eq!(checked, (0..=24).sum::<usize>());
    }

    #[test]
    fn a_map_finds_its_keys_by_str() {
        let mut m: FxHashMap<SymKey, u32> = FxHashMap::default();
        let names = [
            "BTCUSDT",
            "ETHUSDT",
            "BTC-USDT-SWAP",
            "X",
            "ABC",
            "BTCUSDTXYZ12345678",
        ];
        for (i, s) in names.iter().enumerate() {
            m.insert(SymKey::new(s), i as u32);
        }
        for (i, s) in names.iter().enumerate() {
            assert_eq!(m.get(Sym::of(s)), Some(&(i as u32)));
            // Another copy of the text finds it too.
            let copy = String::from(*s);
            assert_eq!(m.get(Sym::of(copy.as_str())).copied(), Some(i as u32));
        }
        assert_eq!(m.get(Sym::of("BTCUSDX")), None);
        assert_eq!(m.get(Sym::of("")), None);
        assert_eq!(m.len(), names.len());
    }
}
