//! The validated, resolved configuration: which core owns which connection and
//! which streams ride on it. These are its types; `build.rs` plans them from
//! the raw config, `assign.rs` spreads the work, `display.rs` prints them.

use super::cpus::allowed_cpus;
pub use super::cpus::io_worker_default;
use crate::model::{DataType, VenueId};
pub use crate::sink::file_config::{FileLimits, FileSinkPlan};
pub use crate::venue::config::{ConnectionPlan, StreamSpec};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// Everything `run` needs, already checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub engine: EnginePlan,
    pub http_listen: SocketAddr,
    /// The health listener and the connection limits.
    pub http: super::http::HttpPlan,
    pub sink: FileSinkPlan,
    /// File sink behaviour while the disk refuses writes.
    pub file_limits: FileLimits,
    /// Whether the file sink runs (`sink.kind` includes "file").
    pub file_sink: bool,
    pub nats: Option<NatsPlan>,
    pub clickhouse: Option<ClickHousePlan>,
    pub raw: Option<RawPlan>,
    pub venues: Vec<VenuePlan>,
    pub cores: Vec<CorePlan>,
    pub cluster: ClusterPlan,
}

/// This instance's share of the work.
#[derive(Debug, Clone)]
pub struct ClusterPlan {
    pub instance: u32,
    pub instances: u32,
    /// Instances collecting each symbol.
    pub replicas: u32,
    /// Per venue: the symbols this instance collects while every instance
    /// is alive (static mode: the only ones it plans).
    pub share: Vec<(VenueId, Vec<String>)>,
    /// Per venue: configured symbols left to other instances (static mode).
    pub not_owned: Vec<(VenueId, Vec<String>)>,
    /// `membership = "jetstream"`: ownership decided at run time.
    pub membership: Option<MembershipPlan>,
}

/// Run-time membership through a JetStream key-value bucket.
#[derive(Debug, Clone)]
pub struct MembershipPlan {
    pub bucket: String,
    /// A member silent this long loses its symbols.
    pub takeover: Duration,
    /// Overlap of a make-before-break handover.
    pub handover: Duration,
}

impl MembershipPlan {
    /// The key's time to live: two thirds of `takeover`, so a dead member's
    /// key is gone, and seen gone by a poll every `ttl / 4`, within it.
    pub fn ttl(&self) -> Duration {
        self.takeover * 2 / 3
    }

    /// How often the key is refreshed and the bucket read.
    pub fn tick(&self) -> Duration {
        self.ttl() / 4
    }
}

#[derive(Debug, Clone)]
pub struct EnginePlan {
    pub batch_max_events: usize,
    pub batch_max_delay: Duration,
    pub spin_before_park: Duration,
    /// How long after data a session's socket waits in the core's `ppoll`.
    pub poll_before_park: Duration,
    /// Receive-only benchmark mode (frames counted, not parsed).
    pub discard_frames: bool,
    /// Longest a SIGTERM/SIGINT drain may take.
    pub shutdown_timeout: Duration,
}

/// The NATS sink: its settings, the stream subjects, and the spill.
#[derive(Debug, Clone)]
pub struct NatsPlan {
    pub config: crate::sink::nats::NatsSinkConfig,
    /// What the plan publishes, per data type: one subject pattern per
    /// venue (`trade.binance.spot.>`), `gap` for every venue included.
    pub wants: Vec<crate::sink::nats::route::Want>,
    pub spill_path: PathBuf,
    pub spill_max_bytes: u64,
}

/// The ClickHouse sink: its settings and the cores' journals.
#[derive(Debug, Clone)]
pub struct ClickHousePlan {
    pub config: crate::sink::clickhouse::ClickHouseSinkConfig,
    /// Core `n` journals in `<journal_path>/coreNN`.
    pub journal_path: PathBuf,
    pub journal_max_bytes: u64,
}

/// Raw frame capture: where, and for which venues.
#[derive(Debug, Clone)]
pub struct RawPlan {
    pub path: PathBuf,
    pub venues: Vec<VenueId>,
}

