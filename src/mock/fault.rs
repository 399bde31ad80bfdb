//! Connection-level faults of every venue's WebSocket sessions (abrupt drops,
//! stalls, garbage and oversized frames, lifetime closes with the venue's
//! advance notice, refused upgrades) and REST timeouts: the settings (CLI
//! flags at start, `GET /mock/conn_fault` at runtime, per connection class),
//! the per-connection state the writers consult once per chunk, and the
//! counters under `"faults"` in `/mock/stats`.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use futures_util::io::{AsyncRead, AsyncReadExt};

use super::book::mix;
use super::stats::Bump;
use super::ws;

/// Probability scale of `drop_random` (parts per billion).
pub const PPB: u64 = 1_000_000_000;

/// Default `--fault-seed`.
pub const DEFAULT_SEED: u64 = 0x5eed_fa17;

/// Size of an oversized frame's payload: 1.5 MiB.
pub const OVERSIZED_LEN: usize = 3 << 19;

/// Fault settings of one connection class; 0 = off everywhere. "Data
/// frames" are the market-data text/binary frames a writer appends
/// (including `--malformed-every` injections), not control replies,
/// pings, pongs, notices or injected garbage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnFaults {
    /// Drop (no close frame) after this many data frames.
    pub drop_after: u64,
    /// Drop after each data frame with this probability (parts per 10^9).
    pub drop_random_ppb: u64,
    /// Go silent (socket kept open, still reading) after this many data frames.
    pub stall_after: u64,
    /// A garbage frame after every N-th data frame.
    pub garbage_every: u64,
    /// A 1.5 MiB text frame after every N-th data frame.
    pub oversized_every: u64,
    /// Close cleanly this long after the connection opened.
    pub lifetime_ms: u64,
    /// The venue's shutdown notice this long before that close.
    pub notice_ms: u64,
}

impl ConnFaults {
    /// Whether anything must look at the individual data frames.
    fn per_frame(&self) -> bool {
        self.drop_after > 0
            || self.drop_random_ppb > 0
            || self.stall_after > 0
            || self.garbage_every > 0
            || self.oversized_every > 0
    }
}

/// Parses a probability `0..=1` (decimal) into parts per billion.
pub fn parse_prob(v: &str) -> Option<u64> {
    let p: f64 = v.trim().parse().ok()?;
    if !(0.0..=1.0).contains(&p) {
        return None;
    }
    Some((p * PPB as f64).round() as u64)
}

/// Connection classes: one per WebSocket endpoint family (OKX serves spot
/// and swap on one endpoint, so both OKX venue keys select the same class).
pub const SLOTS: [&str; 6] = [
    "binance_spot",
    "binance_derivatives",
    "okx",
    "bybit_spot",
    "bybit_linear",
    "deribit_derivatives",
];

pub const SLOT_BINANCE_SPOT: usize = 0;
pub const SLOT_BINANCE_DERIVATIVES: usize = 1;
pub const SLOT_OKX: usize = 2;
pub const SLOT_BYBIT_SPOT: usize = 3;
pub const SLOT_BYBIT_LINEAR: usize = 4;
pub const SLOT_DERIBIT: usize = 5;

/// The class of a `venue=` key (`okx`, `okx_spot` and `okx_derivatives` all
/// mean the OKX endpoint).
pub fn slot_of(venue: &str) -> Option<usize> {
    match venue {
        "okx_spot" | "okx_derivatives" => Some(SLOT_OKX),
        v => SLOTS.iter().position(|s| *s == v),
    }
}

/// Counters shown as `"faults"` in `/mock/stats`.
#[derive(Default)]
pub(crate) struct FaultStats {
    pub dropped: Cell<u64>,
    pub stalled: Cell<u64>,
    pub garbage: Cell<u64>,
    pub oversized: Cell<u64>,
    pub lifetime_closed: Cell<u64>,
    pub notices: Cell<u64>,
    pub refused: Cell<u64>,
    pub rest_errors: Cell<u64>,
    pub rest_timeouts: Cell<u64>,
    /// Subscriptions silenced by `mute` (the venue dropped them without a word).
    pub muted: Cell<u64>,
}

