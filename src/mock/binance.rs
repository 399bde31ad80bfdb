//! The fake Binance spot market: symbol table, the deterministic trade
//! formula, the shared "produced so far" market state, and allocation-free
//! formatting of trade events and malformed frames into a reused buffer.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::Instant;

use super::MockSymbol;

/// One trade of the deterministic market (see [`trade`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockTrade {
    pub id: u64,
    pub price: String,
    pub quantity: String,
    pub is_buyer_maker: bool,
    pub trade_time_ms: u64,
    pub event_time_ms: u64,
}

/// The numeric parts of a trade; the hot path writes these straight into the
/// frame buffer instead of building Strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TradeNums {
    pub id: u64,
    pub price_int: u64,
    pub price_frac: u64,
    pub qty_int: u64,
    pub qty_frac: u64,
    pub is_buyer_maker: bool,
    pub trade_time_ms: u64,
    pub event_time_ms: u64,
}

/// Trade number `id` of the symbol at `symbol_index`, as integers.
/// Wrapping arithmetic only matters for absurd ids; it keeps this panic-free.
#[inline]
pub(crate) fn trade_nums(symbol_index: usize, id: u64, time_base_ms: u64) -> TradeNums {
    let trade_time_ms = time_base_ms.wrapping_add(id);
    TradeNums {
        id,
        price_int: 100u64
            .wrapping_add((symbol_index as u64).wrapping_mul(1000))
            .wrapping_add(id % 97),
        price_frac: id.wrapping_mul(7919) % 100_000_000,
        qty_int: id % 5,
        qty_frac: id.wrapping_mul(104_729) % 99_999_999 + 1,
        is_buyer_maker: id % 3 == 0,
        trade_time_ms,
        event_time_ms: trade_time_ms.wrapping_add(1),
    }
}

/// Deterministic trade number `id` (ids start at 1) of the symbol at position
/// `symbol_index` in the mock's symbol list.
pub fn trade(symbol_index: usize, id: u64, time_base_ms: u64) -> MockTrade {
    let n = trade_nums(symbol_index, id, time_base_ms);
    MockTrade {
        id,
        price: format!("{}.{:08}", n.price_int, n.price_frac),
        quantity: format!("{}.{:08}", n.qty_int, n.qty_frac),
        is_buyer_maker: n.is_buyer_maker,
        trade_time_ms: n.trade_time_ms,
        event_time_ms: n.event_time_ms,
    }
}

const DEFAULT_TABLE: &[(&str, &str, &str)] = &[
    ("BTCUSDT", "BTC", "USDT"),
    ("ETHUSDT", "ETH", "USDT"),
    ("BNBUSDT", "BNB", "USDT"),
    ("SOLUSDT", "SOL", "USDT"),
    ("XRPUSDT", "XRP", "USDT"),
    ("ADAUSDT", "ADA", "USDT"),
    ("DOGEUSDT", "DOGE", "USDT"),
    ("ETHBTC", "ETH", "BTC"),
    ("BNBBTC", "BNB", "BTC"),
    ("LTCBTC", "LTC", "BTC"),
    ("BTCFDUSD", "BTC", "FDUSD"),
    ("BTCEUR", "BTC", "EUR"),
];

/// The combined-stream frame the mock sends for trade `id` of `sym` (at
/// `symbol_index`), byte for byte: for tests and benchmarks that feed the
/// collector's parser directly.
pub fn trade_frame(sym: &MockSymbol, symbol_index: usize, id: u64, time_base_ms: u64) -> String {
    let tpl = EventTemplate::new(symbol_index, sym, true);
    let mut buf = Vec::with_capacity(200);
    tpl.write_trade(
        &mut buf,
        &trade_nums(symbol_index, id, time_base_ms),
        PriceStyle::Quoted,
    );
    // The template only writes ASCII.
    String::from_utf8_lossy(&buf).into_owned()
}

