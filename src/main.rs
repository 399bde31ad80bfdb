//! `marketprism` binary: parse the command line, run one mode, map the result
//! to an exit code (0 ok, 1 runtime failure, 2 bad config or usage).

#[cfg(feature = "mock")]
use marketprism::mock;
use marketprism::{config, engine, logging};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
marketprism: thread-per-core market-data collector

USAGE:
  marketprism run [--config FILE]        collect (default config/default.toml)
  marketprism check-config [--connect] [FILE]
                                         validate a config and print the core/connection plan;
                                         --connect: also ask the configured NATS which stream
                                         (or core NATS) carries each data type, and what `run`
                                         would change on the stream; and the configured
                                         ClickHouse which tables exist and which `run` would
                                         create (a dry run: nothing is changed)
  marketprism replay --input DIR [--speed N|max] [--config FILE]
                                         feed raw captures (sink.raw) through the parsers
                                         into the config's file sink, deterministically
  marketprism tune check [--config FILE] [--root DIR]
                                         audit this host against tuning/ and the config
  marketprism top [--url URL] [--interval-ms N] [--once] [--iterations N]
                                         live per-core view of /metrics and /health
  marketprism mock-exchange --listen ADDR [--tls-dir DIR] [options]
                                         local mock of the venues (see --help there)
  marketprism --version

Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage.
Log level: MARKETPRISM_LOG=error|warn|info|debug|trace (default info); else
  MarketPrism's MARKETPRISM_LOG_LEVEL or LOG_LEVEL (DEBUG|INFO|WARNING|ERROR).
Environment over the config file: MARKETPRISM_NATS_URL > NATS_URL >
  MARKETPRISM_NATS_SERVERS (sink.nats.servers, when the NATS sink is on),
  METRICS_PORT (port of http.listen), HEALTH_CHECK_PORT (port of http.health_listen).
";

const DEFAULT_CONFIG: &str = "config/default.toml";

/// Counts allocations per thread for `marketprism_heap_allocations_total`
/// and `/debug/memory`; with the `dhat-heap` feature, dhat profiles instead.
#[cfg(not(feature = "dhat-heap"))]
#[global_allocator]
static ALLOC: marketprism::sys::CountingAlloc = marketprism::sys::CountingAlloc;

#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() -> ExitCode {
    // Heap profile on demand: `cargo run --release --features dhat-heap -- run`
    // writes dhat-heap.json at exit (view it with dhat's viewer).
    #[cfg(feature = "dhat-heap")]
    let _profiler = dhat::Profiler::new_heap();
    if let Err(e) = logging::try_init() {
        eprintln!("environment: {e}");
        return ExitCode::from(2);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "run" => cmd_run(rest),
        "check-config" => cmd_check(rest),
        "mock-exchange" => cmd_mock(rest),
        "replay" => cmd_replay(rest),
        "top" => marketprism::top::cli(rest),
        "tune" => marketprism::tune::cli(rest),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        "-V" | "--version" => {
            println!("marketprism {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("unknown command `{other}`\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn config_path(args: &[String], allow_positional: bool) -> Result<PathBuf, String> {
    let mut path = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--config" | "-c" => {
                let v = args.get(i + 1).ok_or("--config needs a file")?;
                path = Some(PathBuf::from(v));
                i += 2;
            }
            s if allow_positional && !s.starts_with('-') && path.is_none() => {
                path = Some(PathBuf::from(s));
                i += 1;
            }
            s => return Err(format!("unexpected argument `{s}`")),
        }
    }
    Ok(path.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)))
}