impl FaultStats {
    pub fn to_json(&self) -> String {
        format!(
            "{{\"dropped\":{},\"stalled\":{},\"garbage\":{},\"oversized\":{},\"lifetime_closed\":{},\"notices\":{},\"refused\":{},\"rest_errors\":{},\"rest_timeouts\":{},\"muted\":{}}}",
            self.dropped.get(),
            self.stalled.get(),
            self.garbage.get(),
            self.oversized.get(),
            self.lifetime_closed.get(),
            self.notices.get(),
            self.refused.get(),
            self.rest_errors.get(),
            self.rest_timeouts.get(),
            self.muted.get()
        )
    }
}

/// Live settings of all classes (single executor thread).
pub(crate) struct Registry {
    cfg: RefCell<[ConnFaults; 6]>,
    refuse_until: RefCell<[Option<Instant>; 6]>,
    /// Bumped on every change: connections restart their frame count then,
    /// so a runtime `drop_after=N` means N more frames on live connections.
    generation: Cell<u64>,
    seed: Cell<u64>,
    /// Connections opened so far (per-connection random streams).
    opened: Cell<u64>,
    /// `(class, native symbol)` mutes in request order; each live connection
    /// applies those it has not seen yet (connections opened later never).
    mutes: RefCell<Vec<(usize, String)>>,
    pub stats: FaultStats,
}

impl Registry {
    pub fn new(cfg: ConnFaults, seed: u64, refuse_ms: u64, start: Instant) -> Registry {
        let until = (refuse_ms > 0).then(|| start + Duration::from_millis(refuse_ms));
        Registry {
            cfg: RefCell::new([cfg; 6]),
            refuse_until: RefCell::new([until; 6]),
            generation: Cell::new(0),
            seed: Cell::new(seed),
            opened: Cell::new(0),
            mutes: RefCell::new(Vec::new()),
            stats: FaultStats::default(),
        }
    }

    pub fn get(&self, slot: usize) -> (ConnFaults, u64) {
        (self.cfg.borrow()[slot], self.generation.get())
    }

    /// Applies `f` to the settings of the given classes (all when `None`).
    pub fn update(&self, slots: Option<usize>, mut f: impl FnMut(&mut ConnFaults)) {
        let mut cfg = self.cfg.borrow_mut();
        for (i, c) in cfg.iter_mut().enumerate() {
            if slots.is_none_or(|s| s == i) {
                f(c);
            }
        }
        self.generation.add(1);
    }

    pub fn set_refuse(&self, slots: Option<usize>, until: Option<Instant>) {
        let mut r = self.refuse_until.borrow_mut();
        for (i, u) in r.iter_mut().enumerate() {
            if slots.is_none_or(|s| s == i) {
                *u = until;
            }
        }
    }

    /// Silences `symbol`'s subscriptions on the connections of the given
    /// classes (all when `None`) open now: they stay subscribed but get
    /// nothing until unsubscribed and subscribed again, as when a venue
    /// drops a subscription server-side.
    pub fn mute(&self, slots: Option<usize>, symbol: &str) {
        let mut m = self.mutes.borrow_mut();
        for i in 0..SLOTS.len() {
            if slots.is_none_or(|s| s == i) {
                m.push((i, symbol.to_string()));
            }
        }
    }

    pub fn set_seed(&self, seed: u64) {
        self.seed.set(seed);
    }

    /// Whether a new WebSocket of this class must be refused now (counted).
    /// `Some(seconds)` to put in `Retry-After` (the refusal's remainder,
    /// rounded up) if a new WebSocket of this class must be refused now
    /// (counted).
    pub fn refuse(&self, slot: usize) -> Option<u64> {
        let left = self.refuse_until.borrow()[slot]?.checked_duration_since(Instant::now())?;
        if left.is_zero() {
            return None;
        }
        self.stats.refused.add(1);
        Some(left.as_millis().div_ceil(1000) as u64)
    }

    /// Current settings as JSON (the `/mock/conn_fault` answer).
    pub fn to_json(&self) -> String {
        let cfg = self.cfg.borrow();
        let refuse = self.refuse_until.borrow();
        let now = Instant::now();
        let mut o = String::from("{\"ok\":true,\"venues\":{");
        for (i, name) in SLOTS.iter().enumerate() {
            let c = &cfg[i];
            let left = refuse[i].map_or(0, |u| u.saturating_duration_since(now).as_millis());
            if i > 0 {
                o.push(',');
            }
            let _ = write!(
                o,
                "\"{name}\":{{\"drop_after\":{},\"drop_random\":{},\"stall_after\":{},\"garbage_every\":{},\"oversized_every\":{},\"lifetime_ms\":{},\"notice_ms\":{},\"refuse_ms_left\":{left}}}",
                c.drop_after,
                c.drop_random_ppb as f64 / PPB as f64,
                c.stall_after,
                c.garbage_every,
                c.oversized_every,
                c.lifetime_ms,
                c.notice_ms
            );
        }
        o.push_str("}}");
        o
    }
}

