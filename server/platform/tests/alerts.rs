//! ids.yml alerts reach real receivers started here:
//! - an SMTP sink (Python's aiosmtpd, writing a maildir);
//! - a local HTTP server standing in for the Slack webhook;
//! - rsyslog on a UDP port.
//!
//! A dead receiver is retried, reported (audit event, metric, channel status) and never holds up
//! the request that triggered the alert. The trigger is the guide's `privilege_escalation` rule: a
//! developer refused `users:read`.
//! SQLite always, PostgreSQL on a fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use platform::{
    Platform, StartOptions,
    access::Principal,
    audit::{AuditQuery, EventKind, RecordedEvent},
    clock::SystemClock,
};
use testkit::Rsyslog;

/// The Python that has aiosmtpd (`SMTP_SINK_PYTHON`, which .ci/setup sets; else `python3`).
fn python() -> String {
    std::env::var("SMTP_SINK_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// aiosmtpd on a free port, delivering into `dir/mail` (a maildir).
struct SmtpSink {
    child: std::process::Child,
    maildir: std::path::PathBuf,
}

impl SmtpSink {
    fn start(dir: &Path) -> Option<(Self, u16)> {
        let ok = std::process::Command::new(python())
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                !testkit::in_ci(),
                "aiosmtpd (SMTP_SINK_PYTHON) is required under CI=true (.ci/setup installs it)"
            );
            return None;
        }
        let port = free_port();
        let maildir = dir.join("mail");
        let child = std::process::Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .spawn()
            .unwrap();
        // Owned from here on, so it is killed and waited for on every path (Drop).
        let sink = Self { child, maildir };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some((sink, port));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("aiosmtpd did not start");
    }

    fn messages(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A webhook receiver: answers 200 and keeps each JSON body.
async fn webhook() -> (u16, Arc<Mutex<Vec<serde_json::Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let keep = received.clone();
    let app = axum::Router::new().route(
        "/services/T000/B000/secret",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, received)
}

fn config(root: &Path, alerts: &str) -> std::path::PathBuf {
    let dir = root.join("config");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")).unwrap()
    {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    let ids = std::fs::read_to_string(dir.join("ids.yml")).unwrap();
    let cut = ids.find("  # Alert destinations").unwrap();
    std::fs::write(
        dir.join("ids.yml"),
        format!("{}  alerts:\n{alerts}", &ids[..cut]),
    )
    .unwrap();
    dir
}

async fn start(root: &Path, alerts: &str, database_url: Option<String>) -> Platform {
    let options = StartOptions {
        config_dir: config(root, alerts),
        data_dir: root.join("data"),
        database_url,
        clock: Arc::new(SystemClock),
        sessions: Default::default(),
        max_upload: platform::DEFAULT_MAX_UPLOAD,
        run_modules: false,
    };
    let platform = Platform::start(options).await.unwrap().0;
    tokio::spawn(platform.edge().alerts().clone().run());
    platform
}

async fn deliveries(platform: &Platform, want: usize) -> Vec<RecordedEvent> {
    for _ in 0..300 {
        assert!(platform.audit().flush(Duration::from_secs(10)).await);
        let page = platform
            .audit()
            .search(
                &Principal::System,
                &AuditQuery {
                    events: vec![EventKind::AlertSent],
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if page.events.len() >= want {
            return page.events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {want} alert deliveries were audited");
}

async fn scenario(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let Some((smtp, smtp_port)) = SmtpSink::start(dir.path()) else {
        return;
    };
    let Some((rsyslog, syslog_port)) = Rsyslog::start(dir.path(), "udp") else {
        return;
    };
    let (slack_port, slack) = webhook().await;
    let dead_port = free_port();
    let alerts = format!(
        "    - type: \"email\"\n      recipients: [\"security@company.com\", \"oncall@company.com\"]\n      smtp:\n        host: \"127.0.0.1\"\n        port: {smtp_port}\n        from: \"wasm-as-os <alerts@company.com>\"\n\
         \x20   - type: \"slack\"\n      webhook: \"http://127.0.0.1:{slack_port}/services/T000/B000/secret\"\n\
         \x20   - type: \"slack\"\n      webhook: \"http://127.0.0.1:{dead_port}/services/T000/B000/dead\"\n\
         \x20   - type: \"syslog\"\n      facility: \"security\"\n      address: \"udp://127.0.0.1:{syslog_port}\"\n"
    );
    let platform = start(dir.path(), &alerts, database_url).await;
    let dev = support::signed_in(&platform, "dave", "developer", "example.com").await;

    // The refusal returns at once, long before the dead webhook has had its three tries.
    assert!(platform.identity().list_users(&dev).await.is_err());
    let early = platform
        .audit()
        .search(
            &Principal::System,
            &AuditQuery {
                events: vec![EventKind::AlertSent],
                outcome: Some(platform::audit::Outcome::Failure),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        early.events.is_empty(),
        "the request did not wait for the alert"
    );

    let sent = deliveries(&platform, 4).await;
    let outcome = |channel: &str, ok: bool| {
        sent.iter()
            .filter(|e| e.event.details["channel"] == channel)
            .filter(|e| (e.event.outcome == platform::audit::Outcome::Success) == ok)
            .count()
    };
    assert_eq!(outcome("email", true), 1, "{sent:?}");
    assert_eq!(outcome("syslog", true), 1, "{sent:?}");
    assert_eq!(outcome("slack", true), 1, "{sent:?}");
    assert_eq!(outcome("slack", false), 1, "{sent:?}");
    let failed = sent
        .iter()
        .find(|e| e.event.outcome == platform::audit::Outcome::Failure)
        .unwrap();
    assert_eq!(
        failed.event.details["attempts"], 3,
        "the dead webhook was retried"
    );
    let text = serde_json::to_string(&sent).unwrap();
    assert!(
        !text.contains("/services/T000"),
        "no webhook URL in the audit log: {text}"
    );

    // What each receiver got.
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("Subject: [wasm-as-os] intrusion detection: privilege_escalation"));
    assert!(mails[0].contains("security@company.com") && mails[0].contains("oncall@company.com"));
    assert!(mails[0].contains("Condition: permission_denied and target_resource = admin"));
    let posts = slack.lock().unwrap().clone();
    assert_eq!(posts.len(), 1);
    assert!(
        posts[0]["text"]
            .as_str()
            .unwrap()
            .contains("privilege_escalation")
    );
    let mut logged = String::new();
    for _ in 0..50 {
        logged = std::fs::read_to_string(&rsyslog.out).unwrap_or_default();
        if !logged.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        logged.starts_with("authpriv notice wasm-as-os-ids ids_triggered {"),
        "{logged}"
    );

    // Reported: the metric and the channel's status.
    let metrics = platform.metrics().render();
    assert!(
        metrics.contains("alerts_sent_total{channel=\"slack\",outcome=\"failure\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("alerts_sent_total{channel=\"email\",outcome=\"success\"} 1"),
        "{metrics}"
    );
    let status = platform.edge().alerts().status();
    let slack_status: Vec<_> = status.iter().filter(|s| s.channel == "slack").collect();
    assert!(
        slack_status.iter().any(|s| !s.ok && s.error.is_some()),
        "{status:?}"
    );
    assert!(
        status
            .iter()
            .all(|s| !s.error.as_deref().unwrap_or("").contains("/services/")),
        "no webhook URL in the status: {status:?}"
    );
    platform.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_reach_email_slack_and_syslog_and_a_dead_receiver_is_retried_on_sqlite() {
    scenario(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_reach_email_slack_and_syslog_and_a_dead_receiver_is_retried_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    scenario(Some(db.url.clone())).await;
    db.drop_db().await;
}
