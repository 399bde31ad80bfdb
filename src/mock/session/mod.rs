//! A WebSocket session after the 101: a reader half (client frames, control
//! messages, pongs, Binance's 5-messages-per-second limit) and a writer half
//! (trade streaming, malformed injection, server pings), run as one task via
//! `or` so whichever ends first ends the connection. They share per-connection
//! state through `Cell`/`RefCell` (one thread, never borrowed across awaits).
//!
//! Here: the routes, the connection state and the reader; `control` answers
//! the client's control messages, `writer` streams trades and pings.

use crate::notify::Notify;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::mock::binance::{self, EventTemplate};
use crate::mock::binance_futures;
use crate::mock::fault;
use crate::mock::feed::FeedSub;
use crate::mock::stats::{bump, Bump};
use crate::mock::venues::{self, Chan};
use crate::mock::ws::{self, Decoded};
use crate::mock::Shared;
use crate::model::VenueId;

mod control;
mod writer;

pub(crate) use control::handle_control;
use writer::writer;
#[cfg(test)]
pub(crate) use writer::{fill_trades, MalformedState};

/// Target size of one write: big enough to amortise syscalls and TLS records.
const CHUNK: usize = 64 * 1024;
/// Trades taken from one subscription before moving to the next (fairness).
const PER_SUB_BURST: usize = 64;
/// Largest client message accepted.
const MAX_CLIENT_PAYLOAD: usize = 64 * 1024;
/// Binance: more than this many incoming messages per second closes the connection.
const MAX_MSGS_PER_SEC: usize = 5;

/// Which Binance endpoint a session is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Spot,
    /// USDⓈ-M `/public` (book data).
    FuturesPublic,
    /// USDⓈ-M `/market` (everything else).
    FuturesMarket,
}

impl Route {
    pub fn venue(self) -> VenueId {
        match self {
            Route::Spot => VenueId::BinanceSpot,
            _ => VenueId::BinanceDerivatives,
        }
    }
}

/// A stream name resolved on a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StreamRef {
    /// Spot `<sym>@trade` (the benchmarked hot path).
    Trade(usize),
    /// Any other stream: channel (None = diff depth), feed index, and
    /// whether it is on the wrong route (accepted, never fed).
    Feed(Option<Chan>, usize, bool),
}

/// Resolves a stream name as the route's venue spells it.
pub(crate) fn parse_stream(shared: &Shared, route: Route, name: &str) -> Option<StreamRef> {
    match route {
        Route::Spot => {
            if let Some(i) = binance::stream_symbol_index(&shared.opts.symbols, name) {
                return Some(StreamRef::Trade(i));
            }
            let (sym, rest) = name.split_once('@')?;
            if sym.is_empty() || sym.bytes().any(|b| b.is_ascii_uppercase()) {
                return None;
            }
            let i = shared
                .opts
                .symbols
                .iter()
                .position(|s| s.symbol.eq_ignore_ascii_case(sym))?;
            match rest {
                "depth@100ms" | "depth" => Some(StreamRef::Feed(None, i, false)),
                "bookTicker" => Some(StreamRef::Feed(Some(Chan::BookTicker), i, false)),
                _ => None,
            }
        }
        Route::FuturesPublic | Route::FuturesMarket => {
            let (c, i) = binance_futures::parse_stream(name)?;
            let wrong = binance_futures::is_public(c) != (route == Route::FuturesPublic);
            Some(StreamRef::Feed(c, i, wrong))
        }
    }
}

/// What the router decided for a WebSocket request.
pub(crate) struct Upgrade {
    /// The 101 response to send.
    pub response: Vec<u8>,
    /// `/stream` (wrapped events) vs `/ws` (bare events).
    pub combined: bool,
    /// Symbol indices subscribed through the URL.
    pub streams: Vec<usize>,
    /// Other streams named in the URL.
    pub extra: Vec<String>,
    pub route: Route,
}

