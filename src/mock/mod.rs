//! `marketprism mock-exchange`: a local fake of Binance spot's public
//! market-data API (REST `exchangeInfo` + trade WebSockets) on one loopback
//! port, over TLS with a generated CA or plain TCP. Integration tests,
//! benchmarks and the offline demo point the real collector at it.
//!
//! This module holds the options, the executor start-up and the accept loop;
//! see `conn` (HTTP routing), `session` (WebSocket streaming), `binance`
//! (market + event formats), `ws`, `http`, `tls` and `stats`.

pub mod binance;
mod conn;
mod http;
mod session;
mod stats;
mod tls;
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
  --help                   show this text";

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
                "--tls-dir",
                "--symbols",
                "--trades-per-symbol",
                "--rate",
                "--malformed-every",
                "--ping-interval-ms",
                "--pong-timeout-ms",
                "--time-base-ms",
                "--core",
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
}

impl Shared {
    pub fn new(opts: MockOptions) -> Shared {
        let start = Instant::now();
        Shared {
            market: binance::Market::new(
                opts.symbols.len(),
                opts.rate,
                opts.trades_per_symbol,
                start,
            ),
            stats: stats::Stats::new(opts.symbols.len()),
            start,
            opts,
            weight: std::cell::Cell::new(0),
        }
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
            accept_loop(listener, Rc::new(Shared::new(opts)), tls_cfg).await;
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
