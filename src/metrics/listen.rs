//! The HTTP listeners (`/metrics` and the health-only one), safe to open on
//! every interface: whatever peers do, a listener holds at most
//! `max_connections` connections, each for at most `header_timeout` before
//! its request head is complete and `write_timeout` after, with a request
//! head of at most [`MAX_HEAD`] bytes. One request per connection
//! (`Connection: close`), so those two deadlines bound every connection.
//!
//! At the cap, the oldest connection still waiting for its request head
//! makes room for the new one (a flood of half-sent heads cannot lock out a
//! scrape); when every connection is past its head, the new one is closed.
//! Every refusal is counted in `marketprism_http_connections_rejected_total`
//! and logged at most once a second per listener.

use super::http::{
    debug_latency, debug_memory, health, in_marketprism_words, DebugState, OPENMETRICS,
};
use super::render;
use super::Exporter;
use crate::logging::RateLimit;
use bytes::Bytes;
use glommio::net::TcpListener;
use http_body_util::Full;
use hyper::body::Body as _;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Per-listener connection limits (`[http]`; defaults in `config::http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub write_timeout: Duration,
}

/// Largest request head (request line + headers); larger ones get 431.
/// hyper's smallest allowed read buffer.
pub const MAX_HEAD: usize = 8192;

/// Kernel send buffer per connection (the kernel doubles it): bounds what a
/// peer that never reads parks in kernel memory; the rest of a larger
/// answer waits in ours until it reads or `write_timeout` drops it.
const SEND_BUFFER: libc::c_int = 16 << 10;

/// What a listener answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `/metrics`, `/health`, `/debug/*` (`http.listen`).
    Metrics,
    /// Only `/health` (`http.health_listen`).
    Health,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Metrics => "metrics",
            Role::Health => "health",
        }
    }
}

/// Why a listener closed a connection before answering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// At the cap, every open connection already past its request head.
    Limit,
    /// At the cap, closed (oldest head still incomplete) to make room.
    Evicted,
    /// Request head not complete within `header_timeout`.
    HeaderTimeout,
    /// Answer not written within `write_timeout` (a peer that does not read).
    WriteTimeout,
    /// Request head over [`MAX_HEAD`] (answered 431) or a request body (413).
    TooLarge,
    /// Not an HTTP/1 request (answered 400 when possible).
    BadRequest,
}

impl Reject {
    pub const ALL: [Reject; 6] = [
        Reject::Limit,
        Reject::Evicted,
        Reject::HeaderTimeout,
        Reject::WriteTimeout,
        Reject::TooLarge,
        Reject::BadRequest,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Reject::Limit => "limit",
            Reject::Evicted => "evicted",
            Reject::HeaderTimeout => "header_timeout",
            Reject::WriteTimeout => "write_timeout",
            Reject::TooLarge => "too_large",
            Reject::BadRequest => "bad_request",
        }
    }
}

/// One listener's counters (written on the HTTP core, read by scrapes).
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub accepted: AtomicU64,
    pub open: AtomicU64,
    rejected: [AtomicU64; 6],
}

impl ListenerStats {
    pub fn rejected(&self, r: Reject) -> u64 {
        self.rejected[r as usize].load(Relaxed)
    }
    fn reject(&self, r: Reject) {
        self.rejected[r as usize].fetch_add(1, Relaxed);
    }
}

/// Counters of every listener, exported with `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct HttpStats {
    pub listeners: Vec<(Role, Arc<ListenerStats>)>,
}

impl HttpStats {
    /// Appends these series to a rendered scrape, before its `# EOF`.
    pub fn append_to(&self, text: &mut String) {
        let mut reg = prometheus_client::registry::Registry::with_prefix("marketprism");
        reg.register_collector(Box::new(self.clone()));
        let mut ours = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut ours, &reg);
        let ours = ours.strip_suffix("# EOF\n").unwrap_or(&ours);
        let at = text.rfind("# EOF\n").unwrap_or(text.len());
        text.insert_str(at, ours);
    }
}

impl prometheus_client::collector::Collector for HttpStats {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut m = enc.encode_descriptor(
            "http_connections_accepted",
            "Connections accepted by the HTTP listeners.",
            None,
            MetricType::Counter,
        )?;
        for (role, s) in &self.listeners {
            ConstCounter::new(s.accepted.load(Relaxed))
                .encode(m.encode_family(&[("listener", role.name())])?)?;
        }
        let mut m = enc.encode_descriptor(
            "http_connections_open",
            "Connections the HTTP listeners hold open now.",
            None,
            MetricType::Gauge,
        )?;
        for (role, s) in &self.listeners {
            ConstGauge::new(s.open.load(Relaxed) as i64)
                .encode(m.encode_family(&[("listener", role.name())])?)?;
        }
        let mut m = enc.encode_descriptor(
            "http_connections_rejected",
            "Connections the HTTP listeners closed before answering, by reason \
             (limit, evicted, header_timeout, write_timeout, too_large, bad_request).",
            None,
            MetricType::Counter,
        )?;
        for (role, s) in &self.listeners {
            for r in Reject::ALL {
                ConstCounter::new(s.rejected(r))
                    .encode(m.encode_family(&[("listener", role.name()), ("reason", r.name())])?)?;
            }
        }
        Ok(())
    }
}

/// One open connection, as its listener sees it.
struct Slot {
    accepted: Instant,
    /// When the request head was complete (the service was called).
    head_at: Cell<Option<Instant>>,
    evicted: Cell<bool>,
    waker: Cell<Option<Waker>>,
    /// Bumped on every change the watchdog must see.
    seq: Cell<u64>,
}

impl Slot {
    fn notify(&self) {
        self.seq.set(self.seq.get() + 1);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Resolves at the first change after it was created.
    async fn changed(&self) {
        let seen = self.seq.get();
        std::future::poll_fn(|cx| {
            if self.seq.get() != seen {
                Poll::Ready(())
            } else {
                self.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }
}

/// Ends with the reason once the connection must be closed.
async fn watchdog(slot: &Slot, limits: HttpLimits) -> Reject {
    loop {
        if slot.evicted.get() {
            return Reject::Evicted;
        }
        let (deadline, reason) = match slot.head_at.get() {
            None => (slot.accepted + limits.header_timeout, Reject::HeaderTimeout),
            Some(t) => (t + limits.write_timeout, Reject::WriteTimeout),
        };
        let now = Instant::now();
        if now >= deadline {
            return reason;
        }
        futures_lite::future::or(glommio::timer::sleep(deadline - now), slot.changed()).await;
    }
}

/// Everything a listener's connections share.
struct Shared {
    role: Role,
    limits: HttpLimits,
    exporter: Exporter,
    debug: Rc<DebugState>,
    http: HttpStats,
    stats: Arc<ListenerStats>,
    /// Open connections by accept order (oldest first).
    open: RefCell<BTreeMap<u64, Rc<Slot>>>,
    log_limit: RefCell<RateLimit>,
}

impl Shared {
    fn closed(&self, why: Reject, peer: Option<std::net::SocketAddr>) {
        self.stats.reject(why);
        let now = crate::sys::now_ns();
        if let Some(n) = self.log_limit.borrow_mut().check(now) {
            let peer = peer.map_or_else(|| "?".to_string(), |p| p.to_string());
            log::warn!(
                "http {} listener: closed a connection from {peer}: {} ({n} more since the last such line; \
                 see marketprism_http_connections_rejected_total)",
                self.role.name(),
                why.name()
            );
        }
    }

    /// Makes room for one more connection; false if there is none to make.
    fn make_room(&self) -> bool {
        let mut open = self.open.borrow_mut();
        if open.len() < self.limits.max_connections {
            return true;
        }
        let victim = open
            .iter()
            .find(|(_, s)| s.head_at.get().is_none())
            .map(|(id, _)| *id);
        match victim.and_then(|id| open.remove(&id)) {
            Some(slot) => {
                // Its task counts and logs the eviction when it wakes.
                slot.evicted.set(true);
                slot.notify();
                self.stats.open.store(open.len() as u64, Relaxed);
                true
            }
            None => false,
        }
    }
}

fn set_send_buffer(fd: std::os::fd::RawFd) {
    let v = SEND_BUFFER;
    // SAFETY: `fd` is an open socket; the option value is a c_int of the given size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Serves `role` on `listener` until the task is cancelled.
pub async fn serve(
    listener: TcpListener,
    role: Role,
    limits: HttpLimits,
    exporter: Exporter,
    debug: Rc<DebugState>,
    http: HttpStats,
    stats: Arc<ListenerStats>,
) {
    let shared = Rc::new(Shared {
        role,
        limits,
        exporter,
        debug,
        http,
        stats,
        open: RefCell::new(BTreeMap::new()),
        log_limit: RefCell::new(RateLimit::new(1_000_000_000)),
    });
    let mut accept_errors = RateLimit::new(1_000_000_000);
    let mut next_id = 0u64;
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors, say: back off instead of spinning.
                if let Some(n) = accept_errors.check(crate::sys::now_ns()) {
                    log::warn!("http {} accept failed: {e} ({n} more)", role.name());
                }
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        shared.stats.accepted.fetch_add(1, Relaxed);
        let peer = stream.peer_addr().ok();
        if !shared.make_room() {
            shared.closed(Reject::Limit, peer);
            continue;
        }
        use std::os::fd::AsRawFd as _;
        set_send_buffer(stream.as_raw_fd());
        let slot = Rc::new(Slot {
            accepted: Instant::now(),
            head_at: Cell::new(None),
            evicted: Cell::new(false),
            waker: Cell::new(None),
            seq: Cell::new(0),
        });
        let id = next_id;
        next_id += 1;
        {
            let mut open = shared.open.borrow_mut();
            open.insert(id, slot.clone());
            shared.stats.open.store(open.len() as u64, Relaxed);
        }
        let sh = shared.clone();
        glommio::spawn_local(async move {
            // The watchdog is polled first: an evicted connection is never served.
            let outcome =
                futures_lite::future::or(async { Err(watchdog(&slot, sh.limits).await) }, async {
                    Ok(serve_one(&sh, &slot, stream).await)
                })
                .await;
            {
                let mut open = sh.open.borrow_mut();
                open.remove(&id);
                sh.stats.open.store(open.len() as u64, Relaxed);
            }
            match outcome {
                Ok(Some(why)) | Err(why) => sh.closed(why, peer),
                Ok(None) => {}
            }
        })
        .detach();
        // Accepting a backlog never waits, so without a yield a flood would
        // evict every connection before its task read the head it sent.
        futures_lite::future::yield_now().await;
    }
}

/// Serves one request; `Some(reason)` if it was refused.
async fn serve_one(
    sh: &Rc<Shared>,
    slot: &Rc<Slot>,
    stream: glommio::net::TcpStream,
) -> Option<Reject> {
    let refused = Rc::new(Cell::new(None));
    let svc = {
        let (sh, slot, refused) = (sh.clone(), slot.clone(), refused.clone());
        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            slot.head_at.set(Some(Instant::now()));
            slot.notify();
            // GET and HEAD carry no body; one that comes with a body is not
            // read (the connection closes after the answer).
            let r = if req.body().size_hint().exact() != Some(0) {
                refused.set(Some(Reject::TooLarge));
                let mut r = Response::new(Full::new(Bytes::from_static(
                    b"{\"error\":\"request bodies are not accepted\"}",
                )));
                *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
                r
            } else {
                respond(&sh.exporter, &sh.debug, &sh.http, sh.role, &req)
            };
            async move { Ok::<_, Infallible>(r) }
        })
    };
    let r = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .max_buf_size(MAX_HEAD)
        .serve_connection(smol_hyper::rt::FuturesIo::new(stream), svc)
        .await;
    match r {
        Err(e) if e.is_parse_too_large() => Some(Reject::TooLarge),
        Err(e) if e.is_parse() => Some(Reject::BadRequest),
        Err(e) => {
            log::debug!("http connection ended: {e}");
            refused.get()
        }
        Ok(()) => refused.get(),
    }
}

/// Serves every listener (and samples `/debug/memory`'s history) until the
/// task is cancelled, which cancels them all.
pub async fn serve_all(
    listeners: Vec<(TcpListener, Role)>,
    limits: HttpLimits,
    exporter: Exporter,
) {
    let debug = Rc::new(DebugState::default());
    let http = HttpStats {
        listeners: listeners
            .iter()
            .map(|(_, role)| (*role, Arc::new(ListenerStats::default())))
            .collect(),
    };
    let (st, ex) = (debug.clone(), exporter.clone());
    let _sampler = glommio::spawn_local(async move {
        loop {
            st.sample(&ex);
            glommio::timer::sleep(super::http::RSS_EVERY).await;
        }
    });
    // Dropping these tasks (when this one is cancelled) stops the listeners.
    let tasks: Vec<_> = listeners
        .into_iter()
        .zip(http.listeners.clone())
        .map(|((l, role), (_, stats))| {
            glommio::spawn_local(serve(
                l,
                role,
                limits,
                exporter.clone(),
                debug.clone(),
                http.clone(),
                stats,
            ))
        })
        .collect();
    futures_lite::future::pending::<()>().await;
    drop(tasks);
}

/// The answer to `req` on a listener of `role`: the health listener answers
/// only `/health`.
fn respond(
    exporter: &Exporter,
    st: &DebugState,
    http: &HttpStats,
    role: Role,
    req: &Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let (code, ctype, body) = match (role, req.uri().path()) {
        (Role::Metrics, "/metrics") => {
            let mut text = render(exporter);
            http.append_to(&mut text);
            (StatusCode::OK, OPENMETRICS, text)
        }
        (Role::Metrics, "/debug/latency") => {
            (StatusCode::OK, "application/json", debug_latency(exporter))
        }
        (Role::Metrics, "/debug/memory") => (
            StatusCode::OK,
            "application/json",
            debug_memory(exporter, st),
        ),
        (Role::Metrics, "/health") => {
            let (c, b) = health(exporter);
            (c, "application/json", b)
        }
        (Role::Health, "/health") => {
            let (c, b) = health(exporter);
            (c, "application/json", in_marketprism_words(b))
        }
        (Role::Metrics, _) => (
            StatusCode::NOT_FOUND,
            "application/json",
            "{\"error\":\"not found; try /metrics, /health, /debug/latency or /debug/memory\"}"
                .to_string(),
        ),
        (Role::Health, _) => (
            StatusCode::NOT_FOUND,
            "application/json",
            "{\"error\":\"not found; this listener answers /health only\"}".to_string(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = code;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_series_go_before_eof() {
        let m = Arc::new(ListenerStats::default());
        m.accepted.store(7, Relaxed);
        m.open.store(2, Relaxed);
        m.reject(Reject::Evicted);
        m.reject(Reject::Evicted);
        m.reject(Reject::BadRequest);
        let h = Arc::new(ListenerStats::default());
        let stats = HttpStats {
            listeners: vec![(Role::Metrics, m), (Role::Health, h)],
        };
        let mut text = "# HELP x y.\n# TYPE x gauge\nx 1\n# EOF\n".to_string();
        stats.append_to(&mut text);
        let want = "# HELP x y.\n# TYPE x gauge\nx 1\n\
# HELP marketprism_http_connections_accepted Connections accepted by the HTTP listeners.\n\
# TYPE marketprism_http_connections_accepted counter\n\
marketprism_http_connections_accepted_total{listener=\"metrics\"} 7\n\
marketprism_http_connections_accepted_total{listener=\"health\"} 0\n\
# HELP marketprism_http_connections_open Connections the HTTP listeners hold open now.\n\
# TYPE marketprism_http_connections_open gauge\n\
marketprism_http_connections_open{listener=\"metrics\"} 2\n\
marketprism_http_connections_open{listener=\"health\"} 0\n";
        assert!(text.starts_with(want), "{text}");
        assert!(text.ends_with("\n# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
        for (line, n) in [
            ("{listener=\"metrics\",reason=\"evicted\"} ", 2),
            ("{listener=\"metrics\",reason=\"bad_request\"} ", 1),
            ("{listener=\"metrics\",reason=\"limit\"} ", 0),
            ("{listener=\"health\",reason=\"evicted\"} ", 0),
        ] {
            let l = format!("marketprism_http_connections_rejected_total{line}{n}\n");
            assert!(text.contains(&l), "{l}: {text}");
        }
        // 2 listeners × 6 reasons.
        assert_eq!(
            text.matches("marketprism_http_connections_rejected_total{")
                .count(),
            12
        );
    }
}
