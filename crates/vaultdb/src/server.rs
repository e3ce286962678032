// This file is long because it holds every REST route with its handler, OpenAPI annotations and
// error mapping (each short), and its unit tests (about a third of it).
//! The REST server: routes, bearer-token roles, JSON errors, audit, metrics, OpenAPI.
//!
//! | route | role | what |
//! |---|---|---|
//! | `PUT`/`POST /v1/records` | write | store `{id, data}` (data: any JSON value) |
//! | `GET /v1/records?limit=&cursor=` | read | ids, sorted, a page at a time |
//! | `GET /v1/records/{id}` | read | `{id, version, content_type, data}` |
//! | `DELETE /v1/records/{id}` | write | delete every version everywhere |
//! | `PUT /v1/records/{id}/raw` | write | store the body as-is, with its `Content-Type` |
//! | `GET /v1/records/{id}/raw` | read | the stored bytes, with their `Content-Type` |
//! | `POST /v1/records/{id}/repair` | admin | regenerate missing or bad shares |
//! | `GET /v1/status` | admin | per-backend health and threshold margin |
//! | `GET /metrics` | read | Prometheus text |
//! | `GET /health` | none | `ok`, `degraded` or `unavailable` |
//! | `GET /openapi.json` | none | this API as OpenAPI 3.1 |
//!
//! Errors are `{"error": {"code", "message"}}` (plus `backends` for availability errors);
//! [`ApiError`] gives each code's status. Logs and metrics carry route templates and name
//! tags, never record ids or data.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use data_encoding::BASE64URL_NOPAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, RefOr};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vaultdb_core::{ErrorCode, OutcomeStatus, Record, VaultDb, VaultError};

use crate::audit::{AuditLog, Event};
use crate::auth::{Actor, Role, Tokens, bearer};
use crate::metrics::{Metrics, UNMATCHED};

/// Header set to `true` when an operation succeeded with a backend missing or failing.
pub const DEGRADED_HEADER: &str = "x-vaultdb-degraded";

/// Header carrying the version read or written.
pub const VERSION_HEADER: &str = "x-vaultdb-version";

/// Default page size of `GET /v1/records`.
pub const DEFAULT_PAGE: u32 = 100;

/// Largest page size of `GET /v1/records`.
pub const MAX_PAGE: u32 = 1000;

/// Longest `Content-Type` kept with a raw record.
pub const MAX_CONTENT_TYPE_LEN: usize = 255;

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
        let openapi_json = openapi().to_json().unwrap_or_else(|_| "{}".to_owned());
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

    async fn audit(&self, actor: &str, op: &str, id: Option<&str>, outcome: &str) {
        if let Some(log) = &self.inner.audit {
            let tag = id.map(|i| self.inner.db.name_tag(i).to_text());
            let ev = Event { actor, op, tag: tag.as_deref(), outcome };
            if log.record(ev).await.is_err() {
                self.inner.metrics.audit_failed();
            }
        }
    }

    /// Runs a store operation and writes its audit line.
    async fn audited<T>(
        &self,
        actor: &Actor,
        op: &str,
        id: Option<&str>,
        fut: impl Future<Output = Result<T, VaultError>>,
    ) -> Result<T, ApiError> {
        let r = fut.await;
        let outcome = match &r {
            Ok(_) => "OK",
            Err(e) => e.code().as_str(),
        };
        self.audit(&actor.name, op, id, outcome).await;
        r.map_err(ApiError::from)
    }
}

// ---------------------------------------------------------------------------------------
// Errors

/// One backend's part in a failed operation.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BackendStatus {
    /// The backend's id.
    pub backend: String,
    /// `ok`, `missing`, `failed`, `timed_out`, `corrupt` or `skipped`.
    pub status: String,
}

