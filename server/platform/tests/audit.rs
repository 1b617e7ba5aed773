//! The audit pipeline end to end: file (rotation, compression, shape, the spec's grep/jq
//! commands), syslog (a real rsyslog), database, redaction, log injection, tamper evidence and the
//! dashboard's query; SQLite always, PostgreSQL when TEST_POSTGRES_URL is set.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::Duration,
};

use platform::{
    Platform, StartOptions,
    access::Principal,
    audit::{Actor, AuditEvent, AuditQuery, EventKind, Outcome, verify},
    clock::SystemClock,
};
use sea_orm::{ConnectionTrait, Database};

const EVENTS: &str = r#"
  events:
    authentication: ["login_success", "login_failure"]
    authorization: ["permission_denied"]
    modules: ["module_execute"]
    system: ["service_start", "service_stop", "config_change"]
  filter_sensitive_data: true
  sensitive_fields: ["password", "token", "secret", "key"]
"#;

fn config_dir(root: &Path, destinations: &str) -> PathBuf {
    let dir = root.join("config");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("audit.yml"),
        format!("audit:\n  enabled: true\n  destinations:\n{destinations}{EVENTS}"),
    )
    .unwrap();
    // These tests count exactly the events they record; intrusion detection would add its own
    // (a block after their sign-in failures; tested in edge.rs).
    std::fs::write(
        dir.join("ids.yml"),
        "intrusion_detection:\n  enabled: false\n",
    )
    .unwrap();
    dir
}

fn file_destination(path: &Path, max_size: &str) -> String {
    format!(
        "    - type: \"file\"\n      path: \"{}\"\n      rotation:\n        max_size: \"{max_size}\"\n        max_files: 3\n        compress: true\n",
        path.display()
    )
}

const DATABASE: &str = "    - type: \"database\"\n      table: \"audit_logs\"\n";

async fn start(root: &Path, destinations: &str, database_url: Option<String>) -> Platform {
    let options = StartOptions {
        config_dir: config_dir(root, destinations),
        data_dir: root.join("data"),
        database_url,
        clock: Arc::new(SystemClock),
        sessions: Default::default(),
        max_upload: platform::DEFAULT_MAX_UPLOAD,
        run_modules: false,
    };
    Platform::start(options).await.unwrap().0
}

fn login_failure(user: &str, n: usize) -> AuditEvent {
    AuditEvent::new(
        EventKind::LoginFailure,
        Actor {
            id: None,
            name: user.to_string(),
        },
        Outcome::Failure,
    )
    .with_client(Some("203.0.113.7".into()), Some("curl/8".into()))
    .with_details(serde_json::json!({ "reason": "wrong password", "attempt": n }))
}

fn module_execute(module: &str) -> AuditEvent {
    AuditEvent::new(
        EventKind::ModuleExecute,
        Actor::user("u1", "dev"),
        Outcome::Success,
    )
    .with_target("module", module)
}

/// The chain key `start` generated in the data dir under `root`.
fn chain_key(root: &Path) -> platform::audit::line::ChainKey {
    let (key, _) = platform::secrets::audit_chain_key(&root.join("data"), false).unwrap();
    platform::audit::line::ChainKey::new(key)
}

fn sh(script: &str, dir: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_file_rotates_compresses_and_keeps_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/audit.log");
    let platform = start(dir.path(), &file_destination(&log, "2KB"), None).await;
    for n in 0..60 {
        platform
            .audit()
            .record(login_failure("alice", n))
            .await
            .unwrap()
            .unwrap();
    }
    platform.close().await;
    assert!(log.exists());
    assert!(std::fs::metadata(&log).unwrap().len() <= 2048);
    for n in 1..=3 {
        let gz = PathBuf::from(format!("{}.{n}.gz", log.display()));
        assert!(gz.exists(), "{} was rotated and compressed", gz.display());
    }
    assert!(
        !PathBuf::from(format!("{}.4.gz", log.display())).exists(),
        "max_files older files are kept"
    );
    assert!(
        !PathBuf::from(format!("{}.1", log.display())).exists(),
        "the rotated file is compressed"
    );
    let gunzipped = sh("gzip -dc audit.log.1.gz | head -n 1", log.parent().unwrap());
    assert!(
        gunzipped.contains("\"event\":\"login_failure\""),
        "{gunzipped}"
    );

    let files = verify::rotated_set(&log);
    assert_eq!(files.len(), 4);
    let result = verify::files(&files, &chain_key(dir.path())).unwrap();
    assert_eq!(result.broken, None, "the chain survives rotation");
    assert!(result.verified > 5);
}

