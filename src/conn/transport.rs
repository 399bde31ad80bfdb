//! A TCP stream, with or without TLS, behind one futures-io type so the
//! WebSocket and HTTP layers do not care which.

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

pub enum Transport {
    Tls(Box<TlsStream<TcpStream>>),
    Plain(TcpStream),
}

impl Transport {
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
            return Ok(Transport::Plain(tcp));
        };
        let name = ServerName::try_from(host.to_string()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad TLS name {host}: {e}"),
            )
        })?;
        let connector = futures_rustls::TlsConnector::from(cfg.clone());
        let handshake = connector.connect(name, tcp);
        let stream = futures_lite::FutureExt::or(handshake, async {
            glommio::timer::sleep(timeout).await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            ))
        })
        .await?;
        Ok(Transport::Tls(Box::new(stream)))
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Transport::Plain(s) => Pin::new(s).poll_close(cx),
        }
    }
}
