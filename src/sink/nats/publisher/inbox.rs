//! The connection's reader and what arrives on the publisher's inbox:
//! PubAcks (matched to the queue), error acks, and "no responders" answers
//! (the message is parked and written again, or set aside after too many).

use super::*;

/// "No responders" answers before a message is set aside, and the pause
/// before each new attempt: ~10 s, longer than a server restart's stream
/// recovery or a cluster's leader election.
const NO_RESPONDERS_TRIES: u8 = 20;
const NO_RESPONDERS_RETRY: Duration = Duration::from_millis(500);
/// JetStream "message size exceeds maximum allowed".
const ERR_MSG_TOO_LARGE: u32 = 10054;

/// Bounds of the pause before reading more acks while the in-flight window
/// is full ([`ack_pause`]).
const ACK_READ_PAUSE: Duration = Duration::from_millis(1);
const ACK_READ_PAUSE_MAX: Duration = Duration::from_millis(8);

/// How long to let acks gather while a full window waits for `needed` more:
/// their expected arrival time at the rate of the last read (`got` acks in
/// `span_ns` since the read before), within [`ACK_READ_PAUSE`] and
/// [`ACK_READ_PAUSE_MAX`]. A fixed 1 ms read about a tenth of the acks a
/// reopening needs at 100 000 acks/s (a quarter of a 4 096 window), one
/// timer, wake-up and `recv` each; the cap keeps the server fed (three
/// quarters of the window are still in flight) and bounds how long acks
/// wait unread.
pub(super) fn ack_pause(needed: usize, got: u64, span_ns: u64) -> Duration {
    let lo = ACK_READ_PAUSE.as_nanos() as u64;
    let hi = ACK_READ_PAUSE_MAX.as_nanos() as u64;
    if got == 0 {
        return ACK_READ_PAUSE;
    }
    let wait = (span_ns / got).saturating_mul(needed as u64);
    Duration::from_nanos(wait.clamp(lo, hi))
}

/// A message answered "no responders" ([`Publisher::no_responders`]).
pub(super) struct Parked {
    seq: u64,
    due_ns: u64,
    /// "No responders" answers so far.
    tries: u8,
    /// Parked (not yet written again).
    waiting: bool,
}

impl Publisher {
    /// The connection's reader: parses acks and server ops from one reused
    /// buffer.
    pub(super) async fn reader<R: AsyncRead + Unpin>(
        &self,
        from: &ServerAddr,
        rd: &mut R,
        rbuf: &mut ReadBuf,
        max_payload: usize,
        ctl: &SessionCtl,
    ) -> Result<std::convert::Infallible, ConnError> {
        let limit = conn::read_limit(max_payload);
        // When the previous read with acks was parsed (the ack-rate estimate).
        let mut prev_ns = self.now_ns();
        loop {
            let mut acks = false;
            let mut got = 0u64;
            // One clock read for all acks of one read: they all arrived by then.
            let mut now = None;
            while let Some((op, used)) = proto::parse_op(rbuf.data(), max_payload)? {
                match op {
                    Op::Msg {
                        subject,
                        headers,
                        payload,
                        ..
                    } => {
                        let at = *now.get_or_insert_with(|| self.ack_clock());
                        self.on_msg(subject, headers, payload, at)?;
                        acks = true;
                        got += 1;
                    }
                    Op::Ping => {
                        ctl.pongs_due.set(ctl.pongs_due.get() + 1);
                        self.wake_writer.notify();
                    }
                    Op::Pong => ctl.pings_out.set(0),
                    Op::Ok => {}
                    Op::Info(json) => {
                        // Cluster topology updates: nodes joining after we
                        // connected become failover targets too.
                        if let Ok(i) = proto::parse_info(json) {
                            if let Some(m) = i.max_payload {
                                self.max_payload.set((m as usize).min(max_payload));
                            }
                            self.learn_servers(from, &i.connect_urls);
                        }
                    }
                    Op::Err(e) => {
                        self.stats.errors.inc();
                        return Err(ConnError::Server(String::from_utf8_lossy(e).into_owned()));
                    }
                }
                rbuf.consume(used);
            }
            self.observe_acks();
            let mut held = None;
            if acks {
                let q = self.queue.borrow();
                self.update_gauges(&q);
                if q.is_empty() {
                    self.drained.notify();
                }
                let window = q.window(self.cfg.max_in_flight);
                if q.has_unsent(window) {
                    self.wake_writer.notify();
                }
                if window < self.cfg.max_in_flight {
                    let at = now.map_or(prev_ns, |c| c.mono_ns);
                    let needed = q.acks_to_reopen(self.cfg.max_in_flight);
                    held = Some(ack_pause(needed, got, at.saturating_sub(prev_ns)));
                }
                prev_ns = now.map_or(prev_ns, |c| c.mono_ns);
            }
            if let Some(pause) = held {
                // The window is full and the writer waits for a quarter of
                // it: let acks gather in the socket instead of waking for
                // every few (each wake-up and read costs more than the acks).
                glommio::timer::sleep(pause).await;
            }
            rbuf.fill(rd, limit).await?;
        }
    }

