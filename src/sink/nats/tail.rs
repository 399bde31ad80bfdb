//! A JetStream message as the spill keeps it: the tail of its HPUB frame,
//! everything [`proto::encode_hpub`] writes after `<inbox>.<seq>`:
//! ` <hdr_len> <total_len>\r\nNATS/1.0\r\nNats-Msg-Id: <id>\r\n\r\n<payload>\r\n`.
//! The queue takes it back as `HPUB <subject> <inbox>.<seq>` and one copy of
//! the tail ([`encode_from_tail`]): no decode, no re-encode. The inbox and
//! sequence are left out because they change (per process, per queueing).

use super::proto::{self, digits, find_crlf, parse_usize, put_u64, HDR_END, HDR_START};

/// The end of every frame, after its payload.
pub const END: &[u8] = b"\r\n";

/// Writes what goes before the payload in a tail; the payload and [`END`]
/// complete it.
pub fn encode_head(out: &mut Vec<u8>, msg_id: &str, payload_len: usize) {
    let h = proto::header_len(msg_id);
    out.push(b' ');
    put_u64(out, h as u64);
    out.push(b' ');
    put_u64(out, (h + payload_len) as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(HDR_START);
    out.extend_from_slice(msg_id.as_bytes());
    out.extend_from_slice(HDR_END);
}

/// Bytes [`encode_from_tail`] will append.
pub fn frame_len(subject: &str, inbox: &str, seq: u64, tail_len: usize) -> usize {
    5 + subject.len() + 1 + inbox.len() + 1 + digits(seq) + tail_len
}

/// The frame [`proto::encode_hpub`] makes, from its tail.
pub fn encode_from_tail(out: &mut Vec<u8>, subject: &str, inbox: &str, seq: u64, tail: &[u8]) {
    proto::put_hpub_head(out, subject, inbox, seq);
    out.extend_from_slice(tail);
}

/// Checks a tail's framing (its sizes against its length, the CRLFs, the
/// header's start): (header size, body size = headers + payload), or None.
/// A tail comes from disk, so it is checked before it goes on the wire: a
/// wrong size would shift the protocol under every message behind it.
pub fn sizes(tail: &[u8]) -> Option<(usize, usize)> {
    let line = &tail[..tail.len().min(32)];
    let eol = find_crlf(line)?;
    let mut f = line.get(1..eol)?.split(|&b| b == b' ');
    let h = parse_usize(f.next()?)?;
    let t = parse_usize(f.next()?)?;
    let body = eol + 2;
    let ok = f.next().is_none()
        && tail[0] == b' '
        && h <= t
        && tail.len() == body + t + END.len()
        && tail.ends_with(END)
        && tail[body..].starts_with(HDR_START);
    ok.then_some((h, t))
}

/// A tail split into (msg id, payload), its framing checked.
pub fn split(tail: &[u8]) -> Option<(&str, &[u8])> {
    let (h, t) = sizes(tail)?;
    let start = tail.len() - END.len() - t;
    let headers = &tail[start..start + h];
    let id = headers.strip_prefix(HDR_START)?.strip_suffix(HDR_END)?;
    let id = std::str::from_utf8(id).ok()?;
    Some((id, &tail[start + h..tail.len() - END.len()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_from_its_tail_is_the_frame() {
        let mut tail = Vec::new();
        encode_head(&mut tail, "trade:x:y:Z:1", 7);
        tail.extend_from_slice(b"{\"k\":1}");
        tail.extend_from_slice(END);
        assert_eq!(
            tail,
            b" 40 47\r\nNATS/1.0\r\nNats-Msg-Id: trade:x:y:Z:1\r\n\r\n{\"k\":1}\r\n"
        );
        assert_eq!(sizes(&tail), Some((40, 47)));
        assert_eq!(split(&tail), Some(("trade:x:y:Z:1", &b"{\"k\":1}"[..])));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        proto::encode_hpub(
            &mut a,
            "t.x.y.Z",
            "_INBOX.a",
            1234,
            "trade:x:y:Z:1",
            b"{\"k\":1}",
        );
        encode_from_tail(&mut b, "t.x.y.Z", "_INBOX.a", 1234, &tail);
        assert_eq!(a, b);
        assert_eq!(b.len(), frame_len("t.x.y.Z", "_INBOX.a", 1234, tail.len()));
    }

    #[test]
    fn a_tail_with_any_size_or_crlf_off_is_refused() {
        let good = &b" 40 47\r\nNATS/1.0\r\nNats-Msg-Id: trade:x:y:Z:1\r\n\r\n{\"k\":1}\r\n"[..];
        assert!(split(good).is_some());
        for bad in [
            &good[..good.len() - 1],
            &good[1..],
            b" 40 46\r\nNATS/1.0\r\nNats-Msg-Id: trade:x:y:Z:1\r\n\r\n{\"k\":1}\r\n",
            b" 40 47\r\nNATS/1.0\r\nNats-Msg-Id: trade:x:y:Z:1\r\n\r\n{\"k\":1}\n\n",
            b" 48 47\r\nNATS/1.0\r\nNats-Msg-Id: trade:x:y:Z:1\r\n\r\n{\"k\":1}\r\n",
            b" 40 47 1\r\nNATS/1.0\r\nNats-Msg-Id: trade:x:y:Z:1\r\n\r\n{\"k\":1}\r",
            b" 40 47\r\nNATS/1.1\r\nNats-Msg-Id: trade:x:y:Z:1\r\n\r\n{\"k\":1}\r\n",
            b" 40\r\n",
            b"",
        ] {
            assert_eq!(sizes(bad), None, "{}", String::from_utf8_lossy(bad));
            assert_eq!(split(bad), None);
        }
        // Sizes that add up but put the header's end elsewhere: no id.
        let shifted = b" 41 47\r\nNATS/1.0\r\nNats-Msg-Id: trade:x:y:Z:1\r\n\r\n{\"k\":1}\r\n";
        assert_eq!(sizes(shifted), Some((41, 47)));
        assert_eq!(split(shifted), None);
    }
}
