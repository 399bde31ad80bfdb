//! Which transport each data type takes to NATS, decided at connect from the
//! streams the server already has, before anything is published.
//!
//! A JetStream publish to a subject no stream captures is answered "no
//! responders" and can never be stored; a plain PUB to it reaches only live
//! core subscribers. So for every subject pattern the plan publishes
//! (`{data_type}.{exchange}.{market_type}.>`) we find the stream capturing it:
//! captured types are published with acks, the others go over core NATS (where
//! configured, or, by default, for the high-rate types MarketPrism itself sends
//! that way), get their subjects added to the configured stream
//! (`create_stream = true`), or are a configuration error.
//!
//! An operator's stream is never reset: the only change ever made to an
//! existing stream is adding missing subjects (see [`super::jsapi`]).

use super::config::{CoreNats, NatsSinkConfig};
use std::cell::RefCell;
use std::fmt;

/// The types MarketPrism's own collector publishes over core NATS (and our
/// other high-rate types). With `core_nats_data_types = "auto"` they take core
/// NATS when an existing stream does not capture them, so a stream sized for
/// low-rate data is not flooded (its limits would evict that data).
pub const HIGH_RATE: [&str; 4] = ["trade", "orderbook", "orderbook_delta", "ticker"];

/// True if `subject` (no wildcards) matches the NATS subject filter `filter`.
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut f = filter.split('.');
    let mut s = subject.split('.');
    loop {
        match (f.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// True if every subject matching `pattern` (which may hold wildcards) also
/// matches `filter`: the filter captures the whole pattern.
pub fn covers(filter: &str, pattern: &str) -> bool {
    let mut f = filter.split('.');
    let mut p = pattern.split('.');
    loop {
        match (f.next(), p.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(t)) if t != ">" => {}
            (Some(a), Some(b)) if a == b && a != "*" && a != ">" => {}
            (Some("*"), Some("*")) => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A stream as the server reported it: its name and subject filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSubjects {
    pub name: String,
    pub subjects: Vec<String>,
}

/// What the plan publishes for one data type: one pattern per venue,
/// `{data_type}.{exchange}.{market_type}.>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub data_type: String,
    pub patterns: Vec<String>,
}

/// How one data type reaches NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Published with acks; the stream(s) that store it.
    JetStream(Vec<String>),
    /// Plain PUB: no ack, no resend, stored by no stream.
    Core,
    /// Nothing can carry it: a configuration error (see `Resolution::errors`).
    Unroutable,
}

/// One data type's transport and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRoute {
    pub data_type: String,
    pub patterns: Vec<String>,
    pub transport: Transport,
    pub why: String,
}

/// The one change `run` makes to the configured stream, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    None,
    /// The stream is absent: created with these subjects and our settings.
    Create(Vec<String>),
    /// The stream exists: these subjects are added, every other setting kept.
    AddSubjects(Vec<String>),
}

/// The transports of every data type, and the stream change they need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub stream: String,
    pub stream_exists: bool,
    pub types: Vec<TypeRoute>,
    pub change: Change,
    /// Configuration errors, one line per data type, each naming both fixes.
    pub errors: Vec<String>,
    /// The server's streams after the change (what a subject not in the plan,
    /// e.g. a spilled record of an earlier configuration, is checked against).
    pub streams: Vec<StreamSubjects>,
}

fn capturing<'a>(streams: &'a [StreamSubjects], pattern: &str) -> Option<&'a str> {
    streams
        .iter()
        .find(|s| s.subjects.iter().any(|f| covers(f, pattern)))
        .map(|s| s.name.as_str())
}

