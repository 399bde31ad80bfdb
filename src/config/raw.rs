//! The configuration exactly as written in TOML: serde structs, defaults, no I/O
//! and no cross-field checks (those live in [`super::plan`]).
//!
//! Unknown keys are rejected (`deny_unknown_fields`) so a typo never silently
//! falls back to a default.

pub use crate::sink::file_config::WriteMode;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub engine: EngineConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub sink: SinkConfig,
    /// Venue key (e.g. `binance_spot`) → venue settings. Keys are checked
    /// against the known venues by the planner, which names the bad one.
    #[serde(default)]
    pub exchanges: BTreeMap<String, VenueConfig>,
    /// Scale-out: which share of the venues × symbols this instance collects.
    #[serde(default)]
    pub cluster: ClusterConfig,
}

/// `[cluster]`: several collector instances split the symbols between them
/// (rendezvous hashing) and publish into one NATS cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This instance, 1-based.
    #[serde(default = "one")]
    pub instance: u32,
    /// How many instances share the work.
    #[serde(default = "one")]
    pub instances: u32,
    /// How many instances collect each symbol (all of them publish; the
    /// stream keeps one copy by message id).
    #[serde(default = "one")]
    pub replicas: u32,
    /// `"static"` (default): the split follows the config alone.
    /// `"jetstream"`: members keep a key alive in a JetStream key-value
    /// bucket and the survivors take over a dead member's symbols.
    pub membership: Option<String>,
    /// The key-value bucket of the members.
    #[serde(default = "default_bucket")]
    pub bucket: String,
    /// A member silent this long has its symbols taken over.
    #[serde(default = "default_takeover_ms")]
    pub takeover_ms: u64,
    /// A symbol handed back keeps its old collector this much longer.
    #[serde(default = "default_handover_ms")]
    pub handover_ms: u64,
}

const fn one() -> u32 {
    1
}
fn default_bucket() -> String {
    "marketprism_members".to_string()
}
const fn default_takeover_ms() -> u64 {
    3000
}
const fn default_handover_ms() -> u64 {
    1000
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            instance: 1,
            instances: 1,
            replicas: 1,
            membership: None,
            bucket: default_bucket(),
            takeover_ms: default_takeover_ms(),
            handover_ms: default_handover_ms(),
        }
    }
}

/// `[engine]`: cores and batching.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// CPU ids; one pinned executor per entry.
    #[serde(default = "default_cores")]
    pub cores: Vec<usize>,
    /// Flush a core's batch once it holds this many records.
    #[serde(default = "default_batch_max_events")]
    pub batch_max_events: usize,
    /// Flush a core's batch once its oldest record is this old.
    #[serde(default = "default_batch_max_delay_ms")]
    pub batch_max_delay_ms: u64,
    /// Busy-poll this long before parking an idle executor (only worth it on
    /// isolated cores; costs a full core while idle).
    #[serde(default)]
    pub spin_before_park_us: u64,
    /// Unless spinning: for this long after a socket's last data, an idle
    /// core waits for its sockets in `ppoll(2)` instead of parking glommio
    /// (one syscall per wake-up instead of its park cycle); 0: always park.
    #[serde(default = "default_poll_before_park_us")]
    pub poll_before_park_us: u64,
    /// Benchmark switch: count received frames and drop them unparsed, to
    /// measure the receive-only ceiling (TLS + WebSocket) of a core.
    #[serde(default)]
    pub discard_frames: bool,
    /// SIGTERM/SIGINT: how long draining may take before the process gives
    /// up, logs what it abandons and exits non-zero.
    #[serde(default = "default_shutdown_timeout_ms")]
    pub shutdown_timeout_ms: u64,
}

fn default_cores() -> Vec<usize> {
    vec![0]
}
const fn default_batch_max_events() -> usize {
    4096
}
const fn default_batch_max_delay_ms() -> u64 {
    20
}
const fn default_poll_before_park_us() -> u64 {
    50_000
}
const fn default_shutdown_timeout_ms() -> u64 {
    10_000
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            cores: default_cores(),
            batch_max_events: default_batch_max_events(),
            batch_max_delay_ms: default_batch_max_delay_ms(),
            spin_before_park_us: 0,
            poll_before_park_us: default_poll_before_park_us(),
            discard_frames: false,
            shutdown_timeout_ms: default_shutdown_timeout_ms(),
        }
    }
}

