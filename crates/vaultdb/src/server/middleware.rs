//! The middleware: roles ([`policy`]), the body limit and request timeout, and request
//! metrics. Authentication is the audit middleware's (`super::audit`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::{ApiError, Outcome};
use super::extract::BodyLimit;
use crate::auth::{Actor, Role};
use crate::metrics::UNMATCHED;
use crate::service::Operation;

/// The role and audit operation of each protected route; `None` for public routes.
pub fn policy(method: &Method, route: &str) -> Option<(Role, Operation)> {
    let m = method.as_str();
    Some(match (m, route) {
        ("GET" | "HEAD", "/v1/records") => (Role::Read, Operation::RecordList),
        ("PUT" | "POST", "/v1/records") => (Role::Write, Operation::RecordPut),
        ("GET" | "HEAD", "/v1/records/{id}") => (Role::Read, Operation::RecordGet),
        ("DELETE", "/v1/records/{id}") => (Role::Write, Operation::RecordDelete),
        ("GET" | "HEAD", "/v1/records/{id}/raw") => (Role::Read, Operation::RecordGetRaw),
        ("PUT", "/v1/records/{id}/raw") => (Role::Write, Operation::RecordPutRaw),
        ("POST", "/v1/records/{id}/repair") => (Role::Admin, Operation::RecordRepair),
        ("GET" | "HEAD", "/v1/status") => (Role::Admin, Operation::StoreStatus),
        ("GET" | "HEAD", "/metrics") => (Role::Read, Operation::Metrics),
        _ => return None,
    })
}

/// Who sent a request: the token's actor, or `None` without a valid token. Set by the
/// audit middleware ([`super::audit::audit`]), which authenticates every request it logs.
#[derive(Clone, Debug)]
pub(super) struct Caller(pub(super) Option<Actor>);

/// Checks the role of requests to protected routes (authenticated by the audit middleware,
/// which also logs the refusals).
pub(super) async fn authorize(mut req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let Some((need, _)) = route.as_deref().and_then(|r| policy(req.method(), r)) else {
        return next.run(req).await;
    };
    match req.extensions().get::<Caller>().and_then(|c| c.0.clone()) {
        None => ApiError::unauthorized().into_response(),
        Some(actor) if actor.role < need => ApiError::forbidden(format!(
            "this needs the {need} role; the token has the {} role",
            actor.role
        ))
        .into_response(),
        Some(actor) => {
            req.extensions_mut().insert(actor);
            next.run(req).await
        }
    }
}

/// Records the body limit for error messages, and cuts requests at the request timeout.
pub(super) async fn limit_and_time(
    State(st): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let limits = st.limits();
    req.extensions_mut().insert(BodyLimit(limits.body_limit));
    match tokio::time::timeout(limits.request_timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::timed_out(limits.request_timeout).into_response(),
    }
}

/// Before an authorized request to a route, a store found to be filled by a re-share that
/// started after the server did is made to read through to the old store
/// ([`AppState::keep_up_with_reshare`]). A route layer inside [`authorize`]: a request
/// without a valid token, or to no route, costs no backend call.
pub(super) async fn follow(State(st): State<AppState>, req: Request, next: Next) -> Response {
    st.keep_up_with_reshare().await;
    next.run(req).await
}

/// Once the store has moved (a re-share fenced it), its `INVALID_CONFIG` answers say what
/// the operator must do: restart the server on the new configuration ([`ApiError::moved`]).
pub(super) async fn moved(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD);
    let resp = next.run(req).await;
    if write && resp.status().is_success() {
        st.written();
    }
    let invalid_config =
        resp.extensions().get::<Outcome>().is_some_and(|o| o.0 == "INVALID_CONFIG");
    if invalid_config && st.db().has_moved() { ApiError::moved().into_response() } else { resp }
}

/// Counts each request by method, route template and status, with its latency.
pub(super) async fn count(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED.to_owned(), |m| m.as_str().to_owned());
    let resp = next.run(req).await;
    st.metrics().observe(&method, &route, resp.status().as_u16(), start.elapsed());
    resp
}
