//! The spec's user-management command lines, verbatim, against SQLite and (when TEST_POSTGRES_URL is
//! set) a fresh PostgreSQL database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

use std::{path::Path, process::Output};

mod support;

use sea_orm::{ConnectionTrait, Database};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-as-os");

struct Env<'a> {
    data_dir: &'a Path,
    database_url: Option<String>,
}

impl Env<'_> {
    /// Runs one spec line (everything after `./wasm-as-os`).
    fn run(&self, line: &str) -> Output {
        let args = shell_words(line);
        let mut cmd = std::process::Command::new(BIN);
        cmd.arg("--config-dir")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../config"));
        cmd.arg("--data-dir")
            .arg(self.data_dir)
            .args(args)
            .env("RUST_LOG", "off")
            .env_remove("DATABASE_URL");
        match &self.database_url {
            Some(url) => cmd.env("WASM_AS_OS_DATABASE_URL", url),
            None => cmd.env_remove("WASM_AS_OS_DATABASE_URL"),
        };
        cmd.output().unwrap()
    }

    fn ok(&self, line: &str) -> String {
        let out = self.run(line);
        assert!(
            out.status.success(),
            "`{line}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, line: &str) -> String {
        let out = self.run(line);
        assert!(!out.status.success(), "`{line}` should fail");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(err.lines().count(), 1, "one readable line: {err}");
        assert!(!err.contains("panicked"), "{err}");
        err
    }
}

/// Splits a command line the way a shell would for the spec's lines (double quotes, backslash-newline).
fn shell_words(line: &str) -> Vec<String> {
    let line = line.replace("\\\n", " ");
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut in_word = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            c => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

fn spec_lines(env: &Env<'_>) {
    let out = env.ok("admin create-user \\\n  --username admin \\\n  --password \"SecurePassword123!\" \\\n  --email admin@company.com \\\n  --roles admin");
    assert_eq!(
        out,
        "created user admin <admin@company.com> with roles: admin\n"
    );
    env.ok("admin create-user \\\n  --username developer1 \\\n  --password \"DevPassword123!\" \\\n  --email dev1@company.com \\\n  --roles developer");
    let out = env.ok("admin update-user \\\n  --username developer1 \\\n  --add-roles operator");
    assert_eq!(out, "updated user developer1: roles developer, operator\n");
    assert_eq!(
        env.ok("admin disable-user --username developer1"),
        "disabled user developer1\n"
    );

    let table = env.ok("admin list-users --format table");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0]
            .starts_with("USERNAME    EMAIL              ROLES               STATUS    CREATED"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("admin       admin@company.com  admin               active"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("developer1  dev1@company.com   developer,operator  disabled"),
        "{table}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&env.ok("admin list-users --format json")).unwrap();
    assert_eq!(json[1]["username"], "developer1");
    assert_eq!(
        json[1]["roles"],
        serde_json::json!(["developer", "operator"])
    );
    assert!(
        json[0].get("password_hash").is_none(),
        "no hash leaves the service"
    );
    let csv = env.ok("admin list-users --format csv");
    assert!(
        csv.starts_with(
            "username,email,roles,status,created_at\nadmin,admin@company.com,admin,active,"
        ),
        "{csv}"
    );

    env.ok("admin enable-user --username developer1");
    env.ok(
        "admin update-user --username developer1 --remove-roles operator --email dev1@corp.example",
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok("admin list-users --format json")).unwrap();
    assert_eq!(json[1]["roles"], serde_json::json!(["developer"]));
    assert_eq!(json[1]["email"], "dev1@corp.example");
    assert_eq!(json[1]["disabled"], false);
}

fn bad_input(env: &Env<'_>) {
    let err = env.fails("admin create-user --username bob --password weakpass --email bob@company.com --roles viewer");
    assert_eq!(
        err,
        "error: password must contain an uppercase letter, must contain a number, must contain a symbol\n"
    );
    let err = env.fails("admin create-user --username bob --password Str0ng!Passw0rd --email not-an-email --roles viewer");
    assert_eq!(
        err,
        "error: email \"not-an-email\" is not a valid email address\n"
    );
    let err = env.fails("admin create-user --username bob --password Str0ng!Passw0rd --email bob@company.com --roles wizard");
    assert_eq!(err, "error: roles unknown role \"wizard\"\n");
    let err = env.fails("admin create-user --username admin --password Str0ng!Passw0rd --email other@company.com --roles viewer");
    assert_eq!(err, "error: a user named \"admin\" already exists\n");
    let err = env.fails("admin disable-user --username nobody");
    assert_eq!(err, "error: no user named \"nobody\"\n");
    let json: serde_json::Value =
        serde_json::from_str(&env.ok("admin list-users --format json")).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2, "nothing half-written");
}

async fn audit_events(url: &str) -> Vec<(String, String)> {
    let db = Database::connect(url).await.unwrap();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT event, details FROM audit_logs ORDER BY occurred_at, id",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.try_get::<String>("", "event").unwrap(),
                r.try_get::<serde_json::Value>("", "details")
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

async fn assert_audited(url: &str) {
    let events = audit_events(url).await;
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names,
        [
            "user_create",
            "user_create",
            "role_change",
            "user_disable",
            "user_enable",
            "user_update",
            "role_change"
        ]
    );
    for (_, details) in &events {
        assert!(
            !details.contains("Password123"),
            "no password in an audit event: {details}"
        );
    }
}

#[tokio::test]
async fn the_specs_user_management_lines_work_verbatim_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        data_dir: dir.path(),
        database_url: None,
    };
    spec_lines(&env);
    bad_input(&env);
    assert_audited(&format!(
        "sqlite://{}?mode=ro",
        dir.path().join("wasm-as-os.db").display()
    ))
    .await;
}

#[tokio::test]
async fn the_specs_user_management_lines_work_verbatim_on_postgres() {
    let Some(db) = support::FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        data_dir: dir.path(),
        database_url: Some(db.url.clone()),
    };
    spec_lines(&env);
    bad_input(&env);
    assert_audited(&db.url).await;
    db.drop_db().await;
}
