//! [`Control`]: JetStream API calls on a NATS connection of its own, for
//! code that must read or write the server's state outside the publishing
//! path (cluster membership in a key-value bucket, the last record a stream
//! holds for a subject). One per executor; no locks, no threads.
//!
//! Calls run one at a time (a single-permit glommio semaphore). A call opens
//! the connection if none is up (servers tried in configured order, starting
//! with the last one that worked); a connection failure ends the connection
//! and the call returns the error; the next call reconnects after a short
//! backoff. A connection that was idle (the server may have dropped it) and
//! fails on I/O is replaced once within the same call.

use super::apiconn::ApiConn;
use super::config::{NatsSinkConfig, ServerAddr};
use super::conn::ConnError;
use super::jsapi::ApiFail;
pub use super::stored::{KvEntry, StoredMsg};
use crate::conn::Backoff;
use crate::logging::RateLimit;
use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// A JetStream API client on its own connection.
pub struct Control {
    cfg: NatsSinkConfig,
    servers: Vec<ServerAddr>,
    name: String,
    conn: RefCell<Option<ApiConn>>,
    gate: glommio::sync::Semaphore,
    backoff: RefCell<Backoff>,
    /// No connection attempt before this (after a failure).
    not_before: Cell<Option<Instant>>,
    /// The server tried first next time.
    next_server: Cell<usize>,
    warn: RefCell<RateLimit>,
}

/// Runs one API call on a connection, replacing an idle one that failed on
/// I/O once, and keeping the connection unless the call failed on it.
macro_rules! with_conn {
    ($self:ident, |$io:ident| $call:expr) => {{
        let _permit = $self.permit().await?;
        let mut retried = false;
        loop {
            let (mut c, fresh) = $self.checkout().await?;
            let r = {
                let mut $io = c.io();
                $call.await
            };
            match &r {
                Err(ApiFail::Conn(ConnError::Io(_))) if !fresh && !retried => {
                    retried = true;
                    continue;
                }
                Err(ApiFail::Conn(e)) => {
                    $self.failed(c.addr(), e);
                }
                _ => *$self.conn.borrow_mut() = Some(c),
            }
            break r;
        }
    }};
}

impl Control {
    /// Nothing is connected until the first call. `name` is the client name
    /// the server shows (e.g. `marketprism-control-core0`).
    pub fn new(cfg: &NatsSinkConfig, name: &str) -> Control {
        Control {
            servers: cfg.server_addrs(),
            cfg: cfg.clone(),
            name: name.to_string(),
            conn: RefCell::new(None),
            gate: glommio::sync::Semaphore::new(1),
            backoff: RefCell::new(Backoff::new(BACKOFF_MIN, BACKOFF_MAX, fastrand::u64(..))),
            not_before: Cell::new(None),
            next_server: Cell::new(0),
            warn: RefCell::new(RateLimit::new(1_000_000_000)),
        }
    }

    /// True while a connection is open (it may still turn out dead).
    pub fn connected(&self) -> bool {
        self.conn.borrow().is_some()
    }

    async fn permit(&self) -> Result<glommio::sync::Permit<'_>, ApiFail> {
        self.gate
            .acquire_permit(1)
            .await
            .map_err(|e| ApiFail::Conn(ConnError::Config(format!("control gate: {e}"))))
    }

    /// The open connection (false: reused), or a new one.
    async fn checkout(&self) -> Result<(ApiConn, bool), ApiFail> {
        if let Some(c) = self.conn.borrow_mut().take() {
            return Ok((c, false));
        }
        if let Some(t) = self.not_before.get() {
            let now = Instant::now();
            if t > now {
                glommio::timer::sleep(t - now).await;
            }
        }
        if self.servers.is_empty() {
            return Err(ApiFail::Conn(ConnError::Config(
                "no valid server in sink.nats.servers".into(),
            )));
        }
        let n = self.servers.len();
        let first = self.next_server.get() % n;
        let mut last = None;
        for i in 0..n {
            let addr = &self.servers[(first + i) % n];
            match ApiConn::open(addr, &self.cfg, &self.name, "mpctl", CONNECT_TIMEOUT).await {
                Ok(c) => {
                    self.next_server.set((first + i) % n);
                    self.backoff.borrow_mut().reset();
                    self.not_before.set(None);
                    return Ok((c, true));
                }
                Err(e) => {
                    self.warn_failed(addr, &e);
                    last = Some(e);
                }
            }
        }
        self.next_server.set(first + 1);
        self.hold_off();
        Err(ApiFail::Conn(last.unwrap_or(ConnError::Config(
            "no NATS server reachable".into(),
        ))))
    }

    fn hold_off(&self) {
        let d = self.backoff.borrow_mut().next_delay();
        self.not_before.set(Some(Instant::now() + d));
    }

    /// The connection failed during a call: dropped; the next call
    /// reconnects after the backoff.
    fn failed(&self, addr: &ServerAddr, e: &ConnError) {
        self.warn_failed(addr, e);
        self.hold_off();
    }

    fn warn_failed(&self, addr: &ServerAddr, e: &ConnError) {
        if let Some(n) = self.warn.borrow_mut().check(crate::sys::now_ns()) {
            log::warn!(
                "NATS control connection ({}) to {addr}: {e} (+{n} suppressed)",
                self.name
            );
        }
    }

    /// The last message `stream` stores for `subject` (no wildcards): its
    /// sequence, `Nats-Msg-Id` and payload; `None` when it holds none.
    pub async fn last_by_subject(
        &self,
        stream: &str,
        subject: &str,
    ) -> Result<Option<StoredMsg>, ApiFail> {
        with_conn!(self, |io| io.last_by_subject(stream, subject))
    }

    /// The stream capturing `subject`, if any.
    pub async fn stream_for_subject(&self, subject: &str) -> Result<Option<String>, ApiFail> {
        with_conn!(self, |io| io.stream_for_subject(subject))
    }

    /// Creates bucket `bucket` (stream `KV_<bucket>`, keys expiring `ttl`
    /// after their last put, `sink.nats.replicas` replicas) unless it
    /// exists. True if created by this call.
    pub async fn kv_ensure(&self, bucket: &str, ttl: Duration) -> Result<bool, ApiFail> {
        let replicas = self.cfg.replicas;
        with_conn!(self, |io| io.kv_ensure(bucket, ttl, replicas))
    }

    /// Puts `value` under `key`; the stream sequence once acknowledged.
    pub async fn kv_put(&self, bucket: &str, key: &str, value: &[u8]) -> Result<u64, ApiFail> {
        with_conn!(self, |io| io.kv_put(bucket, key, value))
    }

    /// The present keys of `bucket` with their latest values, sorted by key.
    pub async fn kv_entries(&self, bucket: &str) -> Result<Vec<KvEntry>, ApiFail> {
        with_conn!(self, |io| io.kv_entries(bucket))
    }

    /// Closes the connection (the next call opens a new one).
    pub fn disconnect(&self) {
        self.conn.borrow_mut().take();
    }
}
