//! Server functions of second factors (see `platform::identity::mfa`): the account's enrolment
//! page, the second step of signing in, and an administrator's reset.
//!
//! New recovery codes are shown once. Between the form's POST and the page that shows them they
//! travel like a new API token: in a short-lived `HttpOnly`, `SameSite=Strict` cookie the page
//! clears as it reads it, so they are never stored on the server in the clear and never in a URL.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;
#[cfg(feature = "ssr")]
use super::session as ssr;

/// The cookie that carries new recovery codes to the page that shows them.
#[cfg(feature = "ssr")]
const NEW_CODES_COOKIE: &str = "wao_new_codes";

/// The enrolment page's view of the signed-in account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaView {
    pub username: String,
    /// When the authenticator app was enrolled (`None`: not enrolled).
    pub totp_since: Option<String>,
    pub totp_last_used: Option<String>,
    pub recovery_codes_left: u64,
    /// The registered passkeys.
    pub passkeys: Vec<PasskeyView>,
    /// soc2.yml requires a second factor of this account's roles.
    pub required: bool,
    /// The session reaches nothing else until a factor is enrolled.
    pub must_enrol: bool,
    /// An enrolment waiting for its first code (when no app is enrolled).
    pub setup: Option<TotpSetupView>,
}

/// A registered passkey on the account page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub added: String,
    pub last_used: Option<String>,
}

/// What the page's script hands to `navigator.credentials`: the `publicKey` options as JSON text,
/// and the ceremony to name in the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyOptionsView {
    pub ceremony: String,
    pub options: String,
}

#[cfg(feature = "ssr")]
impl From<platform::identity::mfa::passkey::PasskeyOptions> for PasskeyOptionsView {
    fn from(o: platform::identity::mfa::passkey::PasskeyOptions) -> Self {
        Self {
            ceremony: o.ceremony,
            options: o.public_key.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpSetupView {
    /// The secret in base32, for typing into the app.
    pub secret: String,
    pub uri: String,
    pub qr_svg: String,
}

/// An account's factors on the Users page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorBadge {
    pub totp: bool,
    pub passkeys: u64,
    pub recovery_codes_left: u64,
}

#[cfg(feature = "ssr")]
fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(feature = "ssr")]
async fn enrolling() -> Result<
    (
        platform::identity::sessions::SessionUser,
        platform::access::Principal,
    ),
    AppError,
> {
    ssr::enrolling().await?.ok_or_else(AppError::unauthorized)
}

/// The signed-in account's second factors, and the waiting authenticator enrolment.
#[server(endpoint = "mfa/status", input = leptos::server_fn::codec::GetUrl)]
pub async fn mfa_status() -> Result<MfaView, AppError> {
    let platform = ssr::platform()?;
    let (user, principal) = enrolling().await?;
    let (status, setup) = platform.identity().mfa_page(&principal).await?;
    let setup = setup.map(|s| TotpSetupView {
        secret: s.secret,
        uri: s.uri,
        qr_svg: s.qr_svg,
    });
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.insert_header(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
    }
    Ok(MfaView {
        username: principal.name().to_string(),
        totp_since: status.totp.as_ref().map(|t| when(t.created_at)),
        totp_last_used: status.totp.and_then(|t| t.last_used_at).map(when),
        recovery_codes_left: status.recovery_codes_left,
        passkeys: status
            .passkeys
            .into_iter()
            .map(|p| PasskeyView {
                id: p.id,
                name: p.name,
                added: when(p.created_at),
                last_used: p.last_used_at.map(when),
            })
            .collect(),
        required: status.required,
        must_enrol: user.must_enrol,
        setup,
    })
}

/// Confirms the waiting authenticator app with its current code; shows the new recovery codes.
#[server(endpoint = "mfa/confirm_totp")]
pub async fn confirm_totp(code: String) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let (mut user, principal) = enrolling().await?;
    let codes = platform
        .identity()
        .confirm_totp(&principal, &code, &ssr::client())
        .await?;
    if user.must_enrol {
        user.must_enrol = false;
        ssr::start_session(user).await?;
    }
    ssr::hand_over(NEW_CODES_COOKIE, &codes.join("."), 120);
    leptos_axum::redirect("/account/mfa?enrolled=1#codes");
    Ok(())
}

