//! A shard: everything one pinned core owns (its connections, pipeline, sink
//! and stats) and the tasks that drive them on that core's executor: one
//! socket session per connection ([`super::session`]), a flusher for the
//! batch age limit, a REST worker per venue (snapshots, polls, backfill), a
//! poll scheduler, the book publisher, the NATS pump, and a control loop
//! that watches for shutdown. Nothing here is shared with another core
//! except the stats it writes.

use super::continuity::StreamGap;
use super::pipeline::Pipeline;
pub use super::session::VenueRuntime;
use super::session::{self, Core, Sessions};
use super::shutdown;
use crate::book::BookAction;
use crate::cluster::run::CoreMembership;
use crate::config::plan::{CorePlan, EnginePlan};
use crate::logging::RateLimit;
use crate::metrics::CoreStats;
use crate::model::{DataType, VenueId};
use crate::notify::Notify;
use crate::rest::{self, Budget};
use crate::sink::nats::Publisher;
use crate::venue::{self, Malformed};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a clean stop waits for NATS acks (within the shutdown budget).
const NATS_DRAIN: Duration = Duration::from_secs(15);
/// How often the flusher looks for a ring-mode write that landed.
const REAP_EVERY: Duration = Duration::from_micros(200);
/// The control loop's tick while records are on their way to ClickHouse
/// (its blocks seal by age on it).
const BUSY_TICK: Duration = Duration::from_millis(10);
/// Its tick when nothing is pending: few wake-ups on an idle core, and the
/// longest a stop request waits to be noticed then.
const IDLE_TICK: Duration = Duration::from_millis(250);
/// Wait between attempts to close a file sink the disk refuses.
const CLOSE_RETRY: Duration = Duration::from_millis(200);
/// How long shutdown waits for trade backfills already under way.
const BACKFILL_GRACE: Duration = Duration::from_secs(3);
/// Wait before retrying a failed REST job.
const REST_RETRY: Duration = Duration::from_secs(1);
/// Wait before asking again for a snapshot the book found too old.
const SNAPSHOT_RETRY: Duration = Duration::from_millis(250);

/// One REST call a venue worker makes for this core.
#[derive(Debug, Clone, PartialEq, Eq)]
enum JobKind {
    /// A book snapshot of this symbol.
    Snapshot(String),
    /// Poll number N of the core plan.
    Poll(usize),
    /// Trades missed in a reconnect gap, and failed attempts so far.
    Backfill(Box<StreamGap>, u8),
}

#[derive(Debug)]
struct Job {
    kind: JobKind,
    not_before: Instant,
}

/// A venue's REST jobs on this core, run in order by one worker that owns
/// the kept-alive connection and the weight budget.
#[derive(Default)]
struct RestQueue {
    jobs: RefCell<VecDeque<Job>>,
    /// The job the worker is running (reported if cut short by shutdown).
    current: RefCell<Option<JobKind>>,
    wake: Notify,
}

impl RestQueue {
    /// Queues `kind` unless it is already waiting.
    fn push(&self, kind: JobKind, not_before: Instant) {
        let mut jobs = self.jobs.borrow_mut();
        if jobs.iter().any(|j| j.kind == kind) {
            return;
        }
        jobs.push_back(Job { kind, not_before });
        drop(jobs);
        self.wake.notify();
    }
}

pub struct Shard {
    pub plan: CorePlan,
    publisher: Option<Rc<Publisher>>,
    engine: EnginePlan,
    venues: Vec<VenueRuntime>,
    pipeline: RefCell<Pipeline>,
    stats: Arc<CoreStats>,
    /// Wakes the flusher when the batch gets its first record.
    batch_started: Notify,
    /// Wakes an idle control loop when records enter the pipeline.
    control_wake: Notify,
    /// REST jobs per venue (indexed by `VenueId::index`).
    rest: Vec<RestQueue>,
    /// Newest datapoint published per poll (index of `plan.polls`), ms.
    poll_last_ts: Vec<Cell<u64>>,
    rest_log: RefCell<RateLimit>,
    /// What this core's socket sessions share.
    sessions: Sessions,
    /// Membership mode: the task deciding which symbols run here.
    membership: Option<Rc<CoreMembership>>,
    /// Per poll: its symbol's slot in the ownership table.
    poll_slots: Vec<Option<usize>>,
}

