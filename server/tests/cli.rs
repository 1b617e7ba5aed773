//! The binary's failure modes: each is one clear sentence on stderr and a non-zero exit, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

use std::{
    path::Path,
    process::{Command, Output},
};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-as-os");

fn run(config_dir: &Path, data_dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config-dir")
        .arg(config_dir)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("WASM_AS_OS_DATABASE_URL")
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_one_sentence_failure(out: &Output, expected_start: &str) {
    assert!(!out.status.success(), "must exit non-zero");
    let err = stderr(out);
    assert!(err.starts_with(expected_start), "stderr: {err}");
    assert!(!err.contains("panicked"), "stderr: {err}");
}

#[test]
fn config_check_accepts_the_shipped_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let out = run(&config, dir.path(), &["config", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("is valid"));
}

#[test]
fn config_check_prints_the_ids_rules_as_understood() {
    let dir = tempfile::tempdir().unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let out = run(&config, dir.path(), &["config", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "rate limits: global 1000/min (burst 100), per user 100/min (burst 20), 3 endpoint budget(s)",
        "ids rule brute_force_login: block_ip for 1h when failed_logins > 5 in 5m",
        "ids rule suspicious_module_upload: quarantine when module_size > 50MB or contains_suspicious_patterns",
        "ids rule privilege_escalation: alert when permission_denied and target_resource = admin",
        "ids rule unusual_execution_pattern: throttle when execution_rate > 1000 per 1m",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}

#[test]
fn config_check_refuses_a_malformed_condition_and_cidr_with_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ids.yml"),
        "intrusion_detection:\n  enabled: true\n  rules:\n    - name: \"brute\"\n      condition: \"failed_logins > five in 5m\"\n      action: \"block_ip\"\n      duration: \"1h\"\n  alerts: []\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rate_limit.yml"),
        "rate_limiting:\n  ip_blacklist:\n    - \"192.0.2.0/33\"\n",
    )
    .unwrap();
    let out = run(dir.path(), dir.path(), &["config", "check"]);
    assert_one_sentence_failure(&out, "error: invalid configuration (2 problems):");
    let err = stderr(&out);
    assert!(
        err.contains(
            "config/ids.yml: intrusion_detection.rules[0].condition: rule \"brute\": at column 17: expected a number, found \"five\""
        ),
        "{err}"
    );
    assert!(
        err.contains("config/rate_limit.yml: rate_limiting.ip_blacklist"),
        "{err}"
    );
}

#[test]
fn config_check_prints_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sandbox.yml"),
        "sandbox:\n  resource_limits:\n    max_memory: \"100XB\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tls.yml"),
        "tls:\n  enabled: false\n  min_version: \"0.9\"\n",
    )
    .unwrap();
    let out = run(dir.path(), dir.path(), &["config", "check"]);
    assert_one_sentence_failure(&out, "error: invalid configuration (2 problems):");
    let err = stderr(&out);
    assert!(
        err.contains(
            "config/sandbox.yml: sandbox.resource_limits.max_memory: invalid size \"100XB\""
        ),
        "{err}"
    );
    assert!(
        err.contains("config/tls.yml: tls.min_version: unknown variant `0.9`"),
        "{err}"
    );
}

#[test]
fn the_production_example_is_refused_with_how_to_set_a_real_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/production");
    let out = run(&config, dir.path(), &["serve", "--listen", "127.0.0.1:0"]);
    assert_one_sentence_failure(&out, "error: invalid configuration");
    assert!(stderr(&out).contains(
        "auth.jwt.secret: still has the example value from the guide; set secret: \"${JWT_SECRET}\""
    ));
}

#[test]
fn a_malformed_config_stops_serve_before_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rbac.yml"), "roles: [unclosed\n").unwrap();
    let out = run(
        dir.path(),
        &dir.path().join("data"),
        &["serve", "--listen", "127.0.0.1:0"],
    );
    assert_one_sentence_failure(
        &out,
        "error: invalid configuration: config/rbac.yml: not valid YAML",
    );
}

#[test]
fn an_unreachable_database_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("--config-dir")
        .arg(dir.path())
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--database-url",
            "postgres://nobody@127.0.0.1:1/wasmdb",
            "migrate",
        ])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_one_sentence_failure(
        &out,
        "error: cannot connect to the PostgreSQL (wasmdb on 127.0.0.1) database:",
    );
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn a_port_already_in_use_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(dir.path(), dir.path(), &["serve", "--listen", &addr]);
    assert_one_sentence_failure(
        &out,
        &format!("error: cannot listen on {addr}: the address is already in use"),
    );
}

