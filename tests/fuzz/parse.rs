//! Parser targets: mutated WebSocket frames and REST bodies of every venue
//! through its `Protocol`, with the properties checked on every input.

use super::alloc;
use super::json::J;
use super::mutate;
use super::run::{self, guarded, Tally};
use super::seeds::{self, Dict, RestKind, RestSeed, Seed};
use marketprism::batch::{Batch, Record};
use marketprism::book::BookMsg;
use marketprism::model::{DataType, VenueId};
use marketprism::sink::encode::{encode_json, push_msg_id, push_subject};
use marketprism::venue::{self, FrameOutcome, InstrumentMap, Malformed, ParseCtx, VenueState};
use rust_decimal::Decimal;

/// Receive time of every input (ns).
pub const RECV: u64 = 1_700_000_000_123_456_789;

/// Heap one input may take: proportional to its size. Levels and records
/// are a few times their JSON size (a level is 32 bytes, `["1","1"],` 10),
/// and vectors and the arena grow by doubling.
pub fn alloc_bound(input_len: usize) -> i64 {
    32 * input_len as i64 + (1 << 20)
}

/// What parsers need, built as the engine builds it.
pub struct Harness {
    pub venue: VenueId,
    pub map: InstrumentMap,
    pub book: BookMsg,
    pub state: VenueState,
    pub replies: Vec<String>,
    pub batch: Batch,
    /// Scratch for encoding records.
    line: Vec<u8>,
    /// Largest input seen (bounds the arena).
    pub max_len: usize,
    /// Largest heap growth of one input relative to its bound.
    pub worst_alloc_ratio: f64,
}

/// One input's result, comparable across runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub outcome: FrameOutcome,
    pub records: Vec<String>,
    pub book: Option<String>,
    pub replies: usize,
}

impl Harness {
    pub fn new(venue: VenueId, map: InstrumentMap) -> Harness {
        Harness {
            venue,
            map,
            book: BookMsg::default(),
            state: VenueState::default(),
            replies: Vec::new(),
            batch: Batch::new(1024, 64 * 1024),
            line: Vec::new(),
            max_len: 0,
            worst_alloc_ratio: 0.0,
        }
    }

    /// Feeds one frame and checks every per-input property; the batch and
    /// replies are emptied first.
    pub fn feed(&mut self, text: &str) -> FrameOutcome {
        self.batch.reset();
        self.replies.clear();
        self.max_len = self.max_len.max(text.len());
        let venue = self.venue;
        alloc::reset_peak();
        let before = alloc::live();
        let out = guarded(&|| format!("{venue} frame: {text}"), || {
            let mut cx = ParseCtx {
                venue,
                instruments: &self.map,
                book: &mut self.book,
                state: &mut self.state,
                replies: &mut self.replies,
            };
            venue::protocol(venue).on_text(text, RECV, &mut cx, &mut self.batch)
        });
        let grew = alloc::peak() - before;
        self.worst_alloc_ratio = self
            .worst_alloc_ratio
            .max(grew as f64 / alloc_bound(text.len()) as f64);
        let ctx = || format!("{venue} frame {} → {out:?}", run::clip(text));
        assert!(
            grew <= alloc_bound(text.len()),
            "{}: one frame took {grew} bytes of heap",
            ctx()
        );
        match out {
            FrameOutcome::Records(n) => {
                assert!(n > 0, "{}: Records(0)", ctx());
                assert_eq!(n as usize, self.batch.len(), "{}: count", ctx());
            }
            FrameOutcome::Book => {
                assert!(self.batch.is_empty(), "{}: records with a book", ctx());
                check_book_msg(&self.map, &self.book, &ctx);
            }
            _ => assert!(self.batch.is_empty(), "{}: records pushed", ctx()),
        }
        if matches!(venue, VenueId::BinanceSpot | VenueId::BinanceDerivatives) {
            // Binance reads flat frames with a fast scanner: it must agree
            // with the full parser on every input.
            let mut book = BookMsg::default();
            let mut batch = Batch::new(1024, 64 * 1024);
            let full = venue::binance::wire::on_frame_with(
                venue::binance::wire::Reader::Serde,
                text,
                RECV,
                venue,
                &self.map,
                &mut book,
                &mut batch,
            );
            assert_eq!(out, full, "{}: full parser differs", ctx());
            let fast_recs: Vec<String> = self.batch.iter().map(|r| format!("{r:?}")).collect();
            let full_recs: Vec<String> = batch.iter().map(|r| format!("{r:?}")).collect();
            assert_eq!(fast_recs, full_recs, "{}: records differ", ctx());
            if out == FrameOutcome::Book {
                assert_eq!(
                    format!("{:?}", self.book),
                    format!("{book:?}"),
                    "{}: book differs",
                    ctx()
                );
            }
        }
        let replies = self.replies.len();
        if venue == VenueId::DeribitDerivatives && out == FrameOutcome::Control {
            assert!(replies <= 1, "{}: {replies} replies", ctx());
            for r in &self.replies {
                assert_eq!(r, &venue::deribit::test_reply(), "{}", ctx());
            }
        } else {
            assert_eq!(replies, 0, "{}: replies queued", ctx());
        }
        for rec in self.batch.iter() {
            check_record(venue, &self.map, None, rec, &ctx);
            encode_check(&mut self.line, rec, &ctx);
        }
        out
    }