/// `n` trade frames (ids 1..=n) cycling over `symbols` (symbol, base, quote):
/// id `i` goes to `symbols[i % len]`, whose index there is its symbol_index.
pub fn trade_frames(symbols: &[(&str, &str, &str)], n: u64, time_base_ms: u64) -> Vec<String> {
    let syms: Vec<MockSymbol> = symbols
        .iter()
        .map(|(s, b, q)| MockSymbol {
            symbol: s.to_string(),
            base: b.to_string(),
            quote: q.to_string(),
        })
        .collect();
    if syms.is_empty() {
        return Vec::new();
    }
    (1..=n)
        .map(|id| {
            let si = (id % syms.len() as u64) as usize;
            trade_frame(&syms[si], si, id, time_base_ms)
        })
        .collect()
}

/// The mock's default symbol table, in symbol_index order.
pub fn default_symbols() -> Vec<MockSymbol> {
    DEFAULT_TABLE
        .iter()
        .map(|(s, b, q)| MockSymbol {
            symbol: s.to_string(),
            base: b.to_string(),
            quote: q.to_string(),
        })
        .collect()
}

/// Looks a symbol up in the default table by name (case-insensitive).
pub(crate) fn default_symbol(name: &str) -> Option<MockSymbol> {
    default_symbols()
        .into_iter()
        .find(|s| s.symbol.eq_ignore_ascii_case(name))
}

/// The stream name Binance uses for a symbol's trades.
pub(crate) fn trade_stream_name(sym: &MockSymbol) -> String {
    format!("{}@trade", sym.symbol.to_ascii_lowercase())
}

/// Index of the mock symbol a stream name refers to; only exact
/// `<lowercase symbol>@trade` names are valid, as on Binance.
pub(crate) fn stream_symbol_index(symbols: &[MockSymbol], stream: &str) -> Option<usize> {
    let sym = stream.strip_suffix("@trade")?;
    if sym.is_empty() || sym.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    symbols
        .iter()
        .position(|s| s.symbol.eq_ignore_ascii_case(sym))
}

/// The always-present non-trading symbol, so collectors exercise status filtering.
const DELISTED: (&str, &str, &str) = ("LUNAUSDT", "LUNA", "USDT");

/// Body of `GET /api/v3/exchangeInfo`. `only` restricts the listing to the
/// named symbols (Binance's `symbol=` / `symbols=` parameters); `None` when a
/// requested name does not exist.
pub(crate) fn exchange_info_json(
    symbols: &[MockSymbol],
    server_time_ms: u64,
    only: Option<&[String]>,
) -> Option<String> {
    let mut all: Vec<(&str, &str, &str, &str)> = symbols
        .iter()
        .map(|s| {
            (
                s.symbol.as_str(),
                s.base.as_str(),
                s.quote.as_str(),
                "TRADING",
            )
        })
        .collect();
    all.push((DELISTED.0, DELISTED.1, DELISTED.2, "BREAK"));
    if let Some(names) = only {
        let mut picked = Vec::with_capacity(names.len());
        for n in names {
            picked.push(*all.iter().find(|e| e.0 == n.as_str())?);
        }
        all = picked;
    }
    let mut out = String::with_capacity(256 + all.len() * 420);
    let _ = write!(
        out,
        "{{\"timezone\":\"UTC\",\"serverTime\":{server_time_ms},\"rateLimits\":[{{\"rateLimitType\":\"REQUEST_WEIGHT\",\"interval\":\"MINUTE\",\"intervalNum\":1,\"limit\":6000}}],\"exchangeFilters\":[],\"symbols\":["
    );
    for (i, (sym, base, quote, status)) in all.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"symbol\":\"{sym}\",\"status\":\"{status}\",\"baseAsset\":\"{base}\",\"baseAssetPrecision\":8,\"quoteAsset\":\"{quote}\",\"quotePrecision\":8,\"quoteAssetPrecision\":8,\"filters\":[{{\"filterType\":\"PRICE_FILTER\",\"minPrice\":\"0.01000000\",\"maxPrice\":\"1000000.00000000\",\"tickSize\":\"0.01000000\"}},{{\"filterType\":\"LOT_SIZE\",\"minQty\":\"0.00001000\",\"maxQty\":\"9000.00000000\",\"stepSize\":\"0.00001000\"}}]}}"
        );
    }
    out.push_str("]}");
    Some(out)
}

/// Trades are produced on demand in chunks of this many when `rate == 0`.
const ON_DEMAND_CHUNK: u64 = 256;

