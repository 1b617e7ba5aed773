//! Storage and the audit core on both engines: SQLite always, PostgreSQL when TEST_POSTGRES_URL is set.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

use std::{path::Path, sync::Arc};

use chrono::{TimeZone, Utc};
use platform::{
    Platform, StartOptions,
    audit::{Actor, AuditEvent, EventKind, Outcome},
    clock::ManualClock,
};

async fn start(data_dir: &Path, database_url: Option<String>, clock: ManualClock) -> Platform {
    let options = StartOptions {
        config_dir: data_dir.join("no-config"),
        data_dir: data_dir.to_path_buf(),
        database_url,
        clock: Arc::new(clock),
        sessions: Default::default(),
        max_upload: platform::DEFAULT_MAX_UPLOAD,
        run_modules: false,
    };
    Platform::start(options).await.unwrap().0
}

async fn audit_events_round_trip(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap());
    let platform = start(dir.path(), database_url, clock.clone()).await;
    assert!(platform.readiness().await.ready());

    let event = AuditEvent::new(
        EventKind::LoginFailure,
        Actor::user("u-1", "alice"),
        Outcome::Failure,
    )
    .with_client(Some("203.0.113.9".into()), Some("curl/8".into()))
    .with_target("user", "u-1")
    .with_details(serde_json::json!({"reason": "wrong password"}));
    let first = platform
        .audit()
        .record(event.clone())
        .await
        .unwrap()
        .expect("login_failure is listed in audit.yml");
    clock.advance(chrono::Duration::seconds(10));
    let second = platform
        .audit()
        .record(AuditEvent::new(
            EventKind::ServiceStart,
            Actor::system(),
            Outcome::Success,
        ))
        .await
        .unwrap()
        .unwrap();

    let recent = platform.audit().recent(10).await.unwrap();
    assert_eq!(
        recent,
        vec![second.clone(), first.clone()],
        "newest first, read back unchanged"
    );
    assert_eq!(
        first.timestamp,
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        "the injected clock stamps events"
    );
    // privacy.yml data_anonymization adds the reduced address and user agent at record time.
    let mut stored = event;
    stored.ip_net = Some("203.0.113.0/24".into());
    stored.ua_family = Some("curl 8".into());
    assert_eq!(recent[1].event, stored);
    platform.close().await;
}

#[tokio::test]
async fn audit_events_round_trip_on_sqlite() {
    audit_events_round_trip(None).await;
}

#[tokio::test]
async fn audit_events_round_trip_on_postgres() {
    let Some(pg) = testkit::FreshDb::create().await else {
        return;
    };
    audit_events_round_trip(Some(pg.url.clone())).await;
    pg.drop_db().await;
}

#[tokio::test]
async fn events_left_out_of_audit_yml_are_not_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let config_dir = dir.path().join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("audit.yml"),
        "audit:\n  events:\n    authentication: [\"login_failure\"]\n    system: []\n",
    )
    .unwrap();
    let options = StartOptions {
        config_dir,
        data_dir: dir.path().join("data"),
        database_url: None,
        clock: Arc::new(platform::clock::SystemClock),
        sessions: Default::default(),
        max_upload: platform::DEFAULT_MAX_UPLOAD,
        run_modules: false,
    };
    let (platform, _) = Platform::start(options).await.unwrap();
    let audit = platform.audit();
    assert!(
        audit
            .record(AuditEvent::new(
                EventKind::ServiceStart,
                Actor::system(),
                Outcome::Success
            ))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        audit
            .record(AuditEvent::new(
                EventKind::LoginFailure,
                Actor::system(),
                Outcome::Failure
            ))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        audit
            .record(AuditEvent::new(
                EventKind::UserDisable,
                Actor::system(),
                Outcome::Success
            ))
            .await
            .unwrap()
            .is_some(),
        "events beyond the spec are always kept"
    );
    assert_eq!(audit.recent(10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_first_start_generates_a_jwt_secret_and_a_storage_key_and_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc::now());
    let options = StartOptions {
        config_dir: dir.path().join("none"),
        data_dir: dir.path().to_path_buf(),
        database_url: None,
        clock: Arc::new(clock),
        sessions: Default::default(),
        max_upload: platform::DEFAULT_MAX_UPLOAD,
        run_modules: false,
    };
    let (first, notices) = Platform::start(options.clone()).await.unwrap();
    assert_eq!(
        notices,
        vec![
            platform::Notice::GeneratedJwtSecret {
                path: dir.path().join("jwt_secret")
            },
            platform::Notice::GeneratedStorageKey {
                path: dir.path().join("storage_key")
            },
        ]
    );
    use secrecy::ExposeSecret;
    let secret = first.jwt_secret().expose_secret().to_string();
    assert!(secret.len() >= 64);
    first.close().await;
    let (second, notices) = Platform::start(options).await.unwrap();
    assert!(notices.is_empty());
    assert_eq!(second.jwt_secret().expose_secret(), secret);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["jwt_secret", "storage_key"] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
}

