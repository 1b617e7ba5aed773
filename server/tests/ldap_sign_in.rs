//! LDAP sign-in against the real binary and a real OpenLDAP `slapd`, started by the test in a
//! temporary directory (`support/slapd.sh`: users alice and bob, groups wasm-admins and
//! developers, a CA for ldaps and StartTLS). On SQLite and PostgreSQL: the right password signs
//! in and creates the account with the roles its groups map to, a wrong one does not, an LDAP
//! filter injection in the username finds nobody, and a stopped directory gives a clear 503 for
//! its users while local accounts keep signing in.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::{FreshDb, Server, config_copy};

/// A throwaway slapd; killed (and reaped) when dropped.
struct Slapd {
    child: Child,
    dir: PathBuf,
    port: u16,
    tls_port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Slapd {
    fn start(dir: &Path) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/slapd.sh");
        let (port, tls_port) = (free_port(), free_port());
        let child = Command::new("bash")
            .arg(script)
            .arg(dir)
            .arg(port.to_string())
            .arg(tls_port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slapd.sh runs (Debian's slapd is installed by .ci/setup)");
        let slapd = Self {
            child,
            dir: dir.to_path_buf(),
            port,
            tls_port,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return slapd;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "slapd did not start: {}",
            std::fs::read_to_string(dir.join("setup.log")).unwrap_or_default()
        );
    }

    fn stop(mut self) -> PathBuf {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.clone()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repository's config with LDAP turned on: `server` as given, groups mapped to roles.
fn ldap_config(root: &Path, server: &str, extra: &str) -> PathBuf {
    let more = format!(
        "user_filter: \"(uid=%s)\"\n        group_roles:\n          wasm-admins: admin\n          developers: developer\n        timeout: 3s{extra}"
    );
    config_copy(
        root,
        &[
            (
                "security.yml",
                "- type: \"ldap\"\n      enabled: false",
                "- type: \"ldap\"\n      enabled: true",
            ),
            (
                "security.yml",
                "\"ldap://127.0.0.1:389\"",
                &format!("\"{server}\""),
            ),
            ("security.yml", "user_filter: \"(uid=%s)\"", &more),
        ],
    )
}

const ENV: &[(&str, &str)] = &[("LDAP_BIND_PASSWORD", "admin-secret")];

async fn login(server: &Server, user: &str, password: &str) -> (StatusCode, Value) {
    let r = Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn me(server: &Server, token: &str) -> Value {
    Client::new()
        .get(server.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn create_admin(config: &Path, data: &Path, db: Option<&str>) {
    support::create_admin_env(config, data, db, ENV);
}

async fn events(server: &Server, admin: &str, kind: &str) -> Vec<Value> {
    support::audit_events(server, admin, kind).await
}

async fn directory_sign_in(db: Option<&str>) {
    let root = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(&root.path().join("slapd"));
    let config = ldap_config(root.path(), &format!("ldap://127.0.0.1:{}", slapd.port), "");
    let data = root.path().join("data");
    create_admin(&config, &data, db);
    let server = Server::start_with_config(&config, &data, db, ENV);

    // The right password: signed in, the account made, with the roles of alice's groups.
    let (status, pair) = login(&server, "alice", "Alice-Pass-1").await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let alice = me(&server, pair["access_token"].as_str().unwrap()).await;
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["roles"], json!(["admin", "developer"]), "{alice}");
    let (status, pair) = login(&server, "bob", "Bob-Pass-2").await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let bob = me(&server, pair["access_token"].as_str().unwrap()).await;
    assert_eq!(bob["roles"], json!(["developer"]), "{bob}");
    // And again, now that the account exists.
    let (status, _) = login(&server, "alice", "Alice-Pass-1").await;
    assert_eq!(status, StatusCode::OK);

    // Wrong passwords, unknown names, an empty password and filter injections are all 401.
    for (user, password) in [
        ("alice", "Wrong-Pass-1"),
        ("alice", ""),
        ("carol", "Alice-Pass-1"),
        ("*)(uid=*))(|(uid=*", "Alice-Pass-1"),
        ("*", "Alice-Pass-1"),
        ("alice)(|(uid=*", "Alice-Pass-1"),
    ] {
        let (status, body) = login(&server, user, password).await;
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{user:?}/{password:?}: {status} {body}"
        );
    }

    // A local account of the same name as nobody in the directory still signs in locally.
    let (status, admin) = login(&server, "admin", "SecurePassword123!").await;
    assert_eq!(status, StatusCode::OK);
    let admin = admin["access_token"].as_str().unwrap().to_string();
    let success = events(&server, &admin, "login_success").await;
    assert!(
        success
            .iter()
            .any(|e| e["actor"]["name"] == "alice" && e["details"]["provider"] == "ldap"),
        "{success:#?}"
    );
    assert!(
        success
            .iter()
            .any(|e| e["actor"]["name"] == "admin" && e["details"]["provider"] == "local")
    );
    let created = events(&server, &admin, "user_create").await;
    assert!(
        created
            .iter()
            .any(|e| e["details"]["username"] == "alice" && e["details"]["provider"] == "ldap"),
        "{created:#?}"
    );

    // The directory stops: its people get a clear 503; local accounts keep signing in.
    let slapd_dir = slapd.stop();
    let (status, body) = login(&server, "alice", "Alice-Pass-1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "provider_unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("LDAP directory cannot be reached"),
        "{body}"
    );
    let (status, _) = login(&server, "admin", "SecurePassword123!").await;
    assert_eq!(status, StatusCode::OK);
    let failures = events(&server, &admin, "login_failure").await;
    assert!(
        failures
            .iter()
            .any(|e| e["details"]["reason"] == "directory_unavailable"),
        "{failures:#?}"
    );

    // Nothing secret reached the server's log.
    let (_, log) = server.terminate();
    let log = log.join("\n");
    assert!(
        !log.contains("admin-secret"),
        "the bind password was logged"
    );
    assert!(!log.contains("Alice-Pass-1"), "a password was logged");
    drop(slapd_dir);
}

#[tokio::test]
async fn directory_sign_in_on_sqlite() {
    directory_sign_in(None).await;
}

#[tokio::test]
async fn directory_sign_in_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    directory_sign_in(Some(&db.url)).await;
}

#[tokio::test]
async fn ldaps_and_starttls_verify_the_directory_certificate() {
    let root = tempfile::tempdir().unwrap();
    let slapd = Slapd::start(&root.path().join("slapd"));
    let ca = slapd.dir.join("ca.crt");
    for (n, (server, extra)) in [
        (
            format!("ldaps://127.0.0.1:{}", slapd.tls_port),
            format!("\n        ca_file: \"{}\"", ca.display()),
        ),
        (
            format!("ldap://127.0.0.1:{}", slapd.port),
            format!(
                "\n        starttls: true\n        ca_file: \"{}\"",
                ca.display()
            ),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let case = root.path().join(format!("case{n}"));
        let config = ldap_config(&case, &server, &extra);
        let data = case.join("data");
        let server = Server::start_with_config(&config, &data, None, ENV);
        let (status, body) = login(&server, "bob", "Bob-Pass-2").await;
        assert_eq!(status, StatusCode::OK, "{extra}: {body}");
    }

    // Without the CA the directory's certificate is not trusted: no sign-in, a 503.
    let case = root.path().join("untrusted");
    let config = ldap_config(&case, &format!("ldaps://127.0.0.1:{}", slapd.tls_port), "");
    let server = Server::start_with_config(&config, &case.join("data"), None, ENV);
    let (status, body) = login(&server, "bob", "Bob-Pass-2").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}