/// The error object.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code: one of the store's (`RECORD_NOT_FOUND`, `INSUFFICIENT_SHARES`,
    /// `INVALID_CONFIG`, `INVALID_INPUT`, `HMAC_FAILED`, `RECONSTRUCT_FAILED`,
    /// `SPLIT_FAILED`, `BACKEND_ERROR`) or the server's (`INVALID_REQUEST`, `UNAUTHORIZED`,
    /// `FORBIDDEN`, `PAYLOAD_TOO_LARGE`, `NOT_FOUND`, `METHOD_NOT_ALLOWED`,
    /// `REQUEST_TIMEOUT`, `INTERNAL_ERROR`).
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// Per-backend outcomes, for availability errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<BackendStatus>,
}

/// Every error response: `{"error": {...}}`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
}

/// An error answer: status, code, message. Internals (backend messages, paths) stay in
/// the logs; clients get the code, a short message and per-backend statuses.
#[derive(Clone, Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: ErrorDetail,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            detail: ErrorDetail {
                code: code.to_owned(),
                message: message.into(),
                backends: Vec::new(),
            },
        }
    }

    /// 400 `INVALID_REQUEST`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
    }

    /// 413 `PAYLOAD_TOO_LARGE`.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The code.
    pub fn code(&self) -> &str {
        &self.detail.code
    }

    /// The HTTP status for each of the store's codes.
    pub fn status_of(code: ErrorCode) -> StatusCode {
        match code {
            ErrorCode::InvalidConfig | ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorCode::RecordNotFound => StatusCode::NOT_FOUND,
            ErrorCode::InsufficientShares | ErrorCode::BackendError => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::HmacFailed => StatusCode::BAD_GATEWAY,
            ErrorCode::SplitFailed | ErrorCode::ReconstructFailed => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

fn short_status(s: &OutcomeStatus) -> &'static str {
    match s {
        OutcomeStatus::Ok => "ok",
        OutcomeStatus::Missing => "missing",
        OutcomeStatus::Failed { .. } => "failed",
        OutcomeStatus::TimedOut => "timed_out",
        OutcomeStatus::Corrupt { .. } => "corrupt",
        OutcomeStatus::Skipped => "skipped",
        _ => "other",
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        let code = e.code();
        let status = Self::status_of(code);
        let message = match &e {
            // Client errors say exactly what is wrong (never the id itself).
            VaultError::InvalidConfig(_)
            | VaultError::InvalidInput(_)
            | VaultError::RecordNotFound => e.to_string(),
            VaultError::InsufficientShares { need, got, .. } => {
                format!("not enough backends answered: need {need} good shares, got {got}")
            }
            VaultError::HmacFailed { .. } => {
                "the rebuilt record failed its integrity check; bad shares are being reported"
                    .to_owned()
            }
            VaultError::Backend { operation, .. } => {
                format!("too few backends completed the {operation}")
            }
            _ => "the record could not be processed".to_owned(),
        };
        if status.is_server_error() {
            tracing::warn!(code = %code, "request failed: {e}");
        }
        let mut err = Self::new(status, code.as_str(), message);
        err.detail.backends = e
            .outcomes()
            .iter()
            .map(|o| BackendStatus {
                backend: o.backend.clone(),
                status: short_status(&o.status).to_owned(),
            })
            .collect();
        if let VaultError::HmacFailed { bad_backends, .. } = &e {
            err.detail.backends = bad_backends
                .iter()
                .map(|b| BackendStatus { backend: b.clone(), status: "corrupt".to_owned() })
                .collect();
        }
        err
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp =
            (self.status, JsonLine(ErrorResponse { error: self.detail })).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

// ---------------------------------------------------------------------------------------
// Extractors with JSON rejections

/// A JSON response body, ending with a newline (so that `curl` output reads well).
#[derive(Debug)]
pub struct JsonLine<T>(pub T);

impl<T: Serialize> IntoResponse for JsonLine<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(mut body) => {
                body.push(b'\n');
                ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body)
                    .into_response()
            }
            Err(e) => {
                tracing::error!("cannot serialize a response: {e}");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

/// A JSON request body: malformed JSON is 400 `INVALID_REQUEST`, too large 413. The
/// `Content-Type` is not checked.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError::invalid_request(format!("the body is not valid JSON for this request: {e}"))
        })
    }
}

