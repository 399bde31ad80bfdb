//! The writer half: feed frames, OKX idle close, Deribit heartbeats,
//! connection faults.

use std::time::{Duration, Instant};

use futures_util::io::{AsyncWrite, AsyncWriteExt};

use super::{Proto, VConn, CHUNK};
use crate::mock::fault::{self, Due};
use crate::mock::feed;
use crate::mock::ws;
use crate::mock::{deribit, Shared};

pub(super) async fn writer<W: AsyncWrite + Unpin>(shared: &Shared, conn: &VConn, mut w: W) {
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + 8 * 1024);
    let mut scratch = String::with_capacity(4096);
    let idle = Duration::from_millis(shared.opts.okx_idle_timeout_ms);
    let (slot, flavor) = (conn.proto.fault_slot(), conn.proto.flavor(&conn.conn_id));
    let mut faults = fault::ConnState::new(&shared.faults, slot);
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
        if conn.proto == Proto::Okx
            && !idle.is_zero()
            && now.duration_since(conn.last_activity.get()) >= idle
        {
            ws::write_close(&mut buf, 4004, "No data received in 30s");
            finish(&mut w, &buf).await;
            return;
        }
        if let Some(iv) = conn.hb_interval.get() {
            if now >= conn.hb_next.get() {
                if conn.hb_pending.get() {
                    ws::write_close(&mut buf, ws::CLOSE_GOING_AWAY, "heartbeat timeout");
                    finish(&mut w, &buf).await;
                    return;
                }
                ws::write_frame(&mut buf, ws::OP_TEXT, deribit::TEST_REQUEST.as_bytes());
                shared
                    .venue_stats
                    .with(conn.proto.stats_key(), |c| c.pings_sent += 1);
                conn.hb_pending.set(true);
                conn.hb_next.set(now + iv);
            }
        }
        let data_start = buf.len();
        let pushed = {
            let mut subs = conn.subs.borrow_mut();
            feed::fill(shared, &mut subs, false, &mut buf, &mut scratch, CHUNK)
        };
        if pushed {
            conn.last_activity.set(now);
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
        if !buf.is_empty() {
            futures_lite::future::yield_now().await;
            continue;
        }
        let mut wait = Duration::from_secs(1);
        if let Some(t) = faults.next_deadline(&shared.faults) {
            wait = wait.min(t.saturating_duration_since(now));
        }
        if conn.proto == Proto::Okx && !idle.is_zero() {
            let deadline = conn.last_activity.get() + idle;
            wait = wait.min(deadline.saturating_duration_since(now) + Duration::from_millis(1));
        }
        if conn.hb_interval.get().is_some() {
            wait = wait.min(conn.hb_next.get().saturating_duration_since(now));
        }
        if feed::active(shared, &conn.subs.borrow()) {
            wait = wait.min(Duration::from_millis(5));
        }
        futures_lite::future::or(conn.notify.wait(), glommio::timer::sleep(wait)).await;
    }
}

async fn finish<W: AsyncWrite + Unpin>(w: &mut W, buf: &[u8]) {
    if w.write_all(buf).await.is_ok() && w.flush().await.is_ok() {
        let _ = w.close().await;
    }
}
