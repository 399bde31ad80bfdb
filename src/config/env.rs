//! MarketPrism's environment variables, laid over the configuration file
//! before planning, with MarketPrism's precedence: a variable that is set
//! (and not empty, as Python's `os.getenv(..) or ..` reads it) wins over
//! the file.
//!
//! - `MARKETPRISM_NATS_URL` > `NATS_URL` > `MARKETPRISM_NATS_SERVERS` →
//!   `sink.nats.servers` (comma-separated list allowed). Only when
//!   `sink.kind` includes "nats": the address of a sink is not a reason to
//!   turn it on.
//! - `METRICS_PORT` → the port of `http.listen`.
//! - `HEALTH_CHECK_PORT` → the port of `http.health_listen`; when that is
//!   unset, opens it on `http.listen`'s IP.
//! - Log level (`MARKETPRISM_LOG` > `MARKETPRISM_LOG_LEVEL` > `LOG_LEVEL`):
//!   read by [`crate::logging`], listed here so `check-config` shows it.

use super::raw::RawConfig;
use super::ConfigError;
use std::fmt;
use std::net::SocketAddr;

/// NATS server variables, strongest first.
pub const NATS_VARS: [&str; 3] = [
    "MARKETPRISM_NATS_URL",
    "NATS_URL",
    "MARKETPRISM_NATS_SERVERS",
];
pub const METRICS_PORT: &str = "METRICS_PORT";
pub const HEALTH_CHECK_PORT: &str = "HEALTH_CHECK_PORT";

/// One variable found in the environment and what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub var: &'static str,
    pub value: String,
    /// The key it set (`sink.nats.servers`, `http.listen`, ...).
    pub key: &'static str,
    /// Why it changed nothing, if it did not.
    pub ignored: Option<String>,
}

impl fmt::Display for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={} -> {}", self.var, self.value, self.key)?;
        if let Some(why) = &self.ignored {
            write!(f, " (ignored: {why})")?;
        }
        Ok(())
    }
}

pub use crate::sys::first_set;

fn port(var: &'static str, value: &str) -> Result<u16, ConfigError> {
    value.trim().parse().map_err(|_| {
        ConfigError::new(
            var,
            format!("`{value}` is not a port number (0-65535) (environment variable)"),
        )
    })
}

fn addr(key: &str, text: &str, var: &str) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|e| {
        ConfigError::new(
            key,
            format!("`{text}` is not an ip:port address ({var} sets its port): {e}"),
        )
    })
}

