//! When the analysis rules change, start-up does no re-analysis: `serve` analyses stored modules
//! again in the background (pending count in `admin status`), and no module runs under outdated
//! rules in the meantime.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::{path::Path, process::Command, time::Duration};

use reqwest::{Client, StatusCode};
use serde_json::Value;
use support::{BIN, Server, config_copy, token};

const BLOCKED: &str =
    r#"(module (import "env" "abort" (func $abort)) (func (export "run") call $abort))"#;

fn status_line(config: &Path, data: &Path) -> String {
    let out = Command::new(BIN)
        .args(["--config-dir".as_ref(), config.as_os_str()])
        .args(["--data-dir".as_ref(), data.as_os_str()])
        .args(["admin", "status"])
        .env("RUST_LOG", "off")
        .env_remove("DATABASE_URL")
        .env_remove("WASM_AS_OS_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("re-analysis"))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn changed_rules_are_applied_behind_the_listener_and_before_any_run() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    // Rules without import restrictions: the module importing env.abort is accepted as active.
    let lenient = config_copy(
        &root.path().join("lenient"),
        &[(
            "static_analysis.yml",
            "    - name: \"check_import_restrictions\"\n      severity: \"medium\"\n      enabled: true",
            "    - name: \"check_import_restrictions\"\n      severity: \"medium\"\n      enabled: false",
        )],
    );
    let strict = support::repo_config();
    for user in ["dev", "eve"] {
        let email = format!("{user}@example.com");
        let out = Command::new(BIN)
            .args(["--config-dir".as_ref(), lenient.as_os_str()])
            .args(["--data-dir".as_ref(), data.as_os_str()])
            .args([
                "admin",
                "create-user",
                "--username",
                user,
                "--email",
                &email,
            ])
            .args(["--password", "Developer-Pass-42!", "--roles", "developer"])
            .env_remove("DATABASE_URL")
            .env_remove("WASM_AS_OS_DATABASE_URL")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let server = Server::start_in(&lenient, &data, None);
    let http = Client::new();
    let dev = token(&http, &server, "dev", "Developer-Pass-42!").await;
    let uploaded: Value = http
        .post(server.url("/api/v1/modules?name=aborter"))
        .bearer_auth(&dev)
        .header("content-type", "application/wasm")
        .body(wat::parse_str(BLOCKED).unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(uploaded["status"], "active", "{uploaded}");
    let id = uploaded["id"].as_str().unwrap().to_string();
    server.terminate();

    // Opening the platform under the strict rules (the CLI does) analyses nothing.
    assert!(
        status_line(&strict, &data).contains("1 module(s) waiting"),
        "{}",
        status_line(&strict, &data)
    );

    // The server under the strict rules. A user who may not see the stale module gets 404 (it is
    // re-analysed for a run only after the caller's access is decided).
    let server = Server::start(&data, None);
    let eve = token(&http, &server, "eve", "Developer-Pass-42!").await;
    let run = http
        .post(server.url(&format!("/api/v1/modules/{id}/execute")))
        .bearer_auth(&eve)
        .json(&serde_json::json!({"function": "run", "args": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(run.status(), StatusCode::NOT_FOUND);
    // The owner's run is refused as quarantined, never run.
    let dev = token(&http, &server, "dev", "Developer-Pass-42!").await;
    let run = http
        .post(server.url(&format!("/api/v1/modules/{id}/execute")))
        .bearer_auth(&dev)
        .json(&serde_json::json!({"function": "run", "args": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(run.status(), StatusCode::CONFLICT);
    let body: Value = run.json().await.unwrap();
    assert_eq!(body["error"]["code"], "module_quarantined", "{body}");

    // The background pass leaves nothing waiting.
    let mut line = String::new();
    for _ in 0..100 {
        line = status_line(&strict, &data);
        if line.contains(" 0 module(s) waiting") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(line.contains(" 0 module(s) waiting"), "{line}");
    server.terminate();
}
