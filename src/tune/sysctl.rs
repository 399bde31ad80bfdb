//! The kit's `tuning/sysctl.conf`, compiled in, and how each of its settings
//! is compared with the running kernel's value.

/// `tuning/sysctl.conf` as shipped: the check reads the same file the kit
/// installs, so the two cannot drift.
pub const KIT: &str = include_str!("../../tuning/sysctl.conf");

/// One `key = value` line of a sysctl.conf, with the comment block above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Dotted key, e.g. `net.core.rmem_max`.
    pub key: String,
    /// The value as written, fields separated by single spaces.
    pub value: String,
    /// The comment block heading the group this setting belongs to.
    pub comment: String,
}

impl Setting {
    /// `proc/sys/...` path relative to the root (dots become slashes; a key
    /// already written with slashes is kept as is).
    pub fn proc_path(&self) -> String {
        if self.key.contains('/') {
            format!("proc/sys/{}", self.key.trim_start_matches('/'))
        } else {
            format!("proc/sys/{}", self.key.replace('.', "/"))
        }
    }
}

/// Parses sysctl.conf text (`key = value`, `#`/`;` comments, blank lines, a
/// leading `-` meaning "ignore errors"). A comment block applies to the
/// settings right below it until the next blank line.
pub fn parse(text: &str) -> Result<Vec<Setting>, String> {
    let mut out = Vec::new();
    let mut comment = String::new();
    let mut in_comment = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            comment.clear();
            in_comment = false;
            continue;
        }
        if let Some(c) = line.strip_prefix('#').or_else(|| line.strip_prefix(';')) {
            if !in_comment {
                comment.clear();
                in_comment = true;
            }
            if !comment.is_empty() {
                comment.push(' ');
            }
            comment.push_str(c.trim());
            continue;
        }
        in_comment = false;
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("sysctl.conf line {}: expected `key = value`", n + 1))?;
        let key = key.trim().trim_start_matches('-').trim();
        if key.is_empty() {
            return Err(format!("sysctl.conf line {}: empty key", n + 1));
        }
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        out.push(Setting {
            key: key.to_string(),
            value,
            comment: comment.clone(),
        });
    }
    Ok(out)
}

/// The kit's settings. The kit is compiled in and unit-tested, so a parse
/// failure is a build defect.
pub fn kit() -> Vec<Setting> {
    parse(KIT).expect("tuning/sysctl.conf parses (unit-tested)")
}

/// How a running value is judged against the kit's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Must equal (numerically when both are numbers).
    Exact,
    /// Every field >= the kit's field (buffer sizes, backlogs).
    AtLeast,
    /// <= the kit's value (swappiness).
    AtMost,
    /// 0 < current <= the kit's value (`vm.dirty_*bytes`: 0 means the
    /// ratio-based limit is in force instead, which is far larger on big hosts).
    AtMostNonZero,
}

impl Rule {
    /// Short word for the report's why.
    pub fn word(self) -> &'static str {
        match self {
            Rule::Exact => "exact",
            Rule::AtLeast => "min",
            Rule::AtMost | Rule::AtMostNonZero => "max",
        }
    }
}

/// Every key of the kit with its rule and a one-line why. A unit test checks
/// that each kit key is listed here; unknown keys fall back to [`Rule::Exact`]
/// and the first sentence of their comment.
pub const RULES: &[(&str, Rule, &str)] = &[
    (
        "kernel.io_uring_disabled",
        Rule::Exact,
        "glommio needs io_uring; 1/2 block it",
    ),
    (
        "net.core.rmem_max",
        Rule::AtLeast,
        "room to buffer feed bursts instead of pushing back",
    ),
    (
        "net.core.rmem_default",
        Rule::AtLeast,
        "default socket receive buffer for bursts",
    ),
    (
        "net.ipv4.tcp_rmem",
        Rule::AtLeast,
        "TCP receive buffer min/default/max for bursts",
    ),
    (
        "net.core.netdev_max_backlog",
        Rule::AtLeast,
        "packets queued per CPU before the kernel drops",
    ),
    (
        "net.core.busy_read",
        Rule::AtLeast,
        "busy-poll reads on isolated cores cut wake-up latency",
    ),
    (
        "net.core.busy_poll",
        Rule::AtLeast,
        "busy-poll in poll/epoll cuts wake-up latency",
    ),
    (
        "vm.swappiness",
        Rule::AtMost,
        "never swap the collector's working set",
    ),
    (
        "vm.dirty_background_bytes",
        Rule::AtMostNonZero,
        "steady writeback of sink files, no bursts",
    ),
    (
        "vm.dirty_bytes",
        Rule::AtMostNonZero,
        "caps dirty pages so writes never stall long",
    ),
];

/// The rule and short why for a kit setting.
pub fn rule_for(s: &Setting) -> (Rule, String) {
    match RULES.iter().find(|(k, _, _)| *k == s.key) {
        Some((_, rule, why)) => (*rule, (*why).to_string()),
        None => (Rule::Exact, first_sentence(&s.comment)),
    }
}