    /// Feeds `text` to a fresh copy of this harness's parser state and
    /// returns the comparable result.
    pub fn fresh_result(venue: VenueId, map: &InstrumentMap, text: &str) -> Parsed {
        let mut h = Harness::new(venue, map.clone());
        let outcome = h.feed(text);
        h.result(outcome)
    }

    pub fn result(&self, outcome: FrameOutcome) -> Parsed {
        Parsed {
            outcome,
            records: self.batch.iter().map(|r| format!("{r:?}")).collect(),
            book: (outcome == FrameOutcome::Book).then(|| format!("{:?}", self.book)),
            replies: self.replies.len(),
        }
    }
}

fn non_negative(d: &Decimal) -> bool {
    !d.is_sign_negative()
}

fn opt_ok(d: &Option<Decimal>) -> bool {
    d.as_ref().is_none_or(non_negative)
}

/// A book message handed to the engine: a listed symbol, sane levels.
pub fn check_book_msg(map: &InstrumentMap, m: &BookMsg, ctx: &dyn Fn() -> String) {
    assert!(
        map.get(&m.raw_symbol).is_some(),
        "{}: book of unlisted {:?}",
        ctx(),
        m.raw_symbol
    );
    for l in m.bids.iter().chain(&m.asks) {
        assert!(
            non_negative(&l.price) && non_negative(&l.quantity),
            "{}: negative level {l:?}",
            ctx()
        );
    }
}

