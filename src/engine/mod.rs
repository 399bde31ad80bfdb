//! The engine: start one pinned glommio executor per configured core, give
//! each its [`shard::Shard`], wait, and stop them in order. It only starts,
//! gathers and stops; all data work happens inside the shards.
//!
//! By role: [`shard`] wires one core's tasks; [`session`] runs a socket
//! (connect, heartbeats, stale detection, rotation, resubscription,
//! reconnect); [`pipeline`] turns a frame into batch records (parse, books,
//! [`continuity`]) and answers each frame with one [`pipeline::FrameAnswer`];
//! [`replay`] feeds recorded frames through the same pipeline.
//!
//! Start-up order: memlock → signals → TLS configs → instrument lists (one
//! REST call per venue, before any core starts, so every core sees the same
//! symbol map) → HTTP listener bound → executors.

mod cluster_host;
pub mod continuity;
pub mod pipeline;
pub mod replay;
pub mod session;
pub mod shard;
pub mod shutdown;

use crate::config::{ConfigError, Plan, WriteMode};
use crate::conn::tls;
use crate::metrics::{CoreStats, Exporter};
use crate::model::VenueId;
use crate::sink::spill::Spill;
use crate::sink::Overflow;
use crate::venue::{self, InstrumentMap};
use glommio::{LocalExecutorBuilder, Placement, PoolPlacement};
use pipeline::Pipeline;
use shard::{Shard, VenueRuntime};
use std::fmt;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A spinning core's preempt timer: how late its timers and non-session I/O
/// (sinks, the HTTP endpoint) may be while its sessions busy-poll.
const SPIN_PREEMPT: Duration = Duration::from_millis(1);

