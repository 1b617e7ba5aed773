//! A WASI 0.2 command component is uploaded, analysed and run over HTTP like a core module:
//! `Command` requests run `wasi:cli/run`; a function call is refused as an invalid invocation.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::Server;

/// A hand-written command component: `wasi:cli/run` calls `wasi:cli/exit.exit-with-code(3)`.
const EXIT_3: &str = include_str!("../sandbox/tests/fixtures/exit3.wat");

#[tokio::test]
async fn a_command_component_is_uploaded_and_run_over_http() {
    let dir = tempfile::tempdir().unwrap();
    support::cli(
        dir.path(),
        None,
        &[
            "admin",
            "create-user",
            "--username",
            "dev1",
            "--password",
            "DevPassword123!",
            "--email",
            "dev1@company.com",
            "--roles",
            "developer",
        ],
    );
    support::create_admin(dir.path(), None);
    let server = Server::start(dir.path(), None);
    let http = Client::new();
    let token = &support::token(&http, &server, "dev1", "DevPassword123!").await;
    let admin = &support::token(&http, &server, "admin", "SecurePassword123!").await;

    let r = http
        .post(server.url("/api/v1/modules?name=exit3"))
        .bearer_auth(token)
        .header("content-type", "application/wasm")
        .body(wat::parse_str(EXIT_3).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let module: Value = r.json().await.unwrap();
    assert_ne!(module["status"], "quarantined", "{module}");
    let id = module["id"].as_str().unwrap();
    // Its WASI imports put it in review (static_analysis.yml `quarantine.run_in_review` is off):
    // an admin releases it before it runs.
    assert_eq!(module["status"], "review", "{module}");
    let released = http
        .post(server.url(&format!("/api/v1/modules/{id}/release")))
        .bearer_auth(admin)
        .json(&json!({"reason": "exits with 3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(released.status(), StatusCode::OK);

    let execute = |body: Value| {
        let request = http
            .post(server.url(&format!("/api/v1/modules/{id}/execute")))
            .bearer_auth(token)
            .json(&body);
        async move {
            let r = request.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, run) = execute(json!({"args": []})).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(
        (run["exit_code"].clone(), run["stdout"].clone()),
        (json!(3), json!("")),
        "{run}"
    );
    let (status, body) = execute(json!({"function": "run"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("sandbox.invalid_invocation")
        ),
        "{body}"
    );

    let (status, _) = server.terminate();
    assert!(status.success());
}
