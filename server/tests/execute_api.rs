//! Running modules over HTTP: results, limits as 422 `sandbox.<kind>` while the server keeps
//! serving, quarantine and permission refusals, run history and audit events.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::path::Path;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::{FreshDb, Server, cli, token};

async fn upload(http: &Client, server: &Server, token: &str, name: &str, wat: &str) -> Value {
    let r = http
        .post(server.url(&format!("/api/v1/modules?name={name}")))
        .bearer_auth(token)
        .header("content-type", "application/wasm")
        .body(wat::parse_str(wat).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

async fn execute(
    http: &Client,
    server: &Server,
    token: &str,
    id: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = http
        .post(server.url(&format!("/api/v1/modules/{id}/execute")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn healthy(http: &Client, server: &Server) {
    assert_eq!(
        http.get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "the server keeps serving"
    );
}

const ADD: &str = r#"(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#;
const SPIN: &str = r#"(module (func (export "spin") (loop $l (br $l))))"#;
const GROW: &str = r#"(module (memory 1) (func (export "grow") (loop $l (drop (memory.grow (i32.const 16))) (br $l))))"#;
const DEEP: &str = r#"(module (func $f (export "deep") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0)) (else (i32.add (i32.const 1) (call $f (i32.sub (local.get 0) (i32.const 1))))))))"#;
const HELLO: &str = r#"(module
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 16) "hello\n")
    (func (export "_start")
        (i32.store (i32.const 0) (i32.const 16))
        (i32.store (i32.const 4) (i32.const 6))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

async fn flow(data_dir: &Path, database_url: Option<&str>) {
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
    cli(
        data_dir,
        database_url,
        &[
            "admin",
            "create-user",
            "--username",
            "viewer1",
            "--password",
            "ViewPassword123!",
            "--email",
            "v1@company.com",
            "--roles",
            "viewer",
        ],
    );
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
            "dev2",
            "--password",
            "DevPassword456!",
            "--email",
            "dev2@company.com",
            "--roles",
            "developer",
        ],
    );
    let server = Server::start(data_dir, database_url);
    let http = Client::new();
    let dev = token(&http, &server, "dev1", "DevPassword123!").await;
    let viewer = token(&http, &server, "viewer1", "ViewPassword123!").await;
    let admin = token(&http, &server, "admin", "SecurePassword123!").await;
    let dev2 = token(&http, &server, "dev2", "DevPassword456!").await;

    let add = upload(&http, &server, &dev, "add", ADD).await;
    let add_id = add["id"].as_str().unwrap();
    let (status, run) = execute(&http, &server, &dev, add_id, json!({"function": "add", "args": [{"type": "i32", "value": 2}, {"type": "i32", "value": 3}]})).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(run["results"], json!([{"type": "i32", "value": 5}]));
    for key in ["duration_ms", "iterations", "peak_memory_bytes", "run_id"] {
        assert!(run.get(key).is_some(), "{key} in {run}");
    }
    let (status, body) = execute(&http, &server, &dev, add_id, json!({"function": "nope"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("sandbox.invalid_invocation")
        )
    );

    // WASI command output.
    // HELLO's WASI import puts it in review: refused until an admin releases it (the default of
    // static_analysis.yml `quarantine.run_in_review`).
    let hello = upload(&http, &server, &dev, "hello", HELLO).await;
    assert_eq!(hello["status"], "review", "{hello}");
    let hello_id = hello["id"].as_str().unwrap();
    let (status, body) = execute(&http, &server, &dev, hello_id, json!({"args": []})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("module_in_review")),
        "{body}"
    );
    let released = http
        .post(server.url(&format!("/api/v1/modules/{hello_id}/release")))
        .bearer_auth(&admin)
        .json(&json!({"reason": "prints a greeting"}))
        .send()
        .await
        .unwrap();
    assert_eq!(released.status(), StatusCode::OK);
    let (status, run) = execute(
        &http,
        &server,
        &dev,
        hello["id"].as_str().unwrap(),
        json!({"args": []}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert_eq!(
        (run["exit_code"].clone(), run["stdout"].clone()),
        (json!(0), json!("hello\n"))
    );

    // Limits end the run with their own code; the server keeps serving.
    for (name, wat, function, code) in [
        ("spin", SPIN, "spin", "sandbox.iteration_limit"),
        ("grow", GROW, "grow", "sandbox.memory_limit"),
    ] {
        let module = upload(&http, &server, &dev, name, wat).await;
        if module["status"] != "active" {
            let r = http
                .post(server.url(&format!(
                    "/api/v1/modules/{}/release",
                    module["id"].as_str().unwrap()
                )))
                .bearer_auth(&admin)
                .json(&json!({"reason": "testing the sandbox limits"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
        let (status, body) = execute(
            &http,
            &server,
            &dev,
            module["id"].as_str().unwrap(),
            json!({"function": function}),
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{name}: {body}"
        );
        healthy(&http, &server).await;
    }
    let deep = upload(&http, &server, &dev, "deep", DEEP).await;
    let deep_id = deep["id"].as_str().unwrap();
    let (status, run) = execute(
        &http,
        &server,
        &dev,
        deep_id,
        json!({"function": "deep", "args": [{"type": "i32", "value": 500}]}),
    )
    .await;
    assert_eq!(
        (status, run["results"][0]["value"].clone()),
        (StatusCode::OK, json!(500)),
        "within max_stack_depth (1000)"
    );
    let (status, body) = execute(
        &http,
        &server,
        &dev,
        deep_id,
        json!({"function": "deep", "args": [{"type": "i32", "value": 5000}]}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("sandbox.stack_overflow")
        )
    );
    healthy(&http, &server).await;

    // A burst of concurrent runs: each is answered, and each is in the run history (written
    // behind the runs, in batches) as soon as the history is read.
    // As many as one user may have in progress at once (sandbox.yml's default
    // max_concurrent_runs_per_user).
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (http, url, dev) = (
            http.clone(),
            server.url(&format!("/api/v1/modules/{add_id}/execute")),
            dev.clone(),
        );
        burst.spawn(async move {
            let body = json!({"function": "add", "args": [{"type": "i32", "value": i}, {"type": "i32", "value": 1}]});
            let r: Value = http.post(url).bearer_auth(&dev).json(&body).send().await.unwrap().json().await.unwrap();
            assert_eq!(r["results"][0]["value"], json!(i + 1), "{r}");
            r["run_id"].as_str().unwrap().to_string()
        });
    }
    let burst_ids: std::collections::BTreeSet<String> =
        burst.join_all().await.into_iter().collect();
    assert_eq!(burst_ids.len(), 16);
    let runs: Value = http
        .get(server.url(&format!("/api/v1/modules/{add_id}/runs?limit=100")))
        .bearer_auth(&dev)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: std::collections::BTreeSet<String> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        burst_ids.is_subset(&listed),
        "every run of the burst is in the history"
    );
    assert_eq!(listed.len(), 18);
    let latest = runs[0]["started_at"].as_str().unwrap().to_string();
    let module: Value = http
        .get(server.url(&format!("/api/v1/modules/{add_id}")))
        .bearer_auth(&dev)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last_run_at =
        chrono::DateTime::parse_from_rfc3339(module["last_run_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        last_run_at,
        chrono::DateTime::parse_from_rfc3339(&latest).unwrap(),
        "last_run_at is the newest run's start"
    );

    // Who may run what.
    let r = http
        .post(server.url(&format!("/api/v1/modules/{add_id}/shares")))
        .bearer_auth(&dev)
        .json(&json!({"user": "viewer1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, _) = execute(
        &http,
        &server,
        &viewer,
        add_id,
        json!({"function": "add", "args": []}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a viewer lacks modules:execute"
    );
    let r = http
        .post(server.url(&format!("/api/v1/modules/{add_id}/quarantine")))
        .bearer_auth(&admin)
        .json(&json!({"reason": "suspected"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, body) = execute(&http, &server, &dev, add_id, json!({"function": "add", "args": [{"type": "i32", "value": 1}, {"type": "i32", "value": 1}]})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("module_quarantined"))
    );

    // History.
    let runs: Value = http
        .get(server.url(&format!("/api/v1/modules/{add_id}/runs?limit=100")))
        .bearer_auth(&dev)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let outcomes: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes[16..], ["sandbox.invalid_invocation", "success"]);

    // Accounts and modules are reused from memory between requests, yet every change is seen at
    // the next request, including one made by another process (the CLI).
    let shared = upload(&http, &server, &dev, "add-shared", ADD).await;
    let shared_id = shared["id"].as_str().unwrap();
    let two = json!({"function": "add", "args": [{"type": "i32", "value": 1}, {"type": "i32", "value": 1}]});
    let (status, _) = execute(&http, &server, &dev2, shared_id, two.clone()).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another developer's module is invisible"
    );
    let shares = server.url(&format!("/api/v1/modules/{shared_id}/shares"));
    assert_eq!(
        http.post(&shares)
            .bearer_auth(&dev)
            .json(&json!({"user": "dev2"}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    for _ in 0..2 {
        let (status, body) = execute(&http, &server, &dev2, shared_id, two.clone()).await;
        assert_eq!(
            (status, &body["results"][0]["value"]),
            (StatusCode::OK, &json!(2)),
            "{body}"
        );
    }
    cli(
        data_dir,
        database_url,
        &[
            "admin",
            "update-user",
            "--username",
            "dev2",
            "--remove-roles",
            "developer",
            "--add-roles",
            "viewer",
        ],
    );
    let (status, body) = execute(&http, &server, &dev2, shared_id, two.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "a role taken away by the CLI counts at once"
    );
    cli(
        data_dir,
        database_url,
        &[
            "admin",
            "update-user",
            "--username",
            "dev2",
            "--remove-roles",
            "viewer",
            "--add-roles",
            "developer",
        ],
    );
    let (status, _) = execute(&http, &server, &dev2, shared_id, two.clone()).await;
    assert_eq!(status, StatusCode::OK, "and a role given back too");
    assert_eq!(
        http.delete(&shares)
            .bearer_auth(&dev)
            .json(&json!({"user": "dev2"}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (status, _) = execute(&http, &server, &dev2, shared_id, two.clone()).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a withdrawn share counts at once"
    );
    cli(
        data_dir,
        database_url,
        &["admin", "disable-user", "--username", "dev1"],
    );
    let (status, _) = execute(&http, &server, &dev, shared_id, two).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a user disabled by the CLI is refused at once"
    );

    let (status, _) = server.terminate();
    assert!(status.success());
    let count = |sql: &'static str| rows(data_dir, database_url, sql.to_string());
    assert_eq!(
        count("SELECT id FROM audit_logs WHERE event = 'module_execute'").await,
        28,
        "every run and the two refused ones (quarantined, in review)"
    );
    assert_eq!(
        count("SELECT id FROM module_runs").await,
        26,
        "every run that reached the sandbox, written before the server stopped"
    );
    assert_eq!(
        count("SELECT id FROM audit_logs WHERE event = 'sandbox_violation'").await,
        3
    );
}

/// How many rows `sql` returns from the server's database (after it stopped).
async fn rows(data_dir: &Path, database_url: Option<&str>, sql: String) -> usize {
    use sea_orm::ConnectionTrait;
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
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await
        .unwrap();
    db.close().await.unwrap();
    rows.len()
}

#[tokio::test]
async fn modules_run_in_the_sandbox_over_http_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    flow(dir.path(), None).await;
}

#[tokio::test]
async fn modules_run_in_the_sandbox_over_http_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    flow(dir.path(), Some(&db.url)).await;
    db.drop_db().await;
}

/// Loops until the deadline (`spin`, with `no_infinite_loops` off in the test config) or adds.
const SPIN_OR_ADD: &str = r#"(module
    (func (export "spin") (loop $l (br $l)))
    (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#;

/// The repository's config with `max_concurrent_runs_per_user: 1`, a 4 s deadline and no
/// iteration limit (so `spin` runs until the deadline).
fn one_run_per_user_config() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(support::repo_config()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yml") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        dir.path().join("sandbox.yml"),
        r#"sandbox:
  resource_limits:
    max_execution_time: "4s"
    max_concurrent_runs_per_user: 1
  policies:
    - name: "no_infinite_loops"
      enabled: false
      max_iterations: 1000000
"#,
    )
    .unwrap();
    dir
}

async fn upload_released(http: &Client, server: &Server, owner: &str, admin: &str) -> String {
    let module = upload(http, server, owner, "spin-or-add", SPIN_OR_ADD).await;
    let id = module["id"].as_str().unwrap().to_string();
    if module["status"] == "quarantined" {
        let r = http
            .post(server.url(&format!("/api/v1/modules/{id}/release")))
            .bearer_auth(admin)
            .json(&json!({"reason": "testing the run limits"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    id
}

async fn busy_flow(data_dir: &Path, database_url: Option<&str>) {
    for (name, password, roles) in [
        ("dev1", "DevPassword123!", "developer"),
        ("dev2", "DevPassword456!", "developer"),
        ("admin", "SecurePassword123!", "admin"),
    ] {
        let email = format!("{name}@company.com");
        cli(
            data_dir,
            database_url,
            &[
                "admin",
                "create-user",
                "--username",
                name,
                "--password",
                password,
                "--email",
                &email,
                "--roles",
                roles,
            ],
        );
    }
    let config = one_run_per_user_config();
    let server = Server::start_in(config.path(), data_dir, database_url);
    let http = Client::new();
    let dev1 = token(&http, &server, "dev1", "DevPassword123!").await;
    let dev2 = token(&http, &server, "dev2", "DevPassword456!").await;
    let admin = token(&http, &server, "admin", "SecurePassword123!").await;
    let mine = upload_released(&http, &server, &dev1, &admin).await;
    let theirs = upload_released(&http, &server, &dev2, &admin).await;
    let add = json!({"function": "add", "args": [{"type": "i32", "value": 2}, {"type": "i32", "value": 3}]});

    let long = {
        let (http, url, dev1) = (
            http.clone(),
            server.url(&format!("/api/v1/modules/{mine}/execute")),
            dev1.clone(),
        );
        tokio::spawn(async move {
            let r = http
                .post(url)
                .bearer_auth(&dev1)
                .json(&json!({"function": "spin"}))
                .send();
            let r = r.await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(!long.is_finished(), "the long run is still in progress");
    let (status, body) = execute(&http, &server, &dev1, &mine, add.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("sandbox.busy")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 run(s) in progress"),
        "{body}"
    );
    let (status, run) = execute(&http, &server, &dev2, &theirs, add.clone()).await;
    assert_eq!(
        (status, run["results"][0]["value"].clone()),
        (StatusCode::OK, json!(5)),
        "another user runs at the same time: {run}"
    );
    let (status, body) = long.await.unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("sandbox.timeout")),
        "{body}"
    );
    let (status, run) = execute(&http, &server, &dev1, &mine, add).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "free again once the run finished: {run}"
    );

    let (status, _) = server.terminate();
    assert!(status.success());
    let rows = |sql: String| rows(data_dir, database_url, sql);
    assert_eq!(
        rows("SELECT id FROM module_runs".to_string()).await,
        3,
        "the refused run is not in the history (dev1's timeout and last run, dev2's run are)"
    );
    assert_eq!(
        rows(format!(
            "SELECT id FROM audit_logs WHERE event = 'module_execute' AND outcome = 'denied' \
             AND target_id = '{mine}'"
        ))
        .await,
        1,
        "the refusal is audited"
    );
}

#[tokio::test]
async fn a_user_past_the_concurrent_run_limit_gets_429_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    busy_flow(dir.path(), None).await;
}

#[tokio::test]
async fn a_user_past_the_concurrent_run_limit_gets_429_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    busy_flow(dir.path(), Some(&db.url)).await;
    db.drop_db().await;
}
