//! `[sink.nats]`: the NATS / JetStream sink settings as written in TOML, their
//! defaults, and validation that names the offending key.
//!
//! Secrets may come from environment variables (`*_env`) so they never sit in
//! a config file; they are read at connect time and never logged.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSinkConfig {
    /// Servers tried in order (failover to the next on failure):
    /// `nats://host:port` or `tls://host:port` (default port 4222).
    #[serde(default = "default_servers")]
    pub servers: Vec<String>,
    /// Publish through JetStream (acked). `false`: every message is plain PUB.
    #[serde(default = "default_true")]
    pub jetstream: bool,
    /// JetStream stream holding the subjects.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Create the stream (or update its settings) at every connect.
    #[serde(default = "default_true")]
    pub create_stream: bool,
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    /// Name of the environment variable holding the user (instead of `user`).
    pub user_env: Option<String>,
    pub password_env: Option<String>,
    pub token_env: Option<String>,
    /// Extra PEM CA trusted for `tls://` servers (added to the webpki roots).
    pub ca_file: Option<PathBuf>,
    /// Stream storage: `"file"` or `"memory"`.
    #[serde(default = "default_storage")]
    pub storage: String,
    /// Stream retention by age.
    #[serde(default = "default_max_age_s")]
    pub max_age_s: u64,
    /// How long the server remembers a `Nats-Msg-Id` to drop a resend.
    #[serde(default = "default_duplicate_window_s")]
    pub duplicate_window_s: u64,
    /// Stream replicas in a NATS cluster (3 for a 3-node cluster; 1..=5).
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// Unacked publishes on the wire per core.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// A publish unacked this long makes us reconnect and resend.
    #[serde(default = "default_ack_timeout_ms")]
    pub ack_timeout_ms: u64,
    /// Bytes a core may hold (queued + unacked) before `try_publish` says Full.
    #[serde(default = "default_max_buffered_bytes")]
    pub max_buffered_bytes: usize,
    /// Data types published with plain PUB (no ack, no resend). Opt-in.
    #[serde(default)]
    pub core_nats_data_types: Vec<String>,
}

fn default_servers() -> Vec<String> {
    vec!["nats://127.0.0.1:4222".to_string()]
}
const fn default_true() -> bool {
    true
}
fn default_stream() -> String {
    "MARKET_DATA".to_string()
}
fn default_storage() -> String {
    "file".to_string()
}
const fn default_max_age_s() -> u64 {
    7 * 24 * 3600
}
const fn default_replicas() -> u32 {
    1
}

const fn default_duplicate_window_s() -> u64 {
    120
}
const fn default_max_in_flight() -> usize {
    4096
}
const fn default_ack_timeout_ms() -> u64 {
    5000
}
const fn default_max_buffered_bytes() -> usize {
    64 << 20
}

impl Default for NatsSinkConfig {
    fn default() -> Self {
        NatsSinkConfig {
            servers: default_servers(),
            jetstream: true,
            stream: default_stream(),
            create_stream: true,
            user: None,
            password: None,
            token: None,
            user_env: None,
            password_env: None,
            token_env: None,
            ca_file: None,
            storage: default_storage(),
            max_age_s: default_max_age_s(),
            duplicate_window_s: default_duplicate_window_s(),
            replicas: default_replicas(),
            max_in_flight: default_max_in_flight(),
            ack_timeout_ms: default_ack_timeout_ms(),
            max_buffered_bytes: default_max_buffered_bytes(),
            core_nats_data_types: Vec::new(),
        }
    }
}

