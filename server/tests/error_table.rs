//! One error table: the same service error has the same status, code, message and fields through
//! the REST API and through the dashboard's server functions (as the hydrated page calls them), on
//! the real binary. Mapping an error differently in one adapter fails this test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::path::Path;

use reqwest::{
    Client, StatusCode,
    header::{ACCEPT, COOKIE, ORIGIN},
    redirect::Policy,
};
use serde_json::Value;
use support::{FreshDb, Server, create_admin, token};

const PASSWORD: &str = "SecurePassword123!";

/// What an error looks like on the wire, whichever adapter rendered it.
#[derive(Debug, PartialEq)]
struct Seen {
    status: StatusCode,
    code: String,
    message: String,
    fields: Value,
}

async fn from_rest(r: reqwest::Response) -> Seen {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    let e = &body["error"];
    Seen {
        status,
        code: e["code"].as_str().unwrap().to_string(),
        message: e["message"].as_str().unwrap().to_string(),
        fields: e.get("fields").cloned().unwrap_or(Value::Null),
    }
}

async fn from_server_fn(r: reqwest::Response) -> Seen {
    let status = r.status();
    let text = r.text().await.unwrap();
    let e: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_eq!(
        e["status"].as_u64(),
        Some(u64::from(status.as_u16())),
        "the encoded error carries the status it is answered with: {e}"
    );
    Seen {
        status,
        code: e["code"].as_str().unwrap().to_string(),
        message: e["message"].as_str().unwrap().to_string(),
        fields: e.get("fields").cloned().unwrap_or(Value::Null),
    }
}

/// A REST `GET` with a bearer token.
async fn rest_get(http: &Client, server: &Server, bearer: &str, path: &str) -> Seen {
    from_rest(
        http.get(server.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A server function called as the hydrated dashboard calls it (JSON back, no redirect).
async fn server_fn(
    http: &Client,
    server: &Server,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let origin = server.url("");
    let mut request = http
        .post(server.url(path))
        .header(ACCEPT, "application/json")
        .header(ORIGIN, origin.trim_end_matches('/'))
        .form(form);
    if let Some(c) = cookie {
        request = request.header(COOKIE, c);
    }
    request.send().await.unwrap()
}

async fn server_fn_get(
    http: &Client,
    server: &Server,
    path: &str,
    cookie: &str,
) -> reqwest::Response {
    http.get(server.url(path))
        .header(ACCEPT, "application/json")
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
}

async fn dashboard_session(http: &Client, server: &Server) -> String {
    let r = server_fn(
        http,
        server,
        "/api/auth/sign_in",
        None,
        &[("username", "admin"), ("password", PASSWORD)],
    )
    .await;
    assert!(r.status().is_success(), "{}", r.status());
    support::session_cookie(&r).expect("a session cookie")
}

async fn same_errors(data_dir: &Path, database_url: Option<&str>) {
    create_admin(data_dir, database_url);
    let server = Server::start(data_dir, database_url);
    let http = Client::builder().redirect(Policy::none()).build().unwrap();
    let bearer = token(&http, &server, "admin", PASSWORD).await;
    let cookie = dashboard_session(&http, &server).await;

    // Wrong password: 401 `unauthorized`, shown under the password field.
    let rest = from_rest(
        http.post(server.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "admin", "password": "wrong-Password-1"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let dashboard = from_server_fn(
        server_fn(
            &http,
            &server,
            "/api/auth/sign_in",
            None,
            &[("username", "admin"), ("password", "wrong-Password-1")],
        )
        .await,
    )
    .await;
    assert_eq!(rest.status, StatusCode::UNAUTHORIZED);
    assert_eq!(rest.code, "unauthorized");
    assert_eq!(
        rest.fields["password"][0], "invalid username or password",
        "{rest:?}"
    );
    assert_eq!(rest, dashboard, "wrong password");

    // Validation: 422 `validation`, each field with its own messages (not flattened).
    let rest = from_rest(
        http.post(server.url("/api/v1/users"))
            .bearer_auth(&bearer)
            .json(&serde_json::json!({
                "username": "carol", "email": "not-an-email", "password": "Carol-Password-1",
                "roles": []
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let dashboard = from_server_fn(
        server_fn(
            &http,
            &server,
            "/api/users/create",
            Some(&cookie),
            &[
                ("username", "carol"),
                ("email", "not-an-email"),
                ("password", "Carol-Password-1"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(rest.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(rest.code, "validation");
    assert!(rest.fields["email"].is_array(), "{rest:?}");
    assert_eq!(rest, dashboard, "invalid email");

    // Not found: 404 `not_found` with the service's message.
    let missing = "7d0c1e9e-35f6-4a8b-9a8a-2c1f5b4c0d11";
    let rest = rest_get(
        &http,
        &server,
        &bearer,
        &format!("/api/v1/modules/{missing}"),
    )
    .await;
    let dashboard = from_server_fn(
        server_fn_get(
            &http,
            &server,
            &format!("/api/modules/get?id={missing}"),
            &cookie,
        )
        .await,
    )
    .await;
    assert_eq!(
        (rest.status, rest.code.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert_eq!(rest, dashboard, "missing module");

    // A malformed audit query: 400 `invalid_query`, naming its field (typed, not parsed back).
    let rest = rest_get(
        &http,
        &server,
        &bearer,
        "/api/v1/audit/events?from=yesterday-ish",
    )
    .await;
    let dashboard = from_server_fn(
        server_fn_get(
            &http,
            &server,
            "/api/audit/search?from=yesterday-ish",
            &cookie,
        )
        .await,
    )
    .await;
    assert_eq!(
        (rest.status, rest.code.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );
    assert!(
        rest.fields["from"][0]
            .as_str()
            .unwrap()
            .contains("yesterday-ish"),
        "{rest:?}"
    );
    assert_eq!(rest, dashboard, "bad audit query");

    // Not signed in: the dashboard's own refusal has the API's status and code.
    let dashboard = from_server_fn(
        server_fn(
            &http,
            &server,
            "/api/users/create",
            None,
            &[
                ("username", "x"),
                ("email", "x@company.com"),
                ("password", "Xx-Password-12"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(
        (dashboard.status, dashboard.code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
}

#[tokio::test]
async fn the_same_error_reads_the_same_through_rest_and_the_dashboard_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    same_errors(dir.path(), None).await;
}

#[tokio::test]
async fn the_same_error_reads_the_same_through_rest_and_the_dashboard_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    same_errors(dir.path(), Some(&db.url)).await;
}
