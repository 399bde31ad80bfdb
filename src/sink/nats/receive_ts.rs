//! A record's `receive_ts_ns` read back from its JSON, for the receive →
//! acked histogram. Read from the payload rather than passed along so records
//! that waited in the spill (which stores subject, id and payload only) are
//! timed too. Every record's JSON ends with the same tail
//! (`sink::encode`): `,"receive_ts_ns":<digits>,"data_source":"marketprism"}`.

use crate::sink::encode::{RECEIVE_TS_KEY, RECORD_END as TAIL};

/// `"receive_ts_ns":`, without the comma the encoder writes before it.
const KEY: &[u8] = RECEIVE_TS_KEY.split_at(1).1;

/// The `receive_ts_ns` at the end of `payload`, or None when the payload
/// does not end that way (a `gap` record, a foreign producer).
pub fn receive_ts_ns(payload: &[u8]) -> Option<u64> {
    let head = payload.strip_suffix(TAIL)?;
    // Nanoseconds since 1970 have 19 digits from 2001 to 2286: read those
    // directly (one per record under load), anything else the long way.
    if let Some(at) = head.len().checked_sub(19) {
        let num = &head[at..];
        if head[..at].ends_with(KEY) && num.iter().all(u8::is_ascii_digit) {
            return Some(num.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')));
        }
    }
    // u64::MAX has 20 digits: look no further back than that.
    let digits = head
        .iter()
        .rev()
        .take(21)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > 20 {
        return None;
    }
    let (before, num) = head.split_at(head.len() - digits);
    if !before.ends_with(KEY) {
        return None;
    }
    num.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::receive_ts_ns;

    #[test]
    fn reads_the_stamp_from_the_tail_only() {
        let rec =
            br#"{"price":"1.5","receive_ts_ns":1764950400123456789,"data_source":"marketprism"}"#;
        assert_eq!(receive_ts_ns(rec), Some(1_764_950_400_123_456_789));
        assert_eq!(
            receive_ts_ns(br#"{"receive_ts_ns":7,"data_source":"marketprism"}"#),
            Some(7)
        );
        // No stamp, another key, no digits, overflow, another tail.
        for p in [
            &br#"{"data_type":"gap","data_source":"marketprism"}"#[..],
            br#"{"collected_ts_ms":7,"data_source":"marketprism"}"#,
            br#"{"receive_ts_ns":,"data_source":"marketprism"}"#,
            br#"{"receive_ts_ns":99999999999999999999,"data_source":"marketprism"}"#,
            br#"{"receive_ts_ns":123456789012345678901,"data_source":"marketprism"}"#,
            br#"{"receive_ts_ns":7,"data_source":"other"}"#,
            b"",
        ] {
            assert_eq!(receive_ts_ns(p), None, "{}", String::from_utf8_lossy(p));
        }
    }
}
