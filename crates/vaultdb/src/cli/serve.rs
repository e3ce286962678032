//! `vaultdb serve`: the REST server ([`crate::server`]) on the configured store.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::output::Output;
use super::{Create, open_store, prepare};
use crate::audit::{self, AuditLog};
use crate::config::ServerConfig;
use crate::error::CliError;
use crate::server::tls::{self, Reloading, TlsFiles};
use crate::server::{AppState, Connections, Limits, app};
use crate::service::{self, AUDIT_UNAVAILABLE, FallbackToken};

/// `serve`'s `--tls-cert`, `--tls-key` and `--tls-client-ca`: each replaces its setting.
#[derive(Debug, Default)]
pub(super) struct TlsFlags {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
}

impl TlsFlags {
    /// The TLS files to serve with: the flags over the configuration; `None` for plain HTTP.
    fn resolve(self, server: &ServerConfig) -> Result<Option<TlsFiles>, CliError> {
        let cert = self.cert.or_else(|| server.tls_cert.clone());
        let key = self.key.or_else(|| server.tls_key.clone());
        let client_ca = self.client_ca.or_else(|| server.tls_client_ca.clone());
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key, client_ca })),
            (None, None) if client_ca.is_none() => Ok(None),
            _ => Err(CliError::config(
                "HTTPS needs both a certificate and its key (server.tls_cert and \
                 server.tls_key, or --tls-cert and --tls-key); a client CA needs them too",
            )),
        }
    }
}

