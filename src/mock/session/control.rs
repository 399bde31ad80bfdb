//! The Binance control messages (`SUBSCRIBE`, `UNSUBSCRIBE`,
//! `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`/`GET_PROPERTY`) and their replies.

use sonic_rs::{JsonContainerTrait, JsonValueTrait};

use super::{parse_stream, Conn, StreamRef};
use crate::mock::binance::EventTemplate;
use crate::mock::stats::{bump, Bump};
use crate::mock::Shared;

fn error_reply(shared: &Shared, msg: &str, id: &str) -> String {
    shared.stats.control_rejected.add(1);
    format!("{{\"error\":{{\"code\":2,\"msg\":\"{msg}\"}},\"id\":{id}}}")
}

/// Answers one control message (`SUBSCRIBE`, `UNSUBSCRIBE`,
/// `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`/`GET_PROPERTY combined`), applying it
/// to the connection. Returns the JSON reply.
pub(crate) fn handle_control(shared: &Shared, conn: &Conn, text: &str) -> String {
    let v: sonic_rs::Value = match sonic_rs::from_str::<sonic_rs::Value>(text) {
        Ok(v) if v.is_object() => v,
        _ => {
            shared.stats.control_rejected.add(1);
            return "{\"code\":3,\"msg\":\"Invalid JSON: expected value at line 1 column 1\",\"id\":null}"
                .to_string();
        }
    };
    // Binance echoes the id; it must be an unsigned integer, a string or null.
    let id = match v.get("id") {
        None => "null".to_string(),
        Some(x) if x.is_null() || x.is_u64() || x.is_str() => {
            sonic_rs::to_string(x).unwrap_or_else(|_| "null".to_string())
        }
        Some(_) => return error_reply(shared, "Invalid request: invalid id", "null"),
    };
    let method = v.get("method").and_then(|m| m.as_str().map(str::to_string));
    if method.as_deref() == Some("SUBSCRIBE") {
        shared.stats.subscribe_requests.add(1);
    }
    let params: Vec<sonic_rs::Value> = match v.get("params") {
        None => Vec::new(),
        Some(p) => match p.as_array() {
            Some(a) => a.iter().cloned().collect(),
            None => return error_reply(shared, "Invalid request: params must be an array", &id),
        },
    };
    let Some(method) = method else {
        return error_reply(shared, "Invalid request: missing method", &id);
    };
    match method.as_str() {
        "SUBSCRIBE" | "UNSUBSCRIBE" => {
            let subscribe = method == "SUBSCRIBE";
            let mut refs = Vec::with_capacity(params.len());
            for p in &params {
                let name = p.as_str().unwrap_or("");
                match parse_stream(shared, conn.route, name) {
                    Some(r) => refs.push((name.to_string(), r)),
                    None => return error_reply(shared, "Invalid request: invalid stream", &id),
                }
            }
            for (name, r) in refs {
                if subscribe {
                    conn.subscribe_ref(shared, &name, r);
                } else {
                    match r {
                        StreamRef::Trade(i) => {
                            conn.subs.borrow_mut().retain(|s| s.tpl.symbol_index != i)
                        }
                        StreamRef::Feed(..) => {
                            let mut extra = conn.extra.borrow_mut();
                            if let Some(pos) = extra.iter().position(|s| s.name == name) {
                                let s = extra.remove(pos);
                                shared
                                    .venue_stats
                                    .with(conn.route.venue().config_key(), |c| {
                                        bump(&mut c.unsubscriptions, &s.symbol)
                                    });
                            }
                        }
                    }
                }
            }
            format!("{{\"result\":null,\"id\":{id}}}")
        }
        "LIST_SUBSCRIPTIONS" => {
            let mut list: Vec<String> = conn
                .subs
                .borrow()
                .iter()
                .map(|s| format!("\"{}\"", s.tpl.stream))
                .collect();
            list.extend(
                conn.extra
                    .borrow()
                    .iter()
                    .map(|s| format!("\"{}\"", s.name)),
            );
            format!("{{\"result\":[{}],\"id\":{id}}}", list.join(","))
        }
        "GET_PROPERTY" if params.len() == 1 && params[0].as_str() == Some("combined") => {
            format!("{{\"result\":{},\"id\":{id}}}", conn.combined.get())
        }
        "SET_PROPERTY"
            if params.len() == 2
                && params[0].as_str() == Some("combined")
                && params[1].as_bool().is_some() =>
        {
            let combined = params[1].as_bool().unwrap_or(false);
            conn.combined.set(combined);
            for s in conn.subs.borrow_mut().iter_mut() {
                if let Some(sym) = shared.opts.symbols.get(s.tpl.symbol_index) {
                    s.tpl = EventTemplate::new(s.tpl.symbol_index, sym, combined);
                }
            }
            format!("{{\"result\":null,\"id\":{id}}}")
        }
        "GET_PROPERTY" | "SET_PROPERTY" => {
            error_reply(shared, "Invalid request: unknown property", &id)
        }
        _ => error_reply(shared, "Invalid request: unknown method", &id),
    }
}
