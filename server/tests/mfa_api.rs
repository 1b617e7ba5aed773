//! Second factors against the real binary, on SQLite and PostgreSQL, with soc2.yml requiring one
//! of admins (the repository's setting): the admin is sent to enrol before anything else (as a
//! browser without JavaScript), the REST login answers `mfa_required` and `POST /auth/mfa`
//! finishes it, recovery codes sign in once, and an administrator's reset sends them back to
//! enrolment. Nothing secret reaches the log.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::path::Path;

use platform::identity::mfa::totp;
use reqwest::{
    Client, StatusCode,
    header::{ACCEPT, COOKIE, SET_COOKIE},
};
use support::{FreshDb, Server, browser, form, location};

const PASSWORD: &str = "SecurePassword123!";

/// The value of cookie `name` a response sets, as `name=value` (`None` when it sets none).
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_string())
}

async fn page(
    http: &Client,
    server: &Server,
    path: &str,
    cookie: &str,
) -> (StatusCode, String, String) {
    let r = http
        .get(server.url(path))
        .header(ACCEPT, "text/html")
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let loc = location(&r);
    (status, loc, r.text().await.unwrap())
}

/// The text of each element with `data-testid="{id}"`.
fn testid(html: &str, id: &str) -> Vec<String> {
    let needle = format!("data-testid=\"{id}\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at..];
            let rest = &rest[rest.find('>').unwrap() + 1..];
            rest[..rest.find('<').unwrap()].to_string()
        })
        .collect()
}

/// The code for `offset` steps from now (the server takes one step either side, each once).
fn code(secret: &[u8], offset: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    totp::display_code(secret, (totp::step_at(now) as i64 + offset) as u64)
}