/// Decides every data type's transport from the server's `streams`.
pub fn resolve(cfg: &NatsSinkConfig, wants: &[Want], streams: &[StreamSubjects]) -> Resolution {
    let name = cfg.stream.as_str();
    let exists = streams.iter().any(|s| s.name == name);
    let mut types = Vec::with_capacity(wants.len());
    let mut added: Vec<String> = Vec::new();
    let mut created: Vec<String> = Vec::new();
    let mut errors = Vec::new();
    for w in wants {
        let dt = w.data_type.as_str();
        let route = |transport, why: String| TypeRoute {
            data_type: dt.to_string(),
            patterns: w.patterns.clone(),
            transport,
            why,
        };
        if !cfg.jetstream {
            types.push(route(Transport::Core, "sink.nats.jetstream = false".into()));
            continue;
        }
        if let CoreNats::List(l) = &cfg.core_nats_data_types {
            if l.iter().any(|t| t == dt) {
                types.push(route(
                    Transport::Core,
                    "listed in sink.nats.core_nats_data_types".into(),
                ));
                continue;
            }
        }
        let caught: Vec<Option<&str>> = w.patterns.iter().map(|p| capturing(streams, p)).collect();
        let missing: Vec<&String> = w
            .patterns
            .iter()
            .zip(&caught)
            .filter(|(_, c)| c.is_none())
            .map(|(p, _)| p)
            .collect();
        let mut holders: Vec<String> = caught.iter().flatten().map(|s| s.to_string()).collect();
        holders.sort();
        holders.dedup();
        if missing.is_empty() {
            let why = format!("captured by stream {}", holders.join(", "));
            types.push(route(Transport::JetStream(holders), why));
            continue;
        }
        let auto = matches!(cfg.core_nats_data_types, CoreNats::Auto);
        if !exists {
            if cfg.create_stream {
                // As before: one `{type}.>` subject; only the uncaptured
                // patterns where another stream already holds some of them.
                if holders.is_empty() {
                    created.push(format!("{dt}.>"));
                } else {
                    created.extend(missing.iter().map(|p| p.to_string()));
                }
                if !holders.iter().any(|h| h == name) {
                    holders.push(name.to_string());
                }
                let why = format!("stream {name} is created with `{dt}.>`");
                types.push(route(Transport::JetStream(holders), why));
            } else if auto && (HIGH_RATE.contains(&dt) || dt == "gap") {
                types.push(route(
                    Transport::Core,
                    format!("no stream captures it and stream {name} does not exist (auto)"),
                ));
            } else {
                errors.push(unroutable(dt, &missing, name, false));
                types.push(route(Transport::Unroutable, "no stream captures it".into()));
            }
            continue;
        }
        if auto && HIGH_RATE.contains(&dt) {
            types.push(route(
                Transport::Core,
                format!(
                    "stream {name} does not capture it; high-rate types go over core NATS, \
                     as MarketPrism's collector sends them (core_nats_data_types = \"auto\")"
                ),
            ));
        } else if cfg.create_stream {
            added.extend(missing.iter().map(|p| p.to_string()));
            if !holders.iter().any(|h| h == name) {
                holders.push(name.to_string());
            }
            let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            let why = format!("subjects {} added to stream {name}", list.join(", "));
            types.push(route(Transport::JetStream(holders), why));
        } else if auto && dt == "gap" {
            // Loss reports must not stop a start; they still reach live subscribers.
            types.push(route(
                Transport::Core,
                format!("stream {name} does not capture it and create_stream = false (auto)"),
            ));
        } else {
            errors.push(unroutable(dt, &missing, name, true));
            types.push(route(Transport::Unroutable, "no stream captures it".into()));
        }
    }
    let change = if !created.is_empty() {
        created.sort();
        created.dedup();
        Change::Create(created)
    } else if !added.is_empty() {
        added.sort();
        added.dedup();
        Change::AddSubjects(added)
    } else {
        Change::None
    };
    let mut after = streams.to_vec();
    match &change {
        Change::None => {}
        Change::Create(s) => after.push(StreamSubjects {
            name: name.to_string(),
            subjects: s.clone(),
        }),
        Change::AddSubjects(s) => {
            if let Some(st) = after.iter_mut().find(|x| x.name == name) {
                st.subjects.extend(s.iter().cloned());
            }
        }
    }
    Resolution {
        stream: name.to_string(),
        stream_exists: exists,
        types,
        change,
        errors,
        streams: after,
    }
}