/// A raw request body within the size limit.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
        Bytes::from_request(req, state).await.map(RawBody).map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large(limit)
            } else {
                ApiError::invalid_request(format!(
                    "cannot read the request body: {}",
                    e.body_text()
                ))
            }
        })
    }
}

/// The body limit in force, for error messages.
#[derive(Clone, Copy, Debug)]
struct BodyLimit(usize);

/// The `{id}` path segment (percent-decoded).
#[derive(Debug)]
pub struct IdPath(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state).await.map(|Path(id)| IdPath(id)).map_err(
            |e: PathRejection| {
                ApiError::invalid_request(format!(
                    "invalid record id in the path: {}",
                    e.body_text()
                ))
            },
        )
    }
}

// ---------------------------------------------------------------------------------------
// Request and response bodies

/// A JSON record to store (`PUT`/`POST /v1/records`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRecordRequest {
    /// The record's id: 1 to 255 bytes of UTF-8 without control characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        example = "user-42",
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$"
    )]
    pub id: String,
    /// The record's data: any JSON value. Stored with content type `application/json`.
    #[schema(value_type = Value, example = json!({"name": "Alice"}))]
    pub data: Value,
}

/// A stored version.
#[derive(Debug, Serialize, ToSchema)]
pub struct PutRecordResponse {
    /// The record's id.
    pub id: String,
    /// The version written (26 characters; lexicographic order is time order).
    pub version: String,
    /// Backends that acknowledged the write.
    pub acks: usize,
    /// True if some backend did not acknowledge (the write still met its quorum).
    pub degraded: bool,
}

/// A record read as JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordResponse {
    /// The record's id.
    pub id: String,
    /// The version read.
    pub version: String,
    /// The stored content type, if any.
    pub content_type: Option<String>,
    /// The data, for records stored as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value)]
    pub data: Option<Value>,
    /// The data in URL-safe base64 without padding, for records that are not JSON (read
    /// them as they are from `/v1/records/{id}/raw`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_base64: Option<String>,
}

/// Raw bytes (in the OpenAPI document only: bodies of the raw routes).
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct RawData(pub Vec<u8>);

/// A page of ids.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListResponse {
    /// Record ids, sorted.
    pub ids: Vec<String>,
    /// Pass as `cursor` to get the next page (it is the last id of this page); `null` on the
    /// last page.
    pub next: Option<String>,
}

/// `GET /v1/records` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Ids per page (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next` value of the previous page: ids after it (in byte order) are returned.
    pub cursor: Option<String>,
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok` (all backends up), `degraded` (at least K up) or `unavailable`.
    pub status: String,
    /// The threshold K.
    pub k: usize,
    /// The number of backends N.
    pub n: usize,
    /// Backends up.
    pub up: usize,
}

/// One backend in `GET /v1/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackendHealthResponse {
    /// The backend's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether it answered.
    pub up: bool,
    /// How long it took, in milliseconds.
    pub latency_ms: f64,
    /// Its error, if it failed.
    pub error: Option<String>,
}

/// `GET /v1/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusResponse {
    /// The threshold K.
    pub k: usize,
    /// The number of backends N.
    pub n: usize,
    /// The write quorum W.
    pub write_quorum: usize,
    /// Backends up.
    pub up: usize,
    /// `up - K`: how many more backends may fail before reads fail (negative: failing).
    pub margin: i64,
    /// Per backend.
    pub backends: Vec<BackendHealthResponse>,
}

/// `POST /v1/records/{id}/repair`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RepairResponse {
    /// The version repaired, if any verified.
    pub version: Option<String>,
    /// Backends whose share was rewritten.
    pub restored: Vec<String>,
    /// Objects removed (superseded versions, abandoned writes, bad shares).
    pub removed: usize,
    /// What could not be repaired.
    pub problems: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Handlers

fn with_headers(mut resp: Response, version: Option<String>, degraded: bool) -> Response {
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(&v).ok()) {
        resp.headers_mut().insert(VERSION_HEADER, v);
    }
    if degraded {
        resp.headers_mut().insert(DEGRADED_HEADER, HeaderValue::from_static("true"));
    }
    resp
}

