//! The full per-frame path: mutated frames of every venue, interleaved, into
//! one `Pipeline` (parse, books, counters, batch, file sink). Every frame is
//! counted once under its outcome, per venue; the pipeline keeps going and
//! every record it counts reaches the file as a JSON line.

use super::parse::Corpus;
use super::run::{self, guarded};
use super::{mutate, seeds};
use marketprism::book::{BookAction, BookConfig, Books};
use marketprism::config::plan::FileSinkPlan;
use marketprism::engine::pipeline::{BookRequest, ConnState, Frame, FrameSource, Pipeline};
use marketprism::metrics::CoreStats;
use marketprism::model::{DataType, VenueId};
use marketprism::venue::{FrameOutcome, Malformed};
use std::sync::Arc;
use std::time::Duration;

#[derive(Default, Clone, Copy)]
struct Expect {
    frames: u64,
    malformed: [u64; Malformed::COUNT],
    control: u64,
    control_errors: u64,
}

pub fn target(ci_iters: u64) {
    let (mut rng, iters) = run::start("pipeline", ci_iters);
    let corpora: Vec<Corpus> = VenueId::ALL.into_iter().map(Corpus::new).collect();
    let donors: Vec<Vec<&super::json::J>> = corpora.iter().map(|c| c.donors()).collect();
    let dir = tempfile::tempdir().unwrap();
    let plan = FileSinkPlan {
        path: dir.path().to_path_buf(),
        rotate_max_bytes: 1 << 40,
        rotate_interval: Duration::from_secs(86_400),
        write_mode: marketprism::config::WriteMode::Inline,
        io_worker_cpus: Vec::new(),
        io_worker_cpus_configured: None,
    };
    let cfg = BookConfig {
        depth: 20,
        publish_interval_ns: 50_000_000,
        deltas: true,
    };
    let mut books = Books::new(
        marketprism::venue::book_rule,
        &VenueId::ALL.map(|v| (v, cfg)),
    );
    for c in &corpora {
        for i in c.map.iter() {
            books.register(c.venue, &i.native, &i.normalized);
        }
    }
    let maps = corpora.iter().map(|c| c.map.clone()).collect();
    let stats = Arc::new(CoreStats::new(0, 0));
    let mut p = Pipeline::new(0, 512, &plan, maps, stats.clone())
        .unwrap()
        .replaying()
        .with_books(books);
    let mut conns: Vec<ConnState> = VenueId::ALL.iter().map(|_| ConnState::default()).collect();
    let mut expect = [Expect::default(); VenueId::COUNT];
    let spot_snapshot = seeds::fixture("binance", "spot_depth_snapshot.json");
    let futures_snapshot = seeds::fixture("binance", "futures_depth_snapshot.json");
    let mut now = 1_700_000_000_000_000_000u64;
    for i in 0..iters {
        now += 1_000_000;
        let c = &corpora[rng.usize(..corpora.len())];
        let v = c.venue;
        let s = &c.seeds[rng.usize(..c.seeds.len())];
        let text = if rng.u8(..4) == 0 {
            s.text.clone()
        } else {
            mutate::derive(
                &mut rng,
                &s.text,
                s.tree.as_ref(),
                &c.dict,
                &donors[v.index()],
            )
        };
        let conn = &mut conns[v.index()];
        let src = FrameSource {
            conn_id: v.index(),
            venue: v,
            conn_type: None,
        };
        let answer = guarded(&|| format!("{v} frame: {text}"), || {
            p.on_frame(&src, Frame::Text(&text), now, conn)
        });
        let (out, book) = (answer.outcome, answer.book);
        conn.replies.clear();
        let e = &mut expect[v.index()];
        e.frames += 1;
        match out {
            FrameOutcome::Malformed(m) => e.malformed[m.index()] += 1,
            FrameOutcome::Control | FrameOutcome::Ignored | FrameOutcome::Notice => e.control += 1,
            FrameOutcome::ControlError => e.control_errors += 1,
            FrameOutcome::Records(_) | FrameOutcome::Book => {}
        }
        if let Some(BookRequest {
            action: BookAction::FetchSnapshot,
            raw_symbol: raw,
        }) = book
        {
            let body = if v == VenueId::BinanceSpot {
                &spot_snapshot
            } else {
                &futures_snapshot
            };
            guarded(&|| format!("{v} snapshot of {raw}"), || {
                p.on_book_snapshot(v, &raw, body.as_bytes(), now)
            });
        }
        if i % 97 == 0 {
            p.publish_books(now);
        }
        if p.is_full() || i % 1009 == 0 {
            p.flush(now);
        }
    }
    p.close().unwrap();
    let mut total = 0;
    for v in VenueId::ALL {
        let e = expect[v.index()];
        let s = stats.venue(v);
        let frames: u64 = s.frames_received.iter().map(|c| c.get()).sum();
        assert_eq!(frames, e.frames, "{v}: frames received");
        for m in Malformed::ALL {
            assert_eq!(
                s.malformed[m.index()].get(),
                e.malformed[m.index()],
                "{v}: malformed {}",
                m.label()
            );
        }
        assert_eq!(s.control.get(), e.control, "{v}: control");
        assert_eq!(
            s.control_errors.get(),
            e.control_errors,
            "{v}: control errors"
        );
        for dt in DataType::ALL {
            let (parsed, written) = (s.parsed[dt.index()].get(), s.written[dt.index()].get());
            assert_eq!(parsed, written, "{v} {dt}: parsed vs written");
            total += written;
        }
    }
    let mut lines = 0u64;
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let file = std::fs::File::open(f.unwrap().path()).unwrap();
        for line in std::io::BufRead::lines(std::io::BufReader::new(file)) {
            let line = line.unwrap();
            let line = line.as_str();
            if let Err(e) = sonic_rs::from_str::<sonic_rs::Value>(line) {
                panic!("written line is not JSON ({e}): {}", run::clip(line));
            }
            lines += 1;
        }
    }
    assert_eq!(lines, total, "lines written");
    eprintln!(
        "fuzz pipeline: {iters} frames, {total} records written, {:.1} s",
        run::elapsed()
    );
}
