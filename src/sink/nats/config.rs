//! `[sink.nats]`: the NATS / JetStream sink settings as written in TOML, their
//! defaults, and validation that names the offending key.
//!
//! Secrets may come from environment variables (`*_env`) or files (`*_file`,
//! e.g. a mounted Kubernetes/Docker secret) so they never sit in the config
//! file; they are read at connect time, never logged, and `Debug` shows only
//! whether they are set.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Clone, Deserialize)]
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
    /// File holding the user (instead of `user`); one trailing newline is ignored.
    pub user_file: Option<PathBuf>,
    pub password_file: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
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
    /// Data types published with plain PUB (no ack, no resend): a list, or
    /// `"auto"` (default): the high-rate types take core NATS only where an
    /// existing stream does not capture them (see [`super::route`]).
    #[serde(default)]
    pub core_nats_data_types: CoreNats,
}

/// `sink.nats.core_nats_data_types`: `"auto"` or a list of data types.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "CoreNatsRaw")]
pub enum CoreNats {
    #[default]
    Auto,
    List(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CoreNatsRaw {
    Word(String),
    List(Vec<String>),
}

impl TryFrom<CoreNatsRaw> for CoreNats {
    type Error = String;
    fn try_from(r: CoreNatsRaw) -> Result<Self, String> {
        match r {
            CoreNatsRaw::Word(w) if w == "auto" => Ok(CoreNats::Auto),
            CoreNatsRaw::Word(w) => {
                Err(format!("`{w}`: expected \"auto\" or a list of data types"))
            }
            CoreNatsRaw::List(l) => Ok(CoreNats::List(l)),
        }
    }
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
            user_file: None,
            password_file: None,
            token_file: None,
            ca_file: None,
            storage: default_storage(),
            max_age_s: default_max_age_s(),
            duplicate_window_s: default_duplicate_window_s(),
            replicas: default_replicas(),
            max_in_flight: default_max_in_flight(),
            ack_timeout_ms: default_ack_timeout_ms(),
            max_buffered_bytes: default_max_buffered_bytes(),
            core_nats_data_types: CoreNats::Auto,
        }
    }
}