/// How a connection's notices and garbage look.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Flavor<'a> {
    Binance { futures: bool, combined: bool },
    Okx { conn_id: &'a str },
    Bybit,
    Deribit,
}

/// What the writer must do after sending a processed chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Send,
    /// Send the (truncated) chunk, then drop the connection without a close frame.
    Drop,
    /// Send the (truncated) chunk, then never send anything again.
    Stall,
}

/// What the writer must do before building a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Due {
    Nothing,
    /// Lifetime over: send what is queued plus a close frame, and end.
    Close,
}

/// The fault bookkeeping of one WebSocket connection.
pub(crate) struct ConnState {
    slot: usize,
    opened: Instant,
    generation: u64,
    /// Data frames since open or since the last settings change.
    frames: u64,
    rng: u64,
    notice_sent: bool,
    garbage_sent: u64,
    /// Entries of the registry's mutes already applied.
    mutes_seen: usize,
    /// Reused output buffer of `process`.
    spare: Vec<u8>,
}

impl ConnState {
    pub fn new(reg: &Registry, slot: usize) -> ConnState {
        let k = reg.opened.get() + 1;
        reg.opened.set(k);
        ConnState {
            slot,
            opened: Instant::now(),
            generation: reg.generation.get(),
            frames: 0,
            rng: mix(reg.seed.get() ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            notice_sent: false,
            garbage_sent: 0,
            mutes_seen: reg.mutes.borrow().len(),
            spare: Vec::new(),
        }
    }

    /// Symbols muted for this connection's class since the last call.
    pub fn new_mutes(&mut self, reg: &Registry) -> Vec<String> {
        let m = reg.mutes.borrow();
        let fresh = m[self.mutes_seen.min(m.len())..]
            .iter()
            .filter(|(slot, _)| *slot == self.slot)
            .map(|(_, s)| s.clone())
            .collect();
        self.mutes_seen = m.len();
        fresh
    }

    fn settings(&mut self, reg: &Registry) -> ConnFaults {
        let (c, g) = reg.get(self.slot);
        if g != self.generation {
            self.generation = g;
            self.frames = 0;
        }
        c
    }

    /// Lifetime check before a chunk: appends the venue's notice when due.
    pub fn before_chunk(
        &mut self,
        reg: &Registry,
        flavor: Flavor,
        now_ms: impl FnOnce() -> u64,
        buf: &mut Vec<u8>,
    ) -> Due {
        let c = self.settings(reg);
        if c.lifetime_ms == 0 {
            return Due::Nothing;
        }
        let close_at = self.opened + Duration::from_millis(c.lifetime_ms);
        let now = Instant::now();
        if c.notice_ms > 0
            && !self.notice_sent
            && now + Duration::from_millis(c.notice_ms) >= close_at
        {
            self.notice_sent = true;
            if let Some(text) = notice(flavor, now_ms()) {
                ws::write_frame(buf, ws::OP_TEXT, text.as_bytes());
                reg.stats.notices.add(1);
            }
        }
        if now >= close_at {
            reg.stats.lifetime_closed.add(1);
            return Due::Close;
        }
        Due::Nothing
    }

    /// The next instant `before_chunk` has something to do (idle writers
    /// sleep no longer than this).
    pub fn next_deadline(&self, reg: &Registry) -> Option<Instant> {
        let (c, _) = reg.get(self.slot);
        if c.lifetime_ms == 0 {
            return None;
        }
        let close_at = self.opened + Duration::from_millis(c.lifetime_ms);
        if c.notice_ms > 0 && !self.notice_sent {
            return Some(
                close_at
                    .checked_sub(Duration::from_millis(c.notice_ms))
                    .unwrap_or(self.opened),
            );
        }
        Some(close_at)
    }

    /// Walks the data frames of `buf[data_start..]` (text/binary frames the
    /// writer just appended): counts them, inserts garbage / oversized
    /// frames after the due ones, and cuts the chunk after the frame that
    /// triggers a drop or a stall.
    pub fn process(
        &mut self,
        reg: &Registry,
        flavor: Flavor,
        buf: &mut Vec<u8>,
        data_start: usize,
    ) -> Verdict {
        let c = self.settings(reg);
        if !c.per_frame() || data_start >= buf.len() {
            return Verdict::Send;
        }
        let mut out = std::mem::take(&mut self.spare);
        out.clear();
        out.extend_from_slice(&buf[..data_start]);
        let mut pos = data_start;
        let mut verdict = Verdict::Send;
        while pos < buf.len() {
            let Some((op, len)) = frame_extent(&buf[pos..]) else {
                break;
            };
            let end = pos + len;
            out.extend_from_slice(&buf[pos..end]);
            pos = end;
            if op != ws::OP_TEXT && op != ws::OP_BINARY {
                continue;
            }
            self.frames += 1;
            let k = self.frames;
            if c.garbage_every > 0 && k % c.garbage_every == 0 {
                let kind = self.garbage_sent;
                self.garbage_sent += 1;
                write_garbage(&mut out, flavor, kind);
                reg.stats.garbage.add(1);
            }
            if c.oversized_every > 0 && k % c.oversized_every == 0 {
                write_oversized(&mut out);
                reg.stats.oversized.add(1);
            }
            if c.drop_after > 0 && k >= c.drop_after {
                verdict = Verdict::Drop;
            } else if c.stall_after > 0 && k >= c.stall_after {
                verdict = Verdict::Stall;
            } else if c.drop_random_ppb > 0 {
                self.rng = mix(self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15));
                if self.rng % PPB < c.drop_random_ppb {
                    verdict = Verdict::Drop;
                }
            }
            if verdict != Verdict::Send {
                break;
            }
        }
        if verdict == Verdict::Send {
            out.extend_from_slice(&buf[pos..]);
        }
        std::mem::swap(buf, &mut out);
        self.spare = out;
        match verdict {
            Verdict::Drop => reg.stats.dropped.add(1),
            Verdict::Stall => reg.stats.stalled.add(1),
            Verdict::Send => {}
        }
        verdict
    }
}

