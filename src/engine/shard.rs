//! A shard: everything one pinned core owns (its connections, pipeline, sink
//! and stats) and the tasks that drive them on that core's executor:
//! one reader task per connection, a flusher for the batch age limit, and a
//! control loop that watches for shutdown. Nothing here is shared with
//! another core except the stats it writes.

use super::continuity::StreamGap;
use super::pipeline::{ConnState, Pipeline};
use super::shutdown;
use crate::book::BookAction;
use crate::capture::FrameKind;
use crate::config::plan::{ConnectionPlan, CorePlan, EnginePlan, StreamSpec};
use crate::conn::{ws, Backoff};
use crate::logging::RateLimit;
use crate::metrics::CoreStats;
use crate::model::{DataType, VenueId};
use crate::notify::Notify;
use crate::rest::{self, Budget};
use crate::sink::nats::Publisher;
use crate::venue::{self, FrameOutcome, Malformed};
use async_tungstenite::tungstenite::{self, Message};
use futures_util::StreamExt;
use rustls::ClientConfig;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// A connection that stayed up this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// A rotation switches once its replacement has not been ahead of the old
/// connection for this long.
const SWITCH_QUIET: Duration = Duration::from_millis(200);
/// Frames handled before offering the executor a chance to run other tasks.
const YIELD_EVERY: u32 = 64;
/// Frames between looks for a landed file write (a memory read when none).
const LOOK_FOR_WRITES_EVERY: u32 = 16;
/// How long a clean stop waits for NATS acks (within the shutdown budget).
const NATS_DRAIN: Duration = Duration::from_secs(15);
/// How often the flusher looks for a ring-mode write that landed.
const REAP_EVERY: Duration = Duration::from_micros(200);
/// Wait between attempts to close a file sink the disk refuses.
const CLOSE_RETRY: Duration = Duration::from_millis(200);

/// How long shutdown waits for trade backfills already under way.
const BACKFILL_GRACE: Duration = Duration::from_secs(3);
/// Wait before retrying a failed REST job.
const REST_RETRY: Duration = Duration::from_secs(1);
/// Wait before asking again for a snapshot the book found too old.
const SNAPSHOT_RETRY: Duration = Duration::from_millis(250);

/// A connected, subscribed WebSocket and what its reader keeps.
struct Live {
    stream: ws::WsStream,
    /// Unique per connection on this core (continuity).
    epoch: u32,
    since: Instant,
    cstate: ConnState,
    requests: RequestLog,
}

/// A stream of a connection watched for silence (`stream_stale_after_ms`).
struct Watch {
    /// Index in the connection plan's streams.
    stream: usize,
    limit_ns: u64,
    /// Start of the current silence window: connect or last resubscription.
    since_ns: u64,
}

/// Why a connection could not be opened, and when the venue said to retry.
struct OpenFailed {
    why: String,
    /// `Retry-After` of a refused upgrade.
    retry_after: Option<Duration>,
}

/// How a read loop runs.
#[derive(Clone, Copy)]
enum Mode<'a> {
    /// The connection of its plan: ends on a drop, or at `rotate_at` / a
    /// venue close notice with [`End::Rotate`].
    Primary { rotate_at: Option<Instant> },
    /// One side of a rotation overlap: ends with [`End::Stopped`] when `stop`
    /// is raised or at `until`.
    Overlap {
        stop: &'a Signal,
        until: Option<Instant>,
    },
}

/// Why a read loop ended.
enum End {
    Lost(String),
    Rotate(String),
    Stopped,
}

/// What woke a read loop.
enum Ev {
    Msg(Option<Result<Message, tungstenite::Error>>),
    Tick,
    /// Stop signal or deadline.
    Other,
}

/// A one-way flag several tasks of this core can wait for.
#[derive(Default)]
struct Signal {
    set: Cell<bool>,
    wakers: RefCell<Vec<std::task::Waker>>,
}

impl Signal {
    fn raise(&self) {
        self.set.set(true);
        for w in self.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }

    fn is_set(&self) -> bool {
        self.set.get()
    }

    fn wait(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.set.get() {
                return std::task::Poll::Ready(());
            }
            let mut w = self.wakers.borrow_mut();
            if !w.iter().any(|x| x.will_wake(cx.waker())) {
                w.push(cx.waker().clone());
            }
            std::task::Poll::Pending
        })
    }
}

