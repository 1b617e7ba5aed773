//! Personal API tokens over the REST API against the real binary: made with an access token,
//! used as a bearer token with only the permissions they name, refused once the owner is disabled
//! from the CLI (another process) or the token is revoked; bad input is a field error; the token
//! appears in the creation answer and nowhere else (listing, server log).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::{Server, cli, create_user, token};

async fn send(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = r.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn personal_tokens_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    create_user(dir.path(), None, "dev1", "DevPassword123!", "developer");
    let server = Server::start(dir.path(), None);
    let http = Client::new();
    let access = token(&http, &server, "dev1", "DevPassword123!").await;
    let tokens = server.url("/api/v1/me/tokens");

    // Made with an access token, narrowed to modules:read.
    let (status, made) = send(http.post(&tokens).bearer_auth(&access).json(
        &json!({"name": "ci reader", "expires_in_days": 7, "permissions": ["modules:read"]}),
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let pat = made["token"].as_str().unwrap().to_string();
    assert!(pat.starts_with("wao_"), "{made}");
    assert_eq!(made["permissions"], json!(["modules:read"]));

    // Used as a bearer token: it holds what it names and nothing more.
    let (status, me) = send(http.get(server.url("/api/v1/me")).bearer_auth(&pat)).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["username"], "dev1");
    assert_eq!(me["permissions"], json!(["modules:read"]), "{me}");
    let (status, _) = send(http.get(server.url("/api/v1/modules")).bearer_auth(&pat)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(
        http.post(server.url("/api/v1/modules?name=x"))
            .bearer_auth(&pat)
            .header("content-type", "application/wasm")
            .body(vec![0u8, 97, 115, 109, 1, 0, 0, 0]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // A token cannot make a token with more than it holds, nor can its owner.
    let (status, body) = send(
        http.post(&tokens)
            .bearer_auth(&access)
            .json(&json!({"name": "admin", "permissions": ["users:create"]})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = send(
        http.post(&tokens)
            .bearer_auth(&pat)
            .json(&json!({"name": "wider", "permissions": ["modules:create"]})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Bad input names the field.
    let (status, body) = send(
        http.post(&tokens)
            .bearer_auth(&access)
            .json(&json!({"name": "", "expires_in_days": 7})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "validation", "{body}");
    assert!(body["error"]["fields"]["name"].is_array(), "{body}");
    let (status, body) = send(
        http.post(&tokens)
            .bearer_auth(&access)
            .json(&json!({"name": "long", "expires_in_days": 1000})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["fields"]["expires_in_days"].is_array(),
        "{body}"
    );

    // Listed without the token.
    let (status, list) = send(http.get(&tokens).bearer_auth(&access)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert!(!list.to_string().contains(&pat[4..]));

    // Disabled from the CLI, in another process: refused at the next request; enabled: back.
    cli(
        dir.path(),
        None,
        &["admin", "disable-user", "--username", "dev1"],
    );
    let (status, body) = send(http.get(server.url("/api/v1/me")).bearer_auth(&pat)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    cli(
        dir.path(),
        None,
        &["admin", "enable-user", "--username", "dev1"],
    );
    let (status, _) = send(http.get(server.url("/api/v1/me")).bearer_auth(&pat)).await;
    assert_eq!(status, StatusCode::OK);

    // Revoked: refused; an unknown id is 404.
    let id = made["id"].as_str().unwrap();
    let access = token(&http, &server, "dev1", "DevPassword123!").await;
    let (status, _) = send(
        http.delete(server.url(&format!("/api/v1/me/tokens/{id}")))
            .bearer_auth(&access),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(http.get(server.url("/api/v1/me")).bearer_auth(&pat)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = send(
        http.delete(server.url("/api/v1/me/tokens/not-a-token"))
            .bearer_auth(&access),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (exit, log) = server.terminate();
    assert!(exit.success());
    assert!(
        !log.iter().any(|l| l.contains(&pat[4..])),
        "the server log holds the token"
    );
}
