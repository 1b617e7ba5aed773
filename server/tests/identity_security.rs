//! Attacks on identity over HTTP against the real binary, on SQLite and PostgreSQL: granting more
//! than one holds, taking away the last administrator, access tokens outliving their sign-in,
//! password sign-in while security.yml turns local accounts off, and secrets readable at rest
//! (file modes of the data dir, session ids in the database).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::path::{Path, PathBuf};

use reqwest::{
    Client, Method, StatusCode,
    header::{ACCEPT, COOKIE, LOCATION, REFERER, SET_COOKIE},
    redirect::Policy,
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use support::{FreshDb, Server, cli, create_admin, run_cli_in, token};

/// Two tests running `flow(dir, database_url)`: on SQLite, and on a fresh PostgreSQL database.
macro_rules! on_both {
    ($sqlite:ident, $postgres:ident, $flow:ident) => {
        #[tokio::test]
        async fn $sqlite() {
            let dir = tempfile::tempdir().unwrap();
            $flow(dir.path(), None).await;
        }

        #[tokio::test]
        async fn $postgres() {
            let Some(db) = FreshDb::create().await else {
                return;
            };
            let dir = tempfile::tempdir().unwrap();
            $flow(dir.path(), Some(&db.url)).await;
            db.drop_db().await;
        }
    };
}

async fn call(
    http: &Client,
    server: &Server,
    method: Method,
    path: &str,
    bearer: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = http
        .request(method, server.url(&format!("/api/v1{path}")))
        .bearer_auth(bearer);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Asserts a refusal with its status and error code.
async fn refused(
    http: &Client,
    server: &Server,
    (method, path, bearer, body): (Method, &str, &str, Option<Value>),
    status: StatusCode,
    code: &str,
) {
    let (s, b) = call(http, server, method.clone(), path, bearer, body).await;
    assert_eq!(s, status, "{method} {path}: {b}");
    assert_eq!(b["error"]["code"], code, "{method} {path}: {b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

async fn created(http: &Client, server: &Server, path: &str, bearer: &str, body: Value) -> Value {
    let (s, b) = call(http, server, Method::POST, path, bearer, Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "POST {path}: {b}");
    b
}

async fn connect(data_dir: &Path, database_url: Option<&str>) -> DatabaseConnection {
    let url = database_url.map_or_else(
        || {
            format!(
                "sqlite://{}?mode=ro",
                data_dir.join("wasm-as-os.db").display()
            )
        },
        str::to_string,
    );
    Database::connect(&url).await.unwrap()
}

async fn strings(db: &DatabaseConnection, sql: &str, column: &str) -> Vec<String> {
    db.query_all_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        sql,
    ))
    .await
    .unwrap()
    .iter()
    .map(|r| r.try_get::<String>("", column).unwrap())
    .collect()
}

const ADMIN_PERMISSIONS: [&str; 6] = [
    "modules:*",
    "users:*",
    "system:*",
    "scheduler:*",
    "metrics:*",
    "snapshots:*",
];

async fn grants_flow(data_dir: &Path, database_url: Option<&str>) {
    create_admin(data_dir, database_url);
    let server = Server::start(data_dir, database_url);
    let http = Client::new();
    let admin = token(&http, &server, "admin", "SecurePassword123!").await;
    let (_, me) = call(&http, &server, Method::GET, "/me", &admin, None).await;
    let admin_id = me["id"].as_str().unwrap().to_string();

    // The admin makes custom roles and accounts holding them (all within the admin's own).
    for (name, permissions) in [
        ("helpdesk", json!(["users:update"])),
        (
            "usermgr",
            json!(["users:create", "users:read", "users:update", "users:delete"]),
        ),
        ("superuser", json!(ADMIN_PERMISSIONS)),
    ] {
        created(
            &http,
            &server,
            "/roles",
            &admin,
            json!({"name": name, "permissions": permissions}),
        )
        .await;
    }
    let mut ids = std::collections::BTreeMap::new();
    for (name, role) in [
        ("helper", "helpdesk"),
        ("helper2", "helpdesk"),
        ("manager", "usermgr"),
        ("root2", "superuser"),
    ] {
        let user = created(&http, &server, "/users", &admin, json!({"username": name, "email": format!("{name}@company.com"), "password": "Password123!x", "roles": [role]})).await;
        ids.insert(name, user["id"].as_str().unwrap().to_string());
    }
    let helper = token(&http, &server, "helper", "Password123!x").await;
    let manager = token(&http, &server, "manager", "Password123!x").await;
    let root2 = token(&http, &server, "root2", "Password123!x").await;
    let user = |name: &str| format!("/users/{}", ids[name]);
    let admin_path = format!("/users/{admin_id}");
    let forbidden = StatusCode::FORBIDDEN;

    // A role holding only users:update: no admin role for itself or anyone, no role beyond its
    // own, and no change at all to an account holding more than it does.
    for (path, body) in [
        (user("helper"), json!({"add_roles": ["admin"]})),
        (user("helper2"), json!({"add_roles": ["admin"]})),
        (user("helper2"), json!({"add_roles": ["usermgr"]})),
        (admin_path.clone(), json!({"password": "Hijacked123!xyz"})),
        (admin_path.clone(), json!({"email": "mallory@evil.com"})),
        (admin_path.clone(), json!({"disabled": true})),
        (admin_path.clone(), json!({"remove_roles": ["admin"]})),
    ] {
        let request = (Method::PATCH, path.as_str(), helper.as_str(), Some(body));
        refused(&http, &server, request, forbidden, "forbidden").await;
    }
    // Within its reach it works: helper2 holds nothing helper lacks.
    let (s, b) = call(
        &http,
        &server,
        Method::PATCH,
        &user("helper2"),
        &helper,
        Some(json!({"password": "NewHelper123!x"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    // The dashboard's server functions follow the same rule.
    let browser = Client::builder().redirect(Policy::none()).build().unwrap();
    let cookie = dashboard_sign_in(&browser, &server, "helper", "Password123!x").await;
    let r = browser
        .post(server.url("/api/users/set_roles"))
        .header(ACCEPT, "text/html")
        .header(REFERER, server.url(&user("helper")))
        .header(COOKIE, &cookie)
        .form(&[
            ("id", ids["helper"].as_str()),
            ("roles[admin]", "on"),
            ("roles[helpdesk]", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert!(location(&r).contains("__err="), "{}", location(&r));

    // users:create, read, update and delete: no admin account, no role with a permission (or a
    // wildcard) it lacks, no edit of a role granting more, no change to the admin.
    for request in [
        (
            Method::POST,
            "/users",
            json!({"username": "evil", "email": "evil@company.com", "password": "EvilPass123!x", "roles": ["admin"]}),
        ),
        (
            Method::POST,
            "/roles",
            json!({"name": "escalate", "permissions": ["system:*"]}),
        ),
        (
            Method::POST,
            "/roles",
            json!({"name": "escalate", "permissions": ["users:*"]}),
        ),
        (
            Method::PATCH,
            "/roles/helpdesk",
            json!({"permissions": ["users:update", "system:*"]}),
        ),
        (
            Method::PATCH,
            "/roles/superuser",
            json!({"description": "mine now"}),
        ),
        (
            Method::PATCH,
            admin_path.as_str(),
            json!({"password": "Hijacked123!xyz"}),
        ),
        (Method::DELETE, admin_path.as_str(), Value::Null),
    ] {
        let (method, path, body) = request;
        let body = (!body.is_null()).then_some(body);
        let request = (method, path, manager.as_str(), body);
        refused(&http, &server, request, forbidden, "forbidden").await;
    }
    created(&http, &server, "/users", &manager, json!({"username": "helper3", "email": "helper3@company.com", "password": "Password123!x", "roles": ["helpdesk"]})).await;
    created(
        &http,
        &server,
        "/roles",
        &manager,
        json!({"name": "readers", "permissions": ["users:read"]}),
    )
    .await;

    // Nothing was taken: the admin's password and roles stand; nobody else became an admin.
    token(&http, &server, "admin", "SecurePassword123!").await;
    let (_, users) = call(&http, &server, Method::GET, "/users", &admin, None).await;
    let admins: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["roles"].as_array().unwrap().contains(&json!("admin")))
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(admins, ["admin"]);

    // The last enabled admin is kept, even against an admin or an account holding everything.
    let conflict = StatusCode::CONFLICT;
    for (bearer, method, body) in [
        (
            &admin,
            Method::PATCH,
            Some(json!({"remove_roles": ["admin"]})),
        ),
        (&admin, Method::PATCH, Some(json!({"disabled": true}))),
        (
            &root2,
            Method::PATCH,
            Some(json!({"remove_roles": ["admin"]})),
        ),
        (&root2, Method::PATCH, Some(json!({"disabled": true}))),
        (&root2, Method::DELETE, None),
    ] {
        let request = (method, admin_path.as_str(), bearer.as_str(), body);
        refused(&http, &server, request, conflict, "last_admin").await;
    }
    let (s, me) = call(&http, &server, Method::GET, "/me", &admin, None).await;
    assert_eq!((s, me["roles"].clone()), (StatusCode::OK, json!(["admin"])));
    // With a second admin, one of them may go.
    let (s, _) = call(
        &http,
        &server,
        Method::PATCH,
        &user("root2"),
        &admin,
        Some(json!({"add_roles": ["admin"]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = call(
        &http,
        &server,
        Method::PATCH,
        &admin_path,
        &root2,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let root2_path = user("root2");
    let request = (
        Method::PATCH,
        root2_path.as_str(),
        root2.as_str(),
        Some(json!({"remove_roles": ["admin"]})),
    );
    refused(&http, &server, request, conflict, "last_admin").await;

    // The CLI is the operator: it grants, resets and disables anyone, the last admin included.
    for args in [
        &[
            "admin",
            "update-user",
            "--username",
            "helper",
            "--add-roles",
            "admin",
        ][..],
        &[
            "admin",
            "update-user",
            "--username",
            "admin",
            "--password",
            "Operator123!x",
        ],
        &["admin", "enable-user", "--username", "admin"],
        &["admin", "disable-user", "--username", "root2"],
        &["admin", "disable-user", "--username", "helper"],
        &["admin", "disable-user", "--username", "admin"],
        &["admin", "enable-user", "--username", "admin"],
    ] {
        cli(data_dir, database_url, args);
    }
    token(&http, &server, "admin", "Operator123!x").await;

    let (status, _) = server.terminate();
    assert!(status.success());
    let db = connect(data_dir, database_url).await;
    let denied = strings(
        &db,
        "SELECT actor_name FROM audit_logs WHERE event = 'permission_denied' ORDER BY actor_name",
        "actor_name",
    )
    .await;
    let count = |who: &str| denied.iter().filter(|a| *a == who).count();
    assert_eq!(
        (count("helper"), count("manager"), denied.len()),
        (8, 7, 15),
        "{denied:?}"
    );
}

on_both!(
    nobody_grants_more_than_they_hold_on_sqlite,
    nobody_grants_more_than_they_hold_on_postgres,
    grants_flow
);

async fn me(http: &Client, server: &Server, token: &str) -> StatusCode {
    call(http, server, Method::GET, "/me", token, None).await.0
}

async fn tokens_flow(data_dir: &Path, database_url: Option<&str>) {
    create_admin(data_dir, database_url);
    let server = Server::start(data_dir, database_url);
    let http = Client::new();
    let login = |http: &Client| {
        http.post(server.url("/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": "SecurePassword123!"}))
            .send()
    };
    let refresh = |refresh: &Value| {
        http.post(server.url("/api/v1/auth/refresh"))
            .json(&json!({"refresh_token": refresh}))
            .send()
    };

    // Logout ends the access token at once, though it was just verified (and remembered).
    let first: Value = login(&http).await.unwrap().json().await.unwrap();
    let access = first["access_token"].as_str().unwrap();
    let other: Value = login(&http).await.unwrap().json().await.unwrap();
    let other_access = other["access_token"].as_str().unwrap();
    assert_eq!(me(&http, &server, access).await, StatusCode::OK);
    assert_eq!(me(&http, &server, access).await, StatusCode::OK);
    let r = http
        .post(server.url("/api/v1/auth/logout"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (s, b) = call(&http, &server, Method::GET, "/me", access, None).await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("unauthorized"))
    );
    assert_eq!(
        me(&http, &server, other_access).await,
        StatusCode::OK,
        "another sign-in goes on"
    );

    // Refresh-token reuse revokes the family: every access token of that sign-in stops.
    let second: Value = login(&http).await.unwrap().json().await.unwrap();
    let access2 = second["access_token"].as_str().unwrap();
    let third: Value = refresh(&second["refresh_token"])
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access3 = third["access_token"].as_str().unwrap();
    assert_eq!(
        me(&http, &server, access2).await,
        StatusCode::OK,
        "a refresh ends nothing"
    );
    assert_eq!(me(&http, &server, access3).await, StatusCode::OK);
    let reuse = refresh(&second["refresh_token"]).await.unwrap();
    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(me(&http, &server, access2).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&http, &server, access3).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&http, &server, other_access).await, StatusCode::OK);

    let (status, _) = server.terminate();
    assert!(status.success());
}

on_both!(
    access_tokens_end_with_their_sign_in_on_sqlite,
    access_tokens_end_with_their_sign_in_on_postgres,
    tokens_flow
);

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Posts the dashboard's sign-in form as a browser without JavaScript does.
async fn sign_in_form(
    browser: &Client,
    server: &Server,
    username: &str,
    password: &str,
) -> reqwest::Response {
    browser
        .post(server.url("/api/auth/sign_in"))
        .header(ACCEPT, "text/html")
        .header(REFERER, server.url("/login"))
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .unwrap()
}

/// Signs in through the dashboard and returns the session cookie as `name=value`.
async fn dashboard_sign_in(
    browser: &Client,
    server: &Server,
    username: &str,
    password: &str,
) -> String {
    let r = sign_in_form(browser, server, username, password).await;
    assert_eq!(
        (r.status(), location(&r)),
        (StatusCode::FOUND, "/".to_string())
    );
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("wasm_as_os_session="))
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// A copy of the repository's config dir with the local provider turned off in security.yml.
fn local_off_config(dir: &Path) -> PathBuf {
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    for entry in std::fs::read_dir(support::repo_config()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yml") {
            std::fs::copy(&path, config.join(path.file_name().unwrap())).unwrap();
        }
    }
    let security = std::fs::read_to_string(config.join("security.yml")).unwrap();
    let on = "- type: \"local\"\n      enabled: true";
    assert!(security.contains(on));
    let off = security.replace(on, "- type: \"local\"\n      enabled: false");
    std::fs::write(config.join("security.yml"), off).unwrap();
    config
}

async fn local_off_flow(dir: &Path, database_url: Option<&str>) {
    let data_dir = dir.join("data");
    create_admin(&data_dir, database_url);
    // A sign-in made while local sign-in was on…
    let before = Server::start(&data_dir, database_url);
    let pair: Value = Client::new()
        .post(before.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "SecurePassword123!"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    before.terminate();
    let config = local_off_config(dir);
    let server = Server::start_in(&config, &data_dir, database_url);

    // …cannot be kept alive by refreshing once it is off, and its access token ends with it.
    let r = Client::new()
        .post(server.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": pair["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "local_login_disabled", "{body}");
    let r = Client::new()
        .get(server.url("/api/v1/me"))
        .bearer_auth(pair["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the family was revoked"
    );

    let r = Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "SecurePassword123!"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "local_login_disabled", "{body}");

    let browser = Client::builder().redirect(Policy::none()).build().unwrap();
    let r = sign_in_form(&browser, &server, "admin", "SecurePassword123!").await;
    let back = location(&r);
    assert!(back.contains("__err="), "{back}");
    // The sign-in page it sends the browser back to shows why.
    let html = browser
        .get(
            url::Url::parse(&server.url("/"))
                .unwrap()
                .join(&back)
                .unwrap(),
        )
        .header(ACCEPT, "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("turned off on this server"), "{html}");
    assert!(
        r.headers().get_all(SET_COOKIE).iter().all(|c| !c
            .to_str()
            .unwrap()
            .starts_with("wasm_as_os_session=")
            || c.to_str().unwrap().contains("Max-Age=0")),
        "no session is opened"
    );

    // The operator's CLI still manages accounts under this config.
    for args in [
        &["admin", "list-users"][..],
        &[
            "admin",
            "update-user",
            "--username",
            "admin",
            "--add-roles",
            "viewer",
        ],
        &["admin", "disable-user", "--username", "admin"],
        &["admin", "enable-user", "--username", "admin"],
    ] {
        let out = run_cli_in(&config, &data_dir, database_url, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let (status, _) = server.terminate();
    assert!(status.success());
    let db = connect(&data_dir, database_url).await;
    let failures = strings(
        &db,
        "SELECT actor_name FROM audit_logs WHERE event = 'login_failure'",
        "actor_name",
    )
    .await;
    assert_eq!(failures, ["admin", "admin"]);
}

on_both!(
    local_sign_in_is_refused_when_security_yml_turns_it_off_on_sqlite,
    local_sign_in_is_refused_when_security_yml_turns_it_off_on_postgres,
    local_off_flow
);

/// Every directory and file under `dir` whose mode lets anyone but the owner in.
fn loose_modes(dir: &Path, found: &mut Vec<String>, seen: &mut usize) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        let wanted = if meta.is_dir() { 0o700 } else { 0o600 };
        *seen += 1;
        if mode != wanted {
            found.push(format!("{} {mode:o}", path.display()));
        }
        if meta.is_dir() {
            loose_modes(&path, found, seen);
        }
    }
}

const ADD: &str = r#"(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#;

async fn at_rest_flow(dir: &Path, database_url: Option<&str>) {
    // A fresh data dir the server itself creates.
    let data_dir = dir.join("data");
    let server = Server::start(&data_dir, database_url);
    create_admin(&data_dir, database_url);
    let http = Client::new();
    let admin = token(&http, &server, "admin", "SecurePassword123!").await;
    // A stored module and its compiled code, so their files are there too.
    let r = http
        .post(server.url("/api/v1/modules?name=add"))
        .bearer_auth(&admin)
        .header("content-type", "application/wasm")
        .body(wat::parse_str(ADD).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let module: Value = r.json().await.unwrap();
    let args = json!({"function": "add", "args": [{"type": "i32", "value": 2}, {"type": "i32", "value": 3}]});
    let path = format!("/modules/{}/execute", module["id"].as_str().unwrap());
    let (s, run) = call(&http, &server, Method::POST, &path, &admin, Some(args)).await;
    assert_eq!(s, StatusCode::OK, "{run}");

    let browser = Client::builder().redirect(Policy::none()).build().unwrap();
    let cookie = dashboard_sign_in(&browser, &server, "admin", "SecurePassword123!").await;
    let value = cookie.trim_start_matches("wasm_as_os_session=").to_string();
    assert!(value.len() >= 16, "{cookie}");
    let users_page = || {
        browser
            .get(server.url("/users"))
            .header(ACCEPT, "text/html")
            .header(COOKIE, &cookie)
            .send()
    };
    assert_eq!(users_page().await.unwrap().status(), StatusCode::OK);

    let (status, _) = server.terminate();
    assert!(status.success());
    let mut loose = Vec::new();
    let mut seen = 0;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&data_dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "the data dir");
    }
    loose_modes(&data_dir, &mut loose, &mut seen);
    assert!(seen > 8, "only {seen} entries under the data dir");
    assert!(loose.is_empty(), "readable by others: {loose:#?}");
    let mut expected = vec!["jwt_secret", "storage_key", "audit.log", "modules", "cache"];
    if database_url.is_none() {
        expected.extend(["wasm-as-os.db", "wasm-as-os.db-generation"]);
    }
    for name in expected {
        assert!(data_dir.join(name).exists(), "{name} is created");
    }
    let compiled = std::fs::read_dir(data_dir.join("cache").join("compiled"))
        .unwrap()
        .count();
    assert!(compiled > 0, "compiled code is cached");

    // The session is in the database, but not under the cookie's value.
    let db = connect(&data_dir, database_url).await;
    let keys = strings(&db, "SELECT id FROM sessions", "id").await;
    let data = strings(&db, "SELECT data FROM sessions", "data").await;
    assert!(!keys.is_empty());
    assert!(
        keys.iter()
            .all(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit())),
        "{keys:?}"
    );
    assert!(
        !keys.iter().chain(&data).any(|v| v.contains(&value)),
        "the cookie value is stored"
    );
    db.close().await.unwrap();

    // ... and the cookie still opens it after a restart.
    let server = Server::start(&data_dir, database_url);
    let users_page = browser
        .get(server.url("/users"))
        .header(ACCEPT, "text/html")
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(users_page.status(), StatusCode::OK);
    assert!(
        users_page
            .text()
            .await
            .unwrap()
            .contains("admin@company.com")
    );
    let (status, _) = server.terminate();
    assert!(status.success());
}

on_both!(
    data_at_rest_is_private_and_session_ids_are_hashed_on_sqlite,
    data_at_rest_is_private_and_session_ids_are_hashed_on_postgres,
    at_rest_flow
);
