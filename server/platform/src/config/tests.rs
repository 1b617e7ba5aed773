use std::{collections::HashMap, path::Path};

use secrecy::ExposeSecret;

use super::*;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn load_dir(dir: &Path, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_with_env(dir, &move |name| env.get(name).cloned())
}

fn problems(dir: &Path) -> Vec<String> {
    load_dir(dir, &[])
        .unwrap_err()
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn repo_dir(sub: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../config")
        .join(sub)
}

#[test]
fn an_empty_config_dir_loads_the_specs_values() {
    let dir = tempfile::tempdir().unwrap();
    let config = load_dir(dir.path(), &[]).unwrap();
    let jwt = &config.security.auth.jwt;
    assert_eq!(jwt.expiry.to_string(), "1d");
    assert_eq!(jwt.refresh_expiry.duration().as_secs(), 168 * 3600);
    assert_eq!(
        (jwt.issuer.as_str(), jwt.audience.as_str()),
        ("wasm-as-os", "wasm-users")
    );
    assert!(
        jwt.secret.is_none(),
        "the example secret must not become the default"
    );
    assert_eq!(config.rbac.roles.len(), 4);
    assert_eq!(
        config.rbac.roles["operator"].permissions,
        [
            "modules:read",
            "modules:execute",
            "scheduler:*",
            "metrics:read",
            "snapshots:create",
            "snapshots:restore"
        ]
    );
    assert_eq!(
        config.sandbox.sandbox.resource_limits.max_memory.bytes(),
        100 << 20
    );
    assert_eq!(config.sandbox.max_iterations(), Some(1_000_000));
    assert_eq!(
        config
            .static_analysis
            .static_analysis
            .quarantine
            .high_risk_threshold,
        8.0
    );
    assert_eq!(
        config.rate_limit.rate_limiting.per_endpoint["/api/v1/auth/login"].burst,
        2
    );
    assert_eq!(
        config
            .privacy
            .privacy
            .data_retention
            .metrics_data
            .to_string(),
        "90d"
    );
    assert!(config.soc2.soc2.security.multi_factor_auth);
    assert!(
        config.database.is_none(),
        "no database.yml means the embedded database"
    );
    assert_eq!(config.database_defaults.database.max_connections, 25);
    assert!(
        config
            .audit
            .audit
            .records(crate::audit::EventKind::LoginFailure)
    );
}

#[test]
fn the_example_google_credentials_switch_the_provider_off_when_they_are_only_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let config = load_dir(dir.path(), &[]).unwrap();
    let oauth = config.security.auth.providers.iter().find_map(|p| match p {
        security::Provider::Oauth2 { enabled, .. } => Some(*enabled),
        _ => None,
    });
    assert_eq!(oauth, Some(false));
    assert!(
        config
            .ids
            .intrusion_detection
            .alerts
            .iter()
            .all(|a| !matches!(a, ids::Alert::Slack { .. }))
    );
}

#[test]
fn the_shipped_local_config_loads_without_any_environment() {
    let config = load_dir(&repo_dir(""), &[]).unwrap();
    assert!(!config.tls.tls.enabled);
    assert!(config.database.is_none());
    assert!(config.security.local_password_policy().is_some());
}

#[test]
fn the_production_example_is_refused_until_its_placeholders_are_replaced() {
    let found = problems(&repo_dir("production"));
    let joined = found.join("\n");
    assert!(
        joined.contains("config/security.yml: auth.jwt.secret: still has the example value"),
        "{joined}"
    );
    assert!(joined.contains("JWT_SECRET"), "{joined}");
    assert!(
        joined.contains("auth.providers[1].config.google.client_id"),
        "{joined}"
    );
    assert!(
        !joined.contains("bind_password"),
        "a disabled provider is not checked: {joined}"
    );
    assert!(
        joined.contains(
            "config/database.yml: database.password: environment variable DB_PASSWORD is not set"
        ),
        "{joined}"
    );
}

#[test]
fn a_partial_file_keeps_the_specs_values_for_missing_keys() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "sandbox.yml",
        "sandbox:\n  resource_limits:\n    max_memory: \"64MB\"\n",
    );
    let config = load_dir(dir.path(), &[]).unwrap();
    let limits = config.sandbox.sandbox.resource_limits;
    assert_eq!(limits.max_memory.bytes(), 64 << 20);
    assert_eq!(limits.max_stack_depth, 1000);
    assert_eq!(limits.max_execution_time.duration().as_secs(), 30);
}

#[test]
fn environment_variables_are_interpolated() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "security.yml",
        "auth:\n  jwt:\n    secret: \"${JWT_SECRET}\"\n    issuer: \"${ISSUER}-x\"\n",
    );
    let secret = "0123456789abcdef0123456789abcdef0123";
    let config = load_dir(dir.path(), &[("JWT_SECRET", secret), ("ISSUER", "corp")]).unwrap();
    assert_eq!(
        config
            .security
            .auth
            .jwt
            .secret
            .as_ref()
            .map(|s| s.expose_secret().to_string()),
        Some(secret.to_string())
    );
    assert_eq!(config.security.auth.jwt.issuer, "corp-x");
}

