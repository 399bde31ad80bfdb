//! A minimal HTTP/1.1 GET over `std::net::TcpStream` (plain HTTP only):
//! `Connection: close`, bounded by one overall deadline, body framed by
//! `Content-Length`, chunked encoding, or EOF.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest response accepted (a scrape of many cores is a few hundred KiB).
const MAX_RESPONSE: usize = 64 << 20;

/// `http://host:port[/prefix]`, split once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing `/` (usually empty).
    pub prefix: String,
}

impl Target {
    /// Accepts `http://host[:port][/prefix]` or `host[:port]`; port 80 by default.
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            return Err(format!("{url}: https is not supported (plain http only)"));
        } else if url.contains("://") {
            return Err(format!("{url}: only http:// URLs are supported"));
        } else {
            url
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("{url}: no host"));
        }
        let (host, port) = if let Some(h) = authority.strip_prefix('[') {
            // [v6]:port
            let end = h.find(']').ok_or_else(|| format!("{url}: bad IPv6 host"))?;
            let port = match h[end + 1..].strip_prefix(':') {
                Some(p) => p,
                None if h.len() == end + 1 => "80",
                None => return Err(format!("{url}: bad host")),
            };
            (&h[..end], port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, p),
                None => (authority, "80"),
            }
        };
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{url}: bad port `{port}`"))?;
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        Ok(Target {
            host: host.to_string(),
            port,
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    /// The full URL of `path` (for messages).
    pub fn url(&self, path: &str) -> String {
        if self.host.contains(':') {
            format!(
                "http://[{}]:{}{}{}",
                self.host, self.port, self.prefix, path
            )
        } else {
            format!("http://{}:{}{}{}", self.host, self.port, self.prefix, path)
        }
    }
}

/// Status code and body of one response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// GETs `path` (appended to the target's prefix). Every failure is one line
/// naming the URL.
pub fn get(target: &Target, path: &str, timeout: Duration) -> Result<Response, String> {
    let url = target.url(path);
    get_inner(target, path, timeout).map_err(|e| format!("{url}: {e}"))
}

fn get_inner(target: &Target, path: &str, timeout: Duration) -> Result<Response, String> {
    let deadline = Instant::now() + timeout;
    let addrs: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host: {e}"))?
        .collect();
    let mut last_err = String::from("no address");
    let mut stream = None;
    for a in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            last_err = "timed out connecting".into();
            break;
        }
        match TcpStream::connect_timeout(&a, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = format!("cannot connect: {e}"),
        }
    }
    let mut stream = stream.ok_or(last_err)?;
    let _ = stream.set_nodelay(true);
    stream
        .set_write_timeout(Some(remaining(deadline)?))
        .map_err(|e| e.to_string())?;
    let host = if target.host.contains(':') {
        format!("[{}]", target.host)
    } else {
        target.host.clone()
    };
    let req = format!(
        "GET {}{} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: marketprism-top\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        target.prefix, path, host, target.port
    );
    stream
        .write_all(req.as_bytes())
        .map_err(|e| format!("cannot send request: {e}"))?;

    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    let mut head: Option<Head> = None;
    loop {
        if head.is_none() {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                head = Some(parse_head(&buf[..end])?);
                buf.drain(..end + 4);
            }
        }
        if let Some(h) = &head {
            if let Some(body) = complete_body(h, &buf)? {
                return Ok(Response {
                    status: h.status,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
            }
        }
        stream
            .set_read_timeout(Some(remaining(deadline)?))
            .map_err(|e| e.to_string())?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("timed out after {:?}", timeout));
            }
            Err(e) => return Err(format!("read failed: {e}")),
        };
        if n == 0 {
            // EOF: fine when the body runs to the end of the stream.
            return match head {
                Some(h) if h.length.is_none() && !h.chunked => Ok(Response {
                    status: h.status,
                    body: String::from_utf8_lossy(&buf).into_owned(),
                }),
                Some(_) => Err("connection closed mid-body".into()),
                None => Err("connection closed before a response".into()),
            };
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            return Err(format!("response larger than {MAX_RESPONSE} bytes"));
        }
    }
}

fn remaining(deadline: Instant) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err("timed out".into())
    } else {
        Ok(left)
    }
}

#[derive(Debug)]
struct Head {
    status: u16,
    length: Option<usize>,
    chunked: bool,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(raw: &[u8]) -> Result<Head, String> {
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let proto = parts.next().unwrap_or_default();
    if !proto.starts_with("HTTP/") {
        return Err(format!("not an HTTP response: `{status_line}`"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line `{status_line}`"))?;
    let mut head = Head {
        status,
        length: None,
        chunked: false,
    };
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            head.length = Some(v.parse().map_err(|_| format!("bad Content-Length `{v}`"))?);
        } else if k.eq_ignore_ascii_case("transfer-encoding")
            && v.to_ascii_lowercase().contains("chunked")
        {
            head.chunked = true;
        }
    }
    if head.chunked {
        head.length = None;
    }
    Ok(head)
}

/// The body once all of it is in `buf`; `None` while more is needed.
fn complete_body(h: &Head, buf: &[u8]) -> Result<Option<Vec<u8>>, String> {
    if h.status == 204 || h.status == 304 || (100..200).contains(&h.status) {
        return Ok(Some(Vec::new()));
    }
    if h.chunked {
        return dechunk(buf);
    }
    match h.length {
        Some(n) if buf.len() >= n => Ok(Some(buf[..n].to_vec())),
        _ => Ok(None),
    }
}

/// Decodes a chunked body; `None` until the last chunk has arrived.
fn dechunk(mut buf: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = find(buf, b"\r\n") else {
            return Ok(None);
        };
        let size_text = String::from_utf8_lossy(&buf[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size `{size_hex}`"))?;
        buf = &buf[eol + 2..];
        if size == 0 {
            // Trailers (if any) end with an empty line; we need not wait for them.
            return Ok(Some(out));
        }
        if buf.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&buf[..size]);
        buf = &buf[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let t = Target::parse("http://127.0.0.1:9092").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.prefix.as_str()),
            ("127.0.0.1", 9092, "")
        );
        assert_eq!(t.url("/metrics"), "http://127.0.0.1:9092/metrics");
        let t = Target::parse("localhost:9092/x/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.prefix.as_str()),
            ("localhost", 9092, "/x")
        );
        let t = Target::parse("http://[::1]:9092/").unwrap();
        assert_eq!(t.url("/health"), "http://[::1]:9092/health");
        assert_eq!(Target::parse("http://h").unwrap().port, 80);
        assert!(Target::parse("https://h:1").unwrap_err().contains("https"));
        assert!(Target::parse("http://h:x").is_err());
        assert!(Target::parse("http://:1").is_err());
    }

    #[test]
    fn decodes_chunked_and_heads() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
                .unwrap()
                .unwrap(),
            b"abcde"
        );
        assert_eq!(dechunk(b"3\r\nab").unwrap(), None);
        assert!(dechunk(b"zz\r\n").is_err());
        let h = parse_head(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 12").unwrap();
        assert_eq!((h.status, h.length, h.chunked), (503, Some(12), false));
        assert!(parse_head(b"SSH-2.0-OpenSSH").is_err());
    }
}