/// A record's content: its venue, a listed symbol normalized as listed,
/// the receive time, no negative price or size; for polls, `inst`'s symbol.
pub fn check_record(
    venue: VenueId,
    map: &InstrumentMap,
    poll: Option<(DataType, &str)>,
    rec: &Record<'_>,
    ctx: &dyn Fn() -> String,
) {
    let o = rec.origin();
    assert_eq!(o.venue, venue, "{}", ctx());
    assert_eq!(o.receive_ts_ns, RECV, "{}", ctx());
    if let Record::Volatility(v) = rec {
        // DVOL is keyed by index (`btc_usd` → `BTC`), not instrument.
        let cur = v.index_name.split('_').next().unwrap_or("");
        assert_eq!(o.symbol, cur.to_ascii_uppercase(), "{}", ctx());
        assert!(non_negative(&v.volatility_index), "{}", ctx());
        return;
    }
    assert_eq!(
        map.normalize(o.raw_symbol),
        Some(o.symbol),
        "{}: symbol of {rec:?}",
        ctx()
    );
    if let Some((dt, raw)) = poll {
        assert_eq!(o.raw_symbol, raw, "{}", ctx());
        assert_eq!(rec.data_type(), dt, "{}", ctx());
    }
    let ok = match rec {
        // Emitted by the engine, never by a parser.
        Record::Gap(_) => false,
        Record::Trade(t) => {
            non_negative(&t.price) && non_negative(&t.quantity) && opt_ok(&t.contracts)
        }
        Record::Ticker(t) => [
            &t.bid_price,
            &t.bid_quantity,
            &t.ask_price,
            &t.ask_quantity,
            &t.last_price,
        ]
        .iter()
        .all(|d| opt_ok(d)),
        // Funding rates may be negative; prices may not.
        Record::Funding(f) => opt_ok(&f.mark_price) && opt_ok(&f.index_price),
        Record::OpenInterest(oi) => {
            non_negative(&oi.open_interest) && opt_ok(&oi.contracts) && opt_ok(&oi.value_usd)
        }
        Record::Liquidation(l) => {
            non_negative(&l.price) && non_negative(&l.quantity) && opt_ok(&l.contracts)
        }
        Record::Lsr(l) => {
            non_negative(&l.long_short_ratio) && opt_ok(&l.long_ratio) && opt_ok(&l.short_ratio)
        }
        Record::Book(_) => panic!("{}: a parser made a book record", ctx()),
        Record::Volatility(_) => true,
    };
    assert!(ok, "{}: negative value in {rec:?}", ctx());
}

/// The record's JSON line parses as JSON; subject and id build (strings
/// taken from frames end up in all three).
pub fn encode_check(line: &mut Vec<u8>, rec: &Record<'_>, ctx: &dyn Fn() -> String) {
    line.clear();
    encode_json(line, rec);
    if let Err(e) = sonic_rs::from_slice::<sonic_rs::Value>(line) {
        panic!(
            "{}: encoded line is not JSON ({e}): {}",
            ctx(),
            String::from_utf8_lossy(line)
        );
    }
    line.clear();
    push_subject(line, rec);
    push_msg_id(line, rec);
}

// ------------------------------------------------------------------ targets

pub struct Corpus {
    pub venue: VenueId,
    pub seeds: Vec<Seed>,
    pub map: InstrumentMap,
    pub dict: Dict,
    /// Each seed's result on a fresh connection.
    pub baselines: Vec<Parsed>,
}

impl Corpus {
    pub fn new(venue: VenueId) -> Corpus {
        let seeds = seeds::ws_seeds(venue);
        let map = seeds::instruments(venue, &seeds);
        let dict = Dict::from_seeds(seeds.iter());
        let baselines = seeds
            .iter()
            .map(|s| Harness::fresh_result(venue, &map, &s.text))
            .collect();
        Corpus {
            venue,
            seeds,
            map,
            dict,
            baselines,
        }
    }

    pub fn donors(&self) -> Vec<&J> {
        self.seeds.iter().filter_map(|s| s.tree.as_ref()).collect()
    }
}

