//! `marketprism mock-exchange`: a local fake of the public market-data APIs
//! of every venue the collector supports (Binance spot and USDⓈ-M, OKX spot
//! and SWAP, Bybit spot and linear, Deribit perpetuals) on one loopback
//! port, routed by path, over TLS with a generated CA or plain TCP.
//! Integration tests, benchmarks and the offline demo point the real
//! collector at it.
//!
//! Built with the default-on `mock` cargo feature; a production build
//! (`--no-default-features`) leaves it out, and `rcgen` (its generated CA) with
//! it. A feature rather than a crate of its own in a workspace: the tests and
//! benches use it both in-process (`marketprism::mock::*` frame encoders and
//! book specs) and as the same binary's `mock-exchange` subcommand, and the
//! mock speaks in the collector's own types (`model::VenueId`), so one crate
//! keeps one `cargo test`, one target dir and no second copy of the library.
//!
//! This module holds the options, the executor start-up and the accept loop;
//! see `conn` (HTTP routing), `rest` (REST answers of the other venues),
//! `session` (Binance WebSocket streaming), `vsession` (OKX/Bybit/Deribit
//! sessions), `feed` (subscriptions → frames), `book` (the deterministic
//! order books and faults), `venues` (the mock's venue table: per-venue
//! facts, producers, which module writes a venue's frames), the venue
//! format modules `binance`, `binance_book`, `binance_futures`, `okx`,
//! `bybit`, `deribit`, `history` (trade history REST), `fault`
//! (connection faults), and `ws`, `http`, `tls`, `stats`.
//!
//! Fault control (all GET, answers JSON):
//! - `/mock/fault?venue=&symbol=&kind=[&count=]`: book faults.
//! - `/mock/rest_fault?status=&retry_after=&count=[&timeout_ms=]`: the next
//!   `count` venue REST answers are `status` (429 default; 5xx get a JSON
//!   error body) with `Retry-After`; with `timeout_ms` the next `count`
//!   requests are held that long, then the connection is closed unanswered.
//! - `/mock/conn_fault?[venue=][&clear=1][&drop_after=N][&drop_random=P]`
//!   `[&stall_after=N][&garbage_every=N][&oversized_every=N][&lifetime_ms=MS]`
//!   `[&notice_ms=MS][&refuse_ms=MS][&fault_seed=S][&mute=SYMBOL]`: WebSocket
//!   faults, as the CLI flags of the same names; `mute` silences a native
//!   symbol's subscriptions on the connections open now until they are
//!   unsubscribed and subscribed again (a subscription the venue dropped). `venue` is a `/mock/fault` venue key
//!   (`okx_spot`, `okx_derivatives` or `okx` all mean the one OKX
//!   endpoint); without it every venue. Given keys are changed, others kept;
//!   `clear=1` first resets. Live connections apply the change at their next
//!   chunk and count data frames afresh from it (`drop_after=5` = five more
//!   frames); a stalled connection stays stalled. Answer: the settings.
//!   Counters: `"faults"` in `/mock/stats`.
//!
//! `/mock/stats` also holds `"pong_rtt_us":{"count","p50","p99","p999","max"}`:
//! the round trip of every answered Binance WebSocket ping (spot and
//! USDⓈ-M; send of the ping → its pong read), so loopback plus the client's
//! wake-up and handling, in a fixed log-spaced histogram (quantiles are the
//! upper edges of ≤ 12.5 %-wide buckets, `max` is exact). With
//! `?reset_pong_rtt=1` the answer shows it as it was and then clears it, to
//! measure a window.

pub mod binance;
pub mod binance_book;
pub mod binance_futures;
pub mod book;
pub mod bybit;
mod chan;
mod conn;
pub mod deribit;
pub mod fault;
mod feed;
mod history;
mod http;
pub mod okx;
mod reply;
mod rest;
pub mod send_log;
mod session;
mod stats;
mod tls;
pub mod venues;
mod vsession;
mod ws;

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};

