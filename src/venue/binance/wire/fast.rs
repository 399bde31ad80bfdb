//! The fast path: frames in the exact layout Binance writes, read by the
//! flat scanner into the same [`Event`] the full deserializer fills (most
//! frames are trades; see `benches/parse.rs`).

use super::*;

/// A trade or aggregate trade in the exact layout Binance writes (docs and
/// recorded sessions: compact, keys in this order), read literal by literal;
/// any difference (another event, key order, whitespace, escapes) is `None`
/// and [`flat_frame`] reads the frame. It accepts a subset of what
/// `flat_frame` accepts and fills the same [`Event`]: `nq`, `f`, `l` and
/// `M`, which `flat_event` ignores, must be scalars of their documented type.
/// Why: trades are most of the volume, and a compare per member is about
/// half the cost of scanning each key and matching it.
pub(super) fn trade_layout(text: &str) -> Option<(&str, Event<'_>)> {
    let mut sc = Scanner::new(text);
    sc.literal(br#"{"stream":""#)?;
    let stream = sc.string_rest()?;
    sc.literal(br#","data":{"e":""#)?;
    let mut ev = Event::empty();
    let event = sc.string_rest()?;
    ev.event = Some(event);
    let agg = match event {
        "trade" => false,
        "aggTrade" => true,
        _ => return None,
    };
    sc.literal(br#","E":"#)?;
    ev.event_time = Some(sc.number()?);
    sc.literal(br#","s":""#)?;
    ev.symbol = Some(sc.string_rest()?);
    if agg {
        sc.literal(br#","a":"#)?;
        ev.a = Field::Num(sc.number()?);
    } else {
        sc.literal(br#","t":"#)?;
        ev.trade_id = Some(sc.number()?);
    }
    sc.literal(br#","p":""#)?;
    ev.price = Some(sc.string_rest()?);
    sc.literal(br#","q":""#)?;
    ev.quantity = Some(sc.string_rest()?);
    if agg {
        // USDⓈ-M adds the notional `nq`; spot does not.
        if sc.literal(br#","nq":""#).is_some() {
            sc.string_rest()?;
        }
        sc.literal(br#","f":"#)?;
        sc.number()?;
        sc.literal(br#","l":"#)?;
        sc.number()?;
    }
    sc.literal(br#","T":"#)?;
    ev.time = Some(sc.number()?);
    sc.literal(br#","m":"#)?;
    ev.buyer_is_maker = Some(sc.boolean()?);
    if sc.literal(br#","M":"#).is_some() {
        sc.boolean()?;
    }
    sc.literal(b"}}")?;
    sc.end()?;
    Some((stream, ev))
}

/// `{"stream":"…","data":{flat event}}` read by the fast scanner, or `None`
/// (the full parser decides). Reads each key exactly as [`EventSeed`] does;
/// a value of another type than that key's declines, so the full parser
/// reports it.
pub(super) fn flat_frame(text: &str) -> Option<(&str, Event<'_>)> {
    let mut sc = Scanner::new(text);
    let mut stream = None;
    let mut data = None;
    sc.object(|key, sc| {
        match key {
            "stream" => stream = Some(sc.string()?),
            "data" => data = Some(flat_event(sc)?),
            // Control answers and raw events: the full parser's.
            _ => return None,
        }
        Some(())
    })?;
    sc.end()?;
    Some((stream?, data?))
}

/// The `data` object of [`flat_frame`].
fn flat_event<'a>(sc: &mut Scanner<'a>) -> Option<Event<'a>> {
    let mut ev = Event::empty();
    sc.object(|key, sc| {
        let v = sc.scalar()?;
        let (s, n, flag) = match v {
            Scalar::Str(s) => (Some(s), None, None),
            Scalar::U64(n) => (None, Some(n), None),
            Scalar::Bool(b) => (None, None, Some(b)),
        };
        match key {
            "e" => ev.event = Some(s?),
            "E" => ev.event_time = Some(n?),
            "T" => ev.time = Some(n?),
            "s" => ev.symbol = Some(s?),
            "t" => ev.trade_id = Some(n?),
            "p" => ev.price = Some(s?),
            "q" => ev.quantity = Some(s?),
            "m" => ev.buyer_is_maker = Some(flag?),
            "U" => ev.first_update = Some(n?),
            "u" => ev.last_update = Some(n?),
            "pu" => ev.prev_update = Some(i64::try_from(n?).ok()?),
            "A" => ev.ask_qty = Some(s?),
            "B" => ev.bid_qty = Some(s?),
            "r" => ev.funding_rate = Some(s?),
            "i" => ev.index_price = Some(s?),
            "a" | "b" => {
                let f = match v {
                    Scalar::Str(s) => Field::Str(s),
                    Scalar::U64(n) => Field::Num(n),
                    Scalar::Bool(_) => return None,
                };
                if key == "a" {
                    ev.a = f;
                } else {
                    ev.b = f;
                }
            }
            // `forceOrder`'s `o` must be an object (the full parser reports
            // a scalar there).
            "o" => return None,
            _ => {}
        }
        Some(())
    })?;
    Some(ev)
}