/// One subscribed stream and the next trade id it will receive.
pub(crate) struct Sub {
    pub tpl: EventTemplate,
    pub next_id: u64,
}

/// Server ping bookkeeping.
struct PingState {
    /// Payload (as a number) of the last ping sent; 0 = none yet.
    counter: u64,
    next_ping_at: Instant,
    /// Pings sent and not yet answered, oldest first (bounded).
    outstanding: VecDeque<u64>,
    /// When the oldest still-unanswered ping was sent.
    unanswered_since: Option<Instant>,
    /// Send time of each outstanding ping, parallel to `outstanding`.
    sent_at: VecDeque<Instant>,
}

/// More outstanding pings than this are forgotten (oldest first); the pong
/// timeout still runs from the oldest one.
const MAX_OUTSTANDING_PINGS: usize = 256;

impl PingState {
    /// Records a ping sent now; returns its payload number.
    fn sent(&mut self, now: Instant) -> u64 {
        self.counter += 1;
        self.outstanding.push_back(self.counter);
        self.sent_at.push_back(now);
        if self.outstanding.len() > MAX_OUTSTANDING_PINGS {
            self.outstanding.pop_front();
            self.sent_at.pop_front();
        }
        self.unanswered_since.get_or_insert(now);
        self.counter
    }

    /// A pong with this payload arrived at `now`: the round trip of the ping
    /// it answers, if outstanding (a late answer to an older ping counts: a
    /// busy client may lag several pings behind). That ping and all older
    /// ones are settled.
    fn answer(&mut self, payload: &[u8], now: Instant) -> Option<Duration> {
        let n = ascii_u64(payload)?;
        let pos = self.outstanding.iter().position(|&c| c == n)?;
        let rtt = now.saturating_duration_since(self.sent_at[pos]);
        self.outstanding.drain(..=pos);
        self.sent_at.drain(..=pos);
        self.unanswered_since = self.sent_at.front().copied();
        Some(rtt)
    }
}

/// Per-connection state shared by the reader and writer halves.
pub(crate) struct Conn {
    combined: Cell<bool>,
    pub(crate) subs: RefCell<Vec<Sub>>,
    /// Streams other than spot trades (depth, bookTicker, futures streams).
    pub(crate) extra: RefCell<Vec<FeedSub>>,
    /// Stream names ever subscribed on this connection (resubscription stats).
    seen: RefCell<std::collections::HashSet<String>>,
    route: Route,
    ping_every: Duration,
    pong_timeout: Duration,
    max_msgs_per_sec: usize,
    /// Frames queued by the reader (control replies, pongs).
    out: RefCell<Vec<u8>>,
    /// Close frame payload to send, after which the session ends.
    closing: RefCell<Option<Vec<u8>>>,
    ping: RefCell<PingState>,
    /// Wakes the writer when the reader queued something for it.
    notify: Notify,
    /// The writer stalled for good (`stall_after`).
    stalled: Cell<bool>,
}

impl Conn {
    #[cfg(test)]
    pub(crate) fn new(shared: &Shared, combined: bool, streams: &[usize]) -> Conn {
        Self::with_route(shared, combined, streams, Route::Spot)
    }

    pub(crate) fn with_route(
        shared: &Shared,
        combined: bool,
        streams: &[usize],
        route: Route,
    ) -> Conn {
        let (ping_ms, pong_ms, max_msgs) = match route {
            Route::Spot => (
                shared.opts.ping_interval_ms,
                shared.opts.pong_timeout_ms,
                MAX_MSGS_PER_SEC,
            ),
            _ => (
                shared.opts.futures_ping_interval_ms,
                shared.opts.futures_pong_timeout_ms,
                10,
            ),
        };
        let conn = Conn {
            combined: Cell::new(combined),
            subs: RefCell::new(Vec::new()),
            extra: RefCell::new(Vec::new()),
            seen: RefCell::new(std::collections::HashSet::new()),
            route,
            ping_every: Duration::from_millis(ping_ms),
            pong_timeout: Duration::from_millis(pong_ms),
            max_msgs_per_sec: max_msgs,
            out: RefCell::new(Vec::new()),
            closing: RefCell::new(None),
            ping: RefCell::new(PingState {
                counter: 0,
                next_ping_at: after(Instant::now(), Duration::from_millis(ping_ms)),
                outstanding: VecDeque::new(),
                unanswered_since: None,
                sent_at: VecDeque::new(),
            }),
            notify: Notify::default(),
            stalled: Cell::new(false),
        };
        for &i in streams {
            conn.subscribe(shared, i);
        }
        conn
    }

