//! A core's membership task: core 0 keeps this instance's key alive in the
//! bucket; every core reads the bucket on its own connection and decides
//! for its own symbols which it collects (acquire: seed continuity from the
//! stream, then let the sessions run; release: after the handover overlap).

use super::members::{candidates, key_value, owns, parse_entry, Entry, Members};
use super::owned::{Ownership, State};
use super::seed;
use crate::config::plan::MembershipPlan;
use crate::logging::RateLimit;
use crate::metrics::cluster::ClusterStats;
use crate::model::{DataType, VenueId};
use crate::sink::nats::control::Control;
use crate::sink::nats::jsapi::ApiFail;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// JetStream's "stream not found": the bucket does not exist yet.
const ERR_STREAM_NOT_FOUND: u32 = 10059;

/// What the membership task needs of its core.
pub trait Host {
    /// Trades of the symbol up to `seq` are stored already.
    fn seed_trades(&self, venue: VenueId, raw_symbol: &str, seq: u64, ts_ms: u64);
    /// The symbol's normalized name (subjects use it).
    fn normalized(&self, venue: VenueId, raw_symbol: &str) -> String;
    /// Receive time (ns) of the stream's last record on this core.
    fn last_seen_ns(&self, venue: VenueId, dt: DataType, raw_symbol: &str) -> u64;
    /// Connections and streams planned to be up changed by this much.
    fn planned(&self, venue: VenueId, conns: i64, streams: i64);
}

/// One core's membership task and its settings.
pub struct CoreMembership {
    pub me: u32,
    pub replicas: u32,
    pub plan: MembershipPlan,
    pub shard: usize,
    pub owned: Rc<Ownership>,
    pub control: Control,
    pub stats: Arc<ClusterStats>,
    /// Per slot: the WebSocket data types (whether it is live).
    pub types: Vec<Vec<DataType>>,
    log: RefCell<RateLimit>,
}

