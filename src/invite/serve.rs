//! The invite page's accept loop, hardened for a listener on the open Internet: at most
//! [`Limits::max_connections`] connections at once (more are closed at once, never queued),
//! each with a TLS handshake deadline, a deadline for a request's headers (a client trickling
//! them is closed), one for a whole request (a trickled body), and a longest life; on shutdown
//! open connections get a bounded drain. `axum::serve` sets none of these. A cap per client
//! address is left to what publishes the page: behind an Ingress every connection comes from
//! the ingress controller's address.
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// The bounds of [`serve`].
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once (in handshake or open); one more is closed at once.
    pub max_connections: usize,
    /// A client must finish its TLS handshake within this long.
    pub handshake_timeout: Duration,
    /// A request's headers must arrive within this long, and a kept-alive connection is
    /// closed after this long without a new request.
    pub header_read_timeout: Duration,
    /// A request (headers, body and answer) must be done within this long; else 408.
    pub request_timeout: Duration,
    /// No connection lives longer than this (a page is a few requests).
    pub max_connection_age: Duration,
    /// On shutdown, open connections are waited for at most this long.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connection_age: Duration::from_secs(120),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `tcp` with TLS from `acceptor` within `limits` until `shutdown`, then
/// lets the connections in flight finish (for at most `drain_timeout`).
pub async fn serve<F>(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    router: axum::Router,
    limits: Limits,
    shutdown: F,
) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let router = router.layer(axum::middleware::from_fn_with_state(
        limits.request_timeout,
        request_deadline,
    ));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    tracing::debug!(%error, "invite page: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Full: closed at once rather than queued, so a flood cannot hold memory.
            tracing::debug!("invite page: connection limit reached, closing a new connection");
            drop(stream);
            continue;
        };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let tls = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "invite page: TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("invite page: TLS handshake timed out");
                    return;
                }
            };
            let service = TowerToHyperService::new(router);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(tls), service);
            let conn = watcher.watch(conn);
            match tokio::time::timeout(limits.max_connection_age, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%error, "invite page: connection ended with an error"),
                Err(_) => tracing::debug!("invite page: connection closed at its longest life"),
            }
        });
    }
    drop(tcp);
    let _ = tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await;
    Ok(())
}

/// 408 for a request not done within `timeout` (a body trickled byte by byte holds its
/// connection no longer than this). Writes a handler started run on in their own task.
async fn request_deadline(
    axum::extract::State(timeout): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::debug!("invite page: a request took longer than its deadline");
            axum::response::IntoResponse::into_response(axum::http::StatusCode::REQUEST_TIMEOUT)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TLS configuration without a certificate: these tests never finish a handshake.
    fn acceptor() -> TlsAcceptor {
        #[derive(Debug)]
        struct NoCert;
        impl rustls::server::ResolvesServerCert for NoCert {
            fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
                None
            }
        }
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(NoCert));
        TlsAcceptor::from(Arc::new(config))
    }

    /// How long until the server closes `stream` (reads EOF or an error), at most `within`.
    async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<Duration> {
        let started = std::time::Instant::now();
        let eof = async {
            let mut buf = [0u8; 64];
            loop {
                if stream.readable().await.is_err() {
                    return;
                }
                match stream.try_read(&mut buf) {
                    Ok(0) => return,
                    Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return,
                    _ => {}
                }
            }
        };
        tokio::time::timeout(within, eof)
            .await
            .ok()
            .map(|()| started.elapsed())
    }

    #[tokio::test]
    async fn connections_over_the_cap_are_closed_at_once_and_a_silent_client_at_its_deadline() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = tcp.local_addr().expect("addr");
        let limits = Limits {
            max_connections: 2,
            handshake_timeout: Duration::from_secs(3),
            ..Limits::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(tcp, acceptor(), axum::Router::new(), limits, async {
            let _ = stopped.await;
        }));
        // Two silent clients hold both places (their handshakes never start); the loop accepts
        // in order, so both hold a permit before the third is looked at.
        let mut first = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut second = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut third = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let refused = closed_within(&mut third, Duration::from_secs(2)).await;
        assert!(refused.is_some(), "the third connection is closed at once");
        // The silent ones are closed at the handshake deadline, not before and not never.
        assert!(
            closed_within(&mut first, Duration::from_millis(500))
                .await
                .is_none(),
            "open before the deadline"
        );
        assert!(closed_within(&mut first, Duration::from_secs(6)).await.is_some());
        assert!(closed_within(&mut second, Duration::from_secs(6)).await.is_some());
        // Places are free again: a new connection is held (not closed at once).
        let mut fourth = tokio::net::TcpStream::connect(addr).await.expect("connect");
        assert!(
            closed_within(&mut fourth, Duration::from_millis(500))
                .await
                .is_none()
        );
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve ends on shutdown")
            .expect("task")
            .expect("serve");
    }
}