/// Why the engine could not run.
#[derive(Debug)]
pub enum EngineError {
    /// The config is wrong (exit code 2).
    Config(ConfigError),
    /// Something at run time failed (exit code 1).
    Runtime(String),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Config(e) => write!(f, "{e}"),
            EngineError::Runtime(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for EngineError {}

fn runtime(e: impl fmt::Display) -> EngineError {
    EngineError::Runtime(e.to_string())
}

/// Runs the collector until SIGINT/SIGTERM; returns after every core flushed.
pub fn run(plan: Plan) -> Result<(), EngineError> {
    let memlock = crate::sys::ensure_memlock().map_err(runtime)?;
    log::debug!("RLIMIT_MEMLOCK = {memlock} bytes");
    let missing = plan.missing_cpus();
    if !missing.is_empty() {
        return Err(EngineError::Config(ConfigError::new(
            "engine.cores",
            format!("CPU(s) {missing:?} are not available to this process"),
        )));
    }
    let missing = plan.missing_io_worker_cpus();
    if plan.file_sink && plan.sink.write_mode != WriteMode::Inline && !missing.is_empty() {
        return Err(EngineError::Config(ConfigError::new(
            "sink.io_worker_cpus",
            format!("CPU(s) {missing:?} are not available to this process"),
        )));
    }
    shutdown::set_timeout(plan.engine.shutdown_timeout);
    shutdown::install().map_err(|e| runtime(format!("installing signal handlers: {e}")))?;
    eprint!("{plan}");

    // TLS configs (a bad ca_file is a config error naming the key).
    let mut ws_tls = Vec::new();
    let mut rest_tls = Vec::new();
    for v in &plan.venues {
        let key = format!("exchanges.{}.ca_file", v.id);
        let ca = v.ca_file.as_deref();
        ws_tls.push(
            tls::client_config(ca, false)
                .map_err(|e| EngineError::Config(ConfigError::new(&key, e)))?,
        );
        rest_tls.push(
            tls::client_config(ca, true)
                .map_err(|e| EngineError::Config(ConfigError::new(&key, e)))?,
        );
    }

    let nats_seed = nats_preflight(&plan)?;
    let clickhouse_tls = clickhouse_preflight(&plan)?;
    let instruments = fetch_instruments(&plan, &rest_tls)?;
    let Some(instruments) = instruments else {
        log::info!("stopped before start-up completed");
        return Ok(());
    };
    if let Some(raw) = &plan.raw {
        for v in &raw.venues {
            crate::capture::write_instruments(&raw.path, *v, &instruments[v.index()])
                .map_err(|e| runtime(format!("raw capture dir {}: {e}", raw.path.display())))?;
        }
    }

    // Bound here so a taken port fails start-up; shard 0 serves them. `:0`
    // picks a port, which the log line tells (tests read it).
    let bind = |key: &str, addr: std::net::SocketAddr| {
        let l =
            std::net::TcpListener::bind(addr).map_err(|e| runtime(format!("{key} {addr}: {e}")))?;
        l.set_nonblocking(true).map_err(runtime)?;
        let at = l.local_addr().map_err(runtime)?;
        Ok::<_, EngineError>((l.into_raw_fd(), at))
    };
    let (fd, at) = bind("http.listen", plan.http_listen)?;
    log::info!("metrics and health on http://{at}/metrics and /health");
    let mut http_fds = vec![(fd, crate::metrics::listen::Role::Metrics)];
    if let Some(h) = plan.http.health_listen {
        let (fd, at) = bind("http.health_listen", h)?;
        log::info!("health only on http://{at}/health");
        http_fds.push((fd, crate::metrics::listen::Role::Health));
    }
    let mut http_fds = Some(http_fds);

    let stats: Vec<Arc<CoreStats>> = plan
        .cores
        .iter()
        .map(|c| Arc::new(CoreStats::new(c.shard, c.cpu)))
        .collect();
    for (c, st) in plan.cores.iter().zip(&stats) {
        crate::metrics::freshness::expect_streams(st, c, &plan.venues);
    }
    let cluster_stats = crate::cluster::build::stats(&plan);
    if let Some(cs) = &cluster_stats {
        for st in &stats {
            let _ = st.cluster.set(cs.clone());
        }
    }
    let all_stats = Arc::new(stats.clone());
    shutdown::watch(all_stats.clone());
    let exporter = Exporter {
        cores: all_stats,
        venues: plan.venues.iter().map(|v| v.id).collect(),
        started: Instant::now(),
    };

    let mut handles = Vec::new();
    for core in &plan.cores {
        let core = core.clone();
        let engine = plan.engine.clone();
        let http_limits = plan.http.limits;
        let sink_plan = plan.sink.clone();
        let raw_plan = plan.raw.clone();
        let nats_plan = plan.nats.clone();
        let nats_seed = nats_seed.clone();
        let clickhouse_plan = plan.clickhouse.clone();
        let clickhouse_tls = clickhouse_tls.clone();
        let file_sink = plan.file_sink;
        let cluster_plan = plan.clone();
        let cluster_stats = cluster_stats.clone();
        let file_limits = plan.file_limits;
        let stats = stats[core.shard].clone();
        let cores_n = plan.cores.len() as u32;
        let venues: Vec<VenueRuntime> = plan
            .venues
            .iter()
            .zip(ws_tls.iter().zip(&rest_tls))
            .map(|(v, (t, rt))| VenueRuntime {
                id: v.id,
                ws_url: v.ws_url.clone(),
                tls: Some(t.clone()),
                rest_url: v.rest_url.clone(),
                rest_tls: Some(rt.clone()),
                snapshot_depth: v.snapshot_depth,
                rest_timeout: v.rest_timeout,
                // One budget per venue and core: each core gets an equal share.
                rest_share: (venue::protocol(v.id).rest_limit().weight / cores_n).max(1),
                rotate_after: v.rotate_after,
                rotate_at_utc: v.rotate_at_utc,
                rotation_overlap: v.rotation_overlap,
                stale_after: v.stale_after,
                stream_stale_after: v.stream_stale_after,
                connect_limit: venue::protocol(v.id)
                    .connection_rate_limit()
                    .map(|(n, w)| ((n / cores_n).max(1), w)),
            })
            .collect();
        let (maps, books) = core_books_and_instruments(&plan, &core, &instruments);
        let http = if core.shard == 0 {
            http_fds.take().map(|fds| (fds, exporter.clone()))
        } else {
            None
        };
        // Readers yield when the preempt timer fires; keep it well under the
        // batch age limit so the flusher is never starved by a busy socket.
        let mut preempt =
            (engine.batch_max_delay / 2).clamp(Duration::from_millis(1), Duration::from_millis(50));
        if !engine.spin_before_park.is_zero() {
            // Spinning, the sessions busy-poll their sockets and the task
            // queue never empties: the core reaps other I/O and fires its
            // timers only when this timer preempts it.
            preempt = preempt.min(SPIN_PREEMPT);
        }
        let mut builder = LocalExecutorBuilder::new(Placement::Fixed(core.cpu))
            .name(&format!("core{}", core.shard))
            .preempt_timer(preempt)
            // Only sockets use the ring; a small registered area keeps the
            // memlock need low when many cores run.
            .io_memory(256 << 10)
            .blocking_thread_pool_placement(PoolPlacement::Unbound(1));
        if !engine.spin_before_park.is_zero() {
            builder = builder.spin_before_park(engine.spin_before_park);
        }
        let h = builder
            .spawn(move || async move {
                // Spinning, sessions busy-poll instead (`conn::busy`).
                if engine.spin_before_park.is_zero() {
                    crate::conn::kwait::set_window(engine.poll_before_park);
                }
                let pipeline = Pipeline::new(
                    core.shard,
                    engine.batch_max_events,
                    &sink_plan,
                    maps,
                    stats.clone(),
                )
                .map_err(|e| format!("core {}: {e}", core.shard))?;
                let pipeline = match raw_plan {
                    Some(r) => {
                        let w = crate::capture::RawWriter::open(
                            &r.path,
                            core.shard,
                            sink_plan.rotate_max_bytes,
                            sink_plan.rotate_interval,
                        )
                        .map_err(|e| format!("core {}: {e}", core.shard))?;
                        pipeline.with_raw_capture(w, &r.venues)
                    }
                    None => pipeline,
                };
                let pipeline = if file_sink {
                    pipeline.with_file_limits(file_limits.max_pending_bytes, file_limits.disk_full_retry)
                } else {
                    pipeline.without_file_sink()
                };
                let pipeline = pipeline.with_books(books);
                let (pipeline, publisher) = match nats_plan {
                    Some(n) => {
                        let publisher = crate::sink::nats::adapter::publisher(
                            &n.config,
                            core.shard,
                            &n.wants,
                            &n.spill_path,
                            n.spill_max_bytes,
                            &format!("core{:02}", core.shard),
                            nats_seed.as_ref(),
                        )
                        .map_err(|e| format!("core {}: {e}", core.shard))?;
                        let _ = stats.nats.set(publisher.stats_arc());
                        let dir = n.spill_path.join(format!("core{:02}", core.shard));
                        let spill = Spill::open(&dir, n.spill_max_bytes, 64 << 20)
                            .map_err(|e| format!("core {}: spill {}: {e}", core.shard, dir.display()))?;
                        if !spill.is_empty() {
                            log::info!(
                                "core {}: {} records left in the spill by the last run will be sent first",
                                core.shard,
                                spill.len()
                            );
                        }
                        let out = Overflow::new(
                            Rc::new(crate::sink::nats::NatsAdapter::new(publisher.clone())),
                            spill,
                        );
                        (pipeline.with_message_sink(out), Some(publisher))
                    }
                    None => (pipeline, None),
                };
                let pipeline = match &clickhouse_plan {
                    Some(c) => {
                        let dir = c.journal_path.join(format!("core{:02}", core.shard));
                        let sink = crate::sink::clickhouse::ClickHouseSink::open(
                            &c.config,
                            core.shard,
                            &dir,
                            c.journal_max_bytes,
                            clickhouse_tls,
                        )
                        .map_err(|e| format!("core {}: {e}", core.shard))?;
                        pipeline.with_clickhouse(sink)
                    }
                    None => pipeline,
                };
                let server = http.map(|(fds, ex)| {
                    let listeners = fds
                        .into_iter()
                        .map(|(fd, role)| {
                            // SAFETY: `fd` is a bound, non-blocking listening socket
                            // whose ownership was released with `into_raw_fd` above.
                            (unsafe { glommio::net::TcpListener::from_raw_fd(fd) }, role)
                        })
                        .collect();
                    glommio::spawn_local(crate::metrics::listen::serve_all(
                        listeners,
                        http_limits,
                        ex,
                    ))
                });
                let membership =
                    crate::cluster::build::core_membership(&cluster_plan, &core, cluster_stats);
                drop(cluster_plan);
                let shard = Shard::new(core, engine, venues, pipeline, stats, publisher, membership);
                let r = shard.run().await;
                if let Some(s) = server {
                    s.cancel().await;
                }
                r
            })
            .map_err(|e| {
                runtime(format!(
                    "starting executor on cpu {}: {e}",
                    plan.cores[handles.len()].cpu
                ))
            });
        match h {
            Ok(h) => handles.push(h),
            Err(e) => {
                shutdown::request();
                for h in handles {
                    let _ = h.join();
                }
                return Err(e);
            }
        }
    }

    let mut errors = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                shutdown::request();
                errors.push(e);
            }
            Err(e) => {
                shutdown::request();
                errors.push(format!("core {i}: executor failed: {e}"));
            }
        }
    }
    if errors.is_empty() {
        log::info!("all cores flushed and stopped");
        Ok(())
    } else {
        Err(EngineError::Runtime(errors.join("; ")))
    }
}

