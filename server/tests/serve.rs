//! The real server, started on port 0 with a fresh data dir: on SQLite, and on PostgreSQL when
//! TEST_POSTGRES_URL is set (a fresh database per test).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use support::Server;

use sea_orm::{ConnectionTrait, Database};

async fn exercise(server: &Server) {
    let http = reqwest::Client::new();

    let health = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "ok"})
    );

    let ready = http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "ready", "database": "ok", "migrations": "ok", "tls": {"enabled": false}})
    );

    let home = http.get(server.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    // Security headers over plain HTTP too (no HSTS: that is for HTTPS only); the page's inline
    // scripts carry this response's CSP nonce.
    let h = home.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap().to_string();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    assert!(!h.contains_key("strict-transport-security"));
    assert!(
        home.headers().contains_key("x-request-id"),
        "every response carries its request id"
    );
    let html = home.text().await.unwrap();
    assert!(
        html.contains("<title>Overview · wasm-as-os</title>"),
        "{html}"
    );
    for area in [
        "Users",
        "Roles",
        "Modules",
        "Scheduler",
        "Snapshots",
        "Audit",
        "Security",
        "Compliance",
    ] {
        assert!(
            html.contains(&format!("<span class=\"nav-label\">{area}</span>")),
            "sidebar lacks {area}"
        );
    }
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "{html}");
    assert!(
        html.contains("up to date"),
        "the status panel is rendered on the server: {html}"
    );

    let users = http.get(server.url("/scheduler")).send().await.unwrap();
    assert_eq!(users.status(), 200);
    let html = users.text().await.unwrap();
    assert!(html.contains("Scheduler is not available yet"), "{html}");
    assert!(
        html.contains("aria-current=\"page\""),
        "the current area is marked in the sidebar"
    );

    let missing = http.get(server.url("/no/such/page")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("Page not found"));

    let status = http
        .get(server.url("/api/system/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    let status: serde_json::Value = status.json().await.unwrap();
    assert_eq!(status["database_reachable"], true);
    assert_eq!(status["schema_current"], true);
}

fn assert_clean_stop(server: Server) {
    let (status, log) = server.terminate();
    assert!(status.success(), "exit status {status:?}; log: {log:#?}");
    assert!(log.iter().any(|l| l.contains("shutting down")), "{log:#?}");
    assert!(
        log.iter().any(|l| l.contains("request")
            && l.contains("path=/healthz")
            && l.contains("request_id=")),
        "one log line per request with its id: {log:#?}"
    );
}

async fn lifecycle_events(url: &str) -> Vec<String> {
    let db = Database::connect(url).await.unwrap();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT event FROM audit_logs ORDER BY occurred_at",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "event").unwrap())
        .collect()
}

#[tokio::test]
async fn the_server_serves_pages_health_and_server_functions_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    exercise(&server).await;
    assert_clean_stop(server);
    let db = format!(
        "sqlite://{}?mode=ro",
        dir.path().join("wasm-as-os.db").display()
    );
    assert_eq!(
        lifecycle_events(&db).await,
        ["service_start", "config_change", "service_stop"]
    );
    assert!(
        dir.path().join("jwt_secret").is_file(),
        "a first local run generates its JWT secret"
    );
}

#[tokio::test]
async fn the_server_serves_pages_health_and_server_functions_on_postgres() {
    let Some(db) = support::FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some(db.url.as_str()));
    exercise(&server).await;
    assert_clean_stop(server);
    assert_eq!(
        lifecycle_events(&db.url).await,
        ["service_start", "config_change", "service_stop"]
    );
    assert!(
        !dir.path().join("wasm-as-os.db").exists(),
        "PostgreSQL was used, not the embedded file"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), None, &["--log-format", "json"]);
    let response = reqwest::get(server.url("/readyz?token=secret-value"))
        .await
        .unwrap();
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let (status, log) = server.terminate();
    assert!(status.success());
    let lines: Vec<serde_json::Value> = log
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let request = lines
        .iter()
        .find(|l| l["path"] == "/readyz")
        .expect("a line for the request");
    assert_eq!(request["request_id"], request_id.as_str());
    assert_eq!(request["status"], 200);
    assert!(
        !log.join("\n").contains("secret-value"),
        "query strings are never logged"
    );
}