/// One enabled venue with its endpoints.
#[derive(Debug, Clone)]
pub struct VenuePlan {
    pub id: VenueId,
    pub ws_url: Url,
    pub rest_url: Url,
    pub ca_file: Option<PathBuf>,
    /// Native symbols, upper-case, as configured.
    pub symbols: Vec<String>,
    pub data_types: Vec<DataType>,
    pub streams_per_connection: usize,
    /// Levels per side in `orderbook` records.
    pub book_depth: usize,
    pub book_publish_interval: Duration,
    /// Levels asked for in REST snapshots.
    pub snapshot_depth: usize,
    /// Timeout of each REST request (snapshots, polls, backfill).
    pub rest_timeout: Duration,
    /// Polling interval of each REST-polled data type (indexed by `DataType::index`).
    pub poll_every: [Duration; DataType::COUNT],
    /// Make-before-break rotation: after this age, and/or daily at this UTC
    /// (hour, minute); old and new overlap for `rotation_overlap`.
    pub rotate_after: Option<Duration>,
    pub rotate_at_utc: Option<(u8, u8)>,
    pub rotation_overlap: Duration,
    /// Silence after which a connection is considered dead.
    pub stale_after: Duration,
    /// Silence after which a stream of a live connection is subscribed
    /// again, per data type (`None`: never).
    pub stream_stale_after: [Option<Duration>; DataType::COUNT],
}

/// A REST-polled stream: one data type of one symbol, on one core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollPlan {
    pub venue: VenueId,
    pub symbol: String,
    pub data_type: DataType,
    pub every: Duration,
}

/// One pinned core and the connections it owns.
#[derive(Debug, Clone)]
pub struct CorePlan {
    /// Shard index (0..cores.len()).
    pub shard: usize,
    /// CPU id the executor is pinned to.
    pub cpu: usize,
    pub connections: Vec<ConnectionPlan>,
    /// REST-polled streams this core runs.
    pub polls: Vec<PollPlan>,
}

impl CorePlan {
    pub fn stream_count(&self) -> usize {
        self.connections
            .iter()
            .map(|c| c.streams.len())
            .sum::<usize>()
            + self.polls.len()
    }
}

impl Plan {
    pub fn venue(&self, id: VenueId) -> Option<&VenuePlan> {
        self.venues.iter().find(|v| v.id == id)
    }

    pub fn connection_count(&self) -> usize {
        self.cores.iter().map(|c| c.connections.len()).sum()
    }

    pub fn stream_count(&self) -> usize {
        self.cores.iter().map(CorePlan::stream_count).sum()
    }

    /// CPU ids in `engine.cores` that this machine does not have.
    pub fn missing_cpus(&self) -> Vec<usize> {
        let online = allowed_cpus();
        self.cores
            .iter()
            .map(|c| c.cpu)
            .filter(|c| !online.contains(c))
            .collect()
    }