/// A new set of recovery codes; the old set stops working.
#[server(endpoint = "mfa/regenerate_codes")]
pub async fn regenerate_codes() -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let codes = platform
        .identity()
        .regenerate_recovery_codes(&principal)
        .await?;
    ssr::hand_over(NEW_CODES_COOKIE, &codes.join("."), 120);
    leptos_axum::redirect("/account/mfa?regenerated=1#codes");
    Ok(())
}

/// Removes the authenticator app (not the last factor where soc2.yml requires one).
#[server(endpoint = "mfa/remove_totp")]
pub async fn remove_totp() -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    platform.identity().remove_totp(&principal).await?;
    leptos_axum::redirect("/account/mfa?removed=totp");
    Ok(())
}

/// The recovery codes made a moment ago in this browser, once: the cookie is cleared.
#[server(endpoint = "mfa/take_codes", input = leptos::server_fn::codec::GetUrl)]
pub async fn take_recovery_codes() -> Result<Option<Vec<String>>, AppError> {
    enrolling().await?;
    let codes = ssr::take_handed_over(NEW_CODES_COOKIE).await?.map(|v| {
        v.split('.')
            .filter(|c| platform::identity::mfa::normalise_recovery_code(c).is_some())
            .take(10)
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    Ok(codes)
}

/// How the sign-in waiting in this browser can be finished (`totp`, `passkey`,
/// `recovery_code`); `None` when none waits.
#[server(endpoint = "mfa/pending", input = leptos::server_fn::codec::GetUrl)]
pub async fn second_factor_pending() -> Result<Option<Vec<String>>, AppError> {
    let Some(pending) = pending().await? else {
        return Ok(None);
    };
    Ok(ssr::platform()?
        .identity()
        .challenge_methods(&pending.challenge)
        .await?)
}

#[cfg(feature = "ssr")]
async fn pending() -> Result<Option<platform::identity::mfa::PendingSecondFactor>, AppError> {
    use platform::identity::mfa::MFA_PENDING_KEY;
    let session = ssr::session().await?;
    Ok(session.get(MFA_PENDING_KEY).await.ok().flatten())
}

/// The second step of signing in: a code from the authenticator app or a recovery code.
#[server(endpoint = "mfa/verify")]
pub async fn verify_second_factor(code: String) -> Result<(), AppError> {
    use platform::identity::mfa::SecondFactor;
    finish_second_step(SecondFactor::from_input(&code)).await
}

/// The options for `navigator.credentials.get()` that answer the sign-in waiting in this browser
/// with a passkey.
#[server(endpoint = "mfa/passkey_sign_in_options")]
pub async fn passkey_sign_in_options() -> Result<PasskeyOptionsView, AppError> {
    let Some(pending) = pending().await? else {
        return Err(AppError::from(
            platform::identity::auth::AuthError::MfaChallenge,
        ));
    };
    let options = ssr::platform()?
        .identity()
        .passkey_sign_in_options(&pending.challenge, &ssr::page_origin()?)
        .await?;
    Ok(options.into())
}

/// The second step of signing in with a passkey: `credential` is the browser's answer (JSON).
#[server(endpoint = "mfa/verify_passkey")]
pub async fn verify_passkey(credential: String) -> Result<(), AppError> {
    use platform::identity::mfa::SecondFactor;
    finish_second_step(SecondFactor::Passkey(credential)).await
}

#[cfg(feature = "ssr")]
async fn finish_second_step(answer: platform::identity::mfa::SecondFactor) -> Result<(), AppError> {
    use platform::identity::mfa::MFA_PENDING_KEY;
    let platform = ssr::platform()?;
    let session = ssr::session().await?;
    let Some(pending) = pending().await? else {
        return Err(AppError::from(
            platform::identity::auth::AuthError::MfaChallenge,
        ));
    };
    let result = platform
        .identity()
        .complete_sign_in_mfa(&pending.challenge, &answer, &ssr::client())
        .await;
    let user = match result {
        Ok(user) => user,
        Err(e) => {
            if matches!(e, platform::identity::auth::AuthError::MfaChallenge) {
                let _ = session.remove_value(MFA_PENDING_KEY).await;
            }
            return Err(e.into());
        }
    };
    session
        .remove_value(MFA_PENDING_KEY)
        .await
        .map_err(|e| AppError::internal(&e))?;
    let linked = ssr::finish_pending_link(&user).await?;
    ssr::start_session(user).await?;
    if linked {
        leptos_axum::redirect("/account?linked=google#linked");
    } else {
        leptos_axum::redirect(&ssr::safe_next(Some(&pending.next)));
    }
    Ok(())
}

/// Starts registering a passkey: the options for `navigator.credentials.create()`.
#[server(endpoint = "mfa/passkey_options")]
pub async fn passkey_options() -> Result<PasskeyOptionsView, AppError> {
    let platform = ssr::platform()?;
    let (_, principal) = enrolling().await?;
    let options = platform
        .identity()
        .start_passkey_registration(&principal, &ssr::page_origin()?)
        .await?;
    Ok(options.into())
}

/// Finishes registering a passkey under `name` with the browser's answer; the first factor of an
/// account also shows its new recovery codes.
#[server(endpoint = "mfa/add_passkey")]
pub async fn add_passkey(
    ceremony: String,
    name: String,
    credential: String,
) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let (mut user, principal) = enrolling().await?;
    if credential.trim().is_empty() {
        return Err(AppError::invalid(
            "credential",
            "is missing: registering a passkey needs JavaScript in this browser",
        ));
    }
    let codes = platform
        .identity()
        .finish_passkey_registration(&principal, &ceremony, &name, &credential, &ssr::client())
        .await?;
    if user.must_enrol {
        user.must_enrol = false;
        ssr::start_session(user).await?;
    }
    match codes {
        Some(codes) => {
            ssr::hand_over(NEW_CODES_COOKIE, &codes.join("."), 120);
            leptos_axum::redirect("/account/mfa?added=1#codes");
        }
        None => leptos_axum::redirect("/account/mfa?added=1#passkeys"),
    }
    Ok(())
}

/// Renames one of one's passkeys.
#[server(endpoint = "mfa/rename_passkey")]
pub async fn rename_passkey(id: String, name: String) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    platform
        .identity()
        .rename_passkey(&principal, &id, &name)
        .await?;
    leptos_axum::redirect("/account/mfa?renamed=1#passkeys");
    Ok(())
}