async fn store_json(
    st: &AppState,
    actor: &Actor,
    body: PutRecordRequest,
) -> Result<Response, ApiError> {
    let id = body.id;
    let record = Record::json(id.clone(), &body.data).map_err(ApiError::from)?;
    let r = st.audited(actor, "record.put", Some(&id), st.db().put(record)).await?;
    let version = r.version.to_text();
    let degraded = r.degraded();
    let resp = (
        StatusCode::CREATED,
        JsonLine(PutRecordResponse { id, version: version.clone(), acks: r.acks, degraded }),
    )
        .into_response();
    Ok(with_headers(resp, Some(version), degraded))
}

/// Stores a JSON record.
#[utoipa::path(put, path = "/v1/records", tag = "records", operation_id = "putRecord",
    request_body = PutRecordRequest,
    responses((status = 201, description = "Stored", body = PutRecordResponse)),
    security(("bearer" = [])))]
async fn put_record(
    State(st): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<PutRecordRequest>,
) -> Result<Response, ApiError> {
    store_json(&st, &actor, body).await
}

/// Stores a JSON record (same as `PUT /v1/records`).
#[utoipa::path(post, path = "/v1/records", tag = "records", operation_id = "postRecord",
    request_body = PutRecordRequest,
    responses((status = 201, description = "Stored", body = PutRecordResponse)),
    security(("bearer" = [])))]
async fn post_record(
    State(st): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<PutRecordRequest>,
) -> Result<Response, ApiError> {
    store_json(&st, &actor, body).await
}

/// Lists record ids, sorted, a page at a time.
#[utoipa::path(get, path = "/v1/records", tag = "records", operation_id = "listRecords",
    params(ListParams),
    responses((status = 200, description = "A page of ids", body = ListResponse)),
    security(("bearer" = [])))]
async fn list_records(
    State(st): State<AppState>,
    Extension(actor): Extension<Actor>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params
        .map_err(|e| ApiError::invalid_request(format!("invalid query: {}", e.body_text())))?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid_request(format!("limit must be between 1 and {MAX_PAGE}")));
    }
    let after = params.cursor.filter(|c| !c.is_empty());
    let r = st.audited(&actor, "record.list", None, st.db().list()).await?;
    let degraded = r.outcomes.iter().any(|o| o.status != OutcomeStatus::Ok);
    let start = after.map_or(0, |a| r.ids.partition_point(|id| *id <= a));
    let end = start.saturating_add(limit as usize).min(r.ids.len());
    let page = r.ids[start.min(end)..end].to_vec();
    let next = if end < r.ids.len() { page.last().cloned() } else { None };
    Ok(with_headers(JsonLine(ListResponse { ids: page, next }).into_response(), None, degraded))
}

fn is_json(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// Reads a record as JSON: `data` for JSON records, `data_base64` for others.
#[utoipa::path(get, path = "/v1/records/{id}", tag = "records", operation_id = "getRecord",
    params(("id" = String, Path, min_length = 1, max_length = 255, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$",
        description = "Record id: 1 to 255 bytes of UTF-8 without control characters, percent-encoded")),
    responses((status = 200, description = "The record", body = RecordResponse),
              (status = 404, description = "No such record", body = ErrorResponse)),
    security(("bearer" = [])))]
async fn get_record(
    State(st): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
) -> Result<Response, ApiError> {
    let r = st.audited(&actor, "record.get", Some(&id), st.db().get(&id)).await?;
    let version = r.version.to_text();
    let ct = r.record.content_type.clone();
    let parsed = if is_json(ct.as_deref()) {
        serde_json::from_slice::<Value>(&r.record.data).ok()
    } else {
        None
    };
    let (data, data_base64) = match parsed {
        Some(v) => (Some(v), None),
        None => (None, Some(BASE64URL_NOPAD.encode(&r.record.data))),
    };
    let body = RecordResponse {
        id: r.record.id.clone(),
        version: version.clone(),
        content_type: ct,
        data,
        data_base64,
    };
    Ok(with_headers(JsonLine(body).into_response(), Some(version), r.degraded()))
}

