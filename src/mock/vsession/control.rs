//! Each venue's answers to client text messages (subscribe, unsubscribe,
//! ping, test, heartbeat set-up), applied to the connection.

use std::time::{Duration, Instant};

use sonic_rs::{JsonContainerTrait, JsonValueTrait};

use super::VConn;
use crate::mock::bybit::{self, json_escape, Cat};
use crate::mock::feed::FeedSub;
use crate::mock::venues::Chan;
use crate::mock::{deribit, okx, Shared};
use crate::model::VenueId;

fn str_of(v: &sonic_rs::Value, k: &str) -> Option<String> {
    v.get(k).and_then(|x| x.as_str().map(str::to_string))
}

// ----------------------------------------------------------------- OKX

pub(super) fn okx_control(shared: &Shared, conn: &VConn, text: &str) -> Vec<String> {
    let key = conn.proto.stats_key();
    if text == "ping" {
        shared.venue_stats.with(key, |c| c.pings_received += 1);
        return vec!["pong".to_string()];
    }
    let cid = &conn.conn_id;
    let invalid = |id: &str| {
        conn.reject(shared);
        format!(
            "{{{id}\"event\":\"error\",\"code\":\"60012\",\"msg\":\"Invalid request: {}\",\"connId\":\"{cid}\"}}",
            json_escape(text)
        )
    };
    let v: sonic_rs::Value = match sonic_rs::from_str(text) {
        Ok(v) => v,
        Err(_) => return vec![invalid("")],
    };
    // OKX echoes `id` (a string) when given.
    let id = match v.get("id").and_then(|x| x.as_str()) {
        Some(s) => format!("\"id\":\"{}\",", json_escape(s)),
        None => String::new(),
    };
    let op = str_of(&v, "op").unwrap_or_default();
    let Some(args) = v.get("args").and_then(|a| a.as_array()) else {
        return vec![invalid(&id)];
    };
    if (op != "subscribe" && op != "unsubscribe") || args.is_empty() {
        return vec![invalid(&id)];
    }
    let mut out = Vec::with_capacity(args.len());
    for a in args.iter() {
        let channel = str_of(a, "channel").unwrap_or_default();
        let inst_id = str_of(a, "instId");
        let inst_type = str_of(a, "instType");
        let echo = match (&inst_id, &inst_type) {
            (Some(i), _) => format!(
                "{{\"channel\":\"{}\",\"instId\":\"{}\"}}",
                json_escape(&channel),
                json_escape(i)
            ),
            (None, Some(t)) => format!(
                "{{\"channel\":\"{}\",\"instType\":\"{}\"}}",
                json_escape(&channel),
                json_escape(t)
            ),
            (None, None) => format!("{{\"channel\":\"{}\"}}", json_escape(&channel)),
        };
        let Some((venue, chan, idx)) = okx::parse_arg(
            &channel,
            inst_id.as_deref(),
            inst_type.as_deref(),
            shared.opts.okx_extra_pairs,
        ) else {
            conn.reject(shared);
            out.push(format!(
                "{{{id}\"event\":\"error\",\"code\":\"60018\",\"msg\":\"Wrong URL or channel:{},instId:{} doesn't exist. Please use the correct URL, channel and parameters referring to API document.\",\"connId\":\"{cid}\"}}",
                json_escape(&channel),
                json_escape(inst_id.as_deref().or(inst_type.as_deref()).unwrap_or(""))
            ));
            continue;
        };
        let target = if chan == Some(Chan::Liquidation) {
            "SWAP".to_string()
        } else {
            okx::instrument(idx).map_or("", |i| i.inst_id).to_string()
        };
        let name = format!("{channel}:{target}");
        if op == "subscribe" {
            conn.add(shared, FeedSub::new(shared, venue, chan, idx, name, target));
        } else {
            conn.remove(shared, &name);
        }
        out.push(format!(
            "{{{id}\"event\":\"{op}\",\"arg\":{echo},\"connId\":\"{cid}\"}}"
        ));
    }
    out
}

// ----------------------------------------------------------------- Bybit

