//! The OpenAPI document at /api/v1/openapi.json is kept true: every documented operation is served
//! (no 404 or 405, no 5xx). That it lists exactly the router's routes is the unit test in
//! `server/src/http/api.rs`, which reads the router's own route table.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use support::Server;

#[tokio::test]
async fn the_openapi_document_matches_the_served_api() {
    let dir = tempfile::tempdir().unwrap();
    support::cli(
        dir.path(),
        None,
        &[
            "admin",
            "create-user",
            "--username",
            "admin",
            "--password",
            "SecurePassword123!",
            "--email",
            "admin@company.com",
            "--roles",
            "admin",
        ],
    );
    let server = Server::start(dir.path(), None);
    let http = Client::new();

    let doc: Value = http
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "parameters")
        {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    assert!(documented.len() > 20, "{documented:?}");

    let pair: Value = http
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "SecurePassword123!"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = pair["access_token"].as_str().unwrap();
    let me: Value = http
        .get(server.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = me["id"].as_str().unwrap();
    for (method, path) in &documented {
        let url = server.url(&format!(
            "/api/v1{}",
            path.replace("{id}", id).replace("{name}", "viewer")
        ));
        let method: Method = method.to_uppercase().parse().unwrap();
        let mut request = http.request(method.clone(), &url).bearer_auth(token);
        if method == Method::POST || method == Method::PATCH {
            request = request.json(&json!({}));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        // A handler may answer 404 for a missing row; the router's own 404 says "no such endpoint".
        assert!(
            !body.contains("no such endpoint") && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but answers {status}"
        );
        assert!(
            !status.is_server_error(),
            "{method} {path} answers {status}"
        );
    }
    let undocumented = http
        .get(server.url("/api/v1/nothing-here"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        undocumented.status(),
        StatusCode::NOT_FOUND,
        "an undocumented path is not served"
    );
}
