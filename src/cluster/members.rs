//! The members as this core sees them in the bucket, and who ranks for a
//! symbol. A member is alive while its key is present and its revision
//! advanced within the key's ttl, as observed here: no clock is compared
//! across machines.

use crate::config::assign::in_top_k;
use crate::model::VenueId;
use std::time::{Duration, Instant};

/// What a member's key says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub id: u32,
    /// The key's revision (stream sequence of its last put).
    pub seq: u64,
    /// Every stream it owns was live at least once since it started.
    pub warm: bool,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    entry: Entry,
    /// When its revision last advanced here.
    advanced: Instant,
    present: bool,
}

/// The members seen so far by this core.
#[derive(Debug, Default)]
pub struct Members {
    seen: Vec<Seen>,
    /// Whether the bucket was read at least once.
    pub read_once: bool,
}

/// The value this instance puts under its key.
pub fn key_value(me: u32, warm: bool) -> String {
    format!("{{\"instance\":{me},\"warm\":{warm}}}")
}

/// A key and value of the bucket as an [`Entry`] (`None`: not a member key).
pub fn parse_entry(key: &str, seq: u64, value: &[u8]) -> Option<Entry> {
    let id: u32 = key.parse().ok().filter(|&n| n > 0)?;
    let v: sonic_rs::Value = sonic_rs::from_slice(value).ok()?;
    let warm = sonic_rs::JsonValueTrait::get(&v, "warm")
        .and_then(sonic_rs::JsonValueTrait::as_bool)
        .unwrap_or(false);
    Some(Entry { id, seq, warm })
}

impl Members {
    /// The bucket's present keys, read at `now`.
    pub fn update(&mut self, entries: &[Entry], now: Instant) {
        self.read_once = true;
        for s in &mut self.seen {
            s.present = false;
        }
        for e in entries {
            match self.seen.iter_mut().find(|s| s.entry.id == e.id) {
                Some(s) => {
                    if e.seq != s.entry.seq {
                        s.advanced = now;
                    }
                    s.entry = *e;
                    s.present = true;
                }
                None => self.seen.push(Seen {
                    entry: *e,
                    advanced: now,
                    present: true,
                }),
            }
        }
    }

    /// Members other than `me` alive at `now`: (id, warm).
    pub fn alive(&self, me: u32, now: Instant, ttl: Duration) -> Vec<(u32, bool)> {
        let mut out: Vec<(u32, bool)> = self
            .seen
            .iter()
            .filter(|s| {
                s.entry.id != me && s.present && now.saturating_duration_since(s.advanced) <= ttl
            })
            .map(|s| (s.entry.id, s.entry.warm))
            .collect();
        out.sort_unstable();
        out
    }
}

/// Who ranks for the symbols: this instance, and the alive members that
/// are warm (a member still starting takes nothing from the others:
/// make-before-break). While this instance and every other member are
/// still cold (the whole cluster starting), all alive members count, so
/// each starts with its own share.
pub fn candidates(me: u32, me_warm: bool, alive: &[(u32, bool)]) -> Vec<u32> {
    let any_warm = alive.iter().any(|&(_, w)| w);
    let mut out = vec![me];
    out.extend(
        alive
            .iter()
            .filter(|&&(_, w)| w || (!me_warm && !any_warm))
            .map(|&(id, _)| id),
    );
    out
}

/// Whether this instance collects `symbol` among `candidates`.
pub fn owns(venue: VenueId, symbol: &str, candidates: &[u32], replicas: u32, me: u32) -> bool {
    in_top_k(venue, symbol, candidates, replicas, me)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_live_while_their_revision_advances() {
        let t0 = Instant::now();
        let ttl = Duration::from_millis(2000);
        let mut m = Members::default();
        let e = |id, seq, warm| Entry { id, seq, warm };
        m.update(&[e(1, 10, true), e(2, 11, false), e(3, 12, true)], t0);
        assert_eq!(m.alive(1, t0, ttl), vec![(2, false), (3, true)]);
        // 2 keeps putting; 3's key stays but its revision stalls.
        let t1 = t0 + Duration::from_millis(1500);
        m.update(&[e(1, 20, true), e(2, 21, true), e(3, 12, true)], t1);
        let t2 = t0 + Duration::from_millis(2100);
        assert_eq!(m.alive(1, t2, ttl), vec![(2, true)]);
        // A key gone from the bucket is dead at once.
        m.update(&[e(1, 30, true)], t2);
        assert_eq!(m.alive(1, t2, ttl), vec![]);
        // Back with a new revision: alive again.
        m.update(&[e(1, 31, true), e(2, 40, false)], t2);
        assert_eq!(m.alive(1, t2, ttl), vec![(2, false)]);
    }

    #[test]
    fn cold_members_take_nothing_from_warm_ones() {
        // Warm self: only warm members rank with it.
        assert_eq!(candidates(1, true, &[(2, false), (3, true)]), vec![1, 3]);
        // Cold self among warm members: the same.
        assert_eq!(candidates(2, false, &[(1, true), (3, true)]), vec![2, 1, 3]);
        assert_eq!(candidates(2, false, &[(1, true), (3, false)]), vec![2, 1]);
        // Everyone starting: all count.
        assert_eq!(
            candidates(2, false, &[(1, false), (3, false)]),
            vec![2, 1, 3]
        );
        // Alone: everything is ours.
        assert!(owns(VenueId::BinanceSpot, "BTCUSDT", &[1], 1, 1));
        // BTCUSDT ranks 3, 2, 1 (pinned in config): K = 2 of {1, 2, 3}.
        assert!(!owns(VenueId::BinanceSpot, "BTCUSDT", &[1, 2, 3], 2, 1));
        assert!(owns(VenueId::BinanceSpot, "BTCUSDT", &[1, 3], 2, 1));
    }

    #[test]
    fn key_values_round_trip() {
        let v = key_value(3, true);
        assert_eq!(v, "{\"instance\":3,\"warm\":true}");
        assert_eq!(
            parse_entry("3", 9, v.as_bytes()),
            Some(Entry {
                id: 3,
                seq: 9,
                warm: true
            })
        );
        assert_eq!(parse_entry("x", 9, v.as_bytes()), None);
        assert_eq!(parse_entry("0", 9, v.as_bytes()), None);
        assert_eq!(parse_entry("2", 9, b"not json"), None);
    }
}