impl Shard {
    pub fn new(
        plan: CorePlan,
        engine: EnginePlan,
        venues: Vec<VenueRuntime>,
        pipeline: Pipeline,
        stats: Arc<CoreStats>,
        publisher: Option<Rc<Publisher>>,
        membership: Option<Rc<CoreMembership>>,
    ) -> Rc<Shard> {
        // Membership mode counts a symbol's connections once it is owned.
        if membership.is_none() {
            for c in &plan.connections {
                stats.venue(c.venue).connections_planned.add(1);
                stats
                    .venue(c.venue)
                    .streams_planned
                    .add(c.streams.len() as i64);
            }
        }
        let sessions = match &membership {
            Some(m) => Sessions::new(m.owned.clone()),
            None => Sessions::default(),
        };
        let poll_slots = plan
            .polls
            .iter()
            .map(|p| sessions.owned().slot_of(p.venue, &p.symbol))
            .collect();
        let polls = plan.polls.len();
        Rc::new(Shard {
            plan,
            publisher,
            engine,
            venues,
            pipeline: RefCell::new(pipeline),
            stats,
            batch_started: Notify::default(),
            control_wake: Notify::default(),
            rest: VenueId::ALL.iter().map(|_| RestQueue::default()).collect(),
            poll_last_ts: (0..polls).map(|_| Cell::new(0)).collect(),
            rest_log: RefCell::new(RateLimit::new(1_000_000_000)),
            sessions,
            membership,
            poll_slots,
        })
    }

    /// Whether a trade backfill is running or queued on any venue.
    fn backfills_pending(&self) -> bool {
        self.rest.iter().any(|q| {
            matches!(*q.current.borrow(), Some(JobKind::Backfill(..)))
                || q.jobs
                    .borrow()
                    .iter()
                    .any(|j| matches!(j.kind, JobKind::Backfill(..)))
        })
    }

