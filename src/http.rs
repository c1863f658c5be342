//! Health and metrics HTTP server.
//!
//! Serves `/healthz` (liveness), `/readyz` (readiness) and `/metrics` (Prometheus scrape) for the
//! kubelet and Prometheus; it carries no operator API.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// Content type of [`Metrics::encode`] output, which is OpenMetrics text.
const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Shared state of the health/metrics server.
#[derive(Clone, Debug)]
pub struct HttpState {
    /// Metrics rendered on `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Answer of `/readyz`; set once the operator is able to do its work.
    pub ready: Arc<AtomicBool>,
}

/// Binds `addr` and returns the bound address (so port 0 works) plus the serving future,
/// which completes when `shutdown` completes.
///
/// Binding happens before the future is returned so that a port conflict is reported at start-up
/// rather than when the future is first polled.
pub async fn bind(
    addr: SocketAddr,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, impl Future<Output = std::io::Result<()>> + Send)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(state);
    let serve = async move { axum::serve(listener, app).with_graceful_shutdown(shutdown).await };
    Ok((local, serve))
}

/// Routes of the server; unknown paths get axum's default empty 404.
fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Liveness: answering at all proves the runtime is not wedged.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness, as set by the operator in [`HttpState::ready`].
async fn readyz(State(state): State<HttpState>) -> (StatusCode, &'static str) {
    // Relaxed is enough: the flag guards no other memory, it is only reported.
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Prometheus scrape endpoint.
async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        state.metrics.encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::net::TcpStream;

    /// A parsed HTTP/1.1 response.
    struct Response {
        status: u16,
        head: String,
        body: String,
    }

    /// Sends `GET path` over a fresh connection and reads the response until the server closes it.
    ///
    /// Uses the readiness-based `try_read`/`try_write` API so the test needs no tokio feature
    /// beyond `net`.
    async fn get(addr: SocketAddr, path: &str) -> Response {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let mut pending = request.as_bytes();
        while !pending.is_empty() {
            stream.writable().await.expect("writable");
            match stream.try_write(pending) {
                Ok(n) => pending = &pending[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("write: {e}"),
            }
        }
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            stream.readable().await.expect("readable");
            match stream.try_read(&mut buf) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        let text = String::from_utf8(raw).expect("utf-8 response");
        let (head, body) = text.split_once("\r\n\r\n").expect("header/body separator");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        Response {
            status,
            head: head.to_ascii_lowercase(),
            body: body.to_owned(),
        }
    }

    #[tokio::test]
    async fn serves_health_readiness_metrics_and_404() {
        let metrics = Arc::new(Metrics::new());
        metrics.reconcile_failed("SipUser", "kube_api");
        let state = HttpState {
            metrics,
            ready: Arc::new(AtomicBool::new(false)),
        };
        let (stop, stopped) = futures::channel::oneshot::channel::<()>();
        let (addr, serve) = bind("127.0.0.1:0".parse().expect("addr"), state.clone(), async move {
            let _ = stopped.await;
        })
        .await
        .expect("bind");
        assert_ne!(addr.port(), 0);
        let server = tokio::spawn(serve);

        let health = get(addr, "/healthz").await;
        assert_eq!((health.status, health.body.as_str()), (200, "ok"));

        let ready = get(addr, "/readyz").await;
        assert_eq!((ready.status, ready.body.as_str()), (503, "not ready"));
        state.ready.store(true, Ordering::Relaxed);
        let ready = get(addr, "/readyz").await;
        assert_eq!((ready.status, ready.body.as_str()), (200, "ok"));

        let scrape = get(addr, "/metrics").await;
        assert_eq!(scrape.status, 200);
        assert!(
            scrape
                .head
                .contains(&format!("content-type: {OPENMETRICS_CONTENT_TYPE}"))
        );
        assert!(
            scrape
                .body
                .contains("sip_operator_reconcile_errors_total{kind=\"SipUser\",error=\"kube_api\"} 1")
        );
        assert!(scrape.body.ends_with("# EOF\n"));

        let missing = get(addr, "/nope").await;
        assert_eq!(missing.status, 404);

        stop.send(()).expect("server still listening");
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("server stops after shutdown")
            .expect("server task")
            .expect("server result");
    }

    #[tokio::test]
    async fn bind_reports_address_in_use() {
        let state = HttpState {
            metrics: Arc::new(Metrics::new()),
            ready: Arc::new(AtomicBool::new(true)),
        };
        let (addr, _serve) = bind("127.0.0.1:0".parse().expect("addr"), state.clone(), async {})
            .await
            .expect("first bind");
        assert!(bind(addr, state, async {}).await.is_err());
    }
}
