//! The per-core publisher: accepts messages into the [`Queue`], and its `run`
//! task keeps one connection alive (server list in order, backoff between
//! attempts), creates/updates the stream, and drives three loops per
//! connection: a writer (batches queued HPUBs into one write, answers PINGs),
//! a reader (parses acks and server ops from one reused buffer) and a ticker
//! (ack timeout, our own PINGs). Any error ends the connection; unacked
//! messages are then resent on the next one, deduplicated by the server
//! through `Nats-Msg-Id` and, past its window, by [`super::resend`]. What
//! the inbox receives (acks, "no responders") and the reader are in [`inbox`].

use super::config::{NatsSinkConfig, ServerAddr};
use super::conn::{self, ConnError, HandshakeParams, ReadBuf};
use super::jsapi::{ApiFail, ApiIo};
use super::proto::{self, Op};
use super::queue::{AckMatch, Queue};
use super::resend::{self, AckedSeqs, Floors};
use super::route::{Routes, StreamSubjects, Want};
use crate::conn::Backoff;
use crate::logging::RateLimit;
pub use crate::metrics::NatsStats;
use crate::metrics::Run;
use crate::notify::Notify;
use crate::sink::spill::Spill;
use futures_lite::io::{AsyncRead, AsyncWrite};
use rustls::ClientConfig;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod inbox;
mod spilled;
use inbox::Parked;

/// `try_publish` could not take the message: the queue is at
/// `max_buffered_bytes` (or the message can never be sent: bad subject or id,
/// larger than the server's max_payload; those are also logged and counted in
/// `errors`). The caller keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Bytes gathered into one write.
const WRITE_BATCH: usize = 256 * 1024;
/// Our PING cadence; two unanswered PINGs end the connection.
const PING_INTERVAL: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_millis(100);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection that lived this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Assumed until the server's INFO says otherwise (the NATS default).
const DEFAULT_MAX_PAYLOAD: usize = 1 << 20;

/// One core's NATS publisher. Lives in an `Rc` on its executor.
pub struct Publisher {
    cfg: NatsSinkConfig,
    /// Configured servers, then cluster members the servers announce
    /// (`connect_urls`), so failover reaches nodes the config did not list.
    servers: std::cell::RefCell<Vec<ServerAddr>>,
    /// What the plan publishes, per data type (for the transport decision).
    wants: Vec<Want>,
    /// Each data type's transport, set at every connect before publishing.
    routes: Rc<Routes>,
    /// Records no transport can carry, kept on disk (same framing as the spill).
    dead: RefCell<Option<Spill>>,
    name: String,
    /// `_INBOX.<token>`: acks come to `<inbox>.<seq>`, API replies to `<inbox>.c<n>`.
    inbox: String,
    stats: Arc<NatsStats>,
    queue: RefCell<Queue>,
    epoch: Instant,
    max_payload: Cell<usize>,
    connected: Cell<bool>,
    wake_writer: Notify,
    drained: Notify,
    tls: RefCell<Option<Arc<ClientConfig>>>,
    api_seq: Cell<u64>,
    /// One warning per second per condition (the shared rate limiter).
    warn_refused: RefCell<RateLimit>,
    warn_ack_error: RefCell<RateLimit>,
    warn_dead: RefCell<RateLimit>,
    /// Messages answered "no responders", waiting to be written again.
    parked: RefCell<Vec<Parked>>,
    /// The server's streams as of the last connect (which one holds a subject).
    streams: RefCell<Vec<StreamSubjects>>,
    /// Highest stream sequence acked to us, per stream.
    acked_seqs: RefCell<AckedSeqs>,
    /// Subjects whose next records may already be stored ([`resend`]).
    floors: RefCell<Floors>,
    warn_resend: RefCell<RateLimit>,
    /// Inside a hand-off ([`Publisher::hand_off`]): the clock read that
    /// times queued messages, and how many it has timed.
    hand_off: Cell<Option<(u64, u32)>>,
    /// The latencies of one read's acks, observed as runs ([`Run`]).
    ack_runs: Cell<(Run, Run)>,
}

/// Messages one clock read times inside a hand-off: a queue → ack latency
/// is overstated by at most this many encodes (about 1 µs each).
const CLOCK_REUSE: u32 = 64;

