//! Security review fixes for modules, against the real binary on SQLite and PostgreSQL: run output
//! belongs to whoever ran it, the run history keeps a bounded prefix of the output, a per-user
//! storage quota, no staged upload left behind by a refused or cut-off upload, sharing that does
//! not reveal which accounts exist, and modules in review refused unless static_analysis.yml
//! `quarantine.run_in_review` allows them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::{FreshDb, Server, cli, repo_config, token};

/// Echoes up to 1 KiB of stdin to stdout.
const CAT: &str = r#"(module
    (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "_start")
        (i32.store (i32.const 0) (i32.const 64))
        (i32.store (i32.const 4) (i32.const 1024))
        (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (i32.store (i32.const 4) (i32.load (i32.const 8)))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 12)))))"#;

const ADD: &str = r#"(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#;

/// Bytes the big module prints.
const PRINTED: usize = 200 * 1024;
/// What the history keeps of each stream by default (sandbox.yml `storage.run_output_kept`).
const KEPT: usize = 64 * 1024;

/// A module printing [`PRINTED`] bytes of `fill` to stdout in one write.
fn printer(fill: char) -> Vec<u8> {
    let text = fill.to_string().repeat(PRINTED);
    wat::parse_str(format!(
        r#"(module
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 4)
    (data (i32.const 1024) "{text}")
    (func (export "_start")
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const {PRINTED}))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#
    ))
    .unwrap()
}