pub use binance::{default_symbols, trade, MockTrade};
pub use fault::ConnFaults;

/// Everything `mock-exchange` can be told on its command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockOptions {
    pub listen: SocketAddr,
    pub tls_dir: Option<PathBuf>,
    pub symbols: Vec<MockSymbol>,
    /// 0 = unlimited.
    pub trades_per_symbol: u64,
    /// Trades per second per symbol; 0 = as fast as connections can take them.
    pub rate: u64,
    /// Inject a malformed frame after every K trade frames; 0 = never.
    pub malformed_every: u64,
    /// 0 disables server pings.
    pub ping_interval_ms: u64,
    /// 0 disables the pong timeout.
    pub pong_timeout_ms: u64,
    pub time_base_ms: u64,
    /// Pin the executor to this CPU.
    pub core: Option<usize>,
    /// Levels per side of every mock order book.
    pub book_depth: usize,
    /// Book updates per second per book; 0 = as fast as connections take them.
    pub book_rate: u64,
    /// Stop each book after N updates (0 = unlimited).
    pub book_updates: u64,
    /// Items per second of every non-book stream other than Binance spot
    /// trades; 0 = as fast as connections take them.
    pub event_rate: u64,
    /// Items 1..=N of every such stream (0 = unlimited).
    pub events_per_stream: u64,
    /// OKX `books` checksum: real CRC32 (true) or always 0 (false).
    pub okx_checksum: bool,
    /// OKX closes with 4004 after this long without client messages or pushes (0 = never).
    pub okx_idle_timeout_ms: u64,
    /// OKX lists this many more pairs (`X001-USDT` and `X001-USDT-SWAP`, ...),
    /// for benchmarks with many books.
    pub okx_extra_pairs: usize,
    /// Binance USDⓈ-M server ping interval (0 = off) and pong timeout (0 = off).
    pub futures_ping_interval_ms: u64,
    pub futures_pong_timeout_ms: u64,
    /// Every book gets this fault in every K-th update, on the venues that
    /// support the kind (K, kind); `None` = only `/mock/fault`.
    pub book_fault_every: Option<(u64, book::FaultKind)>,
    /// Connection faults of every WebSocket from the start (all venues;
    /// `/mock/conn_fault` changes them at runtime).
    pub conn_faults: ConnFaults,
    /// Seed of `drop_random`.
    pub fault_seed: u64,
    /// Refuse WebSocket upgrades (503) for this long after start (0 = never).
    pub refuse_ms: u64,
    /// Paced trades: symbol `i` of `n` runs `i / n` of a period ahead, so
    /// frames leave evenly spaced instead of all symbols at once.
    pub spread: bool,
    /// Append one [`SendStamp`] per symbol per sent chunk of Binance spot
    /// trades to this file (latency benchmarks).
    pub send_log: Option<PathBuf>,
}

/// One tradable pair of the mock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockSymbol {
    pub symbol: String,
    pub base: String,
    pub quote: String,
}

fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Default for MockOptions {
    /// Plain TCP on an ephemeral loopback port, default symbols, unlimited
    /// trades as fast as possible, Binance's ping cadence.
    fn default() -> Self {
        MockOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls_dir: None,
            symbols: default_symbols(),
            trades_per_symbol: 0,
            rate: 0,
            malformed_every: 0,
            ping_interval_ms: 20_000,
            pong_timeout_ms: 60_000,
            time_base_ms: wall_clock_ms(),
            core: None,
            book_depth: 50,
            book_rate: 10,
            book_updates: 0,
            event_rate: 10,
            events_per_stream: 0,
            okx_checksum: true,
            okx_idle_timeout_ms: 30_000,
            okx_extra_pairs: 0,
            futures_ping_interval_ms: 180_000,
            futures_pong_timeout_ms: 600_000,
            book_fault_every: None,
            conn_faults: ConnFaults::default(),
            fault_seed: fault::DEFAULT_SEED,
            refuse_ms: 0,
            spread: false,
            send_log: None,
        }
    }
}