impl Publisher {
    /// `dead_letter`: where records no transport can carry are set aside
    /// (`None`: they are counted, logged and dropped).
    pub fn new(
        cfg: NatsSinkConfig,
        core: usize,
        wants: Vec<Want>,
        routes: Rc<Routes>,
        dead_letter: Option<Spill>,
    ) -> Rc<Publisher> {
        let token = fastrand::u64(..);
        let inbox = format!("_INBOX.mp{}x{token:016x}c{core}", std::process::id());
        let servers = cfg.server_addrs();
        // Most messages are far smaller than 1 KiB: size the index for the
        // window plus as much again queued, the bytes for a quarter of the cap.
        let entries_cap = cfg.max_in_flight.saturating_mul(2).min(1 << 20);
        let bytes_cap = (cfg.max_buffered_bytes / 4).min(16 << 20);
        Rc::new(Publisher {
            servers: std::cell::RefCell::new(servers),
            wants,
            routes,
            dead: RefCell::new(dead_letter),
            name: format!("marketprism-core{core}"),
            inbox,
            stats: Arc::new(NatsStats::default()),
            queue: RefCell::new(Queue::new(entries_cap, bytes_cap)),
            epoch: Instant::now(),
            max_payload: Cell::new(DEFAULT_MAX_PAYLOAD),
            connected: Cell::new(false),
            wake_writer: Notify::default(),
            drained: Notify::default(),
            tls: RefCell::new(None),
            api_seq: Cell::new(0),
            warn_refused: RefCell::new(RateLimit::new(1_000_000_000)),
            warn_ack_error: RefCell::new(RateLimit::new(1_000_000_000)),
            warn_dead: RefCell::new(RateLimit::new(1_000_000_000)),
            parked: RefCell::new(Vec::new()),
            streams: RefCell::new(Vec::new()),
            acked_seqs: RefCell::new(AckedSeqs::default()),
            floors: RefCell::new(Floors::default()),
            warn_resend: RefCell::new(RateLimit::new(1_000_000_000)),
            hand_off: Cell::new(None),
            ack_runs: Cell::new((Run::default(), Run::default())),
            cfg,
        })
    }

    pub fn stats(&self) -> &NatsStats {
        &self.stats
    }

    pub fn stats_arc(&self) -> Arc<NatsStats> {
        self.stats.clone()
    }

    pub fn connected(&self) -> bool {
        self.connected.get()
    }

    /// The routing table the message sink reads per record.
    pub fn routes(&self) -> Rc<Routes> {
        self.routes.clone()
    }