impl std::fmt::Debug for NatsSinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so a new field cannot be forgotten here.
        let NatsSinkConfig {
            servers,
            jetstream,
            stream,
            create_stream,
            user,
            password,
            token,
            user_env,
            password_env,
            token_env,
            user_file,
            password_file,
            token_file,
            ca_file,
            storage,
            max_age_s,
            duplicate_window_s,
            replicas,
            max_in_flight,
            ack_timeout_ms,
            max_buffered_bytes,
            core_nats_data_types,
        } = self;
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("NatsSinkConfig")
            .field("servers", servers)
            .field("jetstream", jetstream)
            .field("stream", stream)
            .field("create_stream", create_stream)
            .field("user", &hidden(user))
            .field("password", &hidden(password))
            .field("token", &hidden(token))
            .field("user_env", user_env)
            .field("password_env", password_env)
            .field("token_env", token_env)
            .field("user_file", user_file)
            .field("password_file", password_file)
            .field("token_file", token_file)
            .field("ca_file", ca_file)
            .field("storage", storage)
            .field("max_age_s", max_age_s)
            .field("duplicate_window_s", duplicate_window_s)
            .field("replicas", replicas)
            .field("max_in_flight", max_in_flight)
            .field("ack_timeout_ms", ack_timeout_ms)
            .field("max_buffered_bytes", max_buffered_bytes)
            .field("core_nats_data_types", core_nats_data_types)
            .finish()
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
        for (k, v, env, file) in [
            ("user", &self.user, &self.user_env, &self.user_file),
            (
                "password",
                &self.password,
                &self.password_env,
                &self.password_file,
            ),
            ("token", &self.token, &self.token_env, &self.token_file),
        ] {
            crate::sink::secret::validate(k, v, env, file)
                .map_err(|(key, r)| (format!("sink.nats.{key}"), r))?;
        }
        let has_user = self.user.is_some() || self.user_env.is_some() || self.user_file.is_some();
        let has_pass =
            self.password.is_some() || self.password_env.is_some() || self.password_file.is_some();
        let has_token =
            self.token.is_some() || self.token_env.is_some() || self.token_file.is_some();
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
        let listed: &[String] = match &self.core_nats_data_types {
            CoreNats::List(l) => l,
            CoreNats::Auto => &[],
        };
        for (i, t) in listed.iter().enumerate() {
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

    /// Credentials from the config, the named environment variables and
    /// files. Err names the missing variable or unreadable file (never a value).
    pub fn credentials(&self) -> Result<Credentials, String> {
        let pick = |key: &str, v: &Option<String>, env: &Option<String>, file: &Option<PathBuf>| {
            crate::sink::secret::pick("sink.nats", key, v, env, file)
        };
        Ok(Credentials {
            user: pick("user", &self.user, &self.user_env, &self.user_file)?,
            password: pick(
                "password",
                &self.password,
                &self.password_env,
                &self.password_file,
            )?,
            token: pick("token", &self.token, &self.token_env, &self.token_file)?,
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
        assert_eq!(c.core_nats_data_types, CoreNats::Auto);
        assert!(c.validate().is_ok());
        let d = NatsSinkConfig::default();
        assert_eq!(d.servers, c.servers);
        assert_eq!(d.max_in_flight, c.max_in_flight);
        assert!(d.validate().is_ok());
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
        assert_eq!(
            c.core_nats_data_types,
            CoreNats::List(vec!["orderbook".into()])
        );
        assert_eq!(
            parse("core_nats_data_types = \"auto\"")
                .unwrap()
                .core_nats_data_types,
            CoreNats::Auto
        );
        let e = parse("core_nats_data_types = \"trade\"").unwrap_err();
        assert!(e.contains("expected \"auto\" or a list"), "{e}");
        let e = c.credentials().unwrap_err();
        assert!(e.contains("MP_TEST_NO_SUCH_VAR_X"));
        let c = parse("user = \"u\"\npassword = \"secret\"").unwrap();
        let creds = c.credentials().unwrap();
        assert!(!format!("{creds:?}").contains("secret"));
    }

    #[test]
    fn secrets_from_files_and_never_in_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cr3t-pw\n").unwrap();
        let tok = dir.path().join("tok");
        std::fs::write(&tok, "t0k3n-value").unwrap();
        let c = parse(&format!(
            "user = \"alice\"\npassword_file = \"{}\"",
            pw.display()
        ))
        .unwrap();
        assert!(c.validate().is_ok());
        let creds = c.credentials().unwrap();
        assert_eq!(creds.password.as_deref(), Some("s3cr3t-pw"));
        let c = parse(&format!("token_file = \"{}\"", tok.display())).unwrap();
        assert!(c.validate().is_ok());
        assert_eq!(
            c.credentials().unwrap().token.as_deref(),
            Some("t0k3n-value")
        );

        // Inline secrets: the config's and the credentials' Debug hide them,
        // and so does everything that embeds the config (the plan).
        let c = parse("user = \"alice\"\npassword = \"inline-pw-123\"").unwrap();
        let shown = format!("{c:?} {:?}", c.credentials().unwrap());
        assert!(!shown.contains("inline-pw-123"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let c = parse("token = \"inline-tok-456\"").unwrap();
        assert!(!format!("{c:#?}").contains("inline-tok-456"));
        let plan = crate::config::load_str(
            "[sink]\nkind = \"nats\"\n[sink.nats]\ntoken = \"inline-tok-789\"\n\
             [exchanges.binance_spot]\nsymbols = [\"BTCUSDT\"]\ndata_types = [\"trade\"]\n",
        )
        .unwrap();
        assert!(!format!("{plan:?} {plan}").contains("inline-tok-789"));

        // Errors name the file, never its contents.
        let c = parse(&format!(
            "user = \"u\"\npassword_file = \"{}\"",
            dir.path().join("missing").display()
        ))
        .unwrap();
        let e = c.credentials().unwrap_err();
        assert!(e.contains("password_file") && e.contains("missing"), "{e}");
    }

    #[test]
    fn one_source_per_secret() {
        let key = |toml: &str| parse(toml).unwrap().validate().unwrap_err().0;
        assert_eq!(
            key("user = \"u\"\npassword = \"p\"\npassword_file = \"/x\""),
            "sink.nats.password_file"
        );
        assert_eq!(
            key("token_env = \"T\"\ntoken_file = \"/x\""),
            "sink.nats.token_file"
        );
        assert_eq!(key("user_file = \"/u\""), "sink.nats.password");
        assert_eq!(
            key("user_file = \"/u\"\npassword_file = \"/p\"\ntoken_file = \"/t\""),
            "sink.nats.token"
        );
        assert_eq!(key("token_file = \"\""), "sink.nats.token_file");
    }

    #[test]
    fn no_key_turns_tls_verification_off() {
        for k in [
            "tls_verify = false",
            "insecure = true",
            "insecure_skip_verify = true",
            "danger_accept_invalid_certs = true",
        ] {
            assert!(parse(k).is_err(), "{k} accepted");
        }
    }
}