/// (opcode, total length) of the server frame at the front of `b`.
fn frame_extent(b: &[u8]) -> Option<(u8, usize)> {
    if b.len() < 2 {
        return None;
    }
    let op = b[0] & 0x0f;
    let (hdr, len) = match b[1] & 0x7f {
        126 => (4, u16::from_be_bytes([*b.get(2)?, *b.get(3)?]) as usize),
        127 => {
            let mut x = [0u8; 8];
            x.copy_from_slice(b.get(2..10)?);
            (10, u64::from_be_bytes(x) as usize)
        }
        n => (2, n as usize),
    };
    (hdr + len <= b.len()).then_some((op, hdr + len))
}

/// The venue's advance shutdown notice (Bybit and Deribit document none).
pub(crate) fn notice(flavor: Flavor, now_ms: u64) -> Option<String> {
    match flavor {
        Flavor::Binance { combined, .. } => {
            let ev = format!("{{\"e\":\"serverShutdown\",\"E\":{now_ms}}}");
            Some(if combined {
                format!("{{\"stream\":\"!serverShutdown\",\"data\":{ev}}}")
            } else {
                ev
            })
        }
        Flavor::Okx { conn_id } => Some(format!(
            "{{\"event\":\"notice\",\"code\":\"64008\",\"msg\":\"The connection will soon be closed for a service upgrade. Please reconnect.\",\"connId\":\"{conn_id}\"}}"
        )),
        Flavor::Bybit | Flavor::Deribit => None,
    }
}

/// Kinds of garbage frames, in the order they are sent.
pub const GARBAGE_KINDS: [&str; 5] = [
    "not_json",
    "truncated_json",
    "wrong_types",
    "invalid_utf8",
    "unknown_event",
];

