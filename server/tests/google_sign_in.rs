//! "Sign in with Google" against the real binary, with a real OpenID provider standing in for
//! Google: `end2end/oidc-provider.mjs` (npm `oauth2-mock-server`), started on a free port with its
//! issuer set to its own address and configured through the same security.yml keys as Google
//! plus `issuer`. The browser's steps are taken by hand (no redirects followed, the session cookie
//! carried), so each refusal can be provoked: a replayed or foreign `state`, a missing code, the
//! provider's error, a wrong nonce, another audience, a key not in the JWKS, an expired token, an
//! unverified email. Each lands on the sign-in page with its code and is a `login_failure` event.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
};

use reqwest::{
    Client, StatusCode,
    header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE},
    redirect::Policy,
};
use serde_json::{Value, json};
use support::{FreshDb, Server, config_copy};

const CLIENT_ID: &str = "wasm-as-os-test";
const CLIENT_SECRET: &str = "google-test-secret-7f3a";

/// The OpenID provider: `node end2end/oidc-provider.mjs` on a free port.
struct Provider {
    child: Child,
    _stdin: ChildStdin,
    issuer: String,
    control: String,
}

impl Provider {
    fn start() -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../end2end/oidc-provider.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs (the OpenID provider of the tests)");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the provider did not start ({e}): {line:?}"));
        Self {
            child,
            _stdin: stdin,
            issuer: ready["issuer"].as_str().unwrap().to_string(),
            control: ready["control"].as_str().unwrap().to_string(),
        }
    }

    async fn control(&self, body: Value) -> Value {
        let r = Client::new()
            .post(&self.control)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "control {body}");
        r.json().await.unwrap()
    }

    async fn jwks_fetches(&self) -> u64 {
        self.control(json!({"stats": true})).await["jwks_fetches"]
            .as_u64()
            .unwrap()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repository's config with Google turned on and pointed at `issuer`.
fn google_config(root: &Path, issuer: &str, auto_provision: bool) -> PathBuf {
    let google = format!(
        "client_id: \"{CLIENT_ID}\"\n          issuer: \"{issuer}\"\n          auto_provision: {auto_provision}\n          default_role: \"developer\""
    );
    config_copy(
        root,
        &[
            (
                "security.yml",
                "- type: \"oauth2\"\n      enabled: false",
                "- type: \"oauth2\"\n      enabled: true",
            ),
            (
                "security.yml",
                "client_id: \"set-your-google-client-id\"",
                &google,
            ),
        ],
    )
}

fn start(config: &Path, data: &Path, db: Option<&str>) -> Server {
    Server::start_with_config(config, data, db, ENV)
}

const ENV: &[(&str, &str)] = &[("GOOGLE_CLIENT_SECRET", CLIENT_SECRET)];

fn run_cli(config: &Path, data: &Path, db: Option<&str>, args: &[&str]) -> std::process::Output {
    support::run_cli_env(config, data, db, ENV, args)
}

fn cli(config: &Path, data: &Path, db: Option<&str>, args: &[&str]) {
    let out = run_cli(config, data, db, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One browser: its session cookie, carried by hand.
struct Browser {
    http: Client,
    cookie: Option<String>,
}

impl Browser {
    fn new() -> Self {
        Self {
            http: Client::builder().redirect(Policy::none()).build().unwrap(),
            cookie: None,
        }
    }

    fn keep_cookie(&mut self, r: &reqwest::Response) {
        if let Some(c) = r
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("wasm_as_os_session="))
        {
            self.cookie = Some(c.split(';').next().unwrap().to_string());
        }
    }

    async fn send(&mut self, mut request: reqwest::RequestBuilder) -> (StatusCode, String) {
        if let Some(c) = &self.cookie {
            request = request.header(COOKIE, c);
        }
        let r = request.send().await.unwrap();
        self.keep_cookie(&r);
        let location = r
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (r.status(), location)
    }

    /// Presses "Sign in with Google" (or "Link Google"): the provider's authorization address.
    async fn begin(&mut self, server: &Server, fields: &[(&str, &str)]) -> String {
        let request = self
            .http
            .post(server.url("/auth/google"))
            .header(ORIGIN, server.url("").trim_end_matches('/'))
            .form(fields);
        let (status, location) = self.send(request).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
        location
    }

    /// The provider sends the browser back: the callback's query.
    async fn authorize(&self, url: &str) -> String {
        let r = self.http.get(url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FOUND, "{url}");
        let back = r.headers()[LOCATION].to_str().unwrap();
        assert!(back.contains("/auth/callback?"), "{back}");
        back.split_once('?').unwrap().1.to_string()
    }

    /// The callback reaches the server: where it sends the browser.
    async fn callback(&mut self, server: &Server, query: &str) -> String {
        let request = self
            .http
            .get(server.url(&format!("/auth/callback?{query}")));
        let (status, location) = self.send(request).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{location}");
        location
    }

    /// The whole round trip: where the browser ends up.
    async fn sign_in_with_google(&mut self, server: &Server) -> String {
        let url = self.begin(server, &[("next", "/modules")]).await;
        let query = self.authorize(&url).await;
        self.callback(server, &query).await
    }

    /// The signed-in user's name, from the dashboard's `auth/me` server function.
    async fn me(&mut self, server: &Server) -> Option<String> {
        let mut request = self.http.get(server.url("/api/auth/me"));
        if let Some(c) = &self.cookie {
            request = request.header(COOKIE, c);
        }
        let body: Value = request.send().await.unwrap().json().await.unwrap();
        body["username"].as_str().map(str::to_string)
    }

    /// The account page's linked sign-ins (the `identities/list` server function).
    async fn linked(&self, server: &Server) -> Value {
        self.http
            .get(server.url("/api/identities/list"))
            .header(COOKIE, self.cookie.clone().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Presses "Unlink" on a linked sign-in: as the hydrated page does (the error as it is), or
    /// as the form without JavaScript does (`accept: text/html`, answered with a redirect).
    async fn unlink(&self, server: &Server, id: &str, html: bool) -> reqwest::Response {
        let mut request = self
            .http
            .post(server.url("/api/identities/unlink"))
            .header(ORIGIN, server.url("").trim_end_matches('/'))
            .header(COOKIE, self.cookie.clone().unwrap());
        if html {
            request = request.header("accept", "text/html");
        }
        request.form(&[("id", id)]).send().await.unwrap()
    }

    /// Signs in with a password through the sign-in form.
    async fn sign_in_with_password(&mut self, server: &Server, user: &str, pw: &str) -> String {
        let request = self
            .http
            .post(server.url("/api/auth/sign_in"))
            .header(ORIGIN, server.url("").trim_end_matches('/'))
            .header("accept", "text/html")
            .form(&[("username", user), ("password", pw), ("next", "/")]);
        self.send(request).await.1
    }
}

async fn events(server: &Server, admin: &str, kind: &str) -> Vec<Value> {
    support::audit_events(server, admin, kind).await
}

fn reasons(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["details"]["provider"] == "google")
        .filter_map(|e| e["details"]["reason"].as_str().map(str::to_string))
        .collect()
}

async fn admin_token(server: &Server) -> String {
    support::token(&Client::new(), server, "admin", "SecurePassword123!").await
}

fn create_admin(config: &Path, data: &Path, db: Option<&str>) {
    support::create_admin_env(config, data, db, ENV);
}

#[tokio::test]
async fn google_sign_in_creates_the_account_and_refuses_every_forged_answer() {
    let provider = Provider::start();
    provider
        .control(json!({"client": {"id": CLIENT_ID, "secret": CLIENT_SECRET}}))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = google_config(dir.path(), &provider.issuer, true);
    let data = dir.path().join("data");
    create_admin(&config, &data, None);
    let server = start(&config, &data, None);
    let admin = admin_token(&server).await;

    // A first sign-in creates the account (auto_provision) with the default role, signed in.
    let mut alice = Browser::new();
    let landed = alice.sign_in_with_google(&server).await;
    assert_eq!(landed, "/modules");
    assert_eq!(alice.me(&server).await.as_deref(), Some("alice"));
    let created = events(&server, &admin, "user_create").await;
    assert!(
        created.iter().any(|e| e["details"]["username"] == "alice"
            && e["details"]["roles"] == json!(["developer"])
            && e["details"]["provider"] == "google"),
        "{created:#?}"
    );
    let success = events(&server, &admin, "login_success").await;
    assert!(
        success
            .iter()
            .any(|e| e["actor"]["name"] == "alice" && e["details"]["provider"] == "google"),
        "{success:#?}"
    );
    assert_eq!(events(&server, &admin, "identity_link").await.len(), 1);

    // The same person again: the same account, matched by subject.
    let mut again = Browser::new();
    assert_eq!(again.sign_in_with_google(&server).await, "/modules");
    assert_eq!(again.me(&server).await.as_deref(), Some("alice"));

    // A replayed callback (same state and code, same browser) is refused.
    let mut replay = Browser::new();
    let url = replay.begin(&server, &[]).await;
    let query = replay.authorize(&url).await;
    assert_eq!(replay.callback(&server, &query).await, "/");
    let mut fresh_session = Browser {
        http: replay.http.clone(),
        cookie: replay.cookie.clone(),
    };
    assert_eq!(
        fresh_session.callback(&server, &query).await,
        "/login?error=unknown_state"
    );

    // A foreign state: started in one browser, answered into another.
    let mut victim = Browser::new();
    let mut attacker = Browser::new();
    let url = attacker.begin(&server, &[]).await;
    victim.begin(&server, &[]).await;
    let query = attacker.authorize(&url).await;
    assert_eq!(
        victim.callback(&server, &query).await,
        "/login?error=unknown_state"
    );
    assert_eq!(victim.me(&server).await, None);
    // No session at all (expired, or never started here).
    let mut nobody = Browser::new();
    assert_eq!(
        nobody.callback(&server, "code=x&state=y").await,
        "/login?error=unknown_state"
    );

    // A callback without a code.
    let mut b = Browser::new();
    let url = b.begin(&server, &[]).await;
    let query = b.authorize(&url).await;
    let state_only: String = query
        .split('&')
        .filter(|p| p.starts_with("state="))
        .collect();
    assert_eq!(
        b.callback(&server, &state_only).await,
        "/login?error=missing_code"
    );

    // The provider's own refusal, and each forged ID token.
    for (mode, code) in [
        ("error", "provider_refused"),
        ("wrong_nonce", "id_token_nonce"),
        ("wrong_audience", "id_token_audience"),
        ("foreign_key", "id_token_signature"),
        ("expired", "id_token_expired"),
    ] {
        provider.control(json!({"mode": mode})).await;
        let mut b = Browser::new();
        assert_eq!(
            b.sign_in_with_google(&server).await,
            format!("/login?error={code}"),
            "{mode}"
        );
        assert_eq!(b.me(&server).await, None, "{mode}");
    }
    provider.control(json!({"mode": "normal"})).await;

    // An email the provider has not verified.
    provider
        .control(json!({"sub": "200", "email": "mallory@example.com", "email_verified": false}))
        .await;
    let mut b = Browser::new();
    assert_eq!(
        b.sign_in_with_google(&server).await,
        "/login?error=email_not_verified"
    );

    // Each refusal is a login_failure naming the provider and the reason.
    let failures = reasons(&events(&server, &admin, "login_failure").await);
    for code in [
        "unknown_state",
        "missing_code",
        "provider_refused",
        "id_token_nonce",
        "id_token_audience",
        "id_token_signature",
        "id_token_expired",
        "email_not_verified",
    ] {
        assert!(failures.iter().any(|r| r == code), "{code}: {failures:?}");
    }

    // Key rotation: a token signed by a new key (new kid) is accepted after one JWKS refetch.
    provider.control(json!({"reset": true})).await;
    provider.control(json!({"rotate": true})).await;
    let fetched = provider.jwks_fetches().await;
    let mut b = Browser::new();
    assert_eq!(b.sign_in_with_google(&server).await, "/modules");
    assert_eq!(b.me(&server).await.as_deref(), Some("alice"));
    assert_eq!(provider.jwks_fetches().await, fetched + 1);
    // A kid the provider does not publish, even after one refetch, is refused: each token (its
    // kid new each time) costs exactly one refetch, no more.
    provider.control(json!({"mode": "unknown_kid"})).await;
    for _ in 0..2 {
        let before = provider.jwks_fetches().await;
        let mut b = Browser::new();
        assert_eq!(
            b.sign_in_with_google(&server).await,
            "/login?error=id_token_unknown_key"
        );
        assert_eq!(provider.jwks_fetches().await, before + 1);
    }
    provider.control(json!({"mode": "normal"})).await;

    // A Google-only account cannot unlink its only way to sign in.
    let list = alice.linked(&server).await;
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert_eq!(list[0]["provider"], "google");
    let r = alice.unlink(&server, &id, false).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("only way to sign in"));

    // Nothing secret reached the server's log.
    let (_, log) = server.terminate();
    let log = log.join("\n");
    assert!(!log.contains(CLIENT_SECRET));
    assert!(!log.contains("code_verifier"));
    assert!(!log.contains("id_token\""), "{log}");
}

#[tokio::test]
async fn a_google_identity_with_an_existing_accounts_email_is_linked_only_after_its_password() {
    let provider = Provider::start();
    let dir = tempfile::tempdir().unwrap();
    let config = google_config(dir.path(), &provider.issuer, false);
    let data = dir.path().join("data");
    create_admin(&config, &data, None);
    cli(
        &config,
        &data,
        None,
        &[
            "admin",
            "create-user",
            "--username",
            "alice",
            "--password",
            "AlicePassword123!",
            "--email",
            "alice@example.com",
            "--roles",
            "viewer",
        ],
    );
    let server = start(&config, &data, None);
    let admin = admin_token(&server).await;

    // Same verified email as alice's account: not signed in, asked for the password.
    let mut b = Browser::new();
    assert_eq!(b.sign_in_with_google(&server).await, "/login?link=google");
    assert_eq!(b.me(&server).await, None);
    // A wrong password links nothing.
    let wrong = b
        .sign_in_with_password(&server, "alice", "WrongPassword123!")
        .await;
    assert!(!wrong.contains("linked"), "{wrong}");
    assert_eq!(events(&server, &admin, "identity_link").await.len(), 0);
    // Signing in as another account does not link it there either.
    let mut other = Browser::new();
    assert_eq!(
        other.sign_in_with_google(&server).await,
        "/login?link=google"
    );
    let landed = other
        .sign_in_with_password(&server, "admin", "SecurePassword123!")
        .await;
    assert_eq!(landed, "/");
    assert_eq!(events(&server, &admin, "identity_link").await.len(), 0);
    // The account's password links it.
    let landed = b
        .sign_in_with_password(&server, "alice", "AlicePassword123!")
        .await;
    assert_eq!(landed, "/account?linked=google#linked");
    let links = events(&server, &admin, "identity_link").await;
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["details"]["provider"], "google");
    assert_eq!(links[0]["details"]["username"], "alice");

    // From now on Google alone signs alice in.
    let mut c = Browser::new();
    assert_eq!(c.sign_in_with_google(&server).await, "/modules");
    assert_eq!(c.me(&server).await.as_deref(), Some("alice"));

    // Someone without an account, with auto_provision off: refused.
    provider
        .control(json!({"sub": "300", "email": "nobody@example.com"}))
        .await;
    let mut n = Browser::new();
    assert_eq!(
        n.sign_in_with_google(&server).await,
        "/login?error=no_account"
    );

    // alice has a password, so she may unlink Google; it is audited, and Google no longer works.
    provider.control(json!({"reset": true})).await;
    let list = c.linked(&server).await;
    let id = list[0]["id"].as_str().unwrap().to_string();
    let r = c.unlink(&server, &id, true).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let unlinked = events(&server, &admin, "identity_unlink").await;
    assert_eq!(unlinked.len(), 1);
    let mut d = Browser::new();
    assert_eq!(d.sign_in_with_google(&server).await, "/login?link=google");

    // Linking from the account page: the signed-in person presses "Link Google".
    let url = c.begin(&server, &[("link", "1")]).await;
    let query = c.authorize(&url).await;
    assert_eq!(c.callback(&server, &query).await, "/account?linked=google");
    assert_eq!(events(&server, &admin, "identity_link").await.len(), 2);
}

#[tokio::test]
async fn google_sign_in_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let provider = Provider::start();
    let dir = tempfile::tempdir().unwrap();
    let config = google_config(dir.path(), &provider.issuer, true);
    let data = dir.path().join("data");
    let server = start(&config, &data, Some(&db.url));
    let mut b = Browser::new();
    assert_eq!(b.sign_in_with_google(&server).await, "/modules");
    assert_eq!(b.me(&server).await.as_deref(), Some("alice"));
    let mut again = Browser::new();
    assert_eq!(again.sign_in_with_google(&server).await, "/modules");
    assert_eq!(again.me(&server).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_is_named_and_local_sign_in_keeps_working() {
    // Nothing listens on the discard port.
    let dir = tempfile::tempdir().unwrap();
    let config = google_config(dir.path(), "http://127.0.0.1:9", false);
    let data = dir.path().join("data");

    let out = run_cli(&config, &data, None, &["config", "check"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("auth.providers[1].config.google") && err.contains("discovery"),
        "{err}"
    );

    create_admin(&config, &data, None);
    let server = start(&config, &data, None);
    let mut b = Browser::new();
    let request = b
        .http
        .post(server.url("/auth/google"))
        .header(ORIGIN, server.url("").trim_end_matches('/'));
    let (status, location) = b.send(request).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/login?error=provider_unavailable");
    assert_eq!(
        b.sign_in_with_password(&server, "admin", "SecurePassword123!")
            .await,
        "/"
    );
    let (_, log) = server.terminate();
    assert!(
        log.iter()
            .any(|l| l.contains("Sign in with Google is unavailable")),
        "{log:#?}"
    );

    // A missing client id is named by config check.
    let dir = tempfile::tempdir().unwrap();
    let config = config_copy(
        dir.path(),
        &[
            (
                "security.yml",
                "- type: \"oauth2\"\n      enabled: false",
                "- type: \"oauth2\"\n      enabled: true",
            ),
            ("security.yml", "\"set-your-google-client-id\"", "\"\""),
        ],
    );
    let out = run_cli(&config, dir.path(), None, &["config", "check"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("auth.providers[1].config.google.client_id"),
        "{err}"
    );
}