    /// Sets a record aside that no transport can carry (it would otherwise
    /// block every record behind it): into the dead-letter store, counted and
    /// logged (rate-limited). Always consumes the record.
    pub fn dead_letter(&self, subject: &str, msg_id: &str, payload: &[u8], why: &str) {
        self.stats.dead_lettered.inc();
        let stored = match self.dead.borrow_mut().as_mut() {
            Some(d) => d
                .push(subject.as_bytes(), msg_id.as_bytes(), payload)
                .is_ok(),
            None => false,
        };
        if !stored {
            self.stats.errors.inc();
        }
        if let Some(n) = self.warn_dead.borrow_mut().check(crate::sys::now_ns()) {
            log::error!(
                "NATS: record for {subject:?} {}: {why} (+{n} suppressed)",
                if stored {
                    "set aside in the dead-letter store"
                } else {
                    "LOST (the dead-letter store is full or failed)"
                }
            );
        }
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// A run of messages handed to the queue begins (`true`) or ends: the
    /// overflow policy's batch or spill drain, synchronous in between. Inside
    /// one, a clock read times up to [`CLOCK_REUSE`] messages (a read per
    /// message was 2 % of a JetStream core); outside, each reads the clock.
    pub fn hand_off(&self, on: bool) {
        self.hand_off.set(on.then_some((0, CLOCK_REUSE)));
    }

    /// The queue time of a message being queued now.
    fn queue_clock(&self) -> u64 {
        match self.hand_off.get() {
            None => self.now_ns(),
            Some((ns, n)) if n < CLOCK_REUSE => {
                self.hand_off.set(Some((ns, n + 1)));
                ns
            }
            Some(_) => {
                let ns = self.now_ns();
                self.hand_off.set(Some((ns, 1)));
                ns
            }
        }
    }

    /// One acked message's latencies (queued → acked, received → acked),
    /// held as runs until [`Publisher::observe_acks`].
    fn note_ack(&self, queued_to_ack: u64, receive_to_ack: Option<u64>) {
        let (mut lat, mut recv) = self.ack_runs.get();
        lat.add(&self.stats.ack_latency, queued_to_ack);
        if let Some(v) = receive_to_ack {
            recv.add(&self.stats.receive_ack_latency, v);
        }
        self.ack_runs.set((lat, recv));
    }

    /// Observes the held ack latencies (after each read of acks).
    fn observe_acks(&self) {
        let (mut lat, mut recv) = self.ack_runs.get();
        lat.flush(&self.stats.ack_latency);
        recv.flush(&self.stats.receive_ack_latency);
        self.ack_runs.set((lat, recv));
    }

    /// When acks arrived: the queue's clock and the wall clock (for the
    /// receive → acked latency).
    fn ack_clock(&self) -> AckClock {
        AckClock {
            mono_ns: self.now_ns(),
            wall_ns: crate::sys::now_ns(),
        }
    }

    fn refuse(&self, why: &str, subject: &str) -> Result<(), Full> {
        self.stats.errors.inc();
        if let Some(n) = self.warn_refused.borrow_mut().check(crate::sys::now_ns()) {
            log::warn!("NATS publish refused ({why}) for subject {subject:?} (+{n} suppressed)");
        }
        Err(Full)
    }

    /// Queues one message (copied into the queue's buffer, already encoded).
    /// `ack = false` (or `jetstream = false`): plain PUB, no ack, no resend.
    pub fn try_publish(
        &self,
        subject: &str,
        msg_id: &str,
        payload: &[u8],
        ack: bool,
    ) -> Result<(), Full> {
        let ack = ack && self.cfg.jetstream;
        if !proto::valid_subject(subject) {
            return self.refuse("invalid subject", subject);
        }
        let body = if ack {
            if !proto::valid_msg_id(msg_id) {
                return self.refuse("invalid Nats-Msg-Id", subject);
            }
            proto::header_len(msg_id) + payload.len()
        } else {
            payload.len()
        };
        if body > self.max_payload.get() {
            return self.refuse("larger than the server's max_payload", subject);
        }
        // Only right after a reconnect, for records (e.g. from the spill)
        // of a subject whose stream may already hold them.
        if ack
            && !self.floors.borrow().is_empty()
            && self.floors.borrow_mut().holds(subject, None, msg_id)
        {
            self.stats.resend_skipped.inc();
            return Ok(());
        }
        let mut q = self.queue.borrow_mut();
        let len = if ack {
            proto::hpub_len(subject, &self.inbox, q.next_seq(), msg_id, payload.len())
        } else {
            proto::pub_len(subject, None, payload.len())
        };
        if q.live_bytes() + len > self.cfg.max_buffered_bytes {
            return Err(Full);
        }
        let now = self.queue_clock();
        let receive_ns = if ack {
            super::receive_ts::receive_ts_ns(payload).unwrap_or(0)
        } else {
            0
        };
        let inbox = &self.inbox;
        q.push(len, ack, now, receive_ns, |buf, seq| {
            if ack {
                proto::encode_hpub(buf, subject, inbox, seq, msg_id, payload);
            } else {
                proto::encode_pub(buf, subject, None, payload);
            }
        });
        self.update_gauges(&q);
        drop(q);
        self.wake_writer.notify();
        Ok(())
    }

    /// Shutdown with messages still unacked (server down or slow): hands
    /// each back as (subject, msg id, payload), oldest first, and empties the
    /// queue, so the caller can keep them (spill to disk) for the next run.
    /// Call only after the `run` task is stopped.
    pub fn take_undelivered(&self, mut f: impl FnMut(&str, &str, &[u8])) -> usize {
        let mut q = self.queue.borrow_mut();
        let mut n = 0;
        for frame in q.undelivered_frames() {
            if let Some((subject, id, payload)) = proto::split_frame(frame) {
                f(subject, id, payload);
                n += 1;
            }
        }
        q.clear();
        self.update_gauges(&q);
        n
    }

    fn update_gauges(&self, q: &Queue) {
        self.stats.in_flight.set(q.in_flight() as i64);
        self.stats.buffered_msgs.set(q.len() as i64);
        self.stats.buffered_bytes.set(q.live_bytes() as i64);
    }

    /// Waits until every queued message is delivered or `timeout` passes;
    /// returns how many are still undelivered. (One drain at a time.)
    pub async fn drain(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if self.queue.borrow().is_empty() {
                return 0;
            }
            let now = Instant::now();
            if now >= deadline {
                return self.queue.borrow().undelivered();
            }
            self.wake_writer.notify();
            futures_lite::FutureExt::or(self.drained.wait(), glommio::timer::sleep(deadline - now))
                .await;
        }
    }