#[test]
fn a_missing_environment_variable_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "security.yml",
        "auth:\n  jwt:\n    secret: \"${JWT_SECRET}\"\n",
    );
    assert_eq!(
        problems(dir.path()),
        ["config/security.yml: auth.jwt.secret: environment variable JWT_SECRET is not set"]
    );
}

#[test]
fn an_unknown_key_is_rejected_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "tls.yml",
        "tls:\n  enabled: false\n  ciphers: []\n",
    );
    let found = problems(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .starts_with("config/tls.yml: tls.ciphers: unknown field `ciphers`, expected one of"),
        "{found:?}"
    );
}

#[test]
fn an_impossible_size_is_rejected_with_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "sandbox.yml",
        "sandbox:\n  resource_limits:\n    max_memory: \"100XB\"\n",
    );
    let found = problems(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(
            "config/sandbox.yml: sandbox.resource_limits.max_memory: invalid size \"100XB\""
        ),
        "{found:?}"
    );
}

#[test]
fn an_unsupported_tls_version_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "tls.yml",
        "tls:\n  enabled: false\n  min_version: \"0.9\"\n",
    );
    let found = problems(dir.path());
    assert!(
        found[0].starts_with("config/tls.yml: tls.min_version: unknown variant `0.9`"),
        "{found:?}"
    );
}

#[test]
fn a_wrong_type_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rate_limit.yml",
        "rate_limiting:\n  global:\n    requests_per_minute: lots\n",
    );
    let found = problems(dir.path());
    assert!(
        found[0].starts_with(
            "config/rate_limit.yml: rate_limiting.global.requests_per_minute: invalid type"
        ),
        "{found:?}"
    );
}

#[test]
fn broken_yaml_is_rejected_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ids.yml",
        "intrusion_detection:\n  enabled: [\n",
    );
    let found = problems(dir.path());
    assert!(
        found[0].starts_with("config/ids.yml: not valid YAML"),
        "{found:?}"
    );
    assert!(found[0].contains("line"), "{found:?}");
}

#[test]
fn every_problem_in_every_file_is_reported_together() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rbac.yml",
        "roles:\n  auditor:\n    permissions: [\"audit\", \"wizards:read\"]\n",
    );
    write(
        dir.path(),
        "static_analysis.yml",
        "static_analysis:\n  quarantine:\n    medium_risk_threshold: 9\n    high_risk_threshold: 11\n",
    );
    write(
        dir.path(),
        "tls.yml",
        "tls:\n  enabled: true\n  cert_file: /nonexistent/cert.pem\n",
    );
    let found = problems(dir.path());
    let joined = found.join("\n");
    assert!(joined.contains("config/rbac.yml: roles.auditor.permissions[0]: \"audit\" is not of the form resource:action"), "{joined}");
    assert!(
        joined.contains("roles.auditor.permissions[1]: \"wizards:read\" names unknown resource"),
        "{joined}"
    );
    assert!(
        joined.contains("static_analysis.quarantine.high_risk_threshold: must be between 0 and 10"),
        "{joined}"
    );
    assert!(
        joined.contains("config/tls.yml: tls.cert_file: /nonexistent/cert.pem does not exist"),
        "{joined}"
    );
    assert!(joined.contains("tls.key_file"), "{joined}");
}

#[test]
fn a_short_jwt_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "security.yml",
        "auth:\n  jwt:\n    secret: \"short\"\n",
    );
    assert!(problems(dir.path())[0].contains("auth.jwt.secret: is too short"));
}

#[test]
fn unknown_provider_types_and_audit_events_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "security.yml",
        "auth:\n  providers:\n    - type: saml\n      enabled: true\n      config: {}\n",
    );
    write(
        dir.path(),
        "audit.yml",
        "audit:\n  events:\n    system: [\"reboot\"]\n",
    );
    let joined = problems(dir.path()).join("\n");
    assert!(
        joined.contains("config/security.yml: auth.providers[0].type: unknown variant `saml`"),
        "{joined}"
    );
    assert!(
        joined.contains("config/audit.yml: audit.events.system[0]: unknown variant `reboot`"),
        "{joined}"
    );
}

#[test]
fn a_database_file_selects_postgres_with_its_settings() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "database.yml",
        "database:\n  host: db.internal\n  password: \"${DB_PASSWORD}\"\n  ssl_mode: disable\n  ssl_cert: null\n  ssl_key: null\n  ssl_ca: null\n",
    );
    let config = load_dir(dir.path(), &[("DB_PASSWORD", "pw")]).unwrap();
    let db = config.database.unwrap().database;
    assert_eq!(
        (db.host.as_str(), db.port, db.name.as_str()),
        ("db.internal", 5432, "wasmdb")
    );
    assert_eq!(db.password.expose_secret(), "pw");
    assert_eq!(db.statement_timeout.duration().as_secs(), 30);
}
