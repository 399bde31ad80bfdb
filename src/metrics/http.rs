//! What the HTTP listeners answer (`/metrics`, `/health`, `/debug/*`); the
//! listeners, and which of these each answers, are [`super::listen`]. Answers only *read* the other
//! cores' stats (relaxed atomic loads), so serving a scrape never blocks a core.

use super::{process_rss_bytes, CoreStats, Exporter, LocalHistogram};
use hyper::StatusCode;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;

/// RSS samples kept for `/debug/memory`: one per 10 s over the last hour.
pub(super) const RSS_EVERY: Duration = Duration::from_secs(10);
const RSS_KEEP: usize = 360;

/// What `/debug/memory` remembers between requests (lives on the HTTP core).
#[derive(Default)]
pub struct DebugState {
    /// (unix ms, RSS bytes), oldest first.
    rss: RefCell<VecDeque<(u64, u64)>>,
    /// Per core: (unix ms, allocation total) of the last sample, and the rate.
    allocs: RefCell<Vec<(u64, u64, f64)>>,
}

impl DebugState {
    /// Takes one sample (RSS, per-core allocation rates).
    pub fn sample(&self, ex: &Exporter) {
        let now = crate::sys::now_ms();
        let mut rss = self.rss.borrow_mut();
        if rss.len() == RSS_KEEP {
            rss.pop_front();
        }
        rss.push_back((now, process_rss_bytes()));
        let mut a = self.allocs.borrow_mut();
        a.resize(ex.cores.len(), (0, 0, 0.0));
        for (slot, c) in a.iter_mut().zip(ex.cores.iter()) {
            let total = c.allocations.get();
            if slot.0 > 0 && now > slot.0 {
                slot.2 = total.saturating_sub(slot.1) as f64 * 1000.0 / (now - slot.0) as f64;
            }
            *slot = (now, total, slot.2);
        }
    }
}

fn quantiles_json(out: &mut String, name: &str, h: &LocalHistogram) {
    let q = |p: f64| match h.quantile_upper_bound(p) {
        Some(v) if v.is_finite() => format!("{v}"),
        Some(_) => "\"+Inf\"".to_string(),
        None => "null".to_string(),
    };
    let _ = write!(
        out,
        "\"{name}\":{{\"count\":{},\"p50\":{},\"p95\":{},\"p99\":{},\"p999\":{}}}",
        h.count(),
        q(0.5),
        q(0.95),
        q(0.99),
        q(0.999)
    );
}

/// `/debug/latency`: p50/p95/p99/p99.9 (bucket upper bounds, seconds) per
/// stage per core, from the same histograms `/metrics` exports.
pub fn debug_latency(ex: &Exporter) -> String {
    let mut out = String::from("{\"unit\":\"seconds (histogram bucket upper bound)\",\"cores\":[");
    for (i, c) in ex.cores.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"core\":{},\"cpu\":{},\"stages\":{{",
            c.shard, c.cpu
        );
        quantiles_json(&mut out, "receive_to_parsed", &c.receive_to_parsed);
        out.push(',');
        quantiles_json(&mut out, "receive_to_written", &c.receive_to_written);
        out.push(',');
        quantiles_json(&mut out, "flush", &c.flush_duration);
        if let Some(n) = c.nats.get() {
            out.push(',');
            quantiles_json(&mut out, "publish_to_acked", &n.ack_latency);
        }
        out.push_str("}}");
    }
    out.push_str("]}");
    out
}

