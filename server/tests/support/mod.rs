//! Shared by the integration tests: the real server on port 0, and a fresh PostgreSQL database.
#![allow(dead_code, unused_imports)]

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

pub use testkit::FreshDb;

pub const BIN: &str = env!("CARGO_BIN_EXE_wasm-as-os");

/// The repository's config as the tests run it: see [`testkit::test_config_dir`] (no role needs a
/// second factor unless a test says so).
pub fn repo_config() -> PathBuf {
    testkit::test_config_dir()
}

pub struct Server {
    child: Child,
    base: String,
    stderr: std::sync::mpsc::Receiver<String>,
    stdout: std::sync::mpsc::Receiver<String>,
}

impl Server {
    pub fn start(data_dir: &Path, database_url: Option<&str>) -> Self {
        Self::start_with(data_dir, database_url, &[])
    }

    pub fn start_with(data_dir: &Path, database_url: Option<&str>, global_args: &[&str]) -> Self {
        Self::start_full(
            &repo_config(),
            data_dir,
            database_url,
            global_args,
            &[],
            &[],
        )
    }

    /// Starts with the config dir `config_dir` instead of the repository's.
    pub fn start_in(config_dir: &Path, data_dir: &Path, database_url: Option<&str>) -> Self {
        Self::start_full(config_dir, data_dir, database_url, &[], &[], &[])
    }

    /// Starts with its own config dir (instead of the repository's) and environment variables.
    pub fn start_with_config(
        config_dir: &Path,
        data_dir: &Path,
        database_url: Option<&str>,
        envs: &[(&str, &str)],
    ) -> Self {
        Self::start_full(config_dir, data_dir, database_url, &[], &[], envs)
    }

    /// Like [`Self::start_with`], with extra environment variables for the server.
    pub fn start_with_env(
        data_dir: &Path,
        database_url: Option<&str>,
        global_args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        Self::start_full(
            &repo_config(),
            data_dir,
            database_url,
            global_args,
            &[],
            envs,
        )
    }

    /// Starts with extra `serve` flags (after the subcommand).
    pub fn start_serve_args(
        data_dir: &Path,
        database_url: Option<&str>,
        serve_args: &[&str],
    ) -> Self {
        Self::start_full(&repo_config(), data_dir, database_url, &[], serve_args, &[])
    }