/// `vaultdb serve [--listen ADDR] [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]`: the
/// REST server, until Ctrl-C or SIGTERM (requests in flight finish first). With a
/// certificate it serves HTTPS, and reloads the certificate on SIGHUP and when its files
/// change ([`crate::server::tls`]). With `--json` it prints what it serves (address, token,
/// audit log, TLS files) as one JSON line, and `{"stopped":true}` when it stops.
///
/// # Errors
/// `INVALID_CONFIG` for a bad address or one it cannot listen on, or TLS files that cannot
/// be loaded; the store's errors when it cannot be opened.
pub(super) async fn serve(
    explicit: Option<&Path>,
    listen: Option<String>,
    tls: TlsFlags,
    out: Output,
) -> Result<(), CliError> {
    let cfg = prepare(explicit, None)?;
    let addr: std::net::SocketAddr = match listen {
        Some(l) => l.parse().map_err(|_| {
            CliError::config(format!("--listen {l:?} is not an address like 127.0.0.1:8080"))
        })?,
        None => cfg.listen,
    };
    let tls = match tls.resolve(&cfg.config.server)? {
        Some(files) => Some(Reloading::new(files).map_err(CliError::config)?),
        None => None,
    };
    if !addr.ip().is_loopback() && tls.is_none() && !cfg.config.server.allow_plain_http {
        return Err(CliError::config(format!(
            "{addr} is beyond loopback: over plain HTTP, bearer tokens and records would cross \
             the network in the clear; serve HTTPS (server.tls_cert and server.tls_key), \
             listen on loopback behind a TLS-terminating proxy, or set \
             server.allow_plain_http = true (VAULTDB_ALLOW_PLAIN_HTTP=true) on a trusted \
             network"
        )));
    }
    let given = std::env::var("VAULTDB_TOKEN").ok();
    let (tokens, fallback) = service::serve_tokens(&cfg, given.as_deref())?;
    if !cfg.audit_fail_open
        && let Err(e) = audit::check_writable(&cfg.audit_log)
    {
        return Err(CliError::new(
            AUDIT_UNAVAILABLE,
            format!(
                "cannot write the audit log {}: {e} (it fails closed: see audit.fail_open)",
                cfg.audit_log.display()
            ),
        ));
    }
    // The quick start's first command: on an empty store this creates it, and says so.
    let db = open_store(&cfg, Create::Announce).await?;
    if db.has_moved() {
        return Err(CliError::config(format!(
            "the store {} has moved to a new configuration (`vaultdb reshare`); it refuses \
             every request: start `vaultdb serve` with the new configuration file (--config \
             NEW.toml)",
            cfg.describe()
        )));
    }
    cfg.clean_fs_temp().await;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::config(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::config(format!("cannot listen on {addr}: {e}")))?;
    if !local.ip().is_loopback() && tls.is_none() {
        tracing::warn!(%local, "listening beyond loopback over plain HTTP (allow_plain_http)");
    }
    let limits = Limits {
        body_limit: usize::try_from(cfg.config.server.body_limit.0).unwrap_or(usize::MAX),
        request_timeout: cfg.config.server.request_timeout.0,
    };
    let log = AuditLog::new(&cfg.audit_log, &db).with_fail_open(cfg.audit_fail_open);
    let state = AppState::new(db, tokens, Some(log), limits);
    // A re-share into this store that starts while it runs is followed: reads through to
    // the old store, writes here (see the README, "Re-sharing a running store").
    let fresh = match state.db().list_page(None, 1).await {
        Ok(page) => page.ids.is_empty() && page.next.is_none(),
        Err(_) => true,
    };
    state.follow_reshares(cfg.clone(), fresh);
    let every = cfg.settings().fence_check.map(|f| f / 2);
    let following = every.map(|every| {
        let state = state.clone();
        tokio::spawn(async move { state.watch_reshares(every).await })
    });
    let base = format!("{}://{local}", if tls.is_some() { "https" } else { "http" });
    let fails_open = if cfg.audit_fail_open {
        " (fails open: requests run even when it cannot be written)"
    } else {
        ""
    };
    let mut text = format!(
        "vaultdb {} serving {}\nlistening on {base}\naudit log: {}{fails_open}",
        env!("CARGO_PKG_VERSION"),
        cfg.describe(),
        cfg.audit_log.display()
    );
    let curl = format!("  curl -H \"Authorization: Bearer $VAULTDB_TOKEN\" {base}/v1/records");
    match &fallback {
        Some(FallbackToken::Generated(token)) => text.push_str(&format!(
            "\n\nNo API token is configured, so this run generated an admin token (only its \
             hash is kept).\nUse it like this:\n\n  export VAULTDB_TOKEN={token}\n{curl}\n"
        )),
        Some(FallbackToken::FromEnv) => text.push_str(&format!(
            "\nNo API token is configured; accepting the admin token in VAULTDB_TOKEN:\n{curl}"
        )),
        None => {}
    }
    let files = tls.as_ref().map(|t| t.files());
    if let Some(f) = &files {
        text.push_str(&format!(
            "\nTLS: certificate {}, key {}{} (reloaded on SIGHUP and when they change)",
            f.cert.display(),
            f.key.display(),
            f.client_ca
                .as_ref()
                .map(|ca| format!(", client certificates required (CA {})", ca.display()))
                .unwrap_or_default()
        ));
    }
    out.emit(
        || text,
        || {
            json!({
                "version": env!("CARGO_PKG_VERSION"),
                "store": cfg.describe(),
                "listen": base,
                "audit_log": cfg.audit_log,
                "audit_fail_open": cfg.audit_fail_open,
                "token": match &fallback {
                    Some(FallbackToken::Generated(token)) => Some(token.as_str()),
                    _ => None,
                },
                "token_from_env": matches!(fallback, Some(FallbackToken::FromEnv)),
                "tls": files.map(|f| json!({
                    "cert": f.cert, "key": f.key, "client_ca": f.client_ca,
                })),
            })
        },
    )?;
    let routes = app(state.clone());
    let connections = Connections {
        max: cfg.config.server.max_connections,
        header_timeout: cfg.config.server.request_timeout.0,
    };
    let interval = cfg.config.server.tls_reload_interval.0;
    let watching = tls.clone().map(|tls| tokio::spawn(tls::watch(tls, interval)));
    let served = crate::server::serve(listener, tls, routes, connections, shutdown_signal()).await;
    if let Some(w) = watching {
        w.abort();
    }
    if let Some(f) = following {
        f.abort();
    }
    let served = served.map_err(|e| CliError::new("INTERNAL_ERROR", format!("server error: {e}")));
    // The audit log's last counted requests and checkpoint.
    state.shutdown().await;
    served?;
    out.emit(|| "vaultdb stopped".to_owned(), || json!({"stopped": true}))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
