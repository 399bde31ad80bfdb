//! One venue connection as the engine builds it (instrument list, book
//! message, venue state, replies, batch), fed through the public `Protocol`
//! API: the venue tests feed documented payloads and recorded frames and
//! check the exact records, encodings and outcomes.

use marketprism::batch::{Batch, Record};
use marketprism::book::BookMsg;
use marketprism::model::{DataType, DataTypeSet, VenueId};
use marketprism::sink::encode::encode_json;
use marketprism::venue::{protocol, FrameOutcome, InstrumentMap, ParseCtx, VenueState};

/// Receive time of every fixture frame (ns): `collected_ts_ms` 1700000000123.
pub const RECV: u64 = 1_700_000_000_123_456_789;

/// What a connection owns; `batch` takes the records unless a caller brings its own.
pub struct Conn {
    pub venue: VenueId,
    pub map: InstrumentMap,
    pub book: BookMsg,
    pub state: VenueState,
    pub replies: Vec<String>,
    pub batch: Batch,
}

impl Conn {
    pub fn new(venue: VenueId, map: InstrumentMap) -> Conn {
        Conn {
            venue,
            map,
            book: BookMsg::default(),
            state: VenueState::default(),
            replies: Vec::new(),
            batch: Batch::new(1024, 1 << 20),
        }
    }

    /// One text frame received at [`RECV`], records into the connection's batch.
    pub fn feed(&mut self, text: &str) -> FrameOutcome {
        self.feed_at(text, RECV)
    }

    /// One text frame received at `rx` (ns).
    pub fn feed_at(&mut self, text: &str, rx: u64) -> FrameOutcome {
        self.parse(self.venue, text, rx, None)
    }

    /// One text frame received at [`RECV`], records into `batch`.
    pub fn feed_into(&mut self, text: &str, batch: &mut Batch) -> FrameOutcome {
        self.parse(self.venue, text, RECV, Some(batch))
    }

    /// One frame through another venue's parser over this connection's state
    /// (Binance spot and USDⓈ-M share frame shapes).
    pub fn feed_as(&mut self, venue: VenueId, text: &str) -> FrameOutcome {
        self.parse(venue, text, RECV, None)
    }

    /// `venue`'s parser with this connection's context, into `batch` or the own one.
    fn parse(
        &mut self,
        venue: VenueId,
        text: &str,
        rx: u64,
        batch: Option<&mut Batch>,
    ) -> FrameOutcome {
        let mut cx = ParseCtx {
            venue,
            instruments: &self.map,
            book: &mut self.book,
            state: &mut self.state,
            replies: &mut self.replies,
        };
        let batch = batch.unwrap_or(&mut self.batch);
        protocol(venue).on_text(text, rx, &mut cx, batch)
    }

    /// One polled REST answer for `native`, received at [`RECV`].
    pub fn poll(&mut self, dt: DataType, native: &str, body: &str) -> FrameOutcome {
        let inst = self.map.get(native).expect("instrument");
        protocol(self.venue).parse_poll(dt, inst, body.as_bytes(), RECV, &mut self.batch)
    }

    /// The only record in the batch.
    pub fn only(&self) -> Record<'_> {
        assert_eq!(self.batch.len(), 1, "records in batch");
        *self.batch.iter().next().unwrap()
    }
}

/// `(native, base, quote)` symbols, all trading.
pub fn map_of(symbols: &[(&str, &str, &str)]) -> InstrumentMap {
    let mut map = InstrumentMap::default();
    for (native, base, quote) in symbols {
        map.insert(native, base, quote, true);
    }
    map
}

pub fn set_of(wanted: &[DataType]) -> DataTypeSet {
    let mut set = DataTypeSet::default();
    for &dt in wanted {
        set.insert(dt);
    }
    set
}

/// A record's MarketPrism JSON line.
pub fn json(rec: &Record<'_>) -> String {
    let mut out = Vec::new();
    encode_json(&mut out, rec);
    String::from_utf8(out).unwrap()
}

pub fn jsons(batch: &Batch) -> Vec<String> {
    batch.iter().map(json).collect()
}

/// Received frames of a `.ws` capture (`T: TEXT` lines).
pub fn frames(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|l| l.find(": ").map(|i| &l[i + 2..]))
}

/// `(url, body)` of the REST answers in a `.http`/`.0` capture (`URL -> T: BODY`).
pub fn answers(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|l| {
        let (url, rest) = l.split_once(" -> ")?;
        let (_, body) = rest.split_once(": ")?;
        Some((url, body))
    })
}