    fn start_full(
        config_dir: &Path,
        data_dir: &Path,
        database_url: Option<&str>,
        global_args: &[&str],
        serve_args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.envs(envs.iter().copied());
        cmd.arg("--config-dir")
            .arg(config_dir)
            .arg("--data-dir")
            .arg(data_dir)
            .args(global_args);
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .args(serve_args)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", "info");
        if let Some(url) = database_url {
            cmd.env("WASM_AS_OS_DATABASE_URL", url);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Stdout is read to the end (the server prints the set-up link after the address).
        let (out_tx, out_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = out_tx.send(line);
            }
        });
        let mut base = None;
        while let Ok(line) = out_rx.recv_timeout(Duration::from_secs(60)) {
            if let Some(addr) = line.strip_prefix("listening on ") {
                base = Some(addr.to_string());
                break;
            }
        }
        let base = base.unwrap_or_else(|| {
            let log: Vec<String> = rx.try_iter().collect();
            panic!("the server did not start: {log:#?}")
        });
        Self {
            child,
            base,
            stderr: rx,
            stdout: out_rx,
        }
    }

    /// The first line of stdout containing `needle`, waiting up to ten seconds.
    pub fn stdout_line(&self, needle: &str) -> Option<String> {
        first_line(&self.stdout, needle)
    }

    /// The first line of stderr (the log) containing `needle`, waiting up to ten seconds.
    pub fn stderr_line(&self, needle: &str) -> Option<String> {
        first_line(&self.stderr, needle)
    }

    /// Sends a signal (`-HUP`, …) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Kills the process with SIGKILL: no shutdown, no flush.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits for the process to end by itself (a failpoint's abort); its exit status.
    pub fn wait_exit(mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = self.stderr.try_iter().collect();
                return (status, log);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The next line from `lines` containing `needle`, waiting up to ten seconds.
fn first_line(lines: &std::sync::mpsc::Receiver<String>, needle: &str) -> Option<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return Some(line),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Runs the CLI against a data dir (and PostgreSQL when given), returning its output.
pub fn run_cli(data_dir: &Path, database_url: Option<&str>, args: &[&str]) -> std::process::Output {
    run_cli_in(&repo_config(), data_dir, database_url, args)
}

/// [`run_cli`] with the config dir `config_dir`.
pub fn run_cli_in(
    config_dir: &Path,
    data_dir: &Path,
    database_url: Option<&str>,
    args: &[&str],
) -> std::process::Output {
    run_cli_env(config_dir, data_dir, database_url, &[], args)
}

/// The CLI on `config_dir` with extra environment variables (the `${VAR}`s a config reads).
pub fn run_cli_env(
    config_dir: &Path,
    data_dir: &Path,
    database_url: Option<&str>,
    envs: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.envs(envs.iter().copied());
    cmd.arg("--config-dir")
        .arg(config_dir)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("RUST_LOG", "off")
        .env_remove("DATABASE_URL");
    match database_url {
        Some(url) => cmd.env("WASM_AS_OS_DATABASE_URL", url),
        None => cmd.env_remove("WASM_AS_OS_DATABASE_URL"),
    };
    cmd.output().unwrap()
}

/// Runs the CLI and asserts it succeeded.
pub fn cli(data_dir: &Path, database_url: Option<&str>, args: &[&str]) {
    let out = run_cli(data_dir, database_url, args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Signs in over the API and returns the access token.
pub async fn token(
    http: &reqwest::Client,
    server: &Server,
    username: &str,
    password: &str,
) -> String {
    let r = http
        .post(server.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        reqwest::StatusCode::OK,
        "signing in as {username}"
    );
    let pair: serde_json::Value = r.json().await.unwrap();
    pair["access_token"].as_str().unwrap().to_string()
}

/// A copy of the repository's config dir under `root`, with each `(file, from, to)` text
/// replacement applied (each `from` must occur). Start a server on it with
/// [`Server::start_in`].
pub fn config_copy(root: &Path, edits: &[(&str, &str, &str)]) -> PathBuf {
    let dir = root.join("config");
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(repo_config()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    for (file, from, to) in edits {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }
    dir
}

/// Creates an account with the spec's CLI line (`admin create-user …`), email `<username>@company.com`.
/// [`create_user`] with the config dir `config_dir`.
pub fn create_user_in(
    config_dir: &Path,
    data_dir: &Path,
    username: &str,
    password: &str,
    roles: &str,
) {
    let email = format!("{username}@company.com");
    let out = run_cli_in(
        config_dir,
        data_dir,
        None,
        &[
            "admin",
            "create-user",
            "--username",
            username,
            "--password",
            password,
            "--email",
            &email,
            "--roles",
            roles,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn create_user(
    data_dir: &Path,
    database_url: Option<&str>,
    username: &str,
    password: &str,
    roles: &str,
) {
    let email = format!("{username}@company.com");
    cli(
        data_dir,
        database_url,
        &[
            "admin",
            "create-user",
            "--username",
            username,
            "--password",
            password,
            "--email",
            &email,
            "--roles",
            roles,
        ],
    );
}

/// The administrator most tests sign in as: `admin` / `SecurePassword123!`.
pub fn create_admin(data_dir: &Path, database_url: Option<&str>) {
    create_user(
        data_dir,
        database_url,
        "admin",
        "SecurePassword123!",
        "admin",
    );
}

/// The browser session cookie a response sets, as `name=value`.
pub fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("wasm_as_os_session="))
        .map(|c| c.split(';').next().unwrap().to_string())
}

/// `admin` / `SecurePassword123!` created through the CLI on `config_dir`, with `envs`.
pub fn create_admin_env(
    config_dir: &Path,
    data_dir: &Path,
    database_url: Option<&str>,
    envs: &[(&str, &str)],
) {
    let args = [
        "admin",
        "create-user",
        "--username",
        "admin",
        "--password",
        "SecurePassword123!",
        "--email",
        "admin@company.com",
        "--roles",
        "admin",
    ];
    let out = run_cli_env(config_dir, data_dir, database_url, envs, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Audit events named `event` (newest first, up to 200), read over the API with `token`.
pub async fn audit_events(server: &Server, token: &str, event: &str) -> Vec<serde_json::Value> {
    let body: serde_json::Value = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/audit/events?event={event}&limit=200")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["events"].as_array().cloned().unwrap_or_default()
}

/// `promtool check metrics` on `text`: whether it passed and what it said (`None`: promtool is
/// missing, which fails the test under `CI=true`).
pub fn promtool(text: &str) -> Option<(bool, String)> {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        testkit::require_tool("promtool", &["--version"]);
        return None;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Some((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// A client that does not follow redirects, as the dashboard tests need to see them.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Posts a dashboard form the way a browser without JavaScript does.
pub async fn form(
    http: &reqwest::Client,
    server: &Server,
    path: &str,
    from: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    use reqwest::header::{ACCEPT, COOKIE, REFERER};
    let mut request = http
        .post(server.url(path))
        .header(ACCEPT, "text/html")
        .header(REFERER, server.url(from))
        .form(fields);
    if let Some(c) = cookie {
        request = request.header(COOKIE, c);
    }
    request.send().await.unwrap()
}

/// A response's `Location`, or "".
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(reqwest::header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}
