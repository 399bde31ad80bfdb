//! Planning: `[config]` as read ([`RawConfig`]) checked and resolved into a
//! [`Plan`]. Pure and deterministic, so `check-config` prints exactly what
//! `run` will do.

use super::assign::{assign, in_top_k};
use super::cpus::housekeeping_cpus;
use super::plan::*;
use super::raw::RawConfig;
use super::ConfigError;
use crate::model::{DataType, VenueId};
use crate::venue;
use std::time::Duration;
use url::Url;

impl Plan {
    pub fn from_raw(raw: &RawConfig) -> Result<Plan, ConfigError> {
        let e = &raw.engine;
        if e.cores.is_empty() {
            return Err(ConfigError::new(
                "engine.cores",
                "must list at least one CPU id",
            ));
        }
        for (i, c) in e.cores.iter().enumerate() {
            if e.cores[..i].contains(c) {
                return Err(ConfigError::new(
                    format!("engine.cores[{i}]"),
                    format!("CPU {c} is listed twice; each core runs one executor"),
                ));
            }
        }
        if e.batch_max_events == 0 || e.batch_max_events > 1_000_000 {
            return Err(ConfigError::new(
                "engine.batch_max_events",
                "must be between 1 and 1000000",
            ));
        }
        if e.batch_max_delay_ms == 0 || e.batch_max_delay_ms > 60_000 {
            return Err(ConfigError::new(
                "engine.batch_max_delay_ms",
                "must be between 1 and 60000",
            ));
        }
        if !(100..=3_600_000).contains(&e.shutdown_timeout_ms) {
            return Err(ConfigError::new(
                "engine.shutdown_timeout_ms",
                "must be between 100 and 3600000",
            ));
        }
        let http_listen = super::http::parse_addr("http.listen", &raw.http.listen)?;
        let http = super::http::plan(&raw.http, http_listen)?;

        let kinds = raw.sink.kind.names();
        if kinds.is_empty() {
            return Err(ConfigError::new(
                "sink.kind",
                "names no sink (use \"file\", \"nats\", \"clickhouse\" or a list)",
            ));
        }
        for (i, k) in kinds.iter().enumerate() {
            if !["file", "nats", "clickhouse"].contains(k) {
                let key = match raw.sink.kind {
                    super::raw::SinkKinds::One(_) => "sink.kind".to_string(),
                    super::raw::SinkKinds::Many(_) => format!("sink.kind[{i}]"),
                };
                return Err(ConfigError::new(
                    key,
                    format!("unknown sink `{k}` (this build has: file, nats, clickhouse)"),
                ));
            }
        }
        if raw.sink.path.as_os_str().is_empty() {
            return Err(ConfigError::new("sink.path", "must not be empty"));
        }
        if raw.sink.rotate_max_bytes < 4096 {
            return Err(ConfigError::new(
                "sink.rotate_max_bytes",
                "must be at least 4096",
            ));
        }
        if raw.sink.rotate_interval_s == 0 {
            return Err(ConfigError::new(
                "sink.rotate_interval_s",
                "must be at least 1",
            ));
        }

        let file_sink = kinds.contains(&"file");
        let nats_cfg = if kinds.contains(&"nats") {
            let c = raw.sink.nats.clone().unwrap_or_default();
            c.validate().map_err(|(k, r)| ConfigError::new(k, r))?;
            Some(c)
        } else {
            if raw.sink.nats.is_some() {
                log::warn!("[sink.nats] is set but sink.kind does not include \"nats\": ignored");
            }
            None
        };
        let clickhouse_cfg = if kinds.contains(&"clickhouse") {
            let c = raw.sink.clickhouse.clone().unwrap_or_default();
            c.validate().map_err(|(k, r)| ConfigError::new(k, r))?;
            Some(c)
        } else {
            if raw.sink.clickhouse.is_some() {
                log::warn!(
                    "[sink.clickhouse] is set but sink.kind does not include \"clickhouse\": ignored"
                );
            }
            None
        };
        if raw.sink.max_pending_bytes < 64 << 10 || raw.sink.max_pending_bytes > 64 << 30 {
            return Err(ConfigError::new(
                "sink.max_pending_bytes",
                "must be between 65536 and 68719476736",
            ));
        }
        if !(10..=600_000).contains(&raw.sink.disk_full_retry_ms) {
            return Err(ConfigError::new(
                "sink.disk_full_retry_ms",
                "must be between 10 and 600000",
            ));
        }
        if raw.sink.spill_max_bytes < 1 << 20 {
            return Err(ConfigError::new(
                "sink.spill_max_bytes",
                "must be at least 1048576",
            ));
        }
        let cl = &raw.cluster;
        if cl.instances == 0 || cl.instances > 1024 {
            return Err(ConfigError::new(
                "cluster.instances",
                "must be between 1 and 1024",
            ));
        }
        if cl.instance == 0 || cl.instance > cl.instances {
            return Err(ConfigError::new(
                "cluster.instance",
                format!("must be between 1 and cluster.instances ({})", cl.instances),
            ));
        }
        let membership = plan_membership(raw, nats_cfg.as_ref())?;
        let members: Vec<u32> = (1..=cl.instances).collect();
        let mut share = Vec::new();
        let mut not_owned = Vec::new();
        let mut venues = Vec::new();
        let mut raw_venues = Vec::new();
        for (key, vc) in &raw.exchanges {
            let id = VenueId::from_config_key(key).ok_or_else(|| {
                let known: Vec<&str> = VenueId::ALL.iter().map(|v| v.config_key()).collect();
                ConfigError::new(
                    format!("exchanges.{key}"),
                    format!("unknown venue (known: {})", known.join(", ")),
                )
            })?;
            if !vc.enabled {
                continue;
            }
            if vc.raw.unwrap_or(raw.sink.raw) {
                raw_venues.push(id);
            }
            let mut v = plan_venue(id, key, vc)?;
            let (mine, others): (Vec<String>, Vec<String>) = v
                .symbols
                .iter()
                .cloned()
                .partition(|s| in_top_k(id, s, &members, cl.replicas, cl.instance));
            // Membership mode plans every symbol: ownership moves at run time.
            if membership.is_none() {
                v.symbols = mine.clone();
                if !others.is_empty() {
                    not_owned.push((id, others));
                }
            }
            share.push((id, mine));
            venues.push(v);
        }
        if venues.is_empty() {
            return Err(ConfigError::new(
                "exchanges",
                "no enabled venue: add e.g. [exchanges.binance_spot] with symbols and data_types",
            ));
        }
        // A venue none of whose symbols this instance owns opens no connection.
        venues.retain(|v| !v.symbols.is_empty());

        let cores = assign(&e.cores, &venues, membership.is_some());
        Ok(Plan {
            engine: EnginePlan {
                batch_max_events: e.batch_max_events,
                batch_max_delay: Duration::from_millis(e.batch_max_delay_ms),
                spin_before_park: Duration::from_micros(e.spin_before_park_us),
                poll_before_park: Duration::from_micros(e.poll_before_park_us),
                discard_frames: e.discard_frames,
                shutdown_timeout: Duration::from_millis(e.shutdown_timeout_ms),
            },
            file_limits: FileLimits {
                max_pending_bytes: raw.sink.max_pending_bytes as usize,
                disk_full_retry: Duration::from_millis(raw.sink.disk_full_retry_ms),
            },
            http_listen,
            http,
            raw: (!raw_venues.is_empty()).then(|| RawPlan {
                path: raw
                    .sink
                    .raw_path
                    .clone()
                    .unwrap_or_else(|| raw.sink.path.join("raw")),
                venues: raw_venues,
            }),
            file_sink,
            nats: nats_cfg.map(|config| {
                let wants = nats_wants(&venues);
                NatsPlan {
                    config,
                    wants,
                    spill_path: raw
                        .sink
                        .spill_path
                        .clone()
                        .unwrap_or_else(|| raw.sink.path.join("spill")),
                    spill_max_bytes: raw.sink.spill_max_bytes,
                }
            }),
            clickhouse: clickhouse_cfg.map(|config| ClickHousePlan {
                config,
                journal_path: raw
                    .sink
                    .spill_path
                    .clone()
                    .unwrap_or_else(|| raw.sink.path.join("spill"))
                    .join("clickhouse"),
                journal_max_bytes: raw.sink.spill_max_bytes,
            }),
            sink: FileSinkPlan {
                path: raw.sink.path.clone(),
                rotate_max_bytes: raw.sink.rotate_max_bytes,
                rotate_interval: Duration::from_secs(raw.sink.rotate_interval_s),
                write_mode: raw.sink.write_mode,
                io_worker_cpus: raw
                    .sink
                    .io_worker_cpus
                    .clone()
                    .unwrap_or_else(|| housekeeping_cpus(&e.cores)),
                io_worker_cpus_configured: raw.sink.io_worker_cpus.clone(),
            },
            venues,
            cores,
            cluster: ClusterPlan {
                instance: cl.instance,
                instances: cl.instances,
                replicas: cl.replicas,
                share,
                not_owned,
                membership,
            },
        })
    }
}

