//! [`preflight`]: the JetStream resolution ([`super::jsapi`]) on a
//! connection of its own, for `run` (before any core starts) and
//! `check-config --connect` (a dry run).

use super::apiconn::ApiConn;
use super::config::{NatsSinkConfig, ServerAddr};
use super::conn::{self, ConnError};
use super::route::{Resolution, Want};
use std::time::Duration;

/// Connects to the first reachable server of `cfg` and resolves the
/// transports (and, if `apply`, makes the stream change) on a connection of
/// its own. Runs on a short-lived executor thread. `Err` = no server could
/// be reached or asked (the caller decides whether that is fatal).
pub fn preflight(
    cfg: &NatsSinkConfig,
    wants: &[Want],
    apply: bool,
    timeout: Duration,
) -> Result<Resolution, String> {
    let cfg = cfg.clone();
    let wants = wants.to_vec();
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("nats-preflight")
        .io_memory(256 << 10)
        .blocking_thread_pool_placement(glommio::PoolPlacement::Unbound(1))
        .spawn(move || async move {
            let mut last = String::from("no server configured");
            for addr in cfg.server_addrs() {
                match conn::with_timeout(timeout, "NATS preflight", async {
                    preflight_one(&addr, &cfg, &wants, apply, timeout)
                        .await
                        .map_err(ConnError::Proto)
                })
                .await
                {
                    Ok(r) => return Ok(r),
                    Err(e) => last = format!("{addr}: {e}"),
                }
            }
            Err(last)
        })
        .map_err(|e| format!("starting the NATS preflight executor: {e}"))?;
    ex.join()
        .map_err(|e| format!("NATS preflight executor: {e}"))?
}

async fn preflight_one(
    addr: &ServerAddr,
    cfg: &NatsSinkConfig,
    wants: &[Want],
    apply: bool,
    timeout: Duration,
) -> Result<Resolution, String> {
    let mut c = ApiConn::open(addr, cfg, "marketprism-preflight", "mppre", timeout)
        .await
        .map_err(|e| e.to_string())?;
    c.io()
        .resolve(cfg, wants, apply)
        .await
        .map_err(|e| e.to_string())
}
