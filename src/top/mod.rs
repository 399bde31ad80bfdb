//! `marketprism top`: a Grafana-free look at a running collector. Scrapes
//! `/metrics` and `/health` over plain HTTP every interval and redraws a
//! per-core table of rates, latency quantiles and NATS state.
//!
//! - [`scrape`]: the tiny HTTP/1.1 GET;
//! - [`parse`]: OpenMetrics text → samples;
//! - [`view`]: two snapshots + elapsed → the table (pure).

pub mod parse;
pub mod scrape;
pub mod view;

use scrape::Target;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use view::{Health, Snapshot};

/// Per-request timeout (connect + send + read).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_URL: &str = "http://127.0.0.1:9092";
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(1000);

const CLEAR_HOME: &str = "\x1b[2J\x1b[H";

const USAGE: &str = "\
marketprism top: live per-core view of a running collector's /metrics and /health

USAGE:
  marketprism top [--url URL] [--interval-ms N] [--once] [--iterations N]

  --url URL          the collector's HTTP listener (default http://127.0.0.1:9092)
  --interval-ms N    refresh interval (default 1000)
  --once             print one plain snapshot (rates over one interval) and exit
  --iterations N     stop after N refreshes (exit 1 if the collector was never reachable)

Exit codes: 0 ok, 1 collector unreachable, 2 bad usage.
";

/// Parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub url: String,
    pub interval: Duration,
    pub once: bool,
    pub iterations: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            url: DEFAULT_URL.into(),
            interval: DEFAULT_INTERVAL,
            once: false,
            iterations: None,
        }
    }
}

/// Parses `top`'s arguments (`--flag value` or `--flag=value`).
/// `Ok(None)` means help was asked for.
pub fn parse_args(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let (flag, inline) = match args[i].split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (args[i].as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag {
            "--url" => {
                let u = value("--url")?;
                Target::parse(&u)?;
                o.url = u;
            }
            "--interval-ms" => {
                let v = value("--interval-ms")?;
                let ms: u64 = v
                    .parse()
                    .map_err(|_| format!("--interval-ms: `{v}` is not a number"))?;
                if !(10..=3_600_000).contains(&ms) {
                    return Err(format!("--interval-ms: {ms} is outside 10..=3600000"));
                }
                o.interval = Duration::from_millis(ms);
            }
            "--iterations" => {
                let v = value("--iterations")?;
                let n: u64 = v
                    .parse()
                    .map_err(|_| format!("--iterations: `{v}` is not a number"))?;
                if n == 0 {
                    return Err("--iterations must be at least 1".into());
                }
                o.iterations = Some(n);
            }
            "--once" if inline.is_none() => o.once = true,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unexpected argument `{other}`")),
        }
        i += 1;
    }
    Ok(Some(o))
}

