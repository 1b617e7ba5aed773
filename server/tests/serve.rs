//! The real server, started on port 0 with a fresh data dir: on SQLite, and on PostgreSQL when
//! TEST_POSTGRES_URL is set (a fresh database per test).

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

mod support;

use sea_orm::{ConnectionTrait, Database};

const BIN: &str = env!("CARGO_BIN_EXE_wasm-as-os");

fn repo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

struct Server {
    child: Child,
    base: String,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Server {
    fn start(data_dir: &Path, database_url: Option<&str>) -> Self {
        Self::start_with(data_dir, database_url, &[])
    }

    fn start_with(data_dir: &Path, database_url: Option<&str>, global_args: &[&str]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config-dir").arg(repo_config()).arg("--data-dir").arg(data_dir).args(global_args);
        cmd.args(["serve", "--listen", "127.0.0.1:0"]).env_remove("DATABASE_URL").env("RUST_LOG", "info");
        if let Some(url) = database_url {
            cmd.env("WASM_AS_OS_DATABASE_URL", url);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut base = None;
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on ") {
                base = Some(addr.to_string());
                break;
            }
        }
        let base = base.unwrap_or_else(|| {
            let log: Vec<String> = rx.try_iter().collect();
            panic!("the server did not start: {log:#?}")
        });
        Self { child, base, stderr: rx }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = self.stderr.try_iter().collect();
                return (status, log);
            }
            assert!(std::time::Instant::now() < deadline, "the server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn exercise(server: &Server) {
    let http = reqwest::Client::new();

    let health = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"status": "ok"}));

    let ready = http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "ready", "database": "ok", "migrations": "ok"})
    );

    let home = http.get(server.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.headers().contains_key("x-request-id"), "every response carries its request id");
    let html = home.text().await.unwrap();
    assert!(html.contains("<title>Overview · wasm-as-os</title>"), "{html}");
    for area in ["Users", "Roles", "Modules", "Scheduler", "Snapshots", "Audit", "Security", "Compliance"] {
        assert!(html.contains(&format!("<span class=\"nav-label\">{area}</span>")), "sidebar lacks {area}");
    }
    assert!(html.contains("up to date"), "the status panel is rendered on the server: {html}");

    let users = http.get(server.url("/users")).send().await.unwrap();
    assert_eq!(users.status(), 200);
    let html = users.text().await.unwrap();
    assert!(html.contains("Users is not available yet"), "{html}");
    assert!(html.contains("aria-current=\"page\""), "the current area is marked in the sidebar");

    let missing = http.get(server.url("/no/such/page")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("Page not found"));

    let status = http.get(server.url("/api/system/status")).send().await.unwrap();
    assert_eq!(status.status(), 200);
    let status: serde_json::Value = status.json().await.unwrap();
    assert_eq!(status["database_reachable"], true);
    assert_eq!(status["schema_current"], true);
}

fn assert_clean_stop(server: Server) {
    let (status, log) = server.terminate();
    assert!(status.success(), "exit status {status:?}; log: {log:#?}");
    assert!(log.iter().any(|l| l.contains("shutting down")), "{log:#?}");
    assert!(log.iter().any(|l| l.contains("request") && l.contains("path=/healthz") && l.contains("request_id=")), "one log line per request with its id: {log:#?}");
}

async fn lifecycle_events(url: &str) -> Vec<String> {
    let db = Database::connect(url).await.unwrap();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT event FROM audit_logs ORDER BY occurred_at",
        ))
        .await
        .unwrap();
    rows.iter().map(|r| r.try_get::<String>("", "event").unwrap()).collect()
}

#[tokio::test]
async fn the_server_serves_pages_health_and_server_functions_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None);
    exercise(&server).await;
    assert_clean_stop(server);
    let db = format!("sqlite://{}?mode=ro", dir.path().join("wasm-as-os.db").display());
    assert_eq!(lifecycle_events(&db).await, ["service_start", "service_stop"]);
    assert!(dir.path().join("jwt_secret").is_file(), "a first local run generates its JWT secret");
}

#[tokio::test]
async fn the_server_serves_pages_health_and_server_functions_on_postgres() {
    let Some(db) = support::FreshDb::create().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some(db.url.as_str()));
    exercise(&server).await;
    assert_clean_stop(server);
    assert_eq!(lifecycle_events(&db.url).await, ["service_start", "service_stop"]);
    assert!(!dir.path().join("wasm-as-os.db").exists(), "PostgreSQL was used, not the embedded file");
    db.drop_db().await;
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), None, &["--log-format", "json"]);
    let response = reqwest::get(server.url("/readyz?token=secret-value")).await.unwrap();
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_string();
    let (status, log) = server.terminate();
    assert!(status.success());
    let lines: Vec<serde_json::Value> = log.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let request = lines.iter().find(|l| l["path"] == "/readyz").expect("a line for the request");
    assert_eq!(request["request_id"], request_id.as_str());
    assert_eq!(request["status"], 200);
    assert!(!log.join("\n").contains("secret-value"), "query strings are never logged");
}
