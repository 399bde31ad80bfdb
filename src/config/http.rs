//! `[http]` planned: the two listener addresses and the limits every
//! connection on them obeys (see `crate::metrics::listen`).

use super::raw::HttpConfig;
use super::ConfigError;
pub use crate::metrics::listen::HttpLimits;
use std::net::SocketAddr;
use std::time::Duration;

/// Checked `[http]` settings besides `http.listen` (kept as `Plan::http_listen`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpPlan {
    /// The health-only listener, if configured.
    pub health_listen: Option<SocketAddr>,
    pub limits: HttpLimits,
}

/// The `[http]` defaults (the listener owns the type, config its defaults).
impl Default for HttpLimits {
    fn default() -> Self {
        let d = HttpConfig::default();
        HttpLimits {
            max_connections: d.max_connections,
            header_timeout: Duration::from_millis(d.header_timeout_ms),
            write_timeout: Duration::from_millis(d.write_timeout_ms),
        }
    }
}

/// Parses an `ip:port` listener address, naming `key` on failure.
pub fn parse_addr(key: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse()
        .map_err(|err| ConfigError::new(key, format!("`{text}` is not an ip:port address: {err}")))
}

/// Plans `[http]` except `listen`, which is parsed as `metrics`.
pub fn plan(raw: &HttpConfig, metrics: SocketAddr) -> Result<HttpPlan, ConfigError> {
    let health_listen = match &raw.health_listen {
        Some(t) => Some(parse_addr("http.health_listen", t)?),
        None => None,
    };
    // Two sockets cannot share one fixed address; port 0 picks two ports.
    if health_listen == Some(metrics) && metrics.port() != 0 {
        return Err(ConfigError::new(
            "http.health_listen",
            format!(
                "{metrics} is also http.listen; leave health_listen unset to answer /health \
                 on the metrics listener only"
            ),
        ));
    }
    if !(1..=65_536).contains(&raw.max_connections) {
        return Err(ConfigError::new(
            "http.max_connections",
            "must be between 1 and 65536",
        ));
    }
    for (key, v) in [
        ("http.header_timeout_ms", raw.header_timeout_ms),
        ("http.write_timeout_ms", raw.write_timeout_ms),
    ] {
        if !(100..=600_000).contains(&v) {
            return Err(ConfigError::new(key, "must be between 100 and 600000"));
        }
    }
    Ok(HttpPlan {
        health_listen,
        limits: HttpLimits {
            max_connections: raw.max_connections,
            header_timeout: Duration::from_millis(raw.header_timeout_ms),
            write_timeout: Duration::from_millis(raw.write_timeout_ms),
        },
    })
}

/// The `check-config` line describing the listeners.
pub fn describe(metrics: SocketAddr, p: &HttpPlan) -> String {
    let health = match p.health_listen {
        Some(h) => format!("; /health also on http://{h}/health"),
        None => String::new(),
    };
    format!(
        "  http: /metrics and /health on http://{metrics}{health}; per listener at most {} \
         connections, request head within {} ms, answer written within {} ms",
        p.limits.max_connections,
        p.limits.header_timeout.as_millis(),
        p.limits.write_timeout.as_millis()
    )
}