/// Mutated frames of one venue, on one long-lived connection state.
pub fn ws_target(venue: VenueId, ci_iters: u64) -> Tally {
    let target = format!("ws_{}", venue.config_key());
    let (mut rng, iters) = run::start(&target, ci_iters);
    let c = Corpus::new(venue);
    // Every documented frame parses (channels not collected excepted).
    for (s, b) in c.seeds.iter().zip(&c.baselines) {
        if !s.name.contains(".ws.") {
            assert!(
                !matches!(b.outcome, FrameOutcome::Malformed(m) if m != Malformed::UnknownEvent),
                "seed {} is malformed: {:?}",
                s.name,
                b.outcome
            );
        }
    }
    let donors = c.donors();
    let mut h = Harness::new(venue, c.map.clone());
    let mut tally = Tally::default();
    let warm = iters / 10;
    let mut live_warm = 0;
    for i in 0..iters {
        if i == warm {
            live_warm = alloc::live();
        }
        let k = rng.usize(..c.seeds.len());
        let s = &c.seeds[k];
        let input = mutate::derive(&mut rng, &s.text, s.tree.as_ref(), &c.dict, &donors);
        tally.add(h.feed(&input));
        // Now and then an unmutated seed: state left by the fuzzed frames
        // must not change its result (Bybit ticker deltas depend on the
        // cached snapshot by design: skipped).
        if i % 61 == 0 {
            let k = rng.usize(..c.seeds.len());
            if !(c.seeds[k].text.contains("\"tickers.") && c.seeds[k].text.contains("delta")) {
                let out = h.feed(&c.seeds[k].text);
                assert_eq!(
                    h.result(out),
                    c.baselines[k],
                    "seed {} after fuzzing",
                    c.seeds[k].name
                );
            }
        }
    }
    // What stays is capacity sized by the largest input (book message
    // vectors, the arena's chunk), not something that accumulates per frame.
    let growth = alloc::live() - live_warm;
    assert!(
        growth <= alloc_bound(h.max_len),
        "{target}: heap grew {growth} bytes after warm-up (largest input {})",
        h.max_len
    );
    let arena = h.batch.high_water_bytes().max(h.batch.arena_bytes());
    assert!(
        arena as i64 <= alloc_bound(h.max_len),
        "{target}: arena {arena} bytes for inputs of at most {} bytes",
        h.max_len
    );
    tally.print(&target);
    eprintln!(
        "fuzz {target}: largest input {} bytes, arena {} bytes, worst heap/bound {:.3}",
        h.max_len, arena, h.worst_alloc_ratio
    );
    // The mutations reach past the JSON layer into each kind of rejection.
    if iters >= 5000 {
        for m in [
            Malformed::BadJson,
            Malformed::WrongType,
            Malformed::InvalidNumber,
            Malformed::UnknownSymbol,
        ] {
            assert!(tally.malformed(m) > 0, "{target}: never {m:?}");
        }
        assert!(tally.count("records") > 0 && tally.count("control") > 0);
    }
    tally
}

/// Unknown keys (any type, nested, long) added anywhere in a frame change
/// nothing: same outcome, same records, same book message.
pub fn unknown_fields_target(ci_iters: u64) -> u64 {
    let (mut rng, iters) = run::start("unknown_fields", ci_iters);
    let corpora: Vec<Corpus> = VenueId::ALL.into_iter().map(Corpus::new).collect();
    let mut n = 0;
    for i in 0..iters {
        let c = &corpora[i as usize % corpora.len()];
        let k = rng.usize(..c.seeds.len());
        let Some(tree) = &c.seeds[k].tree else {
            continue;
        };
        let mut t = tree.clone();
        let fields = 1 + rng.usize(..4);
        mutate::add_unknown_fields(&mut rng, &mut t, &c.dict, fields);
        // Past the parsers' nesting limit a frame is rejected whatever its
        // fields: not this property's business.
        if super::json::depth(&t) > venue::json::MAX_NESTING {
            continue;
        }
        let text = super::json::to_string(&t);
        let got = Harness::fresh_result(c.venue, &c.map, &text);
        assert_eq!(
            got,
            c.baselines[k],
            "{} seed {} with unknown fields: {}",
            c.venue,
            c.seeds[k].name,
            run::clip(&text)
        );
        n += 1;
    }
    eprintln!(
        "fuzz unknown_fields: {n} frames compared in {:.1} s",
        run::elapsed()
    );
    n
}

