//! Opening one NATS connection: TCP (DNS off the executor, every address
//! tried), read INFO, upgrade to TLS when the URL is `tls://` or INFO says
//! `tls_required` (NATS does TLS *after* INFO), then CONNECT + PING and wait
//! for PONG or `-ERR`. Also the reusable read buffer both the handshake and the
//! publisher's reader use.

use super::config::ServerAddr;
use super::proto::{self, Op, ServerInfo};
use crate::conn::Transport;
use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// Why a connection attempt or a session ended.
#[derive(Debug)]
pub enum ConnError {
    Io(io::Error),
    /// The server sent something we cannot parse or did not expect.
    Proto(String),
    /// `-ERR` from the server (authorization, permissions, ...).
    Server(String),
    Timeout(&'static str),
    /// Our own setup (TLS config, missing credentials, ...).
    Config(String),
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "I/O error: {e}"),
            ConnError::Proto(e) => write!(f, "protocol error: {e}"),
            ConnError::Server(e) => write!(f, "server error: -ERR {e}"),
            ConnError::Timeout(what) => write!(f, "timed out: {what}"),
            ConnError::Config(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

impl From<proto::ProtoError> for ConnError {
    fn from(e: proto::ProtoError) -> Self {
        ConnError::Proto(e.0)
    }
}

/// Runs `fut`, failing with `Timeout(what)` after `dur`.
pub async fn with_timeout<T>(
    dur: Duration,
    what: &'static str,
    fut: impl Future<Output = Result<T, ConnError>>,
) -> Result<T, ConnError> {
    futures_lite::FutureExt::or(fut, async {
        glommio::timer::sleep(dur).await;
        Err(ConnError::Timeout(what))
    })
    .await
}

/// Received bytes not yet parsed, in one buffer reused for the connection's
/// life: parsed ops are consumed from the front, the rest is moved down only
/// when more room is needed.
pub struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    pub fn new(cap: usize) -> Self {
        ReadBuf {
            buf: vec![0; cap],
            start: 0,
            end: 0,
        }
    }

    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    #[inline]
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Reads more bytes. `limit` caps the buffer (one whole message must fit).
    /// EOF is an error: the server closed the connection.
    pub async fn fill<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        limit: usize,
    ) -> Result<usize, ConnError> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < limit {
                let n = (self.buf.len() * 2).clamp(4096, limit);
                self.buf.resize(n, 0);
            } else {
                return Err(ConnError::Proto(format!(
                    "incoming message larger than {limit} bytes"
                )));
            }
        }
        let n = r.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(ConnError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            )));
        }
        self.end += n;
        Ok(n)
    }
}

/// Read-buffer limit for a server's max_payload: one whole message plus its
/// control line.
pub fn read_limit(max_payload: usize) -> usize {
    max_payload + proto::MAX_CONTROL_LINE + 64
}

/// Everything the handshake needs besides the address.
pub struct HandshakeParams<'a> {
    pub tls: Option<&'a Arc<ClientConfig>>,
    pub name: &'a str,
    pub user: Option<&'a str>,
    pub pass: Option<&'a str>,
    pub token: Option<&'a str>,
    pub timeout: Duration,
}

/// An open, authenticated connection.
pub struct Opened {
    pub stream: Transport,
    pub info: ServerInfo,
    pub rbuf: ReadBuf,
}

/// Connects to `addr` and completes INFO / (TLS) / CONNECT / PING-PONG.
pub async fn open(addr: &ServerAddr, p: &HandshakeParams<'_>) -> Result<Opened, ConnError> {
    with_timeout(p.timeout, "NATS handshake", open_inner(addr, p)).await
}

async fn open_inner(addr: &ServerAddr, p: &HandshakeParams<'_>) -> Result<Opened, ConnError> {
    let mut tcp = crate::conn::dns::connect(&addr.host, addr.port, p.timeout).await?;
    let mut rbuf = ReadBuf::new(64 * 1024);
    // INFO arrives in plain text, even on TLS servers.
    let info = loop {
        match proto::parse_op(rbuf.data(), 0)? {
            Some((Op::Info(json), n)) => {
                let info = proto::parse_info(json)?;
                rbuf.consume(n);
                break info;
            }
            Some((Op::Err(e), _)) => {
                return Err(ConnError::Server(String::from_utf8_lossy(e).into_owned()))
            }
            Some(_) => return Err(ConnError::Proto("expected INFO first".into())),
            None => {
                rbuf.fill(&mut tcp, proto::MAX_CONTROL_LINE + 2).await?;
            }
        }
    };
    let want_tls = addr.tls || info.tls_required;
    let mut stream = if want_tls {
        let Some(cfg) = p.tls else {
            return Err(ConnError::Config(
                "TLS needed but no TLS configuration".into(),
            ));
        };
        if !rbuf.data().is_empty() {
            return Err(ConnError::Proto("data after INFO before TLS".into()));
        }
        let name = ServerName::try_from(addr.host.clone())
            .map_err(|e| ConnError::Config(format!("bad TLS name {}: {e}", addr.host)))?;
        let tls = futures_rustls::TlsConnector::from(cfg.clone())
            .connect(name, crate::conn::busy::BusyTcp::new(tcp))
            .await?;
        Transport::tls(tls)
    } else {
        Transport::plain(tcp)
    };
    if !info.headers {
        return Err(ConnError::Config(format!(
            "server {} (version {}) does not support headers; JetStream publishing needs them",
            addr, info.version
        )));
    }
    let mut out = Vec::with_capacity(512);
    proto::encode_connect(
        &mut out,
        &proto::Connect {
            verbose: false,
            pedantic: false,
            tls_required: want_tls,
            name: p.name,
            lang: "rust",
            version: env!("CARGO_PKG_VERSION"),
            protocol: 1,
            headers: true,
            no_responders: true,
            user: p.user,
            pass: p.pass,
            auth_token: p.token,
        },
    );
    stream.write_all(&out).await?;
    stream.flush().await?;
    let max_payload = info.max_payload.unwrap_or(1 << 20) as usize;
    loop {
        while let Some((op, n)) = proto::parse_op(rbuf.data(), max_payload)? {
            match op {
                Op::Pong => {
                    rbuf.consume(n);
                    return Ok(Opened { stream, info, rbuf });
                }
                Op::Err(e) => {
                    return Err(ConnError::Server(String::from_utf8_lossy(e).into_owned()))
                }
                Op::Ping => {
                    rbuf.consume(n);
                    write_flush(&mut stream, b"PONG\r\n").await?;
                }
                _ => rbuf.consume(n),
            }
        }
        rbuf.fill(&mut stream, read_limit(max_payload)).await?;
    }
}

pub async fn write_flush<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> Result<(), ConnError> {
    w.write_all(bytes).await?;
    w.flush().await?;
    Ok(())
}
