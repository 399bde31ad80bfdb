//! Connections: DNS off the executor, TCP + rustls, WebSocket framing,
//! reconnect backoff, and how a core waits for its sockets (`busy`, `kwait`).
//! Nothing here knows a venue's JSON.

pub mod backoff;
pub mod busy;
pub mod dns;
pub mod kwait;
pub mod tls;
pub mod transport;
pub mod ws;

pub use backoff::Backoff;
pub use transport::Transport;
