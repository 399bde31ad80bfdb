//! `books` frames and the REST book snapshot → the reused [`BookMsg`]
//! (levels written straight into its vectors, in the venue's units).

use super::*;

/// `books`: fills `cx.book` (levels in the venue's units: contracts for swaps).
pub(super) fn book(
    inst_id: Option<&str>,
    action: Option<&str>,
    data: &str,
    cx: &mut ParseCtx<'_>,
) -> Result<(), Malformed> {
    let Some(native) = inst_id else {
        return Err(Malformed::WrongType);
    };
    let snapshot = match action {
        Some("snapshot") => true,
        Some("update") => false,
        _ => return Err(Malformed::WrongType),
    };
    if cx.instruments.get(native).is_none() {
        return Err(Malformed::UnknownSymbol);
    }
    fill_book(cx.book, native, snapshot, data)
}

/// The fast path for `books` pushes in OKX's layout: one strict byte pass
/// (`flat::Scanner`) over the whole frame instead of the envelope pass, a
/// skip of `data` and a serde pass over it. It accepts only frames whose
/// members are the ones OKX sends (strings without escapes, integers, level
/// rows of strings), each once; anything else answers `None` and the full
/// parser decides, as before. What it accepts reads as the full parser reads
/// it (`tests`: both on the same frames, valid and mutated).
pub(super) fn fast_book(text: &str, cx: &mut ParseCtx<'_>) -> Option<Result<(), Malformed>> {
    if !text.starts_with(r#"{"arg":{"channel":"books","#) {
        return None;
    }
    let got = scan_frame(text, cx.book);
    let Some((native, action, fields)) = got else {
        cx.book.clear();
        return None;
    };
    let snapshot = match action {
        "snapshot" => true,
        "update" => false,
        _ => return Some(Err(Malformed::WrongType)),
    };
    if cx.instruments.get(native).is_none() {
        return Some(Err(Malformed::UnknownSymbol));
    }
    let msg = &mut *cx.book;
    msg.raw_symbol.push_str(native);
    msg.snapshot = snapshot;
    Some(finish(msg, &fields))
}

/// `{"arg":{"channel":"books","instId":..},"action":..,"data":[{..}]}` →
/// (instId, action, fields), levels into `msg` (cleared first).
fn scan_frame<'a>(text: &'a str, msg: &mut BookMsg) -> Option<(&'a str, &'a str, BookFields<'a>)> {
    msg.clear();
    let mut sc = Scanner::new(text);
    let (mut inst, mut action, mut fields) = (None, None, None);
    sc.object(|key, sc| {
        match key {
            "arg" if inst.is_none() => {
                let (mut channel, mut id) = (None, None);
                sc.object(|k, sc| {
                    let slot = match k {
                        "channel" => &mut channel,
                        "instId" => &mut id,
                        _ => return None,
                    };
                    if slot.is_some() {
                        return None;
                    }
                    *slot = Some(sc.string()?);
                    Some(())
                })?;
                if channel != Some("books") {
                    return None;
                }
                inst = Some(id?);
            }
            "action" if action.is_none() => action = Some(sc.string()?),
            "data" if fields.is_none() => {
                open(sc, b'[')?;
                fields = Some(scan_entry(sc, msg)?);
                open(sc, b']')?;
            }
            _ => return None,
        }
        Some(())
    })?;
    sc.end()?;
    Some((inst?, action?, fields?))
}

/// Consumes `c` after whitespace.
#[inline]
fn open(sc: &mut Scanner<'_>, c: u8) -> Option<()> {
    if sc.peek()? != c {
        return None;
    }
    sc.literal(&[c])
}

/// A JSON integer that fits an `i64`.
#[inline]
fn int(sc: &mut Scanner<'_>) -> Option<i64> {
    if sc.peek()? == b'-' {
        sc.literal(b"-")?;
        let v = sc.number()?;
        0i64.checked_sub_unsigned(v)
    } else {
        i64::try_from(sc.number()?).ok()
    }
}

