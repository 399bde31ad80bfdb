//! A TCP stream, with or without TLS, behind one futures-io type so the
//! WebSocket and HTTP layers do not care which.

use super::busy::BusyTcp;
use futures_lite::io::{AsyncRead, AsyncWrite};
use futures_rustls::client::TlsStream;
use glommio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The stream.
pub struct Transport {
    io: Io,
}

enum Io {
    Tls(Box<TlsStream<BusyTcp>>),
    Plain(BusyTcp),
}

impl Transport {
    pub fn tls(s: TlsStream<BusyTcp>) -> Transport {
        Transport {
            io: Io::Tls(Box::new(s)),
        }
    }

    pub fn plain(s: TcpStream) -> Transport {
        Transport {
            io: Io::Plain(BusyTcp::new(s)),
        }
    }

    /// Busy-polls the socket for `window` after each read that returned
    /// data (a spinning core's sessions; see [`BusyTcp`]).
    pub fn busy_poll(&mut self, window: Duration) {
        match &mut self.io {
            Io::Tls(s) => s.get_mut().0.busy_poll(window),
            Io::Plain(s) => s.busy_poll(window),
        }
    }

    /// The last read found nothing and registered with the core's `ppoll`.
    pub fn in_kernel(&self) -> bool {
        match &self.io {
            Io::Tls(s) => s.get_ref().0.in_kernel(),
            Io::Plain(s) => s.in_kernel(),
        }
    }

    /// The last read busy-polled, found nothing and woke its task again.
    pub fn spun(&self) -> bool {
        match &self.io {
            Io::Tls(s) => s.get_ref().0.spun(),
            Io::Plain(s) => s.spun(),
        }
    }

    /// While set, reads hand out only bytes already decrypted and buffered,
    /// never reading the socket ([`BusyTcp::memory_only`]).
    pub fn memory_only(&mut self, on: bool) {
        match &mut self.io {
            Io::Tls(s) => s.get_mut().0.memory_only(on),
            Io::Plain(s) => s.memory_only(on),
        }
    }

    /// Connects (trying every resolved address) and, with a TLS config,
    /// performs the handshake verifying `host`.
    pub async fn connect(
        host: &str,
        port: u16,
        tls: Option<&Arc<ClientConfig>>,
        timeout: Duration,
    ) -> io::Result<Transport> {
        let tcp = super::dns::connect(host, port, timeout).await?;
        let Some(cfg) = tls else {
            return Ok(Transport::plain(tcp));
        };
        let name = ServerName::try_from(host.to_string()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad TLS name {host}: {e}"),
            )
        })?;
        let connector = futures_rustls::TlsConnector::from(cfg.clone());
        let handshake = connector.connect(name, BusyTcp::new(tcp));
        let stream = futures_lite::FutureExt::or(handshake, async {
            glommio::timer::sleep(timeout).await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            ))
        })
        .await?;
        Ok(Transport::tls(stream))
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Io::Plain(s) => Pin::new(s).poll_close(cx),
        }
    }
}
