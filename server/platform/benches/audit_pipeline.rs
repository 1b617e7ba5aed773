//! Audit pipeline benchmark: sustained events per second through the journal to the file sink,
//! and to file plus database (SQLite), and the time `record` adds to a request (p50/p99).
//!
//! `cargo bench -p platform --bench audit_pipeline` (numbers go to docs/benchmarks.md by hand).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use platform::{
    Platform, StartOptions,
    audit::{Actor, AuditEvent, EventKind, Outcome},
    clock::SystemClock,
};

fn event(n: usize) -> AuditEvent {
    AuditEvent::new(
        EventKind::ModuleExecute,
        Actor::user("0191c3c2-7f5e-7000-8000-000000000001", "developer1"),
        Outcome::Success,
    )
    .with_client(
        Some("203.0.113.7".into()),
        Some("Mozilla/5.0 (X11; Linux x86_64) bench".into()),
    )
    .with_target("module", format!("m-{}", n % 100))
    .with_details(serde_json::json!({ "duration_ms": 12, "fuel": 100_000, "exit": "ok" }))
}

async fn platform(dir: &std::path::Path, database: bool) -> Platform {
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let db = if database {
        "    - type: \"database\"\n      table: \"audit_logs\"\n"
    } else {
        ""
    };
    std::fs::write(
        config.join("audit.yml"),
        format!(
            "audit:\n  enabled: true\n  destinations:\n    - type: \"file\"\n      path: \"{}\"\n      rotation:\n        max_size: \"100MB\"\n        max_files: 10\n        compress: true\n{db}  events:\n    modules: [\"module_execute\"]\n  filter_sensitive_data: true\n  sensitive_fields: [\"password\", \"token\", \"secret\", \"key\"]\n",
            dir.join("audit.log").display()
        ),
    )
    .unwrap();
    let options = StartOptions {
        config_dir: config,
        data_dir: dir.join("data"),
        database_url: None,
        clock: Arc::new(SystemClock),
        sessions: Default::default(),
        max_upload: platform::DEFAULT_MAX_UPLOAD,
        run_modules: false,
    };
    Platform::start(options).await.unwrap().0
}

async fn throughput(database: bool, n: usize) -> (f64, Vec<Duration>) {
    let dir = tempfile::tempdir().unwrap();
    let p = platform(dir.path(), database).await;
    let mut latencies = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        p.audit().record(event(i)).await.unwrap();
        latencies.push(t.elapsed());
    }
    assert!(p.audit().flush(Duration::from_secs(600)).await);
    let rate = n as f64 / started.elapsed().as_secs_f64();
    p.close().await;
    (rate, latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("AUDIT_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    for (label, database) in [("file", false), ("file + database (SQLite)", true)] {
        let (rate, mut latencies) = throughput(database, n).await;
        latencies.sort();
        println!(
            "{label:<26} {n} events: {rate:>9.0} events/s delivered; record() p50 {:>6.1} µs, p99 {:>6.1} µs, max {:>8.1} µs",
            percentile(&latencies, 0.5).as_secs_f64() * 1e6,
            percentile(&latencies, 0.99).as_secs_f64() * 1e6,
            latencies.last().unwrap().as_secs_f64() * 1e6,
        );
    }
}
