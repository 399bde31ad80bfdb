//! A shard: everything one pinned core owns (its connections, pipeline, sink
//! and stats) and the tasks that drive them on that core's executor:
//! one reader task per connection, a flusher for the batch age limit, and a
//! control loop that watches for shutdown. Nothing here is shared with
//! another core except the stats it writes.

use super::pipeline::Pipeline;
use super::shutdown;
use crate::capture::FrameKind;
use crate::config::plan::{ConnectionPlan, CorePlan, EnginePlan};
use crate::conn::{ws, Backoff};
use crate::metrics::CoreStats;
use crate::model::VenueId;
use crate::notify::Notify;
use crate::sink::nats::Publisher;
use crate::sink::MessageSink;
use crate::venue::{self, Malformed};
use async_tungstenite::tungstenite::{self, Message};
use futures_util::StreamExt;
use rustls::ClientConfig;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// A connection that stayed up this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Frames handled before offering the executor a chance to run other tasks.
const YIELD_EVERY: u32 = 64;
/// How long a clean stop waits for NATS acks.
const NATS_DRAIN: Duration = Duration::from_secs(15);

/// What a connection needs of its venue.
#[derive(Clone)]
pub struct VenueRuntime {
    pub id: VenueId,
    pub ws_url: Url,
    pub tls: Option<Arc<ClientConfig>>,
}

/// The NATS publisher as the pipeline's message sink: the data type (first
/// subject token) decides JetStream-acked vs core-NATS publishing.
pub struct NatsAdapter {
    pub publisher: Rc<Publisher>,
    pub config: crate::sink::nats::NatsSinkConfig,
}

impl MessageSink for NatsAdapter {
    fn try_send(&self, subject: &str, msg_id: &str, payload: &[u8]) -> bool {
        let dt = subject.split('.').next().unwrap_or("");
        let ack = self.config.acked(dt);
        self.publisher
            .try_publish(subject, msg_id, payload, ack)
            .is_ok()
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
        }
        Rc::new(Shard {
            plan,
            publisher,
            engine,
            venues,
            pipeline: RefCell::new(pipeline),
            stats,
            batch_started: Notify::default(),
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
        while !shutdown::requested() {
            glommio::timer::sleep(Duration::from_millis(10)).await;
            self.stats.allocations.set(crate::sys::thread_allocations());
        }
        // Readers stop at an await point: every frame already read has been
        // pushed into the batch synchronously, so cancelling loses nothing.
        for r in readers {
            r.cancel().await;
        }
        flusher.cancel().await;
        let mut result = self.pipeline.borrow_mut().close();
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

    /// One connection's life: connect, read until it drops, back off, repeat.
    async fn connection(self: Rc<Self>, conn: ConnectionPlan) {
        let v = self.venue(conn.venue).clone();
        let url = venue::connection_url(&v.ws_url, &conn);
        let vs = &self.stats.venue(conn.venue);
        let seed = (conn.id as u64) ^ crate::sys::now_ns();
        let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_CAP, seed);
        let mut attempt: u64 = 0;
        loop {
            if attempt > 0 {
                vs.reconnects.inc();
            }
            attempt += 1;
            match ws::connect(&url, v.tls.as_ref(), CONNECT_TIMEOUT).await {
                Err(e) => {
                    vs.connect_failures.inc();
                    log::warn!(
                        "conn {} {}: connect to {} failed (attempt {}): {e}",
                        conn.id,
                        conn.venue,
                        url.host_str().unwrap_or("?"),
                        attempt
                    );
                }
                Ok(mut stream) => {
                    let up = UpGuard::new(&vs.connections_up);
                    let since = Instant::now();
                    log::info!(
                        "conn {} {}: connected ({} streams)",
                        conn.id,
                        conn.venue,
                        conn.streams.len()
                    );
                    let why = self.read_loop(&mut stream, &conn).await;
                    drop(up);
                    if since.elapsed() >= STABLE_AFTER {
                        backoff.reset();
                    }
                    log::warn!("conn {} {}: disconnected: {why}", conn.id, conn.venue);
                }
            }
            let delay = backoff.next_delay();
            glommio::timer::sleep(delay).await;
        }
    }

    /// Reads frames until the connection ends; returns why it ended.
    async fn read_loop(&self, stream: &mut ws::WsStream, conn: &ConnectionPlan) -> String {
        let venue = conn.venue;
        // The data type a frame belongs to before parsing it: the connection's,
        // if it carries only one.
        let conn_type = match conn.streams.first() {
            Some(s) if conn.streams.iter().all(|x| x.data_type == s.data_type) => Some(s.data_type),
            _ => None,
        };
        let vs = self.stats.venue(venue);
        let mut cstate = super::pipeline::ConnState::default();
        let mut since_yield = 0u32;
        loop {
            since_yield += 1;
            if since_yield >= YIELD_EVERY {
                since_yield = 0;
                glommio::yield_if_needed().await;
            }
            let msg = match stream.next().await {
                None => return "stream ended".to_string(),
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    let now = crate::sys::now_ns();
                    let mut p = self.pipeline.borrow_mut();
                    match &e {
                        tungstenite::Error::Capacity(_) => {
                            p.on_rejected(venue, conn_type, Malformed::Oversized, 0, now)
                        }
                        tungstenite::Error::Utf8(_) => {
                            p.on_rejected(venue, conn_type, Malformed::InvalidUtf8, 0, now)
                        }
                        _ => {}
                    }
                    return format!("read error: {e}");
                }
            };
            let now = crate::sys::now_ns();
            if self.engine.discard_frames {
                vs.frames_received[super::pipeline::received_slot(conn_type)].inc();
                vs.bytes_received.add(msg.len() as u64);
                continue;
            }
            match msg {
                Message::Text(text) => {
                    let (full, became_nonempty) = {
                        let mut p = self.pipeline.borrow_mut();
                        p.record_raw(now, conn.id, venue, FrameKind::Text, text.as_bytes());
                        let was_empty = p.batch_len() == 0;
                        let (_out, _action) =
                            p.on_text(venue, conn_type, text.as_str(), now, &mut cstate);
                        (p.is_full(), was_empty && p.batch_len() > 0)
                    };
                    if full {
                        self.pipeline.borrow_mut().flush(now);
                    } else if became_nonempty {
                        self.batch_started.notify();
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
                    return match frame {
                        Some(f) => format!("server closed ({} {})", f.code, f.reason),
                        None => "server closed".to_string(),
                    }
                }
            }
        }
    }

    /// Flushes the batch when its oldest record reaches `batch_max_delay`.
    async fn flusher(self: Rc<Self>) {
        let delay_ns = self.engine.batch_max_delay.as_nanos() as u64;
        loop {
            let (oldest, pending) = {
                let p = self.pipeline.borrow();
                (p.oldest_receive_ns(), p.has_pending())
            };
            match oldest {
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
                    } else {
                        glommio::timer::sleep(Duration::from_nanos(deadline - now)).await;
                    }
                }
            }
        }
    }
}

/// Counts a connection as up for as long as it lives (also when cancelled).
struct UpGuard<'a>(&'a crate::metrics::LocalGauge);

impl<'a> UpGuard<'a> {
    fn new(g: &'a crate::metrics::LocalGauge) -> Self {
        g.add(1);
        UpGuard(g)
    }
}

impl Drop for UpGuard<'_> {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}