/// The repository's config with a 300KB module quota, every module held for review
/// (`medium_risk_threshold: 0`), and `run_in_review` as given.
fn config_dir(root: &Path, run_in_review: bool) -> PathBuf {
    let dir = root.join(format!("config-{run_in_review}"));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(repo_config()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yml") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut sandbox = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("sandbox.yml"))
        .unwrap();
    writeln!(
        sandbox,
        "\n  storage:\n    module_quota_per_user: \"300KB\"\n"
    )
    .unwrap();
    let analysis = std::fs::read_to_string(dir.join("static_analysis.yml")).unwrap();
    let analysis = analysis
        .replace("medium_risk_threshold: 5", "medium_risk_threshold: 0")
        .replace(
            "auto_quarantine: true",
            &format!("auto_quarantine: true\n    run_in_review: {run_in_review}"),
        );
    std::fs::write(dir.join("static_analysis.yml"), analysis).unwrap();
    dir
}

async fn upload(
    http: &Client,
    server: &Server,
    token: &str,
    name: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let r = http
        .post(server.url(&format!("/api/v1/modules?name={name}")))
        .bearer_auth(token)
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn call(
    http: &Client,
    server: &Server,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = match body {
        Some(body) => http.post(server.url(path)).json(&body),
        None => http.get(server.url(path)),
    };
    let r = request.bearer_auth(token).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn staging_is_empty(data_dir: &Path) -> bool {
    let staging = data_dir.join("modules").join("tmp");
    std::fs::read_dir(&staging).unwrap().count() == 0
}

/// Waits (up to ten seconds) for the staging dir to be empty.
async fn staging_empties(data_dir: &Path) -> bool {
    for _ in 0..100 {
        if staging_is_empty(data_dir) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Sends half of a declared body and hangs up.
fn cut_upload(server: &Server, token: &str) {
    let base = server.url("");
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /api/v1/modules?name=cut HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/wasm\r\nContent-Length: 200000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut body = b"\0asm\x01\0\0\0".to_vec();
    body.resize(100_000, 0);
    stream.write_all(&body).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(stream);
}

async fn module_in_review_is_released(http: &Client, server: &Server, admin: &str, id: &str) {
    let (status, body) = call(
        http,
        server,
        admin,
        &format!("/api/v1/modules/{id}/release"),
        Some(json!({"reason": "reviewed"})),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("active")),
        "{body}"
    );
}

async fn flow(root: &Path, database_url: Option<&str>) {
    let data_dir = root.join("data");
    for (user, pass, role) in [
        ("admin", "SecurePassword123!", "admin"),
        ("dev1", "DevPassword123!", "developer"),
        ("dev2", "DevPassword456!", "developer"),
        ("gone", "GonePassword123!", "developer"),
        ("dev3", "DevPassword789!", "developer"),
    ] {
        let email = format!("{user}@company.com");
        cli(
            &data_dir,
            database_url,
            &[
                "admin",
                "create-user",
                "--username",
                user,
                "--password",
                pass,
                "--email",
                &email,
                "--roles",
                role,
            ],
        );
    }
    cli(
        &data_dir,
        database_url,
        &["admin", "disable-user", "--username", "gone"],
    );
    let envs = [("WASM_AS_OS_MAX_UPLOAD", "256KB")];
    let server =
        Server::start_with_config(&config_dir(root, false), &data_dir, database_url, &envs);
    let http = Client::new();
    let admin = token(&http, &server, "admin", "SecurePassword123!").await;
    let dev1 = token(&http, &server, "dev1", "DevPassword123!").await;
    let dev2 = token(&http, &server, "dev2", "DevPassword456!").await;

    // In review, the module does not run (the default) until an administrator releases it.
    let (status, cat) = upload(&http, &server, &dev1, "cat", wat::parse_str(CAT).unwrap()).await;
    assert_eq!(
        (status, cat["status"].as_str()),
        (StatusCode::CREATED, Some("review")),
        "{cat}"
    );
    let cat_id = cat["id"].as_str().unwrap().to_string();
    let execute = format!("/api/v1/modules/{cat_id}/execute");
    let (status, body) = call(&http, &server, &dev1, &execute, Some(json!({"stdin": "x"}))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("module_in_review")),
        "{body}"
    );
    module_in_review_is_released(&http, &server, &admin, &cat_id).await;

    // Sharing with an unknown name and with a disabled account look the same.
    let shares = format!("/api/v1/modules/{cat_id}/shares");
    let (unknown_status, unknown) = call(
        &http,
        &server,
        &dev1,
        &shares,
        Some(json!({"user": "nobody-such"})),
    )
    .await;
    let (disabled_status, disabled) = call(
        &http,
        &server,
        &dev1,
        &shares,
        Some(json!({"user": "gone"})),
    )
    .await;
    assert_eq!(
        unknown_status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{unknown}"
    );
    assert_eq!(disabled_status, unknown_status, "{disabled}");
    assert_eq!(disabled["error"]["code"], unknown["error"]["code"]);
    assert_eq!(
        disabled["error"]["message"]
            .as_str()
            .unwrap()
            .replace("gone", "NAME"),
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .replace("nobody-such", "NAME"),
    );
    let (status, _) = call(
        &http,
        &server,
        &dev1,
        &shares,
        Some(json!({"user": "dev2"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Run output belongs to whoever ran it.
    let secret = "s3cret-stdin-of-dev2";
    let (status, run) = call(
        &http,
        &server,
        &dev2,
        &execute,
        Some(json!({"stdin": secret})),
    )
    .await;
    assert_eq!(
        (status, run["stdout"].as_str()),
        (StatusCode::OK, Some(secret)),
        "{run}"
    );
    let dev2_run = run["run_id"].as_str().unwrap().to_string();
    let (status, run) = call(
        &http,
        &server,
        &dev1,
        &execute,
        Some(json!({"stdin": "owner input"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    let dev1_run = run["run_id"].as_str().unwrap().to_string();
    let runs_path = format!("/api/v1/modules/{cat_id}/runs");
    let runs = |token: String| {
        let (http, server, path) = (&http, &server, runs_path.clone());
        async move {
            let (status, list) = call(http, server, &token, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{list}");
            list.as_array().unwrap().clone()
        }
    };
    let find = |list: &[Value], id: &str| list.iter().find(|r| r["id"] == id).cloned().unwrap();
    let owner_view = runs(dev1.clone()).await;
    let theirs = find(&owner_view, &dev2_run);
    assert_eq!(
        (
            theirs["actor"].as_str(),
            theirs["outcome"].as_str(),
            theirs["output_visible"].as_bool()
        ),
        (Some("dev2"), Some("success"), Some(false)),
        "the owner sees that dev2 ran it, not what it printed: {theirs}"
    );
    assert_eq!(theirs["result"], Value::Null);
    assert!(theirs["duration_ms"].as_f64().is_some());
    assert!(
        !Value::Array(owner_view.clone())
            .to_string()
            .contains(secret)
    );
    assert_eq!(
        find(&owner_view, &dev1_run)["result"]["stdout"],
        "owner input"
    );
    let sharee_view = runs(dev2.clone()).await;
    assert_eq!(find(&sharee_view, &dev2_run)["result"]["stdout"], secret);
    assert_eq!(find(&sharee_view, &dev1_run)["result"], Value::Null);
    let admin_view = runs(admin.clone()).await;
    assert_eq!(find(&admin_view, &dev2_run)["result"]["stdout"], secret);
    assert_eq!(
        find(&admin_view, &dev1_run)["result"]["stdout"],
        "owner input"
    );

    // The caller gets all of a large output; the history keeps a bounded prefix, marked.
    let (status, big) = upload(&http, &server, &dev1, "printer", printer('x')).await;
    assert_eq!(status, StatusCode::CREATED, "{big}");
    let big_id = big["id"].as_str().unwrap().to_string();
    module_in_review_is_released(&http, &server, &admin, &big_id).await;
    let (status, run) = call(
        &http,
        &server,
        &dev1,
        &format!("/api/v1/modules/{big_id}/execute"),
        Some(json!({"args": []})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(run["stdout"].as_str().unwrap().len(), PRINTED);
    assert_eq!(run["stdout_truncated"], false);
    let (_, history) = call(
        &http,
        &server,
        &dev1,
        &format!("/api/v1/modules/{big_id}/runs"),
        None,
    )
    .await;
    let kept = &history[0];
    assert_eq!(
        kept["result"]["stdout"].as_str().unwrap().len(),
        KEPT,
        "{}",
        kept["result"]["stdout_truncated"]
    );
    assert_eq!(
        (
            kept["truncated"].as_bool(),
            kept["result"]["stdout_truncated"].as_bool()
        ),
        (Some(true), Some(true))
    );

    // The quota: a second large module would take dev1 past 300KB; nothing is left staged.
    assert!(staging_is_empty(&data_dir));
    let (status, body) = upload(&http, &server, &dev1, "printer2", printer('y')).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("quota_exceeded")),
        "{body}"
    );
    assert!(
        staging_is_empty(&data_dir),
        "the refused upload's staged file is gone"
    );
    let (status, events) = call(
        &http,
        &server,
        &admin,
        "/api/v1/audit/events?event=module_upload&outcome=denied",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        events["events"][0]["details"]["reason"], "quota_exceeded",
        "{events}"
    );
    assert_eq!(events["events"][0]["actor"]["name"], "dev1", "{events}");
    // Another user's quota is their own.
    let (status, body) = upload(&http, &server, &dev2, "printer2", printer('y')).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Parallel uploads take turns at the quota: of four at once, only one fits in 300KB.
    let dev3 = token(&http, &server, "dev3", "DevPassword789!").await;
    let (a, b, c, d) = tokio::join!(
        upload(&http, &server, &dev3, "p1", printer('a')),
        upload(&http, &server, &dev3, "p2", printer('b')),
        upload(&http, &server, &dev3, "p3", printer('c')),
        upload(&http, &server, &dev3, "p4", printer('d')),
    );
    let statuses = [a.0, b.0, c.0, d.0];
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(staging_is_empty(&data_dir));

    // Every other refused upload leaves the staging dir empty too.
    let (status, body) = upload(
        &http,
        &server,
        &dev1,
        "garbage",
        b"not webassembly".to_vec(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_module"))
    );
    assert!(staging_is_empty(&data_dir));
    let (status, body) = upload(&http, &server, &dev1, "huge", vec![0u8; 300 * 1024]).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    assert!(staging_is_empty(&data_dir));
    let (status, _) = upload(&http, &server, &dev1, "empty", Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(staging_is_empty(&data_dir));
    cut_upload(&server, &dev1);
    assert!(
        staging_empties(&data_dir).await,
        "an upload cut off mid-body leaves no staged file"
    );
    let (status, _) = server.terminate();
    assert!(status.success());

    // With run_in_review: true, a module waiting for review runs.
    let server = Server::start_with_config(&config_dir(root, true), &data_dir, database_url, &envs);
    let dev2 = token(&http, &server, "dev2", "DevPassword456!").await;
    let (status, add) = upload(&http, &server, &dev2, "adder", wat::parse_str(ADD).unwrap()).await;
    assert_eq!(
        (status, add["status"].as_str()),
        (StatusCode::CREATED, Some("review")),
        "{add}"
    );
    let (status, run) = call(
        &http,
        &server,
        &dev2,
        &format!("/api/v1/modules/{}/execute", add["id"].as_str().unwrap()),
        Some(json!({"function": "add", "args": [{"type": "i32", "value": 2}, {"type": "i32", "value": 3}]})),
    )
    .await;
    assert_eq!(
        (status, run["results"][0]["value"].as_i64()),
        (StatusCode::OK, Some(5)),
        "{run}"
    );
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[tokio::test]
async fn module_security_fixes_hold_over_http_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    flow(dir.path(), None).await;
}

#[tokio::test]
async fn module_security_fixes_hold_over_http_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    flow(dir.path(), Some(&db.url)).await;
    db.drop_db().await;
}