fn core_memory_json(out: &mut String, c: &CoreStats, alloc_rate: f64) {
    let _ = write!(
        out,
        "{{\"core\":{},\"cpu\":{},\"arena_bytes\":{},\"arena_high_water_bytes\":{},\"arena_resets\":{},\
         \"heap_allocations\":{},\"heap_allocations_per_s\":{:.1},\"sink_pending_records\":{},\
         \"spill_records\":{},\"spill_bytes\":{}",
        c.shard,
        c.cpu,
        c.arena_bytes.get(),
        c.arena_high_water_bytes.get(),
        c.arena_resets.get(),
        c.allocations.get(),
        alloc_rate,
        c.sink_pending_records.get(),
        c.spill_records.get(),
        c.spill_bytes.get()
    );
    if let Some(n) = c.nats.get() {
        let _ = write!(
            out,
            ",\"nats_buffered_records\":{},\"nats_buffered_bytes\":{}",
            n.buffered_msgs.get(),
            n.buffered_bytes.get()
        );
    }
    out.push('}');
}

/// `/debug/memory`: RSS now and over the last hour, per-core arena, heap
/// allocations (total and per second) and buffer sizes.
pub fn debug_memory(ex: &Exporter, st: &DebugState) -> String {
    let mut out = format!("{{\"rss_bytes\":{},\"rss_history\":[", process_rss_bytes());
    for (i, (t, b)) in st.rss.borrow().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "[{t},{b}]");
    }
    out.push_str("],\"cores\":[");
    let rates = st.allocs.borrow();
    for (i, c) in ex.cores.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        core_memory_json(&mut out, c, rates.get(i).map(|r| r.2).unwrap_or(0.0));
    }
    out.push_str("]}");
    out
}

pub(super) const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `/health` body and status: 200 "ok" while every planned connection is up,
/// every file sink writes and no stream is silent past its threshold
/// ([`super::freshness`]); 200 "degraded" while some connections are down, a
/// core's disk refuses writes, ClickHouse does not take a core's inserts or
/// a stream is silent; 503 "down" while no
/// connection is up. `reasons` says what is wrong (empty when ok);
/// `silent_streams` lists the silent streams.
pub fn health(exporter: &Exporter) -> (StatusCode, String) {
    let now = crate::sys::now_ns();
    let start = now.saturating_sub(exporter.started.elapsed().as_nanos() as u64);
    health_at(exporter, start, now)
}

/// [`health`] at `now_ns` for a collector started at `start_ns` (Unix ns).
pub fn health_at(exporter: &Exporter, start_ns: u64, now_ns: u64) -> (StatusCode, String) {
    let mut up = 0;
    let mut planned = 0;
    let mut cores = Vec::new();
    let mut sink_reasons = Vec::new();
    for c in exporter.cores.iter() {
        let (u, p) = (c.connections_up(), c.connections_planned());
        up += u;
        planned += p;
        let disk_full = c.sink_disk_full.get() > 0;
        let pending = c.sink_pending_records.get();
        if disk_full {
            sink_reasons.push(format!(
                "\"core {}: disk full, file writes paused and retried ({pending} records held in memory)\"",
                c.shard
            ));
        }
        if let Some(ch) = c.clickhouse.get().filter(|s| s.up.get() == 0) {
            sink_reasons.push(format!(
                "\"core {}: ClickHouse not accepting inserts ({} blocks waiting in the journal)\"",
                c.shard,
                ch.journal_blocks.get()
            ));
        }
        cores.push(format!(
            "{{\"core\":{},\"cpu\":{},\"connections_up\":{},\"connections_planned\":{},\"sink_disk_full\":{disk_full},\"sink_pending_records\":{pending}}}",
            c.shard, c.cpu, u, p
        ));
    }
    let mut reasons = Vec::new();
    if up < planned {
        reasons.push(format!(
            "\"{} of {planned} connections down\"",
            planned - up
        ));
    }
    reasons.extend(sink_reasons);
    if let Some(r) = exporter
        .cores
        .first()
        .and_then(|c| c.cluster.get())
        .and_then(|c| c.health_reason())
    {
        reasons.push(format!("\"{r}\""));
    }
    let silent = super::freshness::silent_streams(exporter, start_ns, now_ns);
    let mut streams = Vec::with_capacity(silent.len());
    for s in &silent {
        let (ex, mt, dt) = (
            s.venue.exchange(),
            s.venue.market_type_of(s.data_type),
            s.data_type.name(),
        );
        reasons.push(format!(
            "\"{ex} {mt} {dt} silent for {} s (threshold {} s, core {})\"",
            s.silent_ms / 1000,
            s.threshold_ms / 1000,
            s.core
        ));
        streams.push(format!(
            "{{\"exchange\":\"{ex}\",\"market_type\":\"{mt}\",\"data_type\":\"{dt}\",\"core\":{},\"silent_ms\":{},\"threshold_ms\":{}}}",
            s.core, s.silent_ms, s.threshold_ms
        ));
    }
    let (code, status) = if up == 0 {
        (StatusCode::SERVICE_UNAVAILABLE, "down")
    } else if planned > 0 && reasons.is_empty() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::OK, "degraded")
    };
    let body = format!(
        "{{\"status\":\"{status}\",\"reasons\":[{}],\"connections_up\":{up},\"connections_planned\":{planned},\"uptime_s\":{},\"silent_streams\":[{}],\"cores\":[{}]}}",
        reasons.join(","),
        now_ns.saturating_sub(start_ns) / 1_000_000_000,
        streams.join(","),
        cores.join(",")
    );
    (code, body)
}

