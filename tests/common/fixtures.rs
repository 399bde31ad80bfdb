//! The files tests read, all inside the checkout: the documented payloads of
//! each venue (`tests/fixtures/<venue>/`) and the real recorded sessions
//! (`tests/fixtures/captures/`, source and licence in its README). A missing
//! file fails the test that reads it: no test passes by skipping.

use std::path::PathBuf;

/// `tests/fixtures/<rel>`.
pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// A documented payload, `tests/fixtures/<dir>/<name>`, without its final newline.
pub fn fixture(dir: &str, name: &str) -> String {
    let p = fixture_path(dir).join(name);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
        .trim_end()
        .to_string()
}

/// A recorded session, `tests/fixtures/captures/<name>`, as recorded.
pub fn capture(name: &str) -> String {
    let p = fixture_path("captures").join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("capture {}: {e}", p.display()))
}
