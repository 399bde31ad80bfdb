//! The NATS client protocol on bytes: encoding the commands we send (CONNECT,
//! SUB, PUB, HPUB, PING/PONG) and an incremental parser for what the server
//! sends (INFO, MSG, HMSG, PING, PONG, +OK, -ERR), plus the JSON bodies we
//! read (INFO, PubAck, JetStream API replies).
//!
//! The parser is stateless over a byte slice: it returns the first complete
//! operation and how many bytes it used, or `None` when more bytes are needed,
//! so split reads cost nothing but a re-scan of one control line. It never
//! panics on server input; anything malformed or oversized is an error (the
//! caller reconnects).

/// Longest control line we accept (INFO with many `connect_urls` is the
/// longest real one).
pub const MAX_CONTROL_LINE: usize = 64 * 1024;

/// One operation received from the server, borrowing the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// The JSON after `INFO `.
    Info(&'a [u8]),
    /// `MSG` (headers `None`) or `HMSG` (headers = the header block).
    Msg {
        subject: &'a [u8],
        sid: &'a [u8],
        reply: Option<&'a [u8]>,
        headers: Option<&'a [u8]>,
        payload: &'a [u8],
    },
    Ping,
    Pong,
    Ok,
    /// The text after `-ERR `, quotes included as sent.
    Err(&'a [u8]),
}

pub(super) use super::proto_error::perr;
pub use super::proto_error::ProtoError;

pub(super) fn find_crlf(buf: &[u8]) -> Option<usize> {
    // Scan for '\n' (a word at a time), then require the '\r' before it.
    let mut from = 0;
    while let Some(i) = crate::swar::find(&buf[from..], b'\n') {
        let at = from + i;
        if at > 0 && buf[at - 1] == b'\r' {
            return Some(at - 1);
        }
        from = at + 1;
    }
    None
}

pub(super) fn parse_usize(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 12 {
        return None;
    }
    let mut n = 0usize;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (b - b'0') as usize;
    }
    Some(n)
}

/// Parses a u64 written in decimal (reply-subject sequence numbers).
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (b - b'0') as u64;
    }
    Some(n)
}

/// Parses the first complete operation in `buf`.
/// `Ok(None)`: incomplete, read more. `max_payload` bounds MSG sizes.
pub fn parse_op(buf: &[u8], max_payload: usize) -> Result<Option<(Op<'_>, usize)>, ProtoError> {
    let Some(eol) = find_crlf(buf) else {
        if buf.len() > MAX_CONTROL_LINE {
            return Err(perr("control line too long", buf));
        }
        return Ok(None);
    };
    let line = &buf[..eol];
    let after_line = eol + 2;
    let (verb, rest) = match line.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &line[line.len()..]),
    };
    let verb_is = |v: &[u8]| verb.eq_ignore_ascii_case(v);
    // MSG first: under load nearly every op is a PubAck.
    let msg = verb_is(b"MSG");
    let hmsg = !msg && verb_is(b"HMSG");
    if !msg && !hmsg {
        return control_op(verb, rest, line, after_line);
    }
    msg_op(buf, hmsg, rest, line, after_line, max_payload)
}

/// A verb other than MSG and HMSG.
fn control_op<'a>(
    verb: &[u8],
    rest: &'a [u8],
    line: &[u8],
    after_line: usize,
) -> Result<Option<(Op<'a>, usize)>, ProtoError> {
    let verb_is = |v: &[u8]| verb.eq_ignore_ascii_case(v);
    if verb_is(b"PING") {
        return Ok(Some((Op::Ping, after_line)));
    }
    if verb_is(b"PONG") {
        return Ok(Some((Op::Pong, after_line)));
    }
    if verb_is(b"+OK") {
        return Ok(Some((Op::Ok, after_line)));
    }
    if verb_is(b"-ERR") {
        return Ok(Some((Op::Err(trim(rest)), after_line)));
    }
    if verb_is(b"INFO") {
        return Ok(Some((Op::Info(trim(rest)), after_line)));
    }
    Err(perr("unknown operation", line))
}