/// Deletes every version of a record on every backend.
#[utoipa::path(delete, path = "/v1/records/{id}", tag = "records", operation_id = "deleteRecord",
    params(("id" = String, Path, min_length = 1, max_length = 255, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$",
        description = "Record id: 1 to 255 bytes of UTF-8 without control characters, percent-encoded")),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such record", body = ErrorResponse)),
    security(("bearer" = [])))]
async fn delete_record(
    State(st): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
) -> Result<Response, ApiError> {
    let r = st.audited(&actor, "record.delete", Some(&id), st.db().delete(&id)).await?;
    let degraded = r.outcomes.iter().any(|o| o.status != OutcomeStatus::Ok);
    Ok(with_headers(StatusCode::NO_CONTENT.into_response(), None, degraded))
}

/// Stores the request body as-is, keeping its `Content-Type`.
#[utoipa::path(put, path = "/v1/records/{id}/raw", tag = "records", operation_id = "putRawRecord",
    params(("id" = String, Path, min_length = 1, max_length = 255, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$",
        description = "Record id: 1 to 255 bytes of UTF-8 without control characters, percent-encoded")),
    request_body(content = inline(RawData), content_type = "application/octet-stream",
                 description = "The data (may be empty); its Content-Type is stored with it"),
    responses((status = 201, description = "Stored", body = PutRecordResponse)),
    security(("bearer" = [])))]
async fn put_raw(
    State(st): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let ct = match headers.get(header::CONTENT_TYPE) {
        None => None,
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| ApiError::invalid_request("the Content-Type header is not ASCII"))?
                .trim();
            if s.len() > MAX_CONTENT_TYPE_LEN {
                return Err(ApiError::invalid_request(format!(
                    "the Content-Type header is longer than {MAX_CONTENT_TYPE_LEN} bytes"
                )));
            }
            (!s.is_empty()).then(|| s.to_owned())
        }
    };
    let mut record = Record::new(id.clone(), body.to_vec());
    record.content_type = ct;
    drop(body);
    let r = st.audited(&actor, "record.put_raw", Some(&id), st.db().put(record)).await?;
    let version = r.version.to_text();
    let degraded = r.degraded();
    let resp = (
        StatusCode::CREATED,
        JsonLine(PutRecordResponse { id, version: version.clone(), acks: r.acks, degraded }),
    )
        .into_response();
    Ok(with_headers(resp, Some(version), degraded))
}

/// What a `Range` header asks for (one range of bytes; anything else is ignored, as RFC
/// 9110 allows, and the whole record is served).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ByteRange {
    /// `bytes=a-` or `bytes=a-b` (b inclusive).
    From(u64, Option<u64>),
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

fn parse_range(headers: &HeaderMap) -> Option<ByteRange> {
    let v = headers.get(header::RANGE)?.to_str().ok()?.trim();
    let spec = v.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let num = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => Some(ByteRange::Suffix(num(b)?)),
        (false, true) => Some(ByteRange::From(num(a)?, None)),
        (false, false) => {
            let (a, b) = (num(a)?, num(b)?);
            (a <= b).then_some(ByteRange::From(a, Some(b)))
        }
        (true, true) => None,
    }
}

/// Reads a record's bytes, with the `Content-Type` it was stored with
/// (`application/octet-stream` if none). Large records stream segment by segment, each
/// verified before it is sent; a single `Range: bytes=...` fetches only the segments it
/// needs (206, or 416 past the end). If a segment fails verification part way, the
/// connection is closed before `Content-Length` bytes were sent.
#[utoipa::path(get, path = "/v1/records/{id}/raw", tag = "records", operation_id = "getRawRecord",
    params(("id" = String, Path, min_length = 1, max_length = 255, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$",
        description = "Record id: 1 to 255 bytes of UTF-8 without control characters, percent-encoded"),
        ("Range" = Option<String>, Header, description = "One byte range, `bytes=a-b`, `bytes=a-` or `bytes=-n`")),
    responses((status = 200, description = "The stored bytes",
               content((Value = "*/*"))),
              (status = 206, description = "The requested byte range",
               content((Value = "*/*"))),
              (status = 404, description = "No such record", body = ErrorResponse),
              (status = 416, description = "The range starts past the end", body = ErrorResponse)),
    security(("bearer" = [])))]
