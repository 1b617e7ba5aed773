//! The Audit dashboard's query over a million stored events: first page, a page 10,000 rows deep
//! (keyset), and each filter, median of several runs. SQLite always; PostgreSQL too when
//! TEST_POSTGRES_URL is set (a fresh database is created and dropped).
//!
//! `cargo bench -p platform --bench audit_query [-- EVENTS]` (numbers go to docs/benchmarks.md by hand).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use platform::{
    Platform, StartOptions,
    access::Principal,
    audit::{AuditParams, AuditQuery},
    clock::SystemClock,
};
use sea_orm::{
    ConnectionTrait, Database,
    sea_query::{Alias, Query},
};

const EVENTS: [&str; 6] = [
    "login_success",
    "login_failure",
    "module_execute",
    "permission_denied",
    "module_upload",
    "token_refresh",
];
const OUTCOMES: [&str; 3] = ["success", "failure", "denied"];

async fn fill(p: &Platform, n: usize) {
    let db = p.db();
    let start = chrono::Utc::now() - chrono::Duration::days(30);
    let mut i = 0;
    while i < n {
        let mut insert = Query::insert();
        insert.into_table(Alias::new("audit_logs")).columns(
            [
                "id",
                "occurred_at",
                "event",
                "actor_id",
                "actor_name",
                "source_ip",
                "user_agent",
                "target_type",
                "target_id",
                "outcome",
                "details",
            ]
            .map(Alias::new),
        );
        for k in i..(i + 1000).min(n) {
            let at = start + chrono::Duration::milliseconds(k as i64 * 2_500);
            insert.values_panic([
                uuid::Uuid::now_v7().into(),
                at.into(),
                EVENTS[k % EVENTS.len()].into(),
                format!("user-{}", k % 997).into(),
                format!("developer{}", k % 997).into(),
                format!("10.{}.{}.{}", k % 7, k % 251, k % 13).into(),
                "Mozilla/5.0 (X11; Linux x86_64) bench".into(),
                "module".into(),
                format!("m-{}", k % 5003).into(),
                OUTCOMES[k % OUTCOMES.len()].into(),
                serde_json::json!({ "duration_ms": k % 100, "note": format!("event number {k}") })
                    .into(),
            ]);
        }
        db.execute(&insert).await.unwrap();
        i += 1000;
    }
}

async fn timed(p: &Platform, params: AuditParams, runs: usize) -> (Duration, usize) {
    let query = AuditQuery::from_params(&params).unwrap();
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..runs {
        let t = Instant::now();
        rows = p
            .audit()
            .search(&Principal::System, &query)
            .await
            .unwrap()
            .events
            .len();
        times.push(t.elapsed());
    }
    times.sort();
    (times[runs / 2], rows)
}

async fn deep_cursor(p: &Platform, depth: usize) -> String {
    let mut after = String::new();
    for _ in 0..depth / 500 {
        let q = AuditQuery::from_params(&AuditParams {
            after: after.clone(),
            limit: Some(500),
            ..Default::default()
        })
        .unwrap();
        after = p
            .audit()
            .search(&Principal::System, &q)
            .await
            .unwrap()
            .next
            .unwrap();
    }
    after
}

async fn run(label: &str, database_url: Option<String>, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let options = StartOptions {
        config_dir: dir.path().join("none"),
        data_dir: dir.path().to_path_buf(),
        database_url,
        clock: Arc::new(SystemClock),
        sessions: Default::default(),
        max_upload: platform::DEFAULT_MAX_UPLOAD,
        run_modules: false,
    };
    let p = Platform::start(options).await.unwrap().0;
    let t = Instant::now();
    fill(&p, n).await;
    println!("{label}: stored {n} events in {:.1?}", t.elapsed());
    let deep = deep_cursor(&p, 10_000).await;
    let cases: Vec<(&str, AuditParams)> = vec![
        ("newest page (50)", AuditParams::default()),
        (
            "page 10,000 rows deep",
            AuditParams {
                after: deep,
                ..Default::default()
            },
        ),
        (
            "event = login_failure",
            AuditParams {
                event: "login_failure".into(),
                ..Default::default()
            },
        ),
        (
            "actor = developer42",
            AuditParams {
                actor: "developer42".into(),
                ..Default::default()
            },
        ),
        (
            "outcome = denied",
            AuditParams {
                outcome: "denied".into(),
                ..Default::default()
            },
        ),
        (
            "resource = m-77",
            AuditParams {
                resource: "m-77".into(),
                ..Default::default()
            },
        ),
        (
            "one day, event + outcome (no match)",
            AuditParams {
                event: "module_execute".into(),
                outcome: "success".into(),
                from: (chrono::Utc::now() - chrono::Duration::days(20))
                    .format("%Y-%m-%dT%H:%M")
                    .to_string(),
                to: (chrono::Utc::now() - chrono::Duration::days(19))
                    .format("%Y-%m-%dT%H:%M")
                    .to_string(),
                ..Default::default()
            },
        ),
        (
            "free text, common (\"10.3.\")",
            AuditParams {
                q: "10.3.".into(),
                ..Default::default()
            },
        ),
        (
            "free text, rare (\"event number 123457\")",
            AuditParams {
                q: "event number 123457".into(),
                ..Default::default()
            },
        ),
    ];
    println!(
        "{:<44} {:>10} {:>6}",
        format!("{label}, {n} events"),
        "median",
        "rows"
    );
    for (name, params) in cases {
        let (median, rows) = timed(&p, params, 7).await;
        println!("{name:<44} {:>10.2?} {rows:>6}", median);
    }
    p.close().await;
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    run("SQLite", None, n).await;
    if let Ok(admin_url) = std::env::var("TEST_POSTGRES_URL") {
        let name = format!("wasm_as_os_bench_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await.unwrap();
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        run("PostgreSQL", Some(url.to_string()), n).await;
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .unwrap();
    }
}
