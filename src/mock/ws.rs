//! Minimal RFC 6455 for the mock's server side: the 101 handshake answer,
//! unmasked server frames written straight into a reused buffer, and a
//! decoder for (masked) client frames. Hand-rolled so the send path costs a
//! few byte copies per trade.

pub(crate) const OP_CONT: u8 = 0x0;
pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;

pub(crate) const CLOSE_GOING_AWAY: u16 = 1001;
pub(crate) const CLOSE_PROTOCOL: u16 = 1002;
pub(crate) const CLOSE_UNSUPPORTED: u16 = 1003;
pub(crate) const CLOSE_INVALID_DATA: u16 = 1007;
pub(crate) const CLOSE_POLICY: u16 = 1008;
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;

/// The `101 Switching Protocols` answer for a client's `Sec-WebSocket-Key`.
/// No extensions are ever negotiated (in particular no permessage-deflate).
pub(crate) fn handshake_response(key: &str) -> Vec<u8> {
    let accept = tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

/// Appends one unmasked FIN frame whose payload is produced by `fill`
/// (appending to the buffer). The header is sized after the fact: 4 bytes are
/// reserved (the common 16-bit case) and the payload is shifted only when the
/// length needs a 2- or 10-byte header.
#[inline]
pub(crate) fn write_frame_with(buf: &mut Vec<u8>, opcode: u8, fill: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0x80 | opcode, 126, 0, 0]);
    fill(buf);
    let len = buf.len() - start - 4;
    if len < 126 {
        buf[start + 1] = len as u8;
        buf.copy_within(start + 4.., start + 2);
        buf.truncate(buf.len() - 2);
    } else if len <= u16::MAX as usize {
        buf[start + 2..start + 4].copy_from_slice(&(len as u16).to_be_bytes());
    } else {
        buf[start + 1] = 127;
        let ext = (len as u64).to_be_bytes();
        buf.splice(start + 2..start + 4, ext);
    }
}

/// Appends one unmasked FIN frame with the given payload.
pub(crate) fn write_frame(buf: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    write_frame_with(buf, opcode, |b| b.extend_from_slice(payload));
}

/// Appends a close frame with a status code and a short reason.
pub(crate) fn write_close(buf: &mut Vec<u8>, code: u16, reason: &str) {
    write_frame_with(buf, OP_CLOSE, |b| {
        b.extend_from_slice(&code.to_be_bytes());
        // Control payloads are limited to 125 bytes.
        let r = reason.as_bytes();
        b.extend_from_slice(&r[..r.len().min(123)]);
    });
}

/// One decoded frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Outcome of trying to decode a frame from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// Need more bytes.
    Incomplete,
    /// A frame and the number of bytes it occupied.
    Frame(Frame, usize),
    /// Protocol violation: close with this code and reason.
    Error(u16, &'static str),
}

/// Decodes one frame. Client frames must be masked (`require_mask`); the test
/// client decodes the server's unmasked frames with `require_mask = false`.
pub(crate) fn decode_frame(buf: &[u8], require_mask: bool, max_payload: usize) -> Decoded {
    if buf.len() < 2 {
        return Decoded::Incomplete;
    }
    let b0 = buf[0];
    let b1 = buf[1];
    if b0 & 0x70 != 0 {
        return Decoded::Error(CLOSE_PROTOCOL, "reserved bits set");
    }
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0f;
    let masked = b1 & 0x80 != 0;
    if require_mask && !masked {
        return Decoded::Error(CLOSE_PROTOCOL, "client frame not masked");
    }
    let is_control = opcode & 0x8 != 0;
    match opcode {
        OP_CONT | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
        _ => return Decoded::Error(CLOSE_PROTOCOL, "unknown opcode"),
    }
    let mut pos = 2;
    let len = match b1 & 0x7f {
        126 => {
            if buf.len() < 4 {
                return Decoded::Incomplete;
            }
            pos = 4;
            u16::from_be_bytes([buf[2], buf[3]]) as u64
        }
        127 => {
            if buf.len() < 10 {
                return Decoded::Incomplete;
            }
            pos = 10;
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            u64::from_be_bytes(b)
        }
        n => n as u64,
    };
    if is_control && (len > 125 || !fin) {
        return Decoded::Error(CLOSE_PROTOCOL, "bad control frame");
    }
    if len > max_payload as u64 {
        return Decoded::Error(CLOSE_TOO_BIG, "frame too large");
    }
    let len = len as usize;
    let mask = if masked {
        if buf.len() < pos + 4 {
            return Decoded::Incomplete;
        }
        let m = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
        pos += 4;
        Some(m)
    } else {
        None
    };
    if buf.len() < pos + len {
        return Decoded::Incomplete;
    }
    let mut payload = buf[pos..pos + len].to_vec();
    if let Some(m) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i & 3];
        }
    }
    Decoded::Frame(
        Frame {
            fin,
            opcode,
            payload,
        },
        pos + len,
    )
}