async fn get_raw(
    State(st): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    use futures::StreamExt;
    let range = parse_range(&headers);
    let open = async {
        let db = st.db();
        match range {
            None => db.get_stream(&id).await,
            Some(ByteRange::From(a, b)) => {
                db.get_range(&id, a..b.map_or(u64::MAX, |b| b.saturating_add(1))).await
            }
            Some(ByteRange::Suffix(n)) => {
                // The length first (the manifest only), then the tail.
                let total = db.get_range(&id, 0..0).await?.total_len();
                db.get_range(&id, total.saturating_sub(n)..total).await
            }
        }
    };
    let stream = st.audited(&actor, "record.get_raw", Some(&id), open).await?;
    let total = stream.total_len();
    let got = stream.range();
    let ct = stream
        .meta()
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
        .unwrap_or_else(|| HeaderValue::from_static("application/octet-stream"));
    let status = match range {
        Some(ByteRange::From(a, _)) if a >= total && total > 0 => {
            let mut resp = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "RANGE_NOT_SATISFIABLE",
                format!("the range starts at {a}; the record has {total} bytes"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(resp);
        }
        Some(_) if got.end > got.start => StatusCode::PARTIAL_CONTENT,
        _ => StatusCode::OK,
    };
    let version = stream.version().to_text();
    let degraded = stream.degraded();
    let body = axum::body::Body::from_stream(stream.map(|chunk| {
        chunk.map_err(|e| {
            tracing::warn!(code = e.code().as_str(), "raw read failed part way: {e}");
            std::io::Error::other(e.to_string())
        })
    }));
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, ct);
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(got.end - got.start));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) =
            HeaderValue::from_str(&format!("bytes {}-{}/{total}", got.start, got.end - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(with_headers(resp, Some(version), degraded))
}

#[cfg(test)]
mod range_tests {
    use super::*;

    fn r(v: &str) -> Option<ByteRange> {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        parse_range(&h)
    }

    #[test]
    fn ranges_parse_strictly() {
        assert_eq!(r("bytes=0-9"), Some(ByteRange::From(0, Some(9))));
        assert_eq!(r("bytes=5-"), Some(ByteRange::From(5, None)));
        assert_eq!(r("bytes=-20"), Some(ByteRange::Suffix(20)));
        assert_eq!(r(" bytes= 3 - 4 "), Some(ByteRange::From(3, Some(4))));
        for bad in [
            "bytes=9-5",
            "bytes=-",
            "bytes=a-b",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=+1-2",
            "bytes=99999999999999999999-",
            "bytes=0x10-",
            "",
        ] {
            assert_eq!(r(bad), None, "{bad}");
        }
        assert_eq!(parse_range(&HeaderMap::new()), None);
    }
}

/// Regenerates a record's missing or bad shares from K good ones.
#[utoipa::path(post, path = "/v1/records/{id}/repair", tag = "admin", operation_id = "repairRecord",
    params(("id" = String, Path, min_length = 1, max_length = 255, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$",
        description = "Record id: 1 to 255 bytes of UTF-8 without control characters, percent-encoded")),
    responses((status = 200, description = "What was repaired", body = RepairResponse)),
    security(("bearer" = [])))]
async fn repair_record(
    State(st): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
) -> Result<Response, ApiError> {
    let r = st.audited(&actor, "record.repair", Some(&id), st.db().repair(&id)).await?;
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
async fn status(State(st): State<AppState>, Extension(actor): Extension<Actor>) -> Response {
    let h = st.db().health().await;
    st.audit(&actor.name, "store.status", None, "OK").await;
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

/// Liveness and readiness: 200 while at least K backends answer, else 503.
#[utoipa::path(get, path = "/health", tag = "service", operation_id = "health",
    responses((status = 200, description = "At least K backends answer", body = HealthResponse),
              (status = 503, description = "Fewer than K backends answer", body = HealthResponse)))]
