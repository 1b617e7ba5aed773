//! privacy.yml and soc2.yml settings over the REST API against the real binary, on SQLite and
//! PostgreSQL: only `system:config` changes them, a change applies without a restart, a stale
//! stamp is refused (409), a bad value is refused by field (422) and the file is untouched, and a
//! file edited on disk is picked up by the running server by itself and audited.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::{Server, audit_events, config_copy, create_admin, create_user, token};

async fn send(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = r.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn stamp(page: &Value, file: &str) -> String {
    page["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == file)
        .unwrap()["stamp"]
        .as_str()
        .unwrap()
        .to_string()
}

fn value(page: &Value, key: &str) -> String {
    page["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["settings"].as_array().unwrap())
        .find(|s| s["key"] == key)
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn settings_over_the_api(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let config = config_copy(dir.path(), &[]);
    let data = dir.path().join("data");
    // The accounts are made with the repository's config; the server runs on its own copy, whose
    // privacy.yml this test edits.
    create_admin(&data, database_url);
    create_user(&data, database_url, "vera", "VeraPassword123!", "viewer");
    let server = Server::start_in(&config, &data, database_url);
    let http = Client::new();
    let admin = token(&http, &server, "admin", "SecurePassword123!").await;
    let vera = token(&http, &server, "vera", "VeraPassword123!").await;
    let url = server.url("/api/v1/compliance/settings");
    let put = server.url("/api/v1/compliance/settings/privacy.yml");
    let original = std::fs::read(config.join("privacy.yml")).unwrap();

    let (status, _) = send(http.get(&url).bearer_auth(&vera)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, page) = send(http.get(&url).bearer_auth(&admin)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["can_edit"], true);
    let first = stamp(&page, "privacy.yml");
    let (status, body) = send(
        http.put(&put)
            .bearer_auth(&vera)
            .json(&json!({"stamp": first, "values": {"privacy.data_export.enabled": false}})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Exports off, at once.
    let export = |token: String| {
        http.post(server.url("/api/v1/me/export"))
            .bearer_auth(token)
            .json(&json!({"format": "json", "passphrase": "a long export passphrase"}))
    };
    let (status, _) = send(export(admin.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, page) = send(
        http.put(&put)
            .bearer_auth(&admin)
            .json(&json!({"stamp": first, "values": {"privacy.data_export.enabled": false}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(value(&page, "privacy.data_export.enabled"), "false");
    let (status, body) = send(export(admin.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "feature_disabled");

    // The old stamp is stale now.
    let (status, body) = send(
        http.put(&put)
            .bearer_auth(&admin)
            .json(&json!({"stamp": first, "values": {"privacy.data_export.enabled": true}})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "settings_changed");

    // A bad value: by field, nothing written.
    let now = stamp(&page, "privacy.yml");
    let (status, body) =
        send(http.put(&put).bearer_auth(&admin).json(
            &json!({"stamp": now, "values": {"privacy.data_retention.audit_logs": "forever"}}),
        ))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["fields"]["privacy.data_retention.audit_logs"].is_array(),
        "{body}"
    );
    let (status, body) = send(
        http.put(server.url("/api/v1/compliance/settings/nope.yml"))
            .bearer_auth(&admin)
            .json(&json!({"stamp": now})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(std::fs::read(config.join("privacy.yml")).unwrap(), original);

    // The file edited on disk: the running server notices by itself and records it.
    let text = String::from_utf8(original.clone()).unwrap();
    std::fs::write(
        config.join("privacy.yml"),
        text.replacen("metrics_data: \"90d\"", "metrics_data: \"30d\"", 1),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = audit_events(&server, &admin, "config_change").await;
        if events.iter().any(|e| {
            e["details"]["source"] == "disk"
                && e["details"]["after"]["privacy.data_retention.metrics_data"] == "30d"
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the change on disk was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (_, page) = send(http.get(&url).bearer_auth(&admin)).await;
    assert_eq!(value(&page, "privacy.data_retention.metrics_data"), "30d");

    // The file's values again.
    let (status, page) = send(
        http.put(&put)
            .bearer_auth(&admin)
            .json(&json!({"stamp": stamp(&page, "privacy.yml"), "use_file_values": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(value(&page, "privacy.data_export.enabled"), "true");
    let (status, _) = send(export(vera.clone())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let events = audit_events(&server, &admin, "config_change").await;
    assert!(events.iter().any(|e| e["details"]["source"] == "dashboard"
        && e["details"]["action"] == "use_file_values"
        && e["actor"]["name"] == "admin"));
}

#[tokio::test]
async fn settings_over_the_api_on_sqlite() {
    settings_over_the_api(None).await;
}

#[tokio::test]
async fn settings_over_the_api_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    settings_over_the_api(Some(&db.url)).await;
    db.drop_db().await;
}