/// Usage text (also the `Err` of [`MockOptions::from_args`] for `--help`).
pub const USAGE: &str = "\
usage: marketprism mock-exchange --listen ADDR [options]
  --listen ADDR            address to bind, e.g. 127.0.0.1:0 (required)
  --tls-dir DIR            serve TLS; generates a CA + localhost certificate into DIR
                           (DIR/ca.pem, DIR/server.pem, DIR/server.key), or reuses
                           them when present; default: plain TCP
  --symbols LIST           comma-separated: names from the default table or SYM:BASE:QUOTE
  --trades-per-symbol N    stop each symbol's market after N trades (0 = unlimited)
  --rate N                 trades per second per symbol (0 = as fast as possible)
  --malformed-every K      send a malformed frame after every K trade frames (0 = never)
  --ping-interval-ms MS    server ping interval (default 20000, 0 = off)
  --pong-timeout-ms MS     close when a ping is unanswered this long (default 60000, 0 = off)
  --time-base-ms T         trade time of trade id 0 (default: wall clock at start)
  --core C                 pin the executor thread to CPU C
  --book-depth N           levels per side of every order book (default 50)
  --book-rate N            book updates per second per book (default 10, 0 = as fast as possible)
  --book-updates N         stop each book after N updates (default 0 = unlimited)
  --event-rate N           items per second of the other streams (default 10, 0 = as fast as possible)
  --events-per-stream N    stop each of those streams after N items (default 0 = unlimited)
  --okx-checksum MODE      OKX books checksum: crc (default) or zero
  --okx-idle-timeout-ms MS OKX closes (4004) an idle connection after MS (default 30000, 0 = off)
  --okx-extra-pairs N      OKX also lists N pairs X001..XNNN, each as spot XNNN-USDT and swap
                           XNNN-USDT-SWAP (default 0, at most 500)
  --futures-ping-interval-ms MS  USDⓈ-M server ping interval (default 180000, 0 = off)
  --futures-pong-timeout-ms MS   USDⓈ-M pong timeout (default 600000, 0 = off)
  --book-fault-every K:KIND      every book gets fault KIND (gap, seq_reset, keepalive,
                           bad_checksum, snapshot, u1, crossed) in every K-th update,
                           where its venue supports KIND (default: none)
  --drop-after N            drop each WebSocket (no close frame) after N data frames (0 = off)
  --drop-random P          drop after each data frame with probability P (0..1, default 0)
  --fault-seed S           seed of --drop-random (default fixed)
  --stall-after N          after N data frames send nothing more (no data, pings, pongs,
                           replies) but keep the socket open and reading (0 = off)
  --garbage-every N        after every N-th data frame also send a garbage frame (0 = off)
  --oversized-every N      after every N-th data frame also send a 1.5 MiB text frame (0 = off)
  --lifetime-ms MS         close each WebSocket cleanly MS after it opened (0 = off)
  --shutdown-notice-ms MS  send the venue's shutdown notice MS before that close (0 = none)
  --refuse-ms MS           answer WebSocket upgrades with 503 for MS after start (0 = off)
  --spread 0|1             with --rate: symbol i of n runs i/n of a period ahead (frames evenly spaced)
  --send-log FILE          append (symbol index, first id, last id, send time ns) per symbol
                           per sent chunk of spot trades, after the flush (32 bytes, little endian)
  --help                   show this text