fn unroutable(dt: &str, missing: &[&String], stream: &str, exists: bool) -> String {
    let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
    format!(
        "data type `{dt}`: no JetStream stream captures {} ({}), and sink.nats.create_stream = false. \
         Fix: add these subjects to stream {stream} (or set sink.nats.create_stream = true to let \
         marketprism add them), or publish `{dt}` over core NATS by listing it in \
         sink.nats.core_nats_data_types",
        list.join(", "),
        if exists {
            format!("stream {stream} exists without them")
        } else {
            format!("stream {stream} does not exist")
        }
    )
}

impl fmt::Display for Resolution {
    /// The dry run `check-config --connect` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "NATS stream {}: {}",
            self.stream,
            if self.stream_exists {
                "exists"
            } else {
                "absent"
            }
        )?;
        for t in &self.types {
            let how = match &t.transport {
                Transport::JetStream(s) => format!("JetStream (stream {})", s.join(", ")),
                Transport::Core => "core NATS".to_string(),
                Transport::Unroutable => "NONE (configuration error)".to_string(),
            };
            writeln!(
                f,
                "  {:<17} {:<34} {}: {}",
                t.data_type,
                t.patterns.join(" "),
                how,
                t.why
            )?;
        }
        match &self.change {
            Change::None => writeln!(f, "stream change: none"),
            Change::Create(s) => {
                writeln!(
                    f,
                    "stream change: create {} with {}",
                    self.stream,
                    s.join(" ")
                )
            }
            Change::AddSubjects(s) => writeln!(
                f,
                "stream change: add subjects {} to {} (every other setting kept)",
                s.join(" "),
                self.stream
            ),
        }
    }
}

/// What the core's message sink does with a record, by its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// JetStream publish with an ack.
    Ack,
    /// Core NATS publish.
    Plain,
    /// No transport can carry it: set aside in the dead-letter store.
    DeadLetter,
    /// Not resolved yet (not connected since start): keep it (spill).
    Unknown,
}

/// One core's routing table, written by its publisher at each connect and
/// read per message by its message sink (same core: a `RefCell`, no lock).
#[derive(Default)]
pub struct Routes {
    table: RefCell<Option<Table>>,
}

struct Table {
    types: Vec<(String, Route)>,
    streams: Vec<StreamSubjects>,
}

impl Routes {
    pub fn set(&self, r: &Resolution) {
        let types = r
            .types
            .iter()
            .map(|t| {
                let route = match t.transport {
                    Transport::JetStream(_) => Route::Ack,
                    Transport::Core => Route::Plain,
                    Transport::Unroutable => Route::DeadLetter,
                };
                (t.data_type.clone(), route)
            })
            .collect();
        *self.table.borrow_mut() = Some(Table {
            types,
            streams: r.streams.clone(),
        });
    }

    pub fn is_resolved(&self) -> bool {
        self.table.borrow().is_some()
    }

    /// The route of one subject: by its data type (first token) when the plan
    /// has that type, otherwise (a spilled record of an earlier configuration)
    /// by whether any stream captures the subject. No allocation.
    pub fn route(&self, subject: &str) -> Route {
        let t = self.table.borrow();
        let Some(t) = t.as_ref() else {
            return Route::Unknown;
        };
        // The first token by a byte loop: it is a few bytes long, and
        // `split('.')` (a memchr searcher per call) showed in the profile.
        let b = subject.as_bytes();
        let dt = &b[..b.iter().position(|&c| c == b'.').unwrap_or(b.len())];
        if let Some((_, r)) = t
            .types
            .iter()
            .find(|(d, _)| crate::swar::same(d.as_bytes(), dt))
        {
            return *r;
        }
        let captured = t
            .streams
            .iter()
            .any(|s| s.subjects.iter().any(|f| subject_matches(f, subject)));
        if captured {
            Route::Ack
        } else {
            Route::DeadLetter
        }
    }

