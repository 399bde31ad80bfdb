//! Name resolution off the executor and connecting to every resolved address
//! in turn. (glommio's own `connect(&str)` resolves on the reactor thread,
//! tries only the first address and panics on an empty answer.)

use glommio::net::TcpStream;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;
use url::{Host, Url};

/// Host and port of a URL (default ports by scheme).
pub fn host_port(url: &Url) -> io::Result<(String, u16)> {
    let host = match url.host() {
        Some(Host::Domain(d)) => d.to_string(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        None => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{url} has no host"),
            ))
        }
    };
    let port = url
        .port_or_known_default()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{url} has no port")))?;
    Ok((host, port))
}

/// Resolves on glommio's blocking pool (getaddrinfo blocks).
pub async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let h = host.to_string();
    let addrs = glommio::executor()
        .spawn_blocking(move || {
            (h.as_str(), port)
                .to_socket_addrs()
                .map(|i| i.collect::<Vec<_>>())
        })
        .await?;
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host} resolved to no address"),
        ));
    }
    Ok(addrs)
}

/// Resolves and connects to the first address that accepts.
pub async fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let addrs = resolve(host, port).await?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(addr, timeout).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(io::Error::other(format!("{addr}: {e}"))),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
}