    fn set_connected(&self, up: bool) {
        self.connected.set(up);
        self.stats.connected.set(up as i64);
    }

    /// The connection is gone: unacked messages go back to the queue.
    fn connection_lost(&self) {
        self.set_connected(false);
        // A new connection writes every unacked message again anyway.
        self.parked.borrow_mut().clear();
        let mut q = self.queue.borrow_mut();
        q.requeue();
        self.update_gauges(&q);
    }

    fn tls_config(&self) -> Option<Arc<ClientConfig>> {
        if let Some(c) = self.tls.borrow().as_ref() {
            return Some(c.clone());
        }
        match crate::conn::tls::client_config(self.cfg.ca_file.as_deref(), false) {
            Ok(c) => {
                *self.tls.borrow_mut() = Some(c.clone());
                Some(c)
            }
            Err(e) => {
                log::error!("NATS TLS configuration: {e}");
                None
            }
        }
    }

    /// Drives the connection forever (see the module docs). Cancel-safe: if
    /// dropped, unacked messages stay queued.
    /// Adds the cluster members a server announced (`host:port`, same TLS
    /// mode as the server that announced them) to the failover list.
    fn learn_servers(&self, from: &ServerAddr, urls: &[String]) {
        const MAX_SERVERS: usize = 64;
        let mut list = self.servers.borrow_mut();
        for u in urls {
            if list.len() >= MAX_SERVERS {
                break;
            }
            let scheme = if from.tls { "tls" } else { "nats" };
            let Ok(a) = crate::sink::nats::config::parse_server(&format!("{scheme}://{u}")) else {
                continue;
            };
            if !list.iter().any(|x| x.host == a.host && x.port == a.port) {
                log::info!(
                    "NATS: cluster member {a} announced by {from}; added to the failover list"
                );
                list.push(a);
            }
        }
    }