/// How many trades each symbol's market has produced so far (ids 1..=produced).
pub(crate) struct Market {
    start: Instant,
    rate: u64,
    cap: u64,
    produced: RefCell<Vec<u64>>,
    /// Rate mode: symbol `i` of `n` runs `i / n` of a period ahead.
    spread: bool,
}

impl Market {
    pub fn new(symbols: usize, rate: u64, trades_per_symbol: u64, start: Instant) -> Market {
        Market {
            start,
            rate,
            cap: if trades_per_symbol == 0 {
                u64::MAX
            } else {
                trades_per_symbol
            },
            produced: RefCell::new(vec![0; symbols]),
            spread: false,
        }
    }

    /// Spreads the symbols' trades evenly over each period (rate mode):
    /// without it every symbol's trade k is due at the same instant.
    pub fn spread(mut self, on: bool) -> Market {
        self.spread = on;
        self
    }

    /// Rate mode: trades of symbol `i` produced `ns` after the start.
    fn produced_at(&self, i: usize, ns: u128) -> u64 {
        let (parts, k) = self.phase(i);
        let n = (ns.saturating_mul(self.rate as u128 * parts) + k * 1_000_000_000)
            / (1_000_000_000 * parts);
        n.min(self.cap as u128) as u64
    }

    /// Rate mode: when (ns after the start) trade `id` of symbol `i` is due.
    fn due_at_ns(&self, i: usize, id: u64) -> u128 {
        let (parts, k) = self.phase(i);
        ((id as u128 * parts).saturating_sub(k)).saturating_mul(1_000_000_000)
            / (self.rate as u128 * parts)
    }

    /// (symbols the period is split into, this symbol's share of it).
    fn phase(&self, i: usize) -> (u128, u128) {
        if self.spread {
            (self.produced.borrow().len().max(1) as u128, i as u128)
        } else {
            (1, 0)
        }
    }

    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Trades produced so far for symbol `i`.
    pub fn produced(&self, i: usize) -> u64 {
        if self.rate > 0 {
            self.produced_at(i, self.start.elapsed().as_nanos())
        } else {
            self.produced.borrow().get(i).copied().unwrap_or(0)
        }
    }

    /// Highest id a consumer that wants `next_id` may send now. In on-demand
    /// mode a consumer that caught up advances the market by a chunk.
    pub fn available_up_to(&self, i: usize, next_id: u64) -> u64 {
        if self.rate > 0 {
            return self.produced(i);
        }
        let mut p = self.produced.borrow_mut();
        let Some(cur) = p.get_mut(i) else { return 0 };
        if next_id > *cur && *cur < self.cap {
            *cur = cur.saturating_add(ON_DEMAND_CHUNK).min(self.cap);
        }
        *cur
    }

    /// True when no trade beyond `next_id - 1` will ever exist.
    pub fn exhausted(&self, next_id: u64) -> bool {
        next_id > self.cap
    }

    /// Time from now until trade `id` of symbol `i` is produced (rate mode).
    pub fn due_in(&self, i: usize, id: u64) -> Option<std::time::Duration> {
        if self.rate == 0 {
            return None;
        }
        let due_ns = self.due_at_ns(i, id);
        let elapsed = self.start.elapsed().as_nanos();
        Some(std::time::Duration::from_nanos(
            due_ns.saturating_sub(elapsed).min(u64::MAX as u128) as u64,
        ))
    }
}

/// Decimal digits, shared with the collector's encoder.
pub(crate) use crate::json::push_u64;

/// Appends `n` (< 10^8) as exactly 8 digits.
#[inline]
fn push_frac8(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [b'0'; 8];
    for slot in tmp.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    buf.extend_from_slice(&tmp);
}

/// A trade's price digits, as every trade writer (WS and REST) prints them.
#[inline]
pub(crate) fn push_price(buf: &mut Vec<u8>, n: &TradeNums) {
    push_u64(buf, n.price_int);
    buf.push(b'.');
    push_frac8(buf, n.price_frac);
}

/// A trade's quantity digits.
#[inline]
pub(crate) fn push_qty(buf: &mut Vec<u8>, n: &TradeNums) {
    push_u64(buf, n.qty_int);
    buf.push(b'.');
    push_frac8(buf, n.qty_frac);
}