async fn health(State(st): State<AppState>) -> Response {
    let h = st.db().health().await;
    let (code, status) = if h.up == h.n {
        (StatusCode::OK, "ok")
    } else if h.up >= h.k {
        (StatusCode::OK, "degraded")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (code, JsonLine(HealthResponse { status: status.to_owned(), k: h.k, n: h.n, up: h.up }))
        .into_response()
}

/// Prometheus metrics: requests by route and status, latency histograms, degraded reads
/// and bad shares.
#[utoipa::path(get, path = "/metrics", tag = "service", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String,
               content_type = "text/plain")),
    security(("bearer" = [])))]
async fn metrics(State(st): State<AppState>) -> Response {
    let text = st.metrics().render(st.db().stats());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// This API as an OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "service", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
async fn openapi_json(State(st): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], st.inner.openapi_json.clone()).into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "method not allowed on this route",
    )
}

// ---------------------------------------------------------------------------------------
// Middleware

/// The role and audit operation name of each protected route; `None` for public routes.
pub fn policy(method: &Method, route: &str) -> Option<(Role, &'static str)> {
    let m = method.as_str();
    Some(match (m, route) {
        ("GET" | "HEAD", "/v1/records") => (Role::Read, "record.list"),
        ("PUT" | "POST", "/v1/records") => (Role::Write, "record.put"),
        ("GET" | "HEAD", "/v1/records/{id}") => (Role::Read, "record.get"),
        ("DELETE", "/v1/records/{id}") => (Role::Write, "record.delete"),
        ("GET" | "HEAD", "/v1/records/{id}/raw") => (Role::Read, "record.get_raw"),
        ("PUT", "/v1/records/{id}/raw") => (Role::Write, "record.put_raw"),
        ("POST", "/v1/records/{id}/repair") => (Role::Admin, "record.repair"),
        ("GET" | "HEAD", "/v1/status") => (Role::Admin, "store.status"),
        ("GET" | "HEAD", "/metrics") => (Role::Read, "metrics"),
        _ => return None,
    })
}

async fn authorize(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let Some((need, op)) = route.as_deref().and_then(|r| policy(req.method(), r)) else {
        return next.run(req).await;
    };
    let token =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
    match token.and_then(|t| st.inner.tokens.authenticate(t)) {
        None => {
            st.audit("anonymous", op, None, "UNAUTHORIZED").await;
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "a valid bearer token is required (Authorization: Bearer <token>)",
            )
            .into_response()
        }
        Some(actor) if actor.role < need => {
            st.audit(&actor.name, op, None, "FORBIDDEN").await;
            ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                format!("this needs the {need} role; the token has the {} role", actor.role),
            )
            .into_response()
        }
        Some(actor) => {
            req.extensions_mut().insert(actor);
            next.run(req).await
        }
    }
}

async fn limit_and_time(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let limits = st.inner.limits;
    req.extensions_mut().insert(BodyLimit(limits.body_limit));
    match tokio::time::timeout(limits.request_timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "REQUEST_TIMEOUT",
            format!("the request took longer than {:?}", limits.request_timeout),
        )
        .into_response(),
    }
}

async fn count(State(st): State<AppState>, req: Request, next: Next) -> Response {
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

// ---------------------------------------------------------------------------------------
// Router and OpenAPI

fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(base_doc())
        .routes(routes!(list_records, put_record, post_record))
        .routes(routes!(get_record, delete_record))
        .routes(routes!(get_raw, put_raw))
        .routes(routes!(repair_record))
        .routes(routes!(status))
        .routes(routes!(health))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

fn base_doc() -> OpenApi {
    use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApiBuilder, Tag};
    let mut tags = Vec::new();
    for (name, desc) in [
        ("records", "Records: stored split across the backends, K of N needed to read"),
        ("admin", "Store administration (admin role)"),
        ("service", "Health, metrics and this document"),
    ] {
        let mut t = Tag::new(name);
        t.description = Some(desc.to_owned());
        tags.push(t);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("VaultDB")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Records split across N storage backends with K-of-N threshold sharing. \
                     Authenticate with `Authorization: Bearer <token>`; roles are read < write \
                     < admin. Errors are `{\"error\": {\"code\", \"message\"}}`.",
                ))
                .build(),
        )
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    "bearer",
                    SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
                )
                .schema_from::<ErrorResponse>()
                .build(),
        ))
        .tags(Some(tags))
        .build()
}