#[tokio::test]
async fn the_specs_log_analysis_commands_work_on_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let platform = start(dir.path(), &file_destination(&log, "100MB"), None).await;
    let audit = platform.audit();
    for n in 0..25 {
        audit.record(login_failure("mallory", n)).await.unwrap();
    }
    let admin_denied = AuditEvent::new(
        EventKind::PermissionDenied,
        Actor::user("u9", "viewer1"),
        Outcome::Denied,
    )
    .with_details(serde_json::json!({ "permission": "users:create", "target": "admin" }));
    audit.record(admin_denied).await.unwrap();
    audit
        .record(
            AuditEvent::new(
                EventKind::PermissionDenied,
                Actor::user("u9", "viewer1"),
                Outcome::Denied,
            )
            .with_details(serde_json::json!({"permission": "modules:delete"})),
        )
        .await
        .unwrap();
    for m in ["m-1", "m-2", "m-1", "m-3", "m-1", "m-2"] {
        audit.record(module_execute(m)).await.unwrap();
    }
    platform.close().await;

    let failures = sh("grep \"login_failure\" audit.log | tail -20", dir.path());
    assert_eq!(failures.lines().count(), 20);
    assert!(
        failures
            .lines()
            .all(|l| l.contains("\"username\":\"mallory\""))
    );
    let denied = sh(
        "grep \"permission_denied\" audit.log | grep \"admin\"",
        dir.path(),
    );
    assert_eq!(denied.lines().count(), 1, "{denied}");
    let counts = sh(
        "grep \"module_execute\" audit.log | jq '.module_id' | sort | uniq -c | sort -nr",
        dir.path(),
    );
    let counts: Vec<String> = counts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(counts, ["3 \"m-1\"", "2 \"m-2\"", "1 \"m-3\""]);
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    for key in [
        "timestamp",
        "event",
        "actor",
        "ip",
        "user_agent",
        "outcome",
        "details",
        "prev_hash",
        "hash",
    ] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }
    assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn sensitive_fields_are_redacted_at_any_depth_and_user_values_cannot_forge_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let platform = start(
        dir.path(),
        &format!("{}{DATABASE}", file_destination(&log, "100MB")),
        None,
    )
    .await;
    let forged = "eve\n{\"event\":\"login_success\",\"actor\":{\"username\":\"admin\"}}\r\u{85}\u{2028}\u{1b}[2J";
    let event = AuditEvent::new(EventKind::LoginFailure, Actor { id: None, name: forged.into() }, Outcome::Failure)
        .with_client(Some("10.0.0.1".into()), Some(format!("agent\n{forged}")))
        .with_details(serde_json::json!({
            "password": "hunter2",
            "request": { "headers": { "X-Api-Key": "k-123", "accept": "json" }, "body": [{ "refresh_token": "rt-456" }] },
            "Client_Secret": "s-789",
        }));
    platform.audit().record(event).await.unwrap();
    let stored = platform.audit().recent(1).await.unwrap();
    platform.close().await;

    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 1, "one event, one line: {text}");
    for secret in ["hunter2", "k-123", "rt-456", "s-789"] {
        assert!(!text.contains(secret), "{secret} leaked into the file");
        assert!(
            !stored[0].event.details.to_string().contains(secret),
            "{secret} leaked into the database"
        );
    }
    assert!(!text.contains(['\r', '\u{85}', '\u{2028}', '\u{1b}']));
    let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(line["event"], "login_failure");
    assert_eq!(line["actor"]["username"], forged);
    assert_eq!(line["details"]["request"]["headers"]["accept"], "json");
    let grep = sh("grep -c login_success audit.log || true", dir.path());
    assert_eq!(
        grep.trim(),
        "1",
        "the forged text stays inside the one real line"
    );
}