/// One book entry: levels into `msg`, the rest returned.
fn scan_entry<'a>(sc: &mut Scanner<'a>, msg: &mut BookMsg) -> Option<BookFields<'a>> {
    let mut f = BookFields::default();
    sc.object(|key, sc| {
        match key {
            "asks" if !f.asks => {
                scan_levels(sc, &mut msg.asks)?;
                f.asks = true;
            }
            "bids" if !f.bids => {
                scan_levels(sc, &mut msg.bids)?;
                f.bids = true;
            }
            "ts" if f.ts.is_none() => f.ts = Some(sc.string()?),
            "checksum" if f.checksum.is_none() => f.checksum = Some(int(sc)?),
            "seqId" if f.seq_id.is_none() => f.seq_id = Some(int(sc)?),
            "prevSeqId" if f.prev_seq_id.is_none() => f.prev_seq_id = Some(int(sc)?),
            _ => return None,
        }
        Some(())
    })?;
    Some(f)
}

/// `[[price, size, ...strings], ...]` appended to `out`.
fn scan_levels(sc: &mut Scanner<'_>, out: &mut Vec<Level>) -> Option<()> {
    open(sc, b'[')?;
    if sc.peek()? == b']' {
        return sc.literal(b"]");
    }
    loop {
        open(sc, b'[')?;
        let px = sc.string()?;
        open(sc, b',')?;
        let sz = sc.string()?;
        loop {
            match sc.peek()? {
                b',' => {
                    sc.literal(b",")?;
                    sc.string()?;
                }
                b']' => break,
                _ => return None,
            }
        }
        sc.literal(b"]")?;
        let (price, quantity) = (size(px).ok()?, size(sz).ok()?);
        out.push(Level { price, quantity });
        match sc.peek()? {
            b',' => sc.literal(b",")?,
            b']' => return sc.literal(b"]"),
            _ => return None,
        }
    }
}

/// Parses a one-entry `data` array into `msg` (cleared first).
fn fill_book(msg: &mut BookMsg, native: &str, snapshot: bool, data: &str) -> Result<(), Malformed> {
    msg.clear();
    msg.raw_symbol.push_str(native);
    msg.snapshot = snapshot;
    let mut bad = None;
    let mut de = sonic_rs::Deserializer::from_str(data);
    let fields = match (BookData {
        msg: &mut *msg,
        bad: &mut bad,
    })
    .deserialize(&mut de)
    {
        Ok(f) => f,
        Err(e) => return Err(bad.unwrap_or_else(|| classify(&e))),
    };
    finish(msg, &fields)
}

/// Checks and stores what a book entry carries besides its levels.
fn finish(msg: &mut BookMsg, fields: &BookFields<'_>) -> Result<(), Malformed> {
    let (Some(ts), true, true) = (fields.ts, fields.asks, fields.bids) else {
        return Err(Malformed::WrongType);
    };
    msg.ts_ms = ms(ts)?;
    // Before seqId existed (2022) books had only the checksum: last_id 0, prev None.
    if let Some(seq) = fields.seq_id {
        msg.last_id = u64::try_from(seq).map_err(|_| Malformed::InvalidNumber)?;
        msg.first_id = msg.last_id;
    }
    msg.prev_id = fields.prev_seq_id;
    msg.checksum = match fields.checksum {
        None | Some(0) => None,
        Some(c) => Some(i32::try_from(c).map_err(|_| Malformed::InvalidNumber)?),
    };
    Ok(())
}

#[derive(Deserialize)]
struct RestBody<'a> {
    #[serde(borrow, default)]
    code: Option<&'a str>,
    #[serde(borrow, default)]
    data: Option<LazyValue<'a>>,
}

/// `GET /api/v5/market/books?instId=..&sz=..` → a snapshot in `msg`
/// (`{"code":"0","data":[{"asks":..,"bids":..,"ts":..,"seqId":..}]}`; `seqId`
/// only since 2026). Not requested today (OKX pushes the snapshot on the
/// WebSocket); ready for OKX's announced REST-snapshot sync procedure.
pub fn parse_book_snapshot(
    raw_symbol: &str,
    body: &[u8],
    receive_ns: u64,
    msg: &mut BookMsg,
) -> Result<(), Malformed> {
    let filled = rest_book(raw_symbol, body, msg);
    if filled.is_err() {
        msg.clear();
    } else if msg.ts_ms == 0 {
        msg.ts_ms = receive_ns / 1_000_000;
    }
    filled
}

