//! Second factors through the identity service, on SQLite and PostgreSQL with a manual clock:
//! enrolling an authenticator app, the second step of a sign-in, replays, recovery codes, lockout
//! and its expiry, challenges that expire, soc2.yml's requirement and an administrator's reset.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use platform::{
    Platform,
    access::Principal,
    audit::{AuditQuery, EventKind},
    clock::ManualClock,
    identity::{
        NewUser,
        auth::{AuthError, Client},
        mfa::{SecondFactor, SignInOutcome, totp},
    },
};
use secrecy::SecretString;
use support::PASSWORD;

/// The code the phone would show now.
fn code_now(secret: &[u8], clock: &ManualClock) -> String {
    use platform::clock::Clock;
    totp::display_code(secret, totp::step_at(clock.now().timestamp() as u64))
}

fn password() -> SecretString {
    SecretString::from(PASSWORD)
}

fn client() -> Client {
    // No address: rate_limit.yml's sign-in budget (per address) is not what these tests are about.
    Client {
        ip: None,
        user_agent: Some("mfa-test".into()),
    }
}

async fn create(platform: &Platform, name: &str, role: &str) {
    platform
        .identity()
        .create_user(
            &Principal::System,
            NewUser {
                username: name.into(),
                email: format!("{name}@example.com"),
                password: password(),
                roles: vec![role.into()],
            },
        )
        .await
        .unwrap();
}

/// Signs `name` in for the API; the challenge it is asked to answer.
async fn challenge_of(platform: &Platform, name: &str) -> String {
    match platform
        .identity()
        .login(name, &password(), &client())
        .await
    {
        Err(AuthError::MfaRequired { challenge, .. }) => challenge,
        other => panic!("expected mfa_required, got {other:?}"),
    }
}

async fn events(platform: &Platform, kind: EventKind) -> Vec<serde_json::Value> {
    support::events_json(platform, kind).await
}

/// Enrols an authenticator app for `who` (a signed-in principal); its secret and recovery codes.
async fn enrol(
    platform: &Platform,
    clock: &ManualClock,
    who: &Principal,
) -> (Vec<u8>, Vec<String>) {
    let identity = platform.identity();
    let setup = identity.totp_setup(who).await.unwrap();
    assert!(
        setup.uri.starts_with("otpauth://totp/wasm-as-os:"),
        "{}",
        setup.uri
    );
    assert!(setup.qr_svg.starts_with("<svg") && setup.qr_svg.ends_with("</svg>"));
    // Showing the page again shows the same waiting secret.
    assert_eq!(identity.totp_setup(who).await.unwrap().secret, setup.secret);
    let secret = totp::base32_decode(&setup.secret).unwrap();
    assert_eq!(secret.len(), totp::SECRET_BYTES);
    let codes = identity
        .confirm_totp(who, &code_now(&secret, clock), &client())
        .await
        .unwrap();
    (secret, codes)
}

