//! `[sink.clickhouse]`: the ClickHouse sink's settings as written in TOML,
//! their defaults, and validation that names the offending key.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use url::Url;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseSinkConfig {
    /// ClickHouse's HTTP interface: `http://host:8123` or `https://host:8443`.
    #[serde(default = "default_url")]
    pub url: String,
    #[serde(default = "default_database")]
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub user_env: Option<String>,
    pub password_env: Option<String>,
    pub user_file: Option<PathBuf>,
    pub password_file: Option<PathBuf>,
    /// Extra PEM CA trusted for `https` (added to the webpki roots).
    pub ca_file: Option<PathBuf>,
    /// At start: create the database and MarketPrism's tables where absent
    /// (an existing table is never altered).
    #[serde(default = "default_true")]
    pub create_tables: bool,
    /// TTL of created tables, days (MarketPrism's hot tables: 3; 0: none).
    #[serde(default = "default_ttl_days")]
    pub ttl_days: u32,
    /// `non_replicated_deduplication_window` of created tables: how many
    /// recent blocks' tokens the server remembers, per table.
    #[serde(default = "default_dedup_window")]
    pub dedup_window: u64,
    /// Table name per table (`trades = "trades_v2"`); unnamed keep MarketPrism's.
    #[serde(default)]
    pub tables: BTreeMap<String, String>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// An INSERT unanswered this long is abandoned and retried.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// A table's block is sent once it has this many rows...
    #[serde(default = "default_block_max_rows")]
    pub block_max_rows: usize,
    /// ...or its first row is this old (ClickHouse wants few, large inserts).
    #[serde(default = "default_block_max_delay_ms")]
    pub block_max_delay_ms: u64,
    /// Per core: memory for blocks being built (reaching it seals them) and,
    /// as much again, for sealed blocks waiting to be sent (beyond it they
    /// are read back from the core's journal on disk).
    #[serde(default = "default_max_buffered_bytes")]
    pub max_buffered_bytes: usize,
}

fn default_url() -> String {
    "http://127.0.0.1:8123".to_string()
}
fn default_database() -> String {
    "marketprism_hot".to_string()
}
const fn default_true() -> bool {
    true
}
const fn default_ttl_days() -> u32 {
    3
}
const fn default_dedup_window() -> u64 {
    1000
}
const fn default_connect_timeout_ms() -> u64 {
    5000
}
const fn default_request_timeout_ms() -> u64 {
    30_000
}
const fn default_block_max_rows() -> usize {
    100_000
}
const fn default_block_max_delay_ms() -> u64 {
    250
}
const fn default_max_buffered_bytes() -> usize {
    64 << 20
}

impl Default for ClickHouseSinkConfig {
    fn default() -> Self {
        // One source of defaults: the serde ones.
        toml::from_str("").unwrap_or_else(|_| unreachable!("empty [sink.clickhouse] parses"))
    }
}

impl std::fmt::Debug for ClickHouseSinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        f.debug_struct("ClickHouseSinkConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("user_env", &self.user_env)
            .field("password_env", &self.password_env)
            .field("user_file", &self.user_file)
            .field("password_file", &self.password_file)
            .field("create_tables", &self.create_tables)
            .field("tables", &self.tables)
            .field("block_max_rows", &self.block_max_rows)
            .field("block_max_delay_ms", &self.block_max_delay_ms)
            .field("max_buffered_bytes", &self.max_buffered_bytes)
            .finish_non_exhaustive()
    }
}

/// Database and table names go into SQL unquoted: keep them to identifiers.
fn identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