/// `[http]`: the `/metrics` listener (which also answers `/health`) and the
/// optional health-only listener, with the limits both enforce.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `/metrics`, `/health`, `/debug/*` (env `METRICS_PORT` sets its port).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// A second listener answering only `/health` (MarketPrism: `:8087`);
    /// none unless set here or by env `HEALTH_CHECK_PORT`.
    pub health_listen: Option<String>,
    /// Open connections per listener; beyond it the oldest one still waiting
    /// for its request head is closed, or the new one if none is waiting.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A request head must arrive complete within this long after accept.
    #[serde(default = "default_header_timeout_ms")]
    pub header_timeout_ms: u64,
    /// The answer must be written within this long after the request head.
    #[serde(default = "default_write_timeout_ms")]
    pub write_timeout_ms: u64,
}

fn default_listen() -> String {
    "127.0.0.1:9092".to_string()
}
const fn default_max_connections() -> usize {
    64
}
const fn default_header_timeout_ms() -> u64 {
    5_000
}
const fn default_write_timeout_ms() -> u64 {
    10_000
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            health_listen: None,
            max_connections: default_max_connections(),
            header_timeout_ms: default_header_timeout_ms(),
            write_timeout_ms: default_write_timeout_ms(),
        }
    }
}

/// `[sink]`: where records go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    #[serde(default = "default_sink_kind")]
    pub kind: SinkKinds,
    /// Directory of the file sink.
    #[serde(default = "default_sink_path")]
    pub path: PathBuf,
    /// Rotate a core's file once it reaches this size.
    #[serde(default = "default_rotate_max_bytes")]
    pub rotate_max_bytes: u64,
    /// Rotate a core's file once it is this old.
    #[serde(default = "default_rotate_interval_s")]
    pub rotate_interval_s: u64,
    /// Also record every received frame (receive time, connection id) to
    /// per-core gzip files, for `marketprism replay`. Per venue: `exchanges.<v>.raw`.
    #[serde(default)]
    pub raw: bool,
    /// Where raw captures go (default `<path>/raw`).
    pub raw_path: Option<PathBuf>,
    /// `[sink.nats]`: used when `kind` includes "nats" (defaults otherwise).
    pub nats: Option<crate::sink::nats::NatsSinkConfig>,
    /// `[sink.clickhouse]`: used when `kind` includes "clickhouse".
    pub clickhouse: Option<crate::sink::clickhouse::ClickHouseSinkConfig>,
    /// Per-core disk budget for records a network sink cannot take now
    /// (server down or slow), per sink; beyond it records are dropped and counted.
    #[serde(default = "default_spill_max_bytes")]
    pub spill_max_bytes: u64,
    /// Where spills go (default `<path>/spill`).
    pub spill_path: Option<PathBuf>,
    /// Per-core memory for file sink records while the disk refuses writes;
    /// beyond it records are dropped, counted and described by gap records.
    #[serde(default = "default_max_pending_bytes")]
    pub max_pending_bytes: u64,
    /// While the disk is full, try writing again this often.
    #[serde(default = "default_disk_full_retry_ms")]
    pub disk_full_retry_ms: u64,
    /// How file sink bytes reach the file (see [`WriteMode`]).
    #[serde(default)]
    pub write_mode: WriteMode,
    /// CPUs for the kernel's io_uring workers of `write_mode = "offload"`
    /// (default: the CPUs this process may use that no shard is pinned to).
    pub io_worker_cpus: Option<Vec<usize>>,
}

const fn default_max_pending_bytes() -> u64 {
    crate::sink::file::DEFAULT_MAX_PENDING_BYTES as u64
}
const fn default_disk_full_retry_ms() -> u64 {
    crate::sink::file::DEFAULT_DISK_FULL_RETRY.as_millis() as u64
}

const fn default_spill_max_bytes() -> u64 {
    8 << 30
}

