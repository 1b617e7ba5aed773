//! Rate limits, IP lists and intrusion detection against the real binary, through both doors:
//! the REST sign-in and the dashboard's sign-in form. The server trusts 127.0.0.1 as a proxy
//! (rate_limit.yml `trusted_proxies`) so each test client can speak for an address of its own in
//! `X-Forwarded-For`; loopback is taken off the whitelist; the sign-in budget is 5 a minute with
//! a burst of 6, so six quick wrong passwords all reach the password check.
//! SQLite always, PostgreSQL on a fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::{net::IpAddr, path::Path};

use reqwest::{Client, StatusCode, redirect::Policy};
use serde_json::Value;
use support::{FreshDb, Server, config_copy, create_admin_env, promtool};

const ADMIN_PASSWORD: &str = "SecurePassword123!";

fn config(root: &Path) -> std::path::PathBuf {
    config_copy(
        root,
        &[
            (
                "rate_limit.yml",
                "    - \"127.0.0.0/8\"  # local set-up: this machine\n    - \"::1/128\"\n",
                "",
            ),
            (
                "rate_limit.yml",
                "  ip_blacklist:",
                "  trusted_proxies:\n    - \"127.0.0.1/32\"\n\n  ip_blacklist:",
            ),
            (
                "rate_limit.yml",
                "      requests_per_minute: 5\n      burst: 2",
                "      requests_per_minute: 5\n      burst: 6",
            ),
        ],
    )
}

fn http() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
}

async fn login(http: &Client, server: &Server, from: &str, password: &str) -> reqwest::Response {
    http.post(server.url("/api/v1/auth/login"))
        .header("x-forwarded-for", from)
        .json(&serde_json::json!({ "username": "admin", "password": password }))
        .send()
        .await
        .unwrap()
}

async fn get(http: &Client, server: &Server, from: &str, path: &str) -> reqwest::Response {
    http.get(server.url(path))
        .header("x-forwarded-for", from)
        .send()
        .await
        .unwrap()
}

async fn code(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let body: Value = r.json().await.unwrap_or_default();
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_string(),
    )
}

