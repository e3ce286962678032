//! The server's audit: the middleware that logs every answer of a protected or `/v1/` route
//! ([`audit`]), and the server's log ([`ServerAudit`]): refused requests without a valid
//! token counted and written once a second, checkpoints once a second, and whether the log
//! can be written (for `/health`).
//!
//! Every request to a protected route or under `/v1/` gets one line with its outcome: `OK`,
//! or the code of its error answer (400, 403, 404, 405, 413, 416, 503, ...), whichever part
//! of the server made it. Requests without a valid token (401, or 404/405 for no route) are
//! counted per (operation, outcome) and written once a second with a `count` ([`Tally`]).
//! Before a request with a valid token runs, the log must be writable; an answer whose
//! line cannot be written is replaced by 503 `AUDIT_UNAVAILABLE`, unless the log fails
//! open. A streamed raw read writes its line when its body ends ([`AuditedInBody`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::RequestExt;
use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::{ApiError, Outcome};
use super::middleware::{Caller, policy};
use crate::audit::{AuditLog, Event};
use crate::auth::bearer;
use crate::metrics::Metrics;
use crate::service::{Auditor, Operation, Tally};

/// The actor of requests without a valid token.
const ANONYMOUS: &str = crate::audit::ANONYMOUS_ACTOR;

/// Marks an answer whose body writes the audit line itself, when it ends (a streamed read).
#[derive(Clone, Copy, Debug)]
pub(super) struct AuditedInBody;

/// The record an answer concerns, when its id is not in the path (a JSON put's body).
#[derive(Clone, Debug)]
pub(super) struct AuditId(pub(super) String);

/// Adds the record id an answer concerns, for its audit line.
pub(super) fn concerning(mut resp: Response, id: String) -> Response {
    resp.extensions_mut().insert(AuditId(id));
    resp
}

/// The outcome an answer logs: `OK`, its error code, or `HTTP_<status>` for an error that
/// carries none.
fn outcome_of(resp: &Response) -> String {
    match resp.extensions().get::<Outcome>() {
        Some(Outcome(code)) => code.clone(),
        None if resp.status().is_success() => "OK".to_owned(),
        None => format!("HTTP_{}", resp.status().as_u16()),
    }
}

/// The line that stands for `n` requests without a valid token, of one kind and outcome.
fn refused_line(op: Operation, outcome: &str, n: u64) -> Event<'_> {
    Event { actor: ANONYMOUS, op: op.as_str(), tag: None, outcome, count: Some(n) }
}

/// Authenticates every request to a protected route or under `/v1/` (for [`authorize`],
/// which checks roles), and writes its audit line.
///
/// [`authorize`]: super::middleware::authorize
pub(super) async fn audit(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let op = match route.as_deref().and_then(|r| policy(req.method(), r)) {
        Some((_, op)) => op,
        None if req.uri().path() == "/v1" || req.uri().path().starts_with("/v1/") => {
            Operation::Unrouted
        }
        None => return next.run(req).await,
    };
    let token =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
    let actor = token.and_then(|t| st.tokens().authenticate(t));
    req.extensions_mut().insert(Caller(actor.clone()));
    let Some(actor) = actor else {
        let resp = next.run(req).await;
        st.tally(op, &outcome_of(&resp));
        return resp;
    };
    let id = match req.extract_parts::<RawPathParams>().await {
        Ok(params) => params.iter().find(|(k, _)| *k == "id").map(|(_, v)| v.to_owned()),
        Err(_) => None,
    };
    let auditor = Auditor::new(st.db(), &st);
    if auditor.ready().await.is_err() {
        return ApiError::audit_unavailable(
            "the audit log cannot be written, so the request was refused",
        )
        .into_response();
    }
    let resp = next.run(req).await;
    if resp.extensions().get::<AuditedInBody>().is_some() {
        return resp;
    }
    let id = resp.extensions().get::<AuditId>().map(|a| a.0.clone()).or(id);
    match auditor.record(&actor.name, op, id.as_deref(), &outcome_of(&resp)).await {
        Ok(()) => resp,
        Err(_) => ApiError::audit_unavailable(
            "the audit log cannot be written, so the answer is withheld (a write may have \
             taken effect)",
        )
        .into_response(),
    }
}

/// The server's audit log and its state.
#[derive(Debug)]
pub(super) struct ServerAudit {
    pub(super) log: Arc<AuditLog>,
    tally: Tally,
    /// Whether the last check or write of the log succeeded.
    writable: AtomicBool,
    /// Whether the last checkpoint failed (so that a lasting failure is logged once).
    checkpoint_failing: AtomicBool,
}

impl ServerAudit {
    pub(super) fn new(log: AuditLog) -> Self {
        Self {
            log: Arc::new(log),
            tally: Tally::default(),
            writable: AtomicBool::new(true),
            checkpoint_failing: AtomicBool::new(false),
        }
    }

    /// Counts a refused request without a valid token.
    pub(super) fn tally(&self, op: Operation, outcome: &str) {
        self.tally.add(op, outcome, 1);
    }

    /// Notes whether the log could be written; a failure is logged and counted.
    pub(super) fn note(&self, r: &std::io::Result<()>, metrics: &Metrics) {
        self.writable.store(r.is_ok(), Ordering::Release);
        if let Err(e) = r {
            metrics.audit_failed();
            tracing::error!(path = %self.log.path().display(), error = %e,
                "cannot write the audit log");
        }
    }

    /// Whether the log can be written now (checked, off the async threads).
    pub(super) async fn writable(&self, metrics: &Metrics) -> bool {
        let log = Arc::clone(&self.log);
        let r = tokio::task::spawn_blocking(move || log.check_writable())
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.note(&r, metrics);
        r.is_ok()
    }

    /// Writes the counted requests, one line per kind; counts that cannot be written are
    /// kept for the next time.
    pub(super) async fn flush(&self, metrics: &Metrics) {
        for (op, outcome, n) in self.tally.drain() {
            let event = refused_line(op, &outcome, n);
            let r = self.log.record(event).await.map(drop);
            if r.is_err() {
                self.tally.add(op, &outcome, n);
            }
            self.note(&r, metrics);
        }
    }

    /// Checkpoints the log if lines were appended since the last checkpoint (or `always`).
    /// Failures are logged: a tampered log at error level, each time; an unavailable store
    /// once per failing streak.
    pub(super) async fn checkpoint(&self, always: bool) {
        if !always && self.log.unchecked() == 0 {
            return;
        }
        match self.log.checkpoint().await {
            Ok(_) => self.checkpoint_failing.store(false, Ordering::Release),
            Err(e) if e.is_tampering() => {
                tracing::error!(path = %self.log.path().display(), "audit checkpoint refused: {e}");
            }
            Err(e) => {
                if !self.checkpoint_failing.swap(true, Ordering::AcqRel) {
                    tracing::warn!(path = %self.log.path().display(),
                        "audit checkpoint not written (retried every second): {e}");
                }
            }
        }
    }
}

impl Drop for ServerAudit {
    /// Counts not yet written are written now, in place (a server stopped without
    /// [`AppState::shutdown`]).
    fn drop(&mut self) {
        for (op, outcome, n) in self.tally.drain() {
            let event = refused_line(op, &outcome, n);
            if let Err(e) = self.log.append(event) {
                tracing::error!(error = %e, "cannot write the audit log");
            }
        }
    }
}