/// The frames that subscribe `channels` again on a live connection, counted
/// in its control-request log; `None` when the venue's hourly budget of such
/// requests (OKX 480) would be exceeded, which a reconnect resets.
fn resubscription(
    venue: VenueId,
    channels: &[String],
    requests: &mut RequestLog,
) -> Option<Vec<String>> {
    let proto = venue::protocol(venue);
    let frames = proto.resubscribe_frames(channels);
    let now = Instant::now();
    if let Some(limit) = proto.control_requests_per_hour() {
        // Keep a margin: the venue counts other requests too.
        if requests.last_hour(now) + frames.len() as u32 > limit.saturating_sub(limit / 10) {
            log::warn!(
                "{venue}: {} control requests in the last hour on this connection; reconnecting instead of resubscribing {}",
                requests.last_hour(now),
                channels.join(", ")
            );
            return None;
        }
    }
    requests.add(frames.len() as u32, now);
    Some(frames)
}

/// Sends a close frame, waiting at most 500 ms for the peer (a replaced or
/// retired connection owes nobody more).
async fn close_gracefully(stream: &mut ws::WsStream) {
    futures_lite::future::or(
        async {
            let _ = stream.close(None).await;
        },
        glommio::timer::sleep(Duration::from_millis(500)),
    )
    .await;
}

/// When a connection opened at `since` is due for rotation: its age limit
/// or the next daily UTC time, whichever comes first.
fn rotation_due(v: &VenueRuntime, since: Instant) -> Option<Instant> {
    let by_age = v.rotate_after.map(|a| since + a);
    let by_clock = v.rotate_at_utc.map(|(h, m)| {
        let now_s = crate::sys::now_ns() / 1_000_000_000;
        let day = now_s % 86_400;
        let at = h as u64 * 3600 + m as u64 * 60;
        let wait = if at > day {
            at - day
        } else {
            at + 86_400 - day
        };
        Instant::now() + Duration::from_secs(wait)
    });
    match (by_age, by_clock) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What a connection needs of its venue.
#[derive(Clone)]
pub struct VenueRuntime {
    pub id: VenueId,
    pub ws_url: Url,
    pub tls: Option<Arc<ClientConfig>>,
    pub rest_url: Url,
    pub rest_tls: Option<Arc<ClientConfig>>,
    /// Levels asked for in REST book snapshots.
    pub snapshot_depth: usize,
    /// Timeout of each REST request (snapshots, polls, backfill).
    pub rest_timeout: Duration,
    /// This core's share of the venue's REST weight limit (1/cores).
    pub rest_share: u32,
    /// Make-before-break rotation (see `VenuePlan`).
    pub rotate_after: Option<Duration>,
    pub rotate_at_utc: Option<(u8, u8)>,
    pub rotation_overlap: Duration,
    /// This core's share of the venue's new-connection limit per window.
    pub connect_limit: Option<(u32, Duration)>,
    pub stale_after: Duration,
    /// Per data type: silence after which a stream is subscribed again.
    pub stream_stale_after: [Option<Duration>; DataType::COUNT],
}

/// Control requests (subscribe/unsubscribe frames) a connection sent, for
/// venues that cap them per hour.
#[derive(Default)]
pub(crate) struct RequestLog {
    sent: VecDeque<(Instant, u32)>,
}

impl RequestLog {
    fn add(&mut self, n: u32, now: Instant) {
        if n > 0 {
            self.sent.push_back((now, n));
        }
    }

    fn last_hour(&mut self, now: Instant) -> u32 {
        while let Some(&(t, _)) = self.sent.front() {
            if now.duration_since(t) < Duration::from_secs(3600) {
                break;
            }
            self.sent.pop_front();
        }
        self.sent.iter().map(|&(_, n)| n).sum()
    }
}

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
    /// REST jobs per venue (indexed by `VenueId::index`).
    rest: Vec<RestQueue>,
    /// Newest datapoint published per poll (index of `plan.polls`), ms.
    poll_last_ts: Vec<Cell<u64>>,
    rest_log: RefCell<RateLimit>,
    stale_log: RefCell<RateLimit>,
    /// Last connection epoch handed out on this core.
    epochs: Cell<u32>,
    /// Recent connect attempts per venue (connection-rate limit).
    connects: Vec<RefCell<VecDeque<Instant>>>,
}