/// The health listener stands in for MarketPrism's `:8087/health`, whose
/// scripts grep the body for `"status": "healthy"` (its words, with the
/// space): the same answer with `ok` / `degraded` / `down` said as
/// `healthy` / `degraded` / `unhealthy`. Status codes are unchanged.
pub fn in_marketprism_words(body: String) -> String {
    for (ours, theirs) in [
        ("{\"status\":\"ok\"", "{\"status\": \"healthy\""),
        ("{\"status\":\"degraded\"", "{\"status\": \"degraded\""),
        ("{\"status\":\"down\"", "{\"status\": \"unhealthy\""),
    ] {
        if let Some(rest) = body.strip_prefix(ours) {
            return format!("{theirs}{rest}");
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DataType, VenueId};
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn health_listener_speaks_marketprisms_words() {
        assert_eq!(
            in_marketprism_words("{\"status\":\"ok\",\"reasons\":[]}".into()),
            "{\"status\": \"healthy\",\"reasons\":[]}"
        );
        assert_eq!(
            in_marketprism_words("{\"status\":\"degraded\",\"x\":1}".into()),
            "{\"status\": \"degraded\",\"x\":1}"
        );
        assert_eq!(
            in_marketprism_words("{\"status\":\"down\"}".into()),
            "{\"status\": \"unhealthy\"}"
        );
    }

    #[test]
    fn health_reports_a_full_disk_as_degraded() {
        let a = Arc::new(CoreStats::new(0, 0));
        let b = Arc::new(CoreStats::new(1, 1));
        for c in [&a, &b] {
            c.venue(VenueId::BinanceSpot).connections_planned.set(1);
            c.venue(VenueId::BinanceSpot).connections_up.set(1);
        }
        let ex = Exporter {
            cores: Arc::new(vec![a.clone(), b.clone()]),
            venues: vec![VenueId::BinanceSpot],
            started: Instant::now(),
        };
        let (code, body) = health(&ex);
        assert_eq!(code, StatusCode::OK);
        assert!(
            body.starts_with("{\"status\":\"ok\",\"reasons\":[],"),
            "{body}"
        );
        b.sink_disk_full.set(1);
        b.sink_pending_records.set(42);
        let (code, body) = health(&ex);
        assert_eq!(code, StatusCode::OK);
        assert!(body.contains("\"status\":\"degraded\""), "{body}");
        assert!(
            body.contains("\"reasons\":[\"core 1: disk full, file writes paused and retried (42 records held in memory)\"]"),
            "{body}"
        );
        assert!(body.contains("\"core\":1,\"cpu\":1,\"connections_up\":1,\"connections_planned\":1,\"sink_disk_full\":true,\"sink_pending_records\":42"), "{body}");
        a.venue(VenueId::BinanceSpot).connections_up.set(0);
        let (_, body) = health(&ex);
        assert!(
            body.contains("\"reasons\":[\"1 of 2 connections down\",\"core 1: disk full"),
            "{body}"
        );
        b.venue(VenueId::BinanceSpot).connections_up.set(0);
        let (code, body) = health(&ex);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("\"status\":\"down\""), "{body}");
        let _: sonic_rs::Value = sonic_rs::from_str(&body).unwrap();
    }

    #[test]
    fn health_lists_streams_silent_past_their_threshold() {
        let c = Arc::new(CoreStats::new(0, 0));
        let v = c.venue(VenueId::BinanceSpot);
        v.connections_planned.set(1);
        v.connections_up.set(1);
        v.streams_planned.set(2);
        let start: u64 = 1_764_900_000_000_000_000;
        let s = 1_000_000_000;
        v.silent_after_ms[DataType::Trade.index()].set(120_000);
        v.last_record_ns[DataType::Trade.index()].set((start + 10 * s) as i64);
        // Expected, never received: silent since start.
        v.silent_after_ms[DataType::OrderBook.index()].set(63_000);
        let ex = Exporter {
            cores: Arc::new(vec![c.clone()]),
            venues: vec![VenueId::BinanceSpot],
            started: Instant::now(),
        };
        let (code, body) = health_at(&ex, start, start + 60 * s);
        assert_eq!(code, StatusCode::OK);
        assert_eq!(
            body,
            "{\"status\":\"ok\",\"reasons\":[],\"connections_up\":1,\"connections_planned\":1,\"uptime_s\":60,\"silent_streams\":[],\"cores\":[{\"core\":0,\"cpu\":0,\"connections_up\":1,\"connections_planned\":1,\"sink_disk_full\":false,\"sink_pending_records\":0}]}"
        );
        let (code, body) = health_at(&ex, start, start + 140 * s + s / 2);
        assert_eq!(code, StatusCode::OK);
        assert_eq!(
            body,
            "{\"status\":\"degraded\",\"reasons\":[\"binance spot trade silent for 130 s (threshold 120 s, core 0)\",\"binance spot orderbook silent for 140 s (threshold 63 s, core 0)\"],\
             \"connections_up\":1,\"connections_planned\":1,\"uptime_s\":140,\"silent_streams\":[\
             {\"exchange\":\"binance\",\"market_type\":\"spot\",\"data_type\":\"trade\",\"core\":0,\"silent_ms\":130500,\"threshold_ms\":120000},\
             {\"exchange\":\"binance\",\"market_type\":\"spot\",\"data_type\":\"orderbook\",\"core\":0,\"silent_ms\":140500,\"threshold_ms\":63000}],\
             \"cores\":[{\"core\":0,\"cpu\":0,\"connections_up\":1,\"connections_planned\":1,\"sink_disk_full\":false,\"sink_pending_records\":0}]}"
        );
        // A record arrives: the trade stream is no longer silent.
        v.last_record_ns[DataType::Trade.index()].set((start + 140 * s) as i64);
        let (_, body) = health_at(&ex, start, start + 140 * s + s / 2);
        assert!(
            body.contains("\"reasons\":[\"binance spot orderbook silent for 140 s"),
            "{body}"
        );
        let _: sonic_rs::Value = sonic_rs::from_str(&body).unwrap();
        // Nothing of the venue runs on the core (cluster membership: its
        // symbols are collected elsewhere): nothing there can be silent.
        v.streams_planned.set(0);
        let (_, body) = health_at(&ex, start, start + 140 * s + s / 2);
        assert!(body.contains("\"silent_streams\":[]"), "{body}");
    }
}