/// A message of the venue's trade shape whose known fields have the wrong
/// JSON types (so no parser can take it for a real item).
fn wrong_types(flavor: Flavor) -> String {
    match flavor {
        Flavor::Binance { futures, combined } => {
            let (stream, ev) = if futures {
                (
                    "btcusdt@aggTrade",
                    "{\"e\":\"aggTrade\",\"E\":\"soon\",\"s\":42,\"a\":\"x\",\"p\":1.5,\"q\":null,\"f\":\"x\",\"l\":[],\"T\":\"x\",\"m\":\"maybe\"}",
                )
            } else {
                (
                    "btcusdt@trade",
                    "{\"e\":\"trade\",\"E\":\"soon\",\"s\":42,\"t\":\"x\",\"p\":1.5,\"q\":null,\"T\":\"x\",\"m\":\"maybe\",\"M\":0}",
                )
            };
            if combined {
                format!("{{\"stream\":\"{stream}\",\"data\":{ev}}}")
            } else {
                ev.to_string()
            }
        }
        Flavor::Okx { .. } => "{\"arg\":{\"channel\":\"trades\",\"instId\":\"BTC-USDT\"},\"data\":[{\"instId\":42,\"tradeId\":true,\"px\":1.5,\"sz\":null,\"side\":1,\"ts\":[],\"count\":{}}]}".to_string(),
        Flavor::Bybit => "{\"topic\":\"publicTrade.BTCUSDT\",\"type\":\"snapshot\",\"ts\":\"soon\",\"data\":[{\"T\":\"x\",\"s\":42,\"S\":1,\"v\":null,\"p\":1.5,\"i\":false,\"BT\":\"no\",\"seq\":\"x\"}]}".to_string(),
        Flavor::Deribit => "{\"jsonrpc\":\"2.0\",\"method\":\"subscription\",\"params\":{\"channel\":\"trades.BTC-PERPETUAL.raw\",\"data\":[{\"trade_seq\":\"x\",\"trade_id\":7,\"timestamp\":\"soon\",\"price\":\"1.5\",\"amount\":null,\"direction\":1,\"instrument_name\":42}]}}".to_string(),
    }
}

fn unknown_event(flavor: Flavor) -> String {
    match flavor {
        Flavor::Binance { combined: true, .. } => {
            "{\"stream\":\"btcusdt@mockUnknown\",\"data\":{\"e\":\"mockUnknown\",\"E\":1}}"
                .to_string()
        }
        Flavor::Binance { .. } => "{\"e\":\"mockUnknown\",\"E\":1}".to_string(),
        Flavor::Okx { conn_id } => {
            format!("{{\"event\":\"mockUnknown\",\"msg\":\"\",\"connId\":\"{conn_id}\"}}")
        }
        Flavor::Bybit => {
            "{\"topic\":\"mockUnknown.BTCUSDT\",\"type\":\"snapshot\",\"ts\":1,\"data\":{}}"
                .to_string()
        }
        Flavor::Deribit => {
            "{\"jsonrpc\":\"2.0\",\"method\":\"mock_unknown\",\"params\":{}}".to_string()
        }
    }
}

/// Appends garbage frame number `k` (0-based) of a connection.
pub(crate) fn write_garbage(buf: &mut Vec<u8>, flavor: Flavor, k: u64) {
    let payload: Vec<u8> = match k % GARBAGE_KINDS.len() as u64 {
        0 => b"mock garbage: this is not JSON".to_vec(),
        1 => {
            let w = wrong_types(flavor);
            w.as_bytes()[..w.len() / 2].to_vec()
        }
        2 => wrong_types(flavor).into_bytes(),
        // A text frame that is not UTF-8 (RFC 6455 says close with 1007).
        3 => b"{\"e\":\"\xff\xfe\xfd\"}".to_vec(),
        _ => unknown_event(flavor).into_bytes(),
    };
    ws::write_frame(buf, ws::OP_TEXT, &payload);
}

/// Appends a 1.5 MiB text frame of valid JSON that is no venue message.
pub(crate) fn write_oversized(buf: &mut Vec<u8>) {
    const HEAD: &[u8] = b"{\"mock\":\"oversized\",\"pad\":\"";
    ws::write_frame_with(buf, ws::OP_TEXT, |b| {
        b.extend_from_slice(HEAD);
        b.resize(b.len() + OVERSIZED_LEN - HEAD.len() - 2, b'x');
        b.extend_from_slice(b"\"}");
    });
}

