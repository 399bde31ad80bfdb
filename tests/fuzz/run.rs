//! Run settings (iterations, seed), panic capture with the input that caused
//! it, and outcome tallies.

use fastrand::Rng;
use marketprism::venue::{FrameOutcome, Malformed};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

/// Iterations per target: `FUZZ_ITERS`, else `ci` (a tenth of it in debug
/// builds, which parse about ten times slower).
pub fn iters(ci: u64) -> u64 {
    match std::env::var("FUZZ_ITERS") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("FUZZ_ITERS={v:?} is not a number")),
        Err(_) if cfg!(debug_assertions) => (ci / 10).max(1),
        Err(_) => ci,
    }
}

/// `FUZZ_SEED`, else one random seed for the whole run.
pub fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| match std::env::var("FUZZ_SEED") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("FUZZ_SEED={v:?} is not a number")),
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1);
            fastrand::Rng::with_seed(t).u64(..)
        }
    })
}

/// A target's generator: the run seed mixed with the target name, so a
/// target reproduces alone (`cargo test --test fuzz <name>`).
pub fn start(target: &str, ci: u64) -> (Rng, u64) {
    started();
    let n = iters(ci);
    let s = seed();
    eprintln!("fuzz {target}: FUZZ_SEED={s} FUZZ_ITERS={n}");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in target.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    (Rng::with_seed(s ^ h), n)
}

thread_local! {
    static STARTED: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
}

pub fn started() {
    STARTED.with(|s| s.set(Some(std::time::Instant::now())));
}

/// Seconds since this thread's target started.
pub fn elapsed() -> f64 {
    STARTED.with(|s| s.get().map_or(0.0, |t| t.elapsed().as_secs_f64()))
}

/// Runs `f`; on a panic, prints what was being fed before unwinding.
pub fn guarded<T>(what: &dyn Fn() -> String, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "fuzz: panic (FUZZ_SEED={}) on input:\n{}",
                seed(),
                clip(&what())
            );
            resume_unwind(e)
        }
    }
}

/// At most 4000 characters of an input, for messages.
pub fn clip(s: &str) -> String {
    if s.len() <= 4000 {
        return s.to_string();
    }
    let mut end = 4000;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// How many inputs ended in each outcome.
#[derive(Default)]
pub struct Tally {
    pub by: BTreeMap<String, u64>,
    pub inputs: u64,
}

impl Tally {
    pub fn add(&mut self, out: FrameOutcome) {
        self.inputs += 1;
        let k = match out {
            FrameOutcome::Records(_) => "records".to_string(),
            FrameOutcome::Malformed(m) => format!("malformed:{}", m.label()),
            other => format!("{other:?}").to_ascii_lowercase(),
        };
        *self.by.entry(k).or_default() += 1;
    }

    pub fn count(&self, k: &str) -> u64 {
        self.by.get(k).copied().unwrap_or(0)
    }

    pub fn malformed(&self, m: Malformed) -> u64 {
        self.count(&format!("malformed:{}", m.label()))
    }

    pub fn print(&self, target: &str) {
        let parts: Vec<String> = self.by.iter().map(|(k, v)| format!("{k}={v}")).collect();
        eprintln!(
            "fuzz {target}: {} inputs in {:.1} s: {}",
            self.inputs,
            elapsed(),
            parts.join(" ")
        );
    }
}
