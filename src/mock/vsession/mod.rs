//! WebSocket sessions of the JSON-subscription venues (OKX `/ws/v5/public`,
//! Bybit `/v5/public/{spot,linear}`, Deribit `/ws/api/v2`): a reader half
//! (client frames → the venue's control replies) and a writer half (feed
//! frames, OKX idle close, Deribit heartbeats), joined with `or` as in the
//! Binance session. Control handling is synchronous and never panics on
//! client input: a bad request gets the venue's documented error.
//!
//! Here: the connection state, the reader and the dispatch of client text;
//! `control` holds each venue's control replies, `writer` the writer half.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::mock::bybit::Cat;
use crate::mock::fault::{self, Flavor};
use crate::mock::feed::FeedSub;
use crate::mock::stats::{bump, Bump};
use crate::mock::ws::{self, Decoded};
use crate::mock::Shared;
use crate::notify::Notify;

mod control;
mod writer;

use control::{bybit_control, deribit_control, okx_control};
use writer::writer;

const CHUNK: usize = 64 * 1024;
const MAX_CLIENT_PAYLOAD: usize = 64 * 1024;

/// Which protocol a session speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    Okx,
    Bybit(Cat),
    Deribit,
}

impl Proto {
    /// The protocol of a WebSocket upgrade path (trailing `/` ignored);
    /// `None`: a Binance stream path or unknown.
    pub fn of_path(path: &str) -> Option<Proto> {
        match path.trim_end_matches('/') {
            "/ws/v5/public" => Some(Proto::Okx),
            "/ws/api/v2" => Some(Proto::Deribit),
            "/v5/public/spot" => Some(Proto::Bybit(Cat::Spot)),
            "/v5/public/linear" => Some(Proto::Bybit(Cat::Linear)),
            _ => None,
        }
    }

    /// Its class of connection faults (`fault::SLOTS`).
    pub fn fault_slot(self) -> usize {
        match self {
            Proto::Okx => fault::SLOT_OKX,
            Proto::Bybit(Cat::Spot) => fault::SLOT_BYBIT_SPOT,
            Proto::Bybit(Cat::Linear) => fault::SLOT_BYBIT_LINEAR,
            Proto::Deribit => fault::SLOT_DERIBIT,
        }
    }

    /// How faults speak on a connection of this protocol (its close notice).
    pub fn flavor(self, conn_id: &str) -> Flavor<'_> {
        match self {
            Proto::Okx => Flavor::Okx { conn_id },
            Proto::Bybit(_) => Flavor::Bybit,
            Proto::Deribit => Flavor::Deribit,
        }
    }

    /// Stats key of connection-level counters.
    pub fn stats_key(self) -> &'static str {
        match self {
            Proto::Okx => "okx",
            Proto::Bybit(Cat::Spot) => "bybit_spot",
            Proto::Bybit(Cat::Linear) => "bybit_linear",
            Proto::Deribit => "deribit_derivatives",
        }
    }
}

/// Per-connection state shared by both halves.
pub(crate) struct VConn {
    pub proto: Proto,
    pub conn_id: String,
    pub subs: RefCell<Vec<FeedSub>>,
    /// Names subscribed at some point on this connection.
    seen: RefCell<HashSet<String>>,
    out: RefCell<Vec<u8>>,
    closing: RefCell<Option<Vec<u8>>>,
    notify: Notify,
    last_activity: Cell<Instant>,
    hb_interval: Cell<Option<Duration>>,
    hb_next: Cell<Instant>,
    /// A `test_request` was sent and not yet answered with `public/test`.
    hb_pending: Cell<bool>,
    /// The writer stalled for good (`stall_after`).
    stalled: Cell<bool>,
}

impl VConn {
    pub fn new(shared: &Shared, proto: Proto) -> VConn {
        let k = shared.conn_seq.get() + 1;
        shared.conn_seq.set(k);
        let now = Instant::now();
        VConn {
            proto,
            conn_id: format!("{:08x}-mock-{k}", super::book::mix(k) as u32),
            subs: RefCell::new(Vec::new()),
            seen: RefCell::new(HashSet::new()),
            out: RefCell::new(Vec::new()),
            closing: RefCell::new(None),
            notify: Notify::default(),
            last_activity: Cell::new(now),
            hb_interval: Cell::new(None),
            hb_next: Cell::new(now),
            hb_pending: Cell::new(false),
            stalled: Cell::new(false),
        }
    }