#[tokio::test]
async fn an_edited_line_is_named_by_verify() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let platform = start(dir.path(), &file_destination(&log, "100MB"), None).await;
    for n in 0..10 {
        platform
            .audit()
            .record(login_failure("alice", n))
            .await
            .unwrap();
    }
    platform
        .audit()
        .flush(std::time::Duration::from_secs(10))
        .await;
    let subjects = platform.audit().subjects().all().await.unwrap();
    platform.close().await;
    assert_eq!(
        verify::files(std::slice::from_ref(&log), &chain_key(dir.path()))
            .unwrap()
            .broken,
        None
    );

    let text = std::fs::read_to_string(&log).unwrap();
    let edited: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 6 {
                l.replace("alice", "bob")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&log, edited.join("\n") + "\n").unwrap();
    // The name is a personal value: the chain hashes its keyed digest, which the subject's key
    // checks (chain v2). Without the keys only the chain is checked, and the values are counted
    // as unchecked.
    let result = verify::files_with_subjects(
        std::slice::from_ref(&log),
        &chain_key(dir.path()),
        Some(&subjects),
    )
    .unwrap();
    assert_eq!(result.verified, 6);
    assert!(
        matches!(&result.broken, Some(verify::Broken::Line { line: 7, reason, .. }) if reason.contains("does not match its keyed digest")),
        "{:?}",
        result.broken
    );
    let chain_only = verify::files(std::slice::from_ref(&log), &chain_key(dir.path())).unwrap();
    assert_eq!((chain_only.broken, chain_only.unchecked), (None, 30));
    let mut altered: serde_json::Value =
        serde_json::from_str(text.lines().nth(6).unwrap()).unwrap();
    altered["outcome"] = "success".into();
    let edited: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 6 {
                altered.to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&log, edited.join("\n") + "\n").unwrap();
    let result = verify::files(std::slice::from_ref(&log), &chain_key(dir.path())).unwrap();
    assert!(
        matches!(result.broken, Some(verify::Broken::Line { line: 7, .. })),
        "a hashed field altered breaks the chain: {:?}",
        result.broken
    );

    let removed: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&log, removed.join("\n") + "\n").unwrap();
    let result = verify::files(std::slice::from_ref(&log), &chain_key(dir.path())).unwrap();
    assert!(
        matches!(result.broken, Some(verify::Broken::Line { line: 4, .. })),
        "a removed line breaks the next link: {:?}",
        result.broken
    );
}

async fn database_chain(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let platform = start(dir.path(), DATABASE, database_url.clone()).await;
    for n in 0..30 {
        platform
            .audit()
            .record(login_failure("alice", n))
            .await
            .unwrap();
    }
    let intact = platform.audit().verify_database().await.unwrap();
    assert_eq!((intact.verified, intact.broken.clone()), (30, None));

    // Keyset paging and filters of the dashboard's query.
    let audit = platform.audit();
    let mut q = AuditQuery {
        events: vec![EventKind::LoginFailure],
        text: Some("WRONG".into()),
        limit: 12,
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = audit.search(&Principal::System, &q).await.unwrap();
        seen.extend(page.events.iter().map(|e| e.id));
        match page.next {
            Some(next) => q.after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 30);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first, no duplicates across pages");
    let none = audit
        .search(
            &Principal::System,
            &AuditQuery {
                actor: Some("bob".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(none.events.is_empty());
    let one = AuditQuery {
        text: Some("100%_".into()),
        ..Default::default()
    };
    assert!(
        audit
            .search(&Principal::System, &one)
            .await
            .unwrap()
            .events
            .is_empty(),
        "LIKE wildcards in the text are literal"
    );
    platform.close().await;

    let url = database_url.unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            dir.path().join("data/wasm-as-os.db").display()
        )
    });
    let db = Database::connect(&url).await.unwrap();
    let sql = "UPDATE audit_logs SET actor_name = 'bob' WHERE seq = 17";
    db.execute_unprepared(sql).await.unwrap();
    let victim = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT id FROM audit_logs WHERE seq = 17",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<uuid::Uuid>("", "id")
        .unwrap();
    db.close().await.unwrap();
    let platform = Platform::start(StartOptions {
        config_dir: dir.path().join("config"),
        data_dir: dir.path().join("data"),
        database_url: Some(url),
        clock: Arc::new(SystemClock),
        sessions: Default::default(),
        max_upload: platform::DEFAULT_MAX_UPLOAD,
        run_modules: false,
    })
    .await
    .unwrap()
    .0;
    let result = platform.audit().verify_database().await.unwrap();
    assert_eq!(result.verified, 16);
    match result.broken {
        Some(verify::Broken::Row { id, seq: 17, .. }) => assert_eq!(id, victim),
        other => panic!("the altered row is named: {other:?}"),
    }
    platform.close().await;
}

#[tokio::test]
async fn the_database_chain_names_an_altered_row_on_sqlite() {
    database_chain(None).await;
}

#[tokio::test]
async fn the_database_chain_names_an_altered_row_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    database_chain(Some(db.url.clone())).await;
    db.drop_db().await;
}