impl Shard {
    pub fn new(
        plan: CorePlan,
        engine: EnginePlan,
        venues: Vec<VenueRuntime>,
        pipeline: Pipeline,
        stats: Arc<CoreStats>,
        publisher: Option<Rc<Publisher>>,
    ) -> Rc<Shard> {
        for c in &plan.connections {
            stats.venue(c.venue).connections_planned.add(1);
            stats
                .venue(c.venue)
                .streams_planned
                .add(c.streams.len() as i64);
        }
        let polls = plan.polls.len();
        Rc::new(Shard {
            plan,
            publisher,
            engine,
            venues,
            pipeline: RefCell::new(pipeline),
            stats,
            batch_started: Notify::default(),
            rest: VenueId::ALL.iter().map(|_| RestQueue::default()).collect(),
            poll_last_ts: (0..polls).map(|_| Cell::new(0)).collect(),
            rest_log: RefCell::new(RateLimit::new(1_000_000_000)),
            stale_log: RefCell::new(RateLimit::new(1_000_000_000)),
            epochs: Cell::new(0),
            connects: VenueId::ALL.iter().map(|_| RefCell::default()).collect(),
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
            readers.push(glommio::spawn_local(
                async move { me.connection(conn).await },
            ));
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
            glommio::timer::sleep(Duration::from_millis(10)).await;
            self.stats.allocations.set(crate::sys::thread_allocations());
            self.copy_book_stats();
            if second.elapsed() >= Duration::from_secs(1) {
                second += Duration::from_secs(1);
                // Availability: stream-seconds on a connection up vs planned.
                for v in &self.stats.venues {
                    v.connected_seconds
                        .add(v.streams_up.get().min(v.streams_planned.get()).max(0) as u64);
                    v.planned_seconds.add(v.streams_planned.get().max(0) as u64);
                }
            }
        }
        // Readers stop at an await point: every frame already read has been
        // pushed into the batch synchronously, so cancelling loses nothing.
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

    fn venue(&self, id: VenueId) -> &VenueRuntime {
        // The engine builds a runtime for every venue in the plan.
        self.venues
            .iter()
            .find(|v| v.id == id)
            .unwrap_or(&self.venues[0])
    }

    /// One connection plan's life: connect, subscribe, read. A planned
    /// rotation (lifetime, venue notice) opens the replacement before the old
    /// connection closes (see [`Shard::rotate`]); a drop backs off and
    /// reconnects, and only then are its books marked unsynced.
    async fn connection(self: Rc<Self>, conn: ConnectionPlan) {
        let v = self.venue(conn.venue).clone();
        let url = venue::connection_url(&v.ws_url, &conn);
        let channels = venue::connection_channels(&conn);
        let vs = &self.stats.venue(conn.venue);
        let seed = (conn.id as u64) ^ crate::sys::now_ns();
        let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_CAP, seed);
        let mut attempt: u64 = 0;
        // A live connection a rotation handed over.
        let mut handed: Option<Live> = None;
        loop {
            let mut live = match handed.take() {
                Some(l) => l,
                None => {
                    if attempt > 0 {
                        vs.reconnects.inc();
                    }
                    attempt += 1;
                    match self.open(&conn, &url, &v, &channels, false).await {
                        Ok(l) => l,
                        Err(e) => {
                            log::warn!(
                                "conn {} {}: {} (attempt {attempt})",
                                conn.id,
                                conn.venue,
                                e.why
                            );
                            glommio::timer::sleep(self.retry_wait(&conn, &mut backoff, &e)).await;
                            continue;
                        }
                    }
                }
            };
            let since = live.since;
            let rotate_at = rotation_due(&v, since);
            let why = match self
                .read_loop(&mut live, &conn, Mode::Primary { rotate_at })
                .await
            {
                End::Rotate(why) => {
                    vs.rotations.inc();
                    log::info!(
                        "conn {} {}: rotating ({why}): opening the replacement first",
                        conn.id,
                        conn.venue
                    );
                    match self.rotate(live, &conn, &url, &v, &channels).await {
                        Ok(new) => {
                            handed = Some(new);
                            continue;
                        }
                        Err(why) => why,
                    }
                }
                End::Lost(why) => {
                    self.close_live(live, &conn, true).await;
                    why
                }
                End::Stopped => {
                    self.close_live(live, &conn, true).await;
                    "stopped".into()
                }
            };
            if since.elapsed() >= STABLE_AFTER {
                backoff.reset();
            }
            log::warn!("conn {} {}: disconnected: {why}", conn.id, conn.venue);
            glommio::timer::sleep(backoff.next_delay()).await;
        }
    }

    /// How long to wait before the next attempt after `e`: the backoff's
    /// draw, or longer if the venue's answer said when to come back.
    fn retry_wait(&self, conn: &ConnectionPlan, backoff: &mut Backoff, e: &OpenFailed) -> Duration {
        let d = backoff.next_delay();
        match e.retry_after {
            Some(r) if r > d => {
                self.stats.venue(conn.venue).connect_throttled.inc();
                log::warn!(
                    "conn {} {}: the venue asked to retry after {r:?}; waiting",
                    conn.id,
                    conn.venue
                );
                r
            }
            _ => d,
        }
    }

    /// Connects (within the venue's connection-rate share) and subscribes.
    async fn open(
        &self,
        conn: &ConnectionPlan,
        url: &Url,
        v: &VenueRuntime,
        channels: &[String],
        shadow: bool,
    ) -> Result<Live, OpenFailed> {
        let vs = self.stats.venue(conn.venue);
        self.connect_permit(conn.venue, v).await;
        let mut stream = match ws::connect(url, v.tls.as_ref(), CONNECT_TIMEOUT).await {
            Ok(s) => s,
            Err(e) => {
                vs.connect_failures.inc();
                return Err(OpenFailed {
                    why: format!("connect to {} failed: {e}", url.host_str().unwrap_or("?")),
                    retry_after: ws::retry_after(&e),
                });
            }
        };
        let mut requests = RequestLog::default();
        match self.subscribe(&mut stream, conn, channels).await {
            Ok(n) => requests.add(n, Instant::now()),
            Err(e) => {
                return Err(OpenFailed {
                    why: format!("subscribing failed: {e}"),
                    retry_after: None,
                })
            }
        }
        let epoch = self.epochs.get().wrapping_add(1);
        self.epochs.set(epoch);
        self.pipeline.borrow_mut().conn_up(epoch);
        vs.connections_up.add(1);
        vs.streams_up.add(conn.streams.len() as i64);
        log::info!(
            "conn {} {}: connected ({} streams{})",
            conn.id,
            conn.venue,
            conn.streams.len(),
            if shadow { ", replacement" } else { "" }
        );
        Ok(Live {
            stream,
            epoch,
            since: Instant::now(),
            cstate: ConnState {
                epoch,
                shadow,
                ..ConnState::default()
            },
            requests,
        })
    }

    /// Waits until the venue's new-connection budget (this core's share)
    /// allows one more connect, so a reconnect storm stays within it.
    async fn connect_permit(&self, venue: VenueId, v: &VenueRuntime) {
        let Some((allowed, window)) = v.connect_limit else {
            return;
        };
        loop {
            let now = Instant::now();
            let wait = {
                let mut log = self.connects[venue.index()].borrow_mut();
                while log
                    .front()
                    .is_some_and(|&t| now.duration_since(t) >= window)
                {
                    log.pop_front();
                }
                if (log.len() as u32) < allowed {
                    log.push_back(now);
                    return;
                }
                log.front()
                    .map(|&t| window.saturating_sub(now.duration_since(t)))
            };
            self.stats.venue(venue).connect_throttled.inc();
            glommio::timer::sleep(wait.unwrap_or(window)).await;
        }
    }

    /// Ends a connection: it no longer counts as live for continuity, and
    /// when it was lost (not replaced) its books can no longer be trusted.
    async fn close_live(&self, mut live: Live, conn: &ConnectionPlan, lost: bool) {
        self.pipeline.borrow_mut().conn_down(live.epoch);
        let vs = self.stats.venue(conn.venue);
        vs.connections_up.add(-1);
        vs.streams_up.add(-(conn.streams.len() as i64));
        if lost {
            self.connection_lost(conn);
        } else {
            close_gracefully(&mut live.stream).await;
        }
    }

    /// Make-before-break: keeps reading `old` while a replacement connects
    /// and subscribes, runs both for the overlap (continuity and the books'
    /// shadow rule keep one copy of everything), then closes `old`. If `old`
    /// ends first, the replacement takes over at once; if no replacement
    /// could be opened by then, returns why `old` ended.
    async fn rotate(
        &self,
        mut old: Live,
        conn: &ConnectionPlan,
        url: &Url,
        v: &VenueRuntime,
        channels: &[String],
    ) -> Result<Live, String> {
        let retire = Signal::default();
        let switch = Signal::default();
        let old_side = async {
            let end = self
                .read_loop(
                    &mut old,
                    conn,
                    Mode::Overlap {
                        stop: &retire,
                        until: None,
                    },
                )
                .await;
            switch.raise();
            end
        };
        let new_side = async {
            let seed = (conn.id as u64) ^ crate::sys::now_ns().rotate_left(17);
            let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_CAP, seed);
            loop {
                if switch.is_set() {
                    return None;
                }
                let mut new = match self.open(conn, url, v, channels, true).await {
                    Ok(l) => l,
                    Err(e) => {
                        log::warn!("conn {} {}: replacement: {}", conn.id, conn.venue, e.why);
                        futures_lite::future::or(
                            glommio::timer::sleep(self.retry_wait(conn, &mut backoff, &e)),
                            switch.wait(),
                        )
                        .await;
                        continue;
                    }
                };
                let started = Instant::now();
                let mut until = started + v.rotation_overlap;
                let end = loop {
                    let end = self
                        .read_loop(
                            &mut new,
                            conn,
                            Mode::Overlap {
                                stop: &switch,
                                until: Some(until),
                            },
                        )
                        .await;
                    // Switch only once the replacement has stopped running
                    // ahead of the old connection (its records are then all
                    // merged), or the old one ended, or 10 overlaps passed.
                    let quiet_ns = crate::sys::now_ns()
                        .saturating_sub(self.pipeline.borrow().last_deferred_ns());
                    let caught_up = quiet_ns > SWITCH_QUIET.as_nanos() as u64;
                    if !matches!(end, End::Stopped)
                        || switch.is_set()
                        || caught_up
                        || started.elapsed() > v.rotation_overlap * 10
                    {
                        break end;
                    }
                    until = Instant::now() + SWITCH_QUIET;
                };
                match end {
                    End::Stopped => {
                        retire.raise();
                        return Some(new);
                    }
                    End::Lost(why) | End::Rotate(why) => {
                        log::warn!(
                            "conn {} {}: replacement lost during the overlap: {why}",
                            conn.id,
                            conn.venue
                        );
                        // The old connection still carries the books.
                        self.close_live(new, conn, false).await;
                    }
                }
            }
        };
        let (old_end, new) = futures_util::future::join(old_side, new_side).await;
        match new {
            Some(mut new) => {
                new.cstate.shadow = false;
                // Records of `old` compare with `new` as one connection's.
                self.pipeline.borrow_mut().retire(old.epoch, new.epoch);
                let vs = self.stats.venue(conn.venue);
                vs.connections_up.add(-1);
                vs.streams_up.add(-(conn.streams.len() as i64));
                if matches!(old_end, End::Stopped) {
                    close_gracefully(&mut old.stream).await;
                }
                log::info!(
                    "conn {} {}: rotated to the replacement after {:?}",
                    conn.id,
                    conn.venue,
                    old.since.elapsed()
                );
                Ok(new)
            }
            None => {
                self.close_live(old, conn, true).await;
                Err(match old_end {
                    End::Lost(why) | End::Rotate(why) => why,
                    End::Stopped => "stopped".into(),
                })
            }
        }
    }

