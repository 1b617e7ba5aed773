//! Erasure over the REST API against the real binary, on SQLite and PostgreSQL.
//!
//! A person signs in from a distinctive browser and asks for their erasure: a wrong password is a
//! field error, the request is scheduled after the grace period and can be cancelled; someone
//! without `users:delete` cannot erase them (403). An administrator then erases the account while
//! the server runs with a failpoint that aborts the process in the middle of the erasure (as
//! `kill -9` would). The next start finishes it: the account is gone, `admin audit verify` passes
//! on the database and on the audit file, and neither the data dir nor the server's log holds
//! the person's name, email or user agent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::{Server, create_admin, create_user, run_cli, token};

const NAME: &str = "quillonmarsh";
const PASSWORD: &str = "QuillonPassword123!";
const AGENT: &str = "QuillonAgent/7.3 (X11; Linux x86_64)";

async fn send(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = r.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn erasure_over_the_api(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    create_admin(data, database_url);
    create_user(data, database_url, NAME, PASSWORD, "developer");
    create_user(data, database_url, "finn", "FinnPassword123!", "viewer");
    let server = Server::start_with_env(
        data,
        database_url,
        &[],
        &[("WASM_AS_OS_FAILPOINT", "erasure:scrub_db")],
    );
    let http = Client::builder().user_agent(AGENT).build().unwrap();
    let person = token(&http, &server, NAME, PASSWORD).await;
    // Everyone else signs in with another client: only the person's events carry AGENT.
    let other = Client::new();
    let finn = token(&other, &server, "finn", "FinnPassword123!").await;
    let admin = token(&Client::new(), &server, "admin", "SecurePassword123!").await;
    let (_, me) = send(http.get(server.url("/api/v1/me")).bearer_auth(&person)).await;
    let person_id = me["id"].as_str().unwrap().to_string();

    // The person's own request: the password again, then scheduled after the grace period.
    let (status, body) = send(
        http.post(server.url("/api/v1/me/erasure"))
            .bearer_auth(&person)
            .json(&json!({"password": "not it"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["fields"]["password"].is_array(), "{body}");
    let (status, body) = send(
        http.post(server.url("/api/v1/me/erasure"))
            .bearer_auth(&person)
            .json(&json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "scheduled");
    let (status, body) = send(
        http.delete(server.url("/api/v1/me/erasure"))
            .bearer_auth(&person),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );

    // Without users:delete, nobody erases someone else (and the refusal is a plain 403).
    let (status, body) = send(
        other
            .post(server.url(&format!("/api/v1/users/{person_id}/erasure")))
            .bearer_auth(&finn),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = send(other.get(server.url("/api/v1/erasures")).bearer_auth(&finn)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The compliance overview: the settings in force for system:audit, refused to others.
    let (status, _) = send(
        other
            .get(server.url("/api/v1/compliance/privacy"))
            .bearer_auth(&finn),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, overview) = send(
        other
            .get(server.url("/api/v1/compliance/privacy"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{overview}");
    let settings = &overview["settings"];
    assert_eq!(
        settings["retention"][0],
        serde_json::json!(["Audit events", "7 years"])
    );
    assert_eq!(settings["full_values_kept_for"], "1 day");
    assert_eq!(settings["grace_period"], "7 days");
    assert_eq!(
        settings["anonymised_fields"],
        serde_json::json!(["ip_address", "user_agent", "email"])
    );

    // An administrator erases the account; the failpoint aborts the server mid-erasure.
    let (status, body) = send(
        other
            .post(server.url(&format!("/api/v1/users/{person_id}/erasure")))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let erasure_id = body["id"].as_str().unwrap().to_string();
    let aborted = server.wait_exit(Duration::from_secs(60));
    assert!(
        !aborted.success(),
        "the failpoint aborts the server: {aborted:?}"
    );

    // The next start resumes the erasure from the step it was in (once the lease runs out).
    let server = Server::start(data, database_url);
    let admin = token(&Client::new(), &server, "admin", "SecurePassword123!").await;
    let mut last = Value::Null;
    for _ in 0..120 {
        let (status, list) = send(
            Client::new()
                .get(server.url("/api/v1/erasures?status=all"))
                .bearer_auth(&admin),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        last = list
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == erasure_id.as_str())
            .cloned()
            .unwrap();
        if last["status"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(last["status"], "done", "{last}");
    assert_eq!(last["username"], Value::Null);
    let (status, _) = send(
        Client::new()
            .get(server.url(&format!("/api/v1/users/{person_id}")))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(http.get(server.url("/api/v1/me")).bearer_auth(&person)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the person's tokens stopped working"
    );
    let (_, log) = server.terminate();

    // The chain verifies, from the command line, on the database and on the file.
    let out = run_cli(data, database_url, &["admin", "audit", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("personal values erased"), "{text}");
    let file = data.join("audit.log");
    let out = run_cli(
        data,
        database_url,
        &["admin", "audit", "verify", "--file", file.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Nothing of the person in the data dir or the server's log.
    for gone in [NAME, "quillonmarsh@company.com", "QuillonAgent"] {
        let found = testkit::files_holding(data, gone.as_bytes());
        assert!(found.is_empty(), "{gone} is still in {found:?}");
        let lines: Vec<&String> = log.iter().filter(|l| l.contains(gone)).collect();
        assert!(lines.is_empty(), "{gone} is in the server log: {lines:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_over_the_api_on_sqlite() {
    erasure_over_the_api(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_over_the_api_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    erasure_over_the_api(Some(&db.url)).await;
    db.drop_db().await;
}