#[test]
fn an_unwritable_data_dir_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let data_dir = file.join("data");
    let out = run(dir.path(), &data_dir, &["migrate"]);
    assert_one_sentence_failure(
        &out,
        &format!("error: the data dir {} is not usable:", data_dir.display()),
    );
}

#[test]
fn migrate_creates_the_embedded_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), dir.path(), &["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("database schema is up to date (SQLite")
    );
    assert!(dir.path().join("wasm-as-os.db").is_file());
}

#[test]
fn flags_can_be_given_as_environment_variables() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["admin", "status"])
        .env("WASM_AS_OS_CONFIG_DIR", dir.path())
        .env("WASM_AS_OS_DATA_DIR", dir.path().join("data"))
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "data dir     {}",
            dir.path().join("data").display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("schema       up to date"), "{stdout}");
}

/// A config dir whose `trusted-modules` group preopens `path`.
fn config_with_preopen(path: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sandbox.yml"),
        format!(
            "sandbox:\n  module_capabilities:\n    \"trusted-modules\":\n      file_access: true\n      allowed_paths: [\"{}\"]\n",
            path.display()
        ),
    )
    .unwrap();
    dir
}

const PREOPEN_KEY: &str =
    "config/sandbox.yml: sandbox.module_capabilities.\"trusted-modules\".allowed_paths[0]:";

#[test]
fn config_check_accepts_a_preopen_directory_of_the_service_user() {
    let root = tempfile::tempdir().unwrap();
    let files = root.path().join("module-files");
    std::fs::create_dir(&files).unwrap();
    let config = config_with_preopen(&files);
    let out = run(
        config.path(),
        &root.path().join("data"),
        &["config", "check"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn config_check_refuses_a_preopen_that_is_a_symlink_into_the_data_dir() {
    // Another local user pre-created the preopen as a link to the data dir.
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let link = root.path().join("wasm-data");
    std::os::unix::fs::symlink(&data, &link).unwrap();
    let config = config_with_preopen(&link);
    let out = run(config.path(), &data, &["config", "check"]);
    assert_one_sentence_failure(&out, "error: invalid configuration:");
    let err = stderr(&out);
    assert!(err.contains(PREOPEN_KEY), "{err}");
    assert!(err.contains("is a symbolic link"), "{err}");
    // `serve` refuses it too, before it listens.
    let out = run(config.path(), &data, &["serve", "--listen", "127.0.0.1:0"]);
    assert_one_sentence_failure(&out, "error: invalid configuration:");
}

#[test]
fn config_check_refuses_a_preopen_inside_or_containing_the_data_dir() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let inside = data.join("cache");
    std::fs::create_dir_all(&inside).unwrap();
    for (path, relation) in [(inside.as_path(), "lies inside"), (root.path(), "contains")] {
        let config = config_with_preopen(path);
        let out = run(config.path(), &data, &["config", "check"]);
        assert_one_sentence_failure(&out, "error: invalid configuration:");
        let err = stderr(&out);
        assert!(err.contains(PREOPEN_KEY), "{err}");
        assert!(err.contains(&format!("{relation} the data dir")), "{err}");
    }
}

#[test]
fn config_check_refuses_a_preopen_owned_by_another_user() {
    let root = tempfile::tempdir().unwrap();
    let theirs = root.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    if std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and can chown"
        );
        eprintln!("notice: not root, cannot give the directory to uid 65534; skipped");
        return;
    }
    let config = config_with_preopen(&theirs);
    let out = run(
        config.path(),
        &root.path().join("data"),
        &["config", "check"],
    );
    assert_one_sentence_failure(&out, "error: invalid configuration:");
    let err = stderr(&out);
    assert!(err.contains(PREOPEN_KEY), "{err}");
    assert!(err.contains("is owned by uid 65534"), "{err}");
}

#[test]
fn config_check_names_a_retention_period_that_does_not_parse() {
    let config = tempfile::tempdir().unwrap();
    let spec = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/privacy.yml"),
    )
    .unwrap();
    assert!(spec.contains("audit_logs: \"7y\""));
    std::fs::write(
        config.path().join("privacy.yml"),
        spec.replace("audit_logs: \"7y\"", "audit_logs: \"7 years\""),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = run(config.path(), data.path(), &["config", "check"]);
    assert_one_sentence_failure(&out, "error: invalid configuration:");
    let err = stderr(&out);
    assert!(
        err.contains("privacy.yml") && err.contains("audit_logs") && err.contains("7 years"),
        "{err}"
    );
}