    /// An inbox message: a PubAck, an error PubAck, or a status (503: no
    /// stream listens on the subject). Errors end the connection so the
    /// message is retried after a backoff (and a stream create) instead of
    /// being dropped.
    pub(super) fn on_msg(
        &self,
        subject: &[u8],
        headers: Option<&[u8]>,
        payload: &[u8],
        at: AckClock,
    ) -> Result<(), ConnError> {
        let Some(tail) = subject
            .strip_prefix(self.inbox.as_bytes())
            .and_then(|t| t.strip_prefix(b"."))
        else {
            return Ok(()); // not ours
        };
        let Some(seq) = proto::parse_u64(tail) else {
            return Ok(()); // a late API reply (`c<n>`)
        };
        if !self.queue.borrow().is_sent(seq) {
            return Ok(()); // settled already
        }
        let status = headers.and_then(proto::header_status);
        if status == Some(503) {
            self.no_responders(seq);
            return Ok(());
        }
        let failure = if let Some(code) = status {
            Some(format!("status {code}"))
        } else {
            match proto::parse_pub_ack(payload) {
                Ok(a) => match a.error {
                    // Too large for the stream: no resend can ever succeed.
                    Some(e) if e.err_code == ERR_MSG_TOO_LARGE => {
                        self.refused_for_good(seq, &e.description);
                        return Ok(());
                    }
                    Some(e) => Some(format!(
                        "{} (code {}, err_code {})",
                        e.description, e.code, e.err_code
                    )),
                    None if a.seq.is_none() => Some("PubAck without seq".into()),
                    None => {
                        if let (Some(stream), Some(s)) = (a.stream.0, a.seq) {
                            self.acked_seqs.borrow_mut().note(stream, s);
                        }
                        if !self.parked.borrow().is_empty() {
                            self.parked.borrow_mut().retain(|p| p.seq != seq);
                        }
                        let acked = self.queue.borrow_mut().ack(seq, at.mono_ns);
                        if let AckMatch::Acked(lat, received) = acked {
                            self.stats.acked.inc();
                            if a.duplicate {
                                self.stats.duplicates.inc();
                            }
                            let from_receive =
                                (received > 0).then(|| at.wall_ns.saturating_sub(received));
                            self.note_ack(lat, from_receive);
                        }
                        None
                    }
                },
                Err(e) => Some(e.0),
            }
        };
        match failure {
            None => Ok(()),
            Some(why) => {
                self.stats.errors.inc();
                if let Some(n) = self.warn_ack_error.borrow_mut().check(crate::sys::now_ns()) {
                    log::warn!("NATS publish not stored: {why} (+{n} suppressed); will resend");
                }
                Err(ConnError::Proto(format!("publish rejected: {why}")))
            }
        }
    }