/// price × qty, truncated to 8 decimals (REST `quoteQty`).
pub(crate) fn push_quote_qty(buf: &mut Vec<u8>, n: &TradeNums) {
    const E8: u128 = 100_000_000;
    let p = n.price_int as u128 * E8 + n.price_frac as u128;
    let q = n.qty_int as u128 * E8 + n.qty_frac as u128;
    let x = p.saturating_mul(q) / E8;
    push_u64(buf, (x / E8).min(u64::MAX as u128) as u64);
    buf.push(b'.');
    push_frac8(buf, (x % E8) as u64);
}

/// One element of `GET /api/v3/historicalTrades`: the WS trade item's
/// numbers in the REST field names.
pub(crate) fn write_historical_trade(buf: &mut Vec<u8>, n: &TradeNums) {
    buf.extend_from_slice(b"{\"id\":");
    push_u64(buf, n.id);
    buf.extend_from_slice(b",\"price\":\"");
    push_price(buf, n);
    buf.extend_from_slice(b"\",\"qty\":\"");
    push_qty(buf, n);
    buf.extend_from_slice(b"\",\"quoteQty\":\"");
    push_quote_qty(buf, n);
    buf.extend_from_slice(b"\",\"time\":");
    push_u64(buf, n.trade_time_ms);
    buf.extend_from_slice(if n.is_buyer_maker {
        b",\"isBuyerMaker\":true,\"isBestMatch\":true}"
    } else {
        b",\"isBuyerMaker\":false,\"isBestMatch\":true}"
    });
}

/// Precomputed pieces of one subscription's trade events, so that per trade
/// only numbers are formatted.
#[derive(Clone, Debug)]
pub(crate) struct EventTemplate {
    pub symbol_index: usize,
    pub stream: String,
    combined: bool,
    /// `{"stream":"x@trade","data":{"e":"trade","E":` or `{"e":"trade","E":`.
    head: Vec<u8>,
    /// `,"s":"BTCUSDT","t":`
    sym_seg: Vec<u8>,
}

impl EventTemplate {
    pub fn new(symbol_index: usize, sym: &MockSymbol, combined: bool) -> EventTemplate {
        let stream = trade_stream_name(sym);
        let mut head = Vec::new();
        if combined {
            head.extend_from_slice(b"{\"stream\":\"");
            head.extend_from_slice(stream.as_bytes());
            head.extend_from_slice(b"\",\"data\":");
        }
        head.extend_from_slice(b"{\"e\":\"trade\",\"E\":");
        let sym_seg = format!(",\"s\":\"{}\",\"t\":", sym.symbol).into_bytes();
        EventTemplate {
            symbol_index,
            stream,
            combined,
            head,
            sym_seg,
        }
    }

    pub fn combined(&self) -> bool {
        self.combined
    }

    /// Appends the trade event JSON (wrapped when combined). `price` replaces
    /// the price value verbatim (used for malformed variants).
    #[inline]
    pub fn write_trade(&self, buf: &mut Vec<u8>, n: &TradeNums, price: PriceStyle) {
        buf.extend_from_slice(&self.head);
        push_u64(buf, n.event_time_ms);
        buf.extend_from_slice(&self.sym_seg);
        push_u64(buf, n.id);
        buf.extend_from_slice(b",\"p\":");
        match price {
            PriceStyle::Quoted => {
                buf.push(b'"');
                push_price(buf, n);
                buf.push(b'"');
            }
            PriceStyle::Number => push_price(buf, n),
            PriceStyle::Invalid => buf.extend_from_slice(b"\"12.3.4\""),
        }
        buf.extend_from_slice(b",\"q\":\"");
        push_qty(buf, n);
        buf.extend_from_slice(b"\",\"T\":");
        push_u64(buf, n.trade_time_ms);
        buf.extend_from_slice(if n.is_buyer_maker {
            b",\"m\":true,\"M\":true}"
        } else {
            b",\"m\":false,\"M\":true}"
        });
        if self.combined() {
            buf.push(b'}');
        }
    }
}

/// How the `"p"` field of a trade event is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PriceStyle {
    Quoted,
    Number,
    Invalid,
}

/// The malformed frames injected with `--malformed-every`, in cycle order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MalformedKind {
    TruncatedJson,
    WrongType,
    UnknownEvent,
    InvalidNumber,
    BinaryFrame,
}