/// A core's instrument maps (only its own symbols, each marked with the data
/// types collected of it) and its books (one per symbol with a book stream).
pub(crate) fn core_books_and_instruments(
    plan: &Plan,
    core: &crate::config::CorePlan,
    instruments: &[InstrumentMap],
) -> (Vec<InstrumentMap>, crate::book::Books) {
    let mut maps: Vec<InstrumentMap> = Vec::new();
    for id in VenueId::ALL {
        let mut mine: Vec<String> = core
            .connections
            .iter()
            .filter(|c| c.venue == id)
            .flat_map(|c| c.streams.iter().map(|s| s.symbol.clone()))
            .collect();
        mine.extend(
            core.polls
                .iter()
                .filter(|p| p.venue == id)
                .map(|p| p.symbol.clone()),
        );
        let mut m = instruments[id.index()].clone();
        m.retain(&mine);
        if let Some(v) = plan.venue(id) {
            let mut wanted = crate::model::DataTypeSet::default();
            v.data_types.iter().for_each(|&d| wanted.insert(d));
            for s in &mine {
                m.set_wanted(s, wanted);
            }
        }
        maps.push(m);
    }
    let configs: Vec<(VenueId, crate::book::BookConfig)> = plan
        .venues
        .iter()
        .map(|v| {
            (
                v.id,
                crate::book::BookConfig {
                    depth: v.book_depth,
                    publish_interval_ns: v.book_publish_interval.as_nanos() as u64,
                    deltas: v
                        .data_types
                        .contains(&crate::model::DataType::OrderBookDelta),
                },
            )
        })
        .collect();
    let mut books = crate::book::Books::new(crate::venue::book_rule, &configs);
    for c in &core.connections {
        for s in &c.streams {
            if matches!(
                s.data_type,
                crate::model::DataType::OrderBook | crate::model::DataType::OrderBookDelta
            ) {
                let normalized = maps[c.venue.index()]
                    .normalize(&s.symbol)
                    .unwrap_or(&s.symbol)
                    .to_string();
                books.register(c.venue, &s.symbol, &normalized);
            }
        }
    }
    (maps, books)
}

