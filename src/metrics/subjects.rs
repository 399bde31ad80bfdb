//! Messages handed to the message sink per NATS subject, for MarketPrism's
//! `marketprism_nats_messages_published_total{subject}` and the per
//! exchange × market type × data type sums derived from it at scrape time.
//!
//! One core writes its [`SubjectCounts`] through a [`SubjectIndex`] it owns:
//! a subject seen before costs one hash lookup and a relaxed store; a new
//! subject allocates its name once. The scrape reads the slots.

use super::LocalCounter;
use crate::logging::RateLimit;
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Subjects one core can count; more are counted in `overflow` (a core
/// carries its symbols × data types, far fewer).
pub const SUBJECT_SLOTS: usize = 4096;

#[derive(Debug, Default)]
struct Slot {
    subject: OnceLock<Box<str>>,
    count: LocalCounter,
}

/// Per-subject hand-off counts of one core (single writer).
#[derive(Debug)]
pub struct SubjectCounts {
    slots: Box<[Slot]>,
    /// Slots whose subject is set (published after the subject).
    used: AtomicUsize,
    /// Messages of subjects beyond [`SUBJECT_SLOTS`].
    pub overflow: LocalCounter,
}

impl Default for SubjectCounts {
    fn default() -> Self {
        SubjectCounts {
            slots: (0..SUBJECT_SLOTS).map(|_| Slot::default()).collect(),
            used: AtomicUsize::new(0),
            overflow: LocalCounter::default(),
        }
    }
}

impl SubjectCounts {
    /// (subject, count) of every subject counted so far.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        let n = self.used.load(Ordering::Acquire);
        self.slots[..n]
            .iter()
            .filter_map(|s| s.subject.get().map(|name| (&**name, s.count.get())))
    }
}

/// The writer's side: subject → slot, owned by the core that counts.
#[derive(Debug)]
pub struct SubjectIndex {
    slots: FxHashMap<Box<[u8]>, u32>,
    log: RateLimit,
}

impl Default for SubjectIndex {
    fn default() -> Self {
        SubjectIndex {
            slots: FxHashMap::default(),
            // One line a minute at most: the table stays full.
            log: RateLimit::new(60_000_000_000),
        }
    }
}

impl SubjectIndex {
    /// Counts one message handed on under `subject`. `gap.*` subjects are
    /// left out: they are ours, not MarketPrism's, and a one-off gap record
    /// would make MarketPrism's per-subject "no data" alert fire.
    #[inline]
    pub fn count(&mut self, counts: &SubjectCounts, subject: &[u8]) {
        if subject.starts_with(b"gap.") {
            return;
        }
        if let Some(&i) = self.slots.get(subject) {
            counts.slots[i as usize].count.inc();
            return;
        }
        let i = counts.used.load(Ordering::Relaxed);
        // Subjects are ASCII built by the pipeline; anything else is not kept.
        let (Some(slot), Ok(name)) = (counts.slots.get(i), std::str::from_utf8(subject)) else {
            counts.overflow.inc();
            if let Some(n) = self.log.check(crate::sys::now_ns()) {
                log::warn!(
                    "more than {SUBJECT_SLOTS} subjects on one core: {} not in marketprism_nats_messages_published_total, counted in marketprism_nats_subjects_overflow_total ({n} more since the last line)",
                    String::from_utf8_lossy(subject)
                );
            }
            return;
        };
        let _ = slot.subject.set(name.into());
        slot.count.inc();
        counts.used.store(i + 1, Ordering::Release);
        self.slots.insert(subject.into(), i as u32);
    }
}

/// MarketPrism's labels of a subject `{data_type}.{exchange}.{market_type}.{symbol}`:
/// (data_type, exchange, market_type); `None` for other shapes.
pub fn subject_labels(subject: &str) -> Option<(&str, &str, &str)> {
    let mut it = subject.splitn(4, '.');
    let (dt, ex, mt) = (it.next()?, it.next()?, it.next()?);
    it.next()?;
    Some((dt, ex, mt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_subject_and_skips_gaps() {
        let c = SubjectCounts::default();
        let mut ix = SubjectIndex::default();
        for _ in 0..3 {
            ix.count(&c, b"trade.binance.spot.BTC-USDT");
        }
        ix.count(&c, b"orderbook.okx.perpetual.BTC-USDT");
        ix.count(&c, b"gap.binance.spot.BTC-USDT");
        let got: Vec<(&str, u64)> = c.iter().collect();
        assert_eq!(
            got,
            vec![
                ("trade.binance.spot.BTC-USDT", 3),
                ("orderbook.okx.perpetual.BTC-USDT", 1)
            ]
        );
        assert_eq!(c.overflow.get(), 0);
    }

    #[test]
    fn subjects_beyond_the_table_are_counted_as_overflow() {
        let c = SubjectCounts::default();
        let mut ix = SubjectIndex::default();
        for i in 0..SUBJECT_SLOTS + 2 {
            ix.count(&c, format!("trade.binance.spot.S{i}-USDT").as_bytes());
        }
        ix.count(&c, b"trade.binance.spot.S0-USDT");
        ix.count(
            &c,
            format!("trade.binance.spot.S{SUBJECT_SLOTS}-USDT").as_bytes(),
        );
        assert_eq!(c.iter().count(), SUBJECT_SLOTS);
        assert_eq!(c.iter().next(), Some(("trade.binance.spot.S0-USDT", 2)));
        assert_eq!(c.overflow.get(), 3);
    }

    #[test]
    fn labels_of_a_subject() {
        assert_eq!(
            subject_labels("volatility_index.deribit.options.BTC"),
            Some(("volatility_index", "deribit", "options"))
        );
        assert_eq!(subject_labels("a.b.c"), None);
    }
}
