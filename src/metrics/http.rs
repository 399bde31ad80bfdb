//! The `/metrics` and `/health` listener: hyper's HTTP/1 server on one core's
//! executor. It only *reads* the other cores' stats (relaxed atomic loads),
//! so serving a scrape never blocks a core.

use super::{render, Exporter};
use bytes::Bytes;
use glommio::net::TcpListener;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `/health` body and status: 200 while every planned connection is up,
/// 200 "degraded" while some are, 503 while none is.
pub fn health(exporter: &Exporter) -> (StatusCode, String) {
    let mut up = 0;
    let mut planned = 0;
    let mut cores = Vec::new();
    for c in exporter.cores.iter() {
        let (u, p) = (c.connections_up(), c.connections_planned());
        up += u;
        planned += p;
        cores.push(format!(
            "{{\"core\":{},\"cpu\":{},\"connections_up\":{},\"connections_planned\":{}}}",
            c.shard, c.cpu, u, p
        ));
    }
    let (code, status) = if planned > 0 && up >= planned {
        (StatusCode::OK, "ok")
    } else if up > 0 {
        (StatusCode::OK, "degraded")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "down")
    };
    let body = format!(
        "{{\"status\":\"{status}\",\"connections_up\":{up},\"connections_planned\":{planned},\"uptime_s\":{},\"cores\":[{}]}}",
        exporter.started.elapsed().as_secs(),
        cores.join(",")
    );
    (code, body)
}

fn respond(exporter: &Exporter, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let (code, ctype, body) = match req.uri().path() {
        "/metrics" => (StatusCode::OK, OPENMETRICS, render(exporter)),
        "/health" => {
            let (c, b) = health(exporter);
            (c, "application/json", b)
        }
        _ => (
            StatusCode::NOT_FOUND,
            "application/json",
            "{\"error\":\"not found; try /metrics or /health\"}".to_string(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = code;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// Serves until the task is cancelled.
pub async fn serve(listener: TcpListener, exporter: Exporter) {
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                log::warn!("http accept failed: {e}");
                glommio::timer::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let ex = exporter.clone();
        glommio::spawn_local(async move {
            let svc = hyper::service::service_fn(move |req| {
                let r = respond(&ex, &req);
                async move { Ok::<_, Infallible>(r) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(smol_hyper::rt::FuturesIo::new(stream), svc)
                .await
            {
                log::debug!("http connection ended: {e}");
            }
        })
        .detach();
    }
}
