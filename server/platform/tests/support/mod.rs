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
        config_dir: testkit::test_config_dir(),
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

/// A platform whose soc2.yml requires a second factor of admins (the repository's setting).
pub async fn start_requiring(
    database_url: Option<String>,
) -> (Platform, ManualClock, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    for entry in
        std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config"))
            .unwrap()
    {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), config.join(entry.file_name())).unwrap();
        }
    }
    let soc2 = std::fs::read_to_string(config.join("soc2.yml")).unwrap();
    assert!(soc2.contains(testkit::MFA_ROLES_LINE));
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap());
    let options = StartOptions {
        config_dir: config,
        data_dir: dir.path().join("data"),
        database_url,
        clock: Arc::new(clock.clone()),
        sessions: Default::default(),
        max_upload: platform::DEFAULT_MAX_UPLOAD,
        run_modules: false,
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

/// The audit events of `kind` so far (flushed first), as JSON.
pub async fn events_json(
    platform: &Platform,
    kind: platform::audit::EventKind,
) -> Vec<serde_json::Value> {
    let audit = platform.audit();
    assert!(audit.flush(std::time::Duration::from_secs(10)).await);
    let query = platform::audit::AuditQuery {
        events: vec![kind],
        limit: 500,
        ..Default::default()
    };
    audit
        .search(&Principal::System, &query)
        .await
        .unwrap()
        .events
        .into_iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

/// A module exporting `add(i32, i32) -> i32`.
pub const ADD: &str = r#"(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#;

/// Uploads the module `wat` as `owner`, named `name`; its id.
pub async fn upload_wat(platform: &Platform, owner: &Principal, name: &str, wat: &str) -> String {
    let modules = platform.modules();
    let bytes = wat::parse_str(wat).unwrap();
    let staged = modules.stage(&bytes[..]).await.unwrap();
    let meta = platform::modules::UploadMeta {
        name: name.into(),
        description: format!("{name} description"),
    };
    modules.upload(owner, meta, staged).await.unwrap().id
}

/// Calls `add(2, 3)` of module `id` as `who`.
pub async fn run_add(platform: &Platform, who: &Principal, id: &str) {
    let request = platform::modules::execute::ExecuteRequest::Call {
        function: "add".into(),
        args: vec![sandbox::Value::I32(2), sandbox::Value::I32(3)],
    };
    platform.modules().execute(who, id, request).await.unwrap();
}

/// Runs due erasures until one is done, moving `clock` on while it settles; the steps it went
/// through.
pub async fn run_erasure_to_end(platform: &Platform, clock: &ManualClock) -> Vec<String> {
    use platform::compliance::erasure::RunOutcome;
    let mut steps = Vec::new();
    for _ in 0..200 {
        match platform.compliance().run_erasures("test").await.unwrap() {
            RunOutcome::Done { .. } => return steps,
            RunOutcome::Progressed { step, .. } => steps.push(step),
            RunOutcome::Waiting { .. } => clock.advance(chrono::Duration::seconds(11)),
            other => panic!("unexpected {other:?} after {steps:?}"),
        }
    }
    panic!("the erasure did not finish: {steps:?}");
}