#[tokio::test]
async fn only_a_principal_with_system_audit_may_search() {
    let dir = tempfile::tempdir().unwrap();
    let platform = start(dir.path(), DATABASE, None).await;
    let viewer = Principal::User {
        id: "u2".into(),
        username: "viewer1".into(),
        roles: vec!["viewer".into()],
        permissions: Default::default(),
    };
    assert!(
        platform
            .audit()
            .search(&viewer, &AuditQuery::default())
            .await
            .is_err()
    );
    let denied = platform
        .audit()
        .search(
            &Principal::System,
            &AuditQuery {
                events: vec![EventKind::PermissionDenied],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(denied.events.len(), 1, "the refusal is audited");
    platform.close().await;
}

use testkit::Rsyslog;

async fn syslog_receives(protocol: &str) {
    let dir = tempfile::tempdir().unwrap();
    let Some((rsyslog, port)) = Rsyslog::start(dir.path(), protocol) else {
        return;
    };
    let dest = format!(
        "    - type: \"syslog\"\n      facility: \"local3\"\n      tag: \"wasm-as-os\"\n      address: \"{protocol}://127.0.0.1:{port}\"\n"
    );
    let platform = start(dir.path(), &dest, None).await;
    platform
        .audit()
        .record(login_failure("eve\nforged", 1))
        .await
        .unwrap();
    platform
        .audit()
        .record(module_execute("m-42"))
        .await
        .unwrap();
    assert!(platform.audit().flush(Duration::from_secs(10)).await);
    platform.close().await;
    let mut text = String::new();
    for _ in 0..50 {
        text = std::fs::read_to_string(&rsyslog.out).unwrap_or_default();
        if text.lines().count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("local3 warning wasm-as-os login_failure {"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("eve\\nforged"), "{}", lines[0]);
    assert!(
        lines[1].starts_with("local3 notice wasm-as-os module_execute {"),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("\"module_id\":\"m-42\""));
}

#[tokio::test]
async fn rsyslog_receives_events_over_udp_with_facility_and_tag() {
    syslog_receives("udp").await;
}

#[tokio::test]
async fn rsyslog_receives_events_over_tcp_with_facility_and_tag() {
    syslog_receives("tcp").await;
}

#[tokio::test]
async fn a_failing_destination_neither_blocks_recording_nor_loses_events() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port: the syslog destination fails and retries.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dest = format!(
        "    - type: \"syslog\"\n      facility: \"local0\"\n      tag: \"t\"\n      address: \"tcp://127.0.0.1:{port}\"\n{DATABASE}"
    );
    let platform = start(dir.path(), &dest, None).await;
    let started = std::time::Instant::now();
    for n in 0..200 {
        platform
            .audit()
            .record(login_failure("alice", n))
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "recording does not wait for syslog"
    );
    assert_eq!(
        platform.audit().recent(500).await.unwrap().len(),
        200,
        "the database still gets every event"
    );
    platform.close().await;
    drop(platform); // releases the journal's lock, as the end of a process does
    let journal = dir.path().join("data/audit-journal");
    let left: Vec<_> = std::fs::read_dir(&journal).unwrap().collect();
    assert_eq!(
        left.len(),
        1,
        "the undelivered syslog events stay in the journal"
    );

    // The next start (syslog back, here: a listener) delivers them.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut all = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&all)
                .matches("login_failure - {")
                .count()
                >= 200
            {
                break;
            }
        }
        String::from_utf8_lossy(&all)
            .matches("login_failure - {")
            .count()
    });
    let platform = start(dir.path(), &dest, None).await;
    assert!(platform.audit().flush(Duration::from_secs(10)).await);
    platform.close().await;
    assert_eq!(reader.join().unwrap(), 200);
    assert_eq!(
        std::fs::read_dir(&journal).unwrap().count(),
        0,
        "delivered journals are removed"
    );
}
