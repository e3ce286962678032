//! The OpenAPI document: generated from the handlers, OpenAPI 3, every route in it, and
//! the served copy identical to the generated one.

mod common;

use common::{ADMIN_TOKEN, TestServer, limits, memory_store, tokens};
use serde_json::Value;
use vaultdb::server::AppState;

/// Every route the server has: (method, path template).
const ROUTES: [(&str, &str); 13] = [
    ("get", "/v1/records"),
    ("put", "/v1/records"),
    ("post", "/v1/records"),
    ("get", "/v1/records/{id}"),
    ("delete", "/v1/records/{id}"),
    ("get", "/v1/records/{id}/raw"),
    ("put", "/v1/records/{id}/raw"),
    ("post", "/v1/records/{id}/repair"),
    ("get", "/v1/status"),
    ("get", "/health"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
];

fn doc() -> Value {
    serde_json::from_str(&vaultdb::openapi().to_json().unwrap()).unwrap()
}

#[test]
fn document_is_openapi_3_with_every_route() {
    let d = doc();
    assert!(d["openapi"].as_str().unwrap().starts_with("3."), "{}", d["openapi"]);
    assert_eq!(d["info"]["title"], "VaultDB");
    let paths = d["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            documented += 1;
            assert!(
                ROUTES.contains(&(method.as_str(), path.as_str())),
                "undocumented extra {method} {path}"
            );
            assert!(op["operationId"].is_string(), "{method} {path} has an operationId");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|c| c.starts_with('2')),
                "{method} {path} has a success response"
            );
        }
    }
    assert_eq!(documented, ROUTES.len());
    for (method, path) in ROUTES {
        let op = &d["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is documented");
        let protected = op["security"].as_array().is_some_and(|s| !s.is_empty());
        let public = matches!(path, "/health" | "/openapi.json" | "/docs");
        assert_eq!(protected, !public, "{method} {path} security");
        if protected {
            for code in ["401", "403"] {
                let r = &op["responses"][code]["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(r, "#/components/schemas/ErrorResponse", "{method} {path} {code}");
            }
        }
        if path.contains("{id}") {
            let params = op["parameters"].as_array().unwrap();
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == "id" && p["in"] == "path" && p["required"] == true)
            );
            assert!(op["responses"]["400"].is_object());
        }
    }
    assert_eq!(d["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let ids: Vec<&str> = paths
        .values()
        .flat_map(|i| i.as_object().unwrap().values())
        .map(|o| o["operationId"].as_str().unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "operationIds are unique");
    // Every $ref resolves.
    let text = d.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(d["components"]["schemas"][name].is_object(), "schema {name} exists");
    }
    let put = &d["components"]["schemas"]["PutRecordRequest"];
    // `data` or `data_base64` (with `content_type`), and optional `metadata`.
    assert_eq!(put["required"], serde_json::json!(["id"]));
    for field in ["data", "data_base64", "content_type", "metadata"] {
        assert!(put["properties"][field].is_object(), "PutRecordRequest.{field}");
    }
}

/// The codes `ErrorDetail.code` lists are those of the README's error table (the server
/// emits each of them: `vaultdb::server::ERROR_CODES`, checked against the code that makes
/// them by the server's unit tests), in the same order.
#[test]
fn error_codes_are_the_readmes() {
    let readme = include_str!("../README.md");
    let table = &readme[readme.find("| code | status | when |").expect("the error table")..];
    let mut documented = Vec::new();
    for row in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let (codes, statuses) = {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            (cells[1], cells[2])
        };
        let codes: Vec<&str> = codes.split(", ").map(|c| c.trim_matches('`')).collect();
        let statuses: Vec<&str> = statuses.split(", ").collect();
        for (i, code) in codes.iter().enumerate() {
            let status = statuses.get(i).or(statuses.last()).unwrap();
            documented.push(((*code).to_owned(), status.parse::<u16>().unwrap()));
        }
    }
    let served: Vec<(String, u16)> =
        vaultdb::server::ERROR_CODES.iter().map(|(c, s)| ((*c).to_owned(), s.as_u16())).collect();
    assert_eq!(served, documented);
    let listed = &doc()["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"];
    let codes: Vec<&str> = documented.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(listed, &serde_json::json!(codes));
    assert!(!codes.contains(&"INTERNAL_ERROR"), "the server never answers INTERNAL_ERROR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_document_matches_and_every_route_exists() {
    let s = TestServer::start(AppState::new(memory_store().await, tokens(), None, limits())).await;
    let served: Value =
        s.client.get(s.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(served, doc());
    for (method, path) in ROUTES {
        let url = s.url(&path.replace("{id}", "some-id"));
        let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let resp = s
            .client
            .request(m, url)
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            let v: Value = resp.json().await.unwrap();
            assert_ne!(v["error"]["code"], "NOT_FOUND", "{method} {path} is routed");
        }
        assert_ne!(status, reqwest::StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
    }
    s.stop().await;
}

/// The `src` and `href` values of an HTML page.
fn references(page: &str) -> Vec<String> {
    let mut refs = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (at, _) in page.match_indices(attr) {
            let rest = &page[at + attr.len()..];
            refs.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    refs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_reference_page_is_served_whole_by_the_server() {
    let s = TestServer::start(AppState::new(memory_store().await, tokens(), None, limits())).await;
    let resp = s.client.get(s.url("/docs")).send().await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let base = resp.url().clone();
    let page = resp.text().await.unwrap();
    // Everything the page loads comes from the server itself: no network at run time.
    let refs = references(&page);
    assert!(refs.len() >= 3, "{page}");
    let mut scripts = String::new();
    for r in &refs {
        let url = base.join(r).unwrap();
        assert_eq!(url.origin(), base.origin(), "{r} is loaded from elsewhere");
        let resp = s.client.get(url.clone()).send().await.unwrap();
        assert_eq!(resp.status(), reqwest::StatusCode::OK, "{url}");
        let body = resp.text().await.unwrap();
        assert!(!body.is_empty(), "{url}");
        if r.ends_with(".js") {
            scripts.push_str(&body);
        }
    }
    // Swagger UI, pointed at the served document.
    assert!(scripts.contains("SwaggerUIBundle"), "the page loads Swagger UI");
    assert!(scripts.contains("\"url\": \"/openapi.json\""), "it renders /openapi.json");
    // Other paths under /docs are 404s in the API's error shape.
    let resp = s.client.get(s.url("/docs/no-such-file.js")).send().await.unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::NOT_FOUND);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "NOT_FOUND");
    s.stop().await;
}