    /// A JetStream publish answered "no responders" (503): no stream
    /// captures its subject (a configuration error), or its stream cannot
    /// answer right now (a restarted server recovering it, a cluster electing
    /// a leader). Neither is an ack timeout or a reason to reconnect: the
    /// message leaves the in-flight window, is written again every
    /// [`NO_RESPONDERS_RETRY`], and after [`NO_RESPONDERS_TRIES`] such answers
    /// (~10 s) it is set aside so it blocks nothing behind it.
    fn no_responders(&self, seq: u64) {
        self.stats.no_responders.inc();
        let mut parked = self.parked.borrow_mut();
        let i = parked.iter().position(|p| p.seq == seq);
        let tries = i.map_or(0, |i| parked[i].tries) + 1;
        if tries >= NO_RESPONDERS_TRIES {
            if let Some(i) = i {
                parked.swap_remove(i);
            }
            drop(parked);
            let why = format!(
                "no responders {tries} times: no JetStream stream captures this subject \
                 (stream {}; a configuration error: add the subject to a stream, or list its \
                 data type in sink.nats.core_nats_data_types)",
                self.cfg.stream
            );
            self.refused_for_good(seq, &why);
            return;
        }
        if !self.queue.borrow_mut().park(seq) {
            return;
        }
        let p = Parked {
            seq,
            due_ns: self.now_ns() + NO_RESPONDERS_RETRY.as_nanos() as u64,
            tries,
            waiting: true,
        };
        match i {
            Some(i) => parked[i] = p,
            None => parked.push(p),
        }
        drop(parked);
        let q = self.queue.borrow();
        self.update_gauges(&q);
        if let Some(n) = self.warn_ack_error.borrow_mut().check(crate::sys::now_ns()) {
            log::warn!(
                "NATS: a JetStream publish was answered \"no responders\": no stream captures its \
                 subject (a configuration error: see `marketprism check-config --connect`), or \
                 stream {} is not ready (restart, leader election); written again every {:?}, \
                 set aside after {NO_RESPONDERS_TRIES} such answers (+{n} suppressed)",
                self.cfg.stream,
                NO_RESPONDERS_RETRY
            );
        }
    }

    /// A message the server will never store: settled, set aside in the
    /// dead-letter store, counted; the connection and the rest go on.
    fn refused_for_good(&self, seq: u64, why: &str) {
        self.stats.errors.inc();
        let mut frame = Vec::new();
        let settled = self
            .queue
            .borrow_mut()
            .settle(seq, |f| frame.extend_from_slice(f));
        if !settled {
            return;
        }
        {
            let q = self.queue.borrow();
            self.update_gauges(&q);
        }
        if let Some((subject, id, payload)) = proto::split_frame(&frame) {
            self.dead_letter(subject, id, payload, why);
        }
    }

    /// Parked messages whose time has come are written again.
    pub(super) fn unpark_due(&self) {
        if self.parked.borrow().is_empty() {
            return;
        }
        let now = self.now_ns();
        let mut woke = false;
        for p in self.parked.borrow_mut().iter_mut() {
            if p.waiting && p.due_ns <= now {
                p.waiting = false;
                woke |= self.queue.borrow_mut().unpark(p.seq);
            }
        }
        if woke {
            self.wake_writer.notify();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ack_pause_follows_the_ack_rate_within_its_bounds() {
        let ms = |n: u64| Duration::from_millis(n);
        // 100 acks in 1 ms, 300 more needed: 3 ms.
        assert_eq!(ack_pause(300, 100, 1_000_000), ms(3));
        // Fast acks: never below 1 ms; slow ones: never above 8 ms.
        assert_eq!(ack_pause(10, 1_000, 1_000_000), ms(1));
        assert_eq!(ack_pause(1_024, 10, 1_000_000), ms(8));
        // No acks in the read, or none needed: the floor.
        assert_eq!(ack_pause(500, 0, 1_000_000), ms(1));
        assert_eq!(ack_pause(0, 100, 1_000_000), ms(1));
    }
}