    fn queue_text(&self, text: &str) {
        ws::write_frame(&mut self.out.borrow_mut(), ws::OP_TEXT, text.as_bytes());
        self.notify.notify();
    }

    fn close_with(&self, code: u16, reason: &str) {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
        *self.closing.borrow_mut() = Some(p);
        self.notify.notify();
    }

    /// Adds a subscription unless the name is already subscribed; `false`
    /// when it was.
    fn add(&self, shared: &Shared, sub: FeedSub) -> bool {
        if self.subs.borrow().iter().any(|s| s.name == sub.name) {
            return false;
        }
        let again = !self.seen.borrow_mut().insert(sub.name.clone());
        shared.venue_stats.with(sub.venue.config_key(), |c| {
            bump(&mut c.subscriptions, &sub.symbol);
            if again {
                bump(&mut c.resubscriptions, &sub.symbol);
            }
        });
        self.subs.borrow_mut().push(sub);
        true
    }

    /// Removes a subscription by name; `false` if absent.
    fn remove(&self, shared: &Shared, name: &str) -> bool {
        let mut subs = self.subs.borrow_mut();
        let Some(pos) = subs.iter().position(|s| s.name == name) else {
            return false;
        };
        let s = subs.remove(pos);
        shared.venue_stats.with(s.venue.config_key(), |c| {
            bump(&mut c.unsubscriptions, &s.symbol)
        });
        true
    }

    /// Silences `symbol`'s subscriptions server-side (the `mute` fault):
    /// still listed, never fed again until unsubscribed and resubscribed.
    fn mute(&self, shared: &Shared, symbol: &str) {
        for s in self.subs.borrow_mut().iter_mut() {
            if s.symbol == symbol && !s.silent {
                s.silent = true;
                shared.faults.stats.muted.add(1);
            }
        }
    }

    fn reject(&self, shared: &Shared) {
        shared
            .venue_stats
            .with(self.proto.stats_key(), |c| c.rejected += 1);
    }
}

/// Decrements the open-connection counter however the session ends.
struct OpenGuard(Rc<Shared>, &'static str);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.venue_stats.with(self.1, |c| {
            c.connections_open = c.connections_open.saturating_sub(1)
        });
    }
}

/// Runs a session until either side ends it.
pub(crate) async fn run<S>(shared: Rc<Shared>, io: S, leftover: Vec<u8>, proto: Proto)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let key = proto.stats_key();
    shared.venue_stats.with(key, |c| {
        c.connections_total += 1;
        c.connections_open += 1;
    });
    let _guard = OpenGuard(shared.clone(), key);
    let conn = VConn::new(&shared, proto);
    let (r, w) = io.split();
    futures_lite::future::or(
        reader(&shared, &conn, r, leftover),
        writer(&shared, &conn, w),
    )
    .await;
}

