//! The server's shared state ([`AppState`]) and limits ([`Limits`]), and the audit sink the
//! server writes to.

use std::sync::{Arc, Mutex, OnceLock};
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
    follower: OnceLock<Follower>,
}

/// How long a failed attempt to follow a re-share keeps requests from making another.
const RETRY_FOLLOW_AFTER: Duration = Duration::from_secs(1);

/// What lets the server's store read through to the old store of a re-share into it that
/// started after the server opened it ([`AppState::follow_reshares`]).
struct Follower {
    cfg: crate::config::Loaded,
    /// One attempt at a time.
    busy: tokio::sync::Mutex<()>,
    /// The last failure logged (each is logged once).
    failed: Mutex<Option<String>>,
    /// When the last attempt failed: the next waits [`RETRY_FOLLOW_AFTER`].
    failed_at: Mutex<Option<tokio::time::Instant>>,
    /// The store held no records when the server started and no write has succeeded since:
    /// it may be the empty target of a re-share about to start, so every request first
    /// reads the notices (until one is seen, or a write succeeds: a re-share fills only an
    /// empty store).
    fresh: std::sync::atomic::AtomicBool,
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
                follower: OnceLock::new(),
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

    /// Lets the store follow a re-share into it that starts while the server runs: once the
    /// store's notices say such a re-share is not done, the next request (or
    /// [`AppState::watch_reshares`]) makes it read through to the old store, whose file
    /// `cfg`'s data_dir records ([`crate::service::follow_reshare`]). With `fresh` (the
    /// store holds no records), every request reads the notices first, until a re-share is
    /// seen or a write succeeds, so that a client sent here as soon as the re-share began
    /// never misses a record still in the old store. Set once.
    pub fn follow_reshares(&self, cfg: crate::config::Loaded, fresh: bool) {
        let _ = self.inner.follower.set(Follower {
            cfg,
            busy: tokio::sync::Mutex::new(()),
            failed: Mutex::new(None),
            failed_at: Mutex::new(None),
            fresh: std::sync::atomic::AtomicBool::new(fresh),
        });
    }

    /// A write succeeded: the store holds a record, so no re-share into it can start.
    pub(super) fn written(&self) {
        if let Some(f) = self.inner.follower.get() {
            f.fresh.store(false, std::sync::atomic::Ordering::Release);
        }
    }

    /// Whether the store is being filled by a re-share it does not read through yet.
    fn behind_a_reshare(&self) -> bool {
        let db = &self.inner.db;
        !db.is_migrating_client()
            && db.reshare_phase().is_some_and(|p| p < vaultdb_core::ResharePhase::Done)
    }

    /// Makes the store read through to the old store of an unfinished re-share into it, if
    /// it does not yet ([`AppState::follow_reshares`]); a failure is logged once, and the
    /// store's requests keep failing with `INVALID_CONFIG` until it is fixed.
    pub(super) async fn keep_up_with_reshare(&self) {
        let Some(f) = self.inner.follower.get() else { return };
        let db = &self.inner.db;
        if f.fresh.load(std::sync::atomic::Ordering::Acquire) {
            if db.reshare_phase().is_none()
                && let Err(e) = db.refresh_notices().await
            {
                tracing::debug!(error = %e, "the check of the re-share notices");
            }
            if db.reshare_phase().is_some() {
                f.fresh.store(false, std::sync::atomic::Ordering::Release);
            }
        }
        if !self.behind_a_reshare() {
            return;
        }
        // One attempt at a time (the others wait for it), and after a failure none for a
        // second: requests then go on at once (and fail with `INVALID_CONFIG` while the
        // store does not follow) instead of each reloading the old configuration and
        // opening it again.
        let _one = f.busy.lock().await;
        if !self.behind_a_reshare() {
            return;
        }
        let failed_at = *f.failed_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if failed_at.is_some_and(|t| t.elapsed() < RETRY_FOLLOW_AFTER) {
            return;
        }
        let r = crate::service::follow_reshare(&f.cfg, &self.inner.db).await;
        let mut failed = f.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *f.failed_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            r.is_err().then(tokio::time::Instant::now);
        match r {
            Ok(()) => tracing::info!("reading through to the old store during the re-share"),
            Err(e) if failed.as_deref() != Some(e.message.as_str()) => {
                tracing::error!(code = e.code, "{}", e.message);
                *failed = Some(e.message);
            }
            Err(_) => {}
        }
    }

    /// Until the store reads through to the old store of a re-share into it (or has moved),
    /// reads its re-share notices every `every` and follows a re-share that started
    /// (as each request does first), so that it does so before the re-share's fence
    /// ends, busy or idle. Returns at once without [`AppState::follow_reshares`].
    pub async fn watch_reshares(&self, every: Duration) {
        if self.inner.follower.get().is_none() {
            return;
        }
        let db = &self.inner.db;
        while !db.is_migrating_client() && !db.has_moved() {
            tokio::time::sleep(every).await;
            if let Err(e) = db.refresh_notices().await {
                tracing::debug!(error = %e, "the check of the re-share notices");
            }
            self.keep_up_with_reshare().await;
        }
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
