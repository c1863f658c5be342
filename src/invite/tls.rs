//! TLS for the invite page: the certificate and key from PEM files (a mounted
//! `kubernetes.io/tls` Secret), read again when they change so a renewal applies without a
//! restart (the accept loop, with its handshake deadline, is in [`super::serve`]).
//!
//! Built on tokio-rustls with the ring provider kube already uses: no second TLS stack and no
//! new crate in the tree (axum-server's rustls feature would bring its own accept loop and, by
//! default, the aws-lc-rs provider).
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// How often the PEM files are looked at for a renewal.
const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

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

/// Serves the certificate last read; [`watch`] swaps in a renewed one. `None` until a usable
/// certificate has been read: handshakes fail (the client sees an alert) rather than the
/// operator stopping.
#[derive(Debug)]
pub struct Resolver {
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        crate::sync::read(&self.current).clone()
    }
}

/// Reads `cert` and `key` with the ring provider kube uses; returns the acceptor and the task
/// that swaps in renewed files (to be spawned). Files that cannot be used (not there yet, not
/// PEM, a key that does not fit) are logged as an error and looked at again every
/// [`RELOAD_INTERVAL`]; until then the page refuses handshakes, and nothing else in the
/// operator stops because of it.
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
    let (current, seen) = match files.read().and_then(|(c, k)| Ok((files.parse(&c, &k)?, (c, k)))) {
        Ok((loaded, seen)) => (Some(Arc::new(loaded)), Some(seen)),
        Err(error) => {
            tracing::error!(%error, "invite page: the TLS certificate cannot be used; refusing connections until it can (looked at every 10 s)");
            (None, None)
        }
    };
    let resolver = Arc::new(Resolver {
        current: RwLock::new(current),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), watch(files, resolver, seen)))
}

/// Reads the files every [`RELOAD_INTERVAL`]; changed and usable, they replace the served
/// certificate. A broken renewal is logged (once per distinct problem) and the previous
/// certificate, if any, kept.
async fn watch(files: Files, resolver: Arc<Resolver>, mut seen: Option<(Vec<u8>, Vec<u8>)>) {
    let mut tick = tokio::time::interval(RELOAD_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_problem: Option<String> = None;
    loop {
        tick.tick().await;
        let read = files.read();
        if let (Ok(read), Some(seen)) = (&read, &seen)
            && read == seen
        {
            continue;
        }
        match read.and_then(|(c, k)| Ok((files.parse(&c, &k)?, (c, k)))) {
            Ok((loaded, read)) => {
                *crate::sync::write(&resolver.current) = Some(Arc::new(loaded));
                tracing::info!(cert = %files.cert.display(), "invite page: serving the TLS certificate read now");
                seen = Some(read);
                last_problem = None;
            }
            // A renewal written file by file can be read half-way: tried again next tick.
            Err(error) => {
                let problem = error.to_string();
                if last_problem.as_ref() != Some(&problem) {
                    let serving = crate::sync::read(&resolver.current).is_some();
                    tracing::warn!(%error, serving_previous = serving, "invite page: the TLS files are not usable (yet)");
                    last_problem = Some(problem);
                }
            }
        }
    }
}