async fn login(http: &Client, server: &Server, name: &str) -> reqwest::Response {
    http.post(server.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
}

/// Signs `name` in over REST: the challenge of the `mfa_required` answer.
async fn challenge_of(http: &Client, server: &Server, name: &str) -> String {
    let r = login(http, server, name).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = r.json().await.unwrap();
    body["error"]["challenge_id"].as_str().unwrap().to_string()
}

/// Posts the sign-in form as root, to go to `next` afterwards.
async fn sign_in_form(http: &Client, server: &Server, next: &str) -> reqwest::Response {
    let fields = [("username", "root"), ("password", PASSWORD), ("next", next)];
    form(http, server, "/api/auth/sign_in", "/login", None, &fields).await
}

/// Creates `name` with `role` and [`PASSWORD`] with the spec's CLI line.
fn create_user(config: &Path, data: &Path, database_url: Option<&str>, name: &str, role: &str) {
    let email = format!("{name}@company.com");
    let out = support::run_cli_in(
        config,
        data,
        database_url,
        &[
            "admin",
            "create-user",
            "--username",
            name,
            "--password",
            PASSWORD,
            "--email",
            &email,
            "--roles",
            role,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn flow(root: &Path, database_url: Option<&str>) {
    let config = support::config_copy(
        root,
        &[(
            "soc2.yml",
            "multi_factor_roles: []",
            testkit::MFA_ROLES_LINE,
        )],
    );
    let data = root.join("data");
    for (name, role) in [("root", "admin"), ("dev", "developer")] {
        create_user(&config, &data, database_url, name, role);
    }
    let server = Server::start_in(&config, &data, database_url);
    let http = browser();

    // REST: an admin without a second factor is refused until they enrol; a developer is not.
    let r = login(&http, &server, "root").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "mfa_enrolment_required", "{body}");
    assert_eq!(login(&http, &server, "dev").await.status(), StatusCode::OK);

    // The browser: signing in leads to enrolment, and every other page leads back there.
    let r = sign_in_form(&http, &server, "/users").await;
    assert_eq!(
        (r.status(), location(&r)),
        (StatusCode::FOUND, "/account/mfa".to_string())
    );
    let session = set_cookie(&r, "wasm_as_os_session").expect("a session");
    for path in ["/users", "/", "/audit", "/account"] {
        let (status, to, _) = page(&http, &server, path, &session).await;
        assert_eq!(
            (status, to.as_str()),
            (StatusCode::FOUND, "/account/mfa"),
            "{path}"
        );
    }
    // Nor do server functions answer, beyond enrolment.
    let r = http
        .get(server.url("/api/users/list?q=&page=1"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (status, _, html) = page(&http, &server, "/account/mfa", &session).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-testid=\"must-enrol\""), "{html}");
    assert!(html.contains("<svg"), "the QR code is drawn in the page");
    let secret_text = testid(&html, "totp-secret")
        .pop()
        .expect("the key for manual entry");
    let secret = totp::base32_decode(&secret_text).unwrap();

    // A wrong code is a message next to the field and enrols nothing.
    let r = form(
        &http,
        &server,
        "/api/mfa/confirm_totp",
        "/account/mfa",
        Some(&session),
        &[("code", "000000")],
    )
    .await;
    assert!(location(&r).contains("__err="), "{}", location(&r));
    let r = form(
        &http,
        &server,
        "/api/mfa/confirm_totp",
        "/account/mfa",
        Some(&session),
        &[("code", &code(&secret, 0))],
    )
    .await;
    assert_eq!(
        (r.status(), location(&r)),
        (
            StatusCode::FOUND,
            "/account/mfa?enrolled=1#codes".to_string()
        )
    );
    let session = set_cookie(&r, "wasm_as_os_session").expect("a fresh session id");
    let codes_cookie = set_cookie(&r, "wao_new_codes").expect("the codes travel in a cookie");
    let cookies = format!("{session}; {codes_cookie}");
    let r = http
        .get(server.url("/account/mfa?enrolled=1"))
        .header(ACCEPT, "text/html")
        .header(COOKIE, &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers().get_all(SET_COOKIE).iter().any(|c| {
            let c = c.to_str().unwrap();
            c.starts_with("wao_new_codes=;") && c.contains("Max-Age=0")
        }),
        "the codes are shown once"
    );
    let html = r.text().await.unwrap();
    let codes = testid(&html, "recovery-code");
    assert_eq!(codes.len(), 10, "{html}");
    assert!(html.contains("download=\"wasm-as-os-recovery-codes.txt\""));
    // Enrolled: the dashboard opens, and the Users page shows the factor.
    let (status, _, html) = page(&http, &server, "/users", &session).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("app · 10 codes"), "{html}");

    // REST: the password leads to a challenge, answered with a code.
    let r = login(&http, &server, "root").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "mfa_required", "{body}");
    assert_eq!(
        body["error"]["methods"],
        serde_json::json!(["totp", "recovery_code"])
    );
    let challenge = body["error"]["challenge_id"].as_str().unwrap().to_string();
    let mfa = |body: serde_json::Value| {
        let http = http.clone();
        let url = server.url("/api/v1/auth/mfa");
        async move { http.post(url).json(&body).send().await.unwrap() }
    };
    let r = mfa(serde_json::json!({"challenge_id": challenge, "code": "000000"})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "mfa_failed"
    );
    let r = mfa(serde_json::json!({"challenge_id": challenge, "code": "1", "recovery_code": "x"}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = mfa(serde_json::json!({"challenge_id": "nope", "code": "123456"})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "mfa_challenge_expired"
    );
    // The code that confirmed the enrolment was used; the next step's is not.
    let r = mfa(serde_json::json!({"challenge_id": challenge, "code": code(&secret, 1)})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let pair: serde_json::Value = r.json().await.unwrap();
    let token = pair["access_token"].as_str().unwrap().to_string();
    let me: serde_json::Value = http
        .get(server.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "root");

    // REST with a recovery code, which then works no more.
    let challenge = challenge_of(&http, &server, "root").await;
    let r = mfa(serde_json::json!({"challenge_id": challenge, "recovery_code": codes[0]})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let challenge = challenge_of(&http, &server, "root").await;
    let r = mfa(serde_json::json!({"challenge_id": challenge, "recovery_code": codes[0]})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The browser's second step, with a recovery code, without JavaScript.
    let r = sign_in_form(&http, &server, "/audit").await;
    assert_eq!(
        (r.status(), location(&r)),
        (StatusCode::FOUND, "/login/mfa".to_string())
    );
    let waiting = set_cookie(&r, "wasm_as_os_session").unwrap();
    let (status, _, html) = page(&http, &server, "/login/mfa", &waiting).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-testid=\"mfa-form\""), "{html}");
    // Until the second step, the session reaches nothing.
    let (status, to, _) = page(&http, &server, "/users", &waiting).await;
    assert_eq!(status, StatusCode::FOUND);
    assert!(to.starts_with("/login"), "{to}");
    let r = form(
        &http,
        &server,
        "/api/mfa/verify",
        "/login/mfa",
        Some(&waiting),
        &[("code", "zzzzz-zzzzz")],
    )
    .await;
    assert!(location(&r).contains("__err="), "{}", location(&r));
    let r = form(
        &http,
        &server,
        "/api/mfa/verify",
        "/login/mfa",
        Some(&waiting),
        &[("code", &codes[1])],
    )
    .await;
    assert_eq!(
        (r.status(), location(&r)),
        (StatusCode::FOUND, "/audit".to_string())
    );
    let signed_in = set_cookie(&r, "wasm_as_os_session").unwrap();
    let (status, _, _) = page(&http, &server, "/audit", &signed_in).await;
    assert_eq!(status, StatusCode::OK);

    // An administrator's reset: the factors are gone, and the admin must enrol again.
    let root_id = me["id"].as_str().unwrap();
    let r = http
        .delete(server.url(&format!("/api/v1/users/{root_id}/mfa")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = login(&http, &server, "root").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The reset ended the browser sessions too.
    let (status, to, _) = page(&http, &server, "/audit", &signed_in).await;
    assert_eq!(status, StatusCode::FOUND);
    assert!(to.starts_with("/login"), "{to}");

    // Audited, and counted.
    let dev = support::token(&http, &server, "dev", PASSWORD).await;
    let r = http
        .delete(server.url(&format!("/api/v1/users/{root_id}/mfa")))
        .bearer_auth(&dev)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "developers cannot reset factors"
    );
    let events: serde_json::Value = http
        .get(server.url("/api/v1/audit/events?event=mfa_reset"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        events["events"].as_array().map(Vec::len),
        Some(1),
        "{events}"
    );
    assert_eq!(events["events"][0]["actor"]["name"], "root");
    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failed: f64 = metrics
        .lines()
        .find(|l| l.starts_with("authentication_failures_total{reason=\"mfa_failed\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("the mfa_failed series");
    assert!(failed >= 4.0, "{failed}");

    let (_, log) = server.terminate();
    let log = log.join("\n");
    assert!(
        !log.contains(&secret_text),
        "the TOTP secret is never logged"
    );
    assert!(
        codes.iter().all(|c| !log.contains(c.as_str())),
        "recovery codes are never logged"
    );
}

#[tokio::test]
async fn admins_enrol_then_sign_in_with_a_second_factor_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    flow(dir.path(), None).await;
}

#[tokio::test]
async fn admins_enrol_then_sign_in_with_a_second_factor_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    flow(dir.path(), Some(&db.url)).await;
    db.drop_db().await;
}

/// A passkey registered through the dashboard's server functions (as `/passkeys.js` calls them)
/// answers the REST login's `mfa_required`: `POST /auth/mfa/passkey` hands out the options for the
/// page's origin, and `POST /auth/mfa` takes the authenticator's answer. An answer signed for
/// another origin, a foreign or missing `Origin`, and a page reached by IP address are refused.
async fn passkey_flow(root: &Path, database_url: Option<&str>) {
    use webauthn_authenticator_rs::{AuthenticatorBackend, softpasskey::SoftPasskey};
    use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

    let config = support::config_copy(root, &[]);
    let data = root.join("data");
    create_user(&config, &data, database_url, "dev", "developer");
    let server = Server::start_in(&config, &data, database_url);
    let http = browser();
    // The test connects to 127.0.0.1; the pages it plays are at localhost (one of the server's
    // origins), since WebAuthn needs a host name.
    let origin = server.url("").replace("127.0.0.1", "localhost");
    let mut key = SoftPasskey::new(true);

    let fields = [("username", "dev"), ("password", PASSWORD), ("next", "/")];
    let r = form(&http, &server, "/api/auth/sign_in", "/login", None, &fields).await;
    let session = set_cookie(&r, "wasm_as_os_session").expect("a session");
    // What /passkeys.js sends for the options: an empty form post from the page at `origin`.
    let registration_options = |origin: String| {
        http.post(server.url("/api/mfa/passkey_options"))
            .header(COOKIE, &session)
            .header(ACCEPT, "application/json")
            .header(reqwest::header::ORIGIN, origin)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body("")
            .send()
    };

    // By IP address: refused with a message that says why.
    let r = registration_options(server.url("")).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["fields"]["passkey"][0]
            .as_str()
            .unwrap()
            .contains("host name"),
        "{body}"
    );

    let r = registration_options(origin.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let options: serde_json::Value = r.json().await.unwrap();
    let ceremony = options["ceremony"].as_str().unwrap().to_string();
    let creation: CreationChallengeResponse = serde_json::from_value(serde_json::json!({
        "publicKey": serde_json::from_str::<serde_json::Value>(options["options"].as_str().unwrap()).unwrap()
    }))
    .unwrap();
    let answer = key
        .perform_register(Url::parse(&origin).unwrap(), creation.public_key, 60_000)
        .unwrap();
    // As the page submits it without hydration: a form post answered with a redirect.
    let r = http
        .post(server.url("/api/mfa/add_passkey"))
        .header(COOKIE, &session)
        .header(ACCEPT, "text/html")
        .header(reqwest::header::ORIGIN, &origin)
        .form(&[
            ("ceremony", ceremony.as_str()),
            ("name", "Laptop"),
            ("credential", &serde_json::to_string(&answer).unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status(), location(&r)),
        (StatusCode::FOUND, "/account/mfa?added=1#codes".to_string())
    );
    let (_, _, html) = page(&http, &server, "/account/mfa", &session).await;
    assert_eq!(testid(&html, "passkey-count"), ["1 registered"]);

    // REST: the login asks for the second factor and names the passkey among the ways to answer.
    let r = login(&http, &server, "dev").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "mfa_required");
    assert_eq!(
        body["error"]["methods"],
        serde_json::json!(["passkey", "recovery_code"])
    );
    let challenge = body["error"]["challenge_id"].as_str().unwrap().to_string();
    let options_for = |origin: Option<&str>| {
        let mut request = http
            .post(server.url("/api/v1/auth/mfa/passkey"))
            .json(&serde_json::json!({ "challenge_id": challenge }));
        if let Some(o) = origin {
            request = request.header(reqwest::header::ORIGIN, o);
        }
        request.send()
    };
    for foreign in [None, Some("https://evil.example")] {
        let r = options_for(foreign).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{foreign:?}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_origin");
    }
    let answer_with =
        |body: serde_json::Value| http.post(server.url("/api/v1/auth/mfa")).json(&body).send();
    let request_options = |body: serde_json::Value| -> RequestChallengeResponse {
        serde_json::from_value(serde_json::json!({ "publicKey": body["public_key"] })).unwrap()
    };

    // Signed on another site (a page relaying the options): refused and audited.
    let r = options_for(Some(&origin)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let options = request_options(r.json().await.unwrap());
    let phished = key
        .perform_auth(
            Url::parse("https://evil.example").unwrap(),
            options.public_key,
            60_000,
        )
        .unwrap();
    let r = answer_with(serde_json::json!({ "challenge_id": challenge, "passkey": phished }))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "mfa_failed");
    // Two answers at once are a bad request.
    let r = answer_with(
        serde_json::json!({ "challenge_id": challenge, "passkey": {}, "code": "123456" }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // The real answer: a token pair that works.
    let r = options_for(Some(&origin)).await.unwrap();
    let options = request_options(r.json().await.unwrap());
    let answer = key
        .perform_auth(Url::parse(&origin).unwrap(), options.public_key, 60_000)
        .unwrap();
    let r = answer_with(serde_json::json!({ "challenge_id": challenge, "passkey": answer }))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let pair: serde_json::Value = r.json().await.unwrap();
    let me = http
        .get(server.url("/api/v1/me"))
        .bearer_auth(pair["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_passkey_answers_the_rest_login_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    passkey_flow(dir.path(), None).await;
}
