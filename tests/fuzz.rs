//! Property/fuzz tests of every venue parser and of the book engine.
//!
//! Inputs are generated from the real seed frames (tests/fixtures, and a
//! sample of each frame kind of the captures in `tests/fixtures/captures`)
//! by structure-aware mutations: values of another JSON type, odd
//! numbers (`1e400`, `-0`, 40 digits, `NaN`, `0x10`, …), absurd timestamps
//! and ids, removed / unknown / duplicated keys, deep nesting, long strings,
//! huge arrays, crossover between seeds; then sometimes byte damage (cuts,
//! bit flips kept valid UTF-8, splices). Book sequences are generated per
//! sync rule against a `BTreeMap` model.
//!
//! Properties: no panic; every frame gets an outcome and only `Records(n)`
//! adds records (exactly `n`, each with the venue, a listed symbol, the
//! receive time, no negative price or size, and a JSON line that parses);
//! heap per input proportional to its size and no growth over a run;
//! unknown fields change nothing; every cut frame is rejected; a synced
//! book is never crossed and holds no zero or negative size; a side keeps
//! at most `MAX_LEVELS`; published books are best first and within depth;
//! applied update ids follow each rule; a gap-free stream keeps the engine
//! equal to the model, and a clean resync after chaos brings it back;
//! through the `Pipeline`, every frame is counted once, per venue, under
//! its outcome, and every record counted reaches the file.
//!
//! CI runs a short default: about 19 s in release on two busy cores (a
//! tenth of the iterations in debug, about 30 s). The long run, kept
//! outside CI (about 10 million inputs, 7 minutes on the same two cores;
//! time grows linearly with `FUZZ_ITERS`):
//!
//! ```text
//! FUZZ_ITERS=500000 cargo test --release --test fuzz -- --nocapture
//! ```
//!
//! `FUZZ_ITERS` is per target; `FUZZ_SEED` (printed by every target) replays
//! a run: `FUZZ_SEED=<n> cargo test --release --test fuzz <target>`.

mod common;

use common::alloc;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

#[path = "fuzz/book.rs"]
mod book;
#[path = "fuzz/json.rs"]
mod json;
#[path = "fuzz/mutate.rs"]
mod mutate;
#[path = "fuzz/parse.rs"]
mod parse;
#[path = "fuzz/pipeline.rs"]
mod pipeline;
#[path = "fuzz/run.rs"]
mod run;
#[path = "fuzz/seeds.rs"]
mod seeds;

use book::Rule;
use marketprism::model::VenueId;

/// CI inputs of each parser target (release; a tenth in debug).
const WS_ITERS: u64 = 15_000;

#[test]
fn ws_binance_spot() {
    parse::ws_target(VenueId::BinanceSpot, WS_ITERS);
}

#[test]
fn ws_binance_derivatives() {
    parse::ws_target(VenueId::BinanceDerivatives, WS_ITERS);
}

#[test]
fn ws_okx_spot() {
    parse::ws_target(VenueId::OkxSpot, WS_ITERS);
}

#[test]
fn ws_okx_derivatives() {
    parse::ws_target(VenueId::OkxDerivatives, WS_ITERS);
}

#[test]
fn ws_deribit_derivatives() {
    parse::ws_target(VenueId::DeribitDerivatives, WS_ITERS);
}

#[test]
fn ws_bybit_spot() {
    parse::ws_target(VenueId::BybitSpot, WS_ITERS);
}

#[test]
fn ws_bybit_linear() {
    parse::ws_target(VenueId::BybitLinear, WS_ITERS);
}

#[test]
fn rest_bodies() {
    parse::rest_target(WS_ITERS);
}

#[test]
fn unknown_fields_are_ignored() {
    parse::unknown_fields_target(WS_ITERS / 2);
}

#[test]
fn found_bugs_stay_fixed() {
    parse::regressions();
}

#[test]
fn every_cut_frame_is_rejected() {
    parse::truncation_target();
}

#[test]
fn pipeline_counts_every_frame() {
    pipeline::target(WS_ITERS / 2);
}

/// CI messages of each book target (release; a tenth in debug).
const BOOK_ITERS: u64 = 12_000;

#[test]
fn book_model_binance_spot() {
    book::model_target(Rule::BinanceSpot, 2 * BOOK_ITERS);
}

#[test]
fn book_model_binance_futures() {
    book::model_target(Rule::BinanceFutures, 2 * BOOK_ITERS);
}

#[test]
fn book_model_okx() {
    book::model_target(Rule::Okx, 2 * BOOK_ITERS);
}

#[test]
fn book_model_bybit() {
    book::model_target(Rule::Bybit, 2 * BOOK_ITERS);
}

#[test]
fn book_model_deribit() {
    book::model_target(Rule::Deribit, 2 * BOOK_ITERS);
}

#[test]
fn book_side_is_capped() {
    book::deep_book_is_capped();
}

#[test]
fn book_chaos_binance_spot() {
    book::chaos_target(Rule::BinanceSpot, BOOK_ITERS);
}

#[test]
fn book_chaos_binance_futures() {
    book::chaos_target(Rule::BinanceFutures, BOOK_ITERS);
}

#[test]
fn book_chaos_okx() {
    book::chaos_target(Rule::Okx, BOOK_ITERS);
}

#[test]
fn book_chaos_bybit() {
    book::chaos_target(Rule::Bybit, BOOK_ITERS);
}

#[test]
fn book_chaos_deribit() {
    book::chaos_target(Rule::Deribit, BOOK_ITERS);
}