async fn scenario(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let data = dir.path().join("data");
    create_admin_env(&config, &data, database_url, &[]);
    let server = Server::start_in(&config, &data, database_url);
    let http = http();

    // A burst past the sign-in budget: the seventh quick sign-in (right password, so no failure
    // is counted) gets 429 with the wait and the budget.
    for _ in 0..6 {
        let r = login(&http, &server, "198.51.100.1", ADMIN_PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = login(&http, &server, "198.51.100.1", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "12");
    assert_eq!(r.headers()["ratelimit-limit"], "5");
    assert_eq!(r.headers()["ratelimit-remaining"], "0");
    assert_eq!(r.headers()["ratelimit-policy"], "5;w=60");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("try again in 12 s"),
        "{body}"
    );
    // The budget is the address's: another one signs in.
    let r = login(&http, &server, "198.51.100.2", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let token: Value = r.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();

    // Six wrong passwords over REST block the address on every route; others are unaffected.
    for _ in 0..6 {
        let r = login(&http, &server, "203.0.113.7", "Wrong-Password-1!").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = get(&http, &server, "203.0.113.7", "/api/v1/me").await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3590..=3600).contains(&retry), "{retry}");
    assert_eq!(
        code(r).await,
        (StatusCode::FORBIDDEN, "ip_blocked".to_string())
    );
    let r = http
        .get(server.url("/"))
        .header("x-forwarded-for", "203.0.113.7")
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Access refused") && page.contains("blocked"),
        "{page}"
    );
    assert_eq!(
        get(&http, &server, "203.0.113.7", "/healthz")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let r = login(&http, &server, "203.0.113.7", ADMIN_PASSWORD).await;
    assert_eq!(code(r).await.1, "ip_blocked", "even the right password");
    assert_eq!(
        get(&http, &server, "203.0.113.8", "/healthz")
            .await
            .status(),
        StatusCode::OK
    );

    // The same through the dashboard's sign-in form (no JavaScript: a form post).
    for i in 0..6 {
        let r = http
            .post(server.url("/api/auth/sign_in"))
            .header("x-forwarded-for", "198.51.100.77")
            .header("origin", server.url(""))
            .form(&[("username", "admin"), ("password", "Wrong-Password-1!")])
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), StatusCode::FORBIDDEN, "attempt {i}");
        assert_ne!(r.status(), StatusCode::OK, "attempt {i}");
    }
    let r = http
        .post(server.url("/api/auth/sign_in"))
        .header("x-forwarded-for", "198.51.100.77")
        .header("origin", server.url(""))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        get(&http, &server, "198.51.100.77", "/api/v1/me")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // A whitelisted address (10.0.0.0/8) is never limited nor blocked.
    for _ in 0..8 {
        let r = login(&http, &server, "10.9.9.9", "Wrong-Password-1!").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        get(&http, &server, "10.9.9.9", "/healthz").await.status(),
        StatusCode::OK
    );
    // A blacklisted one (192.0.2.0/24) never gets past the edge.
    let r = get(&http, &server, "192.0.2.1", "/healthz").await;
    assert_eq!(
        code(r).await,
        (StatusCode::FORBIDDEN, "ip_blacklisted".to_string())
    );
    let r = login(&http, &server, "192.0.2.1", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // X-Forwarded-For from a peer that is not a trusted proxy is ignored: 127.0.0.2 claiming a
    // blacklisted or a blocked address is just 127.0.0.2.
    let spoofer = Client::builder()
        .redirect(Policy::none())
        .local_address("127.0.0.2".parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    for claimed in ["192.0.2.1", "203.0.113.7"] {
        assert_eq!(
            get(&spoofer, &server, claimed, "/healthz").await.status(),
            StatusCode::OK,
            "{claimed}"
        );
    }

    // Audited: both blocks with their rule, and the sign-in budget's refusal.
    let blocked = support::audit_events(&server, &token, "ip_blocked").await;
    let mut ips: Vec<&str> = blocked.iter().filter_map(|e| e["ip"].as_str()).collect();
    ips.sort();
    assert_eq!(ips, ["198.51.100.77", "203.0.113.7"], "{blocked:?}");
    assert!(
        blocked
            .iter()
            .all(|e| e["details"]["rule"] == "brute_force_login")
    );
    let limited = support::audit_events(&server, &token, "rate_limit_exceeded").await;
    assert!(
        limited
            .iter()
            .any(|e| e["ip"] == "198.51.100.1" && e["details"]["scope"] == "endpoint"),
        "{limited:?}"
    );

    // Counted, and the exposition stays valid.
    let text = http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("rate_limit_violations_total{scope=\"endpoint\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ids_triggers_total{action=\"block_ip\"} 2"),
        "{text}"
    );
    assert!(text.contains("ip_blocks_active 2"), "{text}");
    if let Some((ok, report)) = promtool(&text) {
        assert!(ok, "{report}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_lists_and_blocks_hold_at_the_edge_on_sqlite() {
    scenario(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_lists_and_blocks_hold_at_the_edge_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    scenario(Some(&db.url)).await;
    db.drop_db().await;
}

/// A documentation address (2001:db8::/32) no earlier run used, so Redis state left by one run
/// cannot decide the next.
fn fresh_address() -> String {
    let id = uuid::Uuid::new_v4().as_u128();
    format!(
        "2001:db8:{:x}:{:x}::{:x}",
        (id >> 16) as u16,
        (id >> 32) as u16,
        (id >> 48) as u16
    )
}

/// Two replicas on one PostgreSQL database and one Redis (rate_limit.yml `redis_url`) spend one
/// budget and share blocks: six sign-ins split across them use up the burst of six, and three
/// wrong passwords on each block the address on both.
#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_one_postgres_and_redis_enforce_one_budget() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let Some(redis) = testkit::redis_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let file = config.join("rate_limit.yml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace(
            "  trusted_proxies:",
            &format!("  redis_url: \"{redis}\"\n  trusted_proxies:"),
        ),
    )
    .unwrap();
    let key = "ab".repeat(32);
    let envs = [
        ("WASM_AS_OS_AUDIT_CHAIN_KEY", key.as_str()),
        ("WASM_AS_OS_AUDIT_SUBJECT_KEY", key.as_str()),
    ];
    let first_data = dir.path().join("a");
    create_admin_env(&config, &first_data, Some(&db.url), &envs);
    let a = Server::start_with_config(&config, &first_data, Some(&db.url), &envs);
    let b = Server::start_with_config(&config, &dir.path().join("b"), Some(&db.url), &envs);
    let http = http();

    let shared = fresh_address();
    for (i, server) in [&a, &b, &a, &b, &a, &b].into_iter().enumerate() {
        let r = login(&http, server, &shared, ADMIN_PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK, "sign-in {i}");
    }
    for server in [&a, &b] {
        let r = login(&http, server, &shared, ADMIN_PASSWORD).await;
        assert_eq!(
            r.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "the burst is spent on both"
        );
    }
    // Each replica alone would have let this one through: the other address is unaffected.
    let other = fresh_address();
    assert_eq!(
        login(&http, &b, &other, ADMIN_PASSWORD).await.status(),
        StatusCode::OK
    );

    let attacker = fresh_address();
    for server in [&a, &b, &a, &b, &a, &b] {
        let r = login(&http, server, &attacker, "Wrong-Password-1!").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    for server in [&a, &b] {
        let r = get(&http, server, &attacker, "/api/v1/me").await;
        assert_eq!(code(r).await.1, "ip_blocked", "blocked on both replicas");
    }
    drop(a);
    drop(b);
    db.drop_db().await;
}
