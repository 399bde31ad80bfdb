use marketprism::batch::Batch;
use marketprism::book::BookMsg;
use marketprism::model::VenueId;
use marketprism::venue::{self, InstrumentMap, ParseCtx, VenueState};

#[test]
fn esc() {
    let mut map = InstrumentMap::default();
    map.insert("BTCUSDT", "BTC", "USDT", true);
    for n in [
        10usize, 1000, 10_000, 16_000, 17_000, 20_000, 50_000, 100_000,
    ] {
        for unit in ["\\u0041", "a", "\\\"", "é"] {
            let f = format!(
                r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":2,"s":"BTCUSDT","x":"{}","t":9,"p":"1","q":"1","T":1,"m":false}}}}"#,
                unit.repeat(n)
            );
            let mut book = BookMsg::default();
            let mut state = VenueState::default();
            let mut replies = Vec::new();
            let mut batch = Batch::new(16, 1024);
            let mut cx = ParseCtx {
                venue: VenueId::BinanceSpot,
                instruments: &map,
                book: &mut book,
                state: &mut state,
                replies: &mut replies,
            };
            let out = venue::protocol(VenueId::BinanceSpot).on_text(&f, 1, &mut cx, &mut batch);
            let v = sonic_rs::from_str::<sonic_rs::Value>(&f)
                .map(|_| ())
                .map_err(|e| e.to_string());
            eprintln!("{n} {unit}: {out:?} value: {v:?}");
        }
    }
}
