//! The audit pipeline and /metrics through the real server binary: kill -9 during a burst loses
//! no acknowledged event, `admin audit verify` names an edited line, `promtool check metrics` finds
//! nothing, and /metrics needs a token from other addresses. SQLite always, PostgreSQL when
//! TEST_POSTGRES_URL is set.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::{
    collections::BTreeSet,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use sea_orm::{ConnectionTrait, Database};
use support::{FreshDb, Server, promtool, run_cli};

fn db_url(data_dir: &Path, database_url: Option<&str>) -> String {
    database_url.map_or_else(
        || {
            format!(
                "sqlite://{}?mode=ro",
                data_dir.join("wasm-as-os.db").display()
            )
        },
        str::to_string,
    )
}

async fn login_failures(url: &str) -> BTreeSet<String> {
    let db = Database::connect(url).await.unwrap();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT actor_name FROM audit_logs WHERE event = 'login_failure'",
        ))
        .await
        .unwrap();
    db.close().await.unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "actor_name").unwrap())
        .collect()
}

async fn kill9_during_a_burst(data_dir: &Path, database_url: Option<&str>) {
    let server = Server::start(data_dir, database_url);
    let http = reqwest::Client::new();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let login = server.url("/api/v1/auth/login");
    let mut workers = Vec::new();
    for w in 0..6 {
        let (http, login, acknowledged) = (http.clone(), login.clone(), acknowledged.clone());
        workers.push(tokio::spawn(async move {
            for n in 0..10_000 {
                let name = format!("burst-{w}-{n}");
                let body =
                    serde_json::json!({ "username": name, "password": "not-the-password-1A!" });
                match http.post(&login).json(&body).send().await {
                    Ok(r) if r.status() == 401 => acknowledged.lock().unwrap().push(name),
                    _ => break,
                }
            }
        }));
    }
    while acknowledged.lock().unwrap().len() < 60 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    for w in workers {
        let _ = w.await;
    }
    let acknowledged: Vec<String> = acknowledged.lock().unwrap().clone();

    // The next start delivers the dead process's journal; a clean stop flushes it.
    let server = Server::start(data_dir, database_url);
    let (status, log) = server.terminate();
    assert!(status.success(), "{log:#?}");
    let stored = login_failures(&db_url(data_dir, database_url)).await;
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|n| !stored.contains(*n))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged events lost: {lost:?}",
        lost.len(),
        acknowledged.len()
    );

    // Both chains are intact and verifiable from the command line.
    let out = run_cli(data_dir, database_url, &["admin", "audit", "verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("events verified in the database"),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = data_dir.join("audit.log");
    let out = run_cli(
        data_dir,
        database_url,
        &[
            "admin",
            "audit",
            "verify",
            "--file",
            &file.display().to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file_lines = std::fs::read_to_string(&file).unwrap();
    for name in &acknowledged {
        assert!(
            file_lines.contains(&format!("\"username\":\"{name}\"")),
            "{name} is in the file too"
        );
    }
}

#[tokio::test]
async fn kill_9_during_a_burst_loses_no_acknowledged_event_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    kill9_during_a_burst(dir.path(), None).await;
}

#[tokio::test]
async fn kill_9_during_a_burst_loses_no_acknowledged_event_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    kill9_during_a_burst(dir.path(), Some(&db.url)).await;
    db.drop_db().await;
}

/// Someone who can write the database rewrites an event and recomputes the hash chain from it on,
/// as the chain was computed before it was keyed (SHA-256 of the previous hash and the event's
/// canonical JSON, taken from the file's identical line): `admin audit verify` names the event.
async fn rechained_without_the_key(data_dir: &Path, database_url: Option<&str>) {
    use sea_orm::{Statement, Value as SqlValue};
    use sha2::Digest;
    let server = Server::start(data_dir, database_url);
    let http = reqwest::Client::new();
    for n in 0..5 {
        let body = serde_json::json!({ "username": format!("victim-{n}"), "password": "not-the-password-1A!" });
        let r = http
            .post(server.url("/api/v1/auth/login"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let (status, _) = server.terminate();
    assert!(status.success());
    let out = run_cli(data_dir, database_url, &["admin", "audit", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The attacker's material: each event's line without its chain fields, by id.
    let mut lines = std::collections::HashMap::new();
    for text in std::fs::read_to_string(data_dir.join("audit.log"))
        .unwrap()
        .lines()
    {
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        let map = v.as_object_mut().unwrap();
        map.remove("hash");
        map.remove("prev_hash");
        lines.insert(map["id"].as_str().unwrap().to_string(), v);
    }
    let url = database_url.map_or_else(
        || {
            format!(
                "sqlite://{}?mode=rw",
                data_dir.join("wasm-as-os.db").display()
            )
        },
        str::to_string,
    );
    let db = Database::connect(&url).await.unwrap();
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT id, prev_hash FROM audit_logs WHERE seq IS NOT NULL ORDER BY seq",
        ))
        .await
        .unwrap();
    let chain: Vec<(uuid::Uuid, String)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get::<uuid::Uuid>("", "id").unwrap(),
                r.try_get::<String>("", "prev_hash").unwrap(),
            )
        })
        .collect();
    let start = chain
        .iter()
        .position(|(id, _)| lines[&id.to_string()]["actor"]["username"] == "victim-2")
        .unwrap();
    let target = chain[start].0;
    let (set_actor, set_links, set_head) = match backend {
        sea_orm::DatabaseBackend::Postgres => (
            "UPDATE audit_logs SET actor_name = $1 WHERE id = $2",
            "UPDATE audit_logs SET prev_hash = $1, hash = $2 WHERE id = $3",
            "UPDATE audit_chain SET hash = $1 WHERE id = 1",
        ),
        _ => (
            "UPDATE audit_logs SET actor_name = ? WHERE id = ?",
            "UPDATE audit_logs SET prev_hash = ?, hash = ? WHERE id = ?",
            "UPDATE audit_chain SET hash = ? WHERE id = 1",
        ),
    };
    let exec = |sql: &'static str, values: Vec<SqlValue>| {
        let db = db.clone();
        async move {
            db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
                .await
                .unwrap();
        }
    };
    exec(set_actor, vec!["someone-else".into(), target.into()]).await;
    lines.get_mut(&target.to_string()).unwrap()["actor"]["username"] = "someone-else".into();
    let mut prev = chain[start].1.clone();
    for (id, _) in &chain[start..] {
        let mut text = String::new();
        platform::audit::line::canonical(&lines[&id.to_string()], &mut text);
        let hash = hex::encode(sha2::Sha256::digest(format!("{prev}\n{text}")));
        exec(
            set_links,
            vec![prev.clone().into(), hash.clone().into(), (*id).into()],
        )
        .await;
        prev = hash;
    }
    exec(set_head, vec![prev.into()]).await;
    db.close().await.unwrap();

    let out = run_cli(data_dir, database_url, &["admin", "audit", "verify"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "a re-chained history must not verify: {said}"
    );
    assert!(
        said.contains(&target.to_string()),
        "verify names the rewritten event: {said}"
    );
}

#[tokio::test]
async fn an_event_rechained_without_the_key_is_named_by_verify_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    rechained_without_the_key(dir.path(), None).await;
}

