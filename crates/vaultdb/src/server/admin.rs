//! The admin and service routes: `POST /v1/records/{id}/repair`, `GET /v1/status`,
//! `GET /health`, `GET /metrics`, `GET /openapi.json`, `GET /docs` (with its files).

use std::sync::{Arc, LazyLock};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::dto::{BackendHealthResponse, HealthResponse, IdParam, RepairResponse, StatusResponse};
use super::error::ApiError;
use super::extract::{IdPath, JsonLine};

/// Regenerates a record's missing or bad shares from K good ones.
#[utoipa::path(post, path = "/v1/records/{id}/repair", tag = "admin", operation_id = "repairRecord",
    params(IdParam),
    responses((status = 200, description = "What was repaired", body = RepairResponse)),
    security(("bearer" = [])))]
pub(super) async fn repair_record(
    State(st): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Response, ApiError> {
    let r = st.db().repair(&id).await?;
    Ok(JsonLine(RepairResponse {
        version: r.version.map(|v| v.to_text()),
        restored: r.restored,
        removed: r.removed,
        problems: r.problems,
    })
    .into_response())
}

/// Per-backend health and the threshold margin.
#[utoipa::path(get, path = "/v1/status", tag = "admin", operation_id = "status",
    responses((status = 200, description = "The store's health", body = StatusResponse)),
    security(("bearer" = [])))]
pub(super) async fn status(State(st): State<AppState>) -> Response {
    if st.db().has_moved() {
        // Its backends answer, but the store refuses every operation.
        return ApiError::moved().into_response();
    }
    let h = st.db().health().await;
    JsonLine(StatusResponse {
        k: h.k,
        n: h.n,
        write_quorum: st.db().write_quorum(),
        up: h.up,
        margin: h.margin as i64,
        backends: h
            .backends
            .into_iter()
            .map(|b| BackendHealthResponse {
                id: b.id,
                name: b.name,
                up: b.up,
                latency_ms: b.latency.as_secs_f64() * 1000.0,
                error: b.error,
            })
            .collect(),
    })
    .into_response()
}

/// Liveness and readiness: 200 while at least K backends answer and the audit log can be
/// written (or fails open), else 503; 503 `moved` once the server has seen that its store
/// moved to a new configuration (restart it on that one).
#[utoipa::path(get, path = "/health", tag = "service", operation_id = "health",
    responses((status = 200, description = "At least K backends answer, and the audit log can be written or fails open", body = HealthResponse),
              (status = 503, description = "Fewer than K backends answer, the audit log cannot be written and fails closed, or the store moved to a new configuration", body = HealthResponse)))]
pub(super) async fn health(State(st): State<AppState>) -> Response {
    let h = st.db().health().await;
    let audit = st.audit_health().await;
    let audit_down = matches!(audit, Some((false, _)));
    let (code, status) = if st.db().has_moved() {
        (StatusCode::SERVICE_UNAVAILABLE, "moved")
    } else if h.up < h.k || matches!(audit, Some((false, false))) {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    } else if h.up < h.n || audit_down {
        (StatusCode::OK, "degraded")
    } else {
        (StatusCode::OK, "ok")
    };
    let audit = match audit {
        None => "off",
        Some((true, _)) => "ok",
        Some((false, _)) => "unavailable",
    };
    let body = HealthResponse {
        status: status.to_owned(),
        k: h.k,
        n: h.n,
        up: h.up,
        audit: audit.to_owned(),
    };
    (code, JsonLine(body)).into_response()
}

/// Prometheus metrics: requests by route and status, latency histograms, degraded reads
/// and bad shares.
#[utoipa::path(get, path = "/metrics", tag = "service", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String,
               content_type = "text/plain")),
    security(("bearer" = [])))]
pub(super) async fn metrics(State(st): State<AppState>) -> Response {
    let text = st.metrics().render(st.db().stats());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// This API as an OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "service", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub(super) async fn openapi_json(State(st): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], st.openapi_json().to_owned()).into_response()
}

/// The API reference page: the OpenAPI document rendered by Swagger UI, whose files are
/// compiled into the binary and served under `/docs/` ([`api_reference_file`]), so that
/// neither the server nor the browser needs the internet.
#[utoipa::path(get, path = "/docs", tag = "service", operation_id = "apiReference",
    responses((status = 200, description = "An HTML page rendering the OpenAPI document",
               content_type = "text/html")))]
pub(super) async fn api_reference() -> Response {
    const PAGE: &str = "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
        <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
        <title>VaultDB API reference</title>\n\
        <link rel=\"stylesheet\" type=\"text/css\" href=\"/docs/swagger-ui.css\">\n\
        <link rel=\"stylesheet\" type=\"text/css\" href=\"/docs/index.css\">\n\
        <link rel=\"icon\" type=\"image/png\" href=\"/docs/favicon-32x32.png\" sizes=\"32x32\">\n\
        </head>\n<body>\n<div id=\"swagger-ui\"></div>\n\
        <script src=\"/docs/swagger-ui-bundle.js\" charset=\"utf-8\"></script>\n\
        <script src=\"/docs/swagger-ui-standalone-preset.js\" charset=\"utf-8\"></script>\n\
        <script src=\"/docs/swagger-initializer.js\" charset=\"utf-8\"></script>\n\
        <noscript>The API reference needs JavaScript; the OpenAPI document itself is at \
        <a href=\"/openapi.json\">/openapi.json</a>.</noscript>\n</body>\n</html>\n";
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

/// One of Swagger UI's files for [`api_reference`] (`GET /docs/{file}`; not an API route,
/// so not in the OpenAPI document). Its `swagger-initializer.js` points at `/openapi.json`.
pub(super) async fn api_reference_file(Path(file): Path<String>) -> Response {
    static CONFIG: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> =
        LazyLock::new(|| Arc::new(utoipa_swagger_ui::Config::from("/openapi.json")));
    match utoipa_swagger_ui::serve(&file, CONFIG.clone()) {
        Ok(Some(f)) => {
            ([(header::CONTENT_TYPE, f.content_type)], Body::from(f.bytes)).into_response()
        }
        Ok(None) => ApiError::no_route().into_response(),
        Err(e) => {
            tracing::error!("swagger-initializer.js could not be written: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The fallback for paths that match no route.
pub(super) async fn not_found() -> ApiError {
    ApiError::no_route()
}

/// The fallback for methods a route does not have.
pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
