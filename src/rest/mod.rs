//! A small HTTPS GET client for venue REST endpoints: hyper's HTTP/1 client
//! over the same [`Transport`] the WebSocket uses (no tokio), with a timeout
//! and a body-size limit. [`get`] opens one connection per call (start-up);
//! [`Client`] keeps one alive per venue on a core (snapshots, polling), and
//! [`budget::Budget`] keeps the venue's request weight in bounds.

pub mod budget;

pub use budget::Budget;

use crate::conn::{dns, Transport};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use rustls::ClientConfig;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Larger answers are refused (exchangeInfo is ~2 MB today).
pub const MAX_BODY_BYTES: usize = 64 << 20;

#[derive(Debug)]
pub struct RestResponse {
    pub status: u16,
    pub body: Bytes,
    /// `X-MBX-USED-WEIGHT-1M` if the venue sent it.
    pub used_weight_1m: Option<u64>,
    /// `Retry-After` seconds if sent (429/418).
    pub retry_after_s: Option<u64>,
}

#[derive(Debug)]
pub struct RestError(pub String);

impl fmt::Display for RestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RestError {}

/// One kept-alive HTTP/1 connection to one host (per venue, per core).
/// Requests on it are sequential; a failed or closed connection is replaced
/// on the next call.
pub struct Client {
    tls: Option<Arc<ClientConfig>>,
    conn: Option<Conn>,
}

struct Conn {
    authority: String,
    tx: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    driver: glommio::task::JoinHandle<()>,
}

impl Client {
    pub fn new(tls: Option<Arc<ClientConfig>>) -> Client {
        Client { tls, conn: None }
    }

    /// GET `url`, reusing the open connection when it is to the same host.
    pub async fn get(&mut self, url: &Url, timeout: Duration) -> Result<RestResponse, RestError> {
        let tls = self.tls.clone();
        let work = async {
            let (host, port) = dns::host_port(url).map_err(|e| RestError(e.to_string()))?;
            let authority = format!("{}://{host}:{port}", url.scheme());
            let reusable =
                matches!(&self.conn, Some(c) if c.authority == authority && !c.tx.is_closed());
            if !reusable {
                if let Some(old) = self.conn.take() {
                    drop(old.tx);
                    old.driver.cancel();
                }
                let tls = if url.scheme() == "https" {
                    tls.as_ref()
                } else {
                    None
                };
                let (tx, driver) = open(&host, port, tls, timeout).await?;
                self.conn = Some(Conn {
                    authority,
                    tx,
                    driver,
                });
            }
            let Some(conn) = self.conn.as_mut() else {
                return Err(RestError("no connection".into()));
            };
            conn.tx
                .ready()
                .await
                .map_err(|e| RestError(format!("connection not ready: {e}")))?;
            send(&mut conn.tx, url, &host).await
        };
        let r = futures_lite::FutureExt::or(work, async {
            glommio::timer::sleep(timeout).await;
            Err(RestError(format!("GET {url} timed out after {timeout:?}")))
        })
        .await;
        if r.is_err() {
            // A timed-out or broken connection may be mid-response: never reuse it.
            if let Some(old) = self.conn.take() {
                drop(old.tx);
                old.driver.cancel();
            }
        }
        r
    }
}

async fn open(
    host: &str,
    port: u16,
    tls: Option<&Arc<ClientConfig>>,
    timeout: Duration,
) -> Result<
    (
        hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
        glommio::task::JoinHandle<()>,
    ),
    RestError,
> {
    let transport = Transport::connect(host, port, tls, timeout)
        .await
        .map_err(|e| RestError(format!("connect {host}:{port}: {e}")))?;
    let (tx, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(
        smol_hyper::rt::FuturesIo::new(transport),
    )
    .await
    .map_err(|e| RestError(format!("HTTP handshake: {e}")))?;
    let driver = glommio::spawn_local(async move {
        let _ = conn.await;
    })
    .detach();
    Ok((tx, driver))
}

async fn send(
    tx: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    url: &Url,
    host: &str,
) -> Result<RestResponse, RestError> {
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path.push('?');
        path.push_str(q);
    }
    let host_header = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, host_header)
        .header(
            hyper::header::USER_AGENT,
            concat!("marketprism/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| RestError(format!("request: {e}")))?;
    let resp = tx
        .send_request(req)
        .await
        .map_err(|e| RestError(format!("GET {url}: {e}")))?;
    let status = resp.status().as_u16();
    let header_u64 = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let used_weight_1m = header_u64("x-mbx-used-weight-1m");
    let retry_after_s = header_u64("retry-after");
    let body = Limited::new(resp.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| RestError(format!("reading body of {url}: {e}")))?
        .to_bytes();
    Ok(RestResponse {
        status,
        body,
        used_weight_1m,
        retry_after_s,
    })
}

/// GET `url` (`https` uses `tls`), one connection per call.
pub async fn get(
    url: &Url,
    tls: Option<&Arc<ClientConfig>>,
    timeout: Duration,
) -> Result<RestResponse, RestError> {
    let work = async {
        let (host, port) = dns::host_port(url).map_err(|e| RestError(e.to_string()))?;
        let tls = if url.scheme() == "https" { tls } else { None };
        let (mut tx, driver) = open(&host, port, tls, timeout).await?;
        let r = send(&mut tx, url, &host).await;
        drop(tx);
        driver.cancel();
        r
    };
    futures_lite::FutureExt::or(work, async {
        glommio::timer::sleep(timeout).await;
        Err(RestError(format!("GET {url} timed out after {timeout:?}")))
    })
    .await
}

/// `base` + a venue path with query (`/api/v3/depth?symbol=X`), keeping any
/// path prefix of `base` (e.g. a mock mounted under a prefix).
pub fn join(base: &Url, path_and_query: &str) -> Result<Url, String> {
    let s = format!("{}{}", base.as_str().trim_end_matches('/'), path_and_query);
    Url::parse(&s).map_err(|e| format!("{s}: {e}"))
}