    /// The current failover list (configured, then announced servers).
    pub fn servers(&self) -> Vec<String> {
        self.servers
            .borrow()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    pub async fn run(self: Rc<Self>) {
        struct Lost<'a>(&'a Publisher);
        impl Drop for Lost<'_> {
            fn drop(&mut self) {
                self.0.connection_lost();
            }
        }
        let _lost = Lost(&self);
        if self.servers.borrow().is_empty() {
            log::error!("NATS sink: no valid server in sink.nats.servers; not publishing");
            std::future::pending::<()>().await;
            return;
        }
        let mut backoff = Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(5),
            fastrand::u64(..),
        );
        let mut idx = 0usize;
        let mut ever_connected = false;
        loop {
            let addr = {
                let list = self.servers.borrow();
                list[idx % list.len()].clone()
            };
            let addr = &addr;
            let mut established = None;
            let err = self
                .session(addr, &mut established, &mut ever_connected)
                .await;
            self.connection_lost();
            if matches!(err, ConnError::Server(_)) {
                self.stats.errors.inc();
            }
            match established {
                Some(t) => {
                    log::warn!("NATS {addr}: connection lost: {err}; reconnecting");
                    if t.elapsed() >= STABLE_AFTER {
                        backoff.reset();
                    }
                }
                None => {
                    self.stats.connect_failures.inc();
                    log::warn!("NATS {addr}: cannot connect: {err}");
                    // Failover: the next attempt goes to the next server.
                    idx = idx.wrapping_add(1);
                }
            }
            glommio::timer::sleep(backoff.next_delay()).await;
        }
    }

    /// One connection, from TCP connect until it fails. Always returns why.
    async fn session(
        &self,
        addr: &ServerAddr,
        established: &mut Option<Instant>,
        ever: &mut bool,
    ) -> ConnError {
        let creds = match self.cfg.credentials() {
            Ok(c) => c,
            Err(e) => return ConnError::Config(e),
        };
        let tls = if addr.tls { self.tls_config() } else { None };
        let params = HandshakeParams {
            tls: tls.as_ref(),
            name: &self.name,
            user: creds.user.as_deref(),
            pass: creds.password.as_deref(),
            token: creds.token.as_deref(),
            timeout: CONNECT_TIMEOUT,
        };
        let mut opened = match conn::open(addr, &params).await {
            Ok(o) => o,
            // A server asking for TLS on a nats:// URL: retry once with TLS.
            Err(ConnError::Config(e)) if tls.is_none() && e.contains("TLS needed") => {
                let tls = self.tls_config();
                let params = HandshakeParams {
                    tls: tls.as_ref(),
                    ..params
                };
                match conn::open(addr, &params).await {
                    Ok(o) => o,
                    Err(e) => return e,
                }
            }
            Err(e) => return e,
        };
        self.learn_servers(addr, &opened.info.connect_urls);
        let max_payload = opened
            .info
            .max_payload
            .map_or(DEFAULT_MAX_PAYLOAD, |m| m as usize);
        self.max_payload.set(max_payload);
        if !opened.info.jetstream && self.cfg.jetstream {
            log::warn!("NATS {addr}: server does not announce JetStream; publishes will fail until it does");
        }
        let (mut rd, mut wr) = futures_util::io::AsyncReadExt::split(opened.stream);
        let rbuf = &mut opened.rbuf;
        let mut out = Vec::with_capacity(WRITE_BATCH + 64 * 1024);
        proto::encode_sub(&mut out, &format!("{}.*", self.inbox), 1);
        if let Err(e) = conn::write_flush(&mut wr, &out).await {
            return e;
        }
        // Every data type's transport, known before the first publish.
        let mut io = ApiIo {
            rd: &mut rd,
            wr: &mut wr,
            rbuf,
            inbox: &self.inbox,
            seq: &self.api_seq,
            max_payload,
        };
        let create = self.cfg.create_stream;
        match io.resolve(&self.cfg, &self.wants, create).await {
            Ok(res) => {
                for e in &res.errors {
                    log::error!("NATS configuration error: {e}");
                }
                self.streams.replace(res.streams.clone());
                self.routes.set(&res);
                self.stats.unroutable_types.set(res.errors.len() as i64);
            }
            // JetStream slow or not ready (a restarted server recovering its
            // streams, no leader yet): the transports decided at an earlier
            // connect still hold; without them, retry rather than guess
            // (records wait in the spill meanwhile).
            Err(ApiFail::Conn(ConnError::Timeout(w))) if self.routes.is_resolved() => {
                log::warn!("NATS {addr}: JetStream API: no answer ({w}); keeping the transports decided earlier");
            }
            Err(ApiFail::Refused {
                code,
                err_code,
                why,
            }) if self.routes.is_resolved() => {
                log::warn!(
                    "NATS {addr}: JetStream API: {why} (code {code}, err_code {err_code}); \
                     keeping the transports decided earlier"
                );
            }
            Err(ApiFail::Conn(e)) => return e,
            Err(e) => return ConnError::Server(format!("JetStream API: {e}")),
        }
        if self.cfg.jetstream {
            let streams = self.streams.borrow().clone();
            let acked = std::mem::take(&mut *self.acked_seqs.borrow_mut());
            let checked = resend::check(
                &mut io,
                &self.queue,
                &streams,
                &acked,
                !*ever,
                &self.stats,
                &self.warn_resend,
            )
            .await;
            *self.acked_seqs.borrow_mut() = acked;
            match checked {
                Ok(f) => *self.floors.borrow_mut() = f,
                Err(e) => return e,
            }
            self.update_gauges(&self.queue.borrow());
        }
        *established = Some(Instant::now());
        if *ever {
            self.stats.reconnects.inc();
        }
        *ever = true;
        self.set_connected(true);
        log::info!(
            "NATS {addr}: connected as {} (server {} {})",
            self.name,
            opened.info.server_id,
            opened.info.version
        );
        let ctl = SessionCtl::default();
        let reader = self.reader(addr, &mut rd, rbuf, max_payload, &ctl);
        let writer = self.writer(&mut wr, &mut out, &ctl);
        let ticker = self.ticker(&ctl);
        let r =
            futures_lite::FutureExt::or(reader, futures_lite::FutureExt::or(writer, ticker)).await;
        match r {
            Err(e) => e,
            Ok(never) => match never {},
        }
    }

    async fn writer<W: AsyncWrite + Unpin>(
        &self,
        wr: &mut W,
        out: &mut Vec<u8>,
        ctl: &SessionCtl,
    ) -> Result<std::convert::Infallible, ConnError> {
        let max_in_flight = self.cfg.max_in_flight;
        loop {
            out.clear();
            for _ in 0..ctl.pongs_due.replace(0) {
                out.extend_from_slice(b"PONG\r\n");
            }
            if ctl.ping_due.replace(false) {
                out.extend_from_slice(b"PING\r\n");
                ctl.pings_out.set(ctl.pings_out.get() + 1);
            }
            let g = {
                let mut q = self.queue.borrow_mut();
                let window = q.window(max_in_flight);
                let g = q.gather(out, WRITE_BATCH, window, self.now_ns());
                self.update_gauges(&q);
                g
            };
            if out.is_empty() {
                self.wake_writer.wait().await;
                continue;
            }
            // Counted when handed to the socket: a failed write makes them
            // resends on the next connection, not new publishes.
            self.stats.published.add(g.fresh);
            self.stats.resent.add(g.resent);
            conn::write_flush(wr, out).await?;
            if g.core > 0 {
                let mut q = self.queue.borrow_mut();
                q.written(&g);
                self.update_gauges(&q);
                if q.is_empty() {
                    self.drained.notify();
                }
            }
            glommio::yield_if_needed().await;
        }
    }

    async fn ticker(&self, ctl: &SessionCtl) -> Result<std::convert::Infallible, ConnError> {
        let ack_timeout = Duration::from_millis(self.cfg.ack_timeout_ms).as_nanos() as u64;
        let mut last_ping = Instant::now();
        loop {
            glommio::timer::sleep(TICK).await;
            self.unpark_due();
            if let Some(sent) = self.queue.borrow().oldest_sent_ns() {
                if self.now_ns().saturating_sub(sent) > ack_timeout {
                    return Err(ConnError::Timeout("PubAck"));
                }
            }
            if last_ping.elapsed() >= PING_INTERVAL {
                if ctl.pings_out.get() >= 2 {
                    return Err(ConnError::Timeout("PONG (connection stale)"));
                }
                last_ping = Instant::now();
                ctl.ping_due.set(true);
                self.wake_writer.notify();
            }
        }
    }
}

