//! The JSON bodies of requests and responses (their schemas are in the OpenAPI document).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

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
    /// The record's data: any JSON value, stored with content type `application/json`.
    /// Give `data` or `data_base64`.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Value, example = json!({"name": "Alice"}))]
    pub data: Option<Value>,
    /// The record's data as bytes in base64: standard (`base64`, RFC 4648 section 4) or
    /// URL-safe (section 5), with or without padding. Give `data` or `data_base64`.
    #[serde(default)]
    pub data_base64: Option<String>,
    /// The content type stored with `data_base64` (the rule of the raw routes' header).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Metadata entries stored (and protected) with the record.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// `Some` for any value given, `null` included (so that `"data": null` stores JSON null).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
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
    /// The data in standard base64 with padding (RFC 4648 section 4: what `base64 -d` and
    /// Python's `base64.b64decode` read), for records that are not JSON (or read them as
    /// they are from `/v1/records/{id}/raw`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_base64: Option<String>,
    /// The record's metadata entries (omitted when there are none).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// Raw bytes (in the OpenAPI document only: bodies of the raw routes).
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct RawData(pub Vec<u8>);

/// A page of ids.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListResponse {
    /// Record ids, in name-tag order (an order that reveals nothing about the ids, stable
    /// while the store changes), not sorted by id.
    pub ids: Vec<String>,
    /// Pass as `cursor` to get the next page (an opaque token, not an id); `null` on the
    /// last page. A page may hold fewer than `limit` ids while `next` is not `null`.
    pub next: Option<String>,
}

/// The record id in the path of `/v1/records/{id}` and the routes under it.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct IdParam {
    /// Record id: 1 to 255 bytes of UTF-8 without control characters, percent-encoded
    #[param(min_length = 1, max_length = 255, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]+$")]
    #[expect(dead_code, reason = "only its documentation is used: the handlers extract `IdPath`")]
    id: String,
}

/// `GET /v1/records` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Ids per page (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next` value of the previous page (opaque). Pages follow name-tag order, which
    /// says nothing about the ids; a page may hold fewer than `limit` ids while `next` is set.
    pub cursor: Option<String>,
}

/// `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok` (all backends up, the audit log writable), `degraded` (at least K up, or the
    /// audit log failing open), `unavailable` (fewer than K up, or the audit log not
    /// writable and failing closed: requests are refused) or `moved` (a re-share moved the
    /// store to a new configuration: requests are refused until the server is restarted on
    /// it).
    pub status: String,
    /// The threshold K.
    pub k: usize,
    /// The number of backends N.
    pub n: usize,
    /// Backends up.
    pub up: usize,
    /// The audit log: `ok` (writable), `unavailable` (cannot be written) or `off` (none).
    pub audit: String,
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
