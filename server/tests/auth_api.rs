//! The authentication endpoints of the REST API over HTTP, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::path::Path;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::{FreshDb, Server, cli, token};

async fn post(http: &Client, url: String, body: Value) -> (StatusCode, Value) {
    let r = http.post(url).json(&body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn auth_flow(data_dir: &Path, database_url: Option<&str>) {
    cli(
        data_dir,
        database_url,
        &[
            "admin",
            "create-user",
            "--username",
            "developer1",
            "--password",
            "DevPassword123!",
            "--email",
            "dev1@company.com",
            "--roles",
            "developer",
        ],
    );
    let server = Server::start(data_dir, database_url);
    let http = Client::new();
    let login = server.url("/api/v1/auth/login");

    // Wrong password and unknown user look the same.
    let (s1, b1) = post(
        &http,
        login.clone(),
        json!({"username": "developer1", "password": "nope"}),
    )
    .await;
    let (s2, b2) = post(
        &http,
        login.clone(),
        json!({"username": "ghost", "password": "nope"}),
    )
    .await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(b1, b2);
    assert_error(&b1, "unauthorized");

    // Bad input is a 4xx with the error body, never a 500.
    let r = http
        .post(login.clone())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_error(&r.json().await.unwrap(), "invalid_request");
    let (s, b) = post(&http, login.clone(), json!({"username": "developer1"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        b["error"]["message"].as_str().unwrap().contains("password"),
        "{b}"
    );
    let big = "x".repeat(100 * 1024);
    let (s, b) = post(
        &http,
        login.clone(),
        json!({"username": big, "password": "x"}),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&b, "payload_too_large");

    // Sign in, then use the access token.
    let (s, pair) = post(
        &http,
        login.clone(),
        json!({"username": "developer1", "password": "DevPassword123!"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{pair}");
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 86_400);
    let access = pair["access_token"].as_str().unwrap().to_string();
    let me: Value = http
        .get(server.url("/api/v1/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "developer1");
    assert_eq!(me["roles"], json!(["developer"]));
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("modules:create"))
    );
    let r = http.get(server.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http
        .get(server.url("/api/v1/me"))
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A refresh token works once; presenting it again revokes the family.
    let refresh = pair["refresh_token"].as_str().unwrap().to_string();
    let (s, second) = post(
        &http,
        server.url("/api/v1/auth/refresh"),
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{second}");
    let (s, b) = post(
        &http,
        server.url("/api/v1/auth/refresh"),
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_error(&b, "unauthorized");
    let (s, _) = post(
        &http,
        server.url("/api/v1/auth/refresh"),
        json!({"refresh_token": second["refresh_token"]}),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "the reused token's whole family is revoked"
    );
    let (s, _) = post(
        &http,
        server.url("/api/v1/auth/refresh"),
        json!({"refresh_token": access}),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "an access token is not a refresh token"
    );

    // Logout revokes the session's refresh family.
    let (_, third) = post(
        &http,
        login.clone(),
        json!({"username": "developer1", "password": "DevPassword123!"}),
    )
    .await;
    let access3 = third["access_token"].as_str().unwrap();
    let r = http
        .post(server.url("/api/v1/auth/logout"))
        .bearer_auth(access3)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (s, _) = post(
        &http,
        server.url("/api/v1/auth/refresh"),
        json!({"refresh_token": third["refresh_token"]}),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Disabling the user makes their tokens fail at once.
    let (_, fourth) = post(
        &http,
        login.clone(),
        json!({"username": "developer1", "password": "DevPassword123!"}),
    )
    .await;
    let access4 = fourth["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        http.get(server.url("/api/v1/me"))
            .bearer_auth(&access4)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    cli(
        data_dir,
        database_url,
        &["admin", "disable-user", "--username", "developer1"],
    );
    assert_eq!(
        http.get(server.url("/api/v1/me"))
            .bearer_auth(&access4)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let (s, _) = post(
        &http,
        login,
        json!({"username": "developer1", "password": "DevPassword123!"}),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a disabled user cannot sign in"
    );

    let r = http
        .get(server.url("/api/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_error(&r.json().await.unwrap(), "not_found");

    let (status, log) = server.terminate();
    assert!(status.success());
    let log = log.join("\n");
    assert!(
        !log.contains("DevPassword123!") && !log.contains(&access),
        "no secret in the logs"
    );
}

#[tokio::test]
async fn sign_in_refresh_logout_and_disable_over_http_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    auth_flow(dir.path(), None).await;
}

#[tokio::test]
async fn sign_in_refresh_logout_and_disable_over_http_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    auth_flow(dir.path(), Some(&db.url)).await;
    db.drop_db().await;
}

async fn users_flow(data_dir: &Path, database_url: Option<&str>) {
    cli(
        data_dir,
        database_url,
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
    let server = Server::start(data_dir, database_url);
    let http = Client::new();
    let admin = token(&http, &server, "admin", "SecurePassword123!").await;
    let users = server.url("/api/v1/users");

    let r = http.post(&users).bearer_auth(&admin).json(&json!({"username": "viewer1", "email": "v1@company.com", "password": "ViewPass123!", "roles": ["viewer"]})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let viewer_user: Value = r.json().await.unwrap();
    assert_eq!(viewer_user["roles"], json!(["viewer"]));
    assert!(viewer_user.get("password_hash").is_none());

    // Bad input: a 4xx with a clear message, nothing written.
    for (body, status, code) in [
        (
            json!({"username": "bob", "email": "bob@company.com", "password": "weak", "roles": ["viewer"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            json!({"username": "bob", "email": "not-an-email", "password": "ViewPass123!", "roles": ["viewer"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            json!({"username": "bob", "email": "bob@company.com", "password": "ViewPass123!", "roles": ["wizard"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            json!({"username": "viewer1", "email": "x@company.com", "password": "ViewPass123!", "roles": ["viewer"]}),
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            json!({"username": "bob", "roles": ["viewer"]}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ] {
        let r = http
            .post(&users)
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{body}");
        assert_error(&r.json().await.unwrap(), code);
    }
    let list: Value = http
        .get(&users)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list.as_array().unwrap().len(),
        2,
        "nothing half-written: {list}"
    );

    // A viewer can neither list nor create users; each denial is audited.
    let viewer = token(&http, &server, "viewer1", "ViewPass123!").await;
    let r = http.get(&users).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_error(&r.json().await.unwrap(), "forbidden");
    let r = http.post(&users).bearer_auth(&viewer).json(&json!({"username": "evil", "email": "e@company.com", "password": "EvilPass123!", "roles": ["admin"]})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Admins read, change roles and disable; the roles list shows rbac.yml's roles.
    let id = viewer_user["id"].as_str().unwrap();
    let one: Value = http
        .get(server.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["username"], "viewer1");
    assert_eq!(
        http.get(server.url("/api/v1/users/not-a-uuid"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = http
        .patch(server.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"add_roles": ["operator"], "disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let patched: Value = r.json().await.unwrap();
    assert_eq!(
        (patched["roles"].clone(), patched["disabled"].clone()),
        (json!(["operator", "viewer"]), json!(true))
    );
    assert_eq!(
        http.get(server.url("/api/v1/me"))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let roles: Value = http
        .get(server.url("/api/v1/roles"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "developer", "operator", "viewer"]);
    assert_eq!(
        roles[0]["permissions"],
        json!([
            "modules:*",
            "users:*",
            "system:*",
            "scheduler:*",
            "metrics:*",
            "snapshots:*"
        ])
    );

    let (status, _) = server.terminate();
    assert!(status.success());
    let db_url = database_url.map_or_else(
        || {
            format!(
                "sqlite://{}?mode=ro",
                data_dir.join("wasm-as-os.db").display()
            )
        },
        str::to_string,
    );
    let db = sea_orm::Database::connect(&db_url).await.unwrap();
    use sea_orm::ConnectionTrait;
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT actor_name FROM audit_logs WHERE event = 'permission_denied'",
        ))
        .await
        .unwrap();
    let denied: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "actor_name").unwrap())
        .collect();
    assert_eq!(denied, ["viewer1", "viewer1"]);
}

#[tokio::test]
async fn user_endpoints_enforce_roles_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    users_flow(dir.path(), None).await;
}

#[tokio::test]
async fn user_endpoints_enforce_roles_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    users_flow(dir.path(), Some(&db.url)).await;
    db.drop_db().await;
}

async fn roles_and_delete_flow(data_dir: &Path, database_url: Option<&str>) {
    cli(
        data_dir,
        database_url,
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
    cli(
        data_dir,
        database_url,
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
    let server = Server::start(data_dir, database_url);
    let http = Client::new();
    let admin = token(&http, &server, "admin", "SecurePassword123!").await;
    let dev = token(&http, &server, "dev1", "DevPassword123!").await;
    let roles = server.url("/api/v1/roles");

    // A custom role, and the 4xx answers around it.
    let r = http.post(&roles).bearer_auth(&admin).json(&json!({"name": "auditor", "description": "Reads the audit log", "permissions": ["system:audit", "metrics:read"]})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["builtin"], json!(false));
    for (body, status, code) in [
        (
            json!({"name": "auditor", "permissions": ["system:audit"]}),
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            json!({"name": "bad", "permissions": ["wizards:cast"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            json!({"name": "Bad Name", "permissions": ["system:audit"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            json!({"name": "empty", "permissions": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            json!({"name": "nope"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ] {
        let r = http
            .post(&roles)
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{body}");
        assert_error(&r.json().await.unwrap(), code);
    }
    let r = http
        .post(&roles)
        .bearer_auth(&dev)
        .json(&json!({"name": "sneaky", "permissions": ["users:*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a developer cannot create roles"
    );

    let r = http
        .patch(server.url("/api/v1/roles/auditor"))
        .bearer_auth(&admin)
        .json(&json!({"permissions": ["system:audit"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["permissions"],
        json!(["system:audit"])
    );
    let r = http
        .patch(server.url("/api/v1/roles/viewer"))
        .bearer_auth(&admin)
        .json(&json!({"permissions": ["users:*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "rbac.yml's roles are edited in the file"
    );
    let r = http
        .patch(server.url("/api/v1/roles/ghost"))
        .bearer_auth(&admin)
        .json(&json!({"description": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The role is assignable and its holders show.
    let users: Value = http
        .get(server.url("/api/v1/users"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dev_id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "dev1")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let admin_id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .patch(server.url(&format!("/api/v1/users/{dev_id}")))
        .bearer_auth(&admin)
        .json(&json!({"add_roles": ["auditor"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let listed: Value = http
        .get(&roles)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let auditor = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "auditor")
        .unwrap();
    assert_eq!(auditor["holders"], json!(["dev1"]));

    // Deleting: not oneself, not as a developer; the deleted user's token dies with the account.
    assert_eq!(
        http.delete(server.url(&format!("/api/v1/users/{admin_id}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        http.delete(server.url(&format!("/api/v1/users/{admin_id}")))
            .bearer_auth(&dev)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        http.delete(server.url(&format!("/api/v1/users/{dev_id}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        http.get(server.url(&format!("/api/v1/users/{dev_id}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        http.get(server.url("/api/v1/me"))
            .bearer_auth(&dev)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        http.delete(server.url(&format!("/api/v1/users/{dev_id}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    let (status, _) = server.terminate();
    assert!(status.success());
    let db_url = database_url.map_or_else(
        || {
            format!(
                "sqlite://{}?mode=ro",
                data_dir.join("wasm-as-os.db").display()
            )
        },
        str::to_string,
    );
    let db = sea_orm::Database::connect(&db_url).await.unwrap();
    use sea_orm::ConnectionTrait;
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(db.get_database_backend(), "SELECT event FROM audit_logs WHERE event IN ('role_change', 'user_delete') ORDER BY occurred_at"))
        .await
        .unwrap();
    let events: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "event").unwrap())
        .collect();
    assert_eq!(
        events,
        ["role_change", "role_change", "role_change", "user_delete"],
        "create, edit, assignment, delete"
    );
}

#[tokio::test]
async fn roles_are_created_edited_and_users_deleted_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    roles_and_delete_flow(dir.path(), None).await;
}

#[tokio::test]
async fn roles_are_created_edited_and_users_deleted_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    roles_and_delete_flow(dir.path(), Some(&db.url)).await;
    db.drop_db().await;
}
