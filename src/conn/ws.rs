//! WebSocket client over [`Transport`]: tungstenite (via async-tungstenite, no
//! runtime feature) with a 1 MiB message limit and no compression. It knows
//! nothing of venue JSON. Server pings are answered by tungstenite itself
//! (the pong is queued and flushed on the next read).

use super::transport::Transport;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::WebSocketStream;
use rustls::ClientConfig;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

pub type WsStream = WebSocketStream<Transport>;

/// Largest message parsed (MarketPrism's `max_size`); larger ones are
/// counted and skipped by the reader, the connection stays up.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Largest message read at all: past it the WebSocket layer fails the
/// connection (memory stays bounded whatever a peer sends).
pub const HARD_LIMIT_BYTES: usize = 16 << 20;

/// tungstenite zero-fills up to this much of its buffer before every read,
/// also before a read that finds nothing (half the reads at low rates), so
/// it is kept to one TLS record's plaintext (16 KiB): larger reads save
/// nothing, the bytes read and zeroed per frame being the same.
pub const READ_BUFFER_BYTES: usize = 16 * 1024;

pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(HARD_LIMIT_BYTES))
        .max_frame_size(Some(HARD_LIMIT_BYTES))
}

/// Longest `Retry-After` obeyed: a bad header must not park a connection
/// for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The wait a refused upgrade asked for: `Retry-After` seconds of a 429,
/// 418 or 503 answer (venues send it when connections come too fast or
/// during maintenance), capped at [`MAX_RETRY_AFTER`].
pub fn retry_after(e: &io::Error) -> Option<Duration> {
    use async_tungstenite::tungstenite::Error;
    let Some(Error::Http(resp)) = e.get_ref()?.downcast_ref::<Error>() else {
        return None;
    };
    if !matches!(resp.status().as_u16(), 418 | 429 | 503) {
        return None;
    }
    let secs: u64 = resp
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// Opens `url` (`wss://` needs `tls`) and completes the WebSocket handshake.
pub async fn connect(
    url: &Url,
    tls: Option<&Arc<ClientConfig>>,
    timeout: Duration,
) -> io::Result<WsStream> {
    let (host, port) = super::dns::host_port(url)?;
    let tls =
        match url.scheme() {
            "wss" => Some(tls.ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "wss needs TLS config")
            })?),
            _ => None,
        };
    let transport = Transport::connect(&host, port, tls, timeout).await?;
    let handshake =
        async_tungstenite::client_async_with_config(url.as_str(), transport, Some(ws_config()));
    let result =
        futures_lite::FutureExt::or(async { handshake.await.map_err(io::Error::other) }, async {
            glommio::timer::sleep(timeout).await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "WebSocket handshake timed out",
            ))
        })
        .await?;
    Ok(result.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_tungstenite::tungstenite::http::Response;
    use async_tungstenite::tungstenite::Error;

    fn refused(status: u16, header: Option<&str>) -> io::Error {
        let mut r = Response::builder().status(status);
        if let Some(h) = header {
            r = r.header("Retry-After", h);
        }
        io::Error::other(Error::Http(Box::new(r.body(None).unwrap())))
    }

    #[test]
    fn retry_after_of_refused_upgrades() {
        assert_eq!(
            retry_after(&refused(503, Some("2"))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&refused(429, Some(" 30 "))),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(&refused(418, Some("999999999"))),
            Some(MAX_RETRY_AFTER)
        );
        // Not a throttling answer, no header, a date (not followed), or no HTTP.
        assert_eq!(retry_after(&refused(404, Some("2"))), None);
        assert_eq!(retry_after(&refused(503, None)), None);
        assert_eq!(
            retry_after(&refused(503, Some("Wed, 21 Oct 2026 07:28:00 GMT"))),
            None
        );
        assert_eq!(retry_after(&io::Error::other("reset")), None);
    }
}