/// MSG or HMSG: its arguments and body (None until the whole body is in `buf`).
fn msg_op<'a>(
    buf: &'a [u8],
    hmsg: bool,
    rest: &'a [u8],
    line: &[u8],
    after_line: usize,
    max_payload: usize,
) -> Result<Option<(Op<'a>, usize)>, ProtoError> {
    // Up to 6 fields: subject sid [reply] [hdr_len] total_len.
    let mut f: [&[u8]; 6] = [&[]; 6];
    let mut n = 0;
    let mut left = rest;
    while !left.is_empty() {
        let end = crate::swar::find_blank(left).unwrap_or(left.len());
        let tok = &left[..end];
        left = &left[(end + 1).min(left.len())..];
        if tok.is_empty() {
            continue;
        }
        if n == f.len() {
            return Err(perr("too many fields", line));
        }
        f[n] = tok;
        n += 1;
    }
    let (subject, sid, reply, hdr_len, total) = match (hmsg, n) {
        (false, 3) => (f[0], f[1], None, None, f[2]),
        (false, 4) => (f[0], f[1], Some(f[2]), None, f[3]),
        (true, 4) => (f[0], f[1], None, Some(f[2]), f[3]),
        (true, 5) => (f[0], f[1], Some(f[2]), Some(f[3]), f[4]),
        _ => return Err(perr("bad MSG arguments", line)),
    };
    let total = parse_usize(total).ok_or_else(|| perr("bad MSG size", line))?;
    // max_payload bounds headers + payload together (the server enforces it).
    if total > max_payload {
        return Err(perr("MSG larger than max_payload", line));
    }
    let hdr_len = match hdr_len {
        Some(h) => {
            let h = parse_usize(h).ok_or_else(|| perr("bad HMSG header size", line))?;
            if h > total {
                return Err(perr("HMSG header size exceeds total", line));
            }
            Some(h)
        }
        None => None,
    };
    let end = after_line + total;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(perr("MSG payload not followed by CRLF", line));
    }
    let body = &buf[after_line..end];
    let (headers, payload) = match hdr_len {
        Some(h) => (Some(&body[..h]), &body[h..]),
        None => (None, body),
    };
    Ok(Some((
        Op::Msg {
            subject,
            sid,
            reply,
            headers,
            payload,
        },
        end + 2,
    )))
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

/// Status code of a header block (`NATS/1.0 503 ...` → 503), if any.
pub fn header_status(headers: &[u8]) -> Option<u16> {
    let first = match find_crlf(headers) {
        Some(i) => &headers[..i],
        None => headers,
    };
    let rest = first.strip_prefix(b"NATS/1.0")?;
    let code = trim(rest).split(|&b| b == b' ').next()?;
    if code.len() != 3 {
        return None;
    }
    parse_usize(code).map(|c| c as u16)
}

/// Appends `n` in decimal without going through `fmt`.
#[inline]
pub fn put_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

pub(super) fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

pub(super) const HDR_START: &[u8] = b"NATS/1.0\r\nNats-Msg-Id: ";
pub(super) const HDR_END: &[u8] = b"\r\n\r\n";

/// Length of the header block for a message id.
#[inline]
pub fn header_len(msg_id: &str) -> usize {
    HDR_START.len() + msg_id.len() + HDR_END.len()
}

/// Bytes [`encode_hpub`] will append.
pub fn hpub_len(subject: &str, inbox: &str, seq: u64, msg_id: &str, payload_len: usize) -> usize {
    let h = header_len(msg_id);
    let t = h + payload_len;
    5 + subject.len()
        + 1
        + inbox.len()
        + 1
        + digits(seq)
        + 1
        + digits(h as u64)
        + 1
        + digits(t as u64)
        + 2
        + t
        + 2
}

/// `HPUB <subject> <inbox>.<seq>`: what every frame of a record starts
/// with (the reply inbox carries the ack's sequence).
pub fn put_hpub_head(out: &mut Vec<u8>, subject: &str, inbox: &str, seq: u64) {
    out.extend_from_slice(b"HPUB ");
    out.extend_from_slice(subject.as_bytes());
    out.push(b' ');
    out.extend_from_slice(inbox.as_bytes());
    out.push(b'.');
    put_u64(out, seq);
}