/// Where to cut a seed: everywhere in documented frames and short ones;
/// in long captured ones (400-level books: cost grows with the square of
/// the length) the first and last 200 bytes and `FUZZ_ITERS / 100`
/// random places (at least 200).
fn cuts(rng: &mut fastrand::Rng, text: &[u8], fixture: bool) -> Vec<usize> {
    let n = text.len();
    let all = n <= 1000 || (fixture && n <= 4000);
    let mut out: Vec<usize> = if all {
        (0..n).collect()
    } else {
        let k = (run::iters(20_000) / 100).max(200) as usize;
        (0..200)
            .chain(n - 200..n)
            .chain((0..k).map(|_| rng.usize(..n)))
            .collect()
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// Every strict prefix of every seed frame and REST body is rejected
/// (a cut frame is never half-parsed into records or a book).
pub fn truncation_target() -> u64 {
    // FUZZ_ITERS sets how many cuts long seeds get.
    let (mut rng, _) = run::start("truncation", 20_000);
    let mut n = 0;
    for venue in VenueId::ALL {
        let c = Corpus::new(venue);
        let mut h = Harness::new(venue, c.map.clone());
        for s in &c.seeds {
            let fixture = !s.name.contains(".ws.");
            for end in cuts(&mut rng, s.text.as_bytes(), fixture) {
                if !s.text.is_char_boundary(end) {
                    continue;
                }
                let out = h.feed(&s.text[..end]);
                assert!(
                    matches!(out, FrameOutcome::Malformed(_)),
                    "{venue} {} cut at {end}: {out:?}",
                    s.name
                );
                n += 1;
            }
        }
    }
    let rest = seeds::rest_seeds();
    let mut r = RestHarness::new();
    for rs in &rest {
        let b = rs.seed.text.as_bytes();
        for end in cuts(&mut rng, b, !rs.seed.name.contains("captured")) {
            let out = r.feed(rs, &b[..end]);
            assert!(
                out.is_err(),
                "{} {} cut at {end}: {out:?}",
                rs.venue,
                rs.seed.name
            );
            n += 1;
        }
    }
    eprintln!("fuzz truncation: {n} prefixes in {:.1} s", run::elapsed());
    n
}

/// REST bodies of every venue (book snapshots, polls, instrument lists).
pub struct RestHarness {
    maps: Vec<InstrumentMap>,
    msg: BookMsg,
    batch: Batch,
    line: Vec<u8>,
    pub max_len: usize,
}

impl RestHarness {
    pub fn new() -> RestHarness {
        RestHarness {
            maps: VenueId::ALL
                .into_iter()
                .map(|v| seeds::instruments(v, &[]))
                .collect(),
            msg: BookMsg::default(),
            batch: Batch::new(64, 64 * 1024),
            line: Vec::new(),
            max_len: 0,
        }
    }

    /// Parses `body` as `rs` says and checks the result; `Err(outcome)`
    /// for a rejection, `Ok(records or levels)` else.
    pub fn feed(&mut self, rs: &RestSeed, body: &[u8]) -> Result<usize, String> {
        self.batch.reset();
        self.max_len = self.max_len.max(body.len());
        let venue = rs.venue;
        let p = venue::protocol(venue);
        let what = || {
            format!(
                "{venue} {:?} body: {}",
                rs.kind,
                String::from_utf8_lossy(body)
            )
        };
        let ctx = || {
            format!(
                "{venue} {:?} {}",
                rs.kind,
                run::clip(&String::from_utf8_lossy(body))
            )
        };
        alloc::reset_peak();
        let before = alloc::live();
        let res = match rs.kind {
            RestKind::Snapshot(raw) => {
                self.msg.clear();
                let r = guarded(&what, || {
                    p.parse_book_snapshot(raw, body, RECV, &mut self.msg)
                });
                match r {
                    Ok(()) => {
                        assert!(self.msg.snapshot, "{}", ctx());
                        assert_eq!(self.msg.raw_symbol, raw, "{}", ctx());
                        check_book_msg(&self.maps[venue.index()], &self.msg, &ctx);
                        Ok(self.msg.bids.len() + self.msg.asks.len())
                    }
                    Err(m) => {
                        assert!(
                            self.msg.bids.is_empty()
                                && self.msg.asks.is_empty()
                                && self.msg.raw_symbol.is_empty(),
                            "{}: a rejected snapshot left {:?}",
                            ctx(),
                            self.msg
                        );
                        Err(format!("{m:?}"))
                    }
                }
            }
            RestKind::Poll(dt, raw) => {
                let map = &self.maps[venue.index()];
                let inst = map.get(raw).expect("poll symbol listed");
                let batch = &mut self.batch;
                let out = guarded(&what, || p.parse_poll(dt, inst, body, RECV, batch));
                let n = self.batch.len();
                match out {
                    FrameOutcome::Records(k) => assert_eq!(k as usize, n, "{}", ctx()),
                    _ => assert_eq!(n, 0, "{}: {out:?} with records", ctx()),
                }
                for rec in self.batch.iter() {
                    check_record(venue, map, Some((dt, raw)), rec, &ctx);
                    encode_check(&mut self.line, rec, &ctx);
                }
                match out {
                    FrameOutcome::Records(k) => Ok(k as usize),
                    FrameOutcome::Ignored => Ok(0),
                    other => Err(format!("{other:?}")),
                }
            }
            RestKind::Instruments => {
                let mut map = InstrumentMap::default();
                let r = guarded(&what, || p.parse_instruments(body, &mut map));
                // Bounded by the body: at most one instrument per 20 bytes.
                assert!(map.len() <= body.len() / 20 + 1, "{}", ctx());
                for i in map.iter() {
                    assert!(!i.native.is_empty(), "{}", ctx());
                    assert_eq!(
                        i.normalized,
                        format!(
                            "{}-{}",
                            i.base.to_ascii_uppercase(),
                            i.quote.to_ascii_uppercase()
                        ),
                        "{}",
                        ctx()
                    );
                    if let Some(v) = i.contract_value {
                        assert!(v > Decimal::ZERO, "{}", ctx());
                    }
                }
                match r {
                    Ok(_) if map.is_empty() => panic!("{}: Ok with no instruments", ctx()),
                    Ok(_) => Ok(map.len()),
                    Err(e) => Err(e),
                }
            }
        };
        let grew = alloc::peak() - before;
        assert!(
            grew <= alloc_bound(body.len()),
            "{}: one body took {grew} bytes of heap",
            ctx()
        );
        res
    }
}

/// Mutated REST bodies; a share with raw byte damage (invalid UTF-8 too:
/// REST bodies arrive as bytes).
pub fn rest_target(ci_iters: u64) -> Tally {
    let (mut rng, iters) = run::start("rest", ci_iters);
    let rest = seeds::rest_seeds();
    let mut h = RestHarness::new();
    // Each seed is accepted as it is (error bodies excepted).
    for rs in &rest {
        let r = h.feed(rs, rs.seed.text.as_bytes());
        if !rs.seed.name.contains("error") {
            assert!(r.is_ok(), "{} {}: {r:?}", rs.venue, rs.seed.name);
        }
    }
    let dicts: Vec<Dict> = VenueId::ALL
        .into_iter()
        .map(|v| Dict::from_seeds(rest.iter().filter(|r| r.venue == v).map(|r| &r.seed)))
        .collect();
    let mut tally = Tally::default();
    let warm = iters / 10;
    let mut live_warm = 0;
    for i in 0..iters {
        if i == warm {
            live_warm = alloc::live();
        }
        let rs = &rest[rng.usize(..rest.len())];
        let donors: Vec<&J> = rest
            .iter()
            .filter(|r| r.venue == rs.venue)
            .filter_map(|r| r.seed.tree.as_ref())
            .collect();
        let text = mutate::derive(
            &mut rng,
            &rs.seed.text,
            rs.seed.tree.as_ref(),
            &dicts[rs.venue.index()],
            &donors,
        );
        let mut body = text.into_bytes();
        if rng.u8(..8) == 0 && !body.is_empty() {
            for _ in 0..rng.usize(1..4) {
                let k = rng.usize(..body.len());
                body[k] ^= 0x80 | rng.u8(..);
            }
        }
        let r = h.feed(rs, &body);
        tally.add(match r {
            Ok(n) => FrameOutcome::Records(n as u32),
            Err(_) => FrameOutcome::Malformed(Malformed::WrongType),
        });
    }
    let growth = alloc::live() - live_warm;
    assert!(
        growth <= alloc_bound(h.max_len),
        "rest: heap grew {growth} bytes after warm-up"
    );
    eprintln!(
        "fuzz rest: {} bodies in {:.1} s, {} accepted, {} rejected, largest {} bytes",
        tally.inputs,
        run::elapsed(),
        tally.count("records"),
        tally.inputs - tally.count("records"),
        h.max_len
    );
    tally
}

/// What the fuzzing found, each as it was first seen.
pub fn regressions() {
    let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    for venue in VenueId::ALL {
        let c = Corpus::new(venue);
        let mut h = Harness::new(venue, c.map.clone());
        for s in c.seeds.iter().filter(|s| s.tree.is_some()) {
            // A 100 000-deep unknown field overflowed the core's stack
            // (sonic-rs skips ignored values recursively): now rejected.
            let at = s.text.find('{').unwrap() + 1;
            let mut t = s.text.clone();
            t.insert_str(at, &format!("\"_fz\":{},", deep(100_000)));
            assert_eq!(
                h.feed(&t),
                FrameOutcome::Malformed(Malformed::BadJson),
                "{venue} {}",
                s.name
            );
            // Within the limit an unknown field is still ignored.
            let mut t = s.text.clone();
            t.insert_str(at, &format!("\"_fz\":{},", deep(20)));
            let want = c.baselines[c.seeds.iter().position(|x| x.name == s.name).unwrap()].clone();
            assert_eq!(
                Harness::fresh_result(venue, &c.map, &t),
                want,
                "{venue} {}",
                s.name
            );
        }
    }
    // A price of one digit and a million `_` overflowed rust_decimal's
    // per-character recursion, in release too.
    let mut h = Harness::new(
        VenueId::BinanceSpot,
        seeds::instruments(VenueId::BinanceSpot, &[]),
    );
    let f = format!(
        r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":2,"s":"BTCUSDT","t":9,"p":"1{}","q":"1","T":1,"m":false}}}}"#,
        "_".repeat(1 << 20)
    );
    assert_eq!(
        h.feed(&f),
        FrameOutcome::Malformed(Malformed::InvalidNumber)
    );
    // Invalid UTF-8 inside an OKX REST book reached a debug assertion in
    // sonic-rs (raw values are taken before it checks UTF-8).
    let rest = seeds::rest_seeds();
    let okx = rest
        .iter()
        .find(|r| r.venue == VenueId::OkxSpot && matches!(r.kind, RestKind::Snapshot(_)))
        .unwrap();
    let mut body = okx.seed.text.clone().into_bytes();
    let at = okx.seed.text.find("0.6").unwrap() + 2;
    body[at] = 0xE9;
    let mut r = RestHarness::new();
    assert_eq!(r.feed(okx, &body), Err("InvalidUtf8".to_string()));
    // A Binance ratio list cut after a complete entry was rejected but
    // left that entry's record in the batch.
    let lsr = rest
        .iter()
        .find(|r| {
            matches!(r.kind, RestKind::Poll(DataType::LsrTopPosition, _))
                && r.venue == VenueId::BinanceDerivatives
        })
        .unwrap();
    let cut = &lsr.seed.text[..lsr.seed.text.len() - 1];
    assert_eq!(
        r.feed(lsr, cut.as_bytes()),
        Err("Malformed(BadJson)".to_string())
    );
}
