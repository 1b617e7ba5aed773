//! Rate limits, IP lists and intrusion detection, on the services with an injected clock and the
//! repository's config (the spec's rate_limit.yml and ids.yml, with loopback whitelisted):
//! brute force from one address blocks that address for the rule's hour and no other, a
//! whitelisted address is never blocked, a blacklisted one never passes, the sign-in budget
//! refuses a burst with the wait, unusually many runs throttle the user, a refusal on an admin
//! resource raises an alert, and an admin can lift a block (audited).
//! SQLite always, PostgreSQL on a fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::{net::IpAddr, time::Duration};

use platform::{
    Platform,
    access::Principal,
    audit::{Actor, AuditEvent, AuditQuery, EventKind, Outcome},
    clock::ManualClock,
    edge::{Action, EdgeError, GateRequest, Scope, Who},
    identity::auth::{AuthError, Client},
};
use secrecy::SecretString;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn from(address: &str) -> Client {
    Client {
        ip: Some(address.to_string()),
        user_agent: Some("curl/8.5.0".into()),
    }
}

async fn gate(platform: &Platform, address: &str) -> Result<(), EdgeError> {
    platform
        .edge()
        .gate(&GateRequest {
            ip: ip(address),
            user: None,
            method: "GET",
            path: "/api/v1/me",
            counted: true,
        })
        .await
        .map(|_| ())
}

/// One wrong password from `address`, 12 s after the last (the sign-in budget's pace: 5 a
/// minute, so every attempt reaches the password check).
async fn wrong_password(platform: &Platform, clock: &ManualClock, address: &str) {
    clock.advance(chrono::Duration::seconds(12));
    let wrong = SecretString::from("Not-The-Password-1!");
    let got = platform
        .identity()
        .login("alice", &wrong, &from(address))
        .await;
    assert!(
        matches!(got, Err(AuthError::InvalidCredentials)),
        "{address}: {got:?}"
    );
}

async fn events(platform: &Platform, kind: EventKind) -> Vec<AuditEvent> {
    assert!(platform.audit().flush(Duration::from_secs(10)).await);
    let query = AuditQuery {
        events: vec![kind],
        ..AuditQuery::default()
    };
    let page = platform
        .audit()
        .search(&Principal::System, &query)
        .await
        .unwrap();
    page.events.into_iter().map(|e| e.event).collect()
}

