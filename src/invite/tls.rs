//! TLS for the invite page: the certificate and key from PEM files (a mounted
//! `kubernetes.io/tls` Secret), read again when they change so a renewal applies without a
//! restart, and a listener that completes handshakes concurrently (one slow client cannot hold
//! up the others) before handing connections to axum.
//!
//! Built on tokio-rustls with the ring provider kube already uses: no second TLS stack and no
//! new crate in the tree (axum-server's rustls feature would bring its own accept loop and, by
//! default, the aws-lc-rs provider).
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How often the PEM files are looked at for a renewal.
const RELOAD_INTERVAL: Duration = Duration::from_secs(10);
/// A client must finish its handshake within this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for axum to take them.
const BACKLOG: usize = 64;

/// Why the certificate or key cannot be used (paths named; no key material quoted).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate: {reason}")]
    NoCertificate { path: PathBuf, reason: String },
    #[error("{path} holds no usable PEM private key: {reason}")]
    NoKey { path: PathBuf, reason: String },
    #[error(
        "the key in {key} does not fit the certificate in {cert}, or its type is not supported: {reason}"
    )]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("building the TLS configuration: {0}")]
    Config(String),
}

/// The PEM files and what they held when last read.
struct Files {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
}

impl Files {
    fn read(&self) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|source| TlsError::Read {
                path: p.to_path_buf(),
                source,
            })
        };
        Ok((read(&self.cert)?, read(&self.key)?))
    }

    fn parse(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::NoCertificate {
                path: self.cert.clone(),
                reason: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: self.cert.clone(),
                reason: "no CERTIFICATE block".into(),
            });
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::NoKey {
            path: self.key.clone(),
            reason: e.to_string(),
        })?;
        CertifiedKey::from_der(chain, key, &self.provider).map_err(|e| TlsError::Mismatch {
            cert: self.cert.clone(),
            key: self.key.clone(),
            reason: e.to_string(),
        })
    }
}

/// Serves the certificate last read; [`Resolver::watch`] swaps in a renewed one.
#[derive(Debug)]
pub struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(crate::sync::read(&self.current).clone())
    }
}

/// Reads `cert` and `key` (failing at start-up if they cannot be used) with the ring provider
/// kube uses; returns the acceptor and the task that swaps in renewed files (to be spawned).
pub fn load(
    cert: &Path,
    key: &Path,
) -> Result<
    (
        TlsAcceptor,
        impl std::future::Future<Output = ()> + Send + 'static + use<>,
    ),
    TlsError,
> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let files = Files {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        provider: provider.clone(),
    };
    let (cert_pem, key_pem) = files.read()?;
    let resolver = Arc::new(Resolver {
        current: RwLock::new(Arc::new(files.parse(&cert_pem, &key_pem)?)),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((
        TlsAcceptor::from(Arc::new(config)),
        watch(files, resolver, cert_pem, key_pem),
    ))
}

/// Reads the files every [`RELOAD_INTERVAL`]; changed and usable, they replace the served
/// certificate. A broken renewal is logged and the previous certificate kept.
async fn watch(files: Files, resolver: Arc<Resolver>, mut cert_pem: Vec<u8>, mut key_pem: Vec<u8>) {
    let mut tick = tokio::time::interval(RELOAD_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (cert, key) = match files.read() {
            Ok(read) => read,
            Err(error) => {
                tracing::warn!(%error, "invite page: cannot read the TLS files; serving the previous certificate");
                continue;
            }
        };
        if cert == cert_pem && key == key_pem {
            continue;
        }
        match files.parse(&cert, &key) {
            Ok(loaded) => {
                *crate::sync::write(&resolver.current) = Arc::new(loaded);
                tracing::info!(cert = %files.cert.display(), "invite page: serving the renewed TLS certificate");
                (cert_pem, key_pem) = (cert, key);
            }
            // A renewal written file by file can be read half-way: tried again next tick.
            Err(error) => {
                tracing::warn!(%error, "invite page: the changed TLS files are not usable (yet); serving the previous certificate")
            }
        }
    }
}

/// A listener whose connections are TLS streams, handshaken concurrently in tasks of their own.
pub struct TlsListener {
    incoming: tokio::sync::mpsc::Receiver<(TlsStream<tokio::net::TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `tcp` and completes each handshake with `acceptor` (within
    /// [`HANDSHAKE_TIMEOUT`]); failed handshakes are dropped (logged at debug).
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, incoming) = tokio::sync::mpsc::channel(BACKLOG);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::debug!(%error, "invite page: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (handed, acceptor) = (tx.clone(), acceptor.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = handed.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%error, "invite page: TLS handshake failed"),
                        Err(_) => tracing::debug!("invite page: TLS handshake timed out"),
                    }
                });
                if tx.is_closed() {
                    return;
                }
            }
        });
        Ok(TlsListener { incoming, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(conn) => conn,
            // The accept task ended (it never does while the listener lives): nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
