//! A NATS connection of its own for JetStream API calls: opened from the
//! `[sink.nats]` settings (TLS, credentials) exactly like the publisher's,
//! with one inbox subscribed. Used by the start-up preflight and by
//! [`super::control::Control`].

use super::config::{NatsSinkConfig, ServerAddr};
use super::conn::{self, ConnError, HandshakeParams, ReadBuf};
use super::jsapi::ApiIo;
use super::proto;
use crate::conn::Transport;
use futures_util::io::{ReadHalf, WriteHalf};
use std::cell::Cell;
use std::time::Duration;

/// An open connection with its inbox subscribed, idle between calls.
pub struct ApiConn {
    rd: ReadHalf<Transport>,
    wr: WriteHalf<Transport>,
    rbuf: ReadBuf,
    inbox: String,
    seq: Cell<u64>,
    max_payload: usize,
    addr: ServerAddr,
}

impl ApiConn {
    /// Connects to `addr` as client `name` and subscribes `<inbox>.*` (the
    /// inbox is `_INBOX.<tag><pid>x<random>`, unique per connection).
    pub async fn open(
        addr: &ServerAddr,
        cfg: &NatsSinkConfig,
        name: &str,
        tag: &str,
        timeout: Duration,
    ) -> Result<ApiConn, ConnError> {
        let creds = cfg.credentials().map_err(ConnError::Config)?;
        // Offered to every server: a `nats://` one may still require TLS after INFO.
        let tls = match crate::conn::tls::client_config(cfg.ca_file.as_deref(), false) {
            Ok(t) => Some(t),
            Err(e) if addr.tls => return Err(ConnError::Config(e)),
            Err(_) => None,
        };
        let params = HandshakeParams {
            tls: tls.as_ref(),
            name,
            user: creds.user.as_deref(),
            pass: creds.password.as_deref(),
            token: creds.token.as_deref(),
            timeout,
        };
        let opened = conn::open(addr, &params).await?;
        let max_payload = opened.info.max_payload.map_or(1 << 20, |m| m as usize);
        let inbox = format!(
            "_INBOX.{tag}{}x{:016x}",
            std::process::id(),
            fastrand::u64(..)
        );
        let (rd, mut wr) = futures_util::io::AsyncReadExt::split(opened.stream);
        let mut out = Vec::new();
        proto::encode_sub(&mut out, &format!("{inbox}.*"), 1);
        conn::write_flush(&mut wr, &out).await?;
        Ok(ApiConn {
            rd,
            wr,
            rbuf: opened.rbuf,
            inbox,
            seq: Cell::new(0),
            max_payload,
            addr: addr.clone(),
        })
    }

    /// The call interface on this connection.
    pub fn io(&mut self) -> ApiIo<'_, ReadHalf<Transport>, WriteHalf<Transport>> {
        ApiIo {
            rd: &mut self.rd,
            wr: &mut self.wr,
            rbuf: &mut self.rbuf,
            inbox: &self.inbox,
            seq: &self.seq,
            max_payload: self.max_payload,
        }
    }

    /// The server this connection went to.
    pub fn addr(&self) -> &ServerAddr {
        &self.addr
    }
}
