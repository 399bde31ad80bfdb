//! `marketprism replay`: feeds raw captures through the same parsers, batch
//! and file sink as a live run, on one thread, in receive order. Output
//! depends only on the capture (receive times come from it), so the same
//! input gives byte-identical records: production incidents become
//! regression tests.

use super::pipeline::Pipeline;
use crate::capture::{read_instruments, RawReader};
use crate::config::Plan;
use crate::metrics::CoreStats;
use crate::model::{DataType, VenueId};
use crate::venue::{InstrumentMap, Malformed};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Replay pacing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As fast as possible.
    Max,
    /// Real time multiplied by this factor.
    Times(f64),
}

/// What a replay did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplaySummary {
    pub frames: u64,
    pub records: u64,
    pub malformed: u64,
}

/// Replays every capture in `input` into the plan's file sink.
pub fn replay(plan: &Plan, input: &Path, speed: Speed) -> Result<ReplaySummary, String> {
    let mut maps: Vec<InstrumentMap> = Vec::new();
    for v in VenueId::ALL {
        maps.push(read_instruments(input, v).unwrap_or_default());
    }
    // One core replays everything: it gets every core's streams and books.
    let mut all = plan.cores[0].clone();
    for c in &plan.cores[1..] {
        all.connections.extend(c.connections.iter().cloned());
        all.polls.extend(c.polls.iter().cloned());
    }
    let (maps, books) = super::core_books_and_instruments(plan, &all, &maps);
    let mut reader = RawReader::open(input).map_err(|e| e.to_string())?;
    let stats = Arc::new(CoreStats::new(0, 0));
    let mut p = Pipeline::new(
        0,
        plan.engine.batch_max_events,
        &plan.sink,
        maps,
        stats.clone(),
    )
    .map_err(|e| format!("sink: {e}"))?
    .replaying()
    .with_books(books);
    let started = Instant::now();
    let mut first_ns = None;
    let mut frames = 0u64;
    // Parser state per recorded connection, as it was live.
    let mut conns: std::collections::HashMap<usize, super::pipeline::ConnState> =
        std::collections::HashMap::new();
    while let Some(f) = reader.next_frame().map_err(|e| e.to_string())? {
        frames += 1;
        if let Speed::Times(x) = speed {
            let first = *first_ns.get_or_insert(f.receive_ns);
            let due =
                Duration::from_nanos(((f.receive_ns.saturating_sub(first)) as f64 / x) as u64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        if f.binary {
            p.on_rejected(
                f.venue,
                None,
                Malformed::NonText,
                f.payload.len(),
                f.receive_ns,
            );
            continue;
        }
        match std::str::from_utf8(&f.payload) {
            Ok(text) => {
                let cstate = conns.entry(f.conn_id).or_default();
                p.on_text(f.venue, None, text, f.receive_ns, cstate);
                cstate.replies.clear();
            }
            Err(_) => p.on_rejected(
                f.venue,
                None,
                Malformed::InvalidUtf8,
                f.payload.len(),
                f.receive_ns,
            ),
        }
        // Book publishing follows the recorded clock, so output stays deterministic.
        p.publish_books(f.receive_ns);
        if p.is_full() {
            p.flush(f.receive_ns);
        }
    }
    p.publish_books(u64::MAX);
    p.close()?;
    let mut s = ReplaySummary {
        frames,
        ..Default::default()
    };
    for v in VenueId::ALL {
        let vs = stats.venue(v);
        s.records += DataType::ALL
            .iter()
            .map(|d| vs.written[d.index()].get())
            .sum::<u64>();
        s.malformed += vs.malformed.iter().map(|c| c.get()).sum::<u64>();
    }
    Ok(s)
}