/// `[cluster]`'s replica count and membership keys; membership needs the
/// NATS sink with JetStream (the bucket lives there).
fn plan_membership(
    raw: &RawConfig,
    nats: Option<&crate::sink::nats::NatsSinkConfig>,
) -> Result<Option<MembershipPlan>, ConfigError> {
    let cl = &raw.cluster;
    if cl.replicas == 0 || cl.replicas > cl.instances {
        return Err(ConfigError::new(
            "cluster.replicas",
            format!("must be between 1 and cluster.instances ({})", cl.instances),
        ));
    }
    match cl.membership.as_deref() {
        None | Some("static") => return Ok(None),
        Some("jetstream") => {}
        Some(other) => {
            return Err(ConfigError::new(
                "cluster.membership",
                format!("unknown mode `{other}` (use \"static\" or \"jetstream\")"),
            ))
        }
    }
    match nats {
        None => {
            return Err(ConfigError::new(
                "cluster.membership",
                "\"jetstream\" needs sink.kind to include \"nats\" (the member bucket lives in JetStream)",
            ))
        }
        Some(n) if !n.jetstream => {
            return Err(ConfigError::new(
                "cluster.membership",
                "\"jetstream\" needs sink.nats.jetstream = true",
            ))
        }
        Some(_) => {}
    }
    if cl.bucket.is_empty()
        || cl.bucket.len() > 64
        || !cl
            .bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ConfigError::new(
            "cluster.bucket",
            format!(
                "`{}` is not a bucket name (1-64 letters, digits, _ or -)",
                cl.bucket
            ),
        ));
    }
    if !(300..=600_000).contains(&cl.takeover_ms) {
        return Err(ConfigError::new(
            "cluster.takeover_ms",
            "must be between 300 and 600000",
        ));
    }
    if cl.handover_ms > 60_000 {
        return Err(ConfigError::new(
            "cluster.handover_ms",
            "must be between 0 and 60000",
        ));
    }
    Ok(Some(MembershipPlan {
        bucket: cl.bucket.clone(),
        takeover: Duration::from_millis(cl.takeover_ms),
        handover: Duration::from_millis(cl.handover_ms),
    }))
}

