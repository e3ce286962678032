//! How remote mode reaches its server: the TLS configuration (the system's CA certificates
//! or `--ca-cert`'s, a client certificate), whether a host is a loopback address (where plain
//! HTTP is accepted; elsewhere only when allowed), and request bodies streamed from a reader.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::CliError;

/// A request body streamed from `reader` in 1 MiB reads, counting the bytes into `sent`.
pub(super) fn body_of(
    reader: impl tokio::io::AsyncRead + Send + 'static,
    sent: Arc<AtomicU64>,
) -> reqwest::Body {
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, 1 << 20).inspect(move |c| {
        if let Ok(c) = c {
            sent.fetch_add(c.len() as u64, Ordering::SeqCst);
        }
    });
    reqwest::Body::wrap_stream(stream)
}

/// Whether `host` (a URL's host: an IP address, IPv6 in brackets, or a name) is a loopback
/// address.
fn is_loopback(host: &str) -> bool {
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Refuses to send a token over plain HTTP beyond loopback, where it and the data would cross
/// the network in the clear, unless `VAULTDB_ALLOW_PLAIN_HTTP` is `true` (or `1`), as `serve`
/// refuses to listen there; warns when it is allowed.
///
/// # Errors
/// `INVALID_CONFIG` when refused.
pub(super) fn check_plain_http(server: &str, url: &reqwest::Url) -> Result<(), CliError> {
    if url.scheme() != "http" || url.host_str().is_some_and(|h| h == "localhost" || is_loopback(h))
    {
        return Ok(());
    }
    let allowed = std::env::var("VAULTDB_ALLOW_PLAIN_HTTP");
    if !matches!(allowed.as_deref().map(str::trim), Ok("true" | "1")) {
        return Err(CliError::config(format!(
            "--server {server}: plain HTTP beyond loopback would send the token and the data \
             in the clear: use https://, or set VAULTDB_ALLOW_PLAIN_HTTP=true on a trusted network"
        )));
    }
    eprintln!(
        "warning: --server {server}: plain HTTP beyond loopback, the token and the data cross \
         the network in the clear (use https://)"
    );
    Ok(())
}

/// The certificates of the PEM file `p` (`flag` names it in errors).
fn read_certs(flag: &str, p: &Path) -> Result<Vec<CertificateDer<'static>>, CliError> {
    let bad = |e: String| CliError::input(format!("{flag} {}: {e}", p.display()));
    let certs = CertificateDer::pem_file_iter(p)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    Ok(certs)
}

/// The TLS configuration of the client: the system's CA certificates, or `ca_cert`'s; the
/// client certificate and key of `client`, if given.
pub(super) fn tls_config(
    ca_cert: Option<&Path>,
    client: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, CliError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_cert {
        Some(p) => {
            for c in read_certs("--ca-cert", p)? {
                roots
                    .add(c)
                    .map_err(|e| CliError::input(format!("--ca-cert {}: {e}", p.display())))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CliError::new("INTERNAL_ERROR", format!("TLS: {e}")))?
        .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let certs = read_certs("--client-cert", cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                // The parser's details could quote the file: only the kind of failure.
                let why = match e {
                    pem::Error::Io(e) => e.to_string(),
                    _ => "no PEM private key in it".to_owned(),
                };
                CliError::input(format!("--client-key {}: {why}", key.display()))
            })?;
            builder.with_client_auth_cert(certs, key).map_err(|e| {
                CliError::input(format!("--client-cert {} with --client-key: {e}", cert.display()))
            })?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
