//! `POST /auth/login`, `POST /auth/refresh`, `POST /auth/logout`, `GET /me`.

use axum::{
    Json,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode},
};
use platform::{Platform, access::Principal, identity::auth::TokenPair};
use secrecy::SecretString;
use serde::Deserialize;

use super::{ApiError, Bearer, Caller, JsonObject, client};
use crate::http::csrf::PublicOrigins;

type Addr = ConnectInfo<std::net::SocketAddr>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: SecretString,
}

pub async fn login(
    State(platform): State<Platform>,
    addr: Addr,
    headers: HeaderMap,
    JsonObject(req): JsonObject<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let pair = platform
        .identity()
        .login(&req.username, &req.password, &client(addr.0, &headers))
        .await?;
    Ok(Json(pair))
}

/// The second step of a login: the challenge from `mfa_required`, and a TOTP code, a recovery
/// code or a passkey's answer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaRequest {
    challenge_id: String,
    code: Option<SecretString>,
    recovery_code: Option<SecretString>,
    /// The browser's `PublicKeyCredential` (as `JSON.stringify` writes it) for the options of
    /// `POST /auth/mfa/passkey`.
    passkey: Option<serde_json::Value>,
}

/// `POST /auth/mfa/passkey`: the options for `navigator.credentials.get()` that answer a waiting
/// login with a passkey.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeyOptionsRequest {
    challenge_id: String,
}

pub async fn passkey_options(
    State(platform): State<Platform>,
    State(origins): State<PublicOrigins>,
    headers: HeaderMap,
    JsonObject(req): JsonObject<PasskeyOptionsRequest>,
) -> Result<Json<platform::identity::mfa::passkey::PasskeyOptions>, ApiError> {
    // The ceremony is bound to the page that will call navigator.credentials.get(): one of ours.
    let origin = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| origins.allows(o))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_origin",
                "send the Origin header of the page that will call navigator.credentials.get(): one of this server's public origins",
            )
        })?;
    let options = platform
        .identity()
        .passkey_sign_in_options(&req.challenge_id, origin)
        .await?;
    Ok(Json(options))
}

pub async fn mfa(
    State(platform): State<Platform>,
    addr: Addr,
    headers: HeaderMap,
    JsonObject(req): JsonObject<MfaRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    use platform::identity::mfa::SecondFactor;
    use secrecy::ExposeSecret;
    let answer = match (&req.code, &req.recovery_code, &req.passkey) {
        (Some(code), None, None) => SecondFactor::Totp(code.expose_secret().to_string()),
        (None, Some(code), None) => SecondFactor::RecoveryCode(code.expose_secret().to_string()),
        (None, None, Some(credential)) => SecondFactor::Passkey(credential.to_string()),
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "send exactly one of code (from the authenticator app), recovery_code and passkey",
            ));
        }
    };
    let pair = platform
        .identity()
        .complete_login_mfa(&req.challenge_id, &answer, &client(addr.0, &headers))
        .await?;
    Ok(Json(pair))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

pub async fn refresh(
    State(platform): State<Platform>,
    addr: Addr,
    headers: HeaderMap,
    JsonObject(req): JsonObject<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let pair = platform
        .identity()
        .refresh(&req.refresh_token, &client(addr.0, &headers))
        .await?;
    Ok(Json(pair))
}

pub async fn logout(
    State(platform): State<Platform>,
    addr: Addr,
    headers: HeaderMap,
    Bearer(token): Bearer,
) -> Result<StatusCode, ApiError> {
    platform
        .identity()
        .logout(&token, &client(addr.0, &headers))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(Caller(principal): Caller) -> Json<serde_json::Value> {
    let body = match principal {
        Principal::User {
            id,
            username,
            roles,
            permissions,
        } => serde_json::json!({
            "id": id,
            "username": username,
            "roles": roles,
            "permissions": permissions.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
        Principal::System => serde_json::json!({ "username": "system" }),
    };
    Json(body)
}