    /// Counts a subscription in the per-venue stats.
    fn count_sub(&self, shared: &Shared, name: &str, symbol: &str) {
        let again = !self.seen.borrow_mut().insert(name.to_string());
        shared
            .venue_stats
            .with(self.route.venue().config_key(), |c| {
                bump(&mut c.subscriptions, symbol);
                if again {
                    bump(&mut c.resubscriptions, symbol);
                }
            });
    }

    /// Subscribes a resolved stream (no-op when already subscribed).
    fn subscribe_ref(&self, shared: &Shared, name: &str, r: StreamRef) {
        match r {
            StreamRef::Trade(i) => self.subscribe(shared, i),
            StreamRef::Feed(chan, idx, wrong) => {
                if self.extra.borrow().iter().any(|s| s.name == name) {
                    return;
                }
                let venue = self.route.venue();
                let symbol = venues::symbols(&shared.opts, venue)
                    .into_iter()
                    .find(|(i, _)| *i == idx)
                    .map(|(_, s)| s)
                    .unwrap_or_default();
                self.count_sub(shared, name, &symbol);
                let mut sub = FeedSub::new(shared, venue, chan, idx, name.to_string(), symbol);
                sub.silent = wrong;
                self.extra.borrow_mut().push(sub);
            }
        }
    }

    /// Adds a subscription starting after what the market has produced now.
    fn subscribe(&self, shared: &Shared, idx: usize) {
        let mut subs = self.subs.borrow_mut();
        if subs.iter().any(|s| s.tpl.symbol_index == idx) {
            return;
        }
        let Some(sym) = shared.opts.symbols.get(idx) else {
            return;
        };
        self.count_sub(shared, &binance::trade_stream_name(sym), &sym.symbol);
        subs.push(Sub {
            tpl: EventTemplate::new(idx, sym, self.combined.get()),
            next_id: shared.market.produced(idx).saturating_add(1),
        });
    }

    /// Drops `symbol`'s subscriptions server-side without a word (the
    /// `mute` fault): trade streams stop, other streams stay listed but
    /// silent until unsubscribed and subscribed again.
    fn mute(&self, shared: &Shared, symbol: &str) {
        let mut n = 0;
        self.subs.borrow_mut().retain(|s| {
            let hit = shared
                .opts
                .symbols
                .get(s.tpl.symbol_index)
                .is_some_and(|x| x.symbol == symbol);
            n += u64::from(hit);
            !hit
        });
        for s in self.extra.borrow_mut().iter_mut() {
            if s.symbol == symbol && !s.silent {
                s.silent = true;
                n += 1;
            }
        }
        shared.faults.stats.muted.add(n);
    }

    fn close_with(&self, code: u16, reason: &str) {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
        *self.closing.borrow_mut() = Some(p);
        self.notify.notify();
    }

    fn queue_text(&self, text: &str) {
        ws::write_frame(&mut self.out.borrow_mut(), ws::OP_TEXT, text.as_bytes());
        self.notify.notify();
    }
}

/// Decrements `connections_open` however the session ends.
struct OpenGuard(Rc<Shared>, &'static str);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let c = &self.0.stats.connections_open;
        c.set(c.get().saturating_sub(1));
        self.0.venue_stats.with(self.1, |c| {
            c.connections_open = c.connections_open.saturating_sub(1)
        });
    }
}