    /// Runs until shutdown is requested, then stops reading, flushes and closes.
    pub async fn run(self: Rc<Self>) -> Result<(), String> {
        // The first glommio timer pays a one-off registration cost: pay it now.
        glommio::timer::sleep(Duration::from_millis(1)).await;
        let mut readers = Vec::new();
        for conn in self.plan.connections.clone() {
            let me = self.clone();
            readers.push(glommio::spawn_local(session::run(me, conn)));
        }
        let me = self.clone();
        let flusher = glommio::spawn_local(async move { me.flusher().await });
        // One REST worker per venue this core talks to (snapshots, polls).
        let mut helpers = Vec::new();
        let mut rest_venues: Vec<VenueId> = self.plan.connections.iter().map(|c| c.venue).collect();
        rest_venues.extend(self.plan.polls.iter().map(|p| p.venue));
        rest_venues.sort();
        rest_venues.dedup();
        for v in rest_venues {
            let me = self.clone();
            helpers.push(glommio::spawn_local(async move { me.rest_worker(v).await }));
        }
        if !self.plan.polls.is_empty() {
            let me = self.clone();
            helpers.push(glommio::spawn_local(
                async move { me.poll_scheduler().await },
            ));
        }
        if self.plan.connections.iter().any(|c| {
            c.streams
                .iter()
                .any(|s| matches!(s.data_type, DataType::OrderBook | DataType::OrderBookDelta))
        }) {
            let me = self.clone();
            helpers.push(glommio::spawn_local(
                async move { me.book_publisher().await },
            ));
        }
        if let Some(m) = self.membership.clone() {
            helpers.push(glommio::spawn_local(m.run(self.clone())));
        }
        let nats = self.publisher.clone().map(|p| {
            let me = self.clone();
            (
                glommio::spawn_local(p.run()),
                glommio::spawn_local(async move { me.pump().await }),
            )
        });
        log::info!(
            "core {} (cpu {}) running {} connection(s)",
            self.plan.shard,
            self.plan.cpu,
            self.plan.connections.len()
        );
        let mut second = Instant::now();
        while !shutdown::requested() {
            if self.pipeline_busy() {
                glommio::timer::sleep(BUSY_TICK).await;
            } else {
                // Idle: sleep long unless a batch starts meanwhile.
                futures_lite::future::or(
                    glommio::timer::sleep(IDLE_TICK),
                    self.control_wake.wait(),
                )
                .await;
            }
            self.stats.allocations.set(crate::sys::thread_allocations());
            self.copy_book_stats();
            self.pipeline.borrow_mut().poll_clickhouse();
            while second.elapsed() >= Duration::from_secs(1) {
                second += Duration::from_secs(1);
                // Availability: stream-seconds on a connection up vs planned.
                for v in &self.stats.venues {
                    v.connected_seconds
                        .add(v.streams_up.get().min(v.streams_planned.get()).max(0) as u64);
                    v.planned_seconds.add(v.streams_planned.get().max(0) as u64);
                }
            }
        }
        // Readers stop at an await point: every frame handled has been
        // pushed into the batch synchronously. A reader waits between reads,
        // with every frame it took handled, except while sending a reply or
        // resubscription: then the rest of that read (at most 31 frames) is
        // dropped with the connection, as are bytes still in the socket.
        for r in readers {
            r.cancel().await;
        }
        // A backfill already under way usually needs one or two REST pages:
        // finishing it beats reporting its range lost. Bounded, so a slow
        // venue cannot eat the drain budget the sinks need.
        let grace = Instant::now() + shutdown::bounded(BACKFILL_GRACE, BACKFILL_GRACE);
        while self.backfills_pending() && Instant::now() < grace {
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        for h in helpers {
            h.cancel().await;
        }
        flusher.cancel().await;
        // Backfills cut short: what they would have recovered is reported.
        for q in &self.rest {
            let current = q.current.borrow_mut().take();
            let queued: Vec<JobKind> = q.jobs.borrow_mut().drain(..).map(|j| j.kind).collect();
            for kind in current.into_iter().chain(queued) {
                if let JobKind::Backfill(g, _) = kind {
                    if let Some(r) = g.range {
                        self.backfill_give_up(&g, r, "backfill_interrupted");
                    }
                }
            }
        }
        let mut result = self.pipeline.borrow_mut().close();
        // A full disk may free up: keep trying while the drain budget lasts.
        while result.is_err()
            && self.pipeline.borrow().has_pending()
            && shutdown::time_left().is_some_and(|t| t > CLOSE_RETRY * 2)
        {
            glommio::timer::sleep(CLOSE_RETRY).await;
            result = self.pipeline.borrow_mut().close();
        }
        self.drain_clickhouse().await;
        if let (Some(p), Some((run, pump))) = (self.publisher.clone(), nats) {
            pump.cancel().await;
            let drained = self.drain_nats(&p).await;
            run.cancel().await;
            // Whatever NATS did not acknowledge goes to the spill, so the next
            // start sends it (ids let the server drop any it already has).
            let mut kept = 0u64;
            let mut lost = 0u64;
            let taken = p.take_undelivered(|s, i, pl| {
                if self.pipeline.borrow_mut().spill_message(s, i, pl) {
                    kept += 1;
                } else {
                    lost += 1;
                }
            });
            if taken > 0 {
                log::warn!(
                    "core {}: {kept} unacknowledged records saved to the spill for the next start{}",
                    self.plan.shard,
                    if lost > 0 { format!(", {lost} could not be saved") } else { String::new() }
                );
            }
            if lost > 0 {
                result = result.and(drained).and(Err(format!(
                    "core {}: {lost} records neither acknowledged nor saved",
                    self.plan.shard
                )));
            }
        }
        let (parsed, written) = self.stats.venues.iter().fold((0, 0), |(p, w), v| {
            (
                p + v.parsed.iter().map(|c| c.get()).sum::<u64>(),
                w + v.written.iter().map(|c| c.get()).sum::<u64>(),
            )
        });
        log::info!(
            "core {} stopped: parsed {parsed}, written {written}, batches {}",
            self.plan.shard,
            self.stats.batches_flushed.get()
        );
        result
    }

    /// Shutdown: lets the ClickHouse sender send what is journaled, bounded
    /// in time; what is left stays in the journal for the next start.
    async fn drain_clickhouse(&self) {
        // No point waiting for a server that is not there: the journal keeps it.
        let up = self.stats.clickhouse.get().is_some_and(|s| s.up.get() > 0);
        let wait = if up {
            NATS_DRAIN
        } else {
            Duration::from_millis(500)
        };
        let deadline = Instant::now() + shutdown::bounded(wait, Duration::from_millis(500));
        while self.pipeline.borrow().clickhouse_pending() > 0 && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        let left = self.pipeline.borrow().clickhouse_pending();
        if left > 0 {
            log::warn!(
                "core {}: {left} ClickHouse blocks stay in the journal for the next start",
                self.plan.shard
            );
        }
        let sender = self.pipeline.borrow_mut().take_clickhouse_sender();
        if let Some(h) = sender {
            h.cancel();
        }
    }

    /// Moves spilled records to the publisher whenever it has room.
    async fn pump(self: Rc<Self>) {
        loop {
            if self.pipeline.borrow().spilled() > 0 {
                self.pipeline.borrow_mut().pump_spill();
            }
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Shutdown: push the spill out and wait for acks, bounded in time.
    /// Whatever is still spilled stays on disk and goes out at the next start.
    async fn drain_nats(&self, p: &Publisher) -> Result<(), String> {
        // No point waiting for a server that is not there: save to disk now.
        let wait = if p.connected() {
            NATS_DRAIN
        } else {
            Duration::from_millis(500)
        };
        // Leave time to save the unacknowledged to the spill before the deadline.
        let wait = shutdown::bounded(wait, Duration::from_millis(500));
        let deadline = Instant::now() + wait;
        while self.pipeline.borrow().spilled() > 0 && Instant::now() < deadline {
            self.pipeline.borrow_mut().pump_spill();
            if self.pipeline.borrow().spilled() > 0 {
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
        }
        let left = p
            .drain(deadline.saturating_duration_since(Instant::now()))
            .await;
        let spilled = self.pipeline.borrow().spilled();
        if spilled > 0 {
            log::warn!(
                "core {}: {spilled} records stay in the spill and are sent at the next start",
                self.plan.shard
            );
        }
        if left > 0 {
            return Err(format!(
                "core {}: {left} records not acknowledged by NATS within {NATS_DRAIN:?}",
                self.plan.shard
            ));
        }
        Ok(())
    }

    /// Runs a venue's REST jobs in order within its weight budget, on one
    /// kept-alive connection.
    async fn rest_worker(self: Rc<Self>, venue: VenueId) {
        let rt = self.venue(venue).clone();
        let proto = venue::protocol(venue);
        let limit = proto.rest_limit();
        let mut budget = Budget::new(rt.rest_share, limit.window, Instant::now());
        let mut client = rest::Client::new(rt.rest_tls.clone());
        let queue = &self.rest[venue.index()];
        let vs = self.stats.venue(venue);
        loop {
            queue.current.borrow_mut().take();
            // The first job that may run now; else wait for one.
            let job = {
                let now = Instant::now();
                let mut jobs = queue.jobs.borrow_mut();
                match jobs.iter().position(|j| j.not_before <= now) {
                    Some(i) => jobs.remove(i),
                    None => None,
                }
            };
            let Some(job) = job else {
                let soonest = queue.jobs.borrow().iter().map(|j| j.not_before).min();
                match soonest {
                    Some(t) => {
                        let wait = t.saturating_duration_since(Instant::now());
                        let _ = futures_lite::FutureExt::or(
                            async {
                                glommio::timer::sleep(wait).await;
                            },
                            queue.wake.wait(),
                        )
                        .await;
                    }
                    None => queue.wake.wait().await,
                }
                continue;
            };
            let req = match &job.kind {
                JobKind::Snapshot(sym) => proto.book_snapshot_request(sym, rt.snapshot_depth),
                JobKind::Poll(i) => {
                    let p = &self.plan.polls[*i];
                    let pl = self.pipeline.borrow();
                    pl.instruments(venue)
                        .get(&p.symbol)
                        .and_then(|inst| proto.poll_request(p.data_type, inst))
                }
                JobKind::Backfill(g, _) => g
                    .range
                    .and_then(|(a, b)| proto.trade_history_request(&g.raw_symbol, a, b)),
            };
            *queue.current.borrow_mut() = Some(job.kind.clone());
            let Some(req) = req else {
                log::error!(
                    "{venue}: no REST request for {:?}; dropping the job",
                    job.kind
                );
                continue;
            };
            loop {
                let wait = budget.try_take(req.weight, Instant::now());
                if wait.is_zero() {
                    break;
                }
                glommio::timer::sleep(wait).await;
            }
            vs.rest_weight_used.set(budget.used() as i64);
            let url = match rest::join(&rt.rest_url, &req.path) {
                Ok(u) => u,
                Err(e) => {
                    log::error!("{venue}: bad REST URL: {e}");
                    continue;
                }
            };
            vs.rest_requests.inc();
            let answer = client.get(&url, rt.rest_timeout).await;
            let now = Instant::now();
            let mut throttled = false;
            let failed =
                match answer {
                    Ok(r) => {
                        let verdict = budget.on_answer(
                            r.status,
                            r.used_weight_1m,
                            r.retry_after_s,
                            limit.weight,
                            now,
                        );
                        if verdict == rest::budget::Verdict::Throttled {
                            throttled = true;
                            vs.rest_rate_limited.inc();
                            log::warn!(
                            "{venue}: REST answered {} (rate limit); pausing until {:?} from now",
                            r.status,
                            budget.blocked_until().map(|b| b.saturating_duration_since(now))
                        );
                            Some(format!("HTTP {}", r.status))
                        } else if r.status == 200 {
                            self.rest_done(venue, &job.kind, &r.body);
                            None
                        } else {
                            Some(format!(
                                "HTTP {} from {url}: {}",
                                r.status,
                                crate::venue::error_body::describe(venue, &r.body)
                            ))
                        }
                    }
                    Err(e) => Some(e.to_string()),
                };
            if let Some(err) = failed {
                vs.rest_errors.inc();
                if let Some(n) = self.rest_log.borrow_mut().check(crate::sys::now_ns()) {
                    log::warn!(
                        "{venue}: REST {:?} failed: {err} ({n} more suppressed)",
                        job.kind
                    );
                }
                if let JobKind::Snapshot(sym) = &job.kind {
                    self.pipeline
                        .borrow_mut()
                        .books_mut()
                        .on_snapshot_failed(venue, sym);
                    queue.push(job.kind.clone(), now + REST_RETRY);
                }
                if let JobKind::Backfill(g, tries) = job.kind {
                    if throttled {
                        // A rate limit is no failed attempt: the budget waits
                        // out the venue's pause, then the page is asked again.
                        queue.push(JobKind::Backfill(g, tries), now);
                    } else {
                        self.backfill_retry(*g, tries, "backfill_failed");
                    }
                }
                // A failed poll simply waits for its next turn.
            }
        }
    }

    /// Hands a REST answer to the pipeline.
    fn rest_done(&self, venue: VenueId, kind: &JobKind, body: &[u8]) {
        let now = crate::sys::now_ns();
        let (became_nonempty, full, again) = {
            let mut p = self.pipeline.borrow_mut();
            let was_empty = p.batch_len() == 0;
            let again = match kind {
                JobKind::Snapshot(sym) => {
                    p.on_book_snapshot(venue, sym, body, now) == BookAction::FetchSnapshot
                }
                JobKind::Poll(i) => {
                    let poll = &self.plan.polls[*i];
                    let mut last = self.poll_last_ts[*i].get();
                    p.on_poll(venue, poll.data_type, &poll.symbol, body, now, &mut last);
                    self.poll_last_ts[*i].set(last);
                    false
                }
                JobKind::Backfill(g, tries) => {
                    if let Some(range) = g.range {
                        let got = p.on_trade_history(venue, &g.raw_symbol, range, body, now);
                        drop(p);
                        self.backfill_progress(g, *tries, got);
                        p = self.pipeline.borrow_mut();
                    }
                    false
                }
            };
            (was_empty && p.batch_len() > 0, p.is_full(), again)
        };
        if again {
            if let JobKind::Snapshot(sym) = kind {
                // The snapshot was older than the buffered diffs: ask again.
                self.rest[venue.index()].push(
                    JobKind::Snapshot(sym.clone()),
                    Instant::now() + SNAPSHOT_RETRY,
                );
            }
        }
        self.batch_grew(full, became_nonempty, now);
    }

    /// Continues a backfill after an answer: the rest of the range is asked
    /// for next; what no answer covers becomes a `gap` record.
    fn backfill_progress(
        &self,
        g: &StreamGap,
        tries: u8,
        got: Result<Option<(u64, u64)>, Malformed>,
    ) {
        let Some((from, to)) = g.range else { return };
        let (lo, hi) = match got {
            Ok(Some(r)) => r,
            // Nothing of the range in the answer: the venue no longer has it.
            Ok(None) => return self.backfill_give_up(g, (from, to), "backfill_unavailable"),
            Err(_) => return self.backfill_retry(g.clone(), tries, "backfill_failed"),
        };
        let mut rest = g.clone();
        if lo > from && hi < to {
            // A hole in the middle of the answer: report the part below it.
            self.backfill_give_up(g, (from, lo - 1), "backfill_unavailable");
            rest.range = Some((hi + 1, to));
        } else if lo <= from {
            rest.range = (hi < to).then_some((hi + 1, to));
        } else {
            // Answers from the newest end down (OKX).
            rest.range = (lo > from).then_some((from, lo - 1));
        }
        if rest.range.is_some() {
            self.rest[g.venue.index()].push(JobKind::Backfill(Box::new(rest), 0), Instant::now());
        } else {
            log::info!(
                "{} {}: trades {:?} backfilled",
                g.venue,
                g.raw_symbol,
                g.range
            );
        }
    }

    /// A failed backfill request: tried again a few times, then reported.
    fn backfill_retry(&self, g: StreamGap, tries: u8, reason: &'static str) {
        const ATTEMPTS: u8 = 3;
        if tries + 1 >= ATTEMPTS {
            if let Some(r) = g.range {
                self.backfill_give_up(&g, r, reason);
            }
            return;
        }
        self.rest[g.venue.index()].push(
            JobKind::Backfill(Box::new(g), tries + 1),
            Instant::now() + REST_RETRY,
        );
    }

    fn backfill_give_up(&self, g: &StreamGap, range: (u64, u64), reason: &'static str) {
        let mut part = g.clone();
        part.range = Some(range);
        self.pipeline
            .borrow_mut()
            .push_gap(&part, reason, crate::sys::now_ns());
        self.batch_began();
    }

    /// Queues each poll at its interval (staggered at start so a core's polls
    /// do not all fire at once).
    async fn poll_scheduler(self: Rc<Self>) {
        let start = Instant::now();
        let mut due: Vec<Instant> = (0..self.plan.polls.len())
            .map(|i| start + Duration::from_millis(50 * i as u64))
            .collect();
        loop {
            let now = Instant::now();
            for (i, p) in self.plan.polls.iter().enumerate() {
                if now >= due[i] && !self.sessions.owned().runs(self.poll_slots[i]) {
                    // Not owned here now: looked at again next interval.
                    due[i] = now + p.every;
                } else if now >= due[i] {
                    self.rest[p.venue.index()].push(JobKind::Poll(i), now);
                    due[i] = now + p.every;
                }
            }
            let next = due
                .iter()
                .min()
                .copied()
                .unwrap_or(now + Duration::from_secs(1));
            glommio::timer::sleep(
                next.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            )
            .await;
        }
    }

    /// Publishes throttled books when their interval has passed, so the final
    /// state of every book goes out within one interval.
    async fn book_publisher(self: Rc<Self>) {
        const TICK: Duration = Duration::from_millis(5);
        loop {
            let now = crate::sys::now_ns();
            let (next, became_nonempty, full) = {
                let mut p = self.pipeline.borrow_mut();
                let was_empty = p.batch_len() == 0;
                let next = p.publish_books(now);
                (next, was_empty && p.batch_len() > 0, p.is_full())
            };
            self.batch_grew(full, became_nonempty, now);
            let wait = match next {
                Some(t) if t > now => Duration::from_nanos(t - now).min(TICK),
                _ => TICK,
            };
            glommio::timer::sleep(wait).await;
        }
    }

    /// Whether records are anywhere between the batch and ClickHouse's ack.
    /// Only ClickHouse needs the short tick (its blocks seal by age on it);
    /// the other sinks' flushes and retries run on the flusher, so without
    /// ClickHouse the tick would only add a wake-up every 10 ms under load.
    fn pipeline_busy(&self) -> bool {
        if self.stats.clickhouse.get().is_none() {
            return false;
        }
        let p = self.pipeline.borrow();
        p.batch_len() > 0 || p.has_pending() || p.sink_in_flight() || p.clickhouse_pending() > 0
    }

    /// A batch started (or a gap record was queued): wake the flusher, and
    /// the control loop if it idles.
    fn batch_began(&self) {
        self.batch_started.notify();
        self.control_wake.notify();
    }

    /// Copies the books' counters into the exported per-core stats.
    fn copy_book_stats(&self) {
        let p = self.pipeline.borrow();
        for v in VenueId::ALL {
            let b = p.books().stats(v);
            let vs = self.stats.venue(v);
            vs.book_updates.set(b.updates_applied as i64);
            vs.book_snapshots.set(b.snapshots_applied as i64);
            vs.book_resyncs.set(b.resyncs as i64);
            vs.book_gaps.set(b.gaps as i64);
            vs.book_checksum_failures.set(b.checksum_failures as i64);
            vs.book_crossed.set(b.crossed as i64);
            vs.book_published.set(b.published as i64);
        }
    }

    /// Flushes a full batch. A ring-mode write it leaves in flight
    /// wakes the flusher, which collects it once it lands.
    fn flush_full(&self, now: u64) {
        let mut p = self.pipeline.borrow_mut();
        p.flush(now);
        let in_flight = p.sink_in_flight();
        drop(p);
        if in_flight {
            self.batch_started.notify();
        }
        // A batch can fill without having started one (one-record batches):
        // ClickHouse's open block still needs the control loop's age check.
        self.control_wake.notify();
    }

    /// Flushes the batch when its oldest record reaches `batch_max_delay`.
    async fn flusher(self: Rc<Self>) {
        let delay_ns = self.engine.batch_max_delay.as_nanos() as u64;
        loop {
            let (oldest, pending, in_flight) = {
                let p = self.pipeline.borrow();
                (p.oldest_receive_ns(), p.has_pending(), p.sink_in_flight())
            };
            match oldest {
                // A ring-mode write is in flight: look again soon,
                // so its records count as written (and the next write
                // starts) about when it lands, not a batch delay later.
                None if in_flight => {
                    glommio::timer::sleep(REAP_EVERY).await;
                    self.pipeline.borrow_mut().reap_sink(crate::sys::now_ns());
                }
                None if pending => {
                    // A failed write is retried at the batch cadence.
                    glommio::timer::sleep(self.engine.batch_max_delay).await;
                    self.pipeline.borrow_mut().flush(crate::sys::now_ns());
                }
                // A stale flag (batch flushed by size meanwhile) just loops once.
                None => self.batch_started.wait().await,
                Some(t) => {
                    let now = crate::sys::now_ns();
                    let deadline = t.saturating_add(delay_ns);
                    if now >= deadline {
                        self.pipeline.borrow_mut().flush(now);
                    } else if in_flight && deadline - now > REAP_EVERY.as_nanos() as u64 {
                        // Looking for the landed write may be late (it only
                        // counts records as written); the batch deadline not.
                        glommio::timer::sleep(REAP_EVERY).await;
                        self.pipeline.borrow_mut().reap_sink(crate::sys::now_ns());
                    } else {
                        // Also while the core waits in `ppoll`, which a
                        // glommio timer alone would fire up to a preempt
                        // period after.
                        crate::conn::kwait::sleep(Duration::from_nanos(deadline - now)).await;
                    }
                }
            }
        }
    }
}

/// What this core's socket sessions use of it.
impl Core for Shard {
    fn pipeline(&self) -> &RefCell<Pipeline> {
        &self.pipeline
    }

    fn stats(&self) -> &CoreStats {
        &self.stats
    }

    fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    fn discard_frames(&self) -> bool {
        self.engine.discard_frames
    }

    fn busy_poll(&self) -> Duration {
        self.engine.spin_before_park
    }

    fn venue(&self, id: VenueId) -> &VenueRuntime {
        // The engine builds a runtime for every venue in the plan.
        self.venues
            .iter()
            .find(|v| v.id == id)
            .unwrap_or(&self.venues[0])
    }

    fn batch_grew(&self, full: bool, started: bool, now: u64) {
        if full {
            self.flush_full(now);
        } else if started {
            self.batch_began();
        }
    }

    fn fetch_snapshot(&self, venue: VenueId, raw_symbol: String) {
        self.rest[venue.index()].push(JobKind::Snapshot(raw_symbol), Instant::now());
    }

    fn take_gaps(&self) {
        let gaps = self.pipeline.borrow_mut().take_stream_gaps();
        for g in gaps {
            let vs = self.stats.venue(g.venue);
            let proto = venue::protocol(g.venue);
            let backfill = match g.range {
                Some((from, to)) if g.data_type == DataType::Trade => {
                    vs.trade_gaps.inc();
                    proto
                        .trade_history_request(&g.raw_symbol, from, to)
                        .is_some()
                }
                _ => false,
            };
            if backfill {
                log::info!(
                    "{} {}: trades {:?} missed while disconnected: backfilling",
                    g.venue,
                    g.raw_symbol,
                    g.range
                );
                self.rest[g.venue.index()].push(JobKind::Backfill(Box::new(g), 0), Instant::now());
            } else {
                let reason = if g.range.is_some() {
                    "disconnect"
                } else {
                    "disconnect_unmeasured"
                };
                self.pipeline
                    .borrow_mut()
                    .push_gap(&g, reason, crate::sys::now_ns());
                self.batch_began();
            }
        }
    }
}
