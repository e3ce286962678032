//! The raw record routes: `PUT`/`GET /v1/records/{id}/raw`: bytes with their content type,
//! read as a stream of verified segments, whole or a byte range. A streamed read writes its
//! audit line when its body ends; the audit middleware logs the other answers.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use vaultdb_core::RecordMeta;

use super::AppState;
use super::audit::AuditedInBody;
use super::dto::{IdParam, PutRecordResponse, RawData};
use super::error::{ApiError, ErrorResponse};
use super::extract::IdPath;
use super::records::{stored, with_headers};
use crate::auth::Actor;
use crate::service::spool::{Spool, SpoolError};
use crate::service::{AuditedStream, Auditor, Operation, StreamLine, content_type};

/// Stores the request body as-is, keeping its `Content-Type`, streamed: segments are
/// split and written as the body arrives, so memory stays bounded whatever its size (up to
/// the store's `max_record_size`, checked against `Content-Length` before anything is
/// read). A body without `Content-Length` (chunked) is first copied to an anonymous
/// temporary file, since a stored record's length is written before its segments. A body
/// cut off part way stores nothing: the segments already written are removed.
#[utoipa::path(put, path = "/v1/records/{id}/raw", tag = "records", operation_id = "putRawRecord",
    params(IdParam,
        ("X-Vaultdb-Meta-*" = Option<String>, Header,
         description = "Metadata entries: `X-Vaultdb-Meta-Owner: ops` stores `owner = ops`")),
    request_body(content = inline(RawData), content_type = "application/octet-stream",
                 description = "The data (may be empty); its Content-Type is stored with it"),
    responses((status = 201, description = "Stored", body = PutRecordResponse),
              (status = 413, description = "Larger than the store's max_record_size", body = ErrorResponse)),
    security(("bearer" = [])))]
pub(super) async fn put_raw(
    State(st): State<AppState>,
    IdPath(id): IdPath,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    // The service's content-type rule, the same as `vaultdb put --content-type`.
    let given = headers.get(header::CONTENT_TYPE).map_or(&[][..], HeaderValue::as_bytes);
    let ct = content_type::normalize(given)
        .map_err(|e| ApiError::invalid_request(format!("the Content-Type header {e}")))?;
    let mut meta = RecordMeta::new(id.clone());
    meta.content_type = ct;
    meta.metadata = meta_headers(&headers)?;
    let max = st.db().settings().max_record_size;
    let declared = match headers.get(header::CONTENT_LENGTH) {
        Some(v) => {
            Some(v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()).ok_or_else(|| {
                ApiError::invalid_request("the Content-Length header is not a number")
            })?)
        }
        None => None,
    };
    let stream = body.into_data_stream().map(|r| r.map_err(std::io::Error::other));
    let mut reader = tokio_util::io::StreamReader::new(stream);
    let r = match declared {
        Some(len) if len > max as u64 => return Err(ApiError::too_large(max)),
        Some(len) => st.db().put_stream(meta, len, reader).await?,
        None => {
            let (file, len) = spool(&mut reader, max).await?;
            st.db().put_stream(meta, len, tokio::io::BufReader::new(file)).await?
        }
    };
    Ok(stored(id, &r))
}

/// Copies a body of unknown length to an encrypted anonymous temporary file ([`Spool`]),
/// refusing more than `max` bytes; returns it rewound, and the length.
async fn spool(
    reader: &mut (impl tokio::io::AsyncRead + Unpin),
    max: usize,
) -> Result<(Spool<tokio::fs::File>, u64), ApiError> {
    match Spool::copy_async(reader, max as u64).await {
        Ok(s) => {
            let len = s.len();
            Ok((s, len))
        }
        Err(SpoolError::TooLarge) => Err(ApiError::too_large(max)),
        Err(SpoolError::Read(e)) => {
            Err(ApiError::invalid_request(format!("cannot read the request body: {e}")))
        }
        Err(SpoolError::Temp(e)) => Err(internal(e)),
        Err(SpoolError::Stopped) => Err(internal(std::io::Error::other("stopped"))),
    }
}

/// A temporary file that cannot be made, written or rewound.
fn internal(e: std::io::Error) -> ApiError {
    tracing::error!("cannot spool a request body: {e}");
    ApiError::from(vaultdb_core::VaultError::SplitFailed(format!(
        "cannot keep the body in a temporary file: {e}"
    )))
}