/// Runs the session until either side ends it. `leftover`: bytes read after
/// the request head.
pub(crate) async fn run<S>(shared: Rc<Shared>, io: S, leftover: Vec<u8>, up: Upgrade)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    shared.stats.connections_total.add(1);
    shared.stats.connections_open.add(1);
    let vkey = up.route.venue().config_key();
    shared.venue_stats.with(vkey, |c| {
        c.connections_total += 1;
        c.connections_open += 1;
    });
    let _guard = OpenGuard(shared.clone(), vkey);
    let conn = Conn::with_route(&shared, up.combined, &up.streams, up.route);
    for name in &up.extra {
        if let Some(r) = parse_stream(&shared, up.route, name) {
            conn.subscribe_ref(&shared, name, r);
        }
    }
    let (r, w) = io.split();
    futures_lite::future::or(
        reader(&shared, &conn, r, leftover),
        writer(&shared, &conn, w),
    )
    .await;
}

/// Reads client frames until EOF or until it asked the writer to close (it
/// then parks, leaving the writer to send the close frame and finish).
async fn reader<R: AsyncRead + Unpin>(shared: &Shared, conn: &Conn, mut r: R, mut buf: Vec<u8>) {
    let mut chunk = vec![0u8; 16 * 1024];
    let mut recent: VecDeque<Instant> = VecDeque::with_capacity(MAX_MSGS_PER_SEC + 1);
    loop {
        loop {
            match ws::decode_frame(&buf, true, MAX_CLIENT_PAYLOAD) {
                Decoded::Incomplete => break,
                Decoded::Error(code, why) => {
                    log::debug!("mock-exchange: closing, client protocol error: {why}");
                    conn.close_with(code, why);
                    return fault::park(&mut r, &conn.stalled).await;
                }
                Decoded::Frame(f, used) => {
                    buf.drain(..used);
                    if !handle_frame(shared, conn, &mut recent, f) {
                        return fault::park(&mut r, &conn.stalled).await;
                    }
                }
            }
        }
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Handles one client frame; `false` once the session is closing.
fn handle_frame(
    shared: &Shared,
    conn: &Conn,
    recent: &mut VecDeque<Instant>,
    f: ws::Frame,
) -> bool {
    // A pong answering one of the mock's own pings is exempt: with short test
    // ping intervals (e.g. 200 ms = 5 pongs/s) counting it would make a
    // well-behaved client trip the limit on timing jitter alone.
    let rtt = (f.opcode == ws::OP_PONG)
        .then(|| conn.ping.borrow_mut().answer(&f.payload, Instant::now()))
        .flatten();
    let solicited_pong = rtt.is_some();
    if !solicited_pong
        && matches!(
            f.opcode,
            ws::OP_TEXT | ws::OP_BINARY | ws::OP_PING | ws::OP_PONG | ws::OP_CONT
        )
    {
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            recent.pop_front();
        }
        recent.push_back(now);
        if recent.len() > conn.max_msgs_per_sec {
            log::warn!(
                "mock-exchange: client sent more than {} messages in 1 s, closing",
                conn.max_msgs_per_sec
            );
            conn.close_with(ws::CLOSE_POLICY, "Too many messages");
            return false;
        }
    }
    match f.opcode {
        ws::OP_TEXT if f.fin => match std::str::from_utf8(&f.payload) {
            Ok(text) => {
                let reply = handle_control(shared, conn, text);
                conn.queue_text(&reply);
                true
            }
            Err(_) => {
                conn.close_with(ws::CLOSE_INVALID_DATA, "invalid UTF-8");
                false
            }
        },
        ws::OP_TEXT | ws::OP_CONT => {
            conn.close_with(ws::CLOSE_UNSUPPORTED, "fragmented messages not supported");
            false
        }
        ws::OP_BINARY => {
            conn.close_with(ws::CLOSE_UNSUPPORTED, "binary messages not supported");
            false
        }
        ws::OP_PING => {
            ws::write_frame(&mut conn.out.borrow_mut(), ws::OP_PONG, &f.payload);
            conn.notify.notify();
            true
        }
        ws::OP_PONG => {
            if let Some(rtt) = rtt {
                shared.stats.pongs_received.add(1);
                shared.stats.pong_rtt.record(rtt);
                shared
                    .venue_stats
                    .with(conn.route.venue().config_key(), |c| c.pongs_received += 1);
            } else {
                shared.stats.pongs_mismatched.add(1);
            }
            true
        }
        ws::OP_CLOSE => {
            // Echo the status code (not the reason), as RFC 6455 5.5.1 suggests.
            let echo = if f.payload.len() >= 2 {
                f.payload[..2].to_vec()
            } else {
                Vec::new()
            };
            *conn.closing.borrow_mut() = Some(echo);
            conn.notify.notify();
            false
        }
        _ => {
            conn.close_with(ws::CLOSE_PROTOCOL, "unexpected opcode");
            false
        }
    }
}

/// `t + d`, saturating at a far-future instant (huge option values must not panic).
fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(10 * 365 * 86_400)))
        .unwrap_or(t)
}

