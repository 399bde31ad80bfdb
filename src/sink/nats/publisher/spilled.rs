//! JetStream messages through the spill in their ready-to-send form
//! ([`super::super::tail`]): written as a frame's tail with the record's
//! receive time beside it, taken back into the queue with one copy.

use super::super::tail;
use super::*;

/// Bytes of the meta kept beside a tail: the record's `receive_ts_ns`, LE.
const META: usize = 8;

impl Publisher {
    /// The spill form of a JetStream publish: `meta` and the tail's `head`
    /// (the payload and the returned end complete it). None when the message
    /// does not go out as a JetStream publish or would be refused anyway
    /// (bad subject or id): it is spilled as a record and meets its fate
    /// when taken back, as before.
    pub fn spill_form(
        &self,
        subject: &str,
        msg_id: &str,
        payload_len: usize,
        receive_ns: u64,
        meta: &mut Vec<u8>,
        head: &mut Vec<u8>,
    ) -> Option<&'static [u8]> {
        if !self.cfg.jetstream || !proto::valid_subject(subject) || !proto::valid_msg_id(msg_id) {
            return None;
        }
        meta.extend_from_slice(&receive_ns.to_le_bytes());
        tail::encode_head(head, msg_id, payload_len);
        Some(tail::END)
    }

    /// Queues a message the spill kept in the form above: the frame is the
    /// head and one copy of `frame`. `ack = false` (its type goes over core
    /// NATS now), right after a reconnect (the resend floors look at each
    /// id), or a meta of another size: decoded and queued as a record.
    pub fn try_publish_framed(
        &self,
        subject: &str,
        meta: &[u8],
        frame: &[u8],
        ack: bool,
    ) -> Result<(), Full> {
        let fast =
            ack && self.cfg.jetstream && meta.len() == META && self.floors.borrow().is_empty();
        if !fast {
            let Some((id, payload)) = tail::split(frame) else {
                return self.unreadable(subject, frame);
            };
            return self.try_publish(subject, id, payload, ack);
        }
        if !proto::valid_subject(subject) {
            return self.refuse("invalid subject", subject);
        }
        let Some((_, body)) = tail::sizes(frame) else {
            return self.unreadable(subject, frame);
        };
        if body > self.max_payload.get() {
            return self.refuse("larger than the server's max_payload", subject);
        }
        let mut q = self.queue.borrow_mut();
        let len = tail::frame_len(subject, &self.inbox, q.next_seq(), frame.len());
        if q.live_bytes() + len > self.cfg.max_buffered_bytes {
            return Err(Full);
        }
        let mut ns = [0u8; META];
        ns.copy_from_slice(meta);
        let now = self.queue_clock();
        let inbox = &self.inbox;
        q.push(len, true, now, u64::from_le_bytes(ns), |buf, seq| {
            tail::encode_from_tail(buf, subject, inbox, seq, frame);
        });
        self.update_gauges(&q);
        drop(q);
        self.wake_writer.notify();
        Ok(())
    }

    /// A spilled frame whose framing does not check out (a damaged spill
    /// file): set aside as it is, so it blocks nothing and stays readable.
    fn unreadable(&self, subject: &str, frame: &[u8]) -> Result<(), Full> {
        self.dead_letter(
            subject,
            "",
            frame,
            "spilled frame unreadable (damaged spill file)",
        );
        Ok(())
    }
}
