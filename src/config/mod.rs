//! Configuration: [`raw`] is the TOML as written, [`plan`] the validated plan.
//!
//! Every error names the offending key, so `check-config` can point at it.

pub mod assign;
mod build;
mod cpus;
mod display;
pub mod env;
pub mod freshness;
pub mod http;
pub mod plan;
pub mod raw;

pub use plan::{ConnectionPlan, CorePlan, Plan, StreamSpec, VenuePlan};
pub use raw::WriteMode;
use std::fmt;
use std::path::Path;

/// A configuration problem: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config error at `{}`: {}", self.key, self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl From<crate::logging::LevelError> for ConfigError {
    fn from(e: crate::logging::LevelError) -> Self {
        ConfigError::new(e.key, e.reason)
    }
}

/// Reads and plans a config file, with the process environment laid over
/// it (see [`env`]).
pub fn load(path: &Path) -> Result<Plan, ConfigError> {
    let (plan, applied) = load_with_env(path, &|k| std::env::var(k).ok())?;
    for a in &applied {
        log::info!("environment: {a}");
    }
    Ok(plan)
}

/// [`load`] with the environment read through `get`; also returns what the
/// environment set.
pub fn load_with_env(
    path: &Path,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<(Plan, Vec<env::Applied>), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("(file)", format!("cannot read {}: {e}", path.display())))?;
    let mut raw: raw::RawConfig = toml::from_str(&text).map_err(toml_error)?;
    let applied = env::apply(&mut raw, get)?;
    let plan = Plan::from_raw(&raw).map_err(|e| env::blame(e, &applied))?;
    Ok((plan, applied))
}

/// Parses and plans config text (no environment).
pub fn load_str(text: &str) -> Result<Plan, ConfigError> {
    let raw: raw::RawConfig = toml::from_str(text).map_err(toml_error)?;
    Plan::from_raw(&raw)
}

/// Turns a TOML/serde error into a keyed error: the key is the text of the
/// offending line up to `=` (or the table header), which is what a user
/// searches for in their file.
fn toml_error(e: toml::de::Error) -> ConfigError {
    let msg = e.message().to_string();
    let key = unknown_field_name(&msg)
        .map(str::to_string)
        .or_else(|| e.span().map(|_| String::new()))
        .unwrap_or_default();
    let key = if key.is_empty() {
        // Fall back to the rendered error, whose first lines show the spot.
        "(toml)".to_string()
    } else {
        key
    };
    ConfigError::new(key, e.to_string().trim().replace('\n', " | "))
}

