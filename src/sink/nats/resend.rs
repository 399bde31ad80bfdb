//! Exactly once past `duplicate_window`. JetStream drops a resent
//! `Nats-Msg-Id` only while it remembers it; after a longer outage, records
//! the server stored but whose acks never arrived would be stored twice. So
//! before a connection resumes publishing, for every subject among the
//! records about to be resent the publisher reads the stream's last stored
//! message for that subject and skips what the stream already holds:
//!
//! - the last stored message was acked to us before (its stream sequence is
//!   at most the highest sequence acked to us on that stream): none of our
//!   unacked records of the subject was stored; nothing is skipped;
//! - it is one of our queued records (same id): that record and every
//!   earlier queued record of the subject are stored (one connection writes
//!   in order and the server stores in order), so they are skipped
//!   ([`Floor::Upto`]);
//! - otherwise (another instance or an earlier run stored it): records whose
//!   order key ([`super::order_key`]) is below its key, or whose id is its
//!   id, are skipped ([`Floor::Key`]) until the first record of the subject
//!   that is not; records are in order per subject, so that one clears the
//!   floor and later records are not looked at.

use super::conn::ConnError;
use super::jsapi::{ApiFail, ApiIo};
use super::order_key::order_key;
use super::proto;
use super::queue::Queue;
use super::route::{self, StreamSubjects};
use crate::logging::RateLimit;
use crate::metrics::NatsStats;
use futures_lite::io::{AsyncRead, AsyncWrite};
use rustc_hash::FxHashMap;
use std::cell::RefCell;

/// Where a subject's already stored records end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Floor {
    /// The stream's last message of the subject is the queued record with
    /// this queue sequence: it and the subject's earlier queued records are stored.
    Upto(u64),
    /// The stream's last message is not one of ours: records with a lower
    /// order key, or this id, are stored.
    Key { key: u64, msg_id: String },
}

/// Floors per subject, consulted only while any exist.
#[derive(Debug, Default)]
pub struct Floors {
    map: FxHashMap<String, Floor>,
}

impl Floors {
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn set(&mut self, subject: String, floor: Floor) {
        self.map.insert(subject, floor);
    }

    /// Whether the stream already holds this record of `subject`: `seq` is
    /// its queue sequence (`None`: not queued yet). A record a key floor
    /// does not hold clears it.
    pub fn holds(&mut self, subject: &str, seq: Option<u64>, msg_id: &str) -> bool {
        let held = match self.map.get(subject) {
            None => return false,
            Some(Floor::Upto(upto)) => return seq.is_some_and(|s| s <= *upto),
            Some(Floor::Key { key, msg_id: id }) => {
                id == msg_id || order_key(msg_id).is_some_and(|k| k < *key)
            }
        };
        if !held {
            self.map.remove(subject);
        }
        held
    }

    /// After the pass over the queue: position floors are spent.
    pub fn end_walk(&mut self) {
        self.map.retain(|_, f| matches!(f, Floor::Key { .. }));
    }
}

/// The highest stream sequence acked to us, per stream (a handful).
#[derive(Debug, Default)]
pub struct AckedSeqs(Vec<(String, u64)>);

impl AckedSeqs {
    /// Allocates only for a stream not seen before.
    pub fn note(&mut self, stream: &str, seq: u64) {
        match self.0.iter_mut().find(|(s, _)| s == stream) {
            Some((_, max)) => *max = (*max).max(seq),
            None => self.0.push((stream.to_string(), seq)),
        }
    }

    pub fn get(&self, stream: &str) -> u64 {
        self.0
            .iter()
            .find(|(s, _)| s == stream)
            .map_or(0, |(_, m)| *m)
    }
}