/// The prefix of the headers that carry a record's metadata entries on the raw routes
/// (`X-Vaultdb-Meta-Owner: ops` is the entry `owner = ops`), as S3's `x-amz-meta-`.
pub(super) const META_HEADER_PREFIX: &str = "x-vaultdb-meta-";

/// The metadata entries of a raw put's headers (names lowercased, as HTTP has them).
fn meta_headers(
    headers: &HeaderMap,
) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    let mut out = std::collections::BTreeMap::new();
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix(META_HEADER_PREFIX) {
            let v = value.to_str().map_err(|_| {
                ApiError::invalid_request(format!("header {name}: the value must be visible ASCII"))
            })?;
            if out.insert(key.to_owned(), v.to_owned()).is_some() {
                return Err(ApiError::invalid_request(format!("header {name} is given twice")));
            }
        }
    }
    Ok(out)
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
    params(IdParam,
        ("Range" = Option<String>, Header, description = "One byte range, `bytes=a-b`, `bytes=a-` or `bytes=-n`")),
    responses((status = 200, description = "The stored bytes",
               content((Value = "*/*"))),
              (status = 206, description = "The requested byte range",
               content((Value = "*/*"))),
              (status = 404, description = "No such record", body = ErrorResponse),
              (status = 416, description = "The range starts past the end", body = ErrorResponse)),
    security(("bearer" = [])))]
pub(super) async fn get_raw(
    State(st): State<AppState>,
    Extension(actor): Extension<Actor>,
    method: Method,
    IdPath(id): IdPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
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
    let stream = open.await?;
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
            let mut resp = ApiError::range_not_satisfiable(a, total).into_response();
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
    let meta: Vec<(header::HeaderName, HeaderValue)> = stream
        .meta()
        .metadata
        .iter()
        .filter_map(|(k, v)| {
            let name =
                header::HeaderName::from_bytes(format!("{META_HEADER_PREFIX}{k}").as_bytes());
            Some((name.ok()?, HeaderValue::from_str(v).ok()?))
        })
        .collect();
    // The body writes the audit line when it ends: OK, the code of a failure part way, or
    // CLIENT_CLOSED. (A HEAD answer has no body: the middleware logs it.)
    let streamed = method != Method::HEAD;
    let body = if streamed {
        let line = StreamLine {
            actor: actor.name.clone(),
            op: Operation::RecordGetRaw,
            tag: Some(Auditor::new(st.db(), &st).tag(&id)),
        };
        axum::body::Body::from_stream(AuditedStream::new(st.clone(), line, stream).map(|chunk| {
            chunk.map_err(|e| {
                tracing::warn!("raw read failed part way: {e}");
                std::io::Error::other(e.to_string())
            })
        }))
    } else {
        axum::body::Body::empty()
    };
    let mut resp = Response::new(body);
    if streamed {
        resp.extensions_mut().insert(AuditedInBody);
    }
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, ct);
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(got.end - got.start));
    for (name, value) in meta {
        h.insert(name, value);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) =
            HeaderValue::from_str(&format!("bytes {}-{}/{total}", got.start, got.end - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(with_headers(resp, Some(version), degraded))
}

#[cfg(test)]
mod tests {
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

    #[tokio::test]
    async fn chunked_body_spool_holds_no_plaintext_on_disk() {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let plain: Vec<u8> =
            (0..40_000u32).flat_map(|i| format!("body line {i:016}\n").into_bytes()).collect();
        let (mut f, len) = spool(&mut &plain[..], 2 << 20).await.unwrap();
        assert_eq!(len, plain.len() as u64);
        let mut raw = Vec::new();
        f.raw_file().rewind().await.unwrap();
        f.raw_file().read_to_end(&mut raw).await.unwrap();
        assert_eq!(raw.len(), plain.len());
        let windows: std::collections::HashSet<&[u8]> = plain.windows(64).collect();
        assert!(
            !raw.chunks_exact(64).any(|c| windows.contains(c)),
            "the temporary file holds the plaintext"
        );
        // Read back through the spool: the exact input.
        f.raw_file().rewind().await.unwrap();
        let mut back = Vec::new();
        f.read_to_end(&mut back).await.unwrap();
        assert!(back == plain, "read back differs");
    }
}