/// Entry point of `marketprism top`.
pub fn cli(args: &[String]) -> ExitCode {
    let opts = match parse_args(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if opts.once {
        return match run_once(&opts.url, opts.interval) {
            Ok(s) => {
                print!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        };
    }
    run_loop(&opts)
}

/// One scrape of `/metrics` (required) and `/health` (optional), and when
/// the metrics request started and how long it took.
pub fn scrape_snapshot(target: &Target) -> Result<(Snapshot, Instant, Duration), String> {
    let t0 = Instant::now();
    let m =
        scrape::get(target, "/metrics", HTTP_TIMEOUT).map_err(|e| format!("cannot scrape {e}"))?;
    let took = t0.elapsed();
    if m.status != 200 {
        return Err(format!(
            "cannot scrape {}: HTTP {}",
            target.url("/metrics"),
            m.status
        ));
    }
    let samples = parse::parse(&m.body);
    let health = scrape::get(target, "/health", HTTP_TIMEOUT).and_then(|r| parse_health(&r));
    Ok((Snapshot { samples, health }, t0, took))
}

#[derive(serde::Deserialize)]
struct HealthJson {
    status: String,
    #[serde(default)]
    connections_up: i64,
    #[serde(default)]
    connections_planned: i64,
    #[serde(default)]
    uptime_s: Option<u64>,
}

/// `/health` answer → [`Health`]; a 503 with a JSON body is still an answer.
pub fn parse_health(r: &scrape::Response) -> Result<Health, String> {
    match sonic_rs::from_str::<HealthJson>(&r.body) {
        Ok(h) => Ok(Health {
            http_status: r.status,
            status: h.status,
            connections_up: h.connections_up,
            connections_planned: h.connections_planned,
            uptime_s: h.uptime_s,
        }),
        Err(_) => Err(format!("/health answered HTTP {} without JSON", r.status)),
    }
}

/// The time to divide by. Client-side timing can only place each server-side
/// read within its request, so when the measured gap between the two
/// requests is within that uncertainty (both request durations + 1 % of the
/// interval) of the scheduled interval, the scheduled interval is used;
/// otherwise (a slow scrape, a missed tick) the measured gap.
pub fn rate_elapsed(
    scheduled: Duration,
    measured: Duration,
    took_a: Duration,
    took_b: Duration,
) -> Duration {
    let slack = took_a + took_b + scheduled / 100;
    let diff = measured.abs_diff(scheduled);
    if diff <= slack {
        scheduled
    } else {
        measured
    }
}

/// Two scrapes `interval` apart → the plain table (no ANSI). The error names
/// the URL when the collector cannot be scraped.
pub fn run_once(url: &str, interval: Duration) -> Result<String, String> {
    let target = Target::parse(url)?;
    let (a, t_a, took_a) = scrape_snapshot(&target)?;
    sleep_until(t_a + interval);
    let (b, t_b, took_b) = scrape_snapshot(&target)?;
    let elapsed = rate_elapsed(interval, t_b - t_a, took_a, took_b);
    Ok(view::render(url, &a, &b, elapsed))
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// Redraws every interval until `iterations` refreshes (forever without).
/// The first frame shows averages since the collector started; an
/// unreachable collector gives one error line per interval, and the next
/// successful scrape starts over from such a first frame.
fn run_loop(opts: &Options) -> ExitCode {
    let target = match Target::parse(&opts.url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut prev: Option<(Snapshot, Instant, Duration)> = None;
    let mut ever_reached = false;
    let mut n = 0u64;
    let start = Instant::now();
    let stdout = std::io::stdout();
    loop {
        let frame = match scrape_snapshot(&target) {
            Ok((snap, t, took)) => {
                ever_reached = true;
                let frame = match &prev {
                    Some((p, tp, took_p)) => {
                        let e = rate_elapsed(opts.interval, t - *tp, *took_p, took);
                        view::render(&opts.url, p, &snap, e)
                    }
                    None => {
                        let up = snap
                            .health
                            .as_ref()
                            .ok()
                            .and_then(|h| h.uptime_s)
                            .or_else(|| snap.value("marketprism_uptime_seconds").map(|u| u as u64))
                            .unwrap_or(0);
                        view::render_with_note(
                            &opts.url,
                            &Snapshot::empty(),
                            &snap,
                            Duration::from_secs(up),
                            Some("averages since start; live rates next refresh"),
                        )
                    }
                };
                prev = Some((snap, t, took));
                frame
            }
            Err(e) => {
                prev = None;
                format!(
                    "marketprism top  {}\n{e}\nretrying every {} ms\n",
                    opts.url,
                    opts.interval.as_millis()
                )
            }
        };
        {
            let mut out = stdout.lock();
            let _ = write!(out, "{CLEAR_HOME}{frame}");
            let _ = out.flush();
        }
        n += 1;
        if opts.iterations.is_some_and(|max| n >= max) {
            break;
        }
        // Fixed cadence: the next tick after now.
        let mut next = start + opts.interval * (n as u32).max(1);
        let now = Instant::now();
        while next <= now {
            next += opts.interval;
        }
        sleep_until(next);
    }
    if ever_reached {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_arguments() {
        assert_eq!(parse_args(&[]).unwrap().unwrap(), Options::default());
        let o = parse_args(&args(&[
            "--url",
            "http://10.0.0.1:9100",
            "--interval-ms=250",
            "--once",
            "--iterations",
            "3",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(o.url, "http://10.0.0.1:9100");
        assert_eq!(o.interval, Duration::from_millis(250));
        assert!(o.once);
        assert_eq!(o.iterations, Some(3));
        assert_eq!(parse_args(&args(&["-h"])).unwrap(), None);
        assert!(parse_args(&args(&["--url"]))
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse_args(&args(&["--interval-ms", "x"])).is_err());
        assert!(parse_args(&args(&["--interval-ms", "0"])).is_err());
        assert!(parse_args(&args(&["--iterations", "0"])).is_err());
        assert!(parse_args(&args(&["--url", "https://x:1"])).is_err());
        assert!(parse_args(&args(&["--bogus"]))
            .unwrap_err()
            .contains("--bogus"));
    }

    #[test]
    fn rate_elapsed_snaps_within_uncertainty() {
        let s = Duration::from_millis(1000);
        let ms = Duration::from_millis;
        assert_eq!(rate_elapsed(s, ms(1003), ms(1), ms(1)), s);
        assert_eq!(rate_elapsed(s, ms(997), ms(1), ms(1)), s);
        assert_eq!(rate_elapsed(s, ms(1500), ms(1), ms(1)), ms(1500));
    }

    #[test]
    fn parses_health_bodies() {
        let r = scrape::Response {
            status: 503,
            body: r#"{"status":"down","connections_up":0,"connections_planned":2,"uptime_s":7,"cores":[]}"#.into(),
        };
        let h = parse_health(&r).unwrap();
        assert_eq!(
            (h.status.as_str(), h.connections_up, h.connections_planned),
            ("down", 0, 2)
        );
        assert_eq!((h.http_status, h.uptime_s), (503, Some(7)));
        let bad = scrape::Response {
            status: 404,
            body: "nope".into(),
        };
        assert!(parse_health(&bad).unwrap_err().contains("404"));
    }
}
