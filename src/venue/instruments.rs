//! Native symbol → normalized `BASE-QUOTE`, built once from the venue's
//! instrument list (never by guessing at suffixes) and shared read-only by the
//! cores (each core gets its own clone: no cross-core reads on the hot path).

use super::sym::{Sym, SymKey};
use crate::model::{DataType, DataTypeSet};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

/// One listed instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    /// Native symbol, e.g. `BTCUSDT`.
    pub native: String,
    /// Normalized symbol, e.g. `BTC-USDT`.
    pub normalized: String,
    pub base: String,
    pub quote: String,
    /// Whether the venue reports it as currently trading.
    pub trading: bool,
    /// Base units per contract where the venue counts contracts (OKX `ctVal`
    /// of a linear swap); `None`: quantities are already in base units.
    pub contract_value: Option<Decimal>,
    /// Data types configured for it (broadcast channels such as OKX
    /// `liquidation-orders` are filtered by this).
    pub wanted: DataTypeSet,
}

impl Instrument {
    #[inline]
    pub fn wants(&self, dt: DataType) -> bool {
        self.wanted.contains(dt)
    }

    /// Contracts → base units (exact decimal product); unchanged without a contract value.
    #[inline]
    pub fn to_base(&self, qty: Decimal) -> Decimal {
        match self.contract_value {
            Some(v) => qty.checked_mul(v).unwrap_or(qty),
            None => qty,
        }
    }
}

/// Lookup table keyed by native symbol (upper-case as the venue sends it).
#[derive(Debug, Clone, Default)]
pub struct InstrumentMap {
    by_native: FxHashMap<SymKey, Instrument>,
}

impl InstrumentMap {
    pub fn insert(&mut self, native: &str, base: &str, quote: &str, trading: bool) {
        self.insert_contract(native, base, quote, trading, None);
    }

    /// Adds a contract-sized instrument (`contract_value` base units per contract).
    pub fn insert_contract(
        &mut self,
        native: &str,
        base: &str,
        quote: &str,
        trading: bool,
        contract_value: Option<Decimal>,
    ) {
        let normalized = format!(
            "{}-{}",
            base.to_ascii_uppercase(),
            quote.to_ascii_uppercase()
        );
        self.by_native.insert(
            SymKey::new(native),
            Instrument {
                native: native.to_string(),
                normalized,
                base: base.to_string(),
                quote: quote.to_string(),
                trading,
                contract_value,
                wanted: DataTypeSet::default(),
            },
        );
    }

    /// Marks what is collected of `native` (no-op if it is not listed).
    pub fn set_wanted(&mut self, native: &str, wanted: DataTypeSet) {
        if let Some(i) = self.by_native.get_mut(Sym::of(native)) {
            i.wanted = wanted;
        }
    }

    #[inline]
    pub fn get(&self, native: &str) -> Option<&Instrument> {
        self.by_native.get(Sym::of(native))
    }

    /// Normalized symbol for a native one (hot path: a hash lookup, no allocation).
    #[inline]
    pub fn normalize(&self, native: &str) -> Option<&str> {
        self.by_native
            .get(Sym::of(native))
            .map(|i| i.normalized.as_str())
    }

    /// Every instrument (any order).
    pub fn iter(&self) -> impl Iterator<Item = &Instrument> {
        self.by_native.values()
    }

    pub fn len(&self) -> usize {
        self.by_native.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_native.is_empty()
    }

    /// Keeps only the given native symbols (a core needs just its own).
    pub fn retain(&mut self, keep: &[String]) {
        self.by_native
            .retain(|k, _| keep.iter().any(|s| s.as_str() == k.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_from_listed_assets() {
        let mut m = InstrumentMap::default();
        m.insert("BTCUSDT", "BTC", "USDT", true);
        // A suffix guess would split this wrong ("BTCFD-USD").
        m.insert("BTCFDUSD", "BTC", "FDUSD", true);
        m.insert("1000SATSUSDT", "1000SATS", "USDT", true);
        assert_eq!(m.normalize("BTCUSDT"), Some("BTC-USDT"));
        assert_eq!(m.normalize("BTCFDUSD"), Some("BTC-FDUSD"));
        assert_eq!(m.normalize("1000SATSUSDT"), Some("1000SATS-USDT"));
        assert_eq!(m.normalize("ETHUSDT"), None);
        m.retain(&["BTCUSDT".to_string()]);
        assert_eq!(m.len(), 1);
    }
}