/// Removes one of one's passkeys (not the last factor where soc2.yml requires one).
#[server(endpoint = "mfa/remove_passkey")]
pub async fn remove_passkey(id: String) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    platform.identity().remove_passkey(&principal, &id).await?;
    leptos_axum::redirect("/account/mfa?removed=passkey#passkeys");
    Ok(())
}

/// Resets a user's second factors (`users:update`).
#[server(endpoint = "mfa/reset")]
pub async fn reset_mfa(user_id: String) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    platform.identity().reset_mfa(&principal, &user_id).await?;
    // The service found the account: the id is a UUID.
    leptos_axum::redirect(&format!("/users/{user_id}?mfa_reset=1"));
    Ok(())
}

/// Each account's second factors, by user id (`users:read`).
#[server(endpoint = "mfa/factors", input = leptos::server_fn::codec::GetUrl)]
pub async fn user_factors() -> Result<std::collections::BTreeMap<String, FactorBadge>, AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    Ok(platform
        .identity()
        .factor_summary(&principal)
        .await?
        .into_iter()
        .map(|(id, f)| {
            (
                id,
                FactorBadge {
                    totp: f.totp,
                    passkeys: f.passkeys,
                    recovery_codes_left: f.recovery_codes_left,
                },
            )
        })
        .collect())
}