fn unknown_field_name(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConfigError {
        load_str(text).expect_err("config should be rejected")
    }

    const GOOD: &str = "[exchanges.binance_spot]\nsymbols=[\"BTCUSDT\"]\ndata_types=[\"trade\"]\n";

    #[test]
    fn minimal_config_plans() {
        let plan = load_str(GOOD).unwrap();
        assert_eq!(plan.cores.len(), 1);
        assert_eq!(plan.engine.batch_max_events, 4096);
        assert_eq!(plan.engine.batch_max_delay.as_millis(), 20);
        assert_eq!(plan.http_listen.to_string(), "127.0.0.1:9092");
        assert_eq!(plan.sink.path.to_str(), Some("data"));
        assert_eq!(plan.sink.write_mode, raw::WriteMode::Offload);
        let inline = load_str(&format!("[sink]\nwrite_mode = \"inline\"\n{GOOD}")).unwrap();
        assert_eq!(inline.sink.write_mode, raw::WriteMode::Inline);
        let direct = load_str(&format!("[sink]\nwrite_mode = \"direct\"\n{GOOD}")).unwrap();
        assert_eq!(direct.sink.write_mode, raw::WriteMode::Direct);
        let offload = load_str(&format!(
            "[sink]\nwrite_mode = \"offload\"\nio_worker_cpus = [3, 5]\n{GOOD}"
        ))
        .unwrap();
        assert_eq!(offload.sink.write_mode, raw::WriteMode::Offload);
        assert_eq!(offload.sink.io_worker_cpus, [3, 5]);
        assert!(offload
            .to_string()
            .contains("write_mode offload, io_uring workers on cpus [3, 5]"));
        let e = load_str(&format!("[sink]\nwrite_mode = \"fast\"\n{GOOD}")).unwrap_err();
        assert!(e.to_string().contains("write_mode"), "{e}");
    }

    #[test]
    fn contract_example_from_issue_parses() {
        let text = r#"
[engine]
cores = [0, 1]
batch_max_events = 4096
batch_max_delay_ms = 20
[http]
listen = "127.0.0.1:9092"
[sink]
kind = "file"
path = "data"
[exchanges.binance_spot]
ws_url = "wss://stream.binance.com:9443"
rest_url = "https://api.binance.com"
symbols = ["BTCUSDT", "ETHUSDT"]
data_types = ["trade"]
streams_per_connection = 200
# ca_file = "path/to/extra-ca.pem"
"#;
        let plan = load_str(text).unwrap();
        assert_eq!(plan.cores.len(), 2);
        assert_eq!(plan.venues[0].symbols, vec!["BTCUSDT", "ETHUSDT"]);
    }

    #[test]
    fn errors_name_the_key() {
        assert_eq!(
            err(&format!("[engine]\ncores=[]\n{GOOD}")).key,
            "engine.cores"
        );
        assert_eq!(
            err(&format!("[engine]\ncores=[1,1]\n{GOOD}")).key,
            "engine.cores[1]"
        );
        assert_eq!(
            err(&format!("[engine]\nbatch_max_events=0\n{GOOD}")).key,
            "engine.batch_max_events"
        );
        assert_eq!(
            err(&format!("[http]\nlisten=\"nope\"\n{GOOD}")).key,
            "http.listen"
        );
        assert_eq!(
            err(&format!("[sink]\nkind=\"kafka\"\n{GOOD}")).key,
            "sink.kind"
        );
        assert_eq!(
            err("[exchanges.binance_spotx]\nsymbols=[\"BTCUSDT\"]\ndata_types=[\"trade\"]\n").key,
            "exchanges.binance_spotx"
        );
        assert_eq!(
            err("[exchanges.binance_spot]\nsymbols=[\"BTCUSDT\"]\ndata_types=[\"trades\"]\n").key,
            "exchanges.binance_spot.data_types[0]"
        );
        // Binance spot has no volatility index: the venue is named in the reason.
        let e = err(
            "[exchanges.binance_spot]\nsymbols=[\"BTCUSDT\"]\ndata_types=[\"volatility_index\"]\n",
        );
        assert_eq!(e.key, "exchanges.binance_spot.data_types[0]");
        assert!(e.reason.contains("does not offer"), "{e}");
        assert_eq!(
            err(&format!("{GOOD}poll_interval_ms = {{ trade = 5000 }}\n")).key,
            "exchanges.binance_spot.poll_interval_ms.trade"
        );
        assert_eq!(
            err(&format!("{GOOD}book_depth = 0\n")).key,
            "exchanges.binance_spot.book_depth"
        );
        assert_eq!(
            err("[exchanges.binance_spot]\nsymbols=[]\ndata_types=[\"trade\"]\n").key,
            "exchanges.binance_spot.symbols"
        );
        assert_eq!(
            err("[exchanges.binance_spot]\nsymbols=[\"BTC USDT\"]\ndata_types=[\"trade\"]\n").key,
            "exchanges.binance_spot.symbols[0]"
        );
        assert_eq!(
            err(&format!("{GOOD}ws_url=\"ftp://x\"\n")).key,
            "exchanges.binance_spot.ws_url"
        );
        assert_eq!(
            err(&format!("{GOOD}streams_per_connection=1025\n")).key,
            "exchanges.binance_spot.streams_per_connection"
        );
        assert_eq!(err(&format!("[engine]\ncoress=[0]\n{GOOD}")).key, "coress");
        assert_eq!(err("").key, "exchanges");
        let e = err("[engine]\ncores=\"zero\"\n");
        assert!(e.to_string().contains("cores"), "{e}");
    }

    #[test]
    fn crash_safety_keys() {
        let plan = load_str(GOOD).unwrap();
        assert_eq!(plan.engine.shutdown_timeout.as_millis(), 10_000);
        assert_eq!(plan.file_limits.max_pending_bytes, 256 << 20);
        assert_eq!(plan.file_limits.disk_full_retry.as_millis(), 1000);
        let plan = load_str(&format!(
            "[engine]\nshutdown_timeout_ms=2500\n[sink]\nmax_pending_bytes=1048576\ndisk_full_retry_ms=50\n{GOOD}"
        ))
        .unwrap();
        assert_eq!(plan.engine.shutdown_timeout.as_millis(), 2500);
        assert_eq!(plan.file_limits.max_pending_bytes, 1 << 20);
        assert_eq!(plan.file_limits.disk_full_retry.as_millis(), 50);
        assert_eq!(
            err(&format!("[engine]\nshutdown_timeout_ms=0\n{GOOD}")).key,
            "engine.shutdown_timeout_ms"
        );
        assert_eq!(
            err(&format!("[sink]\nmax_pending_bytes=100\n{GOOD}")).key,
            "sink.max_pending_bytes"
        );
        assert_eq!(
            err(&format!("[sink]\ndisk_full_retry_ms=0\n{GOOD}")).key,
            "sink.disk_full_retry_ms"
        );
    }

    #[test]
    fn tls_verification_has_no_off_switch() {
        // Only extra CAs (`ca_file`) can be added; every spelling of "skip
        // verification" is an unknown key.
        for k in [
            "tls_verify = false",
            "insecure = true",
            "insecure_skip_verify = true",
            "danger_accept_invalid_certs = true",
            "verify_certificates = false",
        ] {
            let e = err(&format!("{GOOD}{k}\n"));
            assert!(e.reason.contains("unknown field"), "{k}: {e}");
        }
    }

    #[test]
    fn http_listens_on_loopback_unless_configured() {
        assert!(load_str(GOOD).unwrap().http_listen.ip().is_loopback());
        for (name, text) in [
            ("default.toml", include_str!("../../config/default.toml")),
            ("demo.toml", include_str!("../../config/demo.toml")),
        ] {
            let plan = load_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(plan.http_listen.ip().is_loopback(), "{name}");
            // MarketPrism's health port, on loopback too.
            assert_eq!(
                plan.http.health_listen,
                Some("127.0.0.1:8087".parse().unwrap()),
                "{name}"
            );
        }
        let plan = load_str(&format!("[http]\nlisten=\"0.0.0.0:9092\"\n{GOOD}")).unwrap();
        assert!(plan.http_listen.ip().is_unspecified());
    }

    #[test]
    fn http_listener_keys() {
        let plan = load_str(GOOD).unwrap();
        assert_eq!(plan.http.health_listen, None);
        assert_eq!(plan.http.limits, http::HttpLimits::default());
        assert_eq!(plan.http.limits.max_connections, 64);
        assert_eq!(plan.http.limits.header_timeout.as_millis(), 5000);
        assert_eq!(plan.http.limits.write_timeout.as_millis(), 10_000);
        assert!(plan.to_string().contains(
            "  http: /metrics and /health on http://127.0.0.1:9092; per listener at most 64 \
             connections, request head within 5000 ms, answer written within 10000 ms\n"
        ));
        let plan = load_str(&format!(
            "[http]\nhealth_listen=\"0.0.0.0:8087\"\nmax_connections=8\nheader_timeout_ms=250\n\
             write_timeout_ms=300\n{GOOD}"
        ))
        .unwrap();
        assert_eq!(
            plan.http.health_listen,
            Some("0.0.0.0:8087".parse().unwrap())
        );
        assert_eq!(plan.http.limits.max_connections, 8);
        assert!(plan
            .to_string()
            .contains("; /health also on http://0.0.0.0:8087/health; per listener at most 8 "));
        for (kv, key) in [
            ("health_listen=\"8087\"", "http.health_listen"),
            ("health_listen=\"127.0.0.1:9092\"", "http.health_listen"),
            ("max_connections=0", "http.max_connections"),
            ("header_timeout_ms=0", "http.header_timeout_ms"),
            ("write_timeout_ms=99", "http.write_timeout_ms"),
        ] {
            assert_eq!(err(&format!("[http]\n{kv}\n{GOOD}")).key, key, "{kv}");
        }
        // Both on port 0: two ports picked at bind time.
        assert!(load_str(&format!(
            "[http]\nlisten=\"127.0.0.1:0\"\nhealth_listen=\"127.0.0.1:0\"\n{GOOD}"
        ))
        .is_ok());
    }

    #[test]
    fn environment_overrides_name_the_variable_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            format!("[sink]\nkind=\"nats\"\n[sink.nats]\nservers=[\"nats://a:1\"]\n{GOOD}"),
        )
        .unwrap();
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let (plan, applied) = load_with_env(
            &path,
            &env(&[
                ("NATS_URL", "nats://b:2"),
                ("METRICS_PORT", "9100"),
                ("HEALTH_CHECK_PORT", "8087"),
            ]),
        )
        .unwrap();
        assert_eq!(plan.nats.unwrap().config.servers, ["nats://b:2"]);
        assert_eq!(plan.http_listen.to_string(), "127.0.0.1:9100");
        assert_eq!(
            plan.http.health_listen,
            Some("127.0.0.1:8087".parse().unwrap())
        );
        assert_eq!(applied.len(), 3);
        let e = load_with_env(&path, &env(&[("NATS_URL", "http://b:2")])).unwrap_err();
        assert!(
            e.key.starts_with(
                "sink.nats.servers[0] (set by environment variable NATS_URL=http://b:2)"
            ),
            "{e}"
        );
        let e = load_with_env(
            &path,
            &env(&[("METRICS_PORT", "8087"), ("HEALTH_CHECK_PORT", "8087")]),
        )
        .unwrap_err();
        assert_eq!(
            e.key,
            "http.health_listen (set by environment variable HEALTH_CHECK_PORT=8087)"
        );
    }
}