impl CoreMembership {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        me: u32,
        replicas: u32,
        plan: MembershipPlan,
        shard: usize,
        owned: Rc<Ownership>,
        control: Control,
        stats: Arc<ClusterStats>,
        types: Vec<Vec<DataType>>,
    ) -> CoreMembership {
        CoreMembership {
            me,
            replicas,
            plan,
            shard,
            owned,
            control,
            stats,
            types,
            log: RefCell::new(RateLimit::new(5_000_000_000)),
        }
    }

    fn warn(&self, what: &str) {
        if let Some(n) = self.log.borrow_mut().check(crate::sys::now_ns()) {
            log::warn!(
                "cluster (core {}): {what} ({n} more suppressed)",
                self.shard
            );
        }
    }

    /// Runs until the task is cancelled.
    pub async fn run<H: Host>(self: Rc<Self>, host: Rc<H>) {
        let (ttl, tick, bucket) = (self.plan.ttl(), self.plan.tick(), &self.plan.bucket);
        let started = Instant::now();
        let mut members = Members::default();
        let mut ensured = false;
        let mut decided = false;
        let mut streams: Vec<Option<String>> = vec![None; self.owned.slots().len()];
        let mut entries: Vec<Entry> = Vec::new();
        let mut seen: Vec<(u32, bool)> = Vec::new();
        loop {
            let round = Instant::now();
            if self.shard == 0 {
                self.keep_alive(&mut ensured).await;
            }
            match self.control.kv_entries(bucket).await {
                Ok(list) => {
                    entries.clear();
                    entries.extend(
                        list.iter()
                            .filter_map(|e| parse_entry(&e.key, e.seq, &e.value)),
                    );
                    members.update(&entries, Instant::now());
                }
                // Core 0 has not created it yet (start-up): read again next tick.
                Err(ApiFail::Refused {
                    err_code: ERR_STREAM_NOT_FOUND,
                    ..
                }) if !members.read_once => {}
                Err(e) => {
                    self.stats.bucket_errors.fetch_add(1, Relaxed);
                    self.warn(&format!("reading bucket {bucket} failed: {e}"));
                }
            }
            let now = Instant::now();
            let alive = members.alive(self.me, now, ttl);
            if self.shard == 0 {
                self.stats
                    .members_alive
                    .store(1 + alive.len() as i64, Relaxed);
                if alive != seen {
                    let list: Vec<String> = alive
                        .iter()
                        .map(|(id, w)| format!("{id}{}", if *w { "" } else { " (starting)" }))
                        .collect();
                    log::info!(
                        "cluster: instance {} sees members [{}] alive besides itself (replicas {})",
                        self.me,
                        list.join(", "),
                        self.replicas
                    );
                    seen = alive.clone();
                }
            }
            // Until the bucket was read once, wait (up to takeover_ms) rather
            // than take every symbol from members not seen yet.
            if members.read_once || started.elapsed() >= self.plan.takeover {
                let cands = candidates(self.me, self.stats.warm.load(Relaxed), &alive);
                self.decide(&*host, &cands, decided, &mut streams).await;
                decided = true;
            }
            self.report(&*host, decided);
            let next_leave = self
                .owned
                .slots()
                .iter()
                .enumerate()
                .filter_map(|(i, _)| match self.owned.state(i) {
                    State::Leaving(t) => Some(t),
                    _ => None,
                })
                .min();
            let mut wake = round + tick;
            if let Some(t) = next_leave {
                wake = wake.min(t);
            }
            glommio::timer::sleep(
                wake.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(5)),
            )
            .await;
        }
    }

    /// Core 0: creates the bucket once, then puts this instance's key.
    async fn keep_alive(&self, ensured: &mut bool) {
        let bucket = &self.plan.bucket;
        if !*ensured {
            match self.control.kv_ensure(bucket, self.plan.ttl()).await {
                Ok(_) => *ensured = true,
                Err(e) => {
                    self.stats.bucket_errors.fetch_add(1, Relaxed);
                    self.warn(&format!("creating bucket {bucket} failed: {e}"));
                    return;
                }
            }
        }
        let value = key_value(self.me, self.stats.warm.load(Relaxed));
        if let Err(e) = self
            .control
            .kv_put(bucket, &self.me.to_string(), value.as_bytes())
            .await
        {
            self.stats.bucket_errors.fetch_add(1, Relaxed);
            self.warn(&format!("putting key {} in {bucket} failed: {e}", self.me));
        }
    }

    /// Applies the ownership rule to every slot of this core.
    async fn decide<H: Host>(
        &self,
        host: &H,
        cands: &[u32],
        decided_before: bool,
        streams: &mut [Option<String>],
    ) {
        for (i, stream) in streams.iter_mut().enumerate() {
            let s = &self.owned.slots()[i];
            let want = owns(s.venue, &s.symbol, cands, self.replicas, self.me);
            let now = Instant::now();
            match (self.owned.state(i), want) {
                (State::Off, true) => {
                    self.owned.set(i, State::Seeding);
                    self.seed(host, i, stream).await;
                    self.owned.set(i, State::On);
                    self.counts(host, i, 1);
                    if decided_before {
                        self.stats.takeovers.fetch_add(1, Relaxed);
                    }
                    log::info!(
                        "stream {} {}: collecting ({})",
                        s.venue.config_key(),
                        s.symbol,
                        if decided_before {
                            "taken over"
                        } else {
                            "start-up"
                        }
                    );
                }
                (State::On, false) => {
                    self.owned.set(i, State::Leaving(now + self.plan.handover));
                }
                (State::Leaving(_), true) => self.owned.set(i, State::On),
                (State::Leaving(t), false) if now >= t => {
                    self.owned.set(i, State::Off);
                    self.counts(host, i, -1);
                    self.stats.handovers.fetch_add(1, Relaxed);
                    log::info!(
                        "stream {} {}: released after overlap",
                        s.venue.config_key(),
                        s.symbol
                    );
                }
                _ => {}
            }
        }
    }

    /// Seeds continuity with the last trade the stream holds for the symbol.
    async fn seed<H: Host>(&self, host: &H, i: usize, stream: &mut Option<String>) {
        let s = &self.owned.slots()[i];
        if !self.types[i].contains(&DataType::Trade)
            || !crate::venue::protocol(s.venue).trade_id_is_seq()
        {
            return;
        }
        let subject = seed::trade_subject(s.venue, &host.normalized(s.venue, &s.symbol));
        if stream.is_none() {
            match self.control.stream_for_subject(&subject).await {
                Ok(Some(name)) => *stream = Some(name),
                // Core NATS only: nothing is stored to continue from.
                Ok(None) => return,
                Err(e) => {
                    self.stats.seed_failures.fetch_add(1, Relaxed);
                    self.warn(&format!("no stream for {subject}: {e}"));
                    return;
                }
            }
        }
        let Some(name) = stream.as_deref() else {
            return;
        };
        match self.control.last_by_subject(name, &subject).await {
            Ok(Some(m)) => match seed::stored_trade(&m.payload) {
                Some((id, ts)) => {
                    host.seed_trades(s.venue, &s.symbol, id, ts);
                    log::info!(
                        "stream {} {}: the stream holds trades up to id {id}",
                        s.venue.config_key(),
                        s.symbol
                    );
                }
                None => {
                    self.stats.seed_failures.fetch_add(1, Relaxed);
                    self.warn(&format!(
                        "last message of {subject} is not a trade with an id"
                    ));
                }
            },
            Ok(None) => {}
            Err(e) => {
                self.stats.seed_failures.fetch_add(1, Relaxed);
                self.warn(&format!("reading the last trade of {subject} failed: {e}"));
            }
        }
    }

    /// Symbol `i` became owned (`+1`) or released (`-1`): the planned and
    /// owned counts follow.
    fn counts<H: Host>(&self, host: &H, i: usize, sign: i64) {
        let s = &self.owned.slots()[i];
        host.planned(s.venue, sign * s.conns as i64, sign * s.streams as i64);
        let v = s.venue.index();
        self.stats.symbols_owned[v].fetch_add(sign, Relaxed);
        self.stats.streams_owned[v].fetch_add(sign * s.streams as i64, Relaxed);
    }

    /// Publishes how many owned symbols are not live yet; core 0 marks the
    /// instance warm once every core's are.
    fn report<H: Host>(&self, host: &H, decided: bool) {
        let cold = if decided {
            (0..self.owned.slots().len())
                .filter(|&i| self.owned.state(i).runs() && !self.live(host, i))
                .count() as i64
        } else {
            -1
        };
        self.stats.cold[self.shard].store(cold, Relaxed);
        if self.shard == 0 && !self.stats.warm.load(Relaxed) && self.stats.all_live() {
            self.stats.warm.store(true, Relaxed);
            log::info!(
                "cluster: instance {} warm (every owned stream live)",
                self.me
            );
        }
    }

    /// See [`is_live`].
    fn live<H: Host>(&self, host: &H, i: usize) -> bool {
        let s = &self.owned.slots()[i];
        is_live(
            s.conns,
            self.owned.all_up(i),
            &self.types[i],
            |dt| host.last_seen_ns(s.venue, dt, &s.symbol),
            crate::sys::now_ns(),
            self.plan.takeover.as_nanos() as u64,
        )
    }
}