/// The floor for one subject from its last stored message (`stored_seq`,
/// `stored_id`), the highest sequence acked to us on its stream, and the
/// queue sequence of our queued record with that id, if any.
pub fn decide(
    stored_seq: u64,
    stored_id: Option<&str>,
    max_acked: u64,
    ours_at: Option<u64>,
) -> Option<Floor> {
    if stored_seq <= max_acked {
        return None;
    }
    if let Some(seq) = ours_at {
        return Some(Floor::Upto(seq));
    }
    let id = stored_id?;
    order_key(id).map(|key| Floor::Key {
        key,
        msg_id: id.to_string(),
    })
}

/// Runs before a connection resumes publishing: looks up the last stored
/// message of every subject among the queued JetStream records that were
/// written before (`all`: every queued record, on the first connection,
/// when records may come from an earlier run's spill), skips the queued
/// records the streams hold, and returns the key floors still open (for
/// records not queued yet). Only a failed connection is an error; a refused
/// or unanswered lookup leaves its subject unchecked (counted and logged).
#[allow(clippy::too_many_arguments)]
pub async fn check<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    io: &mut ApiIo<'_, R, W>,
    queue: &RefCell<Queue>,
    streams: &[StreamSubjects],
    acked: &AckedSeqs,
    all: bool,
    stats: &NatsStats,
    warn: &RefCell<RateLimit>,
) -> Result<Floors, ConnError> {
    let mut owned: Vec<String> = Vec::new();
    queue.borrow_mut().skip_queued(|_, written, frame| {
        if written || all {
            if let Some((subject, _, _)) = proto::split_frame(frame) {
                if !owned.iter().any(|s| s == subject) {
                    owned.push(subject.to_string());
                }
            }
        }
        false
    });
    // (subject, stream, last stored seq, its id)
    let mut last: Vec<(String, String, u64, Option<String>)> = Vec::new();
    for subject in owned {
        let Some(stream) = streams
            .iter()
            .find(|s| {
                s.subjects
                    .iter()
                    .any(|f| route::subject_matches(f, &subject))
            })
            .map(|s| s.name.clone())
        else {
            continue;
        };
        stats.resend_lookups.inc();
        match io.last_by_subject(&stream, &subject).await {
            Ok(Some(m)) => last.push((subject, stream, m.seq, m.msg_id)),
            Ok(None) => {}
            Err(ApiFail::Conn(ConnError::Timeout(w))) => {
                failed(stats, warn, &subject, &format!("no answer ({w})"));
                // The server is slow: publish rather than stall.
                break;
            }
            // -ERR (the account may not read stored messages): the
            // connection stays usable; publish rather than loop on it.
            Err(ApiFail::Conn(ConnError::Server(why))) => {
                failed(stats, warn, &subject, &format!("-ERR {why}"));
                break;
            }
            Err(ApiFail::Conn(e)) => return Err(e),
            Err(e) => {
                failed(stats, warn, &subject, &e.to_string());
            }
        }
    }
    let mut floors = Floors::default();
    if last.is_empty() {
        return Ok(floors);
    }
    // Our queued record holding each stored id, if any (the last one).
    let mut ours: Vec<Option<u64>> = vec![None; last.len()];
    queue.borrow_mut().skip_queued(|seq, _, frame| {
        if let Some((subject, id, _)) = proto::split_frame(frame) {
            for (i, (s, _, _, stored)) in last.iter().enumerate() {
                if s == subject && stored.as_deref() == Some(id) {
                    ours[i] = Some(seq);
                }
            }
        }
        false
    });
    for ((subject, stream, seq, id), at) in last.into_iter().zip(ours) {
        if let Some(f) = decide(seq, id.as_deref(), acked.get(&stream), at) {
            floors.set(subject, f);
        }
    }
    if floors.is_empty() {
        return Ok(floors);
    }
    let skipped = queue.borrow_mut().skip_queued(|seq, _, frame| {
        proto::split_frame(frame)
            .is_some_and(|(subject, id, _)| floors.holds(subject, Some(seq), id))
    });
    floors.end_walk();
    if skipped > 0 {
        stats.resend_skipped.add(skipped);
        log::warn!(
            "NATS: {skipped} records not resent: the stream already holds them (stored before \
             the connection was lost, acks never received; past duplicate_window a resend \
             would store them twice)"
        );
    }
    Ok(floors)
}