/// Applies the environment (`get` reads one variable) to `raw`; returns
/// every variable found, in precedence order.
pub fn apply(
    raw: &mut RawConfig,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Applied>, ConfigError> {
    let mut out = Vec::new();
    if let Some((var, value)) = first_set(get, &NATS_VARS) {
        let servers: Vec<String> = value.split(',').map(|s| s.trim().to_string()).collect();
        if servers.iter().any(String::is_empty) {
            return Err(ConfigError::new(
                var,
                format!("`{value}` has an empty server in its comma-separated list"),
            ));
        }
        let on = raw.sink.kind.names().contains(&"nats");
        if on {
            raw.sink.nats.get_or_insert_with(Default::default).servers = servers;
        }
        out.push(Applied {
            var,
            value,
            key: "sink.nats.servers",
            ignored: (!on).then(|| "sink.kind does not include \"nats\"".to_string()),
        });
        for weaker in NATS_VARS.iter().skip_while(|v| **v != var).skip(1) {
            if let Some(v) = get(weaker).filter(|s| !s.trim().is_empty()) {
                out.push(Applied {
                    var: weaker,
                    value: v,
                    key: "sink.nats.servers",
                    ignored: Some(format!("{var} takes precedence")),
                });
            }
        }
    }
    if let Some((var, value)) = first_set(get, &[METRICS_PORT]) {
        let p = port(var, &value)?;
        let mut a = addr("http.listen", &raw.http.listen, var)?;
        a.set_port(p);
        raw.http.listen = a.to_string();
        out.push(Applied {
            var,
            value,
            key: "http.listen",
            ignored: None,
        });
    }
    if let Some((var, value)) = first_set(get, &[HEALTH_CHECK_PORT]) {
        let p = port(var, &value)?;
        let mut a = match &raw.http.health_listen {
            Some(h) => addr("http.health_listen", h, var)?,
            None => addr("http.listen", &raw.http.listen, var)?,
        };
        a.set_port(p);
        raw.http.health_listen = Some(a.to_string());
        out.push(Applied {
            var,
            value,
            key: "http.health_listen",
            ignored: None,
        });
    }
    if let Some((var, value)) = first_set(get, &crate::logging::LEVEL_VARS) {
        crate::logging::parse_level(var, &value)?;
        out.push(Applied {
            var,
            value,
            key: "log level",
            ignored: None,
        });
    }
    Ok(out)
}

/// Names the variable in an error about a key it set.
pub fn blame(mut e: ConfigError, applied: &[Applied]) -> ConfigError {
    let hit = applied.iter().find(|a| {
        a.ignored.is_none()
            && (e.key == a.key
                || e.key
                    .strip_prefix(a.key)
                    .is_some_and(|rest| rest.starts_with('[')))
    });
    if let Some(a) = hit {
        e.key = format!(
            "{} (set by environment variable {}={})",
            e.key, a.var, a.value
        );
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const NATS: &str =
        "[sink]\nkind = [\"file\", \"nats\"]\n[sink.nats]\nservers = [\"nats://file:4222\"]\n";

    fn overlay(text: &str, env: &[(&str, &str)]) -> Result<(RawConfig, Vec<Applied>), ConfigError> {
        let mut raw: RawConfig = toml::from_str(text).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let applied = apply(&mut raw, &|k| env.get(k).cloned())?;
        Ok((raw, applied))
    }

    fn servers(raw: &RawConfig) -> Vec<String> {
        raw.sink.nats.as_ref().unwrap().servers.clone()
    }

    #[test]
    fn nats_variables_follow_marketprism_precedence() {
        let (raw, a) = overlay(NATS, &[]).unwrap();
        assert_eq!(servers(&raw), ["nats://file:4222"]);
        assert!(a.is_empty());
        let (raw, a) = overlay(NATS, &[("MARKETPRISM_NATS_SERVERS", "nats://s:1")]).unwrap();
        assert_eq!(servers(&raw), ["nats://s:1"]);
        assert_eq!(a.len(), 1);
        assert_eq!(
            a[0].to_string(),
            "MARKETPRISM_NATS_SERVERS=nats://s:1 -> sink.nats.servers"
        );
        let (raw, a) = overlay(
            NATS,
            &[
                ("NATS_URL", "nats://n:2"),
                ("MARKETPRISM_NATS_SERVERS", "nats://s:1"),
            ],
        )
        .unwrap();
        assert_eq!(servers(&raw), ["nats://n:2"]);
        assert_eq!(
            a[1].to_string(),
            "MARKETPRISM_NATS_SERVERS=nats://s:1 -> sink.nats.servers (ignored: NATS_URL takes precedence)"
        );
        let (raw, a) = overlay(
            NATS,
            &[
                ("MARKETPRISM_NATS_URL", "nats://m:3"),
                ("NATS_URL", "nats://n:2"),
                ("MARKETPRISM_NATS_SERVERS", ""),
            ],
        )
        .unwrap();
        assert_eq!(servers(&raw), ["nats://m:3"]);
        assert_eq!(a.len(), 2, "an empty variable counts as unset: {a:?}");
        // An empty stronger variable falls through, as Python's `or` does.
        let (raw, _) = overlay(
            NATS,
            &[("MARKETPRISM_NATS_URL", ""), ("NATS_URL", "nats://n:2")],
        )
        .unwrap();
        assert_eq!(servers(&raw), ["nats://n:2"]);
        let (raw, _) = overlay(
            NATS,
            &[("MARKETPRISM_NATS_SERVERS", "nats://a:1, nats://b:2")],
        )
        .unwrap();
        assert_eq!(servers(&raw), ["nats://a:1", "nats://b:2"]);
        let e = overlay(NATS, &[("NATS_URL", "nats://a:1,,nats://b:2")]).unwrap_err();
        assert_eq!(e.key, "NATS_URL");
    }

    #[test]
    fn nats_variables_do_not_turn_the_sink_on() {
        let (raw, a) = overlay("", &[("NATS_URL", "nats://n:2")]).unwrap();
        assert!(raw.sink.nats.is_none());
        assert_eq!(
            a[0].to_string(),
            "NATS_URL=nats://n:2 -> sink.nats.servers (ignored: sink.kind does not include \"nats\")"
        );
        // A nats sink without a [sink.nats] table gets one with the servers.
        let (raw, _) = overlay("[sink]\nkind = \"nats\"\n", &[("NATS_URL", "nats://n:2")]).unwrap();
        assert_eq!(servers(&raw), ["nats://n:2"]);
    }

    #[test]
    fn port_variables_change_only_the_port() {
        let text = "[http]\nlisten = \"0.0.0.0:1234\"\nhealth_listen = \"10.0.0.1:5678\"\n";
        let (raw, a) = overlay(
            text,
            &[("METRICS_PORT", "9092"), ("HEALTH_CHECK_PORT", "8087")],
        )
        .unwrap();
        assert_eq!(raw.http.listen, "0.0.0.0:9092");
        assert_eq!(raw.http.health_listen.as_deref(), Some("10.0.0.1:8087"));
        assert_eq!(a[0].to_string(), "METRICS_PORT=9092 -> http.listen");
        assert_eq!(
            a[1].to_string(),
            "HEALTH_CHECK_PORT=8087 -> http.health_listen"
        );
        // No health listener configured: opened on the metrics listener's IP.
        let (raw, _) = overlay("", &[("HEALTH_CHECK_PORT", "8087")]).unwrap();
        assert_eq!(raw.http.listen, "127.0.0.1:9092");
        assert_eq!(raw.http.health_listen.as_deref(), Some("127.0.0.1:8087"));
        let (raw, _) = overlay(
            "[http]\nlisten = \"[::]:1\"\n",
            &[("HEALTH_CHECK_PORT", "0")],
        )
        .unwrap();
        assert_eq!(raw.http.health_listen.as_deref(), Some("[::]:0"));
        for (var, bad) in [
            ("METRICS_PORT", "x"),
            ("METRICS_PORT", "65536"),
            ("HEALTH_CHECK_PORT", "-1"),
        ] {
            let e = overlay("", &[(var, bad)]).unwrap_err();
            assert_eq!(e.key, var);
            assert_eq!(
                e.reason,
                format!("`{bad}` is not a port number (0-65535) (environment variable)")
            );
        }
    }

    #[test]
    fn log_level_variables_are_checked_and_listed() {
        let (_, a) = overlay("", &[("LOG_LEVEL", "WARNING")]).unwrap();
        assert_eq!(a[0].to_string(), "LOG_LEVEL=WARNING -> log level");
        let (_, a) = overlay("", &[("LOG_LEVEL", "DEBUG"), ("MARKETPRISM_LOG", "trace")]).unwrap();
        assert_eq!(a[0].var, "MARKETPRISM_LOG");
        let e = overlay("", &[("LOG_LEVEL", "loud")]).unwrap_err();
        assert_eq!(e.key, "LOG_LEVEL");
    }

    #[test]
    fn errors_about_an_overridden_key_name_the_variable() {
        let (_, a) = overlay(NATS, &[("NATS_URL", "http://x:1")]).unwrap();
        let e = blame(ConfigError::new("sink.nats.servers[0]", "bad scheme"), &a);
        assert_eq!(
            e.key,
            "sink.nats.servers[0] (set by environment variable NATS_URL=http://x:1)"
        );
        let e = blame(ConfigError::new("sink.nats.stream", "bad"), &a);
        assert_eq!(e.key, "sink.nats.stream");
    }
}