/// When a read's acks arrived ([`Publisher::ack_clock`]).
#[derive(Clone, Copy)]
struct AckClock {
    mono_ns: u64,
    wall_ns: u64,
}

/// Flags the three loops of one connection share.
#[derive(Default)]
struct SessionCtl {
    pongs_due: Cell<u32>,
    ping_due: Cell<bool>,
    pings_out: Cell<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_off_shares_one_clock_read_among_clock_reuse_messages() {
        let p = Publisher::new(
            NatsSinkConfig::default(),
            0,
            Vec::new(),
            Default::default(),
            None,
        );
        let pause = || std::thread::sleep(Duration::from_micros(20));
        p.hand_off(true);
        let n = CLOCK_REUSE as usize;
        let stamps: Vec<u64> = (0..2 * n + 1)
            .map(|_| {
                pause();
                p.queue_clock()
            })
            .collect();
        p.hand_off(false);
        assert!(stamps[..n].iter().all(|&s| s == stamps[0]));
        assert!(stamps[n..2 * n].iter().all(|&s| s == stamps[n]));
        assert!(stamps[0] < stamps[n] && stamps[n] < stamps[2 * n]);
        // Outside a hand-off every message reads the clock.
        let a = p.queue_clock();
        pause();
        assert!(p.queue_clock() > a);
        // A new hand-off starts with a fresh read.
        pause();
        p.hand_off(true);
        assert!(p.queue_clock() > a);
    }
}