fn failed(stats: &NatsStats, warn: &RefCell<RateLimit>, subject: &str, why: &str) {
    stats.resend_lookup_failures.inc();
    if let Some(n) = warn.borrow_mut().check(crate::sys::now_ns()) {
        log::warn!(
            "NATS: reading the last stored message of {subject:?} failed: {why}; its records \
             are resent unchecked (the server drops repeats within duplicate_window only) \
             (+{n} suppressed)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "trade.binance.spot.BTC-USDT";

    fn id(n: u64) -> String {
        format!("trade:binance:spot:BTC-USDT:{n}")
    }

    #[test]
    fn decide_each_case() {
        // Stored before our last ack: nothing of ours unacked was stored.
        assert_eq!(decide(10, Some(&id(5)), 10, Some(3)), None);
        // One of ours: up to it.
        assert_eq!(decide(11, Some(&id(5)), 10, Some(3)), Some(Floor::Upto(3)));
        // Someone else's: by key.
        assert_eq!(
            decide(11, Some(&id(5)), 10, None),
            Some(Floor::Key {
                key: 5,
                msg_id: id(5)
            })
        );
        // No key, or no id: nothing can be said.
        assert_eq!(decide(11, Some("gap:x:y:z:1"), 0, None), None);
        assert_eq!(decide(11, None, 0, None), None);
    }

    #[test]
    fn upto_floor_holds_the_prefix_only_during_the_walk() {
        let mut f = Floors::default();
        f.set(T.into(), Floor::Upto(7));
        assert!(f.holds(T, Some(5), &id(100)));
        assert!(f.holds(T, Some(7), &id(90)), "order keys do not matter");
        assert!(!f.holds(T, Some(8), &id(1)));
        assert!(!f.holds("trade.other", Some(1), &id(1)));
        assert_eq!(f.len(), 1);
        f.end_walk();
        assert!(f.is_empty());
    }

    #[test]
    fn key_floor_holds_lower_keys_and_its_id_until_one_passes() {
        let mut f = Floors::default();
        f.set(
            T.into(),
            Floor::Key {
                key: 50,
                msg_id: id(50),
            },
        );
        f.end_walk();
        assert!(f.holds(T, Some(1), &id(48)));
        assert!(f.holds(T, None, &id(49)));
        assert!(f.holds(T, None, &id(50)));
        assert!(!f.holds(T, None, &id(51)));
        assert!(f.is_empty(), "passing cleared it");
        assert!(!f.holds(T, None, &id(10)), "no floor, no check");
        // Equal key, other id (liquidations in the same ms): not held.
        let liq = "liquidation.binance.perpetual.BTC-USDT";
        f.set(
            liq.into(),
            Floor::Key {
                key: 1000,
                msg_id: "liquidation:binance:perpetual:BTC-USDT:1000:1:1:buy".into(),
            },
        );
        assert!(f.holds(
            liq,
            None,
            "liquidation:binance:perpetual:BTC-USDT:999:5:1:sell"
        ));
        assert!(f.holds(
            liq,
            None,
            "liquidation:binance:perpetual:BTC-USDT:1000:1:1:buy"
        ));
        assert!(!f.holds(
            liq,
            None,
            "liquidation:binance:perpetual:BTC-USDT:1000:2:1:buy"
        ));
        // A record without a key clears the floor too.
        f.set(
            T.into(),
            Floor::Key {
                key: 50,
                msg_id: id(50),
            },
        );
        assert!(!f.holds(T, None, "trade:binance:spot:BTC-USDT:a-b-c"));
        assert!(f.is_empty());
    }

    #[test]
    fn acked_seqs_per_stream() {
        let mut a = AckedSeqs::default();
        a.note("A", 5);
        a.note("A", 3);
        a.note("B", 9);
        assert_eq!((a.get("A"), a.get("B"), a.get("C")), (5, 9, 0));
    }
}
