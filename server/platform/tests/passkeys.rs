//! Passkeys as a second factor through the identity service, on SQLite and PostgreSQL, answered by
//! a software authenticator (webauthn-authenticator-rs' `SoftPasskey`) that signs for whatever
//! origin it is told, so the tests can also play a phishing page: registration, the second step of
//! a login, answers made for another origin, another account or an older challenge, renaming and
//! removal.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use platform::{
    Platform,
    access::Principal,
    audit::EventKind,
    identity::{
        auth::{AuthError, Client},
        mfa::{SecondFactor, passkey::PasskeyOptions},
    },
};
use secrecy::SecretString;
use support::PASSWORD;
use webauthn_authenticator_rs::{AuthenticatorBackend, softpasskey::SoftPasskey};
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

const ORIGIN: &str = "https://localhost:8443";

fn client() -> Client {
    Client {
        ip: None,
        user_agent: Some("passkey-test".into()),
    }
}

async fn events(platform: &Platform, kind: EventKind) -> Vec<serde_json::Value> {
    support::events_json(platform, kind).await
}

/// The authenticator's answer to registration `options`, made on a page at `origin`.
fn register(key: &mut SoftPasskey, origin: &str, options: &PasskeyOptions) -> String {
    let options: CreationChallengeResponse =
        serde_json::from_value(serde_json::json!({ "publicKey": options.public_key })).unwrap();
    let answer = key
        .perform_register(Url::parse(origin).unwrap(), options.public_key, 60_000)
        .unwrap();
    serde_json::to_string(&answer).unwrap()
}

/// The authenticator's answer to sign-in `options`, made on a page at `origin`.
fn assert_with(key: &mut SoftPasskey, origin: &str, options: &PasskeyOptions) -> String {
    let options: RequestChallengeResponse =
        serde_json::from_value(serde_json::json!({ "publicKey": options.public_key })).unwrap();
    let answer = key
        .perform_auth(Url::parse(origin).unwrap(), options.public_key, 60_000)
        .unwrap();
    serde_json::to_string(&answer).unwrap()
}

async fn challenge_of(platform: &Platform, name: &str) -> (String, Vec<String>) {
    match platform
        .identity()
        .login(name, &SecretString::from(PASSWORD), &client())
        .await
    {
        Err(AuthError::MfaRequired { challenge, methods }) => (challenge, methods),
        other => panic!("expected mfa_required, got {other:?}"),
    }
}

/// Registers a passkey named `name` for `who` with `key`; the recovery codes, if it was the first
/// factor.
async fn enrol(
    platform: &Platform,
    who: &Principal,
    key: &mut SoftPasskey,
    name: &str,
) -> Option<Vec<String>> {
    let identity = platform.identity();
    let options = identity
        .start_passkey_registration(who, ORIGIN)
        .await
        .unwrap();
    let answer = register(key, ORIGIN, &options);
    identity
        .finish_passkey_registration(who, &options.ceremony, name, &answer, &client())
        .await
        .unwrap()
}