pub(super) fn bybit_control(shared: &Shared, conn: &VConn, cat: Cat, text: &str) -> Vec<String> {
    let cid = &conn.conn_id;
    let v: sonic_rs::Value = match sonic_rs::from_str(text) {
        Ok(v) => v,
        Err(_) => {
            conn.reject(shared);
            return vec![bybit::ack(cat, false, "error:Invalid json", cid, "", "")];
        }
    };
    let req_id = match v.get("req_id") {
        Some(x) if x.is_str() => x.as_str().unwrap_or("").to_string(),
        Some(x) if x.is_number() => sonic_rs::to_string(x).unwrap_or_default(),
        _ => String::new(),
    };
    let op = str_of(&v, "op").unwrap_or_default();
    match op.as_str() {
        "ping" => {
            shared
                .venue_stats
                .with(conn.proto.stats_key(), |c| c.pings_received += 1);
            vec![bybit::pong(cat, cid, &req_id)]
        }
        "subscribe" | "unsubscribe" => {
            let topics: Vec<String> = match v.get("args").and_then(|a| a.as_array()) {
                Some(a) => a
                    .iter()
                    .map(|t| t.as_str().unwrap_or("").to_string())
                    .collect(),
                None => Vec::new(),
            };
            let fail = |msg: String| {
                conn.reject(shared);
                vec![bybit::ack(cat, false, &msg, cid, &req_id, &op)]
            };
            if topics.is_empty() {
                return fail("error:args is empty".to_string());
            }
            if cat == Cat::Spot && topics.len() > 10 {
                return fail(format!("error:args size >10,size:{}", topics.len()));
            }
            let mut parsed = Vec::with_capacity(topics.len());
            for t in &topics {
                match bybit::parse_topic(cat, t) {
                    Some(p) => parsed.push((t, p)),
                    None => return fail(format!("error:handler not found,topic:{t}")),
                }
            }
            let venue = match cat {
                Cat::Spot => VenueId::BybitSpot,
                Cat::Linear => VenueId::BybitLinear,
            };
            if op == "subscribe" {
                if let Some((t, _)) = parsed
                    .iter()
                    .find(|(t, _)| conn.subs.borrow().iter().any(|s| &s.name == *t))
                {
                    return fail(format!("error:already subscribed,topic:{t}"));
                }
                for (t, (chan, idx)) in parsed {
                    let sym = bybit::SYMBOLS[idx].0.to_string();
                    conn.add(
                        shared,
                        FeedSub::new(shared, venue, chan, idx, t.clone(), sym),
                    );
                }
            } else {
                for (t, _) in parsed {
                    conn.remove(shared, t);
                }
            }
            vec![bybit::ack(cat, true, "", cid, &req_id, &op)]
        }
        _ => {
            conn.reject(shared);
            vec![bybit::ack(
                cat,
                false,
                &format!("error:unsupported op:{op}"),
                cid,
                &req_id,
                &op,
            )]
        }
    }
}

// ----------------------------------------------------------------- Deribit

pub(super) fn deribit_control(shared: &Shared, conn: &VConn, text: &str) -> Vec<String> {
    let v: sonic_rs::Value = match sonic_rs::from_str::<sonic_rs::Value>(text) {
        Ok(v) if v.is_object() => v,
        _ => {
            conn.reject(shared);
            return vec![deribit::error("null", -32700, "Parse error")];
        }
    };
    let id = match v.get("id") {
        Some(x) if x.is_number() || x.is_str() => {
            sonic_rs::to_string(x).unwrap_or_else(|_| "null".to_string())
        }
        _ => "null".to_string(),
    };
    let method = str_of(&v, "method").unwrap_or_default();
    let params = v.get("params");
    let invalid = || {
        conn.reject(shared);
        vec![deribit::error(&id, -32602, "Invalid params")]
    };
    match method.as_str() {
        "public/subscribe" | "public/unsubscribe" => {
            let Some(chs) = params
                .and_then(|p| p.get("channels"))
                .and_then(|c| c.as_array())
            else {
                return invalid();
            };
            let mut done = Vec::new();
            for c in chs.iter() {
                let Some(name) = c.as_str() else { continue };
                let Some((chan, idx)) = deribit::parse_channel(name) else {
                    conn.reject(shared);
                    continue;
                };
                if method == "public/subscribe" {
                    let sym = if chan == Some(Chan::Volatility) {
                        deribit::VOL_INDICES[idx]
                    } else {
                        deribit::INSTRUMENTS[idx]
                    };
                    conn.add(
                        shared,
                        FeedSub::new(
                            shared,
                            VenueId::DeribitDerivatives,
                            chan,
                            idx,
                            name.to_string(),
                            sym.to_string(),
                        ),
                    );
                    done.push(format!("\"{name}\""));
                } else if conn.remove(shared, name) {
                    done.push(format!("\"{name}\""));
                }
            }
            vec![deribit::result(&id, &format!("[{}]", done.join(",")))]
        }
        "public/unsubscribe_all" => {
            let names: Vec<String> = conn.subs.borrow().iter().map(|s| s.name.clone()).collect();
            for n in names {
                conn.remove(shared, &n);
            }
            vec![deribit::result(&id, "\"ok\"")]
        }
        "public/set_heartbeat" => {
            // Deribit requires >= 10 s; the mock accepts shorter intervals
            // (down to 100 ms) so tests need not wait.
            let secs = params
                .and_then(|p| p.get("interval"))
                .and_then(|x| x.as_f64())
                .filter(|s| *s >= 0.1 && *s <= 86_400.0);
            let Some(secs) = secs else {
                return invalid();
            };
            let d = Duration::from_secs_f64(secs);
            conn.hb_interval.set(Some(d));
            conn.hb_next.set(Instant::now() + d);
            conn.hb_pending.set(false);
            conn.notify.notify();
            vec![deribit::result(&id, "\"ok\"")]
        }
        "public/disable_heartbeat" => {
            conn.hb_interval.set(None);
            conn.hb_pending.set(false);
            vec![deribit::result(&id, "\"ok\"")]
        }
        "public/test" => {
            shared.venue_stats.with(conn.proto.stats_key(), |c| {
                c.pings_received += 1;
                if conn.hb_pending.get() {
                    c.pongs_received += 1;
                }
            });
            conn.hb_pending.set(false);
            vec![deribit::result(&id, "{\"version\":\"1.2.26\"}")]
        }
        "public/get_time" => vec![deribit::result(&id, &shared.now_ms().to_string())],
        _ => {
            conn.reject(shared);
            vec![deribit::error(&id, -32601, "Method not found")]
        }
    }
}