fn rest_book(raw_symbol: &str, body: &[u8], msg: &mut BookMsg) -> Result<(), Malformed> {
    crate::venue::json::check_body(body)?;
    let b: RestBody<'_> = sonic_rs::from_slice(body).map_err(|e| classify(&e))?;
    if b.code != Some("0") {
        return Err(Malformed::WrongType);
    }
    let data = b
        .data
        .as_ref()
        .and_then(array_str)
        .ok_or(Malformed::WrongType)?;
    fill_book(msg, raw_symbol, true, data)
}

/// What a book entry carries besides its levels.
#[derive(Default)]
struct BookFields<'a> {
    ts: Option<&'a str>,
    checksum: Option<i64>,
    seq_id: Option<i64>,
    prev_seq_id: Option<i64>,
    asks: bool,
    bids: bool,
}

#[derive(Deserialize)]
#[serde(field_identifier)]
enum BookKey {
    #[serde(rename = "asks")]
    Asks,
    #[serde(rename = "bids")]
    Bids,
    #[serde(rename = "ts")]
    Ts,
    #[serde(rename = "checksum")]
    Checksum,
    #[serde(rename = "seqId")]
    SeqId,
    #[serde(rename = "prevSeqId")]
    PrevSeqId,
    #[serde(other)]
    Other,
}

/// `data`: exactly one book entry.
struct BookData<'m> {
    msg: &'m mut BookMsg,
    bad: &'m mut Option<Malformed>,
}

impl<'de> DeserializeSeed<'de> for BookData<'_> {
    type Value = BookFields<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for BookData<'_> {
    type Value = BookFields<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("one book entry")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let bad = self.bad;
        let Some(fields) = seq.next_element_seed(BookEntry {
            msg: self.msg,
            bad: &mut *bad,
        })?
        else {
            *bad = Some(Malformed::WrongType);
            return Err(de::Error::custom("empty book data"));
        };
        if seq.next_element::<IgnoredAny>()?.is_some() {
            *bad = Some(Malformed::WrongType);
            return Err(de::Error::custom("several book entries"));
        }
        Ok(fields)
    }
}

struct BookEntry<'m> {
    msg: &'m mut BookMsg,
    bad: &'m mut Option<Malformed>,
}

impl<'de> DeserializeSeed<'de> for BookEntry<'_> {
    type Value = BookFields<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BookEntry<'_> {
    type Value = BookFields<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a book object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let BookEntry { msg, bad } = self;
        let mut f = BookFields::default();
        while let Some(k) = map.next_key::<BookKey>()? {
            match k {
                BookKey::Asks => {
                    map.next_value_seed(Levels {
                        out: &mut msg.asks,
                        bad: &mut *bad,
                    })?;
                    f.asks = true;
                }
                BookKey::Bids => {
                    map.next_value_seed(Levels {
                        out: &mut msg.bids,
                        bad: &mut *bad,
                    })?;
                    f.bids = true;
                }
                BookKey::Ts => f.ts = Some(map.next_value()?),
                BookKey::Checksum => f.checksum = Some(map.next_value()?),
                BookKey::SeqId => f.seq_id = Some(map.next_value()?),
                BookKey::PrevSeqId => f.prev_seq_id = Some(map.next_value()?),
                BookKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(f)
    }
}

/// `[[price, size, "0", numOrders], …]` appended to `out` (only price and size read).
struct Levels<'m> {
    out: &'m mut Vec<Level>,
    bad: &'m mut Option<Malformed>,
}

impl<'de> DeserializeSeed<'de> for Levels<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Levels<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of levels")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(Row(px, sz)) = seq.next_element::<Row<'de>>()? {
            let (Ok(price), Ok(quantity)) = (size(px), size(sz)) else {
                *self.bad = Some(Malformed::InvalidNumber);
                return Err(de::Error::custom("invalid number"));
            };
            self.out.push(Level { price, quantity });
        }
        Ok(())
    }
}

/// A level row's price and size strings (further elements skipped).
pub(in crate::venue::okx) struct Row<'a>(pub &'a str, pub &'a str);

impl<'de: 'a, 'a> Deserialize<'de> for Row<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Row<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("[price, size, ...]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Row<'de>, A::Error> {
                let px: &str = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let sz: &str = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Row(px, sz))
            }
        }
        d.deserialize_seq(V)
    }
}
