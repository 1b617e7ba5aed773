//! Helpers shared by the test suites of `platform` and `wasm-as-os` (a dev-dependency only).
//!
//! The rule they enforce: under `CI=true` a test whose server or tool is missing fails; it never
//! returns early. Outside CI (a developer without PostgreSQL, say) the test prints a notice and
//! skips only the part that needs the missing piece.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sea_orm::{ConnectionTrait, Database};

/// True when running under CI (`CI=true`), where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Says that `what` is missing: panics under CI, prints a notice and returns `false` elsewhere.
fn missing(what: &str) -> bool {
    assert!(
        !in_ci(),
        "{what} is required under CI=true (.ci/test provides it)"
    );
    eprintln!("notice: {what} is missing; skipping this part of the test");
    false
}

/// Whether the command `program` runs (with `args`, e.g. `["--version"]`). Under CI a missing
/// program fails the test.
pub fn require_tool(program: &str, args: &[&str]) -> bool {
    match std::process::Command::new(program).args(args).output() {
        Ok(_) => true,
        Err(_) => missing(&format!("the command `{program}`")),
    }
}

/// A database created for one test on the server at `TEST_POSTGRES_URL`. It is dropped when this
/// value is dropped, also when the test panics.
pub struct FreshDb {
    admin_url: String,
    /// The new database's URL.
    pub url: String,
    name: String,
    dropped: bool,
}

impl FreshDb {
    /// A fresh database, or `None` (with a notice) when `TEST_POSTGRES_URL` is not set outside
    /// CI. Under CI a missing or unreachable server fails the test.
    pub async fn create() -> Option<Self> {
        let Ok(admin_url) = std::env::var("TEST_POSTGRES_URL") else {
            missing("PostgreSQL (TEST_POSTGRES_URL)");
            return None;
        };
        let name = format!("wasm_as_os_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url)
            .await
            .expect("TEST_POSTGRES_URL must be reachable");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        Some(Self {
            admin_url,
            url: url.to_string(),
            name,
            dropped: false,
        })
    }

    /// Drops the database now (the same happens on drop; this form reports errors).
    pub async fn drop_db(mut self) {
        self.dropped = true;
        drop_database(&self.admin_url, &self.name).await;
    }
}

async fn drop_database(admin_url: &str, name: &str) {
    if let Ok(admin) = Database::connect(admin_url).await {
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
        let _ = admin.close().await;
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Drop may run inside a runtime (or while a test panics): drop on a thread of its own.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_database(&admin_url, &name));
            }
        })
        .join();
    }
}

/// The files under `dir` (recursively) whose bytes hold `needle`, gzip files decompressed: where
/// an erased person's values could still be.
pub fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, bytes) in file_bytes(dir) {
        if bytes
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
        {
            out.push(path);
        }
    }
    out
}

/// Every file under `dir` (recursively) with its bytes, gzip files decompressed.
pub fn file_bytes(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(file_bytes(&path));
            continue;
        }
        let Ok(mut bytes) = std::fs::read(&path) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "gz") {
            let mut plain = Vec::new();
            if std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut plain)
                .is_ok()
            {
                bytes = plain;
            }
        }
        out.push((path.display().to_string(), bytes));
    }
    out
}

/// The Redis the tests may use (`TEST_REDIS_URL`, else `redis://127.0.0.1:6379/0`), if it
/// accepts connections; under CI a missing one fails the test.
pub fn redis_url() -> Option<String> {
    let url =
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_string());
    let host = url
        .trim_start_matches("redis://")
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let reachable = std::net::ToSocketAddrs::to_socket_addrs(&host)
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| {
            std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2)).is_ok()
        });
    if reachable {
        Some(url)
    } else {
        missing(&format!("Redis at {host}"));
        None
    }
}

/// A real rsyslog on a loopback port, writing what it receives to a file.
pub struct Rsyslog {
    child: std::process::Child,
    /// The file rsyslog writes each message to: `facility severity app-name msgid message`.
    pub out: std::path::PathBuf,
}

impl Rsyslog {
    /// Starts rsyslogd listening on a free loopback port over `protocol` (`udp` or `tcp`).
    pub fn start(dir: &std::path::Path, protocol: &str) -> Option<(Self, u16)> {
        if !require_tool("rsyslogd", &["-v"]) {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = dir.join("received.log");
        let module = if protocol == "udp" { "imudp" } else { "imtcp" };
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{work}\")\nmodule(load=\"{module}\")\ninput(type=\"{module}\" address=\"127.0.0.1\" port=\"{port}\")\n\
                 template(name=\"t\" type=\"string\" string=\"%syslogfacility-text% %syslogseverity-text% %app-name% %msgid% %msg%\\n\")\n\
                 *.* action(type=\"omfile\" file=\"{out}\" template=\"t\")\n",
                work = dir.display(),
                out = out.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(700));
        Some((Self { child, out }, port))
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The line of the repository's `config/soc2.yml` that names the roles a second factor is
/// required of.
pub const MFA_ROLES_LINE: &str = "multi_factor_roles: [\"admin\"]";

/// The config the test suites run on: a copy of the repository's `config/` (made once per test
/// process) in which soc2.yml requires a second factor of no role, so tests about other things
/// can sign in as an administrator with a password alone. The second-factor tests turn it back
/// on (see `server/tests/mfa_api.rs`); everything else is the repository's config as written.
pub fn test_config_dir() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
        let dir = std::env::temp_dir().join(format!(
            "wasm-as-os-test-config-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&repo).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
            }
        }
        let soc2 = dir.join("soc2.yml");
        let text = std::fs::read_to_string(&soc2).unwrap();
        assert!(
            text.contains(MFA_ROLES_LINE),
            "config/soc2.yml has no {MFA_ROLES_LINE}"
        );
        std::fs::write(
            &soc2,
            text.replacen(MFA_ROLES_LINE, "multi_factor_roles: []", 1),
        )
        .unwrap();
        dir
    })
    .clone()
}