async fn reader<R: AsyncRead + Unpin>(shared: &Shared, conn: &VConn, mut r: R, mut buf: Vec<u8>) {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        loop {
            match ws::decode_frame(&buf, true, MAX_CLIENT_PAYLOAD) {
                Decoded::Incomplete => break,
                Decoded::Error(code, why) => {
                    conn.close_with(code, why);
                    return fault::park(&mut r, &conn.stalled).await;
                }
                Decoded::Frame(f, used) => {
                    buf.drain(..used);
                    if !handle_frame(shared, conn, f) {
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
pub(crate) fn handle_frame(shared: &Shared, conn: &VConn, f: ws::Frame) -> bool {
    conn.last_activity.set(Instant::now());
    match f.opcode {
        ws::OP_TEXT if f.fin => match std::str::from_utf8(&f.payload) {
            Ok(text) => {
                for reply in handle_text(shared, conn, text) {
                    conn.queue_text(&reply);
                }
                true
            }
            Err(_) => {
                conn.close_with(ws::CLOSE_INVALID_DATA, "invalid UTF-8");
                false
            }
        },
        ws::OP_PING => {
            shared
                .venue_stats
                .with(conn.proto.stats_key(), |c| c.pings_received += 1);
            ws::write_frame(&mut conn.out.borrow_mut(), ws::OP_PONG, &f.payload);
            conn.notify.notify();
            true
        }
        ws::OP_PONG => true,
        ws::OP_CLOSE => {
            let echo = if f.payload.len() >= 2 {
                f.payload[..2].to_vec()
            } else {
                Vec::new()
            };
            *conn.closing.borrow_mut() = Some(echo);
            conn.notify.notify();
            false
        }
        ws::OP_BINARY => {
            conn.close_with(ws::CLOSE_UNSUPPORTED, "binary messages not supported");
            false
        }
        _ => {
            conn.close_with(ws::CLOSE_UNSUPPORTED, "fragmented messages not supported");
            false
        }
    }
}

/// The replies to one client text message, applying it to the connection.
pub(crate) fn handle_text(shared: &Shared, conn: &VConn, text: &str) -> Vec<String> {
    match conn.proto {
        Proto::Okx => okx_control(shared, conn, text),
        Proto::Bybit(cat) => bybit_control(shared, conn, cat, text),
        Proto::Deribit => deribit_control(shared, conn, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::{bybit, feed, okx, MockOptions};
    use crate::model::VenueId;
    use sonic_rs::{JsonContainerTrait, JsonValueTrait};

    fn shared() -> Shared {
        Shared::new(MockOptions {
            time_base_ms: 1_000,
            book_rate: 0,
            event_rate: 0,
            events_per_stream: 5,
            book_updates: 20,
            ..MockOptions::default()
        })
    }

    fn frames(mut b: &[u8]) -> Vec<String> {
        let mut v = Vec::new();
        while let Decoded::Frame(f, used) = ws::decode_frame(b, false, usize::MAX) {
            v.push(String::from_utf8(f.payload).unwrap());
            b = &b[used..];
        }
        v
    }

    fn drain(s: &Shared, c: &VConn) -> Vec<String> {
        let mut buf = Vec::new();
        let mut scratch = String::new();
        feed::fill(
            s,
            &mut c.subs.borrow_mut(),
            false,
            &mut buf,
            &mut scratch,
            usize::MAX,
        );
        frames(&buf)
    }

    #[test]
    fn okx_subscribe_ack_error_ping_and_stream() {
        let s = shared();
        let c = VConn::new(&s, Proto::Okx);
        assert_eq!(handle_text(&s, &c, "ping"), vec!["pong"]);
        let r = handle_text(
            &s,
            &c,
            r#"{"id":"7","op":"subscribe","args":[{"channel":"trades","instId":"BTC-USDT"},{"channel":"trades","instId":"NOPE"},{"channel":"liquidation-orders","instType":"SWAP"}]}"#,
        );
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[0],
            format!(
                "{{\"id\":\"7\",\"event\":\"subscribe\",\"arg\":{{\"channel\":\"trades\",\"instId\":\"BTC-USDT\"}},\"connId\":\"{}\"}}",
                c.conn_id
            )
        );
        assert!(r[1].contains("\"code\":\"60018\"") && r[1].contains("\"event\":\"error\""));
        assert!(r[2].contains("\"instType\":\"SWAP\""));
        let fs = drain(&s, &c);
        let trades: Vec<&String> = fs.iter().filter(|f| f.contains("\"trades\"")).collect();
        assert_eq!(trades.len(), 5);
        for (k, t) in trades.iter().enumerate() {
            assert_eq!(**t, okx::trade(0, k as u64 + 1, 1_000));
        }
        let liq: Vec<&String> = fs.iter().filter(|f| f.contains("liquidation")).collect();
        assert_eq!(*liq[4], okx::liquidation(5, 1_000));
        let bad = handle_text(&s, &c, "{nope");
        assert!(bad[0].contains("60012"));
        // Book: snapshot, then updates; unsubscribe + subscribe = fresh snapshot.
        let sub = r#"{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT-SWAP"}]}"#;
        handle_text(&s, &c, sub);
        let fs = drain(&s, &c);
        assert!(fs[0].contains("\"action\":\"snapshot\""));
        assert_eq!(fs.len(), 21);
        handle_text(&s, &c, &sub.replace("\"subscribe\"", "\"unsubscribe\""));
        handle_text(&s, &c, sub);
        let fs = drain(&s, &c);
        assert_eq!(fs.len(), 1);
        assert!(fs[0].contains("\"action\":\"snapshot\""));
        let j = s.venue_stats.to_json();
        assert!(
            j.contains("\"resubscriptions\":{\"BTC-USDT-SWAP\":1}"),
            "{j}"
        );
    }

    #[test]
    fn bybit_acks_limits_and_pong() {
        let s = shared();
        let spot = VConn::new(&s, Proto::Bybit(Cat::Spot));
        let args: Vec<String> = (0..11)
            .map(|_| "\"publicTrade.BTCUSDT\"".to_string())
            .collect();
        let r = handle_text(
            &s,
            &spot,
            &format!(
                r#"{{"req_id":"a","op":"subscribe","args":[{}]}}"#,
                args.join(",")
            ),
        );
        assert!(r[0].contains("\"success\":false"));
        let r = handle_text(
            &s,
            &spot,
            r#"{"req_id":"b","op":"subscribe","args":["publicTrade.BTCUSDT","orderbook.1.NOPE"]}"#,
        );
        assert!(
            r[0].contains("error:handler not found,topic:orderbook.1.NOPE"),
            "{}",
            r[0]
        );
        assert!(spot.subs.borrow().is_empty());
        let r = handle_text(
            &s,
            &spot,
            r#"{"req_id":"c","op":"subscribe","args":["publicTrade.BTCUSDT","orderbook.50.ETHUSDT"]}"#,
        );
        assert_eq!(
            r[0],
            format!("{{\"success\":true,\"ret_msg\":\"subscribe\",\"conn_id\":\"{}\",\"req_id\":\"c\",\"op\":\"subscribe\"}}", spot.conn_id)
        );
        let r = handle_text(&s, &spot, r#"{"op":"ping"}"#);
        assert!(r[0].contains("\"ret_msg\":\"pong\"") && !r[0].contains("req_id"));
        let lin = VConn::new(&s, Proto::Bybit(Cat::Linear));
        let r = handle_text(&s, &lin, r#"{"req_id":"x","op":"ping"}"#);
        assert!(r[0].contains("\"req_id\":\"x\""));
        let r = handle_text(&s, &lin, r#"{"op":"subscribe","args":["tickers.BTCUSDT"]}"#);
        assert!(r[0].contains("\"ret_msg\":\"\""));
        let fs = drain(&s, &lin);
        assert_eq!(fs.len(), 5);
        assert_eq!(fs[0], bybit::ticker(Cat::Linear, 0, 1, 1_000, true));
        assert_eq!(fs[1], bybit::ticker(Cat::Linear, 0, 2, 1_000, false));
    }

    #[test]
    fn deribit_rpc() {
        let s = shared();
        let c = VConn::new(&s, Proto::Deribit);
        let r = handle_text(
            &s,
            &c,
            r#"{"jsonrpc":"2.0","id":42,"method":"public/subscribe","params":{"channels":["book.BTC-PERPETUAL.100ms","trades.ETH-PERPETUAL.raw","nope.x"]}}"#,
        );
        assert_eq!(
            r[0],
            r#"{"jsonrpc":"2.0","id":42,"result":["book.BTC-PERPETUAL.100ms","trades.ETH-PERPETUAL.raw"]}"#
        );
        let fs = drain(&s, &c);
        assert!(fs[0].contains("\"type\":\"snapshot\""));
        assert_eq!(fs.iter().filter(|f| f.contains("trades.ETH")).count(), 5);
        let r = handle_text(
            &s,
            &c,
            r#"{"jsonrpc":"2.0","id":1,"method":"public/set_heartbeat","params":{"interval":30}}"#,
        );
        assert_eq!(r[0], r#"{"jsonrpc":"2.0","id":1,"result":"ok"}"#);
        assert!(c.hb_interval.get().is_some());
        let r = handle_text(&s, &c, r#"{"jsonrpc":"2.0","id":2,"method":"public/nope"}"#);
        assert!(r[0].contains("-32601"));
        let r = handle_text(&s, &c, "[1,2");
        assert!(r[0].contains("-32700"));
        let r = handle_text(
            &s,
            &c,
            r#"{"jsonrpc":"2.0","id":3,"method":"public/unsubscribe","params":{"channels":["trades.ETH-PERPETUAL.raw"]}}"#,
        );
        assert_eq!(
            r[0],
            r#"{"jsonrpc":"2.0","id":3,"result":["trades.ETH-PERPETUAL.raw"]}"#
        );
    }
    fn fault(s: &Shared, venue: VenueId, idx: usize, kind: crate::mock::book::FaultKind) {
        let f = s.feeds.book(venue, idx).unwrap();
        f.borrow_mut().inject(kind);
    }

    #[test]
    fn fault_frames_okx_and_deribit() {
        use crate::mock::book::FaultKind;
        let s = shared();
        // Faults queued before subscribing hit updates 1, 2, 3 (book at n = 0).
        fault(&s, VenueId::OkxDerivatives, 3, FaultKind::Keepalive);
        fault(&s, VenueId::OkxDerivatives, 3, FaultKind::SeqReset);
        fault(&s, VenueId::OkxDerivatives, 3, FaultKind::Gap);
        let c = VConn::new(&s, Proto::Okx);
        handle_text(
            &s,
            &c,
            r#"{"op":"subscribe","args":[{"channel":"books","instId":"ETH-USDT-SWAP"}]}"#,
        );
        let fs = drain(&s, &c);
        let d = |k: usize| {
            let x: sonic_rs::Value = sonic_rs::from_str(&fs[k]).unwrap();
            let d = x.get("data").unwrap().as_array().unwrap()[0].clone();
            (
                d.get("prevSeqId").unwrap().as_i64().unwrap(),
                d.get("seqId").unwrap().as_i64().unwrap(),
                d.get("asks").unwrap().as_array().unwrap().len()
                    + d.get("bids").unwrap().as_array().unwrap().len(),
            )
        };
        let (_, snap_seq, _) = d(0);
        let (p1, s1, n1) = d(1);
        assert_eq!((p1, s1, n1), (snap_seq, snap_seq, 0), "keepalive");
        let (p2, s2, _) = d(2);
        assert!(p2 == s1 && s2 < p2, "seq reset");
        // Update 3 (gap) is never sent: update 4 chains to an unseen seqId.
        let (p4, _, _) = d(3);
        assert_ne!(p4, s2);
        assert_eq!(fs.len(), 20, "snapshot + 20 updates - 1 hidden");

        fault(&s, VenueId::DeribitDerivatives, 0, FaultKind::Gap);
        let c = VConn::new(&s, Proto::Deribit);
        handle_text(
            &s,
            &c,
            r#"{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":["book.BTC-PERPETUAL.raw"]}}"#,
        );
        let fs = drain(&s, &c);
        let ids: Vec<(u64, u64)> = fs[1..]
            .iter()
            .map(|f| {
                let x: sonic_rs::Value = sonic_rs::from_str(f).unwrap();
                let d = x.get("params").unwrap().get("data").unwrap().clone();
                (
                    d.get("prev_change_id").unwrap().as_u64().unwrap(),
                    d.get("change_id").unwrap().as_u64().unwrap(),
                )
            })
            .collect();
        let x: sonic_rs::Value = sonic_rs::from_str(&fs[0]).unwrap();
        let first = x
            .get("params")
            .unwrap()
            .get("data")
            .unwrap()
            .get("change_id")
            .unwrap()
            .as_u64()
            .unwrap();
        assert_ne!(
            ids[0].0, first,
            "gap: prev_change_id skips the hidden update"
        );
        for w in ids.windows(2) {
            assert_eq!(w[1].0, w[0].1);
        }
    }

    #[test]
    fn bybit_crossed_is_sent_but_not_applied() {
        use crate::mock::book::FaultKind;
        let s = shared();
        fault(&s, VenueId::BybitSpot, 0, FaultKind::Crossed);
        let c = VConn::new(&s, Proto::Bybit(Cat::Spot));
        handle_text(
            &s,
            &c,
            r#"{"op":"subscribe","args":["orderbook.50.BTCUSDT"]}"#,
        );
        let fs = drain(&s, &c);
        let x: sonic_rs::Value = sonic_rs::from_str(&fs[1]).unwrap();
        let bid = x.get("data").unwrap().get("b").unwrap().as_array().unwrap()[0].clone();
        let px: f64 = bid.as_array().unwrap()[0]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let f = s.feeds.book(VenueId::BybitSpot, 0).unwrap().borrow();
        let best_ask = f.book().best(crate::mock::book::Side::Ask).unwrap() as f64 / 100.0;
        assert!(px >= best_ask - 1.0, "{px} vs {best_ask}");
        assert!(
            f.book().best(crate::mock::book::Side::Bid).unwrap()
                < f.book().best(crate::mock::book::Side::Ask).unwrap()
        );
        assert!(!f.update(1).unwrap().applied);
    }
}