/// Encodes a masked client frame (used by tests playing the collector).
#[cfg(test)]
pub(crate) fn encode_client_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_example() {
        let r = String::from_utf8(handshake_response("dGhlIHNhbXBsZSBub25jZQ==")).unwrap();
        assert!(r.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(r.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(!r.to_ascii_lowercase().contains("extensions"));
        assert!(r.ends_with("\r\n\r\n"));
    }

    fn roundtrip(len: usize) {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut buf = vec![0xAA]; // frames are appended after existing bytes
        write_frame(&mut buf, OP_TEXT, &payload);
        let hdr = match len {
            0..=125 => 2,
            126..=65535 => 4,
            _ => 10,
        };
        assert_eq!(buf.len(), 1 + hdr + len);
        assert_eq!(buf[1], 0x81);
        match decode_frame(&buf[1..], false, usize::MAX) {
            Decoded::Frame(f, used) => {
                assert_eq!(used, hdr + len);
                assert!(f.fin);
                assert_eq!(f.opcode, OP_TEXT);
                assert_eq!(f.payload, payload);
            }
            other => panic!("{other:?}"),
        }
        // Server frames are unmasked, so the server's own decoder refuses them.
        assert!(matches!(
            decode_frame(&buf[1..], true, usize::MAX),
            Decoded::Error(CLOSE_PROTOCOL, _)
        ));
        // Every strict prefix is incomplete.
        for cut in [0, 1, hdr - 1, hdr + len - 1] {
            if cut < hdr + len {
                assert_eq!(
                    decode_frame(&buf[1..1 + cut], false, usize::MAX),
                    Decoded::Incomplete
                );
            }
        }
    }

    #[test]
    fn server_frames_all_length_forms() {
        for len in [0, 1, 125, 126, 127, 300, 65535, 65536, 70_000] {
            roundtrip(len);
        }
        let mut b = Vec::new();
        write_frame(&mut b, OP_PING, b"17");
        assert_eq!(b, [0x89, 2, b'1', b'7']);
        let mut b = Vec::new();
        write_close(&mut b, 1000, "bye");
        assert_eq!(b, [0x88, 5, 0x03, 0xe8, b'b', b'y', b'e']);
    }

    #[test]
    fn masked_client_frames() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in [0usize, 5, 125, 126, 1000, 65535, 65536] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let enc = encode_client_frame(OP_TEXT, &payload, mask);
            match decode_frame(&enc, true, 1 << 20) {
                Decoded::Frame(f, used) => {
                    assert_eq!(used, enc.len());
                    assert_eq!(f.payload, payload);
                }
                other => panic!("{len}: {other:?}"),
            }
            assert_eq!(
                decode_frame(&enc[..enc.len() - 1], true, 1 << 20),
                Decoded::Incomplete
            );
        }
        // RFC 6455 5.7: masked "Hello".
        let hello = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        match decode_frame(&hello, true, 1024) {
            Decoded::Frame(f, 11) => assert_eq!(f.payload, b"Hello"),
            other => panic!("{other:?}"),
        }
        // Two frames back to back: the first decode consumes only the first.
        let mut two = encode_client_frame(OP_PING, b"a", mask);
        two.extend(encode_client_frame(OP_PONG, b"bc", mask));
        let Decoded::Frame(f, used) = decode_frame(&two, true, 1024) else {
            panic!()
        };
        assert_eq!((f.opcode, f.payload.as_slice()), (OP_PING, &b"a"[..]));
        let Decoded::Frame(f, _) = decode_frame(&two[used..], true, 1024) else {
            panic!()
        };
        assert_eq!((f.opcode, f.payload.as_slice()), (OP_PONG, &b"bc"[..]));
    }

    #[test]
    fn protocol_errors() {
        let mask = [1, 2, 3, 4];
        let big = encode_client_frame(OP_TEXT, &[0u8; 2000], mask);
        assert_eq!(
            decode_frame(&big, true, 1000),
            Decoded::Error(CLOSE_TOO_BIG, "frame too large")
        );
        let ping = encode_client_frame(OP_PING, &[0u8; 126], mask);
        assert!(matches!(
            decode_frame(&ping, true, 1 << 20),
            Decoded::Error(CLOSE_PROTOCOL, _)
        ));
        let mut rsv = encode_client_frame(OP_TEXT, b"x", mask);
        rsv[0] |= 0x40; // RSV1 = compressed, which we never negotiated
        assert!(matches!(
            decode_frame(&rsv, true, 1024),
            Decoded::Error(CLOSE_PROTOCOL, _)
        ));
        let mut op = encode_client_frame(OP_TEXT, b"x", mask);
        op[0] = 0x83;
        assert!(matches!(
            decode_frame(&op, true, 1024),
            Decoded::Error(CLOSE_PROTOCOL, _)
        ));
        let mut frag = encode_client_frame(OP_PING, b"x", mask);
        frag[0] &= 0x7f;
        assert!(matches!(
            decode_frame(&frag, true, 1024),
            Decoded::Error(CLOSE_PROTOCOL, _)
        ));
    }
}
