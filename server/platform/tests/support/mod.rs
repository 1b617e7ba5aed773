//! What the service tests share: a platform on the repository's config, a fresh data dir and a
//! manual clock.

#![allow(dead_code)] // each test binary uses part of it

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use platform::{
    Platform, StartOptions,
    access::Principal,
    clock::ManualClock,
    identity::{NewUser, auth::Client},
};
use secrecy::SecretString;

/// The password of every account [`signed_in`] makes.
pub const PASSWORD: &str = "Service-Test-Password-42!";

/// Starts the platform on `config/` with a fresh data dir (SQLite inside it, unless
/// `database_url` names another database) and a manual clock at 2026-03-01 09:00 UTC. Keep the
/// returned directory for as long as the platform runs.
pub async fn start(
    database_url: Option<String>,
    run_modules: bool,
) -> (Platform, tempfile::TempDir) {
    let (platform, _clock, dir) = start_with_clock(database_url, run_modules).await;
    (platform, dir)
}

/// [`start`], and the manual clock the platform reads, to move time on.
pub async fn start_with_clock(
    database_url: Option<String>,
    run_modules: bool,
) -> (Platform, ManualClock, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap());
    let options = StartOptions {
        config_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config"),
        data_dir: dir.path().join("data"),
        database_url,
        clock: Arc::new(clock.clone()),
        sessions: Default::default(),
        max_upload: platform::DEFAULT_MAX_UPLOAD,
        run_modules,
    };
    let (platform, _) = Platform::start(options).await.unwrap();
    (platform, clock, dir)
}

/// Creates `name` with `role` through the service (email `<name>@<domain>`), signs them in and
/// returns their principal, as a request would see it.
pub async fn signed_in(platform: &Platform, name: &str, role: &str, domain: &str) -> Principal {
    let identity = platform.identity();
    identity
        .create_user(
            &Principal::System,
            NewUser {
                username: name.into(),
                email: format!("{name}@{domain}"),
                password: SecretString::from(PASSWORD),
                roles: vec![role.into()],
            },
        )
        .await
        .unwrap();
    let pair = identity
        .login(name, &SecretString::from(PASSWORD), &Client::default())
        .await
        .unwrap();
    identity.authenticate(&pair.access_token).await.unwrap()
}
