//! What the service tests share: a platform on the repository's config, a fresh data dir and a
//! manual clock.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use platform::{Platform, StartOptions, clock::ManualClock};

/// Starts the platform on `config/` with a fresh data dir (SQLite inside it, unless
/// `database_url` names another database) and a manual clock at 2026-03-01 09:00 UTC. Keep the
/// returned directory for as long as the platform runs.
pub async fn start(
    database_url: Option<String>,
    run_modules: bool,
) -> (Platform, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let options = StartOptions {
        config_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config"),
        data_dir: dir.path().join("data"),
        database_url,
        clock: Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap(),
        )),
        sessions: Default::default(),
        max_upload: platform::DEFAULT_MAX_UPLOAD,
        run_modules,
    };
    let (platform, _) = Platform::start(options).await.unwrap();
    (platform, dir)
}