fn ascii_u64(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::MockOptions;
    use sonic_rs::JsonValueTrait;

    fn shared(malformed_every: u64, trades: u64) -> Shared {
        Shared::new(MockOptions {
            symbols: binance::default_symbols()[..3].to_vec(),
            time_base_ms: 1_000,
            malformed_every,
            trades_per_symbol: trades,
            ..MockOptions::default()
        })
    }

    #[test]
    fn control_messages() {
        let s = shared(0, 0);
        let c = Conn::new(&s, true, &[]);
        let r = handle_control(
            &s,
            &c,
            r#"{"method":"SUBSCRIBE","params":["btcusdt@trade","bnbusdt@trade"],"id":1}"#,
        );
        assert_eq!(r, r#"{"result":null,"id":1}"#);
        assert_eq!(s.stats.subscribe_requests.get(), 1);
        let r = handle_control(&s, &c, r#"{"method":"LIST_SUBSCRIPTIONS","id":"x"}"#);
        assert_eq!(
            r,
            r#"{"result":["btcusdt@trade","bnbusdt@trade"],"id":"x"}"#
        );
        // Duplicate subscribe is a no-op.
        handle_control(
            &s,
            &c,
            r#"{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":2}"#,
        );
        assert_eq!(c.subs.borrow().len(), 2);
        let r = handle_control(
            &s,
            &c,
            r#"{"method":"UNSUBSCRIBE","params":["btcusdt@trade"],"id":3}"#,
        );
        assert_eq!(r, r#"{"result":null,"id":3}"#);
        let r = handle_control(&s, &c, r#"{"method":"LIST_SUBSCRIPTIONS","id":4}"#);
        assert_eq!(r, r#"{"result":["bnbusdt@trade"],"id":4}"#);
        assert_eq!(s.stats.control_rejected.get(), 0);

        let r = handle_control(
            &s,
            &c,
            r#"{"method":"SUBSCRIBE","params":["ethusdt@trade","nope@trade"],"id":5}"#,
        );
        assert_eq!(
            r,
            r#"{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":5}"#
        );
        assert_eq!(
            c.subs.borrow().len(),
            1,
            "rejected request subscribes nothing"
        );
        let r = handle_control(&s, &c, "not json");
        assert_eq!(
            r,
            r#"{"code":3,"msg":"Invalid JSON: expected value at line 1 column 1","id":null}"#
        );
        let r = handle_control(&s, &c, r#"{"method":"FROB","id":6}"#);
        assert!(r.starts_with(r#"{"error":{"code":2,"#) && r.ends_with(r#""id":6}"#));
        let r = handle_control(
            &s,
            &c,
            r#"{"method":"SUBSCRIBE","params":"btcusdt@trade","id":7}"#,
        );
        assert!(r.contains("\"error\""));
        assert_eq!(s.stats.control_rejected.get(), 4);
        assert_eq!(s.stats.subscribe_requests.get(), 4);

        let r = handle_control(
            &s,
            &c,
            r#"{"method":"GET_PROPERTY","params":["combined"],"id":8}"#,
        );
        assert_eq!(r, r#"{"result":true,"id":8}"#);
        let r = handle_control(
            &s,
            &c,
            r#"{"method":"SET_PROPERTY","params":["combined",false],"id":9}"#,
        );
        assert_eq!(r, r#"{"result":null,"id":9}"#);
        assert!(!c.subs.borrow()[0].tpl.combined());
    }

    #[test]
    fn subscription_starts_after_produced() {
        let s = shared(0, 0);
        let c1 = Conn::new(&s, true, &[0]);
        assert_eq!(c1.subs.borrow()[0].next_id, 1);
        let mut buf = Vec::new();
        fill_trades(&s, &c1, &mut buf, &mut MalformedState::default());
        assert!(buf.len() >= CHUNK);
        let sent = s.stats.trades_sent_total.get();
        assert_eq!(c1.subs.borrow()[0].next_id, sent + 1);
        // A later subscriber gets trades from "now" on.
        let c2 = Conn::new(&s, true, &[0]);
        assert_eq!(c2.subs.borrow()[0].next_id, s.market.produced(0) + 1);
        assert!(s.market.produced(0) >= sent);
    }

    fn frames(mut b: &[u8]) -> Vec<ws::Frame> {
        let mut v = Vec::new();
        while let Decoded::Frame(f, used) = ws::decode_frame(b, false, usize::MAX) {
            v.push(f);
            b = &b[used..];
        }
        assert!(b.is_empty());
        v
    }

    #[test]
    fn fill_respects_cap_and_injects_malformed_cycle() {
        let s = shared(2, 13);
        let c = Conn::new(&s, true, &[1]);
        let mut buf = Vec::new();
        let mut mal = MalformedState::default();
        fill_trades(&s, &c, &mut buf, &mut mal);
        let fs = frames(&buf);
        // 13 trades, a malformed one after every 2nd: 6 malformed.
        assert_eq!(fs.len(), 19);
        let mut ids = Vec::new();
        let mut kinds = Vec::new();
        for f in &fs {
            if f.opcode == ws::OP_BINARY {
                kinds.push("binary_frame");
                continue;
            }
            let t = std::str::from_utf8(&f.payload).unwrap();
            if t.contains("@weird") {
                kinds.push("unknown_event");
            } else if t.contains("12.3.4") {
                kinds.push("invalid_number");
            } else if sonic_rs::from_str::<sonic_rs::Value>(t).is_err() {
                kinds.push("truncated_json");
            } else if t.contains("\"p\":\"") {
                let v: sonic_rs::Value = sonic_rs::from_str(t).unwrap();
                let d = v.get("data").unwrap();
                ids.push(d.get("t").unwrap().as_u64().unwrap());
                let want = binance::trade(1, *ids.last().unwrap(), 1_000);
                assert_eq!(d.get("p").unwrap().as_str(), Some(want.price.as_str()));
            } else {
                kinds.push("wrong_type");
            }
        }
        assert_eq!(ids, (1..=13).collect::<Vec<_>>());
        assert_eq!(
            kinds,
            [
                "truncated_json",
                "wrong_type",
                "unknown_event",
                "invalid_number",
                "binary_frame",
                "truncated_json"
            ]
        );
        assert_eq!(s.stats.malformed_sent.get(), 6);
        assert_eq!(s.stats.trades_sent_total.get(), 13);
        // Nothing more once the cap is reached.
        buf.clear();
        fill_trades(&s, &c, &mut buf, &mut mal);
        assert!(buf.is_empty());
    }

    #[test]
    fn rate_limit_closes_after_five_messages() {
        let s = shared(0, 0);
        let c = Conn::new(&s, true, &[]);
        let mut recent = VecDeque::new();
        let ping = || ws::Frame {
            fin: true,
            opcode: ws::OP_PING,
            payload: b"x".to_vec(),
        };
        for _ in 0..5 {
            assert!(handle_frame(&s, &c, &mut recent, ping()));
        }
        assert!(c.closing.borrow().is_none());
        assert!(!handle_frame(&s, &c, &mut recent, ping()));
        let close = c.closing.borrow().clone().unwrap();
        assert_eq!(&close[..2], &ws::CLOSE_POLICY.to_be_bytes());

        // Pongs count too, except those answering the mock's latest ping.
        let c = Conn::new(&s, true, &[]);
        let mut recent = VecDeque::new();
        let pong = |p: &[u8]| ws::Frame {
            fin: true,
            opcode: ws::OP_PONG,
            payload: p.to_vec(),
        };
        for i in 1..=20u64 {
            c.ping.borrow_mut().sent(Instant::now());
            let payload = i.to_string();
            assert!(handle_frame(&s, &c, &mut recent, pong(payload.as_bytes())));
        }
        for _ in 0..5 {
            assert!(handle_frame(&s, &c, &mut recent, pong(b"6")));
        }
        assert!(!handle_frame(&s, &c, &mut recent, pong(b"x")));
    }

    #[test]
    fn pong_matching() {
        let s = shared(0, 0);
        let c = Conn::new(&s, true, &[]);
        let mut recent = VecDeque::new();
        let pong = |p: &[u8]| ws::Frame {
            fin: true,
            opcode: ws::OP_PONG,
            payload: p.to_vec(),
        };
        handle_frame(&s, &c, &mut recent, pong(b"1")); // before any ping: mismatched
        let t0 = Instant::now();
        for k in 0..4u64 {
            c.ping.borrow_mut().sent(t0 + Duration::from_millis(k));
        }
        assert_eq!(c.ping.borrow().unanswered_since, Some(t0));
        // A late answer to ping 2 settles pings 1 and 2.
        handle_frame(&s, &c, &mut recent, pong(b"2"));
        assert_eq!(
            c.ping.borrow().unanswered_since,
            Some(t0 + Duration::from_millis(2))
        );
        handle_frame(&s, &c, &mut recent, pong(b"1")); // already settled
        handle_frame(&s, &c, &mut recent, pong(b"9")); // never sent
        handle_frame(&s, &c, &mut recent, pong(b"4"));
        assert!(c.ping.borrow().unanswered_since.is_none());
        assert!(c.ping.borrow().outstanding.is_empty());
        assert_eq!(s.stats.pongs_received.get(), 2);
        assert_eq!(s.stats.pongs_mismatched.get(), 3);
        // Each answered pong is one round trip in the histogram.
        assert!(s
            .stats
            .to_json(&[])
            .contains("\"pong_rtt_us\":{\"count\":2,"));
    }

    #[test]
    fn pong_rtt() {
        let s = shared(0, 0);
        let c = Conn::new(&s, true, &[]);
        let mut p = c.ping.borrow_mut();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        for k in 0..3u64 {
            p.sent(t0 + ms(10 * k)); // pings 1, 2, 3 at 0, 10, 20 ms
        }
        // The round trip runs from the matched ping's send time.
        assert_eq!(p.answer(b"2", t0 + ms(13)), Some(ms(3)));
        assert_eq!(p.answer(b"1", t0 + ms(14)), None); // settled with 2
        assert_eq!(
            p.answer(b"3", t0 + Duration::from_micros(20_250)),
            Some(Duration::from_micros(250))
        );
        assert_eq!(p.answer(b"3", t0 + ms(30)), None);
    }
}
