//! The HTTP edge under attack, against the real binary: cross-site request forgery (every
//! cookie-carrying write and sign-in must come from the public origin), open redirects after
//! sign-in (no `next` leaves the site or drops the connection), slow headers and slow bodies,
//! oversized upload form fields, attacker text on the upload page, and TCP_NODELAY.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    time::{Duration, Instant},
};

use reqwest::{
    Client, StatusCode,
    header::{ACCEPT, COOKIE, LOCATION, ORIGIN, REFERER, SET_COOKIE},
    multipart,
    redirect::Policy,
};
use serde_json::Value;
use support::{FreshDb, Server, create_admin, session_cookie};

const ADMIN_PASSWORD: &str = "SecurePassword123!";

fn browser() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
}

/// The origin the server prints (`http://127.0.0.1:PORT`).
fn own_origin(server: &Server) -> String {
    server.url("")
}

/// A sibling on the same host: another port.
fn sibling_origin(server: &Server) -> String {
    let own = own_origin(server);
    let port: u16 = own.rsplit(':').next().unwrap().parse().unwrap();
    format!("http://127.0.0.1:{}", port.wrapping_add(1))
}

/// A form post as a browser sends it, with the given `Origin` (or none) and cookie.
async fn post_form(
    http: &Client,
    server: &Server,
    path: &str,
    origin: Option<&str>,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = http
        .post(server.url(path))
        .header(ACCEPT, "text/html")
        .form(fields);
    if let Some(o) = origin {
        request = request.header(ORIGIN, o);
    }
    if let Some(c) = cookie {
        request = request.header(COOKIE, c);
    }
    request.send().await.unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn sign_in(http: &Client, server: &Server) -> String {
    let r = post_form(
        http,
        server,
        "/api/auth/sign_in",
        Some(&own_origin(server)),
        None,
        &[("username", "admin"), ("password", ADMIN_PASSWORD)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FOUND, "signing in from the site");
    session_cookie(&r).expect("a session cookie")
}

async fn assert_csrf_refused(r: reqwest::Response, what: &str) {
    let status = r.status();
    let cookie = session_cookie(&r);
    let body: Value = r.json().await.unwrap_or_default();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_rejected")),
        "{what}: {body}"
    );
    assert!(cookie.is_none(), "{what}: no session is started");
}

async fn usernames(http: &Client, server: &Server, token: &str) -> Vec<String> {
    let r: Value = http
        .get(server.url("/api/v1/users"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r.as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect()
}

fn new_user(name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("username", name.to_string()),
        ("email", format!("{name}@company.com")),
        ("password", "ViewPass123!".to_string()),
        ("roles[viewer]", "on".to_string()),
    ]
}

async fn create_user_form(
    http: &Client,
    server: &Server,
    origin: Option<&str>,
    referer: Option<&str>,
    cookie: &str,
    name: &str,
) -> reqwest::Response {
    let fields = new_user(name);
    let mut request = http
        .post(server.url("/api/users/create"))
        .header(ACCEPT, "text/html")
        .header(COOKIE, cookie)
        .form(&fields);
    if let Some(o) = origin {
        request = request.header(ORIGIN, o);
    }
    if let Some(r) = referer {
        request = request.header(REFERER, r);
    }
    request.send().await.unwrap()
}

async fn cross_site_writes_are_refused(data_dir: &Path, database_url: Option<&str>) {
    create_admin(data_dir, database_url);
    let server = Server::start(data_dir, database_url);
    let http = browser();
    let own = own_origin(&server);
    let sibling = sibling_origin(&server);
    let token = support::token(&http, &server, "admin", ADMIN_PASSWORD).await;

    // Login CSRF: another site signs the victim's browser into the attacker's account.
    for origin in ["http://evil.example", sibling.as_str(), "null"] {
        let r = post_form(
            &http,
            &server,
            "/api/auth/sign_in",
            Some(origin),
            None,
            &[("username", "admin"), ("password", ADMIN_PASSWORD)],
        )
        .await;
        assert_csrf_refused(r, &format!("sign-in from {origin}")).await;
    }
    let r = post_form(
        &http,
        &server,
        "/api/auth/sign_in",
        None,
        None,
        &[("username", "admin"), ("password", ADMIN_PASSWORD)],
    )
    .await;
    assert_csrf_refused(r, "sign-in with neither Origin nor Referer").await;

    // The right origin signs in.
    let admin = sign_in(&http, &server).await;

    // A cookie-carrying form post to a server function from elsewhere changes nothing.
    for (origin, referer, name) in [
        (Some("http://evil.example"), None, "mallory1"),
        (Some(sibling.as_str()), None, "mallory2"),
        (
            Some("http://evil.example"),
            Some(format!("{own}/users")),
            "mallory3",
        ),
        (None, Some(format!("{sibling}/users")), "mallory4"),
        (None, None, "mallory5"),
    ] {
        let r = create_user_form(&http, &server, origin, referer.as_deref(), &admin, name).await;
        assert_csrf_refused(r, &format!("users/create as {name}")).await;
    }
    let names = usernames(&http, &server, &token).await;
    assert!(
        names.iter().all(|n| !n.starts_with("mallory")),
        "no forged user was created: {names:?}"
    );

    // The site's own pages: by Origin, or by Referer when a browser sends no Origin.
    let r = create_user_form(&http, &server, Some(&own), None, &admin, "viewer1").await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(location(&r).starts_with("/users/"), "{}", location(&r));
    let from_page = format!("{own}/users");
    let r = create_user_form(&http, &server, None, Some(&from_page), &admin, "viewer2").await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let localhost = own.replace("127.0.0.1", "localhost");
    let r = create_user_form(&http, &server, Some(&localhost), None, &admin, "viewer3").await;
    assert_eq!(
        r.status(),
        StatusCode::FOUND,
        "localhost:PORT is this site too"
    );
    let names = usernames(&http, &server, &token).await;
    for name in ["viewer1", "viewer2", "viewer3"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }

    // Upload and sign-out from elsewhere are refused too; the session still stands after.
    let form = multipart::Form::new().text("name", "forged").part(
        "file",
        multipart::Part::bytes(b"\0asm\x01\0\0\0".to_vec()).file_name("f.wasm"),
    );
    let r = http
        .post(server.url("/modules/upload"))
        .header(COOKIE, &admin)
        .header(ORIGIN, "http://evil.example")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_csrf_refused(r, "upload").await;
    let r = post_form(
        &http,
        &server,
        "/api/auth/sign_out",
        Some(&sibling),
        Some(&admin),
        &[],
    )
    .await;
    assert_csrf_refused(r, "sign-out").await;
    let r = http
        .get(server.url("/users"))
        .header(ACCEPT, "text/html")
        .header(COOKIE, &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the session was not ended");

    // Bearer-token API requests are unaffected, with or without a cookie and an Origin.
    let r = http
        .post(server.url("/api/v1/users"))
        .bearer_auth(&token)
        .json(
            &serde_json::json!({"username": "api1", "email": "api1@company.com",
            "password": "ViewPass123!", "roles": ["viewer"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = http
        .post(server.url("/api/v1/users"))
        .bearer_auth(&token)
        .header(COOKIE, &admin)
        .header(ORIGIN, "http://evil.example")
        .json(
            &serde_json::json!({"username": "api2", "email": "api2@company.com",
            "password": "ViewPass123!", "roles": ["viewer"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // A REST write that carries only the cookie is checked like a form.
    let r = http
        .delete(server.url("/api/v1/users/nobody"))
        .header(COOKIE, &admin)
        .header(ORIGIN, "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_csrf_refused(r, "cookie-only REST write").await;

    // Each refusal is audited, naming the user whose browser was used when there was one.
    let r: Value = http
        .get(server.url("/api/v1/audit/events?event=permission_denied&limit=200"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refused: Vec<&Value> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["details"]["reason"] == "csrf_rejected")
        .collect();
    assert_eq!(refused.len(), 4 + 5 + 2 + 1, "{refused:#?}");
    assert!(refused.iter().any(|e| {
        e["actor"]["name"] == "admin"
            && e["details"]["path"] == "/api/users/create"
            && e["details"]["origin"] == "http://evil.example"
            && e["outcome"] == "denied"
    }));
    assert!(
        refused
            .iter()
            .any(|e| e["actor"]["name"] == "anonymous"
                && e["details"]["path"] == "/api/auth/sign_in")
    );
}

#[tokio::test]
async fn cross_site_writes_are_refused_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    cross_site_writes_are_refused(dir.path(), None).await;
}

#[tokio::test]
async fn cross_site_writes_are_refused_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    cross_site_writes_are_refused(dir.path(), Some(&db.url)).await;
    db.drop_db().await;
}

#[tokio::test]
async fn a_configured_public_origin_is_the_only_one_accepted() {
    let dir = tempfile::tempdir().unwrap();
    create_admin(dir.path(), None);
    let server = Server::start_serve_args(
        dir.path(),
        None,
        &["--public-origin", "https://wasm.example.com"],
    );
    let http = browser();
    let fields = [("username", "admin"), ("password", ADMIN_PASSWORD)];
    let own = own_origin(&server);
    let r = post_form(
        &http,
        &server,
        "/api/auth/sign_in",
        Some(&own),
        None,
        &fields,
    )
    .await;
    assert_csrf_refused(r, "the listen address is not the public origin").await;
    let r = post_form(
        &http,
        &server,
        "/api/auth/sign_in",
        Some("https://WASM.example.com:443"),
        None,
        &fields,
    )
    .await;
    assert_eq!(r.status(), StatusCode::FOUND);

    let bad = support::run_cli(
        dir.path(),
        None,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--public-origin",
            "wasm.example.com/app",
        ],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--public-origin"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// `next` values that try to leave the site after sign-in.
const BAD_NEXT: &[&str] = &[
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    "/.//evil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "%2F%2Fevil.example",
    "https://evil.example",
    "http:evil.example",
    "javascript:alert(1)",
    "//admin@evil.example",
    "http://127.0.0.1@evil.example",
    "/x\r\nSet-Cookie: planted=1",
    "/\u{7f}",
    "/é",
];

#[tokio::test]
async fn sign_in_never_redirects_off_the_site_nor_drops_the_request() {
    let dir = tempfile::tempdir().unwrap();
    create_admin(dir.path(), None);
    let server = Server::start(dir.path(), None);
    let http = browser();
    let own = own_origin(&server);
    let base = url::Url::parse(&own).unwrap();
    for next in BAD_NEXT {
        let r = http
            .post(server.url("/api/auth/sign_in"))
            .header(ACCEPT, "text/html")
            .header(ORIGIN, &own)
            .form(&[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap_or_else(|e| panic!("{next:?}: the request was dropped: {e}"));
        assert_eq!(r.status(), StatusCode::FOUND, "{next:?}");
        let loc = location(&r);
        assert!(
            loc.starts_with('/') && !loc.starts_with("//") && !loc.contains('\\'),
            "{next:?} redirected to {loc:?}"
        );
        let target = base.join(&loc).unwrap();
        assert_eq!(
            target.origin(),
            base.origin(),
            "{next:?} redirected to {loc:?}"
        );
        assert!(
            r.headers()
                .get_all(SET_COOKIE)
                .iter()
                .all(|c| !c.to_str().unwrap_or_default().contains("planted")),
            "{next:?} planted a header"
        );
    }
    // A local path with its query is still followed.
    let r = http
        .post(server.url("/api/auth/sign_in"))
        .header(ACCEPT, "text/html")
        .header(ORIGIN, &own)
        .form(&[
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
            ("next", "/audit?kind=login_failure"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r), "/audit?kind=login_failure");
}

/// Writes `head`, then the body one byte every `gap`, and returns what the server answered and
/// when (a dropped write ends the trickle early: the server may close first).
fn trickle(addr: &str, head: &str, body: &[u8], gap: Duration) -> (String, Duration) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let started = Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    for chunk in body.chunks(1) {
        if stream.write_all(chunk).is_err() {
            break;
        }
        let until = Instant::now() + gap;
        while Instant::now() < until {
            match stream.read(&mut buf) {
                Ok(0) => return (String::from_utf8_lossy(&answer).into(), started.elapsed()),
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
            if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                return (String::from_utf8_lossy(&answer).into(), started.elapsed());
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    (String::from_utf8_lossy(&answer).into(), started.elapsed())
}

fn host_port(server: &Server) -> String {
    server.url("").trim_start_matches("http://").to_string()
}

#[tokio::test]
async fn a_body_sent_one_byte_a_second_is_cut_off_with_408() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_serve_args(
        dir.path(),
        None,
        &["--body-timeout", "2s", "--min-body-rate", "1KB"],
    );
    let addr = host_port(&server);
    let body = format!(
        "{{\"username\":\"nobody\",\"password\":\"x\"}}{}",
        " ".repeat(60)
    );
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (answer, took) = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || trickle(&addr, &head, body.as_bytes(), Duration::from_secs(1))
    })
    .await
    .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "{answer:?} after {took:?}"
    );
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(8),
        "cut off after the body timeout, not before and not much later: {took:?}"
    );

    // A body that keeps up the minimum rate may take longer than the timeout.
    let body = format!(
        "{{\"username\":\"nobody\",\"password\":\"x\"}}{}",
        " ".repeat(3600)
    );
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (answer, took) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&addr).unwrap();
        let started = Instant::now();
        stream.write_all(head.as_bytes()).unwrap();
        for chunk in body.as_bytes().chunks(600) {
            stream.write_all(chunk).unwrap();
            std::thread::sleep(Duration::from_millis(450));
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        (answer, started.elapsed())
    })
    .await
    .unwrap();
    assert!(took > Duration::from_secs(2), "{took:?}");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

#[tokio::test]
async fn headers_that_never_finish_and_idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_serve_args(dir.path(), None, &["--header-timeout", "1s"]);
    let addr = host_port(&server);
    let took = tokio::task::spawn_blocking(move || {
        let mut partial = TcpStream::connect(&addr).unwrap();
        partial
            .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
            .unwrap();
        let mut idle = TcpStream::connect(&addr).unwrap();
        let started = Instant::now();
        for stream in [&mut partial, &mut idle] {
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut buf = [0u8; 1024];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                    Err(e) => panic!("the connection stayed open: {e}"),
                }
            }
        }
        started.elapsed()
    })
    .await
    .unwrap();
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// Reads one HTTP/1.1 response (Content-Length or chunked) and returns its status line.
fn read_response(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the connection closed");
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
    let complete = |data: &[u8]| {
        let body = &data[head_end..];
        if let Some(len) = head.lines().find_map(|l| l.strip_prefix("content-length:")) {
            body.len() >= len.trim().parse::<usize>().unwrap()
        } else {
            body.ends_with(b"0\r\n\r\n")
        }
    };
    while !complete(&data) {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the connection closed");
        data.extend_from_slice(&buf[..n]);
    }
    head.lines().next().unwrap_or_default().to_string()
}

/// Times 20 requests for `path` on one kept-alive connection (after one to warm up).
fn twenty_on_one_connection(addr: &str, path: &str, auth: &str) -> Duration {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\n{auth}\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    read_response(&mut stream);
    let started = Instant::now();
    for _ in 0..20 {
        stream.write_all(request.as_bytes()).unwrap();
        let status = read_response(&mut stream);
        assert!(status.contains("200"), "{path}: {status}");
    }
    started.elapsed()
}

#[tokio::test]
async fn a_kept_alive_connection_does_not_wait_for_delayed_acks() {
    let dir = tempfile::tempdir().unwrap();
    create_admin(dir.path(), None);
    let server = Server::start(dir.path(), None);
    let http = browser();
    let token = support::token(&http, &server, "admin", ADMIN_PASSWORD).await;
    let cookie = sign_in(&http, &server).await;
    let addr = host_port(&server);
    // Streamed responses: a signed-in page (shell, then its data) and an audit export.
    for (path, auth) in [
        ("/users", format!("Cookie: {cookie}\r\n")),
        ("/modules", format!("Cookie: {cookie}\r\n")),
        (
            "/api/v1/audit/export?format=json",
            format!("Authorization: Bearer {token}\r\n"),
        ),
    ] {
        let took = tokio::task::spawn_blocking({
            let addr = addr.clone();
            move || twenty_on_one_connection(&addr, path, &auth)
        })
        .await
        .unwrap();
        // With Nagle's algorithm on, each multi-piece response waits ~40 ms for the delayed ACK.
        assert!(
            took < Duration::from_millis(400),
            "20 × {path} took {took:?}"
        );
    }
}

async fn upload_form_fields_are_capped(data_dir: &Path, database_url: Option<&str>) {
    create_admin(data_dir, database_url);
    let server = Server::start(data_dir, database_url);
    let http = browser();
    let token = support::token(&http, &server, "admin", ADMIN_PASSWORD).await;
    let wasm = b"\0asm\x01\0\0\0".to_vec();
    let upload = |field: &'static str, size: usize| {
        multipart::Form::new().text(field, "d".repeat(size)).part(
            "file",
            multipart::Part::bytes(wasm.clone()).file_name("f.wasm"),
        )
    };
    for field in ["name", "description"] {
        let r = http
            .post(server.url("/api/v1/modules"))
            .bearer_auth(&token)
            .multipart(upload(field, 64 * 1024 + 1))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")),
            "{field}: {body}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{body}"
        );
        // At the cap the field is read, and the service judges its content.
        let r = http
            .post(server.url("/api/v1/modules"))
            .bearer_auth(&token)
            .multipart(upload(field, 64 * 1024))
            .send()
            .await
            .unwrap();
        assert_ne!(
            r.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "{field} at the cap"
        );
    }
    // The dashboard's no-JavaScript upload: back to the form with the code only.
    let admin = sign_in(&http, &server).await;
    let r = http
        .post(server.url("/modules/upload"))
        .header(COOKIE, &admin)
        .header(ORIGIN, own_origin(&server))
        .multipart(upload("description", 64 * 1024 + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status(), location(&r)),
        (
            StatusCode::SEE_OTHER,
            "/modules/upload?error=payload_too_large".to_string()
        )
    );
}

#[tokio::test]
async fn upload_form_fields_are_capped_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    upload_form_fields_are_capped(dir.path(), None).await;
}

#[tokio::test]
async fn upload_form_fields_are_capped_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    upload_form_fields_are_capped(dir.path(), Some(&db.url)).await;
    db.drop_db().await;
}

#[tokio::test]
async fn the_upload_page_shows_only_its_own_error_messages() {
    let dir = tempfile::tempdir().unwrap();
    create_admin(dir.path(), None);
    let server = Server::start(dir.path(), None);
    let http = browser();
    let admin = sign_in(&http, &server).await;
    let page = |query: String| {
        let http = http.clone();
        let admin = admin.clone();
        let url = server.url(&format!("/modules/upload?error={query}"));
        async move {
            let r = http
                .get(url)
                .header(ACCEPT, "text/html")
                .header(COOKIE, admin)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.text().await.unwrap()
        }
    };
    let html = page("invalid_module".into()).await;
    assert!(
        html.contains("invalid WebAssembly"),
        "a known code shows its message"
    );
    for text in [
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "Your%20account%20is%20locked.%20Call%20555-0100%20to%20unlock%20it.",
    ] {
        let html = page(text.to_string()).await;
        let shown = url::form_urlencoded::parse(format!("e={text}").as_bytes())
            .next()
            .unwrap()
            .1
            .to_string();
        assert!(
            html.contains("data-testid=\"upload-error\""),
            "an error is shown"
        );
        assert!(html.contains("The upload failed."), "the generic message");
        for needle in ["alert(1)", "555-0100", "account is locked", &shown] {
            assert!(!html.contains(needle), "{needle:?} reached the page");
        }
    }
}