#[tokio::test]
async fn an_unreachable_postgres_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let options = StartOptions {
        config_dir: dir.path().join("none"),
        data_dir: dir.path().to_path_buf(),
        database_url: Some("postgres://nobody@127.0.0.1:1/nothing".into()),
        clock: Arc::new(platform::clock::SystemClock),
        sessions: Default::default(),
        max_upload: platform::DEFAULT_MAX_UPLOAD,
        run_modules: false,
    };
    let err = Platform::start(options).await.unwrap_err().to_string();
    assert!(
        err.starts_with("cannot connect to the PostgreSQL (nothing on 127.0.0.1) database"),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
}

/// The security dashboard's counts come from the recorded events, per hour, inside the window only.
async fn security_overview_counts_per_hour(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 2, 1, 30, 0).unwrap());
    let platform = start(dir.path(), database_url, clock.clone()).await;
    let record = |kind: EventKind, outcome: Outcome| {
        let platform = platform.clone();
        async move {
            platform
                .audit()
                .record(AuditEvent::new(kind, Actor::user("u-1", "alice"), outcome))
                .await
                .unwrap()
        }
    };
    record(EventKind::LoginFailure, Outcome::Failure).await; // 01:30, before the window
    clock.advance(chrono::Duration::minutes(95)); // 03:05
    record(EventKind::LoginFailure, Outcome::Failure).await;
    record(EventKind::LoginFailure, Outcome::Failure).await;
    record(EventKind::PermissionDenied, Outcome::Denied).await;
    record(EventKind::LoginSuccess, Outcome::Success).await; // not charted
    clock.advance(chrono::Duration::minutes(54)); // 03:59, still the 03:00 bucket
    record(EventKind::PermissionDenied, Outcome::Denied).await;
    clock.advance(chrono::Duration::minutes(66)); // 05:05
    for _ in 0..3 {
        record(EventKind::ModuleExecute, Outcome::Success).await;
    }
    record(EventKind::SandboxViolation, Outcome::Denied).await;
    platform.audit().recent(1).await.unwrap(); // the database destination has caught up

    // Four hourly buckets ending with the current hour: 02:00, 03:00, 04:00, 05:00.
    let overview = platform
        .security_overview(&platform::access::Principal::System, 4)
        .await
        .unwrap();
    assert_eq!(
        overview.buckets.first().copied(),
        Some(Utc.with_ymd_and_hms(2026, 1, 2, 2, 0, 0).unwrap())
    );
    let counts = |event: &str| {
        let s = overview.series.iter().find(|s| s.event == event).unwrap();
        (s.counts.clone(), s.total)
    };
    assert_eq!(counts("login_failure"), (vec![0, 2, 0, 0], 2));
    assert_eq!(counts("permission_denied"), (vec![0, 2, 0, 0], 2));
    assert_eq!(counts("module_execute"), (vec![0, 0, 0, 3], 3));
    assert_eq!(counts("sandbox_violation"), (vec![0, 0, 0, 1], 1));

    let nobody = platform::access::Principal::User {
        id: "u-2".into(),
        username: "bob".into(),
        roles: vec![],
        permissions: Default::default(),
    };
    assert!(matches!(
        platform.security_overview(&nobody, 4).await,
        Err(platform::security::SecurityError::Forbidden(p)) if p == "metrics:read"
    ));
    platform.close().await;
}

#[tokio::test]
async fn security_overview_counts_per_hour_on_sqlite() {
    security_overview_counts_per_hour(None).await;
}

#[tokio::test]
async fn security_overview_counts_per_hour_on_postgres() {
    let Some(pg) = testkit::FreshDb::create().await else {
        return;
    };
    security_overview_counts_per_hour(Some(pg.url.clone())).await;
    pg.drop_db().await;
}