fn plan_venue(
    id: VenueId,
    key: &str,
    vc: &super::raw::VenueConfig,
) -> Result<VenuePlan, ConfigError> {
    let defaults = venue::endpoints(id);
    let ws_url = parse_url(
        &format!("exchanges.{key}.ws_url"),
        vc.ws_url.as_deref().unwrap_or(defaults.ws_url),
        &["wss", "ws"],
    )?;
    let rest_url = parse_url(
        &format!("exchanges.{key}.rest_url"),
        vc.rest_url.as_deref().unwrap_or(defaults.rest_url),
        &["https", "http"],
    )?;
    if vc.symbols.is_empty() {
        return Err(ConfigError::new(
            format!("exchanges.{key}.symbols"),
            "must list at least one symbol",
        ));
    }
    let mut symbols: Vec<String> = Vec::with_capacity(vc.symbols.len());
    for (i, s) in vc.symbols.iter().enumerate() {
        let k = format!("exchanges.{key}.symbols[{i}]");
        let up = s.trim().to_ascii_uppercase();
        if up.is_empty()
            || up.len() > 32
            || !up
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::new(
                k,
                format!("`{s}` is not a venue symbol (letters, digits, - or _)"),
            ));
        }
        if symbols.contains(&up) {
            return Err(ConfigError::new(k, format!("`{s}` is listed twice")));
        }
        symbols.push(up);
    }
    if vc.data_types.is_empty() {
        return Err(ConfigError::new(
            format!("exchanges.{key}.data_types"),
            "must list at least one data type (e.g. \"trade\")",
        ));
    }
    let mut data_types = Vec::with_capacity(vc.data_types.len());
    for (i, d) in vc.data_types.iter().enumerate() {
        let k = format!("exchanges.{key}.data_types[{i}]");
        let dt = match DataType::from_name(d) {
            Some(dt) => dt,
            None => {
                let known: Vec<&str> = DataType::ALL.iter().map(|d| d.name()).collect();
                return Err(ConfigError::new(
                    k,
                    format!("unknown data type `{d}` (known: {})", known.join(", ")),
                ));
            }
        };
        if !venue::supports(id, dt) {
            return Err(ConfigError::new(
                k,
                format!("venue {key} does not offer `{d}`"),
            ));
        }
        if data_types.contains(&dt) {
            return Err(ConfigError::new(k, format!("`{d}` is listed twice")));
        }
        data_types.push(dt);
    }
    let max = venue::max_streams_per_connection(id);
    let streams_per_connection = vc.streams_per_connection.unwrap_or(max.min(200));
    if streams_per_connection == 0 || streams_per_connection > max {
        return Err(ConfigError::new(
            format!("exchanges.{key}.streams_per_connection"),
            format!("must be between 1 and {max} for {key}"),
        ));
    }
    if vc.book_depth == 0 || vc.book_depth > 5000 {
        return Err(ConfigError::new(
            format!("exchanges.{key}.book_depth"),
            "must be between 1 and 5000",
        ));
    }
    if vc.snapshot_depth == 0 || vc.snapshot_depth > 5000 {
        return Err(ConfigError::new(
            format!("exchanges.{key}.snapshot_depth"),
            "must be between 1 and 5000",
        ));
    }
    let rest_timeout_ms = vc.rest_timeout_ms.unwrap_or(10_000);
    if !(100..=600_000).contains(&rest_timeout_ms) {
        return Err(ConfigError::new(
            format!("exchanges.{key}.rest_timeout_ms"),
            "must be between 100 and 600000",
        ));
    }
    let proto = venue::protocol(id);
    let mut poll_every = [Duration::ZERO; DataType::COUNT];
    for dt in DataType::ALL {
        if let venue::Source::Poll { every } = proto.source(dt) {
            poll_every[dt.index()] = every;
        }
    }
    for (name, &ms) in &vc.poll_interval_ms {
        let k = format!("exchanges.{key}.poll_interval_ms.{name}");
        let dt = data_type_key(&k, name)?;
        if !matches!(proto.source(dt), venue::Source::Poll { .. }) {
            return Err(ConfigError::new(
                k,
                format!(
                    "{key} streams `{name}` over WebSocket; only polled types take an interval"
                ),
            ));
        }
        if ms < 1000 {
            return Err(ConfigError::new(k, "must be at least 1000 ms"));
        }
        poll_every[dt.index()] = Duration::from_millis(ms);
    }
    if let Some(ca) = &vc.ca_file {
        if ca.as_os_str().is_empty() {
            return Err(ConfigError::new(
                format!("exchanges.{key}.ca_file"),
                "must not be empty",
            ));
        }
    }
    let rotate_after = match vc.rotate_after_ms {
        Some(0) => None,
        Some(ms) if ms < 1000 => {
            return Err(ConfigError::new(
                format!("exchanges.{key}.rotate_after_ms"),
                "must be 0 (never) or at least 1000",
            ))
        }
        Some(ms) => Some(Duration::from_millis(ms)),
        None => proto
            .connection_lifetime()
            .map(|l| l.saturating_sub(Duration::from_secs(3600))),
    };
    let rotate_at_utc = match &vc.rotate_at_utc {
        None => None,
        Some(t) => Some(parse_hh_mm(t).ok_or_else(|| {
            ConfigError::new(
                format!("exchanges.{key}.rotate_at_utc"),
                format!("`{t}` is not a UTC time of day `HH:MM`"),
            )
        })?),
    };
    if vc.rotation_overlap_ms < 100 || vc.rotation_overlap_ms > 600_000 {
        return Err(ConfigError::new(
            format!("exchanges.{key}.rotation_overlap_ms"),
            "must be between 100 and 600000",
        ));
    }
    let stale_after = match vc.stale_after_ms {
        None => proto.stale_after(),
        Some(ms) if (500..=3_600_000).contains(&ms) => Duration::from_millis(ms),
        Some(_) => {
            return Err(ConfigError::new(
                format!("exchanges.{key}.stale_after_ms"),
                "must be between 500 and 3600000",
            ))
        }
    };
    let mut stream_stale_after = [None; DataType::COUNT];
    for &dt in &data_types {
        if matches!(proto.source(dt), venue::Source::Ws { .. }) {
            stream_stale_after[dt.index()] = proto
                .stream_cadence(dt)
                .map(|c| c * 3 + Duration::from_secs(30));
        }
    }
    for (name, &ms) in &vc.stream_stale_after_ms {
        let k = format!("exchanges.{key}.stream_stale_after_ms.{name}");
        let dt = data_type_key(&k, name)?;
        if !matches!(proto.source(dt), venue::Source::Ws { .. }) {
            return Err(ConfigError::new(
                k,
                format!("{key} does not stream `{name}` over WebSocket"),
            ));
        }
        if ms != 0 && !(1000..=86_400_000).contains(&ms) {
            return Err(ConfigError::new(
                k,
                "must be 0 (never) or between 1000 and 86400000",
            ));
        }
        stream_stale_after[dt.index()] = (ms > 0).then(|| Duration::from_millis(ms));
    }
    Ok(VenuePlan {
        stale_after,
        stream_stale_after,
        rotate_after,
        rotate_at_utc,
        rotation_overlap: Duration::from_millis(vc.rotation_overlap_ms),
        id,
        ws_url,
        rest_url,
        ca_file: vc.ca_file.clone(),
        symbols,
        data_types,
        streams_per_connection,
        book_depth: vc.book_depth,
        book_publish_interval: Duration::from_millis(vc.book_publish_interval_ms),
        snapshot_depth: vc.snapshot_depth,
        rest_timeout: Duration::from_millis(rest_timeout_ms),
        poll_every,
    })
}

