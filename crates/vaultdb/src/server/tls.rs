//! HTTPS for `vaultdb serve`: rustls (on aws-lc-rs, the provider the workspace uses) over
//! the server's TCP listener, with optional client certificates, and certificate reload.
//!
//! [`TlsFiles::load`] reads `server.tls_cert` (the chain, PEM), `server.tls_key` (its key,
//! PEM) and, if set, `server.tls_client_ca` (PEM CA certificates: clients must then present
//! a certificate signed by one of them) into a rustls configuration. [`Reloading`] holds the
//! configuration in use; [`watch`] reloads it on SIGHUP and when one of the files changes
//! (`server.tls_reload_interval`),
//! and a reload that fails keeps the configuration in use and logs why (paths and the
//! parser's reason, never key material). The server's connections
//! (`connections.rs`) each do their handshake with the configuration in use when it
//! began, in their own task (a slow client holds up no one else).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

/// How often [`watch`] looks at the files for a change, by default
/// (`server.tls_reload_interval`).
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// The PEM files of the server's TLS configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The leaf's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates that client certificates must chain to; `None`: no client
    /// certificates are asked for.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Reads the files into a server configuration (TLS 1.2 and 1.3, HTTP/1.1 by ALPN).
    ///
    /// # Errors
    /// One line naming the file and what is wrong with it (never key material): unreadable,
    /// not PEM, no certificate or key in it, a key that does not match the certificate.
    pub fn load(&self) -> Result<Arc<ServerConfig>, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let certs = read_certs(&self.cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| {
            // The parser's details could quote the file: only the kind of failure.
            let why = match e {
                pem::Error::Io(e) => e.to_string(),
                pem::Error::NoItemsFound => "no private key in it".to_owned(),
                _ => "not a PEM private key".to_owned(),
            };
            format!("tls_key {}: {why}", self.key.display())
        })?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in read_certs(ca)? {
                    roots.add(c).map_err(|e| format!("tls_client_ca {}: {e}", ca.display()))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| format!("tls_client_ca {}: {e}", ca.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| {
            format!("tls_cert {} with tls_key {}: {e}", self.cert.display(), self.key.display())
        })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// What [`watch`] compares to notice a change: each file's modification time, length
    /// and (on Unix) inode, or nothing if it cannot be read.
    fn stamp(&self) -> Vec<Option<(SystemTime, u64, u64)>> {
        let files = [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()];
        files
            .into_iter()
            .flatten()
            .map(|p| {
                let m = std::fs::metadata(p).ok()?;
                #[cfg(unix)]
                let ino = std::os::unix::fs::MetadataExt::ino(&m);
                #[cfg(not(unix))]
                let ino = 0;
                Some((m.modified().ok()?, m.len(), ino))
            })
            .collect()
    }
}

/// The certificates of a PEM file (at least one).
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bad = |e: pem::Error| format!("{}: {e}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(bad)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", path.display()));
    }
    Ok(certs)
}

/// The TLS configuration in use, replaced by [`Reloading::reload`].
#[derive(Debug)]
pub struct Reloading {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl Reloading {
    /// Loads `files` ([`TlsFiles::load`]).
    ///
    /// # Errors
    /// What [`TlsFiles::load`] says.
    pub fn new(files: TlsFiles) -> Result<Arc<Self>, String> {
        let config = files.load()?;
        Ok(Arc::new(Self { files, current: RwLock::new(config) }))
    }

    /// The files.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again: on success new handshakes use them; on failure the
    /// configuration in use stays, and the reason is logged. Returns whether it reloaded.
    pub fn reload(&self, why: &str) -> bool {
        match self.files.load() {
            Ok(config) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
                tracing::info!("TLS certificate reloaded ({why})");
                true
            }
            Err(e) => {
                tracing::warn!("TLS reload ({why}) failed, the current certificate stays: {e}");
                false
            }
        }
    }

    /// An acceptor with the configuration in use.
    pub(super) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

/// Reloads `tls` on SIGHUP, and when its files change (looked at every `interval`; never if
/// `None`); runs until the task is aborted.
pub async fn watch(tls: Arc<Reloading>, interval: Option<Duration>) {
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| tracing::warn!("cannot listen for SIGHUP (reload on file change only): {e}"))
        .ok();
    let mut seen = tls.files.stamp();
    let mut tick = tokio::time::interval(interval.unwrap_or(DEFAULT_RELOAD_INTERVAL));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<()>();
        tokio::select! {
            () = hangup => {
                seen = tls.files.stamp();
                tls.reload("SIGHUP");
            }
            _ = tick.tick(), if interval.is_some() => {
                let now = tls.files.stamp();
                // Once per change: a failed reload is not retried until the files change
                // again (or SIGHUP).
                if now != seen {
                    seen = now;
                    tls.reload("the files changed");
                }
            }
        }
    }
}
