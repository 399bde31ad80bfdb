//! The kernel's CPU list format (`0-3,8,10-11`), as found in
//! `/sys/devices/system/cpu/{online,isolated,nohz_full}` and on the kernel
//! command line (`isolcpus=`, `nohz_full=`).

/// Parses a CPU list into sorted, de-duplicated CPU ids.
///
/// Accepts single ids, inclusive ranges `a-b`, and the boot-parameter stride
/// form `a-b:used/group` (`0-7:2/4` = 0,1,4,5). An empty list (a sysfs file
/// holding only a newline) and `(null)` (what `nohz_full` shows on kernels
/// where the mask was never set) are the empty set.
pub fn parse(text: &str) -> Result<Vec<usize>, String> {
    let text = text.trim();
    if text.is_empty() || text == "(null)" {
        return Ok(Vec::new());
    }
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!("empty entry in CPU list `{text}`"));
        }
        let (range, stride) = match part.split_once(':') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        let (lo, hi) = match range.split_once('-') {
            Some((a, b)) => (num(a, text)?, num(b, text)?),
            None => {
                let n = num(range, text)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(format!("reversed range `{part}` in CPU list `{text}`"));
        }
        if hi - lo > 65_536 {
            return Err(format!("range `{part}` too large in CPU list `{text}`"));
        }
        let (used, group) = match stride {
            None => (1, 1),
            Some(s) => {
                let (u, g) = s
                    .split_once('/')
                    .ok_or_else(|| format!("bad stride `{part}` in CPU list `{text}`"))?;
                let (u, g) = (num(u, text)?, num(g, text)?);
                if u == 0 || g == 0 || u > g {
                    return Err(format!("bad stride `{part}` in CPU list `{text}`"));
                }
                (u, g)
            }
        };
        for cpu in lo..=hi {
            if (cpu - lo) % group < used {
                cpus.push(cpu);
            }
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

fn num(s: &str, whole: &str) -> Result<usize, String> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not a CPU id in CPU list `{whole}`"));
    }
    s.parse()
        .map_err(|_| format!("`{s}` is not a CPU id in CPU list `{whole}`"))
}

/// Formats CPU ids back into the compact kernel form (`0-3,8`); empty → `none`.
pub fn format(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.is_empty() {
        return "none".to_string();
    }
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if end == start {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singles_and_ranges() {
        assert_eq!(parse("0-3,8,10-11").unwrap(), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse("5").unwrap(), vec![5]);
        assert_eq!(parse("2-5,8\n").unwrap(), vec![2, 3, 4, 5, 8]);
        assert_eq!(parse("7-7").unwrap(), vec![7]);
    }

    #[test]
    fn sorted_and_deduplicated() {
        assert_eq!(parse("8,0-2,1").unwrap(), vec![0, 1, 2, 8]);
    }

    #[test]
    fn empty_forms() {
        assert_eq!(parse("").unwrap(), Vec::<usize>::new());
        assert_eq!(parse("\n").unwrap(), Vec::<usize>::new());
        assert_eq!(parse("(null)\n").unwrap(), Vec::<usize>::new());
    }

    #[test]
    fn stride_form() {
        assert_eq!(parse("0-7:2/4").unwrap(), vec![0, 1, 4, 5]);
        assert_eq!(parse("0-5:1/2").unwrap(), vec![0, 2, 4]);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "a", "1-", "-1", "3-1", "1,,2", "1,", "1 2", "0-7:3/2", "0-7:2", "0-7:0/1", "+1",
        ] {
            assert!(parse(bad).is_err(), "`{bad}` should be rejected");
        }
        let e = parse("3-1").unwrap_err();
        assert!(e.contains("reversed"), "{e}");
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(format(&[3, 2]), "2-3");
        assert_eq!(format(&[]), "none");
        assert_eq!(format(&[4]), "4");
        let text = "0-2,5,7-9";
        assert_eq!(format(&parse(text).unwrap()), text);
    }
}