impl ClickHouseSinkConfig {
    /// Checks everything that can be checked offline.
    /// Err((key like `sink.clickhouse.url`, reason)).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, r: String| Err((format!("sink.clickhouse.{k}"), r));
        if let Err(r) = self.parsed_url() {
            return err("url", r);
        }
        if !identifier(&self.database) {
            return err(
                "database",
                format!("`{}`: letters, digits and `_` only", self.database),
            );
        }
        for (k, v) in &self.tables {
            if super::schema::Table::ALL
                .iter()
                .all(|t| t.default_name() != k.as_str())
            {
                let known: Vec<&str> = super::schema::Table::ALL
                    .iter()
                    .map(|t| t.default_name())
                    .collect();
                return err(
                    &format!("tables.{k}"),
                    format!("unknown table (known: {})", known.join(", ")),
                );
            }
            if !identifier(v) {
                return err(
                    &format!("tables.{k}"),
                    format!("`{v}`: letters, digits and `_` only"),
                );
            }
        }
        if self.create_tables && self.dedup_window == 0 {
            return err(
                "dedup_window",
                "must be > 0: retried inserts are deduplicated by it".into(),
            );
        }
        if !(100..=600_000).contains(&self.connect_timeout_ms) {
            return err(
                "connect_timeout_ms",
                "must be between 100 and 600000".into(),
            );
        }
        if !(100..=3_600_000).contains(&self.request_timeout_ms) {
            return err(
                "request_timeout_ms",
                "must be between 100 and 3600000".into(),
            );
        }
        if !(1..=10_000_000).contains(&self.block_max_rows) {
            return err("block_max_rows", "must be between 1 and 10000000".into());
        }
        if !(1..=600_000).contains(&self.block_max_delay_ms) {
            return err("block_max_delay_ms", "must be between 1 and 600000".into());
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
        ] {
            crate::sink::secret::validate(k, v, env, file)
                .map_err(|(key, r)| (format!("sink.clickhouse.{key}"), r))?;
        }
        Ok(())
    }

    pub fn parsed_url(&self) -> Result<Url, String> {
        let u = Url::parse(&self.url).map_err(|e| format!("`{}`: {e}", self.url))?;
        if u.scheme() != "http" && u.scheme() != "https" {
            return Err(format!("`{}`: expected http:// or https://", self.url));
        }
        if u.host_str().is_none() {
            return Err(format!("`{}`: no host", self.url));
        }
        if u.query().is_some() {
            return Err(format!(
                "`{}`: no query string (database and credentials have their own keys)",
                self.url
            ));
        }
        Ok(u)
    }

    /// The TLS client config of an `https` URL (webpki roots plus
    /// `ca_file`); None for `http`. Err: the CA file is unusable.
    pub fn tls(&self) -> Result<Option<std::sync::Arc<rustls::ClientConfig>>, String> {
        if !self.url.starts_with("https") {
            return Ok(None);
        }
        crate::conn::tls::client_config(self.ca_file.as_deref(), true).map(Some)
    }

    /// The table's name in ClickHouse (an override, or MarketPrism's).
    pub fn table_name(&self, t: super::schema::Table) -> &str {
        self.tables
            .get(t.default_name())
            .map(String::as_str)
            .unwrap_or(t.default_name())
    }

    /// (user, password) from the config, environment or files.
    pub fn credentials(&self) -> Result<(Option<String>, Option<String>), String> {
        let pick = |key: &str, v: &Option<String>, env: &Option<String>, file: &Option<PathBuf>| {
            crate::sink::secret::pick("sink.clickhouse", key, v, env, file)
        };
        Ok((
            pick("user", &self.user, &self.user_env, &self.user_file)?,
            pick(
                "password",
                &self.password,
                &self.password_env,
                &self.password_file,
            )?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ClickHouseSinkConfig {
        toml::from_str(s).unwrap()
    }

    #[test]
    fn defaults_are_marketprisms() {
        let c = ClickHouseSinkConfig::default();
        assert_eq!(c.url, "http://127.0.0.1:8123");
        assert_eq!(c.database, "marketprism_hot");
        assert!(c.create_tables);
        assert_eq!(c.ttl_days, 3);
        assert!(c.validate().is_ok());
        assert_eq!(c.table_name(super::super::schema::Table::Trades), "trades");
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases = [
            ("url = \"ftp://x\"", "sink.clickhouse.url"),
            ("url = \"http://x:8123/?database=a\"", "sink.clickhouse.url"),
            ("database = \"a-b\"", "sink.clickhouse.database"),
            ("tables = { nope = \"x\" }", "sink.clickhouse.tables.nope"),
            (
                "tables = { trades = \"t;drop\" }",
                "sink.clickhouse.tables.trades",
            ),
            ("dedup_window = 0", "sink.clickhouse.dedup_window"),
            ("block_max_rows = 0", "sink.clickhouse.block_max_rows"),
            (
                "password = \"a\"\npassword_env = \"B\"",
                "sink.clickhouse.password_env",
            ),
        ];
        for (text, key) in cases {
            let (k, _) = parse(text).validate().unwrap_err();
            assert_eq!(k, key, "{text}");
        }
        let c = parse("tables = { trades = \"trades_v2\" }\npassword = \"s3cret\"");
        assert!(c.validate().is_ok());
        assert_eq!(
            c.table_name(super::super::schema::Table::Trades),
            "trades_v2"
        );
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