/// What a reader does once it asked its writer to close: wait for the
/// writer to end the session, except on a stalled connection (whose writer
/// never will), where it reads on until the peer goes away so the session
/// still ends.
pub(crate) async fn park<R: AsyncRead + Unpin>(r: &mut R, stalled: &Cell<bool>) {
    let mut b = vec![0u8; 4096];
    let mut eof = false;
    loop {
        if stalled.get() && eof {
            return;
        }
        if eof {
            glommio::timer::sleep(Duration::from_millis(100)).await;
            continue;
        }
        match r.read(&mut b).await {
            Ok(0) | Err(_) => eof = true,
            Ok(_) => {}
        }
    }
}

/// A stalled writer: sends nothing ever again; what the reader queues is
/// thrown away. The session ends when the reader sees the peer leave.
/// Writes a session's chunk, then carries out the fault verdict on it.
/// Returns `false` when the session is over (write failed or dropped).
pub(crate) async fn send_chunk<W: futures_lite::AsyncWrite + Unpin>(
    w: &mut W,
    buf: &[u8],
    verdict: Verdict,
    stalled: &std::cell::Cell<bool>,
    out: &RefCell<Vec<u8>>,
    closing: &RefCell<Option<Vec<u8>>>,
) -> bool {
    use futures_lite::AsyncWriteExt;
    if !buf.is_empty() && (w.write_all(buf).await.is_err() || w.flush().await.is_err()) {
        return false;
    }
    match verdict {
        Verdict::Drop => false,
        Verdict::Stall => {
            stalled.set(true);
            stall_forever(out, closing).await;
            false
        }
        Verdict::Send => true,
    }
}

