//! Personal API tokens, on the identity service with an injected clock: a token authenticates as
//! its owner, narrowed to its permissions; it is refused once expired, revoked, or its owner is
//! disabled, and loses what its owner loses; nobody gives a token a permission they lack; the
//! token is stored only as a hash; creating and revoking are audited.
//! SQLite always, PostgreSQL on a fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use platform::{
    Platform,
    access::Principal,
    audit::{AuditQuery, EventKind},
    identity::{
        IdentityError, UserChanges,
        api_tokens::{MAX_TOKENS_PER_USER, NewApiToken},
        auth::AuthError,
    },
};
use sea_orm::{ConnectionTrait, Statement};
use secrecy::ExposeSecret;

async fn signed_in(platform: &Platform, name: &str, role: &str) -> Principal {
    support::signed_in(platform, name, role, "tokens.example").await
}

fn new_token(name: &str, permissions: Option<&[&str]>) -> NewApiToken {
    NewApiToken {
        name: name.into(),
        expires_in_days: Some(30),
        permissions: permissions.map(|p| p.iter().map(|s| s.to_string()).collect()),
    }
}

async fn lifecycle(database_url: Option<String>) {
    let (platform, clock, _dir) = support::start_with_clock(database_url, false).await;
    let identity = platform.identity();
    let ada = signed_in(&platform, "ada", "developer").await;

    // A full token acts as its owner.
    let full = identity
        .create_api_token(&ada, new_token("ci deploy", None))
        .await
        .unwrap();
    let secret = full.token.expose_secret().to_string();
    assert!(secret.starts_with("wao_") && secret.len() == 68, "{secret}");
    assert_eq!(full.info.hint, secret[64..]);
    let me = identity.authenticate(&secret).await.unwrap();
    assert_eq!(me.name(), "ada");
    assert!(me.can("modules", "create") && me.can("modules", "execute"));

    // Only the SHA-256 is stored.
    let db = platform.db();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT token_hash FROM api_tokens",
        ))
        .await
        .unwrap();
    let stored: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String>("", "token_hash").unwrap())
        .collect();
    assert!(!stored.iter().any(|h| h.contains(&secret[4..])));
    use sha2::Digest;
    assert!(stored.contains(&hex::encode(sha2::Sha256::digest(secret.as_bytes()))));

    // A narrowed token holds only what it names.
    let narrow = identity
        .create_api_token(&ada, new_token("read only", Some(&["modules:read"])))
        .await
        .unwrap();
    let reader = identity
        .authenticate(narrow.token.expose_secret())
        .await
        .unwrap();
    assert!(reader.can("modules", "read"));
    assert!(!reader.can("modules", "create"), "narrowed to modules:read");

    // A stored list that does not read as one grants nothing, never everything.
    let damaged = identity
        .create_api_token(&ada, new_token("damaged", Some(&["modules:read"])))
        .await
        .unwrap();
    let sql = r#"UPDATE api_tokens SET permissions = '{"not": "a list"}' WHERE name = 'damaged'"#;
    db.execute_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap();
    let nothing = identity
        .authenticate(damaged.token.expose_secret())
        .await
        .unwrap();
    assert!(!nothing.can("modules", "read") && !nothing.can("modules", "create"));
    identity
        .revoke_api_token(&ada, &damaged.info.id)
        .await
        .unwrap();

    // Nobody gives a token what they lack: a developer has no users:create.
    let err = identity
        .create_api_token(&ada, new_token("too much", Some(&["users:create"])))
        .await
        .unwrap_err();
    assert!(
        matches!(err, IdentityError::Forbidden(ref p) if p == "users:create"),
        "{err:?}"
    );
    // Bad names and lifetimes are field errors.
    for bad in [
        new_token("", None),
        new_token(" leading space", None),
        new_token(&"x".repeat(65), None),
        NewApiToken {
            expires_in_days: Some(366),
            ..new_token("long", None)
        },
    ] {
        let err = identity.create_api_token(&ada, bad).await.unwrap_err();
        assert!(matches!(err, IdentityError::Invalid(_)), "{err:?}");
    }

    // Losing a role takes its permissions from the token at the next request.
    let changes = UserChanges {
        add_roles: vec!["viewer".into()],
        remove_roles: vec!["developer".into()],
        ..UserChanges::default()
    };
    identity
        .update_user(&Principal::System, "ada", changes)
        .await
        .unwrap();
    let me = identity.authenticate(&secret).await.unwrap();
    assert!(me.can("modules", "read") && !me.can("modules", "create"));

    // A password change leaves tokens standing; disabling the owner stops them at once.
    identity
        .set_disabled(&Principal::System, "ada", true)
        .await
        .unwrap();
    assert!(matches!(
        identity.authenticate(&secret).await,
        Err(AuthError::InvalidToken)
    ));
    identity
        .set_disabled(&Principal::System, "ada", false)
        .await
        .unwrap();
    assert!(identity.authenticate(&secret).await.is_ok());

    // Revoked: refused at the next request; listed as revoked; revoking again is no error.
    identity
        .revoke_api_token(&ada, &full.info.id)
        .await
        .unwrap();
    assert!(matches!(
        identity.authenticate(&secret).await,
        Err(AuthError::InvalidToken)
    ));
    let listed = identity.list_api_tokens(&ada).await.unwrap();
    assert_eq!(listed.len(), 3);
    let revoked = listed.iter().find(|t| t.id == full.info.id).unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(revoked.state, "revoked");
    assert!(revoked.last_used_at.is_some(), "use is recorded");
    identity
        .revoke_api_token(&ada, &full.info.id)
        .await
        .unwrap();

    // Someone else's token is not found for a stranger (the attempt is audited) ...
    let bob = signed_in(&platform, "bob", "developer").await;
    let err = identity
        .revoke_api_token(&bob, &narrow.info.id)
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::UnknownToken(_)), "{err:?}");
    assert!(
        identity
            .authenticate(narrow.token.expose_secret())
            .await
            .is_ok()
    );

    // ... and expired after its lifetime.
    clock.advance(chrono::Duration::days(31));
    assert!(matches!(
        identity.authenticate(narrow.token.expose_secret()).await,
        Err(AuthError::InvalidToken)
    ));
    let listed = identity.list_api_tokens(&ada).await.unwrap();
    let expired = listed.iter().find(|t| t.id == narrow.info.id).unwrap();
    assert_eq!(expired.state, "expired");
    // An unknown token of the right shape is refused like any bad token.
    assert!(matches!(
        identity
            .authenticate(&format!("wao_{}", "0".repeat(64)))
            .await,
        Err(AuthError::InvalidToken)
    ));

    // Creating and revoking are audited, and no event holds the token.
    let audit = platform.audit();
    assert!(audit.flush(std::time::Duration::from_secs(10)).await);
    let query = AuditQuery {
        events: vec![EventKind::ApiTokenCreate, EventKind::ApiTokenRevoke],
        ..AuditQuery::default()
    };
    let page = audit.search(&Principal::System, &query).await.unwrap();
    let kinds: Vec<&str> = page.events.iter().map(|e| e.event.kind.as_str()).collect();
    assert!(
        kinds.contains(&EventKind::ApiTokenCreate.as_str()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&EventKind::ApiTokenRevoke.as_str()),
        "{kinds:?}"
    );
    let all = serde_json::to_string(&page.events).unwrap();
    assert!(
        !all.contains(&secret[4..]),
        "an audit event holds the token"
    );
    platform.close().await;
}