/// Fetches every venue's instrument list on a temporary executor, retrying
/// with backoff until it works or a stop is requested (`Ok(None)`). Checks
/// that every configured symbol is listed.
/// Before any core starts: every data type's NATS transport, and the one
/// change allowed to the stream. A data type nothing can carry is a
/// configuration error (exit 2). NATS unreachable: the cores decide at their
/// own connect, records wait in the spill meanwhile.
fn nats_preflight(
    plan: &Plan,
) -> Result<Option<crate::sink::nats::route::Resolution>, EngineError> {
    let Some(n) = &plan.nats else {
        return Ok(None);
    };
    match crate::sink::nats::preflight::preflight(
        &n.config,
        &n.wants,
        n.config.create_stream,
        Duration::from_secs(5),
    ) {
        Ok(r) if !r.errors.is_empty() => Err(EngineError::Config(ConfigError::new(
            "sink.nats",
            r.errors.join("; "),
        ))),
        Ok(r) => {
            for t in &r.types {
                log::info!(
                    "NATS {}: {}",
                    t.data_type,
                    match &t.transport {
                        crate::sink::nats::route::Transport::JetStream(s) =>
                            format!("JetStream, stream {} ({})", s.join(", "), t.why),
                        _ => format!("core NATS ({})", t.why),
                    }
                );
            }
            Ok(Some(r))
        }
        Err(e) => {
            log::warn!(
                "NATS not reachable at start ({e}); each core decides the transports when it connects"
            );
            Ok(None)
        }
    }
}

/// Before any core starts: ClickHouse's tables created (when configured)
/// and checked. A missing table or column is a configuration error (exit 2);
/// ClickHouse unreachable: the cores keep blocks in their journals and
/// retry. Returns the TLS config of an `https` URL.
fn clickhouse_preflight(
    plan: &Plan,
) -> Result<Option<std::sync::Arc<rustls::ClientConfig>>, EngineError> {
    let Some(c) = &plan.clickhouse else {
        return Ok(None);
    };
    let tls = c
        .config
        .tls()
        .map_err(|e| EngineError::Config(ConfigError::new("sink.clickhouse.ca_file", e)))?;
    let timeout = Duration::from_millis(c.config.connect_timeout_ms.max(2000));
    match crate::sink::clickhouse::setup::preflight(&c.config, tls.clone(), timeout, true) {
        Ok(Some(checked)) => {
            for w in &checked.warnings {
                log::warn!("ClickHouse: {w}");
            }
            if !checked.errors.is_empty() {
                return Err(EngineError::Config(ConfigError::new(
                    "sink.clickhouse",
                    checked.errors.join("; "),
                )));
            }
            log::info!(
                "ClickHouse {} database {}: tables ready",
                c.config.url,
                c.config.database
            );
        }
        Ok(None) => {}
        Err(e) => {
            return Err(EngineError::Config(ConfigError::new("sink.clickhouse", e)));
        }
    }
    Ok(tls)
}