pub(crate) async fn stall_forever(out: &RefCell<Vec<u8>>, closing: &RefCell<Option<Vec<u8>>>) {
    loop {
        out.borrow_mut().clear();
        closing.borrow_mut().take();
        glommio::timer::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sonic_rs::JsonValueTrait;

    fn frames(mut b: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut v = Vec::new();
        while let ws::Decoded::Frame(f, used) = ws::decode_frame(b, false, usize::MAX) {
            v.push((f.opcode, f.payload));
            b = &b[used..];
        }
        assert!(b.is_empty());
        v
    }

    fn chunk(prefix: &[&str], data: std::ops::RangeInclusive<u64>) -> (Vec<u8>, usize) {
        let mut b = Vec::new();
        for p in prefix {
            ws::write_frame(&mut b, ws::OP_TEXT, p.as_bytes());
        }
        ws::write_frame(&mut b, ws::OP_PING, b"1");
        let start = b.len();
        for i in data {
            ws::write_frame(&mut b, ws::OP_TEXT, format!("{{\"i\":{i}}}").as_bytes());
        }
        (b, start)
    }

    fn reg(c: ConnFaults) -> Registry {
        Registry::new(c, DEFAULT_SEED, 0, Instant::now())
    }

    const SPOT: Flavor = Flavor::Binance {
        futures: false,
        combined: true,
    };

    #[test]
    fn drop_after_cuts_after_exactly_n_data_frames() {
        let r = reg(ConnFaults {
            drop_after: 7,
            ..Default::default()
        });
        let mut s = ConnState::new(&r, SLOT_BINANCE_SPOT);
        let (mut b, st) = chunk(&["reply"], 1..=5);
        assert_eq!(s.process(&r, SPOT, &mut b, st), Verdict::Send);
        assert_eq!(frames(&b).len(), 7);
        let (mut b, st) = chunk(&[], 6..=20);
        assert_eq!(s.process(&r, SPOT, &mut b, st), Verdict::Drop);
        let f = frames(&b);
        // The ping, then data frames 6 and 7.
        assert_eq!(f.len(), 3);
        assert_eq!(f[2].1, b"{\"i\":7}");
        assert_eq!(r.stats.dropped.get(), 1);
    }

    #[test]
    fn garbage_and_oversized_cadence_keeps_every_item() {
        let r = reg(ConnFaults {
            garbage_every: 3,
            oversized_every: 4,
            ..Default::default()
        });
        let mut s = ConnState::new(&r, SLOT_OKX);
        let fl = Flavor::Okx { conn_id: "c1" };
        let (mut b, st) = chunk(&[], 1..=12);
        assert_eq!(s.process(&r, fl, &mut b, st), Verdict::Send);
        let f = frames(&b);
        let mut items = Vec::new();
        let mut extra = Vec::new();
        for (op, p) in &f[1..] {
            assert_eq!(*op, ws::OP_TEXT);
            if p.len() == OVERSIZED_LEN {
                extra.push(format!("big@{}", items.len()));
                let v: sonic_rs::Value = sonic_rs::from_slice(p).unwrap();
                drop(v);
            } else if p.starts_with(b"{\"i\":") && p.len() < 12 {
                items.push(String::from_utf8(p.clone()).unwrap());
            } else {
                extra.push(format!("junk@{}", items.len()));
            }
        }
        let want: Vec<String> = (1..=12).map(|i| format!("{{\"i\":{i}}}")).collect();
        assert_eq!(items, want);
        assert_eq!(
            extra,
            ["junk@3", "big@4", "junk@6", "big@8", "junk@9", "junk@12", "big@12"]
        );
        assert_eq!((r.stats.garbage.get(), r.stats.oversized.get()), (4, 3));
    }

    #[test]
    fn garbage_kinds_cycle() {
        for fl in [
            SPOT,
            Flavor::Binance {
                futures: true,
                combined: false,
            },
            Flavor::Okx { conn_id: "x" },
            Flavor::Bybit,
            Flavor::Deribit,
        ] {
            let mut b = Vec::new();
            for k in 0..5 {
                write_garbage(&mut b, fl, k);
            }
            let f = frames(&b);
            let parse = |p: &[u8]| sonic_rs::from_slice::<sonic_rs::Value>(p);
            assert!(parse(&f[0].1).is_err());
            assert!(parse(&f[1].1).is_err());
            assert!(parse(&f[2].1).unwrap().is_object());
            assert!(std::str::from_utf8(&f[3].1).is_err());
            assert!(parse(&f[4].1).unwrap().is_object());
            assert!(f.iter().all(|(op, _)| *op == ws::OP_TEXT));
        }
    }

    #[test]
    fn stall_and_runtime_change_restart_the_count() {
        let r = reg(ConnFaults::default());
        let mut s = ConnState::new(&r, SLOT_BYBIT_SPOT);
        let (mut b, st) = chunk(&[], 1..=50);
        assert_eq!(s.process(&r, Flavor::Bybit, &mut b, st), Verdict::Send);
        r.update(Some(SLOT_BYBIT_SPOT), |c| c.stall_after = 2);
        let (mut b, st) = chunk(&[], 51..=60);
        assert_eq!(s.process(&r, Flavor::Bybit, &mut b, st), Verdict::Stall);
        assert_eq!(frames(&b).len(), 3);
        // Other classes are untouched.
        assert_eq!(r.get(SLOT_BYBIT_LINEAR).0, ConnFaults::default());
    }

    #[test]
    fn drop_random_is_seeded() {
        let run = |seed: u64| {
            let r = Registry::new(
                ConnFaults {
                    drop_random_ppb: parse_prob("0.1").unwrap(),
                    ..Default::default()
                },
                seed,
                0,
                Instant::now(),
            );
            let mut s = ConnState::new(&r, SLOT_DERIBIT);
            let (mut b, st) = chunk(&[], 1..=1000);
            assert_eq!(s.process(&r, Flavor::Deribit, &mut b, st), Verdict::Drop);
            frames(&b).len()
        };
        assert_eq!(run(1), run(1));
        assert!((2..200).contains(&run(1)), "{}", run(1));
        assert!((1..=1000).any(|k| run(k) != run(1)));
        assert_eq!(parse_prob("1"), Some(PPB));
        assert_eq!(parse_prob("1.5"), None);
        assert_eq!(parse_prob("x"), None);
    }

    #[test]
    fn notices() {
        assert_eq!(
            notice(SPOT, 5).unwrap(),
            "{\"stream\":\"!serverShutdown\",\"data\":{\"e\":\"serverShutdown\",\"E\":5}}"
        );
        assert_eq!(
            notice(
                Flavor::Binance {
                    futures: true,
                    combined: false
                },
                5
            )
            .unwrap(),
            "{\"e\":\"serverShutdown\",\"E\":5}"
        );
        assert!(notice(Flavor::Okx { conn_id: "ab" }, 5)
            .unwrap()
            .ends_with("\"connId\":\"ab\"}"));
        assert!(notice(Flavor::Bybit, 5).is_none() && notice(Flavor::Deribit, 5).is_none());
        assert_eq!(slot_of("okx_derivatives"), Some(SLOT_OKX));
        assert_eq!(slot_of("okx"), Some(SLOT_OKX));
        assert_eq!(slot_of("nope"), None);
    }
}