/// Adds the error responses every route can give: 401/403 on protected routes, 400 where
/// there is input, 413 where there is a body, 503 (availability, timeouts) and 500/502 on
/// store operations, 405 for other methods.
fn add_common_responses(doc: &mut OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let err = |desc: &str| {
        ResponseBuilder::new()
            .description(desc)
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorResponse"))).build(),
            )
            .build()
    };
    // A raw record may be empty, so its body is optional.
    if let Some(body) = doc
        .paths
        .paths
        .get_mut("/v1/records/{id}/raw")
        .and_then(|i| i.put.as_mut())
        .and_then(|op| op.request_body.as_mut())
        .and_then(|b| match b {
            RefOr::T(body) => Some(body),
            RefOr::Ref(_) => None,
        })
    {
        body.required = Some(utoipa::openapi::Required::False);
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete];
        for op in ops.into_iter().flatten() {
            let protected = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let has_input = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let has_body = op.request_body.is_some();
            let store_op = path.starts_with("/v1/");
            let r = &mut op.responses.responses;
            let mut add = |code: &str, desc: &str| {
                r.entry(code.to_owned()).or_insert_with(|| RefOr::T(err(desc)));
            };
            if protected {
                add("401", "No valid bearer token (UNAUTHORIZED)");
                add("403", "The token's role is too low (FORBIDDEN)");
            }
            if has_input || has_body {
                add("400", "Invalid id, parameters or body (INVALID_INPUT, INVALID_REQUEST)");
            }
            if has_body {
                add("413", "The body is larger than the limit (PAYLOAD_TOO_LARGE)");
            }
            if store_op {
                add("500", "The record could not be processed (SPLIT_FAILED, RECONSTRUCT_FAILED)");
                add("502", "No K shares verify: backends served bad data (HMAC_FAILED)");
                add(
                    "503",
                    "Too few backends answered, or the request timed out (INSUFFICIENT_SHARES, \
                     BACKEND_ERROR, REQUEST_TIMEOUT)",
                );
            }
            add("405", "Method not allowed on this path (METHOD_NOT_ALLOWED)");
        }
    }
}

/// The OpenAPI document of [`app`], generated from the handlers.
pub fn openapi() -> OpenApi {
    let (_, mut doc) = router().split_for_parts();
    add_common_responses(&mut doc);
    doc
}

/// The server's router over `state`.
pub fn app(state: AppState) -> Router {
    let (routes, _) = router().split_for_parts();
    let body_limit = state.inner.limits.body_limit;
    routes
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), limit_and_time))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // Route templates only: concrete paths carry record ids.
            let route =
                req.extensions().get::<MatchedPath>().map_or(UNMATCHED, MatchedPath::as_str);
            tracing::info_span!("http", method = %req.method(), route)
        }))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_store_code_has_a_status() {
        for code in ErrorCode::ALL {
            let s = ApiError::status_of(code);
            assert!(s.is_client_error() || s.is_server_error(), "{code}");
        }
        assert_eq!(ApiError::status_of(ErrorCode::RecordNotFound), StatusCode::NOT_FOUND);
        assert_eq!(ApiError::status_of(ErrorCode::InvalidInput), StatusCode::BAD_REQUEST);
        assert_eq!(
            ApiError::status_of(ErrorCode::InsufficientShares),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn json_content_types() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(is_json(Some("application/ld+json")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(None));
    }

    #[test]
    fn every_route_has_a_policy_or_is_public() {
        let doc = openapi();
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                (Method::GET, &item.get),
                (Method::PUT, &item.put),
                (Method::POST, &item.post),
                (Method::DELETE, &item.delete),
            ] {
                let Some(op) = op else { continue };
                let protected = op.security.as_ref().is_some_and(|s| !s.is_empty());
                assert_eq!(policy(&method, path).is_some(), protected, "{method} {path}");
            }
        }
    }
}
