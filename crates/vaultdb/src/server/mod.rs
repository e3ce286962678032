//! The REST server: routes, bearer-token roles, JSON errors, audit, metrics, OpenAPI.
//!
//! | route | role | what |
//! |---|---|---|
//! | `PUT`/`POST /v1/records` | write | store `{id, data}` (data: any JSON value) |
//! | `GET /v1/records?limit=&cursor=` | read | ids a page at a time, in name-tag order, opaque cursor |
//! | `GET /v1/records/{id}` | read | `{id, version, content_type, data}` |
//! | `DELETE /v1/records/{id}` | write | delete every version everywhere |
//! | `PUT /v1/records/{id}/raw` | write | store the body as-is, with its `Content-Type` |
//! | `GET /v1/records/{id}/raw` | read | the stored bytes, with their `Content-Type` |
//! | `POST /v1/records/{id}/repair` | admin | regenerate missing or bad shares |
//! | `GET /v1/status` | admin | per-backend health and threshold margin |
//! | `GET /metrics` | read | Prometheus text |
//! | `GET /health` | none | `ok`, `degraded`, `unavailable` or `moved` |
//! | `GET /openapi.json` | none | this API as OpenAPI 3.1 |
//! | `GET /docs` | none | the API reference page (Swagger UI, served from the binary, over `/openapi.json`) |
//!
//! Every answer of a protected or `/v1/` route is audited (module `audit`): one line with
//! its outcome, refused requests without a valid token counted once a second; a request is
//! refused with 503 `AUDIT_UNAVAILABLE` when its line cannot be written, unless the log fails
//! open.
//!
//! Errors are `{"error": {"code", "message"}}` (plus `backends` for availability errors);
//! [`ApiError`] gives each code's status, [`ERROR_CODES`] lists them all. Logs and metrics
//! carry route templates and name tags, never record ids or data.
//!
//! The handlers are thin: the store operations, their audit lines, the content-type rule
//! and the degraded rule are the [`service`](crate::service) layer's, shared with the
//! command line. Modules: `state` ([`AppState`], [`Limits`]), `error` ([`ApiError`]),
//! `extract` (extractors), `dto` (bodies), `records`, `raw` and `admin` (handlers),
//! `middleware` ([`policy`]), `audit` (the audit middleware and the server's log) and
//! `openapi` ([`openapi()`]); `connections` serves it ([`serve`]: the cap on connections,
//! the header deadline), over HTTPS with `tls` (with certificate reload).

mod admin;
mod audit;
mod connections;
mod dto;
mod error;
mod extract;
mod middleware;
mod openapi;
mod raw;
mod records;
mod state;
pub mod tls;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::{Router, middleware as mw};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use connections::{Connections, DEFAULT_MAX_CONNECTIONS, HANDSHAKE_TIMEOUT, serve};
pub use dto::{
    BackendHealthResponse, HealthResponse, ListParams, ListResponse, PutRecordRequest,
    PutRecordResponse, RawData, RecordResponse, RepairResponse, StatusResponse,
};
pub use error::{ApiError, BackendStatus, ERROR_CODES, ErrorDetail, ErrorResponse};
pub use extract::{IdPath, JsonBody, JsonLine, RawBody};
pub use middleware::policy;
pub use openapi::openapi;
pub use state::{AppState, Limits};

pub use crate::service::content_type::MAX_LEN as MAX_CONTENT_TYPE_LEN;

use crate::metrics::UNMATCHED;

/// Header set to `true` when an operation succeeded with a backend missing or failing
/// ([`crate::service::degraded`]).
pub const DEGRADED_HEADER: &str = "x-vaultdb-degraded";

/// Header carrying the version read or written.
pub const VERSION_HEADER: &str = "x-vaultdb-version";

/// Default page size of `GET /v1/records`.
pub const DEFAULT_PAGE: u32 = 100;

/// Largest page size of `GET /v1/records`.
pub const MAX_PAGE: u32 = 1000;

/// The routes, with their OpenAPI operations.
fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base_doc())
        .routes(routes!(records::list_records, records::put_record, records::post_record))
        .routes(routes!(records::get_record, records::delete_record))
        .routes(routes!(raw::get_raw, raw::put_raw))
        .routes(routes!(admin::repair_record))
        .routes(routes!(admin::status))
        .routes(routes!(admin::health))
        .routes(routes!(admin::metrics))
        .routes(routes!(admin::openapi_json))
        .routes(routes!(admin::api_reference))
}

/// The server's router over `state`.
pub fn app(state: AppState) -> Router {
    let (routes, _) = router().split_for_parts();
    let body_limit = state.limits().body_limit;
    routes
        .route("/docs/{file}", axum::routing::get(admin::api_reference_file))
        // Inside `authorize` (route layers added later run first).
        .route_layer(mw::from_fn_with_state(state.clone(), middleware::follow))
        .route_layer(mw::from_fn(middleware::authorize))
        .fallback(admin::not_found)
        .method_not_allowed_fallback(admin::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(mw::from_fn_with_state(state.clone(), middleware::limit_and_time))
        .layer(mw::from_fn_with_state(state.clone(), middleware::moved))
        // Outside the timeout, so that timed-out requests are logged too.
        .layer(mw::from_fn_with_state(state.clone(), audit::audit))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // Route templates only: concrete paths carry record ids.
            let route =
                req.extensions().get::<MatchedPath>().map_or(UNMATCHED, MatchedPath::as_str);
            tracing::info_span!("http", method = %req.method(), route)
        }))
        .layer(mw::from_fn_with_state(state.clone(), middleware::count))
        .with_state(state)
}