    /// Sends the venue's subscribe frames (none for venues that subscribe in the URL).
    async fn subscribe(
        &self,
        stream: &mut ws::WsStream,
        conn: &ConnectionPlan,
        channels: &[String],
    ) -> Result<u32, tungstenite::Error> {
        let frames = venue::protocol(conn.venue).subscribe_frames(channels);
        for f in &frames {
            stream.send(Message::text(f.as_str())).await?;
        }
        Ok(frames.len() as u32)
    }

    /// The connection dropped: its books can no longer be trusted.
    fn connection_lost(&self, conn: &ConnectionPlan) {
        let mut p = self.pipeline.borrow_mut();
        for s in &conn.streams {
            if matches!(s.data_type, DataType::OrderBook | DataType::OrderBookDelta) {
                p.books_mut().on_disconnect(conn.venue, &s.symbol);
            }
        }
    }

    /// Queues backfill of the reconnect gaps the pipeline found, or emits a
    /// `gap` record where the venue cannot be backfilled by id.
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
                self.batch_started.notify();
            }
        }
    }

    /// Reads frames until the connection ends, a rotation is due (primary)
    /// or the overlap is over (see [`Mode`]). Sends the venue's heartbeats,
    /// parser replies and book resubscriptions.
    async fn read_loop(&self, live: &mut Live, conn: &ConnectionPlan, mode: Mode<'_>) -> End {
        let venue = conn.venue;
        let proto = venue::protocol(venue);
        // The data type a frame belongs to before parsing it: the connection's,
        // if it carries only one.
        let conn_type = match conn.streams.first() {
            Some(s) if conn.streams.iter().all(|x| x.data_type == s.data_type) => Some(s.data_type),
            _ => None,
        };
        let vs = self.stats.venue(venue);
        let heartbeat = proto.heartbeat();
        let rt = self.venue(venue);
        let stale_after = rt.stale_after;
        // Streams whose silence means a dropped subscription. Only the
        // primary connection resubscribes: an overlap is short and its
        // partner carries the same streams.
        let started_ns = crate::sys::now_ns();
        let mut watch: Vec<Watch> = match mode {
            Mode::Primary { .. } => conn
                .streams
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    rt.stream_stale_after[s.data_type.index()].map(|d| Watch {
                        stream: i,
                        limit_ns: d.as_nanos() as u64,
                        since_ns: started_ns,
                    })
                })
                .collect(),
            Mode::Overlap { .. } => Vec::new(),
        };
        // One timer sends heartbeats and checks the connection and its
        // watched streams for silence.
        let mut period = match heartbeat {
            Some(h) => h.every.min(stale_after / 2),
            None => stale_after / 2,
        };
        if let Some(min) = watch.iter().map(|w| w.limit_ns).min() {
            period = period.min(Duration::from_nanos(min / 2));
        }
        let mut next_heartbeat = heartbeat.map(|h| Instant::now() + h.every);
        let mut tick = Some(Box::pin(glommio::timer::Timer::new(period)));
        let (stop, until) = match mode {
            Mode::Primary { rotate_at } => (None, rotate_at),
            Mode::Overlap { stop, until } => (Some(stop), until),
        };
        let mut deadline = until.map(|t| {
            Box::pin(glommio::timer::Timer::new(
                t.saturating_duration_since(Instant::now()),
            ))
        });
        let Live {
            stream,
            cstate,
            requests,
            ..
        } = live;
        // Receive time (ns) of the last frame; reuses the clock read each frame
        // already pays for, instead of a second one.
        let mut last_frame_ns = crate::sys::now_ns();
        // The timers' due times on the same clock, for the fast path below.
        let period_ns = period.as_nanos() as u64;
        let mut tick_at_ns = last_frame_ns + period_ns;
        let until_ns = until.map_or(u64::MAX, |t| {
            last_frame_ns + t.saturating_duration_since(Instant::now()).as_nanos() as u64
        });
        let mut since_yield = 0u32;
        // (transport reads, clock) of the last parse's clock read: a frame
        // tungstenite decodes with no read since came from bytes in memory
        // by then, so that read is its receive time (under load one clock
        // read per frame instead of two: they were 6 % of the core).
        let mut clock: Option<(u64, u64)> = None;
        loop {
            since_yield += 1;
            if since_yield >= YIELD_EVERY {
                since_yield = 0;
                glommio::yield_if_needed().await;
            }
            if stop.is_some_and(|s| s.is_set()) {
                return End::Stopped;
            }
            // Under load a frame is usually buffered already: take it
            // without building the select over the timers (a tenth of the
            // core went to that), and check the timers by the last frame's
            // receive time instead; idle, the select waits as before.
            let fast = if last_frame_ns >= tick_at_ns {
                Some(Ev::Tick)
            } else if last_frame_ns >= until_ns {
                Some(Ev::Other)
            } else {
                match std::future::poll_fn(|cx| std::task::Poll::Ready(stream.poll_next_unpin(cx)))
                    .await
                {
                    std::task::Poll::Ready(m) => Some(Ev::Msg(m)),
                    std::task::Poll::Pending => None,
                }
            };
            let next = if let Some(ev) = fast {
                ev
            } else {
                let msg = async { Ev::Msg(stream.next().await) };
                let tick_f = async {
                    match tick.as_mut() {
                        Some(t) => {
                            t.as_mut().await;
                            Ev::Tick
                        }
                        None => std::future::pending().await,
                    }
                };
                let other = async {
                    match (stop, deadline.as_mut()) {
                        (Some(s), Some(d)) => {
                            futures_lite::future::or(
                                async {
                                    s.wait().await;
                                },
                                async {
                                    d.as_mut().await;
                                },
                            )
                            .await
                        }
                        (Some(s), None) => s.wait().await,
                        (None, Some(d)) => {
                            d.as_mut().await;
                        }
                        (None, None) => std::future::pending().await,
                    }
                    Ev::Other
                };
                futures_lite::future::or(msg, futures_lite::future::or(tick_f, other)).await
            };
            let next = match next {
                Ev::Msg(m) => m,
                Ev::Other => {
                    return match mode {
                        Mode::Primary { .. } => End::Rotate("connection age".into()),
                        Mode::Overlap { .. } => End::Stopped,
                    }
                }
                Ev::Tick => {
                    // No frame, ping or pong for this long: dead even if TCP
                    // has not noticed (a quiet stream still gets pings/pongs).
                    let quiet =
                        Duration::from_nanos(crate::sys::now_ns().saturating_sub(last_frame_ns));
                    if quiet > stale_after {
                        vs.stale_connections.inc();
                        return End::Lost(format!("no frames for {quiet:?} (stale)"));
                    }
                    if let (Some(hb), Some(at)) = (heartbeat, next_heartbeat.as_mut()) {
                        if Instant::now() >= *at {
                            if let Err(e) = stream.send(Message::text(hb.frame)).await {
                                return End::Lost(format!("sending heartbeat: {e}"));
                            }
                            vs.heartbeats_sent.inc();
                            *at = Instant::now() + hb.every;
                        }
                    }
                    if !watch.is_empty() {
                        match self.resubscribe_silent(stream, conn, &mut watch, requests).await {
                            Ok(true) => {}
                            Ok(false) => {
                                return End::Lost(
                                    "control-request budget of the venue spent: reconnecting to resubscribe silent streams"
                                        .into(),
                                )
                            }
                            Err(e) => return End::Lost(format!("sending resubscription: {e}")),
                        }
                    }
                    tick = Some(Box::pin(glommio::timer::Timer::new(period)));
                    tick_at_ns = crate::sys::now_ns() + period_ns;
                    continue;
                }
            };
            let msg = match next {
                None => return End::Lost("stream ended".to_string()),
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    let now = crate::sys::now_ns();
                    let mut p = self.pipeline.borrow_mut();
                    match &e {
                        tungstenite::Error::Capacity(_) => {
                            p.on_rejected(venue, conn_type, Malformed::Oversized, 0, now)
                        }
                        tungstenite::Error::Utf8(_) => {
                            // The frame was read whole: skip it, keep the connection.
                            p.on_rejected(venue, conn_type, Malformed::InvalidUtf8, 0, now);
                            continue;
                        }
                        _ => {}
                    }
                    return End::Lost(format!("read error: {e}"));
                }
            };
            let now = match clock.take() {
                Some((reads, at)) if reads == stream.get_ref().reads() => at,
                _ => crate::sys::now_ns(),
            };
            last_frame_ns = now;
            if msg.len() > ws::MAX_MESSAGE_BYTES {
                self.pipeline.borrow_mut().on_rejected(
                    venue,
                    conn_type,
                    Malformed::Oversized,
                    msg.len(),
                    now,
                );
                continue;
            }
            if self.engine.discard_frames {
                vs.frames_received[super::pipeline::received_slot(conn_type)].inc();
                vs.bytes_received.add(msg.len() as u64);
                continue;
            }
            match msg {
                Message::Text(text) => {
                    let (full, became_nonempty, out, action, gaps) = {
                        let mut p = self.pipeline.borrow_mut();
                        p.record_raw(now, conn.id, venue, FrameKind::Text, text.as_bytes());
                        let was_empty = p.batch_len() == 0;
                        let (out, action) = p.on_text(venue, conn_type, text.as_str(), now, cstate);
                        let parsed = p.parsed_ns();
                        if parsed >= now {
                            clock = Some((stream.get_ref().reads(), parsed));
                        }
                        // Under load the flusher seldom runs: look for a
                        // landed file write here now and then.
                        if since_yield % LOOK_FOR_WRITES_EVERY == 0 {
                            p.collect_landed(parsed.max(now));
                        }
                        (
                            p.is_full(),
                            was_empty && p.batch_len() > 0,
                            out,
                            action,
                            p.has_stream_gaps(),
                        )
                    };
                    if full {
                        self.flush_full(now);
                    } else if became_nonempty {
                        self.batch_started.notify();
                    }
                    if gaps {
                        self.take_gaps();
                    }
                    if action != BookAction::None {
                        match self.on_book_action(stream, venue, action, requests).await {
                            Ok(true) => {}
                            Ok(false) => return End::Lost(
                                "control-request budget of the venue spent: reconnecting to resync"
                                    .into(),
                            ),
                            Err(e) => return End::Lost(format!("sending resubscription: {e}")),
                        }
                    }
                    if !cstate.replies.is_empty() {
                        for r in std::mem::take(&mut cstate.replies) {
                            if let Err(e) = stream.send(Message::text(r)).await {
                                return End::Lost(format!("sending reply: {e}"));
                            }
                            vs.heartbeats_sent.inc();
                        }
                    }
                    if out == FrameOutcome::Notice && matches!(mode, Mode::Primary { .. }) {
                        return End::Rotate("the venue announced the close".into());
                    }
                }
                Message::Binary(b) => {
                    let mut p = self.pipeline.borrow_mut();
                    p.record_raw(now, conn.id, venue, FrameKind::Binary, &b);
                    p.on_rejected(venue, conn_type, Malformed::NonText, b.len(), now);
                }
                // tungstenite has already queued the pong.
                Message::Ping(_) => vs.pings.inc(),
                Message::Pong(_) | Message::Frame(_) => {}
                Message::Close(frame) => {
                    return End::Lost(match frame {
                        Some(f) => format!("server closed ({} {})", f.code, f.reason),
                        None => "server closed".to_string(),
                    })
                }
            }
        }
    }

    /// Acts on what the books asked after a frame: a REST snapshot (queued
    /// for the venue's REST worker) or a resubscription of that one symbol's
    /// book channel on this connection (the others are not disturbed).
    /// `Ok(false)`: the venue's hourly control-request budget would be
    /// exceeded; the caller reconnects (a new connection resubscribes all).
    async fn on_book_action(
        &self,
        stream: &mut ws::WsStream,
        venue: VenueId,
        action: BookAction,
        requests: &mut RequestLog,
    ) -> Result<bool, tungstenite::Error> {
        let symbol = self.pipeline.borrow().last_book_symbol().to_string();
        match action {
            BookAction::None => {}
            BookAction::FetchSnapshot => {
                self.rest[venue.index()].push(JobKind::Snapshot(symbol), Instant::now());
            }
            BookAction::Resubscribe => {
                let channel = vec![venue::protocol(venue).channel(&symbol, DataType::OrderBook)];
                let Some(frames) = resubscription(venue, &channel, requests) else {
                    return Ok(false);
                };
                log::info!("{venue}: resubscribing {} to resync its book", channel[0]);
                self.stats.venue(venue).book_resubscribes.inc();
                for f in frames {
                    stream.send(Message::text(f)).await?;
                }
            }
        }
        Ok(true)
    }

    /// Subscribes again to the watched streams of `conn` silent past their
    /// limit while the connection itself is alive (the venue dropped the
    /// subscription: it happens, and pings keep such a socket looking
    /// healthy). Their next records are checked for what was missed, which
    /// is backfilled or reported like a reconnect's loss. `Ok(false)`: the
    /// venue's control-request budget would be exceeded; reconnect instead.
    async fn resubscribe_silent(
        &self,
        stream: &mut ws::WsStream,
        conn: &ConnectionPlan,
        watch: &mut [Watch],
        requests: &mut RequestLog,
    ) -> Result<bool, tungstenite::Error> {
        let venue = conn.venue;
        let now = crate::sys::now_ns();
        let mut silent: Vec<&StreamSpec> = Vec::new();
        {
            let p = self.pipeline.borrow();
            for w in watch.iter_mut() {
                let s = &conn.streams[w.stream];
                let seen = p
                    .stream_last_seen_ns(venue, s.data_type, &s.symbol)
                    .max(w.since_ns);
                if now.saturating_sub(seen) > w.limit_ns {
                    silent.push(s);
                    // A full window again before the next attempt.
                    w.since_ns = now;
                }
            }
        }
        if silent.is_empty() {
            return Ok(true);
        }
        let proto = venue::protocol(venue);
        // Several data types may share a channel (Bybit `tickers`).
        let mut channels: Vec<String> = silent
            .iter()
            .map(|s| proto.channel(&s.symbol, s.data_type))
            .collect();
        channels.sort_unstable();
        channels.dedup();
        let Some(frames) = resubscription(venue, &channels, requests) else {
            return Ok(false);
        };
        let vs = self.stats.venue(venue);
        {
            let mut p = self.pipeline.borrow_mut();
            for s in &silent {
                vs.stale_streams[s.data_type.index()].inc();
                p.stream_lost(venue, s.data_type, &s.symbol);
            }
        }
        if let Some(n) = self.stale_log.borrow_mut().check(now) {
            log::warn!(
                "conn {} {venue}: no data on {} for their silence limit while the connection is up; subscribing again ({n} more such lines suppressed)",
                conn.id,
                channels.join(", ")
            );
        }
        for f in frames {
            stream.send(Message::text(f)).await?;
        }
        Ok(true)
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
                                crate::venue::error_body::describe(&r.body)
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
        if full {
            self.flush_full(now);
        } else if became_nonempty {
            self.batch_started.notify();
        }
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
        self.batch_started.notify();
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
                if now >= due[i] {
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
            if full {
                self.flush_full(now);
            } else if became_nonempty {
                self.batch_started.notify();
            }
            let wait = match next {
                Some(t) if t > now => Duration::from_nanos(t - now).min(TICK),
                _ => TICK,
            };
            glommio::timer::sleep(wait).await;
        }
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
        if p.sink_in_flight() {
            drop(p);
            self.batch_started.notify();
        }
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
                    } else if in_flight {
                        let wait = (deadline - now).min(REAP_EVERY.as_nanos() as u64);
                        glommio::timer::sleep(Duration::from_nanos(wait)).await;
                        self.pipeline.borrow_mut().reap_sink(crate::sys::now_ns());
                    } else {
                        glommio::timer::sleep(Duration::from_nanos(deadline - now)).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_log_counts_the_last_hour_only() {
        let t0 = Instant::now();
        let mut r = RequestLog::default();
        r.add(3, t0);
        r.add(0, t0);
        r.add(2, t0 + Duration::from_secs(1800));
        assert_eq!(r.last_hour(t0 + Duration::from_secs(1800)), 5);
        assert_eq!(r.last_hour(t0 + Duration::from_secs(3600)), 2);
        assert_eq!(r.last_hour(t0 + Duration::from_secs(5400)), 0);
    }
}
