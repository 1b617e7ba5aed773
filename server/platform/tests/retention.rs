//! Retention (privacy.yml `data_retention`: audit_logs 7y, user_data 2y, module_data 1y) with an
//! injected clock, SQLite always and PostgreSQL on a fresh database: a dry run reports and
//! removes nothing; a run removes exactly what is past each period (an account not signed in for
//! two years is erased, a module not run for a year is deleted, audit events older than seven
//! years are pruned behind a signed checkpoint) and nothing younger; the chain still verifies; a
//! second run finds nothing; a forged checkpoint is caught.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use platform::{Platform, access::Principal, identity::auth::Client};
use sea_orm::{ConnectionTrait, Statement};
use secrecy::SecretString;

async fn audit_rows(platform: &Platform) -> i64 {
    platform
        .audit()
        .flush(std::time::Duration::from_secs(10))
        .await;
    let db = platform.db();
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT COUNT(*) AS n FROM audit_logs",
    ))
    .await
    .unwrap()
    .unwrap()
    .try_get::<i64>("", "n")
    .unwrap()
}

async fn retention(database_url: Option<String>) {
    let (platform, clock, _dir) = support::start_with_clock(database_url, true).await;
    let identity = platform.identity();
    let compliance = platform.compliance();
    let _admin = support::signed_in(&platform, "root", "admin", "admin.example").await;
    let stale = support::signed_in(&platform, "stale", "developer", "stale.example").await;
    let active = support::signed_in(&platform, "active", "developer", "active.example").await;
    let old_tool = support::upload_wat(&platform, &stale, "old-tool", support::ADD).await;
    let used_tool = support::upload_wat(&platform, &active, "used-tool", support::ADD).await;
    let events_at_start = audit_rows(&platform).await;

    // Two years and a day on: "active" signs in again and runs "used-tool"; the rest is stale.
    clock.advance(chrono::Duration::days(2 * 365 + 1));
    identity
        .login(
            "active",
            &SecretString::from(support::PASSWORD),
            &Client::default(),
        )
        .await
        .unwrap();
    identity
        .login(
            "root",
            &SecretString::from(support::PASSWORD),
            &Client::default(),
        )
        .await
        .unwrap();
    support::run_add(&platform, &active, &used_tool).await;

    let before = audit_rows(&platform).await;
    let dry = compliance.run_retention(true).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.accounts, ["stale"]);
    assert_eq!(dry.modules, ["old-tool"]);
    assert_eq!((dry.audit_events, dry.metrics), (0, 0));
    assert_eq!(
        audit_rows(&platform).await,
        before,
        "a dry run records nothing"
    );
    assert!(
        platform
            .modules()
            .get(&Principal::System, &old_tool)
            .await
            .is_ok()
    );
    assert!(
        compliance
            .list_erasures(&Principal::System, false)
            .await
            .unwrap()
            .is_empty()
    );

    let done = compliance.run_retention(false).await.unwrap();
    assert_eq!(
        (done.accounts.clone(), done.modules.clone()),
        (dry.accounts, dry.modules)
    );
    assert!(
        platform
            .modules()
            .get(&Principal::System, &old_tool)
            .await
            .is_err()
    );
    assert!(
        platform
            .modules()
            .get(&Principal::System, &used_tool)
            .await
            .is_ok()
    );
    let erasures = compliance
        .list_erasures(&Principal::System, false)
        .await
        .unwrap();
    assert_eq!(erasures.len(), 1);
    assert_eq!(
        (erasures[0].origin.as_str(), erasures[0].status.as_str()),
        ("retention", "scheduled")
    );
    support::run_erasure_to_end(&platform, &clock).await;
    let mut users: Vec<String> = identity
        .list_users(&Principal::System)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    users.sort();
    assert_eq!(users, ["active", "root"], "the stale account was erased");

    // Idempotent: nothing more is due now.
    let again = compliance.run_retention(false).await.unwrap();
    assert!(
        again.accounts.is_empty() && again.modules.is_empty(),
        "{again:?}"
    );

    // Seven years and a day after the start: the events of the first day are pruned, the rest
    // verify from the checkpoint.
    clock.advance(chrono::Duration::days(5 * 365 + 1));
    identity
        .login(
            "active",
            &SecretString::from(support::PASSWORD),
            &Client::default(),
        )
        .await
        .unwrap();
    support::run_add(&platform, &active, &used_tool).await;
    let total = audit_rows(&platform).await;
    let dry = compliance.run_retention(true).await.unwrap();
    assert_eq!(dry.audit_events as i64, events_at_start);
    assert_eq!(
        audit_rows(&platform).await,
        total,
        "a dry run removes nothing"
    );
    let done = compliance.run_retention(false).await.unwrap();
    assert_eq!(done.audit_events as i64, events_at_start);
    // The run's own event is recorded after the pruning.
    assert_eq!(audit_rows(&platform).await, total - events_at_start + 1);
    let check = platform.audit().verify_database().await.unwrap();
    assert_eq!(check.broken, None, "{check:?}");
    assert_eq!(check.verified as i64, total - events_at_start + 1);
    assert_eq!(
        compliance.run_retention(false).await.unwrap().audit_events,
        0
    );

    // Pruning without the key: deleting the oldest remaining row is caught, and so is a forged
    // checkpoint.
    let db = platform.db();
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_string(
        backend,
        "UPDATE audit_checkpoints SET pruned = pruned + 1",
    ))
    .await
    .unwrap();
    let forged = platform.audit().verify_database().await.unwrap();
    let reason = forged.broken.map(|b| b.to_string()).unwrap_or_default();
    assert!(reason.contains("not signed with the chain key"), "{reason}");
    platform.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_sqlite() {
    retention(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    retention(Some(db.url.clone())).await;
    db.drop_db().await;
}
