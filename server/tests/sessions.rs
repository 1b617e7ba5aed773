//! Browser sessions over HTTP, as a browser without JavaScript uses them: the first-start set-up
//! link, sign-in and sign-out through the dashboard's forms, the session cookie, and sessions that
//! end when the account is disabled.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::path::Path;

use reqwest::{
    Client, StatusCode,
    header::{ACCEPT, COOKIE, SET_COOKIE},
};
use support::{FreshDb, Server, browser, form, location};

/// The session cookie a response sets, as `name=value`, with its attributes checked.
fn session_cookie(r: &reqwest::Response) -> String {
    let set = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("wasm_as_os_session="))
        .expect("a session cookie");
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Lax"), "{set}");
    assert!(
        !set.contains("Secure"),
        "plain HTTP here, so not Secure: {set}"
    );
    set.split(';').next().unwrap().to_string()
}

async fn page(
    http: &Client,
    server: &Server,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, String, String) {
    // Browsers ask for HTML; the dashboard answers a missing session with a 302 to sign-in.
    let mut request = http.get(server.url(path)).header(ACCEPT, "text/html");
    if let Some(c) = cookie {
        request = request.header(COOKIE, c);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    let loc = location(&r);
    (status, loc, r.text().await.unwrap())
}

async fn browser_flow(data_dir: &Path, database_url: Option<&str>) {
    let server = Server::start(data_dir, database_url);
    let http = browser();

    // First start: a one-time link on the console creates the first administrator.
    let line = server
        .stdout_line("/setup?token=")
        .expect("the set-up link is printed");
    let link = line.trim().to_string();
    let token = link.split("token=").nth(1).unwrap().to_string();
    let setup_path = format!("/setup?token={token}");
    let (status, _, html) = page(&http, &server, &setup_path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("data-testid=\"setup-form\""),
        "the set-up form renders without JavaScript"
    );
    let (_, _, html) = page(&http, &server, "/setup?token=forged", None).await;
    assert!(html.contains("This set-up link is not valid"));

    let weak = form(
        &http,
        &server,
        "/api/setup/create_admin",
        &setup_path,
        None,
        &[
            ("token", &token),
            ("username", "admin"),
            ("email", "admin@company.com"),
            ("password", "weak"),
        ],
    )
    .await;
    assert_eq!(weak.status(), StatusCode::FOUND);
    assert!(
        location(&weak).contains("__err="),
        "a weak password comes back to the form as an error"
    );
    let created = form(
        &http,
        &server,
        "/api/setup/create_admin",
        &setup_path,
        None,
        &[
            ("token", &token),
            ("username", "admin"),
            ("email", "admin@company.com"),
            ("password", "SecurePassword123!"),
        ],
    )
    .await;
    assert_eq!(
        (created.status(), location(&created)),
        (StatusCode::FOUND, "/".to_string())
    );
    let admin = session_cookie(&created);
    let again = form(
        &http,
        &server,
        "/api/setup/create_admin",
        &setup_path,
        None,
        &[
            ("token", &token),
            ("username", "mallory"),
            ("email", "m@company.com"),
            ("password", "SecurePassword123!"),
        ],
    )
    .await;
    assert!(location(&again).contains("__err="), "the link works once");

    // Signed in: the Users page lists the account. Signed out: it sends the browser to sign in.
    let (status, _, html) = page(&http, &server, "/users", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("admin@company.com") && html.contains("data-testid=\"users-table\""));
    let (status, loc, _) = page(&http, &server, "/users", None).await;
    assert_eq!(
        (status, loc.as_str()),
        (StatusCode::FOUND, "/login?next=/users")
    );

    // The admin creates a viewer through the form (checkbox roles[viewer]).
    let r = form(
        &http,
        &server,
        "/api/users/create",
        "/users",
        Some(&admin),
        &[
            ("username", "viewer1"),
            ("email", "v1@company.com"),
            ("password", "ViewPass123!"),
            ("roles[viewer]", "on"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let user_page = location(&r);
    assert!(
        user_page.starts_with("/users/") && user_page.ends_with("?created=1"),
        "{user_page}"
    );
    let viewer_id = user_page
        .trim_start_matches("/users/")
        .trim_end_matches("?created=1")
        .to_string();

    // Sign-in: wrong password is an error on the form; the right one opens a new session.
    let wrong = form(
        &http,
        &server,
        "/api/auth/sign_in",
        "/login",
        None,
        &[("username", "viewer1"), ("password", "nope")],
    )
    .await;
    assert!(
        location(&wrong).contains("/login?") && location(&wrong).contains("__err="),
        "{}",
        location(&wrong)
    );
    assert!(
        wrong.headers().get_all(SET_COOKIE).iter().all(|c| !c
            .to_str()
            .unwrap()
            .starts_with("wasm_as_os_session=")
            || c.to_str().unwrap().contains("Max-Age=0"))
    );
    let ok = form(
        &http,
        &server,
        "/api/auth/sign_in",
        "/login?next=/account",
        None,
        &[
            ("username", "viewer1"),
            ("password", "ViewPass123!"),
            ("next", "/account"),
        ],
    )
    .await;
    assert_eq!(
        (ok.status(), location(&ok)),
        (StatusCode::FOUND, "/account".to_string())
    );
    let viewer = session_cookie(&ok);
    assert_ne!(viewer, admin);
    let (status, _, html) = page(&http, &server, "/account", Some(&viewer)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("viewer1") && html.contains("modules:read"));
    // A viewer may not see the Users page.
    let (_, _, html) = page(&http, &server, "/users", Some(&viewer)).await;
    assert!(html.contains("You do not have permission"));

    // Disabling the viewer ends their session at once.
    let r = form(
        &http,
        &server,
        "/api/users/set_disabled",
        &user_page,
        Some(&admin),
        &[("id", &viewer_id), ("disabled", "true")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let (status, loc, _) = page(&http, &server, "/account", Some(&viewer)).await;
    assert_eq!(
        (status, loc.as_str()),
        (StatusCode::FOUND, "/login?next=/account")
    );

    // Sign-out ends the admin's session.
    let out = form(
        &http,
        &server,
        "/api/auth/sign_out",
        "/users",
        Some(&admin),
        &[],
    )
    .await;
    assert_eq!(
        (out.status(), location(&out)),
        (StatusCode::FOUND, "/login".to_string())
    );
    let (status, _, _) = page(&http, &server, "/users", Some(&admin)).await;
    assert_eq!(
        status,
        StatusCode::FOUND,
        "the old cookie no longer signs in"
    );

    let (status, log) = server.terminate();
    assert!(status.success());
    let log = log.join("\n");
    assert!(!log.contains(&token), "the set-up token is never logged");
    assert!(
        !log.contains("SecurePassword123!") && !log.contains("ViewPass123!"),
        "passwords are never logged"
    );
}

#[tokio::test]
async fn a_browser_sets_up_signs_in_and_out_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    browser_flow(dir.path(), None).await;
}

#[tokio::test]
async fn a_browser_sets_up_signs_in_and_out_on_postgres() {
    let Some(db) = FreshDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    browser_flow(dir.path(), Some(&db.url)).await;
    db.drop_db().await;
}
