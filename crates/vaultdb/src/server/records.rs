//! The JSON record routes: `PUT`/`POST /v1/records`, `GET /v1/records`,
//! `GET`/`DELETE /v1/records/{id}`. The audit middleware logs each answer.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use data_encoding::{BASE64, BASE64_NOPAD, BASE64URL_NOPAD};
use serde_json::Value;
use vaultdb_core::{PutResult, Record};

use super::audit::concerning;
use super::dto::{
    IdParam, ListParams, ListResponse, PutRecordRequest, PutRecordResponse, RecordResponse,
};
use super::error::{ApiError, ErrorResponse};
use super::extract::{IdPath, JsonBody, JsonLine};
use super::{AppState, DEFAULT_PAGE, DEGRADED_HEADER, MAX_PAGE, VERSION_HEADER};
use crate::service::content_type::{self, is_json};
use crate::service::degraded::degraded;

/// Sets the version and degraded headers of a read or write.
pub(super) fn with_headers(
    mut resp: Response,
    version: Option<String>,
    degraded: bool,
) -> Response {
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(&v).ok()) {
        resp.headers_mut().insert(VERSION_HEADER, v);
    }
    if degraded {
        resp.headers_mut().insert(DEGRADED_HEADER, HeaderValue::from_static("true"));
    }
    resp
}

/// Stores a JSON record; the answer names the record for its audit line.
async fn store_json(st: &AppState, body: PutRecordRequest) -> Response {
    let id = body.id.clone();
    let resp = match record_of(body) {
        Ok(record) => match st.db().put(record).await {
            Ok(r) => stored(id.clone(), &r),
            Err(e) => ApiError::from(e).into_response(),
        },
        Err(e) => e.into_response(),
    };
    concerning(resp, id)
}

/// The record a JSON put asks for: `data` as JSON, or `data_base64`'s bytes with
/// `content_type`; with its metadata.
fn record_of(body: PutRecordRequest) -> Result<Record, ApiError> {
    let PutRecordRequest { id, data, data_base64, content_type, metadata } = body;
    let mut record = match (data, data_base64) {
        (Some(v), None) => {
            if content_type.is_some() {
                return Err(ApiError::invalid_request(
                    "content_type goes with data_base64 (data is stored as application/json)",
                ));
            }
            Record::json(id, &v)?
        }
        (None, Some(b64)) => {
            let bytes = decode_base64(&b64).ok_or_else(|| {
                ApiError::invalid_request("data_base64 is not base64 (standard or URL-safe)")
            })?;
            let ct = content_type::normalize(content_type.as_deref().unwrap_or("").as_bytes())
                .map_err(|e| ApiError::invalid_request(format!("content_type {e}")))?;
            let mut r = Record::new(id, bytes);
            r.content_type = ct;
            r
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_request("give data or data_base64, not both"));
        }
        (None, None) => return Err(ApiError::invalid_request("data or data_base64 is required")),
    };
    record.metadata = metadata;
    Ok(record)
}

/// Decodes standard or URL-safe base64, padded or not (whitespace ignored).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let unpadded = compact.trim_end_matches('=');
    [BASE64_NOPAD, BASE64URL_NOPAD].iter().find_map(|e| e.decode(unpadded.as_bytes()).ok())
}

/// The answer to a put: 201 with the version written, its acknowledgements and whether it
/// was degraded.
pub(super) fn stored(id: String, r: &PutResult) -> Response {
    let version = r.version.to_text();
    let degraded = degraded(&r.outcomes);
    let resp = (
        StatusCode::CREATED,
        JsonLine(PutRecordResponse { id, version: version.clone(), acks: r.acks, degraded }),
    )
        .into_response();
    with_headers(resp, Some(version), degraded)
}

/// Stores a JSON record.
#[utoipa::path(put, path = "/v1/records", tag = "records", operation_id = "putRecord",
    request_body = PutRecordRequest,
    responses((status = 201, description = "Stored", body = PutRecordResponse)),
    security(("bearer" = [])))]
pub(super) async fn put_record(
    State(st): State<AppState>,
    JsonBody(body): JsonBody<PutRecordRequest>,
) -> Response {
    store_json(&st, body).await
}

/// Stores a JSON record (same as `PUT /v1/records`).
#[utoipa::path(post, path = "/v1/records", tag = "records", operation_id = "postRecord",
    request_body = PutRecordRequest,
    responses((status = 201, description = "Stored", body = PutRecordResponse)),
    security(("bearer" = [])))]
pub(super) async fn post_record(
    State(st): State<AppState>,
    JsonBody(body): JsonBody<PutRecordRequest>,
) -> Response {
    store_json(&st, body).await
}

/// Lists record ids a page at a time, in an opaque stable order (name-tag order): each page
/// costs backend work in proportion to the page, not to the store.
#[utoipa::path(get, path = "/v1/records", tag = "records", operation_id = "listRecords",
    params(ListParams),
    responses((status = 200, description = "A page of ids", body = ListResponse)),
    security(("bearer" = [])))]
pub(super) async fn list_records(
    State(st): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params
        .map_err(|e| ApiError::invalid_request(format!("invalid query: {}", e.body_text())))?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid_request(format!("limit must be between 1 and {MAX_PAGE}")));
    }
    let cursor = params.cursor.filter(|c| !c.is_empty());
    let r = st.db().list_page(cursor.as_deref(), limit as usize).await?;
    let degraded = degraded(&r.outcomes);
    Ok(with_headers(
        JsonLine(ListResponse { ids: r.ids, next: r.next }).into_response(),
        None,
        degraded,
    ))
}

/// Reads a record as JSON: `data` for JSON records, `data_base64` for others.
#[utoipa::path(get, path = "/v1/records/{id}", tag = "records", operation_id = "getRecord",
    params(IdParam),
    responses((status = 200, description = "The record", body = RecordResponse),
              (status = 404, description = "No such record", body = ErrorResponse)),
    security(("bearer" = [])))]
pub(super) async fn get_record(
    State(st): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Response, ApiError> {
    let r = st.db().get(&id).await?;
    let version = r.version.to_text();
    let ct = r.record.content_type.clone();
    let parsed = if is_json(ct.as_deref()) {
        serde_json::from_slice::<Value>(&r.record.data).ok()
    } else {
        None
    };
    let (data, data_base64) = match parsed {
        Some(v) => (Some(v), None),
        None => (None, Some(BASE64.encode(&r.record.data))),
    };
    let body = RecordResponse {
        id: r.record.id.clone(),
        version: version.clone(),
        content_type: ct,
        data,
        data_base64,
        metadata: r.record.metadata.clone(),
    };
    Ok(with_headers(JsonLine(body).into_response(), Some(version), r.degraded()))
}

/// Deletes every version of a record on every backend.
#[utoipa::path(delete, path = "/v1/records/{id}", tag = "records", operation_id = "deleteRecord",
    params(IdParam),
    responses((status = 204, description = "Deleted"),
              (status = 404, description = "No such record", body = ErrorResponse)),
    security(("bearer" = [])))]
pub(super) async fn delete_record(
    State(st): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Response, ApiError> {
    let r = st.db().delete(&id).await?;
    let degraded = degraded(&r.outcomes);
    Ok(with_headers(StatusCode::NO_CONTENT.into_response(), None, degraded))
}