    /// CPU ids in `sink.io_worker_cpus` that this machine does not have.
    pub fn missing_io_worker_cpus(&self) -> Vec<usize> {
        let online = allowed_cpus();
        self.sink
            .io_worker_cpus
            .iter()
            .copied()
            .filter(|c| !online.contains(c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::load_str;
    use super::*;
    use crate::config::assign::owner;

    fn cfg(extra: &str) -> String {
        format!(
            "[engine]\ncores = [0, 1]\n[exchanges.binance_spot]\nsymbols = [\"BTCUSDT\",\"ETHUSDT\",\"BNBUSDT\",\"SOLUSDT\",\"XRPUSDT\"]\ndata_types = [\"trade\"]\n{extra}"
        )
    }

    #[test]
    fn packs_streams_and_balances_cores() {
        let plan = load_str(&cfg("streams_per_connection = 2\n")).unwrap();
        assert_eq!(plan.connection_count(), 3);
        // Connections of 2, 2 and 1 streams: conn0 → core0, conn1 → core1, then
        // both cores hold 2 streams and the tie goes to shard 0.
        let c0: Vec<usize> = plan.cores[0].connections.iter().map(|c| c.id).collect();
        let c1: Vec<usize> = plan.cores[1].connections.iter().map(|c| c.id).collect();
        assert_eq!(c0, vec![0, 2]);
        assert_eq!(c1, vec![1]);
        assert_eq!(plan.cores[0].stream_count(), 3);
        assert_eq!(plan.cores[1].stream_count(), 2);
        let syms: Vec<&str> = plan.cores[1].connections[0]
            .streams
            .iter()
            .map(|s| s.symbol.as_str())
            .collect();
        assert_eq!(syms, vec!["BNBUSDT", "SOLUSDT"]);
        // Every stream lands on exactly one core.
        let mut all: Vec<String> = plan
            .cores
            .iter()
            .flat_map(|c| c.connections.iter())
            .flat_map(|c| c.streams.iter().map(|s| s.symbol.clone()))
            .collect();
        all.sort();
        assert_eq!(
            all,
            vec!["BNBUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]
        );
    }

    #[test]
    fn planning_is_deterministic_and_printed() {
        let a = load_str(&cfg("streams_per_connection = 2\n"))
            .unwrap()
            .to_string();
        let b = load_str(&cfg("streams_per_connection = 2\n"))
            .unwrap()
            .to_string();
        assert_eq!(a, b);
        assert!(
            a.contains("core 1 (cpu 1): 1 connection(s), 2 stream(s)"),
            "{a}"
        );
        assert!(a.contains("bnbusdt@trade solusdt@trade"), "{a}");
    }

    #[test]
    fn default_streams_per_connection_is_200() {
        let plan = load_str(&cfg("")).unwrap();
        assert_eq!(plan.venues[0].streams_per_connection, 200);
        assert_eq!(plan.connection_count(), 1);
        assert_eq!(plan.cores[1].connections.len(), 0);
        assert_eq!(
            plan.venues[0].ws_url.as_str(),
            "wss://stream.binance.com:9443/"
        );
        assert_eq!(plan.venues[0].rest_url.as_str(), "https://api.binance.com/");
    }

    #[test]
    fn cluster_instances_split_symbols_disjointly() {
        let syms: Vec<String> = (0..300).map(|i| format!("S{i}USDT")).collect();
        let quoted: Vec<String> = syms.iter().map(|s| format!("\"{s}\"")).collect();
        let plan_for = |inst: u32, n: u32| {
            load_str(&format!(
                "[cluster]\ninstance={inst}\ninstances={n}\n[exchanges.binance_spot]\nsymbols=[{}]\ndata_types=[\"trade\"]\n",
                quoted.join(",")
            ))
            .unwrap()
        };
        let owned =
            |p: &Plan| -> Vec<String> { p.venues.iter().flat_map(|v| v.symbols.clone()).collect() };
        let three: Vec<Vec<String>> = (1..=3).map(|i| owned(&plan_for(i, 3))).collect();
        let mut all: Vec<String> = three.concat();
        all.sort();
        let mut want = syms.clone();
        want.sort();
        assert_eq!(all, want, "every symbol owned exactly once");
        for part in &three {
            assert!(
                part.len() > 60 && part.len() < 140,
                "unbalanced: {}",
                part.len()
            );
        }
        // Adding a fourth instance moves only symbols to the new one.
        let four: Vec<Vec<String>> = (1..=4).map(|i| owned(&plan_for(i, 4))).collect();
        for (i, part) in three.iter().enumerate() {
            for s in &four[i] {
                assert!(part.contains(s), "{s} moved between old instances");
            }
        }
        let moved = four[3].len();
        assert!(moved > 40 && moved < 110, "{moved} moved");
        let text = plan_for(2, 3).to_string();
        assert!(text.contains("cluster: instance 2 of 3"), "{text}");
        assert!(text.contains("owned here: "), "{text}");
        assert!(text.contains("left to other instances: "), "{text}");
    }

    #[test]
    fn stream_silence_limits_default_to_fixed_cadences_and_are_checked() {
        let futures = |extra: &str| {
            load_str(&format!(
                "[exchanges.binance_derivatives]\nsymbols=[\"BTCUSDT\"]\ndata_types=[\"trade\",\"funding_rate\",\"open_interest\"]\n{extra}"
            ))
        };
        let v = &futures("").unwrap().venues[0];
        let limit = |dt: DataType| v.stream_stale_after[dt.index()];
        // markPrice@1s: three intervals + 30 s; trades may be quiet; polled
        // types are not watched.
        assert_eq!(limit(DataType::FundingRate), Some(Duration::from_secs(33)));
        assert_eq!(limit(DataType::Trade), None);
        assert_eq!(limit(DataType::OpenInterest), None);
        let p = futures("stream_stale_after_ms = { trade = 20000, funding_rate = 0 }").unwrap();
        let v = &p.venues[0];
        assert_eq!(
            v.stream_stale_after[DataType::Trade.index()],
            Some(Duration::from_secs(20))
        );
        assert_eq!(v.stream_stale_after[DataType::FundingRate.index()], None);
        for (extra, key, why) in [
            ("{ trades = 5000 }", "trades", "unknown data type"),
            ("{ open_interest = 5000 }", "open_interest", "WebSocket"),
            ("{ trade = 999 }", "trade", "between 1000"),
        ] {
            let e = futures(&format!("stream_stale_after_ms = {extra}")).unwrap_err();
            assert_eq!(
                e.key,
                format!("exchanges.binance_derivatives.stream_stale_after_ms.{key}")
            );
            assert!(e.to_string().contains(why), "{e}");
        }
    }

    #[test]
    fn cluster_keys_are_checked() {
        let base = "[exchanges.binance_spot]\nsymbols=[\"BTCUSDT\"]\ndata_types=[\"trade\"]\n";
        let e = load_str(&format!("[cluster]\ninstance=4\ninstances=3\n{base}")).unwrap_err();
        assert_eq!(e.key, "cluster.instance");
        let e = load_str(&format!("[cluster]\ninstances=0\n{base}")).unwrap_err();
        assert_eq!(e.key, "cluster.instances");
        // Pinned: instances of different builds must agree, so the hash must
        // never change. These values were computed once by this function.
        assert_eq!(owner(VenueId::BinanceSpot, "BTCUSDT", 1), 1);
        let got: Vec<u32> = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
            .iter()
            .map(|s| owner(VenueId::BinanceSpot, s, 3))
            .collect();
        assert_eq!(got, vec![3, 1, 2, 3]);
    }

    #[test]
    fn replicas_give_every_symbol_k_collectors() {
        let syms: Vec<String> = (0..60).map(|i| format!("\"S{i}USDT\"")).collect();
        let owned = |inst: u32| -> Vec<String> {
            load_str(&format!(
                "[cluster]\ninstance={inst}\ninstances=3\nreplicas=2\n[exchanges.binance_spot]\nsymbols=[{}]\ndata_types=[\"trade\"]\n",
                syms.join(",")
            ))
            .unwrap()
            .venues
            .iter()
            .flat_map(|v| v.symbols.clone())
            .collect()
        };
        let parts: Vec<Vec<String>> = (1..=3).map(owned).collect();
        for i in 0..60 {
            let s = format!("S{i}USDT");
            let n = parts.iter().filter(|p| p.contains(&s)).count();
            assert_eq!(n, 2, "{s} collected by {n} instances");
        }
        // Top-1 is the static owner; top-K extends it, pinned values.
        let all = [1, 2, 3];
        for s in ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"] {
            let top = crate::config::assign::top_k(VenueId::BinanceSpot, s, &all, 3);
            assert_eq!(top[0], owner(VenueId::BinanceSpot, s, 3), "{s}");
        }
        assert_eq!(
            crate::config::assign::top_k(VenueId::BinanceSpot, "BTCUSDT", &all, 3),
            vec![3, 2, 1]
        );
        assert!(crate::config::assign::in_top_k(
            VenueId::BinanceSpot,
            "BTCUSDT",
            &[1, 2],
            1,
            2
        ));
        assert!(!crate::config::assign::in_top_k(
            VenueId::BinanceSpot,
            "BTCUSDT",
            &[1, 2],
            1,
            1
        ));
        assert!(crate::config::assign::in_top_k(
            VenueId::BinanceSpot,
            "BTCUSDT",
            &[1, 2, 3],
            2,
            2
        ));
    }

    #[test]
    fn membership_keys_are_checked_and_plan_every_symbol() {
        let nats =
            "[sink]\nkind=[\"file\",\"nats\"]\n[sink.nats]\nservers=[\"nats://127.0.0.1:4222\"]\n";
        let ex = "[exchanges.binance_spot]\nsymbols=[\"BTCUSDT\",\"ETHUSDT\",\"BNBUSDT\"]\ndata_types=[\"trade\",\"ticker\"]\n";
        let plan = load_str(&format!(
            "[cluster]\ninstance=2\ninstances=3\nmembership=\"jetstream\"\n{nats}{ex}"
        ))
        .unwrap();
        let m = plan.cluster.membership.as_ref().unwrap();
        assert_eq!(m.bucket, "marketprism_members");
        assert_eq!(m.takeover.as_millis(), 3000);
        assert_eq!(m.handover.as_millis(), 1000);
        assert_eq!(m.ttl().as_millis(), 2000);
        assert_eq!(m.tick().as_millis(), 500);
        // Every symbol planned, each in connections of its own.
        assert_eq!(plan.venues[0].symbols.len(), 3);
        assert_eq!(plan.connection_count(), 3);
        for c in plan.cores.iter().flat_map(|c| c.connections.iter()) {
            assert_eq!(c.streams.len(), 2);
            assert!(c.streams.iter().all(|s| s.symbol == c.streams[0].symbol));
        }
        let text = plan.to_string();
        assert!(
            text.contains("cluster: instance 2 of 3, replicas 1, jetstream membership (bucket marketprism_members, takeover 3000 ms, handover 1000 ms, key ttl 2000 ms)"),
            "{text}"
        );
        assert!(
            text.contains("share with all 3 members alive: 1 of 3 symbols"),
            "{text}"
        );
        for (kv, key, why) in [
            ("membership=\"raft\"", "cluster.membership", "unknown mode"),
            ("replicas=4", "cluster.replicas", "between 1 and"),
            ("replicas=0", "cluster.replicas", "between 1 and"),
            (
                "membership=\"jetstream\"\nbucket=\"a.b\"",
                "cluster.bucket",
                "bucket name",
            ),
            (
                "membership=\"jetstream\"\ntakeover_ms=10",
                "cluster.takeover_ms",
                "between",
            ),
            (
                "membership=\"jetstream\"\nhandover_ms=70000",
                "cluster.handover_ms",
                "between",
            ),
        ] {
            let e = load_str(&format!(
                "[cluster]\ninstance=1\ninstances=3\n{kv}\n{nats}{ex}"
            ))
            .unwrap_err();
            assert_eq!(e.key, key, "{kv}");
            assert!(e.reason.contains(why), "{e}");
        }
        let e = load_str(&format!(
            "[cluster]\ninstance=1\ninstances=3\nmembership=\"jetstream\"\n{ex}"
        ))
        .unwrap_err();
        assert_eq!(e.key, "cluster.membership");
        assert!(e.reason.contains("sink.kind"), "{e}");
        // Static mode is unchanged by the new keys' defaults.
        let plan = load_str(&format!("[cluster]\ninstance=1\ninstances=3\n{ex}")).unwrap();
        assert!(plan.cluster.membership.is_none());
        assert_eq!(plan.connection_count(), 1);
    }

    #[test]
    fn many_connections_balance_by_streams() {
        let syms: Vec<String> = (0..1000).map(|i| format!("\"S{i}USDT\"")).collect();
        let text = format!(
            "[engine]\ncores=[0,1,2]\n[exchanges.binance_spot]\nsymbols=[{}]\ndata_types=[\"trade\"]\nstreams_per_connection=300\n",
            syms.join(",")
        );
        let plan = load_str(&text).unwrap();
        let counts: Vec<usize> = plan.cores.iter().map(CorePlan::stream_count).collect();
        // 300,300,300,100 → 300+100, 300, 300
        assert_eq!(counts, vec![400, 300, 300]);
    }
}
