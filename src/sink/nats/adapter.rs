//! The NATS publisher as a core's [`MessageSink`]: each record takes the
//! transport its data type was given at connect ([`super::route`]): a
//! JetStream publish with an ack, a core NATS publish, or, when nothing can
//! carry it, the dead-letter store, so it never blocks the records behind it.

use super::config::NatsSinkConfig;
use super::publisher::Publisher;
use super::route::{Resolution, Route, Routes, Want};
use super::tail;
use crate::sink::spill::Spill;
use crate::sink::MessageSink;
use std::path::Path;
use std::rc::Rc;

pub struct NatsAdapter {
    publisher: Rc<Publisher>,
    routes: Rc<Routes>,
}

impl NatsAdapter {
    pub fn new(publisher: Rc<Publisher>) -> NatsAdapter {
        NatsAdapter {
            routes: publisher.routes(),
            publisher,
        }
    }
}

impl MessageSink for NatsAdapter {
    fn try_send(&self, subject: &str, msg_id: &str, payload: &[u8]) -> bool {
        match self.routes.route(subject) {
            r @ (Route::Ack | Route::Plain) => self
                .publisher
                .try_publish(subject, msg_id, payload, matches!(r, Route::Ack))
                .is_ok(),
            Route::DeadLetter => {
                self.publisher.dead_letter(
                    subject,
                    msg_id,
                    payload,
                    "no JetStream stream captures this subject and its data type is not \
                     published over core NATS (see `marketprism check-config --connect`)",
                );
                true
            }
            // Not connected since start: the record waits (spill) until the
            // transports are known.
            Route::Unknown => false,
        }
    }

    /// Spilled as frame tails whatever the route (looked up when taken
    /// back, not twice): a record whose type goes over core NATS or to the
    /// dead-letter store then is split back, the rare path.
    fn spill_form(
        &self,
        subject: &str,
        msg_id: &str,
        payload: &[u8],
        receive_ns: u64,
        meta: &mut Vec<u8>,
        head: &mut Vec<u8>,
    ) -> Option<&'static [u8]> {
        self.publisher
            .spill_form(subject, msg_id, payload.len(), receive_ns, meta, head)
    }

    fn hand_off(&self, on: bool) {
        self.publisher.hand_off(on);
    }

    fn try_send_framed(&self, subject: &str, meta: &[u8], frame: &[u8]) -> bool {
        match self.routes.route(subject) {
            r @ (Route::Ack | Route::Plain) => self
                .publisher
                .try_publish_framed(subject, meta, frame, matches!(r, Route::Ack))
                .is_ok(),
            // Rare (the stream changed since it was spilled): as a record.
            Route::DeadLetter => match tail::split(frame) {
                Some((id, payload)) => self.try_send(subject, id, payload),
                None => {
                    self.publisher.dead_letter(
                        subject,
                        "",
                        frame,
                        "spilled frame unreadable (damaged spill file)",
                    );
                    true
                }
            },
            Route::Unknown => false,
        }
    }
}

/// One core's publisher with its routing table (seeded from the start-up
/// preflight when NATS answered it) and its dead-letter store
/// `<spill_path>/dead-letter/<name>`.
pub fn publisher(
    cfg: &NatsSinkConfig,
    core: usize,
    wants: &[Want],
    spill_path: &Path,
    spill_max_bytes: u64,
    name: &str,
    seed: Option<&Resolution>,
) -> Result<Rc<Publisher>, String> {
    let routes = Rc::new(Routes::default());
    if let Some(r) = seed {
        routes.set(r);
    }
    let dir = spill_path.join("dead-letter").join(name);
    let dead = Spill::open(&dir, spill_max_bytes, 64 << 20)
        .map_err(|e| format!("dead-letter store {}: {e}", dir.display()))?;
    if !dead.is_empty() {
        log::warn!(
            "{name}: {} records from earlier runs are in the dead-letter store {} \
             (no stream could store them)",
            dead.len(),
            dir.display()
        );
    }
    let p = Publisher::new(cfg.clone(), core, wants.to_vec(), routes, Some(dead));
    if let Some(r) = seed {
        p.stats().unroutable_types.set(r.errors.len() as i64);
    }
    Ok(p)
}
