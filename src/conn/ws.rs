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

pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(64 * 1024)
        .max_message_size(Some(HARD_LIMIT_BYTES))
        .max_frame_size(Some(HARD_LIMIT_BYTES))
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