routes: Binance spot /stream, /ws/..., /api/v3/*; USDⓈ-M /public/..., /market/..., /fapi/v1/*,
  /futures/data/*; OKX /ws/v5/public, /api/v5/*; Bybit /v5/public/spot|linear, /v5/market/*;
  Deribit /ws/api/v2, /api/v2/public/*; control GET /mock/stats[?reset_pong_rtt=1],
  /mock/book?venue=&symbol=, /mock/fault?venue=&symbol=&kind=,
  /mock/rest_fault?status=&retry_after=&count=&timeout_ms=,
  /mock/conn_fault?[venue=][clear=1][drop_after=][drop_random=][stall_after=][garbage_every=]
  [oversized_every=][lifetime_ms=][notice_ms=][refuse_ms=][fault_seed=][mute=SYMBOL]";

fn parse_num(flag: &str, v: &str) -> Result<u64, String> {
    v.parse::<u64>()
        .map_err(|_| format!("{flag}: expected a non-negative integer, got `{v}`\n{USAGE}"))
}

fn parse_symbols(v: &str) -> Result<Vec<MockSymbol>, String> {
    let mut out: Vec<MockSymbol> = Vec::new();
    for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let sym = if entry.contains(':') {
            let parts: Vec<&str> = entry.split(':').collect();
            let ok = parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()));
            if !ok {
                return Err(format!(
                    "--symbols: `{entry}` is not SYM:BASE:QUOTE (alphanumeric)\n{USAGE}"
                ));
            }
            MockSymbol {
                symbol: parts[0].to_ascii_uppercase(),
                base: parts[1].to_ascii_uppercase(),
                quote: parts[2].to_ascii_uppercase(),
            }
        } else {
            binance::default_symbol(entry).ok_or_else(|| {
                format!("--symbols: unknown symbol `{entry}` (use SYM:BASE:QUOTE)\n{USAGE}")
            })?
        };
        if out.iter().any(|s| s.symbol == sym.symbol) {
            return Err(format!("--symbols: `{}` given twice\n{USAGE}", sym.symbol));
        }
        out.push(sym);
    }
    if out.is_empty() {
        return Err(format!("--symbols: empty list\n{USAGE}"));
    }
    Ok(out)
}

impl MockOptions {
    /// Parses the arguments after `mock-exchange` (e.g.
    /// `["--listen","127.0.0.1:0","--tls-dir","/tmp/x"]`); `--flag=value` is
    /// accepted too. Err = usage message naming the bad flag (`--help` also
    /// returns `Err(USAGE)`).
    pub fn from_args(args: &[String]) -> Result<MockOptions, String> {
        let mut o = MockOptions::default();
        let mut listen = None;
        let mut i = 0;
        while i < args.len() {
            let arg = args[i].as_str();
            i += 1;
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v)),
                _ => (arg, None),
            };
            if flag == "--help" || flag == "-h" {
                return Err(USAGE.to_string());
            }
            const WITH_VALUE: &[&str] = &[
                "--listen",
                "--spread",
                "--send-log",
                "--tls-dir",
                "--symbols",
                "--trades-per-symbol",
                "--rate",
                "--malformed-every",
                "--ping-interval-ms",
                "--pong-timeout-ms",
                "--time-base-ms",
                "--core",
                "--book-depth",
                "--book-rate",
                "--book-updates",
                "--event-rate",
                "--events-per-stream",
                "--okx-checksum",
                "--okx-idle-timeout-ms",
                "--okx-extra-pairs",
                "--futures-ping-interval-ms",
                "--futures-pong-timeout-ms",
                "--book-fault-every",
                "--drop-after",
                "--drop-random",
                "--fault-seed",
                "--stall-after",
                "--garbage-every",
                "--oversized-every",
                "--lifetime-ms",
                "--shutdown-notice-ms",
                "--refuse-ms",
            ];
            if !WITH_VALUE.contains(&flag) {
                return Err(format!("unknown argument `{arg}`\n{USAGE}"));
            }
            let value = match inline {
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
                    i += 1;
                    v.as_str()
                }
            };
            match flag {
                "--listen" => {
                    listen = Some(value.parse::<SocketAddr>().map_err(|_| {
                        format!("--listen: `{value}` is not an ip:port address\n{USAGE}")
                    })?)
                }
                "--tls-dir" => {
                    if value.is_empty() {
                        return Err(format!("--tls-dir: empty path\n{USAGE}"));
                    }
                    o.tls_dir = Some(PathBuf::from(value));
                }
                "--symbols" => o.symbols = parse_symbols(value)?,
                "--trades-per-symbol" => o.trades_per_symbol = parse_num(flag, value)?,
                "--rate" => o.rate = parse_num(flag, value)?,
                "--malformed-every" => o.malformed_every = parse_num(flag, value)?,
                "--ping-interval-ms" => o.ping_interval_ms = parse_num(flag, value)?,
                "--pong-timeout-ms" => o.pong_timeout_ms = parse_num(flag, value)?,
                "--time-base-ms" => o.time_base_ms = parse_num(flag, value)?,
                "--core" => o.core = Some(parse_num(flag, value)? as usize),
                "--book-depth" => {
                    let d = parse_num(flag, value)?;
                    if d == 0 || d > 400 {
                        return Err(format!(
                            "--book-depth: expected 1..=400, got `{value}`\n{USAGE}"
                        ));
                    }
                    o.book_depth = d as usize;
                }
                "--book-rate" => o.book_rate = parse_num(flag, value)?,
                "--book-updates" => o.book_updates = parse_num(flag, value)?,
                "--event-rate" => o.event_rate = parse_num(flag, value)?,
                "--events-per-stream" => o.events_per_stream = parse_num(flag, value)?,
                "--okx-checksum" => {
                    o.okx_checksum = match value {
                        "crc" => true,
                        "zero" => false,
                        _ => {
                            return Err(format!(
                                "--okx-checksum: expected crc or zero, got `{value}`\n{USAGE}"
                            ))
                        }
                    }
                }
                "--okx-idle-timeout-ms" => o.okx_idle_timeout_ms = parse_num(flag, value)?,
                "--okx-extra-pairs" => {
                    let n = parse_num(flag, value)?;
                    if n > okx::MAX_EXTRA_PAIRS as u64 {
                        return Err(format!(
                            "--okx-extra-pairs: expected 0..={}, got `{value}`\n{USAGE}",
                            okx::MAX_EXTRA_PAIRS
                        ));
                    }
                    o.okx_extra_pairs = n as usize;
                }
                "--futures-ping-interval-ms" => {
                    o.futures_ping_interval_ms = parse_num(flag, value)?
                }
                "--futures-pong-timeout-ms" => o.futures_pong_timeout_ms = parse_num(flag, value)?,
                "--book-fault-every" => {
                    let bad =
                        || format!("--book-fault-every: expected K:KIND, got `{value}`\n{USAGE}");
                    let (k, kind) = value.split_once(':').ok_or_else(bad)?;
                    let k = k.parse::<u64>().ok().filter(|k| *k > 0).ok_or_else(bad)?;
                    let kind = book::FaultKind::parse(kind)
                        .filter(|f| *f != book::FaultKind::StaleSnapshot)
                        .ok_or_else(bad)?;
                    o.book_fault_every = Some((k, kind));
                }
                "--drop-after" => o.conn_faults.drop_after = parse_num(flag, value)?,
                "--drop-random" => {
                    o.conn_faults.drop_random_ppb = fault::parse_prob(value).ok_or_else(|| {
                        format!(
                            "--drop-random: expected a probability 0..1, got `{value}`\n{USAGE}"
                        )
                    })?
                }
                "--fault-seed" => o.fault_seed = parse_num(flag, value)?,
                "--spread" => o.spread = parse_num(flag, value)? != 0,
                "--send-log" => o.send_log = Some(PathBuf::from(value)),
                "--stall-after" => o.conn_faults.stall_after = parse_num(flag, value)?,
                "--garbage-every" => o.conn_faults.garbage_every = parse_num(flag, value)?,
                "--oversized-every" => o.conn_faults.oversized_every = parse_num(flag, value)?,
                "--lifetime-ms" => o.conn_faults.lifetime_ms = parse_num(flag, value)?,
                "--shutdown-notice-ms" => o.conn_faults.notice_ms = parse_num(flag, value)?,
                "--refuse-ms" => o.refuse_ms = parse_num(flag, value)?,
                _ => unreachable!("flag list and match agree"),
            }
        }
        o.listen = listen.ok_or_else(|| format!("--listen is required\n{USAGE}"))?;
        Ok(o)
    }
}

/// A mock started by [`start`]: its bound address and its executor thread.
pub struct MockServer {
    pub addr: SocketAddr,
    pub tls: bool,
    handle: glommio::ExecutorJoinHandle<()>,
}

impl MockServer {
    /// Blocks until the executor ends (it serves until the process exits).
    pub fn join(self) -> io::Result<()> {
        self.handle
            .join()
            .map_err(|e| io::Error::other(format!("mock-exchange executor: {e}")))
    }
}

/// State shared by every connection of one mock (single executor thread).
pub(crate) struct Shared {
    pub opts: MockOptions,
    pub start: Instant,
    pub market: binance::Market,
    pub stats: stats::Stats,
    /// Running REST request weight (`X-MBX-USED-WEIGHT-1M`).
    pub weight: std::cell::Cell<u64>,
    /// Same for USDⓈ-M (`/fapi`, `/futures/data`).
    pub futures_weight: std::cell::Cell<u64>,
    /// Books and event producers of all venues.
    pub feeds: venues::Feeds,
    pub venue_stats: stats::VenueStats,
    /// Connection ids handed out (OKX `connId`, Bybit `conn_id`).
    pub conn_seq: std::cell::Cell<u64>,
    /// Requests so far per `path|symbol`, for REST answers numbered by request.
    pub rest_counts: std::cell::RefCell<std::collections::HashMap<String, u64>>,
    /// `/mock/rest_fault`: the next `count` venue REST answers are `status`
    /// with `Retry-After: retry_after` (status, retry_after_s, count).
    pub rest_fault: std::cell::Cell<(u16, u64, u64)>,
    /// REST answers replaced by such a fault.
    pub rest_faults_served: std::cell::Cell<u64>,
    /// `/mock/rest_fault?timeout_ms=`: the next `count` venue REST requests
    /// get no answer (timeout_ms, count).
    pub rest_timeout: std::cell::Cell<(u64, u64)>,
    /// Connection faults: settings and counters.
    pub faults: fault::Registry,
    /// `--send-log`: where sent trade chunks are stamped.
    pub send_log: Option<std::fs::File>,
}

impl Shared {
    pub fn new(opts: MockOptions) -> Shared {
        let start = Instant::now();
        let faults = fault::Registry::new(opts.conn_faults, opts.fault_seed, opts.refuse_ms, start);
        Shared {
            market: binance::Market::new(
                opts.symbols.len(),
                opts.rate,
                opts.trades_per_symbol,
                start,
            )
            .spread(opts.spread),
            stats: stats::Stats::new(opts.symbols.len()),
            feeds: venues::Feeds::new(&opts, start),
            start,
            opts,
            weight: std::cell::Cell::new(0),
            futures_weight: std::cell::Cell::new(0),
            venue_stats: stats::VenueStats::with_keys(&[
                "binance_spot",
                "binance_derivatives",
                "okx",
                "okx_spot",
                "okx_derivatives",
                "bybit_spot",
                "bybit_linear",
                "deribit_derivatives",
            ]),
            conn_seq: std::cell::Cell::new(0),
            rest_counts: Default::default(),
            rest_fault: std::cell::Cell::new((0, 0, 0)),
            rest_faults_served: std::cell::Cell::new(0),
            rest_timeout: std::cell::Cell::new((0, 0)),
            faults,
            send_log: None,
        }
    }

    /// Counts one more request for `key` and returns its 1-based number.
    pub fn next_request(&self, key: &str) -> u64 {
        let mut m = self.rest_counts.borrow_mut();
        let c = m.entry(key.to_string()).or_insert(0);
        *c += 1;
        *c
    }

    /// The mock's clock: time base plus time since start.
    pub fn now_ms(&self) -> u64 {
        self.opts
            .time_base_ms
            .wrapping_add(self.start.elapsed().as_millis() as u64)
    }
}

/// Starts the mock on its own glommio executor thread and returns once the
/// listener is bound (so port 0 is resolved). Used by [`run`] and by tests.
pub fn start(opts: MockOptions) -> io::Result<MockServer> {
    crate::sys::ensure_memlock().map_err(io::Error::other)?;
    let tls_cfg = match &opts.tls_dir {
        Some(dir) => Some(tls::server_config(&tls::load_or_generate(dir)?)?),
        None => None,
    };
    let tls = tls_cfg.is_some();
    let send_log = match &opts.send_log {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| io::Error::other(format!("--send-log {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let placement = match opts.core {
        Some(c) => Placement::Fixed(c),
        None => Placement::Unbound,
    };
    let (tx, rx) = std::sync::mpsc::channel::<io::Result<SocketAddr>>();
    let handle = LocalExecutorBuilder::new(placement)
        .name("mock-exchange")
        // Short slices so a connection streaming flat out cannot delay the
        // accept loop or other connections' control replies for long.
        .preempt_timer(Duration::from_millis(10))
        .spawn(move || async move {
            let listener = match TcpListener::bind(opts.listen) {
                Ok(l) => l,
                Err(e) => {
                    let _ = tx.send(Err(io::Error::other(format!(
                        "mock-exchange: bind {}: {e}",
                        opts.listen
                    ))));
                    return;
                }
            };
            match listener.local_addr() {
                Ok(a) => {
                    let _ = tx.send(Ok(a));
                }
                Err(e) => {
                    let _ = tx.send(Err(io::Error::other(format!(
                        "mock-exchange: local_addr: {e}"
                    ))));
                    return;
                }
            }
            drop(tx);
            let mut shared = Shared::new(opts);
            shared.send_log = send_log;
            accept_loop(listener, Rc::new(shared), tls_cfg).await;
        })
        .map_err(|e| io::Error::other(format!("mock-exchange executor: {e}")))?;
    match rx.recv() {
        Ok(Ok(addr)) => Ok(MockServer { addr, tls, handle }),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(e)
        }
        Err(_) => Err(match handle.join() {
            Err(e) => io::Error::other(format!("mock-exchange executor: {e}")),
            Ok(()) => io::Error::other("mock-exchange executor exited before binding"),
        }),
    }
}

/// Runs the mock until the process is killed (blocking; starts its own
/// glommio executor thread and joins it). Prints exactly one line
/// `mock-exchange listening on <ip:port> (tls|plain)` once bound.
pub fn run(opts: MockOptions) -> io::Result<()> {
    let server = start(opts)?;
    {
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "mock-exchange listening on {} ({})",
            server.addr,
            if server.tls { "tls" } else { "plain" }
        )?;
        out.flush()?;
    }
    server.join()
}

async fn accept_loop(
    listener: TcpListener,
    shared: Rc<Shared>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let acceptor = tls.map(futures_rustls::TlsAcceptor::from);
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Typically EMFILE: back off instead of spinning.
                log::warn!("mock-exchange: accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let acceptor = acceptor.clone();
        glommio::spawn_local(async move {
            match acceptor {
                Some(acc) => match acc.accept(stream).await {
                    Ok(s) => conn::serve(shared, s).await,
                    Err(e) => log::debug!("mock-exchange: TLS handshake failed: {e}"),
                },
                None => conn::serve(shared, stream).await,
            }
        })
        .detach();
    }
}

#[cfg(test)]
mod tests;