impl MalformedKind {
    pub const CYCLE: [MalformedKind; 5] = [
        MalformedKind::TruncatedJson,
        MalformedKind::WrongType,
        MalformedKind::UnknownEvent,
        MalformedKind::InvalidNumber,
        MalformedKind::BinaryFrame,
    ];

    /// The n-th kind of the cycle (n counts from 0).
    pub fn nth(n: u64) -> MalformedKind {
        Self::CYCLE[(n % Self::CYCLE.len() as u64) as usize]
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            MalformedKind::TruncatedJson => "truncated_json",
            MalformedKind::WrongType => "wrong_type",
            MalformedKind::UnknownEvent => "unknown_event",
            MalformedKind::InvalidNumber => "invalid_number",
            MalformedKind::BinaryFrame => "binary_frame",
        }
    }

    /// Whether the frame is sent as a binary (rather than text) frame.
    pub fn is_binary(self) -> bool {
        self == MalformedKind::BinaryFrame
    }

    /// Appends the malformed payload. `tpl` is the connection's first
    /// subscription and `n` a trade to disguise (its id is not consumed).
    pub fn write_payload(self, buf: &mut Vec<u8>, tpl: &EventTemplate, n: &TradeNums) {
        match self {
            MalformedKind::TruncatedJson => {
                let start = buf.len();
                tpl.write_trade(buf, n, PriceStyle::Quoted);
                let full = buf.len() - start;
                buf.truncate(start + full / 2);
            }
            MalformedKind::WrongType => tpl.write_trade(buf, n, PriceStyle::Number),
            MalformedKind::InvalidNumber => tpl.write_trade(buf, n, PriceStyle::Invalid),
            MalformedKind::UnknownEvent => {
                if tpl.combined() {
                    let weird = tpl.stream.replace("@trade", "@weird");
                    buf.extend_from_slice(b"{\"stream\":\"");
                    buf.extend_from_slice(weird.as_bytes());
                    buf.extend_from_slice(b"\",\"data\":{\"e\":\"weird\",\"E\":1}}");
                } else {
                    buf.extend_from_slice(b"{\"e\":\"weird\",\"E\":1}");
                }
            }
            MalformedKind::BinaryFrame => buf.extend_from_slice(&[0xff, 0xfe, 0x00]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trade_formula_exact_values() {
        let t = trade(0, 1, 1_700_000_000_000);
        assert_eq!(t.id, 1);
        assert_eq!(t.price, "101.00007919");
        assert_eq!(t.quantity, "1.00104730");
        assert!(!t.is_buyer_maker);
        assert_eq!(t.trade_time_ms, 1_700_000_000_001);
        assert_eq!(t.event_time_ms, 1_700_000_000_002);

        let t = trade(2, 3, 1000);
        assert_eq!(t.price, "2103.00023757");
        assert_eq!(t.quantity, "3.00314188");
        assert!(t.is_buyer_maker);
        assert_eq!((t.trade_time_ms, t.event_time_ms), (1003, 1004));

        // id % 97 wraps the integer part; the fraction wraps at 10^8.
        let t = trade(1, 97, 0);
        assert_eq!(t.price, "1100.00768143");
        let t = trade(0, 20_000, 0);
        assert_eq!(t.price, "118.58380000");
        assert_eq!(t.quantity, "0.94580021");
        let id = 1_000_000u64;
        let t = trade(11, id, 5);
        assert_eq!(
            t.price,
            format!(
                "{}.{:08}",
                100 + 11 * 1000 + id % 97,
                (id * 7919) % 100_000_000
            )
        );
        assert_eq!(
            t.quantity,
            format!("{}.{:08}", id % 5, (id * 104_729) % 99_999_999 + 1)
        );
    }

    #[test]
    fn default_symbol_table() {
        let s = default_symbols();
        assert_eq!(s.len(), 12);
        assert_eq!(s[0].symbol, "BTCUSDT");
        assert_eq!(s[7].symbol, "ETHBTC");
        assert_eq!((s[7].base.as_str(), s[7].quote.as_str()), ("ETH", "BTC"));
        assert_eq!(s[11].symbol, "BTCEUR");
        assert_eq!(default_symbol("dogeusdt").unwrap().base, "DOGE");
        assert!(default_symbol("NOPE").is_none());
    }

    #[test]
    fn stream_names() {
        let s = default_symbols();
        assert_eq!(trade_stream_name(&s[1]), "ethusdt@trade");
        assert_eq!(stream_symbol_index(&s, "ethusdt@trade"), Some(1));
        assert_eq!(stream_symbol_index(&s, "ETHUSDT@trade"), None);
        assert_eq!(stream_symbol_index(&s, "ethusdt@depth"), None);
        assert_eq!(stream_symbol_index(&s, "@trade"), None);
        assert_eq!(stream_symbol_index(&s, "lunausdt@trade"), None);
    }

    fn expected_event(sym: &str, idx: usize, id: u64, base: u64) -> String {
        let t = trade(idx, id, base);
        format!(
            "{{\"e\":\"trade\",\"E\":{},\"s\":\"{}\",\"t\":{},\"p\":\"{}\",\"q\":\"{}\",\"T\":{},\"m\":{},\"M\":true}}",
            t.event_time_ms, sym, t.id, t.price, t.quantity, t.trade_time_ms, t.is_buyer_maker
        )
    }

    #[test]
    fn trade_event_formatting_matches_formula() {
        let syms = default_symbols();
        let raw = EventTemplate::new(1, &syms[1], false);
        let comb = EventTemplate::new(1, &syms[1], true);
        assert!(!raw.combined());
        assert!(comb.combined());
        for id in [1u64, 2, 3, 96, 97, 12_345, 99_999_999_999] {
            let n = trade_nums(1, id, 1_700_000_000_000);
            let mut buf = Vec::new();
            raw.write_trade(&mut buf, &n, PriceStyle::Quoted);
            let want = expected_event("ETHUSDT", 1, id, 1_700_000_000_000);
            assert_eq!(String::from_utf8(buf).unwrap(), want);
            let mut buf = Vec::new();
            comb.write_trade(&mut buf, &n, PriceStyle::Quoted);
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                format!("{{\"stream\":\"ethusdt@trade\",\"data\":{want}}}")
            );
        }
    }

    #[test]
    fn push_numbers() {
        let mut b = Vec::new();
        push_u64(&mut b, 0);
        b.push(b' ');
        push_u64(&mut b, u64::MAX);
        b.push(b' ');
        push_frac8(&mut b, 42);
        assert_eq!(b, b"0 18446744073709551615 00000042");
    }

    #[test]
    fn malformed_cycle_and_payloads() {
        let names: Vec<_> = (0..7).map(|i| MalformedKind::nth(i).name()).collect();
        assert_eq!(
            names,
            [
                "truncated_json",
                "wrong_type",
                "unknown_event",
                "invalid_number",
                "binary_frame",
                "truncated_json",
                "wrong_type"
            ]
        );
        let syms = default_symbols();
        let tpl = EventTemplate::new(0, &syms[0], true);
        let n = trade_nums(0, 5, 1000);
        let payload = |k: MalformedKind| {
            let mut b = Vec::new();
            k.write_payload(&mut b, &tpl, &n);
            b
        };
        let t = payload(MalformedKind::TruncatedJson);
        assert!(t.starts_with(b"{\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\""));
        assert!(sonic_rs::from_slice::<sonic_rs::Value>(&t).is_err());
        let w = String::from_utf8(payload(MalformedKind::WrongType)).unwrap();
        assert!(w.contains("\"p\":105.00039595,"), "{w}");
        let v: sonic_rs::Value = sonic_rs::from_str(&w).unwrap();
        drop(v);
        let u = payload(MalformedKind::UnknownEvent);
        assert_eq!(
            u,
            b"{\"stream\":\"btcusdt@weird\",\"data\":{\"e\":\"weird\",\"E\":1}}"
        );
        let i = String::from_utf8(payload(MalformedKind::InvalidNumber)).unwrap();
        assert!(i.contains("\"p\":\"12.3.4\""));
        assert_eq!(payload(MalformedKind::BinaryFrame), [0xff, 0xfe, 0x00]);
        assert!(MalformedKind::BinaryFrame.is_binary());
        let raw = EventTemplate::new(0, &syms[0], false);
        let mut b = Vec::new();
        MalformedKind::UnknownEvent.write_payload(&mut b, &raw, &n);
        assert_eq!(b, b"{\"e\":\"weird\",\"E\":1}");
    }

    #[test]
    fn exchange_info_lists_symbols_and_delisted() {
        let syms = default_symbols();
        let body = exchange_info_json(&syms[..2], 42, None).unwrap();
        let v: sonic_rs::Value = sonic_rs::from_str(&body).unwrap();
        use sonic_rs::{JsonContainerTrait, JsonValueTrait};
        assert_eq!(v.get("serverTime").and_then(|x| x.as_u64()), Some(42));
        let list = v.get("symbols").unwrap();
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].get("symbol").unwrap().as_str(), Some("BTCUSDT"));
        assert_eq!(list[2].get("symbol").unwrap().as_str(), Some("LUNAUSDT"));
        assert_eq!(list[2].get("status").unwrap().as_str(), Some("BREAK"));
        assert!(body.starts_with("{\"timezone\":\"UTC\",\"serverTime\":42,\"rateLimits\":[{\"rateLimitType\":\"REQUEST_WEIGHT\""));
        let one = exchange_info_json(&syms, 1, Some(&["ETHBTC".to_string()])).unwrap();
        assert!(one.contains("ETHBTC") && !one.contains("BTCUSDT"));
        assert!(exchange_info_json(&syms, 1, Some(&["NOPE".to_string()])).is_none());
    }

    #[test]
    fn market_on_demand_and_cap() {
        let m = Market::new(2, 0, 300, Instant::now());
        assert_eq!(m.produced(0), 0);
        assert_eq!(m.available_up_to(0, 1), 256);
        assert_eq!(m.available_up_to(0, 100), 256);
        assert_eq!(m.available_up_to(0, 257), 300);
        assert_eq!(m.available_up_to(0, 301), 300);
        assert!(m.exhausted(301));
        assert_eq!(m.produced(1), 0);
        let unlimited = Market::new(1, 0, 0, Instant::now());
        assert!(!unlimited.exhausted(u64::MAX));
    }

    #[test]
    fn market_rate_mode_grows_with_time() {
        let start = Instant::now() - std::time::Duration::from_millis(1500);
        let m = Market::new(1, 10, 0, start);
        let p = m.produced(0);
        assert!((15..=16).contains(&p), "{p}");
        let a = m.available_up_to(0, 1000);
        assert!((15..=17).contains(&a), "{a}");
        let capped = Market::new(1, 10, 4, start);
        assert_eq!(capped.produced(0), 4);
        assert!(m.due_in(0, 100).unwrap() > std::time::Duration::from_secs(8));
    }

    #[test]
    fn market_spread_puts_symbols_apart() {
        const MS: u128 = 1_000_000;
        // 10 trades/s over 4 symbols: symbol i runs i × 25 ms ahead.
        let m = Market::new(4, 10, 0, Instant::now()).spread(true);
        let at = |ns: u128| (0..4).map(|i| m.produced_at(i, ns)).collect::<Vec<_>>();
        assert_eq!(at(1530 * MS), [15, 15, 15, 16]);
        // Trade 16 is due at 1 600, 1 575, 1 550 and 1 525 ms.
        assert_eq!(at(1600 * MS - 1), [15, 16, 16, 16]);
        assert_eq!(at(1600 * MS), [16, 16, 16, 16]);
        assert_eq!(at(1625 * MS), [16, 16, 16, 17]);
        // Each trade is due exactly when it is produced.
        assert_eq!(m.due_at_ns(3, 17), 1625 * MS);
        assert_eq!(m.due_at_ns(0, 17), 1700 * MS);
        assert_eq!(m.produced_at(3, m.due_at_ns(3, 17)), 17);
        assert_eq!(m.produced_at(3, m.due_at_ns(3, 17) - 1), 16);
        let plain = Market::new(4, 10, 0, Instant::now());
        let at = |ns: u128| (0..4).map(|i| plain.produced_at(i, ns)).collect::<Vec<_>>();
        assert_eq!(at(1530 * MS), [15; 4]);
        assert_eq!(plain.due_at_ns(3, 17), 1700 * MS);
    }
}
