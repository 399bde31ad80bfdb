//! A socket session: one connection plan's life on its core. It connects
//! within the venue's connection-rate share, subscribes, and reads
//! (`read`: heartbeats, stale detection, the pipeline's answer to each
//! frame; `inbox`: a read's frames taken off the connection and stamped
//! before any is handled; `timers`: the loop's tick and idle wait); it
//! resubscribes streams gone silent (`watch`), rotates
//! make-before-break (`rotate`), and on a drop backs off and reconnects,
//! marking the books unsynced and handing reconnect gaps to the shard for
//! backfill. Data work stays in the pipeline; REST work in the shard.

mod inbox;
mod read;
mod rotate;
mod signal;
mod timers;
mod watch;

use super::pipeline::{ConnState, FrameSource, Pipeline};
use crate::cluster::owned::Ownership;
use crate::config::plan::ConnectionPlan;
use crate::conn::{ws, Backoff};
use crate::logging::RateLimit;
use crate::metrics::CoreStats;
use crate::model::{DataType, VenueId};
use crate::venue;
use async_tungstenite::tungstenite::{self, Message};
use read::{End, Mode};
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

/// A venue's settings on a core: what its connections need, and its REST
/// worker's (the shard's).
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

/// What a session needs of its core (the shard provides it): the pipeline
/// its frames go to, the stats it counts in, what the core's sessions share,
/// and the REST and flush work it hands back.
pub trait Core {
    fn pipeline(&self) -> &RefCell<Pipeline>;
    fn stats(&self) -> &CoreStats;
    fn sessions(&self) -> &Sessions;
    /// Receive-only benchmark mode: frames are counted, not parsed.
    fn discard_frames(&self) -> bool;
    /// How long a session's socket is busy-polled after data (0: never):
    /// the spinning core's `spin_before_park`.
    fn busy_poll(&self) -> Duration;
    fn venue(&self, id: VenueId) -> &VenueRuntime;
    /// After the batch changed outside the flusher: flushes it when full,
    /// else wakes the flusher when it just got its first record.
    fn batch_grew(&self, full: bool, started: bool, now: u64);
    /// Queues backfill of the reconnect gaps the pipeline found, or emits a
    /// `gap` record where the venue cannot be backfilled by id.
    fn take_gaps(&self);
    /// Queues a REST snapshot of a book for the venue's REST worker.
    fn fetch_snapshot(&self, venue: VenueId, raw_symbol: String);
}

/// What the sessions of one core share.
pub struct Sessions {
    /// Last connection epoch handed out on this core.
    epochs: Cell<u32>,
    /// Recent connect attempts per venue (connection-rate limit).
    connects: Vec<RefCell<VecDeque<Instant>>>,
    stale_log: RefCell<RateLimit>,
    /// Which symbols run now (membership mode; empty: all of them).
    owned: Rc<Ownership>,
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions::new(Rc::new(Ownership::new(Vec::new(), true)))
    }
}

impl Sessions {
    pub fn new(owned: Rc<Ownership>) -> Sessions {
        Sessions {
            epochs: Cell::new(0),
            connects: VenueId::ALL.iter().map(|_| RefCell::default()).collect(),
            stale_log: RefCell::new(RateLimit::new(1_000_000_000)),
            owned,
        }
    }

    pub fn owned(&self) -> &Rc<Ownership> {
        &self.owned
    }
}

/// How a primary read ended: by itself, or because the symbol was released.
enum Ran {
    End(End),
    Released,
}

/// One connection plan and what its session needs of its core and venue.
struct Session<'a, C: Core> {
    core: &'a C,
    conn: &'a ConnectionPlan,
    v: VenueRuntime,
    url: Url,
    channels: Vec<String>,
    /// Where this connection's frames come from (the pipeline's view).
    src: FrameSource,
}

/// Runs the session of `conn` on `core` until the task is cancelled.
pub async fn run<C: Core>(core: Rc<C>, conn: ConnectionPlan) {
    let v = core.venue(conn.venue).clone();
    // The data type a frame belongs to before parsing it: the connection's,
    // if it carries only one.
    let conn_type = match conn.streams.first() {
        Some(s) if conn.streams.iter().all(|x| x.data_type == s.data_type) => Some(s.data_type),
        _ => None,
    };
    let s = Session {
        core: &*core,
        url: venue::connection_url(&v.ws_url, &conn),
        channels: venue::connection_channels(&conn),
        src: FrameSource {
            conn_id: conn.id,
            venue: conn.venue,
            conn_type,
        },
        conn: &conn,
        v,
    };
    s.connection().await
}

/// A connected, subscribed WebSocket and what its reader keeps.
struct Live {
    stream: ws::WsStream,
    /// Unique per connection on this core (continuity).
    epoch: u32,
    since: Instant,
    cstate: ConnState,
    requests: RequestLog,
    /// Frames read but not yet handled; kept here, not in the read loop, so
    /// a rotation's overlap goes on with them.
    inbox: inbox::Inbox,
}

