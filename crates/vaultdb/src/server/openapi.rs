//! The OpenAPI document: generated from the handlers' annotations, then completed with
//! the error responses every route can give and the list of error codes.

use serde_json::Value;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, RefOr};

use super::error::{ERROR_CODES, ErrorResponse};

/// The document's info, security scheme, error schema and tags.
pub(super) fn base_doc() -> OpenApi {
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

/// Lists the codes of [`ERROR_CODES`] as the values of `ErrorDetail.code`.
fn list_error_codes(doc: &mut OpenApi) {
    let detail = doc.components.as_mut().and_then(|c| c.schemas.get_mut("ErrorDetail"));
    let Some(RefOr::T(Schema::Object(detail))) = detail else { return };
    if let Some(RefOr::T(Schema::Object(code))) = detail.properties.get_mut("code") {
        code.enum_values = Some(ERROR_CODES.iter().map(|(c, _)| Value::from(*c)).collect());
    }
}

/// The OpenAPI document of [`app`](super::app), generated from the handlers.
pub fn openapi() -> OpenApi {
    let (_, mut doc) = super::router().split_for_parts();
    add_common_responses(&mut doc);
    list_error_codes(&mut doc);
    doc
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;
    use crate::server::policy;

    #[test]
    fn error_codes_are_listed_as_the_values_of_code() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let listed = &doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"];
        let want: Vec<&str> = ERROR_CODES.iter().map(|(c, _)| *c).collect();
        assert_eq!(listed, &serde_json::json!(want));
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
