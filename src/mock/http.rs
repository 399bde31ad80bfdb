//! Just enough HTTP/1.1 for the mock: parse a request head (bounded size),
//! and build complete responses. Bodies are small JSON documents.

/// Largest request head accepted; bigger heads get a 400.
pub(crate) const MAX_HEAD: usize = 16 * 1024;

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Raw (still percent-encoded) query string, without `?`.
    pub query: String,
    /// HTTP minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// First value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header contains `token` (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// HTTP/1.1 defaults to keep-alive, HTTP/1.0 to close.
    pub fn keep_alive(&self) -> bool {
        if self.header_has_token("connection", "close") {
            return false;
        }
        self.minor >= 1 || self.header_has_token("connection", "keep-alive")
    }

    /// Decoded query parameters.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// Declared body length (`None` when the framing is unsupported).
    pub fn content_length(&self) -> Option<usize> {
        if self.header("transfer-encoding").is_some() {
            return None;
        }
        match self.header("content-length") {
            None => Some(0),
            Some(v) => v.trim().parse().ok(),
        }
    }
}

/// Why a request head could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadError {
    Malformed,
    TooLarge,
}

/// Parses a request head from the front of `buf`. `Ok(None)`: incomplete so
/// far. `Ok(Some((req, n)))`: the head took `n` bytes.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<(Request, usize)>, HeadError> {
    let end = match find_head_end(buf) {
        Some(e) => e,
        None if buf.len() > MAX_HEAD => return Err(HeadError::TooLarge),
        None => return Ok(None),
    };
    if end > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| HeadError::Malformed)?;
    let mut lines = head.split("\r\n");
    // Tolerate stray empty lines before the request line (RFC 9112 2.2).
    let request_line = lines
        .by_ref()
        .find(|l| !l.is_empty())
        .ok_or(HeadError::Malformed)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(HeadError::Malformed);
    }
    let minor = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ => return Err(HeadError::Malformed),
    };
    if !target.starts_with('/') {
        return Err(HeadError::Malformed);
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':').ok_or(HeadError::Malformed)?;
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(HeadError::Malformed);
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok(Some((
        Request {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            minor,
            headers,
        },
        end + 4,
    )))
}

/// Offset of the `\r\n\r\n` that ends the head.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// A complete response with a JSON body.
pub(crate) fn json_response(
    status: u16,
    body: &str,
    extra_headers: &[(&str, String)],
    keep_alive: bool,
) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in extra_headers {
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    out.push_str(body);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_request_head() {
        let raw = b"GET /stream?streams=btcusdt%40trade/ethusdt@trade HTTP/1.1\r\nHost: localhost:9\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key:  abc== \r\n\r\nEXTRA";
        let (req, n) = parse_head(raw).unwrap().unwrap();
        assert_eq!(n, raw.len() - 5);
        assert_eq!(req.method, "GET");
        assert_eq!(req.path, "/stream");
        assert_eq!(req.minor, 1);
        assert_eq!(req.header("sec-websocket-key"), Some("abc=="));
        assert_eq!(req.header("HOST"), Some("localhost:9"));
        assert!(req.header_has_token("connection", "upgrade"));
        assert!(req.keep_alive());
        assert_eq!(
            req.query_pairs(),
            vec![(
                "streams".to_string(),
                "btcusdt@trade/ethusdt@trade".to_string()
            )]
        );
        assert_eq!(req.content_length(), Some(0));
    }

    #[test]
    fn incomplete_and_keep_alive_rules() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        assert_eq!(parse_head(b""), Ok(None));
        let (r, _) = parse_head(b"GET /a HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!r.keep_alive());
        let (r, _) = parse_head(b"GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(r.keep_alive());
        let (r, _) = parse_head(b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!r.keep_alive());
        let (r, _) = parse_head(b"POST /a HTTP/1.1\r\nContent-Length: 12\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(r.content_length(), Some(12));
    }

    #[test]
    fn rejects_malformed_heads() {
        for bad in [
            &b"GET\r\n\r\n"[..],
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET nopath HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
            b"\r\n\r\n",
        ] {
            assert_eq!(parse_head(bad), Err(HeadError::Malformed), "{bad:?}");
        }
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        assert_eq!(parse_head(&big), Err(HeadError::TooLarge));
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_head(&big), Err(HeadError::TooLarge));
    }

    #[test]
    fn builds_responses() {
        let r = json_response(200, "{}", &[("X-MBX-USED-WEIGHT-1M", "20".into())], true);
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nX-MBX-USED-WEIGHT-1M: 20\r\nConnection: keep-alive\r\n\r\n{}"
        );
        let r = String::from_utf8(json_response(404, "{\"x\":1}", &[], false)).unwrap();
        assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(r.contains("Connection: close\r\n"));
    }
}