/// The data type a per-type table's key names (`poll_interval_ms.trade`);
/// the error names the full key `k`.
fn data_type_key(k: &str, name: &str) -> Result<DataType, ConfigError> {
    DataType::from_name(name)
        .ok_or_else(|| ConfigError::new(k.to_string(), format!("unknown data type `{name}`")))
}

/// `HH:MM` (UTC) → (hour, minute).
fn parse_hh_mm(t: &str) -> Option<(u8, u8)> {
    let (h, m) = t.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u8, u8) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

fn parse_url(key: &str, s: &str, schemes: &[&str]) -> Result<Url, ConfigError> {
    let url =
        Url::parse(s).map_err(|e| ConfigError::new(key, format!("`{s}` is not a URL: {e}")))?;
    if !schemes.contains(&url.scheme()) {
        return Err(ConfigError::new(
            key,
            format!(
                "scheme `{}` not allowed (use {})",
                url.scheme(),
                schemes.join(" or ")
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(key, format!("`{s}` has no host")));
    }
    Ok(url)
}

/// Per data type, the subject patterns the venues publish
/// (`{data_type}.{exchange}.{market_type}.>`), plus `gap` for every venue:
/// gap records (what was lost, and why) share the sink.
fn nats_wants(venues: &[VenuePlan]) -> Vec<crate::sink::nats::route::Want> {
    let mut by_type: Vec<(DataType, Vec<String>)> = Vec::new();
    let mut add = |dt: DataType, pattern: String| match by_type.iter_mut().find(|(d, _)| *d == dt) {
        Some((_, p)) => {
            if !p.contains(&pattern) {
                p.push(pattern)
            }
        }
        None => by_type.push((dt, vec![pattern])),
    };
    for v in venues {
        for &dt in v.data_types.iter().chain([DataType::Gap].iter()) {
            add(
                dt,
                format!(
                    "{}.{}.{}.>",
                    dt.name(),
                    v.id.exchange(),
                    v.id.market_type_of(dt)
                ),
            );
        }
    }
    by_type.sort_by_key(|(d, _)| *d);
    by_type
        .into_iter()
        .map(|(d, patterns)| crate::sink::nats::route::Want {
            data_type: d.name().to_string(),
            patterns,
        })
        .collect()
}