/// Whether an owned symbol is live: every connection of it is up and one
/// of its streams delivered since the last came up, or it has been up
/// `quiet_ns` without data (a quiet market must not keep its member cold
/// for ever). A symbol of polls only is live once owned.
pub fn is_live(
    conns: u32,
    all_up_since_ns: Option<u64>,
    types: &[DataType],
    last_seen_ns: impl Fn(DataType) -> u64,
    now_ns: u64,
    quiet_ns: u64,
) -> bool {
    if conns == 0 {
        return true;
    }
    let Some(since) = all_up_since_ns else {
        return false;
    };
    types.iter().any(|&dt| last_seen_ns(dt) >= since) || now_ns.saturating_sub(since) >= quiet_ns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symbol_is_live_once_up_and_delivering_or_up_and_quiet_long_enough() {
        let types = [DataType::Trade, DataType::Ticker];
        let seen = |t: u64| move |dt: DataType| if dt == DataType::Ticker { t } else { 0 };
        // Polls only: live at once.
        assert!(is_live(0, None, &[], seen(0), 10, 100));
        // A connection down: not live.
        assert!(!is_live(1, None, &types, seen(50), 60, 100));
        // Up since 40: a ticker at 50 makes it live, one from before does not.
        assert!(is_live(1, Some(40), &types, seen(50), 60, 100));
        assert!(!is_live(1, Some(40), &types, seen(30), 60, 100));
        // Quiet but up for the whole quiet period: live.
        assert!(is_live(1, Some(40), &types, seen(30), 140, 100));
    }
}
