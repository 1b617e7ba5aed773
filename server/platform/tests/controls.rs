//! soc2.yml's controls with live evidence, on SQLite and PostgreSQL with a manual clock: each check
//! that the platform can make is seen holding and failing (the repository's config, which
//! requires a second factor of admins and has HTTPS off locally).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use platform::{
    Platform,
    access::Principal,
    compliance::controls::{Control, ControlState},
    identity::{
        NewUser,
        auth::Client,
        mfa::{SignInOutcome, totp},
    },
};
use sea_orm::ConnectionTrait;
use secrecy::SecretString;

async fn controls(platform: &Platform, who: &Principal) -> Vec<Control> {
    platform.controls(who).await.unwrap()
}

fn state(list: &[Control], key: &str) -> (ControlState, String) {
    let c = list
        .iter()
        .find(|c| c.key == key)
        .unwrap_or_else(|| panic!("no control {key}"));
    (c.state, c.evidence.clone())
}

async fn flow(database_url: Option<String>) {
    let (platform, clock, _dir) = support::start_requiring(database_url).await;
    let dev = support::signed_in(&platform, "dev", "developer", "example.com").await;
    // The admin has no second factor, so signs in to a session that may enrol (and read).
    platform
        .identity()
        .create_user(
            &Principal::System,
            NewUser {
                username: "root".into(),
                email: "root@example.com".into(),
                password: SecretString::from(support::PASSWORD),
                roles: vec!["admin".into()],
            },
        )
        .await
        .unwrap();
    let SignInOutcome::SignedIn(session) = platform
        .identity()
        .sign_in(
            "root",
            &SecretString::from(support::PASSWORD),
            &Client::default(),
        )
        .await
        .unwrap()
    else {
        panic!("an admin without a factor is signed in to enrol");
    };
    let root = platform
        .identity()
        .enrolment_principal(&session, platform.session_timeouts())
        .await
        .unwrap()
        .unwrap();

    // Only `system:audit` holders see them.
    assert!(platform.controls(&dev).await.is_err());

    let list = controls(&platform, &root).await;
    assert_eq!(list.len(), 17, "every soc2.yml control");
    assert!(
        list.iter().all(|c| c.required),
        "soc2.yml sets each to true"
    );

    // Multi-factor: the admin has no factor yet, then enrols one.
    let (s, evidence) = state(&list, "multi_factor_auth");
    assert_eq!(s, ControlState::Fails, "{evidence}");
    assert!(evidence.contains("0 of 1"), "{evidence}");
    let setup = platform.identity().totp_setup(&root).await.unwrap();
    let secret = totp::base32_decode(&setup.secret).unwrap();
    let code = {
        use platform::clock::Clock;
        totp::display_code(&secret, totp::step_at(clock.now().timestamp() as u64))
    };
    platform
        .identity()
        .confirm_totp(&root, &code, &Client::default())
        .await
        .unwrap();
    let list = controls(&platform, &root).await;
    let (s, evidence) = state(&list, "multi_factor_auth");
    assert_eq!(s, ControlState::Holds, "{evidence}");
    assert!(evidence.contains("1 of 1"), "{evidence}");

    // Access controls: every enabled account holds a role, until one does not.
    assert_eq!(state(&list, "access_controls").0, ControlState::Holds);
    let dev_id = uuid::Uuid::parse_str(dev.id().unwrap()).unwrap();
    let strip = sea_orm::sea_query::Query::delete()
        .from_table("user_roles")
        .and_where(sea_orm::sea_query::ExprTrait::eq(
            sea_orm::sea_query::Expr::col("user_id"),
            dev_id,
        ))
        .to_owned();
    platform.db().execute(&strip).await.unwrap();
    let list = controls(&platform, &root).await;
    let (s, evidence) = state(&list, "access_controls");
    assert_eq!(s, ControlState::Fails, "{evidence}");
    assert!(evidence.contains("dev"), "{evidence}");

    // Monitoring: never scraped, scraped, then stale.
    assert_eq!(state(&list, "monitoring").0, ControlState::Fails);
    platform.scrape_metrics();
    let list = controls(&platform, &root).await;
    assert_eq!(state(&list, "monitoring").0, ControlState::Holds);
    clock.advance(chrono::Duration::minutes(6));
    let list = controls(&platform, &root).await;
    assert_eq!(state(&list, "monitoring").0, ControlState::Fails);

    // HTTPS is off in the local config; static analysis and the audit log are on.
    assert_eq!(state(&list, "encryption_in_transit").0, ControlState::Fails);
    assert_eq!(state(&list, "input_validation").0, ControlState::Holds);
    assert_eq!(state(&list, "access_logging").0, ControlState::Holds);
    assert_eq!(state(&list, "encryption_at_rest").0, ControlState::Holds);

    // The audit chain: intact, then a row changed behind the platform's back. The verification
    // stands for 10 minutes, then runs again.
    let (s, evidence) = state(&list, "data_integrity_checks");
    assert_eq!(s, ControlState::Holds, "{evidence}");
    assert!(
        platform
            .audit()
            .flush(std::time::Duration::from_secs(10))
            .await
    );
    platform
        .db()
        .execute_unprepared("UPDATE audit_logs SET actor_name = 'mallory' WHERE seq = 2")
        .await
        .unwrap();
    let list = controls(&platform, &root).await;
    assert_eq!(state(&list, "data_integrity_checks").0, ControlState::Holds);
    clock.advance(chrono::Duration::minutes(11));
    let list = controls(&platform, &root).await;
    let (s, evidence) = state(&list, "data_integrity_checks");
    assert_eq!(s, ControlState::Fails, "{evidence}");
    assert!(evidence.contains("broken"), "{evidence}");

    // Minimisation: the sign-ins above kept no address (service calls), so nothing is left to
    // reduce; an event with a full address from before the window is, until anonymisation runs.
    assert_eq!(state(&list, "data_minimization").0, ControlState::Holds);
    platform
        .db()
        .execute_unprepared(
            "UPDATE audit_logs SET source_ip = '203.0.113.9', ip_net = '203.0.113.0/24' WHERE seq = 1",
        )
        .await
        .unwrap();
    clock.advance(chrono::Duration::days(30));
    let list = controls(&platform, &root).await;
    let (s, evidence) = state(&list, "data_minimization");
    assert_eq!(s, ControlState::Fails, "{evidence}");
    platform.compliance().anonymise().await.unwrap();
    let list = controls(&platform, &root).await;
    assert_eq!(state(&list, "data_minimization").0, ControlState::Holds);

    // Classification: every column of the personal tables has a class; a column added without
    // one (a migration that forgot) is named. Purposes: the export and the table agree.
    let (s, evidence) = state(&list, "data_classification");
    assert_eq!(s, ControlState::Holds, "{evidence}");
    assert_eq!(state(&list, "purpose_limitation").0, ControlState::Holds);
    platform
        .db()
        .execute_unprepared("ALTER TABLE users ADD COLUMN nickname TEXT")
        .await
        .unwrap();
    let list = controls(&platform, &root).await;
    let (s, evidence) = state(&list, "data_classification");
    assert_eq!(s, ControlState::Fails, "{evidence}");
    assert!(evidence.contains("users.nickname"), "{evidence}");

    // What the product cannot do yet says so.
    for key in [
        "backup_testing",
        "disaster_recovery",
        "secure_disposal",
        "consent_management",
    ] {
        assert_eq!(state(&list, key).0, ControlState::NotBuilt, "{key}");
    }
    // A failing control says how to fix it.
    assert!(
        list.iter()
            .filter(|c| c.state == ControlState::Fails)
            .all(|c| c.fix.is_some())
    );
}

#[tokio::test]
async fn controls_on_sqlite() {
    flow(None).await;
}

#[tokio::test]
async fn controls_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    flow(Some(db.url.clone())).await;
    db.drop_db().await;
}
