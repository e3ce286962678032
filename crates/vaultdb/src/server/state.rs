//! The server's shared state ([`AppState`]) and limits ([`Limits`]), and the audit sink the
//! server writes to.

use std::sync::Arc;
use std::time::Duration;

use vaultdb_core::VaultDb;

use super::audit::ServerAudit;
use crate::audit::{AuditLog, Event};
use crate::auth::Tokens;
use crate::metrics::Metrics;
use crate::service::{AuditSink, AuditUnavailable, Operation};

/// Server limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_limit: crate::config::DEFAULT_BODY_LIMIT as usize,
            request_timeout: crate::config::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    db: VaultDb,
    tokens: Tokens,
    audit: Option<ServerAudit>,
    metrics: Metrics,
    limits: Limits,
    openapi_json: String,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("db", &self.inner.db)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// How often the server writes counted requests and checkpoints its audit log.
const AUDIT_TICK: Duration = Duration::from_secs(1);

impl AppState {
    /// State over an open store, the accepted tokens, an optional audit log (over the same
    /// store: see [`AuditLog::new`]) and limits. With an audit log, and inside a Tokio
    /// runtime, a task writes counted requests and checkpoints the log once a second
    /// while the state lives; [`AppState::shutdown`] does so a last time.
    pub fn new(db: VaultDb, tokens: Tokens, audit: Option<AuditLog>, limits: Limits) -> Self {
        let openapi_json = super::openapi().to_json().unwrap_or_else(|_| "{}".to_owned());
        let state = Self {
            inner: Arc::new(Inner {
                db,
                tokens,
                audit: audit.map(ServerAudit::new),
                metrics: Metrics::default(),
                limits,
                openapi_json,
            }),
        };
        if state.inner.audit.is_some()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let weak = Arc::downgrade(&state.inner);
            rt.spawn(async move {
                let mut tick = tokio::time::interval(AUDIT_TICK);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(inner) = weak.upgrade() else { break };
                    if let Some(a) = &inner.audit {
                        a.flush(&inner.metrics).await;
                        a.checkpoint(false).await;
                    }
                }
            });
        }
        state
    }

    /// The store.
    pub fn db(&self) -> &VaultDb {
        &self.inner.db
    }

    /// The request metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Writes what the audit log still owes (counted requests, a checkpoint of its head):
    /// call it once the server has stopped taking requests.
    pub async fn shutdown(&self) {
        if let Some(a) = &self.inner.audit {
            a.flush(&self.inner.metrics).await;
            a.checkpoint(true).await;
        }
    }

    /// The accepted tokens.
    pub(super) fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    /// The limits in force.
    pub(super) fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// The OpenAPI document, rendered once.
    pub(super) fn openapi_json(&self) -> &str {
        &self.inner.openapi_json
    }

    /// Counts a refused request without a valid token (written once a second).
    pub(super) fn tally(&self, op: Operation, outcome: &str) {
        if let Some(a) = &self.inner.audit {
            a.tally(op, outcome);
        }
    }

    /// The audit log's state for `/health`: `None` without a log; else whether it can be
    /// written now, and whether it fails open.
    pub(super) async fn audit_health(&self) -> Option<(bool, bool)> {
        let a = self.inner.audit.as_ref()?;
        Some((a.writable(&self.inner.metrics).await, a.log.fail_open()))
    }

    /// A failed check or write: refused when the log fails closed.
    fn audit_result(&self, r: std::io::Result<()>) -> Result<(), AuditUnavailable> {
        let Some(a) = &self.inner.audit else { return Ok(()) };
        a.note(&r, &self.inner.metrics);
        match r {
            Err(e) if !a.log.fail_open() => {
                Err(AuditUnavailable { message: format!("cannot write the audit log: {e}") })
            }
            _ => Ok(()),
        }
    }
}

/// The server's audit log, if it has one: checked and appended off the async threads; a
/// failure is logged and counted in the metrics (`vaultdb_audit_write_failures_total`), and
/// refuses the request unless the log fails open.
impl AuditSink for AppState {
    fn enabled(&self) -> bool {
        self.inner.audit.is_some()
    }

    async fn ready(&self) -> Result<(), AuditUnavailable> {
        let Some(a) = &self.inner.audit else { return Ok(()) };
        let log = Arc::clone(&a.log);
        let r = tokio::task::spawn_blocking(move || log.check_writable())
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.audit_result(r)
    }

    async fn write(&self, event: Event<'_>) -> Result<(), AuditUnavailable> {
        let Some(a) = &self.inner.audit else { return Ok(()) };
        let r = a.log.record(event).await.map(drop);
        self.audit_result(r)
    }
}