#[tokio::test]
async fn an_event_rechained_without_the_key_is_named_by_verify_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    rechained_without_the_key(dir.path(), Some(&db.url)).await;
    db.drop_db().await;
}

#[tokio::test]
async fn verify_names_the_edited_line_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let http = reqwest::Client::new();
    for n in 0..5 {
        let body = serde_json::json!({ "username": format!("someone-{n}"), "password": "x" });
        http.post(server.url("/api/v1/auth/login"))
            .json(&body)
            .send()
            .await
            .unwrap();
    }
    let (status, _) = server.terminate();
    assert!(status.success());
    let file = dir.path().join("audit.log");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() >= 7,
        "service_start, config_change, 5 logins, service_stop: {text}"
    );
    let edited: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 3 {
                l.replace("someone", "nobody")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&file, edited.join("\n") + "\n").unwrap();
    let out = run_cli(
        dir.path(),
        None,
        &[
            "admin",
            "audit",
            "verify",
            "--file",
            &file.display().to_string(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("audit.log:4:") && stderr.contains("3 events verified"),
        "{stderr}"
    );
}

#[tokio::test]
async fn metrics_pass_promtool_and_count_security_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    let http = reqwest::Client::new();
    let body = serde_json::json!({ "username": "nobody", "password": "x" });
    assert_eq!(
        http.post(server.url("/api/v1/auth/login"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    http.get(server.url("/healthz")).send().await.unwrap();
    let r = http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200, "loopback scrapes without a token");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    for name in [
        "authentication_failures_total",
        "authorization_denials_total",
        "suspicious_modules_detected_total",
        "rate_limit_violations_total",
        "sandbox_violations_total",
    ] {
        assert!(
            text.contains(&format!("# HELP {name} security:")),
            "{name}: {text}"
        );
    }
    assert!(
        text.contains("authentication_failures_total{reason=\"unknown_user\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "http_requests_total{method=\"POST\",route=\"/api/v1/auth/login\",status=\"401\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",status=\"200\",le=\"0.005\"}"), "{text}");
    assert!(
        text.lines().filter(|l| l.contains("security")).count() >= 5,
        "the spec's `grep security` finds the security metrics"
    );
    if let Some((ok, report)) = promtool(&text) {
        assert!(
            ok && report.trim().is_empty(),
            "promtool check metrics: {report}\n{text}"
        );
    }
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[tokio::test]
async fn metrics_need_a_token_from_an_address_not_allowed() {
    let dir = tempfile::tempdir().unwrap();
    support::cli(
        dir.path(),
        None,
        &[
            "admin",
            "create-user",
            "--username",
            "ops",
            "--password",
            "Correct-Horse-9!",
            "--email",
            "ops@example.com",
            "--roles",
            "viewer",
        ],
    );
    let server = Server::start_with_env(
        dir.path(),
        None,
        &[],
        &[("WASM_AS_OS_METRICS_ALLOW", "none")],
    );
    let http = reqwest::Client::new();
    let r = http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        http.get(server.url("/metrics"))
            .bearer_auth("not-a-token")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let token = &support::token(&http, &server, "ops", "Correct-Horse-9!").await;
    let r = http
        .get(server.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a viewer has metrics:read");

    // A role without metrics:read is refused by the platform, and the refusal is audited like
    // every other denial.
    support::create_admin(dir.path(), None);
    let admin = &support::token(&http, &server, "admin", "SecurePassword123!").await;
    let r = http
        .post(server.url("/api/v1/roles"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"name": "reader", "permissions": ["modules:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    support::create_user(dir.path(), None, "reader", "Reader-Password-1", "reader");
    let reader = &support::token(&http, &server, "reader", "Reader-Password-1").await;
    let r = http
        .get(server.url("/metrics"))
        .bearer_auth(reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    let events: serde_json::Value = http
        .get(server.url("/api/v1/audit/events?event=permission_denied&actor=reader"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["details"]["permission"], "metrics:read");
    assert_eq!(events[0]["details"]["target"], "metrics");
    let (status, _) = server.terminate();
    assert!(status.success());
}

async fn query_and_export(data_dir: &std::path::Path, database_url: Option<&str>) {
    use reqwest::StatusCode;
    support::cli(
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
    support::cli(
        data_dir,
        database_url,
        &[
            "admin",
            "create-user",
            "--username",
            "watcher",
            "--password",
            "Correct-Horse-9!",
            "--email",
            "w@example.com",
            "--roles",
            "viewer",
        ],
    );
    let server = Server::start(data_dir, database_url);
    let http = reqwest::Client::new();
    let admin = support::token(&http, &server, "admin", "SecurePassword123!").await;
    let viewer = support::token(&http, &server, "watcher", "Correct-Horse-9!").await;
    // 520 refusals: more than one export page (500).
    const DENIED: usize = 520;
    for n in 0..DENIED {
        let body = serde_json::json!({ "username": format!("u{n}"), "password": "Correct-Horse-9!", "email": format!("u{n}@example.com"), "roles": ["viewer"] });
        let r = http
            .post(server.url("/api/v1/users"))
            .bearer_auth(&viewer)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }

    // Keyset pages: every refusal once, newest first, then no cursor.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let url = server.url(&format!(
            "/api/v1/audit/events?event=permission_denied&actor=watcher&limit=200&after={after}"
        ));
        let r = http.get(url).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let page: serde_json::Value = r.json().await.unwrap();
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 200);
        for e in events {
            assert_eq!(e["event"], "permission_denied");
            assert_eq!(e["actor"]["name"], "watcher");
            // Compared as times: RFC 3339 text drops trailing zeros of the fraction, so text order is not time order.
            let at =
                chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap()).unwrap();
            seen.push((at, e["id"].as_str().unwrap().to_string()));
        }
        match page["next"].as_str() {
            Some(next) => after = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), DENIED);
    let unique: BTreeSet<&String> = seen.iter().map(|(_, id)| id).collect();
    assert_eq!(unique.len(), DENIED, "no event twice across pages");
    assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0), "newest first");

    // Free text and the outcome filter.
    let r: serde_json::Value = http
        .get(server.url("/api/v1/audit/events?q=WATCHER&outcome=denied&limit=5"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["events"].as_array().unwrap().len(), 5);
    let r: serde_json::Value = http
        .get(server.url("/api/v1/audit/events?q=no-such-text-anywhere"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["events"].as_array().unwrap().len(), 0);
    assert!(r["next"].is_null());

    // Bad filters are 400 with the field named; a viewer may not read the log.
    for (query, field) in [
        ("event=login_party", "event:"),
        ("from=yesterday", "from:"),
        ("outcome=maybe", "outcome:"),
        ("after=garbage", "after:"),
    ] {
        let r = http
            .get(server.url(&format!("/api/v1/audit/events?{query}")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_query");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{body}"
        );
    }
    let r = http
        .get(server.url("/api/v1/audit/events"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // That refusal is itself recorded: one more permission_denied by the viewer.
    const EXPORTED: usize = DENIED + 1;
    assert_eq!(
        http.get(server.url("/api/v1/audit/export"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // Exports of the filter: all rows, across pages, as CSV and as JSON.
    let r = http
        .get(server.url("/api/v1/audit/export?format=csv&event=permission_denied&actor=watcher"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"audit-")
    );
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "timestamp,event,outcome,actor_id,actor,ip,user_agent,resource_type,resource_id,details,id"
    );
    assert_eq!(lines.len(), EXPORTED + 1);
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains(",permission_denied,denied,")),
        "{}",
        lines[1]
    );
    let json: Vec<serde_json::Value> = http
        .get(server.url("/api/v1/audit/export?format=json&event=permission_denied&actor=watcher"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json.len(), EXPORTED);
    let exported: BTreeSet<&str> = json.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        exported.len(),
        EXPORTED,
        "no event twice across the export's pages"
    );
    assert!(
        unique.iter().all(|id| exported.contains(id.as_str())),
        "every paged event is exported"
    );
    assert_eq!(
        json[0]["details"]["permission"], "system:audit",
        "newest first: the refused audit read"
    );
    // Each export is itself audited as `data_export`, with its format and filter.
    let page: serde_json::Value = http
        .get(server.url("/api/v1/audit/events?event=data_export"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let exports = page["events"].as_array().unwrap();
    let formats: Vec<&str> = exports
        .iter()
        .map(|e| e["details"]["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats, ["json", "csv"], "{page}");
    assert!(
        exports
            .iter()
            .all(|e| e["actor"]["name"] == "admin" && e["details"]["filter"]["actor"] == "watcher"),
        "{page}"
    );
    let r = http
        .get(server.url("/api/v1/audit/export?format=xml"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[tokio::test]
async fn audit_query_pages_filters_and_exports_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    query_and_export(dir.path(), None).await;
}

#[tokio::test]
async fn audit_query_pages_filters_and_exports_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    query_and_export(dir.path(), Some(&db.url)).await;
    db.drop_db().await;
}
