//! The module pipeline over HTTP, on SQLite and PostgreSQL: upload (raw and multipart), analysis,
//! bad input, visibility by ownership and sharing, quarantine and release, and encryption at rest.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::path::Path;

use reqwest::{Client, StatusCode, multipart};
use serde_json::{Value, json};
use support::{FreshDb, Server, cli, token};

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

const ADD: &str = r#"(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#;
const BLOCKED: &str =
    r#"(module (import "env" "abort" (func $abort)) (func (export "run") call $abort))"#;

async fn pipeline(data_dir: &Path, database_url: Option<&str>) {
    for (user, pass, email, role) in [
        ("admin", "SecurePassword123!", "admin@company.com", "admin"),
        ("dev1", "DevPassword123!", "dev1@company.com", "developer"),
        ("dev2", "DevPassword123!", "dev2@company.com", "developer"),
        ("op1", "OpPassword123!", "op1@company.com", "operator"),
        (
            "viewer1",
            "ViewPassword123!",
            "viewer1@company.com",
            "viewer",
        ),
    ] {
        cli(
            data_dir,
            database_url,
            &[
                "admin",
                "create-user",
                "--username",
                user,
                "--password",
                pass,
                "--email",
                email,
                "--roles",
                role,
            ],
        );
    }
    let server = Server::start_with(data_dir, database_url, &[]);
    let http = Client::new();
    let admin = token(&http, &server, "admin", "SecurePassword123!").await;
    let dev1 = token(&http, &server, "dev1", "DevPassword123!").await;
    let dev2 = token(&http, &server, "dev2", "DevPassword123!").await;
    let op1 = token(&http, &server, "op1", "OpPassword123!").await;
    let viewer = token(&http, &server, "viewer1", "ViewPassword123!").await;

    // A clean module: 201 with the analysis.
    let add = wat::parse_str(ADD).unwrap();
    let (status, module) = upload(&http, &server, &dev1, "adder", add.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{module}");
    assert_eq!(
        (
            module["name"].as_str(),
            module["owner"].as_str(),
            module["kind"].as_str(),
            module["status"].as_str()
        ),
        (Some("adder"), Some("dev1"), Some("core"), Some("active"))
    );
    assert_eq!(module["size_bytes"], json!(add.len()));
    assert_eq!(module["analysis"]["risk_score"], json!(0));
    assert_eq!(module["analysis"]["findings"], json!([]));
    let sha = module["sha256"].as_str().unwrap().to_string();
    let id = module["id"].as_str().unwrap().to_string();

    // Encrypted at rest: the stored file does not contain the module's bytes.
    let stored = data_dir
        .join("modules")
        .join(&sha[..2])
        .join(format!("{sha}.enc"));
    let raw = std::fs::read(&stored).unwrap();
    assert!(
        !raw.windows(add.len()).any(|w| w == add.as_slice()),
        "the module is stored encrypted"
    );

    // Bad input.
    let (status, body) = upload(
        &http,
        &server,
        &dev1,
        "garbage",
        b"this is not webassembly".to_vec(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_module")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("offset"),
        "{body}"
    );
    let (status, body) = upload(
        &http,
        &server,
        &dev1,
        "truncated",
        add[..add.len() - 3].to_vec(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_module")),
        "{body}"
    );
    let (status, body) = upload(&http, &server, &dev1, "empty", Vec::new()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("empty_module")),
        "{body}"
    );
    let (status, body) = upload(&http, &server, &dev1, "", add.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation")),
        "{body}"
    );
    let (status, body) = upload(&http, &server, &viewer, "nope", add.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "a viewer cannot upload"
    );

    // Multipart, as a form would send it.
    let form = multipart::Form::new()
        .text("name", "adder-form")
        .text("description", "uploaded as multipart")
        .part(
            "file",
            multipart::Part::bytes(add.clone()).file_name("adder.wasm"),
        );
    let r = http
        .post(server.url("/api/v1/modules"))
        .bearer_auth(&dev2)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let form_module: Value = r.json().await.unwrap();
    assert_eq!(form_module["description"], "uploaded as multipart");

    // Ownership: dev2 cannot see dev1's module until it is shared; then they can.
    let one = server.url(&format!("/api/v1/modules/{id}"));
    assert_eq!(
        http.get(&one)
            .bearer_auth(&dev2)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let list: Value = http
        .get(server.url("/api/v1/modules"))
        .bearer_auth(&dev2)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], json!(1), "dev2 sees only their own: {list}");
    let r = http
        .post(server.url(&format!("/api/v1/modules/{id}/shares")))
        .bearer_auth(&dev2)
        .json(&json!({"user": "dev2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "nobody shares what they cannot see"
    );
    let r = http
        .post(server.url(&format!("/api/v1/modules/{id}/shares")))
        .bearer_auth(&dev1)
        .json(&json!({"user": "dev2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["shares"],
        json!([{"kind": "user", "name": "dev2"}])
    );
    assert_eq!(
        http.get(&one)
            .bearer_auth(&dev2)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let r = http
        .post(server.url(&format!("/api/v1/modules/{id}/shares")))
        .bearer_auth(&dev1)
        .json(&json!({"user": "ghost"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // Sharing with a role reaches its holders.
    assert_eq!(
        http.get(&one)
            .bearer_auth(&op1)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = http
        .post(server.url(&format!("/api/v1/modules/{id}/shares")))
        .bearer_auth(&dev1)
        .json(&json!({"role": "operator"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        http.get(&one)
            .bearer_auth(&op1)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let r = http
        .delete(server.url(&format!("/api/v1/modules/{id}/shares")))
        .bearer_auth(&dev1)
        .json(&json!({"role": "operator"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        http.get(&one)
            .bearer_auth(&op1)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    // Admins see everything; filters work.
    let all: Value = http
        .get(server.url("/api/v1/modules?q=ADDER"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["total"], json!(2));
    let mine: Value = http
        .get(server.url("/api/v1/modules?owner=dev2"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["modules"][0]["name"], "adder-form");
    assert_eq!(
        http.get(server.url("/api/v1/modules?status=weird"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );

    // A blocked import quarantines; only an admin releases, with a reason.
    let (status, bad) = upload(
        &http,
        &server,
        &dev1,
        "aborter",
        wat::parse_str(BLOCKED).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(bad["status"], "quarantined", "{bad}");
    assert_eq!(
        bad["analysis"]["findings"][0]["rule"],
        "check_import_restrictions"
    );
    assert_eq!(bad["analysis"]["findings"][0]["severity"], "high");
    let bad_id = bad["id"].as_str().unwrap();
    let queue: Value = http
        .get(server.url("/api/v1/modules?status=quarantined"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(queue["modules"][0]["id"].as_str(), Some(bad_id));
    let release = server.url(&format!("/api/v1/modules/{bad_id}/release"));
    assert_eq!(
        http.post(&release)
            .bearer_auth(&dev1)
            .json(&json!({"reason": "mine"}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        http.post(&release)
            .bearer_auth(&admin)
            .json(&json!({"reason": " "}))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let r: Value = http
        .post(&release)
        .bearer_auth(&admin)
        .json(&json!({"reason": "abort is only called on a fatal error"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "active");
    assert_eq!(r["review_note"], "abort is only called on a fatal error");

    // Delete: the developer role has no modules:delete; an admin deletes.
    assert_eq!(
        http.delete(&one)
            .bearer_auth(&dev1)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        http.delete(format!("{one}?reason=cleanup"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        http.get(&one)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        stored.exists(),
        "dev2's module holds the same bytes, so the file stays"
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
            "SELECT event FROM audit_logs WHERE event LIKE 'module_%'",
        ))
        .await
        .unwrap();
    let mut events: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "event").unwrap())
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            "module_delete",
            "module_quarantine",
            "module_release",
            "module_share",
            "module_share",
            "module_share",
            "module_upload",
            "module_upload",
            "module_upload",
        ]
    );
}

#[tokio::test]
async fn the_module_pipeline_works_over_http_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    pipeline(dir.path(), None).await;
}

#[tokio::test]
async fn the_module_pipeline_works_over_http_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    pipeline(dir.path(), Some(&db.url)).await;
    db.drop_db().await;
}

#[tokio::test]
async fn an_upload_over_the_cap_is_refused_with_413() {
    let dir = tempfile::tempdir().unwrap();
    cli(
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
    let server = Server::start_serve_args(dir.path(), None, &["--max-upload", "1KB"]);
    let http = Client::new();
    let dev = token(&http, &server, "dev1", "DevPassword123!").await;
    let mut big = wat::parse_str(ADD).unwrap();
    big.extend(std::iter::repeat_n(0u8, 4096));
    let (status, body) = upload(&http, &server, &dev, "big", big).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")),
        "{body}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("modules/tmp"))
            .unwrap()
            .count(),
        0,
        "nothing half-written"
    );
}