async fn passkey_flow(database_url: Option<String>) {
    let (platform, _clock, _dir) = support::start_with_clock(database_url, false).await;
    let identity = platform.identity();
    let alice = support::signed_in(&platform, "alice", "developer", "example.com").await;
    let mut alice_key = SoftPasskey::new(true);

    // WebAuthn needs a host name: a page reached by IP address cannot start a ceremony.
    let by_ip = identity
        .start_passkey_registration(&alice, "https://127.0.0.1:8443")
        .await
        .unwrap_err();
    assert!(by_ip.to_string().contains("host name"), "{by_ip}");

    // An answer made on another site (a phishing page relaying the options) is refused, audited,
    // and enrols nothing.
    let options = identity
        .start_passkey_registration(&alice, ORIGIN)
        .await
        .unwrap();
    let phished = register(&mut alice_key, "https://evil.example", &options);
    let refused = identity
        .finish_passkey_registration(&alice, &options.ceremony, "Laptop", &phished, &client())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("refused"), "{refused}");
    let failures = events(&platform, EventKind::MfaFailure).await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["details"]["factor"], "passkey");
    assert_eq!(failures[0]["details"]["stage"], "enrolment");
    assert!(identity.passkeys(&alice).await.unwrap().is_empty());
    // The ceremony was used up by the refused answer.
    let again = identity
        .finish_passkey_registration(&alice, &options.ceremony, "Laptop", &phished, &client())
        .await
        .unwrap_err();
    assert!(again.to_string().contains("start again"), "{again}");
    // Garbage and a missing name get clear field errors.
    let options = identity
        .start_passkey_registration(&alice, ORIGIN)
        .await
        .unwrap();
    let bad = identity
        .finish_passkey_registration(&alice, &options.ceremony, "Laptop", "{not json", &client())
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("not a passkey answer"), "{bad}");
    let options = identity
        .start_passkey_registration(&alice, ORIGIN)
        .await
        .unwrap();
    let answer = register(&mut alice_key, ORIGIN, &options);
    let unnamed = identity
        .finish_passkey_registration(&alice, &options.ceremony, "  ", &answer, &client())
        .await
        .unwrap_err();
    assert!(unnamed.to_string().contains("name"), "{unnamed}");

    // The real thing: the first factor comes with ten recovery codes.
    let codes = identity
        .finish_passkey_registration(&alice, &options.ceremony, " Laptop ", &answer, &client())
        .await
        .unwrap()
        .expect("recovery codes with the first factor");
    assert_eq!(codes.len(), 10);
    let keys = identity.passkeys(&alice).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].name, "Laptop");
    assert!(keys[0].last_used_at.is_none());
    let enrolled = events(&platform, EventKind::MfaEnrolled).await;
    assert_eq!(enrolled.len(), 1);
    assert_eq!(enrolled[0]["details"]["factor"], "passkey");
    let status = identity.mfa_status(&alice).await.unwrap();
    assert_eq!(status.recovery_codes_left, 10);
    assert!(status.totp.is_none());

    // A login now asks for the second factor and says a passkey answers it.
    let (challenge, methods) = challenge_of(&platform, "alice").await;
    assert_eq!(methods, ["passkey", "recovery_code"]);
    let options = identity
        .passkey_sign_in_options(&challenge, ORIGIN)
        .await
        .unwrap();
    let good = assert_with(&mut alice_key, ORIGIN, &options);
    let pair = identity
        .complete_login_mfa(&challenge, &SecondFactor::Passkey(good.clone()), &client())
        .await
        .unwrap();
    assert_eq!(
        identity
            .authenticate(&pair.access_token)
            .await
            .unwrap()
            .name(),
        "alice"
    );
    let success = events(&platform, EventKind::MfaSuccess).await;
    assert_eq!(success.len(), 1);
    assert_eq!(success[0]["details"]["factor"], "passkey");
    assert!(
        identity.passkeys(&alice).await.unwrap()[0]
            .last_used_at
            .is_some()
    );

    // A replayed answer (made for the previous challenge) does not answer a new one.
    let (challenge, _) = challenge_of(&platform, "alice").await;
    identity
        .passkey_sign_in_options(&challenge, ORIGIN)
        .await
        .unwrap();
    let replayed = identity
        .complete_login_mfa(&challenge, &SecondFactor::Passkey(good), &client())
        .await
        .unwrap_err();
    assert!(matches!(replayed, AuthError::MfaWrongCode), "{replayed:?}");

    // An answer signed on another site is refused at sign-in too.
    let options = identity
        .passkey_sign_in_options(&challenge, ORIGIN)
        .await
        .unwrap();
    let phished = assert_with(&mut alice_key, "https://evil.example", &options);
    let refused = identity
        .complete_login_mfa(&challenge, &SecondFactor::Passkey(phished), &client())
        .await
        .unwrap_err();
    assert!(matches!(refused, AuthError::MfaWrongCode), "{refused:?}");
    // The ceremony is used once: even a good answer to it needs new options now.
    let stale = assert_with(&mut alice_key, ORIGIN, &options);
    let refused = identity
        .complete_login_mfa(&challenge, &SecondFactor::Passkey(stale), &client())
        .await
        .unwrap_err();
    assert!(matches!(refused, AuthError::MfaWrongCode), "{refused:?}");

    // Bob has his own passkey; Alice's answer to her challenge does not answer his.
    let bob = support::signed_in(&platform, "bob", "developer", "example.com").await;
    let mut bob_key = SoftPasskey::new(true);
    enrol(&platform, &bob, &mut bob_key, "Bob's key").await;
    let (bob_challenge, _) = challenge_of(&platform, "bob").await;
    identity
        .passkey_sign_in_options(&bob_challenge, ORIGIN)
        .await
        .unwrap();
    let options = identity
        .passkey_sign_in_options(&challenge, ORIGIN)
        .await
        .unwrap();
    let alices = assert_with(&mut alice_key, ORIGIN, &options);
    let refused = identity
        .complete_login_mfa(&bob_challenge, &SecondFactor::Passkey(alices), &client())
        .await
        .unwrap_err();
    assert!(matches!(refused, AuthError::MfaWrongCode), "{refused:?}");
    // Every refusal above is an audited mfa_failure with the factor named.
    let failures = events(&platform, EventKind::MfaFailure).await;
    let at_sign_in: Vec<_> = failures
        .iter()
        .filter(|e| e["details"]["stage"].is_null())
        .collect();
    assert_eq!(at_sign_in.len(), 4, "{failures:#?}");
    assert!(
        at_sign_in
            .iter()
            .all(|e| e["details"]["factor"] == "passkey")
    );
    // Alice and Bob each still sign in with their own.
    let options = identity
        .passkey_sign_in_options(&bob_challenge, ORIGIN)
        .await
        .unwrap();
    let answer = assert_with(&mut bob_key, ORIGIN, &options);
    identity
        .complete_login_mfa(&bob_challenge, &SecondFactor::Passkey(answer), &client())
        .await
        .unwrap();

    // A second passkey adds no new recovery codes; rename and remove are one's own only.
    let mut phone = SoftPasskey::new(true);
    assert!(
        enrol(&platform, &alice, &mut phone, "Phone")
            .await
            .is_none()
    );
    let keys = identity.passkeys(&alice).await.unwrap();
    assert_eq!(keys.len(), 2);
    identity
        .rename_passkey(&alice, &keys[1].id, "Old phone")
        .await
        .unwrap();
    assert_eq!(
        identity.passkeys(&alice).await.unwrap()[1].name,
        "Old phone"
    );
    let not_hers = identity.passkeys(&bob).await.unwrap()[0].id.clone();
    assert!(
        identity
            .remove_passkey(&alice, &not_hers)
            .await
            .unwrap_err()
            .to_string()
            .contains("no passkey")
    );
    identity.remove_passkey(&alice, &keys[1].id).await.unwrap();
    assert_eq!(
        identity
            .mfa_status(&alice)
            .await
            .unwrap()
            .recovery_codes_left,
        10
    );
    // The last one takes the recovery codes with it: the password alone signs in again.
    identity.remove_passkey(&alice, &keys[0].id).await.unwrap();
    let status = identity.mfa_status(&alice).await.unwrap();
    assert!(status.passkeys.is_empty());
    assert_eq!(status.recovery_codes_left, 0);
    identity
        .login("alice", &SecretString::from(PASSWORD), &client())
        .await
        .unwrap();
    assert_eq!(events(&platform, EventKind::MfaRemoved).await.len(), 2);
}

#[tokio::test]
async fn passkeys_on_sqlite() {
    passkey_flow(None).await;
}

#[tokio::test]
async fn passkeys_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    passkey_flow(Some(db.url.clone())).await;
    db.drop_db().await;
}