/// One entry of `servers`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    pub host: String,
    pub port: u16,
    /// `tls://`: TLS is required even if the server does not ask for it.
    pub tls: bool,
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "tls" } else { "nats" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Parses `nats://host[:port]` / `tls://host[:port]`. Credentials in the URL
/// are refused: they would end up in logs; use `user`/`password` instead.
pub fn parse_server(s: &str) -> Result<ServerAddr, String> {
    let url = url::Url::parse(s).map_err(|e| format!("not a URL ({e})"))?;
    let tls = match url.scheme() {
        "nats" => false,
        "tls" => true,
        other => return Err(format!("scheme `{other}` (expected nats:// or tls://)")),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL; use user/password keys".into());
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err("no host".into()),
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    if !(url.path().is_empty() || url.path() == "/") || url.query().is_some() {
        return Err("unexpected path or query".into());
    }
    Ok(ServerAddr {
        host,
        port: url.port().unwrap_or(4222),
        tls,
    })
}

/// A subject token or stream name must not be empty or hold separators,
/// wildcards or whitespace.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b > b' ' && b != b'.' && b != b'*' && b != b'>' && b != 0x7f)
}

/// Credentials resolved at connect time.
#[derive(Clone, Default)]
pub struct Credentials {
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        f.debug_struct("Credentials")
            .field("user", &self.user.as_ref().map(|_| "<set>"))
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl NatsSinkConfig {
    /// Checks everything that can be checked offline.
    /// Err((key like `sink.nats.servers[1]`, reason)).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, r: String| Err((format!("sink.nats.{k}"), r));
        if self.servers.is_empty() {
            return err("servers", "at least one server is required".into());
        }
        for (i, s) in self.servers.iter().enumerate() {
            if let Err(r) = parse_server(s) {
                return err(&format!("servers[{i}]"), format!("`{s}`: {r}"));
            }
        }
        if !valid_name(&self.stream) {
            return err(
                "stream",
                format!(
                    "`{}` is not a valid stream name (non-empty, no spaces, `.`, `*`, `>`)",
                    self.stream
                ),
            );
        }
        if self.storage != "file" && self.storage != "memory" {
            return err(
                "storage",
                format!("`{}` (expected \"file\" or \"memory\")", self.storage),
            );
        }
        if self.max_age_s == 0 {
            return err("max_age_s", "must be > 0".into());
        }
        if !(1..=5).contains(&self.replicas) {
            return err("replicas", "must be between 1 and 5 (NATS' limit)".into());
        }
        if self.duplicate_window_s == 0 {
            return err("duplicate_window_s", "must be > 0".into());
        }
        // The server refuses a duplicate window longer than the retention.
        if self.duplicate_window_s > self.max_age_s {
            return err(
                "duplicate_window_s",
                format!("must not exceed max_age_s ({})", self.max_age_s),
            );
        }
        if self.max_in_flight == 0 || self.max_in_flight > 1 << 20 {
            return err("max_in_flight", "must be in 1..=1048576".into());
        }
        if self.ack_timeout_ms < 100 {
            return err("ack_timeout_ms", "must be at least 100".into());
        }
        if self.max_buffered_bytes < 64 << 10 {
            return err("max_buffered_bytes", "must be at least 65536".into());
        }
        for (k, v, env) in [
            ("user", &self.user, &self.user_env),
            ("password", &self.password, &self.password_env),
            ("token", &self.token, &self.token_env),
        ] {
            if v.is_some() && env.is_some() {
                return err(
                    &format!("{k}_env"),
                    format!("set either {k} or {k}_env, not both"),
                );
            }
            if let Some(e) = env {
                if e.is_empty() || e.contains('=') || e.contains('\0') {
                    return err(
                        &format!("{k}_env"),
                        "not a valid environment variable name".into(),
                    );
                }
            }
        }
        let has_user = self.user.is_some() || self.user_env.is_some();
        let has_pass = self.password.is_some() || self.password_env.is_some();
        let has_token = self.token.is_some() || self.token_env.is_some();
        if has_user != has_pass {
            let k = if has_user { "password" } else { "user" };
            return err(k, "user and password go together".into());
        }
        if has_user && has_token {
            return err(
                "token",
                "use either user/password or token, not both".into(),
            );
        }
        for (i, t) in self.core_nats_data_types.iter().enumerate() {
            if !valid_name(t) {
                return err(
                    &format!("core_nats_data_types[{i}]"),
                    format!("`{t}` is not a valid subject token"),
                );
            }
        }
        Ok(())
    }

    /// Parsed server list (entries that do not parse are skipped; `validate`
    /// reports them).
    pub fn server_addrs(&self) -> Vec<ServerAddr> {
        self.servers
            .iter()
            .filter_map(|s| parse_server(s).ok())
            .collect()
    }

    /// Whether records of `data_type` are published with an ack.
    pub fn acked(&self, data_type: &str) -> bool {
        self.jetstream && !self.core_nats_data_types.iter().any(|t| t == data_type)
    }

    /// Credentials from the config and the named environment variables.
    /// Err names the missing variable (not its value).
    pub fn credentials(&self) -> Result<Credentials, String> {
        fn pick(v: &Option<String>, env: &Option<String>) -> Result<Option<String>, String> {
            match (v, env) {
                (Some(v), _) => Ok(Some(v.clone())),
                (None, Some(name)) => std::env::var(name)
                    .map(Some)
                    .map_err(|_| format!("environment variable {name} is not set")),
                (None, None) => Ok(None),
            }
        }
        Ok(Credentials {
            user: pick(&self.user, &self.user_env)?,
            password: pick(&self.password, &self.password_env)?,
            token: pick(&self.token, &self.token_env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<NatsSinkConfig, String> {
        toml::from_str(s).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.servers, vec!["nats://127.0.0.1:4222"]);
        assert!(c.jetstream && c.create_stream);
        assert_eq!(c.stream, "MARKET_DATA");
        assert_eq!(c.storage, "file");
        assert_eq!(c.max_age_s, 7 * 24 * 3600);
        assert_eq!(c.duplicate_window_s, 120);
        assert_eq!(c.max_in_flight, 4096);
        assert_eq!(c.ack_timeout_ms, 5000);
        assert_eq!(c.max_buffered_bytes, 64 << 20);
        assert!(c.core_nats_data_types.is_empty());
        assert!(c.validate().is_ok());
        let d = NatsSinkConfig::default();
        assert_eq!(d.servers, c.servers);
        assert_eq!(d.max_in_flight, c.max_in_flight);
        assert!(d.validate().is_ok());
        assert!(d.acked("trade"));
    }

    #[test]
    fn unknown_key_rejected() {
        assert!(parse("serverz = []").unwrap_err().contains("serverz"));
    }

    #[test]
    fn errors_name_the_key() {
        let key = |toml: &str| parse(toml).unwrap().validate().unwrap_err().0;
        assert_eq!(
            key(r#"servers = ["nats://a:1", "http://b:2"]"#),
            "sink.nats.servers[1]"
        );
        assert_eq!(key("servers = []"), "sink.nats.servers");
        assert_eq!(
            key(r#"servers = ["nats://u:p@a:1"]"#),
            "sink.nats.servers[0]"
        );
        assert_eq!(key(r#"stream = "A.B""#), "sink.nats.stream");
        assert_eq!(key(r#"storage = "disk""#), "sink.nats.storage");
        assert_eq!(key("max_in_flight = 0"), "sink.nats.max_in_flight");
        assert_eq!(key("ack_timeout_ms = 1"), "sink.nats.ack_timeout_ms");
        assert_eq!(
            key("max_buffered_bytes = 10"),
            "sink.nats.max_buffered_bytes"
        );
        assert_eq!(
            key("max_age_s = 60\nduplicate_window_s = 120"),
            "sink.nats.duplicate_window_s"
        );
        assert_eq!(key(r#"user = "u""#), "sink.nats.password");
        assert_eq!(
            key("user = \"u\"\nuser_env = \"U\"\npassword = \"p\""),
            "sink.nats.user_env"
        );
        assert_eq!(
            key("user = \"u\"\npassword = \"p\"\ntoken = \"t\""),
            "sink.nats.token"
        );
        assert_eq!(
            key(r#"core_nats_data_types = ["trade", "a b"]"#),
            "sink.nats.core_nats_data_types[1]"
        );
        let (_, reason) = parse(r#"servers = ["http://b:2"]"#)
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(reason.contains("http"), "{reason}");
    }

    #[test]
    fn server_urls() {
        assert_eq!(
            parse_server("nats://127.0.0.1").unwrap(),
            ServerAddr {
                host: "127.0.0.1".into(),
                port: 4222,
                tls: false
            }
        );
        let s = parse_server("tls://nats.example.com:4443").unwrap();
        assert!(s.tls);
        assert_eq!(s.port, 4443);
        assert_eq!(s.to_string(), "tls://nats.example.com:4443");
        assert!(parse_server("nats://[::1]:5").unwrap().to_string() == "nats://[::1]:5");
        assert!(parse_server("127.0.0.1:4222").is_err());
    }

    #[test]
    fn core_nats_types_and_credentials() {
        let c =
            parse("core_nats_data_types = [\"orderbook\"]\ntoken_env = \"MP_TEST_NO_SUCH_VAR_X\"")
                .unwrap();
        assert!(c.acked("trade"));
        assert!(!c.acked("orderbook"));
        let e = c.credentials().unwrap_err();
        assert!(e.contains("MP_TEST_NO_SUCH_VAR_X"));
        let c = parse("user = \"u\"\npassword = \"secret\"").unwrap();
        let creds = c.credentials().unwrap();
        assert!(!format!("{creds:?}").contains("secret"));
    }
}