async fn bounded(database_url: Option<String>) {
    let (platform, _clock, _dir) = support::start_with_clock(database_url, false).await;
    let identity = platform.identity();
    let ada = signed_in(&platform, "ada", "developer").await;
    for i in 0..MAX_TOKENS_PER_USER {
        identity
            .create_api_token(&ada, new_token(&format!("t{i}"), None))
            .await
            .unwrap();
    }
    let err = identity
        .create_api_token(&ada, new_token("one more", None))
        .await
        .unwrap_err();
    assert!(matches!(err, IdentityError::Invalid(_)), "{err:?}");
    // Revoking frees a place; revoked ones beyond the newest MAX_TOKENS_PER_USER are dropped.
    let bound = usize::try_from(MAX_TOKENS_PER_USER).unwrap();
    for round in 0..2 {
        for t in identity.list_api_tokens(&ada).await.unwrap() {
            if t.revoked_at.is_none() {
                identity.revoke_api_token(&ada, &t.id).await.unwrap();
            }
        }
        identity
            .create_api_token(&ada, new_token(&format!("after {round}"), None))
            .await
            .unwrap();
    }
    let listed = identity.list_api_tokens(&ada).await.unwrap();
    assert_eq!(listed.len(), bound + 1, "50 revoked and one live");
    platform.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_tokens_on_sqlite() {
    lifecycle(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_tokens_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    lifecycle(Some(db.url.clone())).await;
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_tokens_per_person_are_bounded() {
    bounded(None).await;
}