/// `HPUB <subject> <inbox>.<seq> <hdr_len> <total_len>\r\nNATS/1.0\r\nNats-Msg-Id: <id>\r\n\r\n<payload>\r\n`
pub fn encode_hpub(
    out: &mut Vec<u8>,
    subject: &str,
    inbox: &str,
    seq: u64,
    msg_id: &str,
    payload: &[u8],
) {
    let h = header_len(msg_id);
    put_hpub_head(out, subject, inbox, seq);
    out.push(b' ');
    put_u64(out, h as u64);
    out.push(b' ');
    put_u64(out, (h + payload.len()) as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(HDR_START);
    out.extend_from_slice(msg_id.as_bytes());
    out.extend_from_slice(HDR_END);
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// Splits a frame made by [`encode_hpub`] or [`encode_pub`] back into
/// (subject, msg id, payload); the id is empty for PUB. Used to hand
/// undelivered messages back (to the spill) at shutdown.
pub fn split_frame(frame: &[u8]) -> Option<(&str, &str, &[u8])> {
    let eol = frame.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&frame[..eol]).ok()?;
    let body = frame.get(eol + 2..frame.len().checked_sub(2)?)?;
    let mut parts = line.split(' ');
    match parts.next()? {
        "HPUB" => {
            let subject = parts.next()?;
            let hdr: usize = parts.nth(1)?.parse().ok()?;
            let headers = std::str::from_utf8(body.get(..hdr)?).ok()?;
            let id = headers
                .lines()
                .find_map(|l| l.strip_prefix("Nats-Msg-Id: "))
                .unwrap_or("");
            Some((subject, id, &body[hdr..]))
        }
        "PUB" => Some((parts.next()?, "", body)),
        _ => None,
    }
}

/// Bytes [`encode_pub`] will append.
pub fn pub_len(subject: &str, reply: Option<&str>, payload_len: usize) -> usize {
    4 + subject.len()
        + reply.map_or(0, |r| r.len() + 1)
        + 1
        + digits(payload_len as u64)
        + 2
        + payload_len
        + 2
}

/// `PUB <subject> [reply] <len>\r\n<payload>\r\n`
pub fn encode_pub(out: &mut Vec<u8>, subject: &str, reply: Option<&str>, payload: &[u8]) {
    out.extend_from_slice(b"PUB ");
    out.extend_from_slice(subject.as_bytes());
    if let Some(r) = reply {
        out.push(b' ');
        out.extend_from_slice(r.as_bytes());
    }
    out.push(b' ');
    put_u64(out, payload.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

/// `SUB <subject> <sid>\r\n`
pub fn encode_sub(out: &mut Vec<u8>, subject: &str, sid: u64) {
    out.extend_from_slice(b"SUB ");
    out.extend_from_slice(subject.as_bytes());
    out.push(b' ');
    put_u64(out, sid);
    out.extend_from_slice(b"\r\n");
}

/// A subject we can put on the wire: non-empty tokens, no whitespace or
/// control bytes (a space would shift the protocol fields; the server would
/// answer -ERR and we would loop on it).
pub fn valid_subject(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 1024
        && s.bytes().all(|b| b > b' ' && b != 0x7f)
        && !s.starts_with('.')
        && !s.ends_with('.')
        && !s.contains("..")
}

/// A header value: no CR/LF (it would end the header), not empty.
pub fn valid_msg_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 1024 && s.bytes().all(|b| b != b'\r' && b != b'\n')
}

pub use super::json::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn all_ops(stream: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some((op, n)) = parse_op(&stream[at..], 1 << 20).unwrap() {
            out.push(format!("{op:?}"));
            at += n;
        }
        assert_eq!(at, stream.len(), "all consumed");
        out
    }

    const SAMPLE: &[u8] = b"INFO {\"server_id\":\"X\",\"max_payload\":1048576,\"headers\":true,\"jetstream\":true}\r\n\
+OK\r\nPING\r\npong\r\nMSG a.b 1 5\r\nhello\r\nMSG _INBOX.x.7 2 _R.1 2\r\nhi\r\n\
HMSG _INBOX.x.9 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n-ERR 'Authorization Violation'\r\n\
HMSG s 3 r 18 21\r\nNATS/1.0\r\nA: b\r\n\r\nabc\r\n";

    #[test]
    fn frames_split_back() {
        let mut b = Vec::new();
        encode_hpub(
            &mut b,
            "trade.x.y.Z",
            "_INBOX.a",
            7,
            "trade:x:y:Z:1",
            b"{\"k\":1}",
        );
        assert_eq!(
            split_frame(&b),
            Some(("trade.x.y.Z", "trade:x:y:Z:1", &b"{\"k\":1}"[..]))
        );
        b.clear();
        encode_pub(&mut b, "a.b", None, b"xy");
        assert_eq!(split_frame(&b), Some(("a.b", "", &b"xy"[..])));
        assert_eq!(split_frame(b"garbage"), None);
    }

    #[test]
    fn parses_every_op_and_split_reads() {
        let whole = all_ops(SAMPLE);
        assert_eq!(whole.len(), 9);
        assert!(whole[0].starts_with("Info"));
        assert_eq!(whole[1], "Ok");
        assert_eq!(whole[2], "Ping");
        assert_eq!(whole[3], "Pong");
        // Split the stream at every position: feeding it in two pieces gives
        // the same ops (incomplete → None, never an error).
        for cut in 0..SAMPLE.len() {
            let mut buf = SAMPLE[..cut].to_vec();
            let mut ops = Vec::new();
            let mut at = 0;
            let mut fed = false;
            loop {
                match parse_op(&buf[at..], 1 << 20).unwrap() {
                    Some((op, n)) => {
                        ops.push(format!("{op:?}"));
                        at += n;
                    }
                    None if !fed => {
                        buf.extend_from_slice(&SAMPLE[cut..]);
                        fed = true;
                    }
                    None => break,
                }
            }
            assert_eq!(ops, whole, "cut at {cut}");
        }
    }

    #[test]
    fn msg_fields() {
        let (op, n) = parse_op(b"MSG _INBOX.x.7 2 _R.1 2\r\nhi\r\nrest", 100)
            .unwrap()
            .unwrap();
        assert_eq!(n, 29);
        assert_eq!(
            op,
            Op::Msg {
                subject: b"_INBOX.x.7",
                sid: b"2",
                reply: Some(b"_R.1"),
                headers: None,
                payload: b"hi"
            }
        );
        let (op, _) = parse_op(b"HMSG _INBOX.x.9 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n", 100)
            .unwrap()
            .unwrap();
        let Op::Msg {
            headers, payload, ..
        } = op
        else {
            panic!()
        };
        assert_eq!(header_status(headers.unwrap()), Some(503));
        assert_eq!(payload, b"");
        assert_eq!(header_status(b"NATS/1.0\r\nA: b\r\n\r\n"), None);
        assert_eq!(
            header_status(b"NATS/1.0 408 Request Timeout\r\n\r\n"),
            Some(408)
        );
        let (op, _) = parse_op(b"-ERR 'Unknown Protocol Operation'\r\n", 10)
            .unwrap()
            .unwrap();
        assert_eq!(op, Op::Err(b"'Unknown Protocol Operation'"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b"FOO bar\r\n"[..],
            b"MSG a\r\n",
            b"MSG a 1 x\r\n",
            b"MSG a 1 -3\r\n",
            b"MSG a 1 2 3 4 5 6 7\r\n",
            b"HMSG a 1 9 3\r\nabc\r\n",
            b"MSG a 1 2\r\nhiXX",
            b"MSG a 1 99999999999999999999\r\n",
            b"MSG a 1 5000\r\n",
        ] {
            assert!(
                parse_op(bad, 100).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = vec![b'x'; MAX_CONTROL_LINE + 1];
        assert!(parse_op(&long, 100).is_err());
        assert_eq!(parse_op(b"MSG a 1 5\r\nhel", 100).unwrap(), None);
        assert_eq!(parse_op(b"PIN", 100).unwrap(), None);
        assert_eq!(parse_op(b"PING\r", 100).unwrap(), None);
        // Random bytes never panic.
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..20_000 {
            let len = rng.usize(0..40);
            let mut b: Vec<u8> = (0..len)
                .map(|_| b"MSGHPINGO \r\n0123456789-+ERK"[rng.usize(0..27)])
                .collect();
            if rng.bool() {
                b.splice(0..0, b"MSG a 1 ".iter().copied());
            }
            let _ = parse_op(&b, 64);
        }
    }

    #[test]
    fn hpub_bytes_exact() {
        let mut out = Vec::new();
        encode_hpub(
            &mut out,
            "trade.binance.spot.BTC-USDT",
            "_INBOX.abc",
            42,
            "id-1",
            b"{\"p\":1}",
        );
        let hdr = "NATS/1.0\r\nNats-Msg-Id: id-1\r\n\r\n";
        assert_eq!(hdr.len(), 31);
        let want =
            format!("HPUB trade.binance.spot.BTC-USDT _INBOX.abc.42 31 38\r\n{hdr}{{\"p\":1}}\r\n");
        assert_eq!(String::from_utf8(out.clone()).unwrap(), want);
        assert_eq!(
            hpub_len("trade.binance.spot.BTC-USDT", "_INBOX.abc", 42, "id-1", 7),
            out.len()
        );
        let mut out = Vec::new();
        encode_pub(&mut out, "a.b", None, b"xyz");
        assert_eq!(out, b"PUB a.b 3\r\nxyz\r\n");
        assert_eq!(pub_len("a.b", None, 3), out.len());
        let mut out = Vec::new();
        encode_pub(&mut out, "a.b", Some("r.1"), b"");
        assert_eq!(out, b"PUB a.b r.1 0\r\n\r\n");
        assert_eq!(pub_len("a.b", Some("r.1"), 0), out.len());
        let mut out = Vec::new();
        encode_sub(&mut out, "_INBOX.abc.*", 1);
        assert_eq!(out, b"SUB _INBOX.abc.* 1\r\n");
        for n in [0u64, 9, 10, 99, 100, 12345, u64::MAX] {
            let mut o = Vec::new();
            put_u64(&mut o, n);
            assert_eq!(o, n.to_string().as_bytes());
            assert_eq!(digits(n), o.len());
        }
    }

    #[test]
    fn connect_json_escapes() {
        let mut out = Vec::new();
        encode_connect(
            &mut out,
            &Connect {
                verbose: false,
                pedantic: false,
                tls_required: false,
                name: "marketprism-core0",
                lang: "rust",
                version: "0.1.0",
                protocol: 1,
                headers: true,
                no_responders: true,
                user: Some("u\"x"),
                pass: Some("p"),
                auth_token: None,
            },
        );
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("CONNECT {\"verbose\":false,"), "{s}");
        assert!(s.contains(r#""user":"u\"x","pass":"p""#), "{s}");
        assert!(!s.contains("auth_token"));
        assert!(s.ends_with("}\r\nPING\r\n"));
    }

    #[test]
    fn json_bodies() {
        let a = parse_pub_ack(br#"{"stream":"MARKET_DATA","seq":12}"#).unwrap();
        assert_eq!(
            (a.seq, a.duplicate, a.error.is_none()),
            (Some(12), false, true)
        );
        assert_eq!(a.stream, Borrowed(Some("MARKET_DATA")));
        // Escaped (would need a copy) or absent: no name.
        let a = parse_pub_ack(br#"{"stream":"A\u0042","seq":1}"#).unwrap();
        assert_eq!((a.stream, a.seq), (Borrowed(None), Some(1)));
        let a = parse_pub_ack(br#"{"seq":1}"#).unwrap();
        assert_eq!(a.stream, Borrowed(None));
        let a = parse_pub_ack(br#"{"stream":"MARKET_DATA","seq":12,"duplicate":true}"#).unwrap();
        assert!(a.duplicate);
        let a = parse_pub_ack(
            br#"{"error":{"code":503,"err_code":10039,"description":"jetstream not \"enabled\""}}"#,
        )
        .unwrap();
        let e = a.error.unwrap();
        assert_eq!((e.code, e.err_code), (503, 10039));
        assert!(e.description.contains("\"enabled\""));
        assert!(parse_pub_ack(b"not json").is_err());
        let i = parse_info(br#"{"server_id":"S","version":"2.9.10","max_payload":1048576,"headers":true,"tls_required":false,"connect_urls":["1.2.3.4:4222"],"other":{"x":1}}"#).unwrap();
        assert_eq!(i.max_payload, Some(1048576));
        assert!(i.headers && !i.tls_required);
        assert_eq!(i.connect_urls.len(), 1);
        assert!(valid_subject("trade.binance.spot.BTC-USDT"));
        assert!(!valid_subject("trade binance"));
        assert!(!valid_subject("a..b"));
        assert!(!valid_subject(""));
        assert!(!valid_msg_id("a\r\nb"));
    }
}