fn fetch_instruments(
    plan: &Plan,
    rest_tls: &[Arc<rustls::ClientConfig>],
) -> Result<Option<Vec<InstrumentMap>>, EngineError> {
    let venues: Vec<_> = plan
        .venues
        .iter()
        .zip(rest_tls)
        .map(|(v, t)| (v.id, v.rest_url.clone(), t.clone()))
        .collect();
    let cpu = plan.cores[0].cpu;
    let fetched = LocalExecutorBuilder::new(Placement::Fixed(cpu))
        .name("bootstrap")
        .io_memory(256 << 10)
        .blocking_thread_pool_placement(PoolPlacement::Unbound(1))
        .spawn(move || async move {
            let mut out: Vec<(VenueId, InstrumentMap)> = Vec::new();
            for (id, rest, tls) in venues {
                let proto = venue::protocol(id);
                let mut map = InstrumentMap::default();
                let mut cursor: Option<String> = None;
                let mut backoff = crate::conn::Backoff::new(
                    Duration::from_millis(500),
                    Duration::from_secs(30),
                    crate::sys::now_ns(),
                );
                // Page through the list (Bybit paginates; others answer in one page).
                while let Some(req) = proto.instruments_request(cursor.as_deref()) {
                    let url = match crate::rest::join(&rest, &req.path) {
                        Ok(u) => u,
                        Err(e) => {
                            log::error!("{id}: bad instrument URL: {e}");
                            return None;
                        }
                    };
                    if shutdown::requested() {
                        return None;
                    }
                    let err =
                        match crate::rest::get(&url, Some(&tls), Duration::from_secs(15)).await {
                            Ok(r) if r.status == 200 => {
                                match proto.parse_instruments(&r.body, &mut map) {
                                    Ok(next) => {
                                        cursor = next;
                                        if cursor.is_none() {
                                            break;
                                        }
                                        continue;
                                    }
                                    Err(e) => e,
                                }
                            }
                            Ok(r) => format!("HTTP {} from {url}", r.status),
                            Err(e) => e.to_string(),
                        };
                    let d = backoff.next_delay();
                    log::warn!("{id}: instrument list unavailable ({err}); retrying in {d:?}");
                    let until = Instant::now() + d;
                    while Instant::now() < until && !shutdown::requested() {
                        glommio::timer::sleep(Duration::from_millis(50)).await;
                    }
                }
                log::info!("{id}: {} instruments from {rest}", map.len());
                out.push((id, map));
            }
            Some(out)
        })
        .map_err(|e| runtime(format!("starting bootstrap executor: {e}")))?
        .join()
        .map_err(|e| runtime(format!("bootstrap executor: {e}")))?;
    let Some(fetched) = fetched else {
        return Ok(None);
    };
    let mut maps: Vec<InstrumentMap> = vec![InstrumentMap::default(); VenueId::COUNT];
    for (id, map) in fetched {
        maps[id.index()] = map;
    }
    for v in &plan.venues {
        let map = &maps[v.id.index()];
        let proto = venue::protocol(v.id);
        for (i, s) in v.symbols.iter().enumerate() {
            let listed_needed = v
                .data_types
                .iter()
                .any(|&d| proto.symbol_applies(s, d) && proto.needs_instrument(d));
            if !listed_needed {
                continue;
            }
            match map.get(s) {
                None => {
                    return Err(EngineError::Config(ConfigError::new(
                        format!("exchanges.{}.symbols[{i}]", v.id),
                        format!("`{s}` is not listed by {}", v.rest_url),
                    )))
                }
                Some(inst) if !inst.trading => {
                    log::warn!(
                        "{}: {s} is listed but not trading; subscribing anyway",
                        v.id
                    )
                }
                Some(_) => {}
            }
        }
    }
    Ok(Some(maps))
}
