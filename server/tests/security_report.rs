//! The spec's `admin security-report` line, verbatim, and the report's numbers against events made
//! over HTTP; SQLite always, PostgreSQL when TEST_POSTGRES_URL is set.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::{path::Path, process::Command};

use support::{BIN, FreshDb, Server, cli, repo_config, token};

fn report(
    data_dir: &Path,
    database_url: Option<&str>,
    cwd: &Path,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd)
        .arg("--config-dir")
        .arg(repo_config())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("RUST_LOG", "off")
        .env_remove("DATABASE_URL");
    match database_url {
        Some(url) => cmd.env("WASM_AS_OS_DATABASE_URL", url),
        None => cmd.env_remove("WASM_AS_OS_DATABASE_URL"),
    };
    cmd.output().unwrap()
}

fn pdftotext(pdf: &Path) -> Option<String> {
    let out = Command::new("pdftotext")
        .arg("-layout")
        .arg(pdf)
        .arg("-")
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "pdftotext could not read the report: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn security_report(data_dir: &Path, database_url: Option<&str>) {
    cli(
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
    for _ in 0..3 {
        let r = http
            .post(server.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "alice", "password": "wrong-Password-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let viewer = token(&http, &server, "watcher", "Correct-Horse-9!").await;
    let r = http
        .get(server.url("/api/v1/users"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (status, _) = server.terminate();
    assert!(status.success());

    // The spec's line, verbatim: January 2024 has no events, and the PDF says so.
    let cwd = tempfile::tempdir().unwrap();
    let spec_line = [
        "admin",
        "security-report",
        "--start-date",
        "2024-01-01",
        "--end-date",
        "2024-01-31",
        "--format",
        "pdf",
        "--output",
        "security-report-jan-2024.pdf",
    ];
    let out = report(data_dir, database_url, cwd.path(), &spec_line);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pdf = cwd.path().join("security-report-jan-2024.pdf");
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-1.4") && bytes.ends_with(b"%%EOF\n"));
    if let Some(text) = pdftotext(&pdf) {
        assert!(text.contains("wasm-as-os security report"), "{text}");
        assert!(text.contains("Period: 2024-01-01 to 2024-01-31"), "{text}");
        assert!(text.contains("Events recorded: 0"), "{text}");
    } else {
        testkit::require_tool("pdftotext", &["-v"]);
    }

    // Today's numbers, as JSON, counted from what the server recorded.
    let today = chrono::Utc::now().date_naive().to_string();
    let out = report(
        data_dir,
        database_url,
        cwd.path(),
        &[
            "admin",
            "security-report",
            "--start-date",
            &today,
            "--end-date",
            &today,
            "--format",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let count = |event: &str| {
        json["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == event)
            .map(|e| e["count"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(count("login_failure"), 3, "{json}");
    assert_eq!(count("permission_denied"), 1, "{json}");
    assert_eq!(
        json["failed_logins_by_actor"][0],
        serde_json::json!({"name": "alice", "count": 3})
    );
    assert_eq!(json["failed_logins_by_address"][0]["name"], "127.0.0.1");
    assert_eq!(
        json["denials_by_actor"][0],
        serde_json::json!({"name": "watcher", "count": 1})
    );

    // The same as CSV and as text.
    let out = report(
        data_dir,
        database_url,
        cwd.path(),
        &[
            "admin",
            "security-report",
            "--start-date",
            &today,
            "--end-date",
            &today,
            "--format",
            "csv",
        ],
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(
        csv.starts_with("section,name,outcome,count\r\n")
            && csv.contains("events,login_failure,failure,3\r\n")
            && csv.contains("failed_logins_by_actor,alice,,3\r\n"),
        "{csv}"
    );
    let out = report(
        data_dir,
        database_url,
        cwd.path(),
        &[
            "admin",
            "security-report",
            "--start-date",
            &today,
            "--end-date",
            &today,
        ],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Failed sign-ins: 3   Permission denials: 1"),
        "{text}"
    );

    // Bad dates: one readable line each, and no file written.
    for (args, expected) in [
        (
            ["--start-date", "2024-13-01", "--end-date", "2024-01-31"],
            "--start-date: expected a date such as 2024-01-31, got \"2024-13-01\"",
        ),
        (
            ["--start-date", "2024-02-01", "--end-date", "2024-01-31"],
            "--end-date: must not be before --start-date",
        ),
    ] {
        let mut line = vec!["admin", "security-report"];
        line.extend(args);
        line.extend(["--format", "pdf", "--output", "bad.pdf"]);
        let out = report(data_dir, database_url, cwd.path(), &line);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(expected) && stderr.trim().lines().count() == 1,
            "{stderr}"
        );
        assert!(!cwd.path().join("bad.pdf").exists());
    }
}

#[tokio::test]
async fn the_security_report_counts_what_was_recorded_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    security_report(dir.path(), None).await;
}

#[tokio::test]
async fn the_security_report_counts_what_was_recorded_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    security_report(dir.path(), Some(&db.url)).await;
    db.drop_db().await;
}