async fn totp_flow(database_url: Option<String>) {
    let (platform, clock, dir) = support::start_with_clock(database_url, false).await;
    let identity = platform.identity();
    let alice = support::signed_in(&platform, "alice", "developer", "example.com").await;

    // A wrong first code enrols nothing and is audited.
    let setup = identity.totp_setup(&alice).await.unwrap();
    let secret = totp::base32_decode(&setup.secret).unwrap();
    let wrong = identity.confirm_totp(&alice, "000000", &client()).await;
    assert!(wrong.is_err());
    let wrong = identity
        .confirm_totp(&alice, "12ab", &client())
        .await
        .unwrap_err();
    assert!(wrong.to_string().contains("6 digits"), "{wrong}");
    let status = identity.mfa_status(&alice).await.unwrap();
    assert!(status.totp.is_none() && status.recovery_codes_left == 0);
    assert_eq!(events(&platform, EventKind::MfaFailure).await.len(), 2);
    // Until confirmed, the password alone still signs in.
    identity
        .login("alice", &password(), &client())
        .await
        .unwrap();

    let codes = identity
        .confirm_totp(&alice, &code_now(&secret, &clock), &client())
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    let status = identity.mfa_status(&alice).await.unwrap();
    assert!(status.totp.is_some());
    assert_eq!(status.recovery_codes_left, 10);
    assert!(!status.required, "developers are not required to enrol");
    assert_eq!(events(&platform, EventKind::MfaEnrolled).await.len(), 1);
    // A second app cannot be started while one is enrolled.
    assert!(identity.totp_setup(&alice).await.is_err());

    // The secret is not kept in the clear anywhere in the data dir.
    let raw = testkit::files_holding(dir.path(), &secret);
    let text = testkit::files_holding(dir.path(), setup.secret.as_bytes());
    assert!(raw.is_empty() && text.is_empty(), "{raw:?} {text:?}");

    // The password now leads to a challenge; the code used to confirm cannot be replayed.
    let challenge = challenge_of(&platform, "alice").await;
    let replay = identity
        .complete_login_mfa(
            &challenge,
            &SecondFactor::Totp(code_now(&secret, &clock)),
            &client(),
        )
        .await;
    assert!(matches!(replay, Err(AuthError::MfaWrongCode)), "{replay:?}");
    // Malformed codes are refused the same way (four wrong in a row: one short of the lockout).
    for bad in ["", "12345", "abcdef"] {
        let r = identity
            .complete_login_mfa(&challenge, &SecondFactor::Totp(bad.into()), &client())
            .await;
        assert!(matches!(r, Err(AuthError::MfaWrongCode)), "{bad:?}: {r:?}");
    }
    // The next step's code works once, and gives a working token pair.
    clock.advance(chrono::Duration::seconds(30));
    let code = code_now(&secret, &clock);
    let pair = identity
        .complete_login_mfa(&challenge, &SecondFactor::Totp(code.clone()), &client())
        .await
        .unwrap();
    identity.authenticate(&pair.access_token).await.unwrap();
    // The challenge is spent, and the same code does not open another one.
    let again = identity
        .complete_login_mfa(&challenge, &SecondFactor::Totp(code.clone()), &client())
        .await;
    assert!(matches!(again, Err(AuthError::MfaChallenge)), "{again:?}");
    let second = challenge_of(&platform, "alice").await;
    let replay = identity
        .complete_login_mfa(&second, &SecondFactor::Totp(code), &client())
        .await;
    assert!(matches!(replay, Err(AuthError::MfaWrongCode)), "{replay:?}");

    // The browser sign-in asks for the same second step and ends in a full session.
    let outcome = identity
        .sign_in("alice", &password(), &client())
        .await
        .unwrap();
    let SignInOutcome::SecondFactor { challenge } = outcome else {
        panic!("expected a second step, got {outcome:?}");
    };
    clock.advance(chrono::Duration::seconds(30));
    let user = identity
        .complete_sign_in_mfa(
            &challenge,
            &SecondFactor::from_input(&code_now(&secret, &clock)),
            &client(),
        )
        .await
        .unwrap();
    assert!(!user.must_enrol);
    let successes = events(&platform, EventKind::MfaSuccess).await;
    assert_eq!(successes.len(), 2);
    assert_eq!(successes[0]["details"]["factor"], "totp");

    // Recovery codes: each works once, in any case and with or without the dash.
    let challenge = challenge_of(&platform, "alice").await;
    let typed = codes[0].to_uppercase().replace('-', " ");
    identity
        .complete_login_mfa(&challenge, &SecondFactor::RecoveryCode(typed), &client())
        .await
        .unwrap();
    let used = events(&platform, EventKind::RecoveryCodeUsed).await;
    assert_eq!(used.len(), 1);
    assert_eq!(used[0]["details"]["remaining"], 9);
    let challenge = challenge_of(&platform, "alice").await;
    let reused = identity
        .complete_login_mfa(
            &challenge,
            &SecondFactor::RecoveryCode(codes[0].clone()),
            &client(),
        )
        .await;
    assert!(matches!(reused, Err(AuthError::MfaWrongCode)), "{reused:?}");
    assert_eq!(
        identity
            .mfa_status(&alice)
            .await
            .unwrap()
            .recovery_codes_left,
        9
    );

    // New codes void the old set.
    let fresh = identity.regenerate_recovery_codes(&alice).await.unwrap();
    let old = identity
        .complete_login_mfa(
            &challenge,
            &SecondFactor::RecoveryCode(codes[1].clone()),
            &client(),
        )
        .await;
    assert!(matches!(old, Err(AuthError::MfaWrongCode)), "{old:?}");
    identity
        .complete_login_mfa(
            &challenge,
            &SecondFactor::RecoveryCode(fresh[0].clone()),
            &client(),
        )
        .await
        .unwrap();

    // Nothing secret reaches the audit trail.
    assert!(
        platform
            .audit()
            .flush(std::time::Duration::from_secs(10))
            .await
    );
    let all = platform
        .audit()
        .search(
            &Principal::System,
            &AuditQuery {
                limit: 500,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let text = serde_json::to_string(&all.events).unwrap();
    assert!(!text.contains(&setup.secret));
    assert!(
        fresh
            .iter()
            .chain(&codes)
            .all(|c| !text.contains(c.as_str()))
    );

    // Removing the app (allowed: developers are not required to have one) ends the second step.
    identity.remove_totp(&alice).await.unwrap();
    identity
        .login("alice", &password(), &client())
        .await
        .unwrap();
    assert_eq!(events(&platform, EventKind::MfaRemoved).await.len(), 1);
}

#[tokio::test]
async fn totp_and_recovery_codes_on_sqlite() {
    totp_flow(None).await;
}

#[tokio::test]
async fn totp_and_recovery_codes_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    totp_flow(Some(db.url.clone())).await;
    db.drop_db().await;
}

async fn lockout_flow(database_url: Option<String>) {
    let (platform, clock, _dir) = support::start_with_clock(database_url, false).await;
    let identity = platform.identity();
    let bob = support::signed_in(&platform, "bob", "operator", "example.com").await;
    let (secret, _) = enrol(&platform, &clock, &bob).await;
    clock.advance(chrono::Duration::seconds(30));

    let challenge = challenge_of(&platform, "bob").await;
    for attempt in 1..=4 {
        let r = identity
            .complete_login_mfa(&challenge, &SecondFactor::Totp("000000".into()), &client())
            .await;
        assert!(
            matches!(r, Err(AuthError::MfaWrongCode)),
            "attempt {attempt}: {r:?}"
        );
    }
    let fifth = identity
        .complete_login_mfa(
            &challenge,
            &SecondFactor::RecoveryCode("aaaaa-aaaaa".into()),
            &client(),
        )
        .await;
    assert!(
        matches!(fifth, Err(AuthError::MfaLocked { retry_after: 900 })),
        "{fifth:?}"
    );
    // While locked, even the right code is refused.
    let locked = identity
        .complete_login_mfa(
            &challenge,
            &SecondFactor::Totp(code_now(&secret, &clock)),
            &client(),
        )
        .await;
    assert!(
        matches!(locked, Err(AuthError::MfaLocked { .. })),
        "{locked:?}"
    );
    let failures = events(&platform, EventKind::MfaFailure).await;
    assert_eq!(failures.len(), 6);
    assert!(failures.iter().any(|e| e["details"]["reason"] == "locked"));
    assert!(
        failures
            .iter()
            .any(|e| e["details"]["locked_minutes"] == 15)
    );
    let metrics = platform.metrics().render();
    assert!(
        metrics.contains("authentication_failures_total{reason=\"mfa_failed\"} 6"),
        "{metrics}"
    );

    // Fifteen minutes on, the lock is over (the old challenge has expired: sign in again).
    clock.advance(chrono::Duration::minutes(15));
    let expired = identity
        .complete_login_mfa(
            &challenge,
            &SecondFactor::Totp(code_now(&secret, &clock)),
            &client(),
        )
        .await;
    assert!(
        matches!(expired, Err(AuthError::MfaChallenge)),
        "{expired:?}"
    );
    let reasons: Vec<_> = events(&platform, EventKind::MfaFailure)
        .await
        .iter()
        .map(|e| e["details"]["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(
        reasons.contains(&"challenge_expired".to_string()),
        "{reasons:?}"
    );
    let challenge = challenge_of(&platform, "bob").await;
    identity
        .complete_login_mfa(
            &challenge,
            &SecondFactor::Totp(code_now(&secret, &clock)),
            &client(),
        )
        .await
        .unwrap();
    // An unknown challenge is refused and audited without an account.
    let unknown = identity
        .complete_login_mfa(
            "not-a-challenge",
            &SecondFactor::Totp("123456".into()),
            &client(),
        )
        .await;
    assert!(
        matches!(unknown, Err(AuthError::MfaChallenge)),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn lockout_and_expiry_on_sqlite() {
    lockout_flow(None).await;
}

#[tokio::test]
async fn lockout_and_expiry_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    lockout_flow(Some(db.url.clone())).await;
    db.drop_db().await;
}

async fn requirement_flow(database_url: Option<String>) {
    let (platform, clock, _dir) = support::start_requiring(database_url).await;
    let identity = platform.identity();
    let timeouts = platform.session_timeouts();
    create(&platform, "root", "admin").await;
    create(&platform, "dev", "developer").await;

    // An admin without a factor: the REST login is refused, the browser gets a session that
    // reaches only enrolment.
    let refused = identity.login("root", &password(), &client()).await;
    assert!(
        matches!(refused, Err(AuthError::MfaEnrolmentRequired)),
        "{refused:?}"
    );
    let SignInOutcome::SignedIn(session) = identity
        .sign_in("root", &password(), &client())
        .await
        .unwrap()
    else {
        panic!("an admin without a factor is signed in to enrol");
    };
    assert!(session.must_enrol);
    assert!(
        identity
            .session_principal(&session, timeouts)
            .await
            .unwrap()
            .is_none()
    );
    let root = identity
        .enrolment_principal(&session, timeouts)
        .await
        .unwrap()
        .unwrap();
    assert!(identity.mfa_status(&root).await.unwrap().required);
    // A developer is not required to enrol.
    identity.login("dev", &password(), &client()).await.unwrap();

    let (secret, _) = enrol(&platform, &clock, &root).await;
    // Required: it cannot be removed by its holder.
    let kept = identity.remove_totp(&root).await.unwrap_err();
    assert!(
        kept.to_string().contains("requires a second factor"),
        "{kept}"
    );
    clock.advance(chrono::Duration::seconds(30));
    let challenge = challenge_of(&platform, "root").await;
    let pair = identity
        .complete_login_mfa(
            &challenge,
            &SecondFactor::Totp(code_now(&secret, &clock)),
            &client(),
        )
        .await
        .unwrap();
    let root = identity.authenticate(&pair.access_token).await.unwrap();

    // A developer may not reset anyone's factors; an admin may, and is audited.
    let dev = {
        let pair = identity.login("dev", &password(), &client()).await.unwrap();
        identity.authenticate(&pair.access_token).await.unwrap()
    };
    let root_id = root.id().unwrap().to_string();
    assert!(identity.reset_mfa(&dev, &root_id).await.is_err());
    create(&platform, "second", "admin").await;
    let SignInOutcome::SignedIn(s) = identity
        .sign_in("second", &password(), &client())
        .await
        .unwrap()
    else {
        panic!()
    };
    let second = identity
        .enrolment_principal(&s, timeouts)
        .await
        .unwrap()
        .unwrap();
    let (second_secret, _) = enrol(&platform, &clock, &second).await;
    clock.advance(chrono::Duration::seconds(30));
    let challenge = challenge_of(&platform, "second").await;
    let pair = identity
        .complete_login_mfa(
            &challenge,
            &SecondFactor::Totp(code_now(&second_secret, &clock)),
            &client(),
        )
        .await
        .unwrap();
    let second = identity.authenticate(&pair.access_token).await.unwrap();
    identity.reset_mfa(&second, &root_id).await.unwrap();
    let resets = events(&platform, EventKind::MfaReset).await;
    assert_eq!(resets.len(), 1);
    assert_eq!(resets[0]["actor"]["name"], "second");
    // Reset: the admin must enrol again before anything else.
    let again = identity.login("root", &password(), &client()).await;
    assert!(
        matches!(again, Err(AuthError::MfaEnrolmentRequired)),
        "{again:?}"
    );
    assert!(identity.mfa_status(&second).await.unwrap().totp.is_some());
}

#[tokio::test]
async fn admins_must_enrol_and_can_be_reset_on_sqlite() {
    requirement_flow(None).await;
}

#[tokio::test]
async fn admins_must_enrol_and_can_be_reset_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    requirement_flow(Some(db.url.clone())).await;
    db.drop_db().await;
}
