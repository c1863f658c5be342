//! Invites for end users: the one-time token of a SipUserInvite's link, its expiry, the check
//! of a password the end user chooses, and the HTTPS page that serves the link (every replica
//! serves it, leader or not).
pub mod claim;
pub mod expiry;
pub mod handlers;
pub mod index;
pub mod pages;
pub mod policy;
pub mod serve;
pub mod settings;
pub mod tls;
pub mod token;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use kube::Client;
use kube::runtime::events::Reporter;

use crate::scope::Scope;

/// Why the page cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Where and how the page is served (the `--invite-*` flags).
#[derive(Clone, Debug)]
pub struct Listen {
    /// The address to listen on.
    pub addr: SocketAddr,
    /// PEM certificate chain and key files (a mounted `kubernetes.io/tls` Secret).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The page's public base URL (`--invite-url`), for the provisioning URLs it shows.
    pub base_url: Option<String>,
}

/// Binds `listen.addr` with TLS from its files and returns the bound address and the serving
/// future (which also watches the invites and reloads the certificate), ending with `shutdown`.
pub async fn bind<F>(
    listen: Listen,
    client: Client,
    scope: &Scope,
    reporter: Reporter,
    shutdown: F,
) -> Result<
    (
        SocketAddr,
        impl Future<Output = std::io::Result<()>> + Send + use<F>,
    ),
    ServeError,
>
where
    F: Future<Output = ()> + Send + 'static,
{
    let addr = listen.addr;
    let (acceptor, reload) = tls::load(&listen.cert, &listen.key)?;
    let tcp = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })?;
    let local = tcp
        .local_addr()
        .map_err(|source| ServeError::Listen { addr, source })?;
    let apis = scope.apis(&client);
    let index = Arc::new(index::Index::new(apis.len()));
    let page = handlers::Page {
        client: client.clone(),
        index: index.clone(),
        events: crate::controller::EventSink::new(client, reporter),
        base_url: listen.base_url,
    };
    let serve = async move {
        let reloading = tokio::spawn(reload);
        let feeding = tokio::spawn(index::feed(index, apis));
        let served = serve::serve(
            tcp,
            acceptor,
            handlers::router(page),
            serve::Limits::default(),
            shutdown,
        )
        .await;
        reloading.abort();
        feeding.abort();
        served
    };
    Ok((local, serve))
}