/// Why a connection could not be opened, and when the venue said to retry.
struct OpenFailed {
    why: String,
    /// `Retry-After` of a refused upgrade.
    retry_after: Option<Duration>,
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

impl<C: Core> Session<'_, C> {
    /// One connection plan's life: connect, subscribe, read. A planned
    /// rotation (lifetime, venue notice) opens the replacement before the old
    /// connection closes (see [`Session::rotate`]); a drop backs off and
    /// reconnects, and only then are its books marked unsynced.
    async fn connection(&self) {
        let conn = self.conn;
        let vs = &self.core.stats().venue(conn.venue);
        let seed = (conn.id as u64) ^ crate::sys::now_ns();
        let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_CAP, seed);
        let mut attempt: u64 = 0;
        // A live connection a rotation handed over.
        let mut handed: Option<Live> = None;
        // Membership mode: the session runs only while its symbol is owned.
        let owned = self.core.sessions().owned();
        let slot = conn
            .streams
            .first()
            .and_then(|s| owned.slot_of(conn.venue, &s.symbol));
        loop {
            if handed.is_none() && !owned.runs(slot) {
                owned.wait_until(slot, true).await;
                attempt = 0;
                backoff.reset();
            }
            let mut live = match handed.take() {
                Some(l) => l,
                None => {
                    if attempt > 0 {
                        vs.reconnects.inc();
                    }
                    attempt += 1;
                    match self.open(false).await {
                        Ok(l) => l,
                        Err(e) => {
                            log::warn!(
                                "conn {} {}: {} (attempt {attempt})",
                                conn.id,
                                conn.venue,
                                e.why
                            );
                            glommio::timer::sleep(self.retry_wait(&mut backoff, &e)).await;
                            continue;
                        }
                    }
                }
            };
            let since = live.since;
            let rotate_at = rotate::rotation_due(&self.v, since);
            owned.conn_up(slot, true, crate::sys::now_ns());
            let ran = futures_lite::future::or(
                async { Ran::End(self.read_loop(&mut live, Mode::Primary { rotate_at }).await) },
                async {
                    owned.wait_until(slot, false).await;
                    Ran::Released
                },
            )
            .await;
            owned.conn_up(slot, false, 0);
            let end = match ran {
                Ran::End(end) => end,
                Ran::Released => {
                    // Another instance collects the symbol now: no reconnect.
                    self.close_live(live, true).await;
                    log::info!("conn {} {}: closed (symbol released)", conn.id, conn.venue);
                    continue;
                }
            };
            let why = match end {
                End::Rotate(why) => {
                    vs.rotations.inc();
                    log::info!(
                        "conn {} {}: rotating ({why}): opening the replacement first",
                        conn.id,
                        conn.venue
                    );
                    match self.rotate(live).await {
                        Ok(new) => {
                            handed = Some(new);
                            continue;
                        }
                        Err(why) => why,
                    }
                }
                End::Lost(why) => {
                    self.close_live(live, true).await;
                    why
                }
                End::Stopped => {
                    self.close_live(live, true).await;
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
    fn retry_wait(&self, backoff: &mut Backoff, e: &OpenFailed) -> Duration {
        let conn = self.conn;
        let d = backoff.next_delay();
        match e.retry_after {
            Some(r) if r > d => {
                self.core.stats().venue(conn.venue).connect_throttled.inc();
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
    async fn open(&self, shadow: bool) -> Result<Live, OpenFailed> {
        let (conn, url, v) = (self.conn, &self.url, &self.v);
        let vs = self.core.stats().venue(conn.venue);
        self.connect_permit().await;
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
        stream.get_mut().busy_poll(self.core.busy_poll());
        let mut requests = RequestLog::default();
        match self.subscribe(&mut stream).await {
            Ok(n) => requests.add(n, Instant::now()),
            Err(e) => {
                return Err(OpenFailed {
                    why: format!("subscribing failed: {e}"),
                    retry_after: None,
                })
            }
        }
        let epoch = self.core.sessions().epochs.get().wrapping_add(1);
        self.core.sessions().epochs.set(epoch);
        self.core.pipeline().borrow_mut().conn_up(epoch);
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
            inbox: inbox::Inbox::default(),
        })
    }

    /// Waits until the venue's new-connection budget (this core's share)
    /// allows one more connect, so a reconnect storm stays within it.
    async fn connect_permit(&self) {
        let venue = self.conn.venue;
        let Some((allowed, window)) = self.v.connect_limit else {
            return;
        };
        loop {
            let now = Instant::now();
            let wait = {
                let mut log = self.core.sessions().connects[venue.index()].borrow_mut();
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
            self.core.stats().venue(venue).connect_throttled.inc();
            glommio::timer::sleep(wait.unwrap_or(window)).await;
        }
    }

    /// Ends a connection: it no longer counts as live for continuity, and
    /// when it was lost (not replaced) its books can no longer be trusted.
    async fn close_live(&self, mut live: Live, lost: bool) {
        let conn = self.conn;
        self.core.pipeline().borrow_mut().conn_down(live.epoch);
        let vs = self.core.stats().venue(conn.venue);
        vs.connections_up.add(-1);
        vs.streams_up.add(-(conn.streams.len() as i64));
        if lost {
            self.connection_lost();
        } else {
            rotate::close_gracefully(&mut live.stream).await;
        }
    }

    /// Sends the venue's subscribe frames (none for venues that subscribe in the URL).
    async fn subscribe(&self, stream: &mut ws::WsStream) -> Result<u32, tungstenite::Error> {
        let frames = venue::protocol(self.conn.venue).subscribe_frames(&self.channels);
        for f in &frames {
            stream.send(Message::text(f.as_str())).await?;
        }
        Ok(frames.len() as u32)
    }

    /// The connection dropped: its books can no longer be trusted.
    fn connection_lost(&self) {
        let conn = self.conn;
        let mut p = self.core.pipeline().borrow_mut();
        for s in &conn.streams {
            if matches!(s.data_type, DataType::OrderBook | DataType::OrderBookDelta) {
                p.books_mut().on_disconnect(conn.venue, &s.symbol);
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
