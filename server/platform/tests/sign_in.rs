//! Tokens and browser sessions, called on the identity service directly with an injected clock:
//! refresh rotation and reuse detection, token expiry, and the session's idle and absolute
//! timeouts.
//! SQLite always, PostgreSQL on a fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::time::Duration;

use chrono::Utc;
use platform::{
    Platform,
    access::Principal,
    clock::{Clock, ManualClock},
    identity::{
        NewUser,
        auth::{AuthError, Client},
        sessions::SessionTimeouts,
    },
};
use secrecy::SecretString;

const PASSWORD: &str = "Sessions-Password-42!";

async fn start(database_url: Option<String>) -> (Platform, ManualClock, tempfile::TempDir) {
    let (platform, clock, dir) = support::start_with_clock(database_url, false).await;
    platform
        .identity()
        .create_user(
            &Principal::System,
            NewUser {
                username: "alice".into(),
                email: "alice@example.com".into(),
                password: SecretString::from(PASSWORD),
                roles: vec!["developer".into()],
            },
        )
        .await
        .unwrap();
    (platform, clock, dir)
}

fn password() -> SecretString {
    SecretString::from(PASSWORD)
}

async fn refresh_family(database_url: Option<String>) {
    let (platform, _clock, _dir) = start(database_url).await;
    let identity = platform.identity();
    let client = Client::default();
    let first = identity.login("alice", &password(), &client).await.unwrap();
    let second = identity
        .refresh(&first.refresh_token, &client)
        .await
        .unwrap();
    assert_ne!(second.refresh_token, first.refresh_token, "refresh rotates");
    identity.authenticate(&second.access_token).await.unwrap();

    // Presenting the used token again is reuse: it fails and revokes the whole family.
    assert!(matches!(
        identity.refresh(&first.refresh_token, &client).await,
        Err(AuthError::InvalidToken)
    ));
    assert!(
        matches!(
            identity.refresh(&second.refresh_token, &client).await,
            Err(AuthError::InvalidToken)
        ),
        "the family's newest refresh token is revoked with it"
    );

    // Another sign-in is another family, untouched by that revocation.
    let other = identity.login("alice", &password(), &client).await.unwrap();
    identity
        .refresh(&other.refresh_token, &client)
        .await
        .unwrap();
    platform.close().await;
}

async fn expiry_and_absolute_timeout(database_url: Option<String>) {
    let (platform, clock, _dir) = start(database_url).await;
    let identity = platform.identity();
    let pair = identity
        .login("alice", &password(), &Client::default())
        .await
        .unwrap();
    // security.yml's jwt.expiry is 24h.
    clock.advance(chrono::Duration::hours(23) + chrono::Duration::minutes(59));
    identity.authenticate(&pair.access_token).await.unwrap();
    clock.advance(chrono::Duration::minutes(2));
    assert!(matches!(
        identity.authenticate(&pair.access_token).await,
        Err(AuthError::InvalidToken)
    ));

    let timeouts = SessionTimeouts {
        idle: Duration::from_secs(30 * 60),
        absolute: Duration::from_secs(12 * 3600),
    };
    let session = identity
        .sign_in("alice", &password(), &Client::default())
        .await
        .unwrap();
    let platform::identity::mfa::SignInOutcome::SignedIn(session) = session else {
        panic!("no second factor is enrolled: signed in at once");
    };
    clock.advance(chrono::Duration::hours(12) - chrono::Duration::seconds(1));
    assert!(
        identity
            .session_principal(&session, timeouts)
            .await
            .unwrap()
            .is_some(),
        "a session stands until its absolute timeout"
    );
    clock.advance(chrono::Duration::seconds(2));
    assert!(
        identity
            .session_principal(&session, timeouts)
            .await
            .unwrap()
            .is_none(),
        "and not a second longer, however active it is"
    );
    platform.close().await;
}

/// The session store on the platform's clock: an idle session is gone once its expiry passes, and
/// each request that renews the expiry (as the session layer does) keeps it.
async fn idle_timeout(database_url: Option<String>) {
    use tower_sessions::{
        SessionStore,
        session::{Id, Record},
    };
    let (platform, clock, _dir) = start(database_url).await;
    let session = platform
        .identity()
        .sign_in("alice", &password(), &Client::default())
        .await
        .unwrap();
    let platform::identity::mfa::SignInOutcome::SignedIn(session) = session else {
        panic!("no second factor is enrolled: signed in at once");
    };
    let idle = chrono::Duration::minutes(30);
    let expiry = |now: chrono::DateTime<Utc>| {
        time::OffsetDateTime::from_unix_timestamp((now + idle).timestamp()).unwrap()
    };
    let store = platform.session_store();
    let mut record = Record {
        id: Id::default(),
        data: [(
            platform::identity::sessions::SESSION_USER_KEY.to_string(),
            serde_json::to_value(&session).unwrap(),
        )]
        .into_iter()
        .collect(),
        expiry_date: expiry(clock.now()),
    };
    store.create(&mut record).await.unwrap();

    clock.advance(chrono::Duration::minutes(29));
    let loaded = store.load(&record.id).await.unwrap();
    assert_eq!(
        loaded.as_ref().map(|r| r.id),
        Some(record.id),
        "idle for less than the idle timeout"
    );
    // A request renews the expiry.
    record.expiry_date = expiry(clock.now());
    store.save(&record).await.unwrap();
    clock.advance(chrono::Duration::minutes(29));
    assert!(
        store.load(&record.id).await.unwrap().is_some(),
        "58 minutes in, but active"
    );
    clock.advance(chrono::Duration::minutes(2));
    assert!(
        store.load(&record.id).await.unwrap().is_none(),
        "idle for 31 minutes: gone"
    );
    platform.close().await;
}

#[tokio::test]
async fn an_idle_session_ends_at_its_idle_timeout_on_sqlite() {
    idle_timeout(None).await;
}

#[tokio::test]
async fn an_idle_session_ends_at_its_idle_timeout_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    idle_timeout(Some(db.url.clone())).await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_family_on_sqlite() {
    refresh_family(None).await;
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_family_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    refresh_family(Some(db.url.clone())).await;
    db.drop_db().await;
}

#[tokio::test]
async fn tokens_expire_and_sessions_end_at_their_absolute_timeout_on_sqlite() {
    expiry_and_absolute_timeout(None).await;
}

#[tokio::test]
async fn tokens_expire_and_sessions_end_at_their_absolute_timeout_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    expiry_and_absolute_timeout(Some(db.url.clone())).await;
    db.drop_db().await;
}

/// `login_success` and `login_failure` name the provider that checked the password.
#[tokio::test(flavor = "multi_thread")]
async fn sign_in_events_name_the_provider() {
    use platform::audit::{AuditQuery, EventKind};
    let (platform, _clock, _dir) = start(None).await;
    let identity = platform.identity();
    identity
        .login("alice", &password(), &Client::default())
        .await
        .unwrap();
    let wrong = SecretString::from("Not-Her-Password-1!");
    assert!(matches!(
        identity.login("alice", &wrong, &Client::default()).await,
        Err(AuthError::InvalidCredentials)
    ));
    let audit = platform.audit();
    assert!(audit.flush(Duration::from_secs(10)).await);
    let query = AuditQuery {
        events: vec![EventKind::LoginSuccess, EventKind::LoginFailure],
        ..AuditQuery::default()
    };
    let page = audit.search(&Principal::System, &query).await.unwrap();
    assert_eq!(page.events.len(), 2);
    for e in &page.events {
        assert_eq!(e.event.details["provider"], "local", "{:?}", e.event);
    }
    platform.close().await;
}
