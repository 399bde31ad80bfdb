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

/// Replays every capture in `input` into the plan's sinks: the file sink
/// and/or NATS (then on a glommio executor with the same publisher and spill
/// as a live core, drained before returning).
pub fn replay(plan: &Plan, input: &Path, speed: Speed) -> Result<ReplaySummary, String> {
    if plan.nats.is_none() {
        let (mut p, stats, mut reader) = open(plan, input)?;
        let mut run = Run::new(speed);
        while let Some(f) = reader.next_frame().map_err(|e| e.to_string())? {
            if let Some(wait) = run.pace(&f) {
                std::thread::sleep(wait);
            }
            run.feed(&mut p, &f);
        }
        p.publish_books(u64::MAX);
        p.close()?;
        return Ok(summary(&stats, run.frames, plan.file_sink));
    }
    crate::sys::ensure_memlock().map_err(|e| e.to_string())?;
    let plan = plan.clone();
    let input = input.to_path_buf();
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("replay")
        .io_memory(256 << 10)
        .spawn(move || async move { replay_to_nats(&plan, &input, speed).await })
        .map_err(|e| format!("starting the replay executor: {e}"))?
        .join()
        .map_err(|e| format!("replay executor: {e}"))?
}

/// How long a clean end waits for NATS acks.
const NATS_DRAIN: Duration = Duration::from_secs(30);

async fn replay_to_nats(plan: &Plan, input: &Path, speed: Speed) -> Result<ReplaySummary, String> {
    let Some(n) = plan.nats.clone() else {
        return Err("no NATS sink configured".into());
    };
    let (p, stats, mut reader) = open(plan, input)?;
    let publisher = crate::sink::nats::adapter::publisher(
        &n.config,
        0,
        &n.wants,
        &n.spill_path,
        n.spill_max_bytes,
        "replay",
        None,
    )?;
    let dir = n.spill_path.join("replay");
    let spill = crate::sink::spill::Spill::open(&dir, n.spill_max_bytes, 64 << 20)
        .map_err(|e| format!("spill {}: {e}", dir.display()))?;
    let out = crate::sink::Overflow::new(
        std::rc::Rc::new(crate::sink::nats::NatsAdapter::new(publisher.clone())),
        spill,
    );
    let mut p = p.with_message_sink(out);
    let run_task = glommio::spawn_local(publisher.clone().run());
    let mut run = Run::new(speed);
    while let Some(f) = reader.next_frame().map_err(|e| e.to_string())? {
        if let Some(wait) = run.pace(&f) {
            glommio::timer::sleep(wait).await;
        }
        run.feed(&mut p, &f);
        if run.frames % 64 == 0 {
            // Let the publisher write and read acks; move spilled records on.
            if p.spilled() > 0 {
                p.pump_spill();
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
            glommio::yield_if_needed().await;
        }
    }
    p.publish_books(u64::MAX);
    p.flush(crate::sys::now_ns());
    let deadline = Instant::now() + NATS_DRAIN;
    while p.spilled() > 0 && Instant::now() < deadline {
        p.pump_spill();
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    let left = publisher
        .drain(deadline.saturating_duration_since(Instant::now()))
        .await;
    run_task.cancel().await;
    // Whatever NATS did not acknowledge stays in the spill for a live start.
    let mut kept = 0u64;
    publisher.take_undelivered(|s, i, pl| {
        if p.spill_message(s, i, pl) {
            kept += 1;
        }
    });
    p.close()?;
    let spilled = p.spilled();
    if left > 0 || spilled > 0 {
        return Err(format!(
            "NATS acknowledged all but {left} records within {NATS_DRAIN:?}; {spilled} records are kept in the spill ({kept} saved now) and go out with the next `run`"
        ));
    }
    Ok(summary(&stats, run.frames, plan.file_sink))
}

/// The pipeline a replay feeds: one core holding every core's streams and books.
fn open(plan: &Plan, input: &Path) -> Result<(Pipeline, Arc<CoreStats>, RawReader), String> {
    let mut maps: Vec<InstrumentMap> = Vec::new();
    for v in VenueId::ALL {
        maps.push(read_instruments(input, v).unwrap_or_default());
    }
    let mut all = plan.cores[0].clone();
    for c in &plan.cores[1..] {
        all.connections.extend(c.connections.iter().cloned());
        all.polls.extend(c.polls.iter().cloned());
    }
    let (_, books) = super::core_books_and_instruments(plan, &all, &maps);
    // Every recorded instrument stays known (a capture may hold more symbols
    // than the replay config lists), collecting the venue's configured types.
    for v in &plan.venues {
        let mut wanted = crate::model::DataTypeSet::default();
        v.data_types.iter().for_each(|&d| wanted.insert(d));
        let m = &mut maps[v.id.index()];
        let natives: Vec<String> = m.iter().map(|i| i.native.clone()).collect();
        for n in natives {
            m.set_wanted(&n, wanted);
        }
    }
    let reader = RawReader::open(input).map_err(|e| e.to_string())?;
    let stats = Arc::new(CoreStats::new(0, 0));
    let p = Pipeline::new(
        0,
        plan.engine.batch_max_events,
        &plan.sink,
        maps,
        stats.clone(),
    )
    .map_err(|e| format!("sink: {e}"))?
    .replaying()
    .with_books(books);
    let p = if plan.file_sink {
        p
    } else {
        p.without_file_sink()
    };
    Ok((p, stats, reader))
}

/// Frame-by-frame replay state: pacing and per-connection parser state.
struct Run {
    speed: Speed,
    started: Instant,
    first_ns: Option<u64>,
    frames: u64,
    /// Parser state per recorded connection, as it was live.
    conns: std::collections::HashMap<usize, super::pipeline::ConnState>,
}

impl Run {
    fn new(speed: Speed) -> Run {
        Run {
            speed,
            started: Instant::now(),
            first_ns: None,
            frames: 0,
            conns: Default::default(),
        }
    }

    /// How long to wait before `f` at the chosen speed.
    fn pace(&mut self, f: &crate::capture::RawFrame) -> Option<Duration> {
        let Speed::Times(x) = self.speed else {
            return None;
        };
        let first = *self.first_ns.get_or_insert(f.receive_ns);
        let due = Duration::from_nanos(((f.receive_ns.saturating_sub(first)) as f64 / x) as u64);
        due.checked_sub(self.started.elapsed())
    }

    fn feed(&mut self, p: &mut Pipeline, f: &crate::capture::RawFrame) {
        self.frames += 1;
        if f.binary {
            p.on_rejected(
                f.venue,
                None,
                Malformed::NonText,
                f.payload.len(),
                f.receive_ns,
            );
            return;
        }
        match std::str::from_utf8(&f.payload) {
            Ok(text) => {
                let cstate = self.conns.entry(f.conn_id).or_default();
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
}

fn summary(stats: &CoreStats, frames: u64, file_sink: bool) -> ReplaySummary {
    let mut s = ReplaySummary {
        frames,
        ..Default::default()
    };
    for v in VenueId::ALL {
        let vs = stats.venue(v);
        // Records out: written to files, or (NATS alone) produced and acknowledged.
        let counts = if file_sink { &vs.written } else { &vs.parsed };
        s.records += DataType::ALL
            .iter()
            .map(|d| counts[d.index()].get())
            .sum::<u64>();
        s.malformed += vs.malformed.iter().map(|c| c.get()).sum::<u64>();
    }
    s
}