    /// Data types nothing can carry (for the gauge).
    pub fn unroutable(&self) -> usize {
        self.table.borrow().as_ref().map_or(0, |t| {
            t.types
                .iter()
                .filter(|(_, r)| *r == Route::DeadLetter)
                .count()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> NatsSinkConfig {
        toml::from_str(extra).expect("config")
    }

    fn want(dt: &str, venues: &[&str]) -> Want {
        Want {
            data_type: dt.into(),
            patterns: venues.iter().map(|v| format!("{dt}.{v}.>")).collect(),
        }
    }

    /// MarketPrism's broker layout: six low-rate types, per exchange.
    fn marketprism_stream() -> StreamSubjects {
        let mut subjects = Vec::new();
        for dt in [
            "funding_rate",
            "open_interest",
            "liquidation",
            "volatility_index",
            "lsr_top_position",
            "lsr_all_account",
        ] {
            for ex in ["binance", "okx", "deribit"] {
                subjects.push(format!("{dt}.{ex}.>"));
            }
        }
        StreamSubjects {
            name: "MARKET_DATA".into(),
            subjects,
        }
    }

    #[test]
    fn matching_and_covering() {
        assert!(subject_matches("trade.>", "trade.binance.spot.BTC-USDT"));
        assert!(subject_matches("trade.*.spot.*", "trade.okx.spot.BTC-USDT"));
        assert!(!subject_matches("trade.*", "trade.okx.spot"));
        assert!(!subject_matches("trade.>", "trade"));
        assert!(subject_matches("a.b", "a.b"));
        assert!(covers(
            "funding_rate.binance.>",
            "funding_rate.binance.perpetual.>"
        ));
        assert!(covers(">", "x.y.>"));
        assert!(covers("trade.*.spot.>", "trade.binance.spot.>"));
        assert!(!covers(
            "trade.binance.spot.BTC-USDT",
            "trade.binance.spot.>"
        ));
        assert!(!covers("trade.*", "trade.>"));
        assert!(!covers("trade.binance.>", "trade.*.spot.>"));
        assert!(!covers(
            "funding_rate.binance.>",
            "funding_rate.bybit.perpetual.>"
        ));
    }

    #[test]
    fn marketprism_stream_default_config_routes_high_rate_over_core_and_adds_the_rest() {
        let c = cfg("");
        let wants = [
            want("trade", &["binance.spot", "okx.perpetual"]),
            want("orderbook", &["binance.spot"]),
            want("funding_rate", &["binance.perpetual", "bybit.perpetual"]),
            want("open_interest", &["okx.perpetual"]),
            want("gap", &["binance.spot", "okx.perpetual"]),
        ];
        let r = resolve(&c, &wants, &[marketprism_stream()]);
        let t: Vec<(&str, &Transport)> = r
            .types
            .iter()
            .map(|t| (t.data_type.as_str(), &t.transport))
            .collect();
        let md = || Transport::JetStream(vec!["MARKET_DATA".into()]);
        assert_eq!(
            t,
            vec![
                ("trade", &Transport::Core),
                ("orderbook", &Transport::Core),
                ("funding_rate", &md()),
                ("open_interest", &md()),
                ("gap", &md()),
            ]
        );
        assert_eq!(
            r.change,
            Change::AddSubjects(vec![
                "funding_rate.bybit.perpetual.>".into(),
                "gap.binance.spot.>".into(),
                "gap.okx.perpetual.>".into(),
            ])
        );
        assert!(r.errors.is_empty());
        let routes = Routes::default();
        assert_eq!(routes.route("trade.x.y.z"), Route::Unknown);
        routes.set(&r);
        assert_eq!(routes.route("trade.binance.spot.BTC-USDT"), Route::Plain);
        assert_eq!(
            routes.route("funding_rate.bybit.perpetual.BTC-USDT"),
            Route::Ack
        );
        // Types the plan does not have: by the streams (after the change).
        assert_eq!(
            routes.route("liquidation.okx.perpetual.BTC-USDT"),
            Route::Ack
        );
        assert_eq!(
            routes.route("liquidation.bybit.perpetual.BTC-USDT"),
            Route::DeadLetter
        );
    }

    #[test]
    fn create_stream_false_names_the_type_and_both_fixes() {
        let c = cfg("create_stream = false");
        let wants = [
            want("trade", &["binance.spot"]),
            want("funding_rate", &["bybit.perpetual"]),
        ];
        let r = resolve(&c, &wants, &[marketprism_stream()]);
        assert_eq!(r.types[0].transport, Transport::Core);
        assert_eq!(r.types[1].transport, Transport::Unroutable);
        assert_eq!(r.change, Change::None);
        assert_eq!(r.errors.len(), 1);
        let e = &r.errors[0];
        assert!(e.contains("`funding_rate`"), "{e}");
        assert!(e.contains("funding_rate.bybit.perpetual.>"), "{e}");
        assert!(e.contains("create_stream"), "{e}");
        assert!(e.contains("core_nats_data_types"), "{e}");
        let routes = Routes::default();
        routes.set(&r);
        assert_eq!(routes.unroutable(), 1);
        assert_eq!(
            routes.route("funding_rate.bybit.perpetual.X"),
            Route::DeadLetter
        );
    }

    #[test]
    fn explicit_empty_core_list_adds_high_rate_subjects_too() {
        let c = cfg("core_nats_data_types = []");
        let r = resolve(
            &c,
            &[want("trade", &["binance.spot"])],
            &[marketprism_stream()],
        );
        assert_eq!(
            r.types[0].transport,
            Transport::JetStream(vec!["MARKET_DATA".into()])
        );
        assert_eq!(
            r.change,
            Change::AddSubjects(vec!["trade.binance.spot.>".into()])
        );
        let c = cfg("core_nats_data_types = []\ncreate_stream = false");
        let r = resolve(
            &c,
            &[want("trade", &["binance.spot"])],
            &[marketprism_stream()],
        );
        assert_eq!(r.types[0].transport, Transport::Unroutable);
    }

    #[test]
    fn absent_stream_is_created_as_before_with_every_acked_type() {
        let c = cfg("core_nats_data_types = [\"orderbook\"]");
        let wants = [
            want("trade", &["binance.spot"]),
            want("orderbook", &["binance.spot"]),
            want("gap", &["binance.spot"]),
        ];
        let r = resolve(&c, &wants, &[]);
        assert!(!r.stream_exists);
        assert_eq!(
            r.change,
            Change::Create(vec!["gap.>".into(), "trade.>".into()])
        );
        assert_eq!(r.types[1].transport, Transport::Core);
        let routes = Routes::default();
        routes.set(&r);
        assert_eq!(routes.route("trade.binance.spot.BTC-USDT"), Route::Ack);
        assert_eq!(
            routes.route("orderbook.binance.spot.BTC-USDT"),
            Route::Plain
        );
        // A spilled record of a type this configuration dropped.
        assert_eq!(
            routes.route("funding_rate.okx.perpetual.BTC-USDT"),
            Route::DeadLetter
        );
    }

    #[test]
    fn everything_captured_changes_nothing_and_jetstream_off_is_all_core() {
        let all = StreamSubjects {
            name: "MARKET_DATA".into(),
            subjects: vec![">".into()],
        };
        let r = resolve(&cfg(""), &[want("trade", &["binance.spot"])], &[all]);
        assert_eq!(r.change, Change::None);
        assert_eq!(
            r.types[0].transport,
            Transport::JetStream(vec!["MARKET_DATA".into()])
        );
        let r = resolve(
            &cfg("jetstream = false"),
            &[want("trade", &["binance.spot"])],
            &[],
        );
        assert_eq!(r.types[0].transport, Transport::Core);
        assert_eq!(r.change, Change::None);
    }
}