/// `kind = "file"` or `kind = ["file", ...]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SinkKinds {
    One(String),
    Many(Vec<String>),
}

impl SinkKinds {
    pub fn names(&self) -> Vec<&str> {
        match self {
            SinkKinds::One(s) => vec![s.as_str()],
            SinkKinds::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

fn default_sink_kind() -> SinkKinds {
    SinkKinds::One("file".to_string())
}
fn default_sink_path() -> PathBuf {
    PathBuf::from("data")
}
const fn default_rotate_max_bytes() -> u64 {
    256 * 1024 * 1024
}
const fn default_rotate_interval_s() -> u64 {
    3600
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            kind: default_sink_kind(),
            path: default_sink_path(),
            rotate_max_bytes: default_rotate_max_bytes(),
            rotate_interval_s: default_rotate_interval_s(),
            raw: false,
            raw_path: None,
            nats: None,
            clickhouse: None,
            spill_max_bytes: default_spill_max_bytes(),
            spill_path: None,
            max_pending_bytes: default_max_pending_bytes(),
            disk_full_retry_ms: default_disk_full_retry_ms(),
            write_mode: WriteMode::Offload,
            io_worker_cpus: None,
        }
    }
}

/// `[exchanges.<venue>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Overrides the venue's production WebSocket base URL.
    pub ws_url: Option<String>,
    /// Overrides the venue's production REST base URL.
    pub rest_url: Option<String>,
    /// Native symbols (e.g. `BTCUSDT`).
    #[serde(default)]
    pub symbols: Vec<String>,
    /// MarketPrism data type names (e.g. `trade`).
    #[serde(default)]
    pub data_types: Vec<String>,
    /// Channels per WebSocket connection (default: min(200, venue maximum)).
    pub streams_per_connection: Option<usize>,
    /// Extra PEM CA certificate(s) to trust besides the webpki roots.
    pub ca_file: Option<PathBuf>,
    /// Raw frame capture for this venue (overrides `sink.raw`).
    pub raw: Option<bool>,
    /// Levels per side in published `orderbook` records (MarketPrism: 400).
    #[serde(default = "default_book_depth")]
    pub book_depth: usize,
    /// One `orderbook` record per symbol per interval of exchange time
    /// (MarketPrism: 100 ms; see `book::books`).
    #[serde(default = "default_book_publish_interval_ms")]
    pub book_publish_interval_ms: u64,
    /// Levels requested in REST book snapshots (venues that sync from REST).
    #[serde(default = "default_snapshot_depth")]
    pub snapshot_depth: usize,
    /// REST request timeout (snapshots, polls, backfill), ms (default 10 s).
    pub rest_timeout_ms: Option<u64>,
    /// REST polling intervals per data type, ms (e.g. `{ open_interest = 60000 }`);
    /// defaults are MarketPrism's.
    #[serde(default)]
    pub poll_interval_ms: BTreeMap<String, u64>,
    /// Replace each connection (make-before-break) after this long; 0 = never.
    /// Default: an hour before the venue's documented lifetime (Binance: 23 h).
    pub rotate_after_ms: Option<u64>,
    /// Also replace connections daily at this UTC time, `HH:MM`.
    pub rotate_at_utc: Option<String>,
    /// A connection silent this long is reconnected (default per venue).
    pub stale_after_ms: Option<u64>,
    /// A stream (symbol × data type) silent this long on a live connection is
    /// subscribed again, per data type (e.g. `{ trade = 30000 }`); 0 = never.
    /// Default: only types the venue pushes on a fixed cadence (three
    /// intervals + 30 s), since a quiet symbol is not a dead subscription.
    #[serde(default)]
    pub stream_stale_after_ms: BTreeMap<String, u64>,
    /// How long old and new connection run side by side in a rotation.
    #[serde(default = "default_rotation_overlap_ms")]
    pub rotation_overlap_ms: u64,
}

const fn default_rotation_overlap_ms() -> u64 {
    2000
}

const fn default_book_depth() -> usize {
    400
}
const fn default_book_publish_interval_ms() -> u64 {
    100
}
const fn default_snapshot_depth() -> usize {
    1000
}

const fn default_true() -> bool {
    true
}
