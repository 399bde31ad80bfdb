//! OpenMetrics / Prometheus text → flat samples.
//!
//! Tolerant by design: comment lines (`# HELP`, `# TYPE`, `# UNIT`, `# EOF`)
//! and blank lines are skipped, a line that does not parse is dropped (never a
//! panic), timestamps and exemplars after the value are ignored.

use std::collections::BTreeMap;

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// Parses a whole exposition; unparsable lines are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

/// Parses one line; `None` for comments, blanks and malformed lines.
pub fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim_start();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() && is_name_byte(bytes[i], i == 0) {
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let name = &line[..i];
    let mut labels = BTreeMap::new();
    let mut rest = &line[i..];
    if let Some(after) = rest.strip_prefix('{') {
        let (l, r) = parse_labels(after)?;
        labels = l;
        rest = r;
    }
    // At least one space between the name/labels and the value.
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let value = parse_value(rest.split_whitespace().next()?)?;
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

fn is_name_byte(b: u8, first: bool) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':' || (!first && b.is_ascii_digit())
}

/// Parses `k="v",k2="v2"}` (the `{` already consumed); returns the labels and
/// the text after `}`.
fn parse_labels(mut s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start();
        if let Some(r) = s.strip_prefix('}') {
            return Some((labels, r));
        }
        let key_len = s
            .bytes()
            .enumerate()
            .take_while(|&(i, b)| is_name_byte(b, i == 0) && b != b':')
            .count();
        if key_len == 0 {
            return None;
        }
        let key = &s[..key_len];
        s = s[key_len..].trim_start().strip_prefix('=')?;
        s = s.trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (idx, c) = chars.next()?;
            match c {
                '"' => break idx,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    other => {
                        // Unknown escape: keep it as written.
                        value.push('\\');
                        value.push(other);
                    }
                },
                c => value.push(c),
            }
        };
        labels.insert(key.to_string(), value);
        s = s[end + 1..].trim_start();
        if let Some(r) = s.strip_prefix(',') {
            s = r;
        } else if !s.starts_with('}') {
            return None;
        }
    }
}

/// A sample value: a float, `+Inf`/`-Inf`/`Inf`, `NaN`.
pub fn parse_value(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => v.parse::<f64>().ok(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A hand-written exposition in the collector's shape: counters with
    /// several label sets, gauges, a histogram (label order as
    /// prometheus-client writes it: `le` first), process gauges without
    /// labels, and a label value with escapes.
    pub(crate) const FIXTURE: &str = r#"# HELP marketprism_messages_received WebSocket frames received, by the data type of the connection.
# TYPE marketprism_messages_received counter
marketprism_messages_received_total{exchange="binance",market_type="spot",data_type="trade",core="0"} 123
marketprism_messages_received_total{exchange="binance",market_type="spot",data_type="mixed",core="0"} 7
marketprism_messages_received_total{exchange="binance",market_type="spot",data_type="trade",core="1"} 4.5e3
# HELP marketprism_malformed_frames Frames rejected and skipped, by reason.
# TYPE marketprism_malformed_frames counter
marketprism_malformed_frames_total{exchange="binance",market_type="spot",reason="bad_json",core="0"} 2
marketprism_malformed_frames_total{exchange="binance",market_type="spot",reason="say \"hi\"\\there\nnext",core="1"} 1
# TYPE marketprism_websocket_connected gauge
marketprism_websocket_connected{exchange="binance",market_type="spot",core="0"} 1
marketprism_websocket_connected{exchange="binance",market_type="spot",core="1"} 0
# HELP marketprism_receive_to_written_seconds Latency from frame receive to sink write, per record.
# TYPE marketprism_receive_to_written_seconds histogram
marketprism_receive_to_written_seconds_sum{core="0"} 0.0123
marketprism_receive_to_written_seconds_count{core="0"} 10
marketprism_receive_to_written_seconds_bucket{le="0.000001",core="0"} 0
marketprism_receive_to_written_seconds_bucket{le="0.005",core="0"} 9
marketprism_receive_to_written_seconds_bucket{core="0",le="0.01"} 10
marketprism_receive_to_written_seconds_bucket{le="+Inf",core="0"} 10
# HELP marketprism_process_rss_bytes Resident set size.
# TYPE marketprism_process_rss_bytes gauge
marketprism_process_rss_bytes 52428800
marketprism_uptime_seconds 3723 1700000000
this line is { not a sample
marketprism_bad_value{core="0"} twelve
marketprism_unterminated{core="0 5
# EOF
"#;

    #[test]
    fn parses_realistic_exposition() {
        let s = parse(FIXTURE);
        assert_eq!(s.len(), 15, "{s:#?}");
        assert_eq!(s[0].name, "marketprism_messages_received_total");
        assert_eq!(s[0].label("exchange"), Some("binance"));
        assert_eq!(s[0].label("market_type"), Some("spot"));
        assert_eq!(s[0].label("data_type"), Some("trade"));
        assert_eq!(s[0].label("core"), Some("0"));
        assert_eq!(s[0].value, 123.0);
        assert_eq!(s[2].value, 4500.0);
        assert_eq!(s[4].label("reason"), Some("say \"hi\"\\there\nnext"));
        assert_eq!(s[4].label("core"), Some("1"));
        assert_eq!(s[7].name, "marketprism_receive_to_written_seconds_sum");
        assert_eq!(s[7].value, 0.0123);
        assert_eq!(s[9].label("le"), Some("0.000001"));
        assert_eq!(s[10].label("le"), Some("0.005"));
        assert_eq!(s[11].label("le"), Some("0.01"));
        assert_eq!(s[11].label("core"), Some("0"));
        let inf = &s[12];
        assert_eq!(inf.name, "marketprism_receive_to_written_seconds_bucket");
        assert_eq!(inf.label("le"), Some("+Inf"));
        assert_eq!(parse_value(inf.label("le").unwrap()), Some(f64::INFINITY));
        assert_eq!(inf.value, 10.0);
        assert_eq!(s[13].name, "marketprism_process_rss_bytes");
        assert!(s[13].labels.is_empty());
        assert_eq!(s[13].value, 52428800.0);
        // A timestamp after the value is ignored.
        assert_eq!(s[14].name, "marketprism_uptime_seconds");
        assert_eq!(s[14].value, 3723.0);
    }

    #[test]
    fn odd_lines_never_panic() {
        for l in [
            "",
            "#",
            "{",
            "x{",
            "x{a",
            "x{a=",
            "x{a=\"",
            "x{a=\"\\",
            "x{a=\"v\"",
            "x{a=\"v\"}",
            "x{a=\"v\"} ",
            "x 1 # {trace_id=\"a\"} 1",
            "x{,} 1",
            "x{a=\"é\\é\"} 2",
            "9x 1",
            "x +Inf",
            "x -Inf",
            "x NaN",
        ] {
            let _ = parse_line(l);
        }
        assert_eq!(parse_line("x 1 # {trace_id=\"a\"} 1").unwrap().value, 1.0);
        assert_eq!(parse_line("x +Inf").unwrap().value, f64::INFINITY);
        assert!(parse_line("x NaN").unwrap().value.is_nan());
        assert_eq!(
            parse_line("x{a=\"é\\é\"} 2").unwrap().label("a"),
            Some("é\\é")
        );
        assert!(parse_line("x{a=\"v\"}").is_none());
        assert!(parse_line("9x 1").is_none());
        assert!(parse_line("x{,} 1").is_none());
        assert_eq!(parse_line("x{a=\"v\",} 3").unwrap().value, 3.0);
    }
}
