//! The writer half of a Binance session: trade frames round-robin over the
//! subscriptions, malformed injection, server pings, connection faults.

use std::time::{Duration, Instant};

use futures_util::io::{AsyncWrite, AsyncWriteExt};

use super::{after, Conn, Route, CHUNK, PER_SUB_BURST};
use crate::mock::binance::{self, MalformedKind, PriceStyle};
use crate::mock::fault::{self, Due, Flavor};
use crate::mock::feed;
use crate::mock::send_log;
use crate::mock::stats::Bump;
use crate::mock::ws;
use crate::mock::Shared;

/// Malformed-injection progress of one connection.
#[derive(Default)]
pub(crate) struct MalformedState {
    since_last: u64,
    sent: u64,
}

/// Appends as many trade frames (and due malformed frames) as fit in one
/// chunk, round-robin over the subscriptions.
pub(crate) fn fill_trades(
    shared: &Shared,
    conn: &Conn,
    buf: &mut Vec<u8>,
    mal: &mut MalformedState,
) {
    let mut subs = conn.subs.borrow_mut();
    if subs.is_empty() {
        return;
    }
    let every = shared.opts.malformed_every;
    let base = shared.opts.time_base_ms;
    loop {
        let mut progressed = false;
        for si in 0..subs.len() {
            let idx = subs[si].tpl.symbol_index;
            let avail = shared.market.available_up_to(idx, subs[si].next_id);
            let mut sent = 0usize;
            while subs[si].next_id <= avail && sent < PER_SUB_BURST && buf.len() < CHUNK {
                let sub = &mut subs[si];
                let n = binance::trade_nums(idx, sub.next_id, base);
                let tpl = &sub.tpl;
                ws::write_frame_with(buf, ws::OP_TEXT, |b| {
                    tpl.write_trade(b, &n, PriceStyle::Quoted)
                });
                sub.next_id += 1;
                sent += 1;
                if every > 0 {
                    mal.since_last += 1;
                    if mal.since_last >= every {
                        mal.since_last = 0;
                        let kind = MalformedKind::nth(mal.sent);
                        mal.sent += 1;
                        // Named after the first subscription, disguised as the
                        // trade it last received (no id is consumed).
                        let first = &subs[0];
                        let fid = first.next_id.saturating_sub(1).max(1);
                        let fnums = binance::trade_nums(first.tpl.symbol_index, fid, base);
                        let op = if kind.is_binary() {
                            ws::OP_BINARY
                        } else {
                            ws::OP_TEXT
                        };
                        ws::write_frame_with(buf, op, |b| {
                            kind.write_payload(b, &first.tpl, &fnums)
                        });
                        shared.stats.count_malformed(kind);
                    }
                }
            }
            if sent > 0 {
                shared.stats.count_trades(idx, sent as u64);
                progressed = true;
            }
        }
        if !progressed || buf.len() >= CHUNK {
            return;
        }
    }
}

/// How long the writer may sleep when it has nothing to send.
fn idle_wait(shared: &Shared, conn: &Conn, now: Instant) -> Duration {
    let mut wait = Duration::from_secs(1);
    {
        let p = conn.ping.borrow();
        if !conn.ping_every.is_zero() {
            wait = wait.min(p.next_ping_at.saturating_duration_since(now));
        }
        if let (Some(since), false) = (p.unanswered_since, conn.pong_timeout.is_zero()) {
            let deadline = after(since, conn.pong_timeout);
            wait = wait.min(deadline.saturating_duration_since(now));
        }
    }
    if feed::active(shared, &conn.extra.borrow()) {
        wait = wait.min(Duration::from_millis(5));
    }
    if shared.market.rate() > 0 {
        for s in conn.subs.borrow().iter() {
            if !shared.market.exhausted(s.next_id) {
                let due = shared
                    .market
                    .due_in(s.tpl.symbol_index, s.next_id)
                    .unwrap_or_default();
                wait = wait.min(due.clamp(Duration::from_millis(1), Duration::from_millis(5)));
            }
        }
    }
    wait
}

