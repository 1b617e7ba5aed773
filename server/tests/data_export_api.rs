//! Personal-data exports over the REST API against the real binary, on SQLite and PostgreSQL:
//! asked for (202 and a Location), followed to `ready`, downloaded once as an age file the real
//! `age` command opens, then 410; bad recipients and passphrases are field errors; someone else's
//! export is 404 and exporting another account without the permission is 403 and audited; the
//! passphrase never reaches the server log.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::{Server, create_admin, create_user, token};

async fn send(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = r.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A fresh key pair from the real `age-keygen`: the key file and its public key.
fn age_key(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let key = dir.join("key.txt");
    let status = std::process::Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("age-keygen (Debian package age) runs");
    assert!(status.success());
    let text = std::fs::read_to_string(&key).unwrap();
    let public = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    (key, public)
}

async fn exports_over_the_api(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    create_admin(dir.path(), database_url);
    create_user(
        dir.path(),
        database_url,
        "erin",
        "ErinPassword123!",
        "developer",
    );
    create_user(
        dir.path(),
        database_url,
        "finn",
        "FinnPassword123!",
        "viewer",
    );
    let server = Server::start(dir.path(), database_url);
    let http = Client::new();
    let erin = token(&http, &server, "erin", "ErinPassword123!").await;
    let finn = token(&http, &server, "finn", "FinnPassword123!").await;
    let admin = token(&http, &server, "admin", "SecurePassword123!").await;
    let ask = server.url("/api/v1/me/export");

    // Bad input: each names its field; nothing is queued.
    for (body, field) in [
        (json!({"format": "json"}), "recipient"),
        (
            json!({"format": "json", "recipient": "age1nope"}),
            "recipient",
        ),
        (
            json!({"format": "json", "passphrase": "too short"}),
            "passphrase",
        ),
        (
            json!({"format": "pdf", "passphrase": "long enough passphrase"}),
            "format",
        ),
    ] {
        let (status, err) = send(http.post(&ask).bearer_auth(&erin).json(&body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {err}");
        assert!(err["error"]["fields"][field].is_array(), "{body} → {err}");
    }
    let (status, list) = send(
        http.get(server.url("/api/v1/me/exports"))
            .bearer_auth(&erin),
    )
    .await;
    assert_eq!((status, list), (StatusCode::OK, json!([])));

    // Asked for and followed.
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = age_key(keys.path());
    let r = http
        .post(&ask)
        .bearer_auth(&erin)
        .json(&json!({"format": "json", "recipient": public}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let queued: Value = r.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/me/exports/{}", queued["id"].as_str().unwrap())
    );
    let mut ready = Value::Null;
    for _ in 0..100 {
        let (_, s) = send(http.get(server.url(&location)).bearer_auth(&erin)).await;
        if s["status"] == "ready" {
            ready = s;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(ready["progress"], 100, "{ready}");
    assert_eq!(ready["encryption"], "recipient");

    // Another person does not see it.
    let (status, _) = send(http.get(server.url(&location)).bearer_auth(&finn)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let download = server.url(&format!("{location}/download"));
    let (status, _) = send(http.get(&download).bearer_auth(&finn)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Downloaded once, opened by age with the key.
    let r = http.get(&download).bearer_auth(&erin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"wasm-as-os-export-erin-"),
        "{disposition}"
    );
    assert!(disposition.ends_with(".json.age\""), "{disposition}");
    let sealed = r.bytes().await.unwrap();
    let file = keys.path().join("export.json.age");
    std::fs::write(&file, &sealed).unwrap();
    let out = std::process::Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&key)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["account"]["username"], "erin");
    assert_eq!(doc["account"]["email"], "erin@company.com");
    let (status, err) = send(http.get(&download).bearer_auth(&erin)).await;
    assert_eq!(status, StatusCode::GONE, "{err}");
    assert_eq!(err["error"]["code"], "export_downloaded");

    // One at a time per account; the passphrase is never logged.
    let passphrase = "a passphrase nobody logs 8412";
    let (status, first) = send(
        http.post(&ask)
            .bearer_auth(&erin)
            .json(&json!({"format": "csv", "passphrase": passphrase, "include_binaries": true})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, err) = send(
        http.post(&ask)
            .bearer_auth(&erin)
            .json(&json!({"format": "json", "passphrase": passphrase})),
    )
    .await;
    if status != StatusCode::TOO_MANY_REQUESTS {
        // The first finished already (it is small); then this one was taken.
        assert_eq!(status, StatusCode::ACCEPTED, "{err}");
    } else {
        assert_eq!(err["error"]["code"], "export_in_progress");
    }
    for _ in 0..100 {
        let (_, list) = send(
            http.get(server.url("/api/v1/me/exports"))
                .bearer_auth(&erin),
        )
        .await;
        if list
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "ready" || e["status"] == "downloaded")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Exporting someone else takes users:read and system:audit.
    let erin_id = doc["account"]["id"].as_str().unwrap().to_string();
    let other = server.url(&format!("/api/v1/users/{erin_id}/export"));
    let (status, err) = send(
        http.post(&other)
            .bearer_auth(&finn)
            .json(&json!({"format": "json", "passphrase": passphrase})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    let denied = support::audit_events(&server, &admin, "permission_denied").await;
    assert!(
        denied.iter().any(|e| e["actor"]["name"] == "finn"
            && e["details"]["target"]
                .as_str()
                .unwrap_or("")
                .contains(&erin_id)),
        "{denied:?}"
    );
    let (status, by_admin) = send(
        http.post(&other)
            .bearer_auth(&admin)
            .json(&json!({"format": "json", "passphrase": passphrase})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{by_admin}");
    assert_eq!(by_admin["username"], "erin");
    let exports = support::audit_events(&server, &admin, "data_export").await;
    assert!(
        exports
            .iter()
            .any(|e| e["actor"]["name"] == "admin" && e["target"]["id"] == erin_id.as_str()),
        "{exports:?}"
    );
    let (_, log) = server.terminate();
    assert!(
        !log.iter().any(|l| l.contains(passphrase)),
        "the passphrase reached the log"
    );
}

#[tokio::test]
async fn exports_over_the_api_on_sqlite() {
    exports_over_the_api(None).await;
}

#[tokio::test]
async fn exports_over_the_api_on_postgres() {
    let Some(db) = support::FreshDb::create().await else {
        return;
    };
    exports_over_the_api(Some(&db.url)).await;
    db.drop_db().await;
}