fn first_sentence(comment: &str) -> String {
    let end = comment.find(['.', ';', ':']).unwrap_or(comment.len());
    let s = comment[..end].trim();
    if s.is_empty() {
        "from tuning/sysctl.conf".to_string()
    } else {
        s.to_string()
    }
}

/// Judges a running value (as read from /proc, fields separated by any
/// whitespace) against the kit's value under `rule`. `Err` says why not ok.
pub fn compare(rule: Rule, current: &str, recommended: &str) -> Result<(), String> {
    let cur: Vec<&str> = current.split_whitespace().collect();
    let rec: Vec<&str> = recommended.split_whitespace().collect();
    if cur.len() != rec.len() {
        return Err(format!("{} field(s), expected {}", cur.len(), rec.len()));
    }
    for (i, (c, r)) in cur.iter().zip(&rec).enumerate() {
        let field = if rec.len() > 1 {
            format!("field {}: ", i + 1)
        } else {
            String::new()
        };
        let (cn, rn) = match (c.parse::<i128>(), r.parse::<i128>()) {
            (Ok(cn), Ok(rn)) => (cn, rn),
            _ => {
                if c == r {
                    continue;
                }
                return Err(format!("{field}`{c}` is not `{r}`"));
            }
        };
        let ok = match rule {
            Rule::Exact => cn == rn,
            Rule::AtLeast => cn >= rn,
            Rule::AtMost => cn <= rn,
            Rule::AtMostNonZero => cn > 0 && cn <= rn,
        };
        if !ok {
            return Err(match rule {
                Rule::Exact => format!("{field}{cn} is not {rn}"),
                Rule::AtLeast => format!("{field}{cn} is below {rn}"),
                Rule::AtMost => format!("{field}{cn} is above {rn}"),
                Rule::AtMostNonZero if cn == 0 => {
                    format!("{field}0 leaves the ratio-based limit in force")
                }
                Rule::AtMostNonZero => format!("{field}{cn} is above {rn}"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kit_parses_with_every_documented_key() {
        let kit = kit();
        let keys: Vec<&str> = kit.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "kernel.io_uring_disabled",
                "net.core.rmem_max",
                "net.core.rmem_default",
                "net.ipv4.tcp_rmem",
                "net.core.netdev_max_backlog",
                "net.core.busy_read",
                "net.core.busy_poll",
                "vm.swappiness",
                "vm.dirty_background_bytes",
                "vm.dirty_bytes",
            ]
        );
        let rmem = kit.iter().find(|s| s.key == "net.ipv4.tcp_rmem").unwrap();
        assert_eq!(rmem.value, "4096 1048576 16777216");
        assert_eq!(rmem.proc_path(), "proc/sys/net/ipv4/tcp_rmem");
        assert!(rmem.comment.starts_with("Exchange feeds are bursty"));
    }

    #[test]
    fn every_kit_key_has_a_rule() {
        for s in kit() {
            assert!(
                RULES.iter().any(|(k, _, _)| *k == s.key),
                "tuning/sysctl.conf key `{}` has no rule in tune::sysctl::RULES",
                s.key
            );
        }
    }

    #[test]
    fn parses_comments_groups_and_prefixes() {
        let text =
            "# header\n\n# group why. more\n; second line\na.b = 1\n-c.d=  2\t3 \n\ne/f = x\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].key, "a.b");
        assert_eq!(s[0].value, "1");
        assert_eq!(s[0].comment, "group why. more second line");
        assert_eq!(s[1].key, "c.d");
        assert_eq!(s[1].value, "2 3");
        assert_eq!(s[1].comment, "group why. more second line");
        assert_eq!(s[2].comment, "");
        assert_eq!(s[2].proc_path(), "proc/sys/e/f");
        assert_eq!(rule_for(&s[0]), (Rule::Exact, "group why".to_string()));
        assert!(parse("novalue\n").unwrap_err().contains("line 1"));
        assert!(parse(" = 3\n").is_err());
    }

    #[test]
    fn comparisons() {
        assert!(compare(Rule::Exact, "0", "0").is_ok());
        assert!(compare(Rule::Exact, "2", "0").is_err());
        assert!(compare(Rule::AtLeast, "33554432", "16777216").is_ok());
        assert!(compare(Rule::AtLeast, "212992", "16777216").is_err());
        assert!(compare(
            Rule::AtLeast,
            "4096\t1048576\t33554432",
            "4096 1048576 16777216"
        )
        .is_ok());
        let e = compare(
            Rule::AtLeast,
            "4096\t131072\t6291456",
            "4096 1048576 16777216",
        )
        .unwrap_err();
        assert!(e.contains("field 2"), "{e}");
        assert!(compare(Rule::AtLeast, "4096 131072", "4096 1048576 16777216").is_err());
        assert!(compare(Rule::AtMost, "0", "1").is_ok());
        assert!(compare(Rule::AtMost, "60", "1").is_err());
        assert!(compare(Rule::AtMostNonZero, "0", "67108864")
            .unwrap_err()
            .contains("ratio"));
        assert!(compare(Rule::AtMostNonZero, "33554432", "67108864").is_ok());
        assert!(compare(Rule::Exact, "bbr", "bbr").is_ok());
        assert!(compare(Rule::AtLeast, "cubic", "bbr").is_err());
    }
}