/// Streams everything due to the client, one chunk per write.
pub(super) async fn writer<W: AsyncWrite + Unpin>(shared: &Shared, conn: &Conn, mut w: W) {
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + 8 * 1024);
    let mut mal = MalformedState::default();
    let mut scratch = String::with_capacity(4096);
    let ping_every = conn.ping_every;
    let pong_timeout = conn.pong_timeout;
    let slot = match conn.route {
        Route::Spot => fault::SLOT_BINANCE_SPOT,
        _ => fault::SLOT_BINANCE_DERIVATIVES,
    };
    let mut faults = fault::ConnState::new(&shared.faults, slot);
    let mut stamps = send_log::Pending::default();
    loop {
        for symbol in faults.new_mutes(&shared.faults) {
            conn.mute(shared, &symbol);
        }
        buf.clear();
        {
            let mut out = conn.out.borrow_mut();
            buf.extend_from_slice(&out);
            out.clear();
        }
        let closing = conn.closing.borrow_mut().take();
        if let Some(payload) = closing {
            ws::write_frame(&mut buf, ws::OP_CLOSE, &payload);
            finish(&mut w, &buf).await;
            return;
        }
        let flavor = Flavor::Binance {
            futures: conn.route != Route::Spot,
            combined: conn.combined.get(),
        };
        if faults.before_chunk(&shared.faults, flavor, || shared.now_ms(), &mut buf) == Due::Close {
            ws::write_close(
                &mut buf,
                ws::CLOSE_GOING_AWAY,
                "connection lifetime reached",
            );
            finish(&mut w, &buf).await;
            return;
        }
        let now = Instant::now();
        let timed_out = conn.ping.borrow().unanswered_since.is_some_and(|since| {
            !pong_timeout.is_zero() && now.duration_since(since) >= pong_timeout
        });
        if timed_out {
            shared.stats.pong_timeouts.add(1);
            log::warn!("mock-exchange: pong timeout, closing connection");
            ws::write_close(&mut buf, ws::CLOSE_GOING_AWAY, "pong timeout");
            finish(&mut w, &buf).await;
            return;
        }
        {
            let mut p = conn.ping.borrow_mut();
            if !ping_every.is_zero() && now >= p.next_ping_at {
                let n = p.sent(now);
                let mut payload = Vec::with_capacity(20);
                binance::push_u64(&mut payload, n);
                ws::write_frame(&mut buf, ws::OP_PING, &payload);
                shared.stats.pings_sent.add(1);
                shared
                    .venue_stats
                    .with(conn.route.venue().config_key(), |c| c.pings_sent += 1);
                p.next_ping_at = after(now, ping_every);
            }
        }
        let data_start = buf.len();
        if shared.send_log.is_some() {
            let subs = conn.subs.borrow();
            stamps.before(subs.iter().map(|s| (s.tpl.symbol_index, s.next_id)));
        }
        fill_trades(shared, conn, &mut buf, &mut mal);
        if shared.send_log.is_some() {
            stamps.after(conn.subs.borrow().iter().map(|s| s.next_id));
        }
        if buf.len() < CHUNK {
            let mut extra = conn.extra.borrow_mut();
            feed::fill(
                shared,
                &mut extra,
                conn.combined.get(),
                &mut buf,
                &mut scratch,
                CHUNK,
            );
        }
        let verdict = faults.process(&shared.faults, flavor, &mut buf, data_start);
        if !fault::send_chunk(
            &mut w,
            &buf,
            verdict,
            &conn.stalled,
            &conn.out,
            &conn.closing,
        )
        .await
        {
            return;
        }
        if let Some(f) = &shared.send_log {
            stamps.stamp(f);
        }
        if !buf.is_empty() {
            // Let the reader (same task, polled first by `or`) and other
            // connections run between chunks.
            futures_lite::future::yield_now().await;
            continue;
        }
        let mut wait = idle_wait(shared, conn, now);
        if let Some(t) = faults.next_deadline(&shared.faults) {
            wait = wait.min(t.saturating_duration_since(now));
        }
        futures_lite::future::or(conn.notify.wait(), glommio::timer::sleep(wait)).await;
    }
}

/// Sends the final bytes (ending in a close frame) and shuts the stream down.
async fn finish<W: AsyncWrite + Unpin>(w: &mut W, buf: &[u8]) {
    if w.write_all(buf).await.is_ok() && w.flush().await.is_ok() {
        let _ = w.close().await;
    }
}