async fn brute_force(database_url: Option<String>) {
    let (platform, clock, _dir) = support::start_with_clock(database_url, false).await;
    let admin = support::signed_in(&platform, "alice", "admin", "example.com").await;

    // Five failures within five minutes are not more than five.
    for _ in 0..5 {
        wrong_password(&platform, &clock, "203.0.113.7").await;
    }
    gate(&platform, "203.0.113.7").await.unwrap();
    // The sixth blocks the address, on every route.
    wrong_password(&platform, &clock, "203.0.113.7").await;
    let refused = gate(&platform, "203.0.113.7").await.unwrap_err();
    assert!(matches!(refused, EdgeError::Blocked { .. }), "{refused:?}");
    assert_eq!(refused.retry_after(), Some(3600));
    let healthz = platform
        .edge()
        .gate(&GateRequest {
            ip: ip("203.0.113.7"),
            user: None,
            method: "GET",
            path: "/healthz",
            counted: false,
        })
        .await;
    assert!(matches!(healthz, Err(EdgeError::Blocked { .. })));
    // Another address is not affected.
    gate(&platform, "203.0.113.8").await.unwrap();

    let blocked = events(&platform, EventKind::IpBlocked).await;
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert_eq!(blocked[0].ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(blocked[0].details["rule"], "brute_force_login");
    let list = platform.edge().blocks(&admin).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].rule, "brute_force_login");

    // The block lasts the rule's hour.
    clock.advance(chrono::Duration::minutes(59));
    assert!(gate(&platform, "203.0.113.7").await.is_err());
    clock.advance(chrono::Duration::minutes(2));
    gate(&platform, "203.0.113.7").await.unwrap();
    assert!(platform.edge().blocks(&admin).await.unwrap().is_empty());

    // A whitelisted address (config: 10.0.0.0/8) is never blocked, however often it fails.
    for _ in 0..10 {
        wrong_password(&platform, &clock, "10.1.2.3").await;
    }
    gate(&platform, "10.1.2.3").await.unwrap();
    // A blacklisted one (192.0.2.0/24) never passes, even with no history.
    assert!(matches!(
        gate(&platform, "192.0.2.44").await,
        Err(EdgeError::Blacklisted)
    ));
    platform.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn six_wrong_passwords_block_the_address_for_an_hour_on_sqlite() {
    brute_force(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn six_wrong_passwords_block_the_address_for_an_hour_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    brute_force(Some(db.url.clone())).await;
    db.drop_db().await;
}

async fn budgets_and_unblock(database_url: Option<String>) {
    let (platform, clock, _dir) = support::start_with_clock(database_url, false).await;
    let admin = support::signed_in(&platform, "root", "admin", "example.com").await;
    let viewer = support::signed_in(&platform, "vera", "viewer", "example.com").await;
    let wrong = SecretString::from("Not-The-Password-1!");
    let identity = platform.identity();

    // rate_limit.yml: /api/v1/auth/login is 5 a minute with a burst of 2.
    for _ in 0..2 {
        let got = identity.login("vera", &wrong, &from("198.51.100.20")).await;
        assert!(matches!(got, Err(AuthError::InvalidCredentials)), "{got:?}");
    }
    let third = identity.login("vera", &wrong, &from("198.51.100.20")).await;
    let Err(AuthError::Limited(limited)) = third else {
        panic!("a third attempt at once is refused: {third:?}");
    };
    assert!(
        matches!(
            limited,
            EdgeError::RateLimited {
                scope: Scope::Endpoint,
                ..
            }
        ),
        "{limited:?}"
    );
    assert_eq!(limited.retry_after(), Some(12));
    assert_eq!(limited.budget().unwrap().limit, 5);
    // The right password is refused too while over the budget, and another address is not.
    let right = SecretString::from(support::PASSWORD);
    assert!(matches!(
        identity.login("vera", &right, &from("198.51.100.20")).await,
        Err(AuthError::Limited(_))
    ));
    identity
        .login("vera", &right, &from("198.51.100.21"))
        .await
        .unwrap();
    clock.advance(chrono::Duration::seconds(12));
    identity
        .login("vera", &right, &from("198.51.100.20"))
        .await
        .unwrap();
    let exceeded = events(&platform, EventKind::RateLimitExceeded).await;
    assert_eq!(
        exceeded.len(),
        1,
        "one event for the refusals of one minute"
    );
    assert_eq!(exceeded[0].ip.as_deref(), Some("198.51.100.20"));
    assert_eq!(exceeded[0].details["scope"], "endpoint");
    let metrics = platform.metrics().render();
    assert!(
        metrics.contains("rate_limit_violations_total{scope=\"endpoint\"} 2"),
        "{metrics}"
    );

    // An admin lifts a block; a viewer may not; both audited.
    for _ in 0..6 {
        clock.advance(chrono::Duration::seconds(12));
        let _ = identity.login("vera", &wrong, &from("203.0.113.50")).await;
    }
    assert!(gate(&platform, "203.0.113.50").await.is_err());
    assert!(
        platform
            .edge()
            .unblock(&viewer, ip("203.0.113.50"))
            .await
            .is_err()
    );
    platform
        .edge()
        .unblock(&admin, ip("203.0.113.50"))
        .await
        .unwrap();
    gate(&platform, "203.0.113.50").await.unwrap();
    let unblocked = events(&platform, EventKind::IpUnblocked).await;
    assert_eq!(unblocked.len(), 1);
    assert_eq!(unblocked[0].actor.name, "root");
    assert!(
        platform
            .edge()
            .unblock(&admin, ip("203.0.113.50"))
            .await
            .is_err(),
        "nothing left to lift"
    );
    platform.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sign_in_budget_refuses_a_burst_and_admins_lift_blocks_on_sqlite() {
    budgets_and_unblock(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sign_in_budget_refuses_a_burst_and_admins_lift_blocks_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    budgets_and_unblock(Some(db.url.clone())).await;
    db.drop_db().await;
}

/// ids.yml `unusual_execution_pattern` (`execution_rate > 1000/min` → throttle) counts the runs
/// the executor records; `privilege_escalation` alerts on a refusal on an admin resource.
#[tokio::test(flavor = "multi_thread")]
async fn many_runs_throttle_the_user_and_admin_refusals_raise_an_alert() {
    let (platform, clock, _dir) = support::start_with_clock(None, false).await;
    let dev = support::signed_in(&platform, "dave", "developer", "example.com").await;
    let dev_id = dev.id().unwrap().to_string();
    let run = || {
        AuditEvent::new(
            EventKind::ModuleExecute,
            Actor::user(dev_id.clone(), "dave"),
            Outcome::Success,
        )
        .with_details(serde_json::json!({ "duration_ms": 1.0 }))
    };
    for _ in 0..1000 {
        platform.audit().record(run()).await.unwrap();
    }
    platform
        .edge()
        .admit(Action::Run, Who::User(&dev_id), None)
        .await
        .unwrap();
    platform.audit().record(run()).await.unwrap();
    let refused = platform
        .edge()
        .admit(Action::Run, Who::User(&dev_id), None)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, EdgeError::Throttled { .. }),
        "{refused:?}"
    );
    assert_eq!(refused.retry_after(), Some(15 * 60));
    clock.advance(chrono::Duration::minutes(16));
    platform
        .edge()
        .admit(Action::Run, Who::User(&dev_id), None)
        .await
        .unwrap();

    // A developer refused `users:create` (admin only) raises the alert rule; `modules:delete`
    // on someone else's module does not.
    let err = platform.identity().list_users(&dev).await;
    assert!(err.is_err());
    let triggered = events(&platform, EventKind::IdsTriggered).await;
    let rules: Vec<&str> = triggered
        .iter()
        .filter_map(|e| e.details["rule"].as_str())
        .collect();
    assert!(rules.contains(&"unusual_execution_pattern"), "{rules:?}");
    assert!(rules.contains(&"privilege_escalation"), "{rules:?}");
    let metrics = platform.metrics().render();
    assert!(
        metrics.contains("ids_triggers_total{action=\"throttle\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ids_triggers_total{action=\"alert\"} 1"),
        "{metrics}"
    );
    platform.close().await;
}