fn cmd_run(args: &[String]) -> ExitCode {
    let path = match config_path(args, false) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let plan = match config::load(&path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    match engine::run(plan) {
        Ok(()) => ExitCode::SUCCESS,
        Err(engine::EngineError::Config(e)) => {
            eprintln!("{}: {e}", path.display());
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("marketprism: {e}");
            ExitCode::from(1)
        }
    }
}

fn cmd_check(args: &[String]) -> ExitCode {
    let connect = args.iter().any(|a| a == "--connect");
    let args: Vec<String> = args.iter().filter(|a| *a != "--connect").cloned().collect();
    let path = match config_path(&args, true) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match config::load_with_env(&path, &|k| std::env::var(k).ok()) {
        Ok((plan, applied)) => {
            use std::io::Write as _;
            // A closed pipe (`| head`) is not an error of the config.
            let _ = write!(std::io::stdout(), "{plan}");
            for a in &applied {
                let _ = writeln!(std::io::stdout(), "  environment: {a}");
            }
            let missing = plan.missing_cpus();
            if !missing.is_empty() {
                eprintln!(
                    "warning: CPU(s) {missing:?} in engine.cores are not available on this machine"
                );
            }
            let missing = plan.missing_io_worker_cpus();
            if !missing.is_empty() {
                eprintln!(
                    "warning: CPU(s) {missing:?} in sink.io_worker_cpus are not available on this machine"
                );
            }
            if connect {
                if plan.nats.is_none() && plan.clickhouse.is_none() {
                    let _ = writeln!(
                        std::io::stdout(),
                        "no NATS or ClickHouse sink configured: nothing to connect to"
                    );
                }
                if let Some(code) = check_nats(&plan, &path) {
                    return code;
                }
                match marketprism::cluster::check::describe(
                    &plan,
                    std::time::Duration::from_secs(5),
                ) {
                    Some(Ok(text)) => {
                        let _ = write!(std::io::stdout(), "{text}");
                    }
                    // NATS answered: most likely no member created the bucket yet.
                    Some(Err(e)) => {
                        let _ = writeln!(std::io::stdout(), "cluster bucket not readable: {e}");
                    }
                    None => {}
                }
                if let Some(code) = check_clickhouse(&plan, &path) {
                    return code;
                }
            }
            let _ = writeln!(std::io::stdout(), "{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            ExitCode::from(2)
        }
    }
}

/// `check-config --connect`: the NATS dry run. `Some(exit code)` when it
/// fails (2: a data type nothing can carry; 1: NATS not reachable).
fn check_nats(plan: &config::Plan, path: &std::path::Path) -> Option<ExitCode> {
    use std::io::Write as _;
    let Some(n) = &plan.nats else {
        return None;
    };
    if let Err(e) = marketprism::sys::ensure_memlock() {
        eprintln!("marketprism: {e}");
        return Some(ExitCode::from(1));
    }
    match marketprism::sink::nats::preflight::preflight(
        &n.config,
        &n.wants,
        false,
        std::time::Duration::from_secs(5),
    ) {
        Ok(r) => {
            let _ = write!(std::io::stdout(), "{r}");
            if r.errors.is_empty() {
                return None;
            }
            for e in &r.errors {
                eprintln!("{}: config error at `sink.nats`: {e}", path.display());
            }
            Some(ExitCode::from(2))
        }
        Err(e) => {
            eprintln!("marketprism: cannot ask NATS: {e}");
            Some(ExitCode::from(1))
        }
    }
}

/// `check-config --connect`: the ClickHouse dry run (nothing created).
/// `Some(exit code)` when it fails (2: a table or column missing; 1:
/// ClickHouse not reachable).
fn check_clickhouse(plan: &config::Plan, path: &std::path::Path) -> Option<ExitCode> {
    use std::io::Write as _;
    let c = plan.clickhouse.as_ref()?;
    if let Err(e) = marketprism::sys::ensure_memlock() {
        eprintln!("marketprism: {e}");
        return Some(ExitCode::from(1));
    }
    let tls = match c.config.tls() {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "{}: config error at `sink.clickhouse.ca_file`: {e}",
                path.display()
            );
            return Some(ExitCode::from(2));
        }
    };
    let timeout = std::time::Duration::from_secs(5);
    match marketprism::sink::clickhouse::setup::preflight(&c.config, tls, timeout, false) {
        Ok(Some(checked)) => {
            let mut out = std::io::stdout();
            let _ = writeln!(
                out,
                "ClickHouse {} database {}:",
                c.config.url, c.config.database
            );
            for t in &checked.tables {
                let _ = writeln!(out, "  {t}");
            }
            for w in &checked.warnings {
                let _ = writeln!(out, "  warning: {w}");
            }
            if checked.errors.is_empty() {
                return None;
            }
            for e in &checked.errors {
                eprintln!("{}: config error at `sink.clickhouse`: {e}", path.display());
            }
            Some(ExitCode::from(2))
        }
        Ok(None) => {
            eprintln!("marketprism: cannot ask ClickHouse at {}", c.config.url);
            Some(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("marketprism: cannot ask ClickHouse: {e}");
            Some(ExitCode::from(1))
        }
    }
}

fn cmd_replay(args: &[String]) -> ExitCode {
    let mut input = None;
    let mut speed = engine::replay::Speed::Max;
    let mut config = PathBuf::from(DEFAULT_CONFIG);
    let mut i = 0;
    while i < args.len() {
        let val = args.get(i + 1);
        match (args[i].as_str(), val) {
            ("--input", Some(v)) => input = Some(PathBuf::from(v)),
            ("--config", Some(v)) => config = PathBuf::from(v),
            ("--speed", Some(v)) if v == "max" => speed = engine::replay::Speed::Max,
            ("--speed", Some(v)) => match v.parse::<f64>() {
                Ok(x) if x > 0.0 && x.is_finite() => speed = engine::replay::Speed::Times(x),
                _ => {
                    eprintln!("--speed takes a positive number or `max`, not `{v}`");
                    return ExitCode::from(2);
                }
            },
            (flag, _) => {
                eprintln!("replay: unexpected or incomplete argument `{flag}`\n\n{USAGE}");
                return ExitCode::from(2);
            }
        }
        i += 2;
    }
    let Some(input) = input else {
        eprintln!("replay needs --input DIR\n\n{USAGE}");
        return ExitCode::from(2);
    };
    let plan = match config::load(&config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}: {e}", config.display());
            return ExitCode::from(2);
        }
    };
    match engine::replay::replay(&plan, &input, speed) {
        Ok(s) => {
            let mut to = Vec::new();
            if plan.file_sink {
                to.push(plan.sink.path.display().to_string());
            }
            if let Some(n) = &plan.nats {
                to.push(format!(
                    "NATS stream {} (all acknowledged)",
                    n.config.stream
                ));
            }
            println!(
                "replayed {} frames from {}: {} records written to {}, {} malformed",
                s.frames,
                input.display(),
                s.records,
                to.join(" and "),
                s.malformed
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("replay: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(feature = "mock")]
fn cmd_mock(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", mock::USAGE);
        return ExitCode::SUCCESS;
    }
    let opts = match mock::MockOptions::from_args(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match mock::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mock-exchange: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(not(feature = "mock"))]
fn cmd_mock(_args: &[String]) -> ExitCode {
    eprintln!(
        "mock-exchange: not built in (this binary was built without the `mock` cargo feature; \
         build with the default features to get it)"
    );
    ExitCode::from(2)
}
