use marketprism::batch::Batch;
use marketprism::book::BookMsg;
use marketprism::model::VenueId;
use marketprism::venue::{self, InstrumentMap, ParseCtx, VenueState};

#[test]
fn deep() {
    let depth: usize = std::env::var("D")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let arr = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let obj = format!("{}1{}", "{\"n\":".repeat(depth), "}".repeat(depth));
    let map = InstrumentMap::default();
    for v in VenueId::ALL {
        for inner in [&arr, &obj] {
            for f in [
                format!("{{\"x\":{inner}}}"),
                format!("{{\"stream\":\"a@trade\",\"data\":{{\"x\":{inner}}}}}"),
                format!("{{\"arg\":{{\"channel\":\"trades\"}},\"data\":[{{\"x\":{inner}}}]}}"),
                format!("{{\"topic\":\"publicTrade.X\",\"type\":\"snapshot\",\"data\":[{{\"x\":{inner}}}]}}"),
                format!("{{\"method\":\"subscription\",\"params\":{{\"channel\":\"trades.X\",\"data\":[{{\"x\":{inner}}}]}}}}"),
                inner.to_string(),
            ] {
                let mut book = BookMsg::default();
                let mut state = VenueState::default();
                let mut replies = Vec::new();
                let mut batch = Batch::new(16, 1024);
                let mut cx = ParseCtx { venue: v, instruments: &map, book: &mut book, state: &mut state, replies: &mut replies };
                eprintln!("{v} {}", &f[..40.min(f.len())]);
                let out = venue::protocol(v).on_text(&f, 1, &mut cx, &mut batch);
                eprintln!(" -> {out:?}");
            }
        }
    }
}
