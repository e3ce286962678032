//! The server's shared state ([`AppState`]) and limits ([`Limits`]), and the audit sink the
//! handlers write to.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use vaultdb_core::VaultDb;

use super::error::ApiError;
use crate::audit::{AuditLog, Event};
use crate::auth::{Actor, Tokens};
use crate::metrics::Metrics;
use crate::service::{AuditSink, Auditor, Operation};

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
    audit: Option<Arc<AuditLog>>,
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

impl AppState {
    /// State over an open store, the accepted tokens, an optional audit log and limits.
    pub fn new(db: VaultDb, tokens: Tokens, audit: Option<AuditLog>, limits: Limits) -> Self {
        let openapi_json = super::openapi().to_json().unwrap_or_else(|_| "{}".to_owned());
        Self {
            inner: Arc::new(Inner {
                db,
                tokens,
                audit: audit.map(Arc::new),
                metrics: Metrics::default(),
                limits,
                openapi_json,
            }),
        }
    }

    /// The store.
    pub fn db(&self) -> &VaultDb {
        &self.inner.db
    }

    /// The request metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
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

    /// Writes one audit line (see [`Auditor::record`]).
    pub(super) async fn audit(&self, actor: &str, op: Operation, id: Option<&str>, outcome: &str) {
        Auditor::new(self.db(), self).record(actor, op, id, outcome).await;
    }

    /// Runs a store operation and writes its audit line (see [`Auditor::run`]).
    pub(super) async fn audited<T>(
        &self,
        actor: &Actor,
        op: Operation,
        id: Option<&str>,
        operation: impl Future<Output = vaultdb_core::Result<T>>,
    ) -> Result<T, ApiError> {
        let r = Auditor::new(self.db(), self).run(&actor.name, op, id, operation).await;
        r.map_err(ApiError::from)
    }
}

/// The server's audit log, if it has one: appended off the async threads; a failure is
/// logged and counted in the metrics (`vaultdb_audit_write_failures_total`).
impl AuditSink for AppState {
    fn enabled(&self) -> bool {
        self.inner.audit.is_some()
    }

    async fn write(&self, event: Event<'_>) {
        if let Some(log) = &self.inner.audit
            && log.record(event).await.is_err()
        {
            self.inner.metrics.audit_failed();
        }
    }
}
