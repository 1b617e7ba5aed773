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
    /// soc2.yml requires a second factor of this account's roles.
    pub required: bool,
    /// The session reaches nothing else until a factor is enrolled.
    pub must_enrol: bool,
    /// An enrolment waiting for its first code (when no app is enrolled).
    pub setup: Option<TotpSetupView>,
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

/// The signed-in account's second factors; starts an enrolment when no app is enrolled.
#[server(endpoint = "mfa/status", input = leptos::server_fn::codec::GetUrl)]
pub async fn mfa_status() -> Result<MfaView, AppError> {
    let platform = ssr::platform()?;
    let (user, principal) = enrolling().await?;
    let identity = platform.identity();
    let status = identity.mfa_status(&principal).await?;
    let setup = match status.totp {
        Some(_) => None,
        None => {
            let s = identity.totp_setup(&principal).await?;
            Some(TotpSetupView {
                secret: s.secret,
                uri: s.uri,
                qr_svg: s.qr_svg,
            })
        }
    };
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

/// Removes the authenticator app and the recovery codes (refused where soc2.yml requires one).
#[server(endpoint = "mfa/remove_totp")]
pub async fn remove_totp() -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    platform.identity().remove_totp(&principal).await?;
    leptos_axum::redirect("/account/mfa?removed=1");
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

/// Whether this browser has a sign-in waiting for its second factor.
#[server(endpoint = "mfa/pending", input = leptos::server_fn::codec::GetUrl)]
pub async fn second_factor_pending() -> Result<bool, AppError> {
    use platform::identity::mfa::{MFA_PENDING_KEY, PendingSecondFactor};
    let session = ssr::session().await?;
    Ok(session
        .get::<PendingSecondFactor>(MFA_PENDING_KEY)
        .await
        .ok()
        .flatten()
        .is_some())
}

/// The second step of signing in: a code from the authenticator app or a recovery code.
#[server(endpoint = "mfa/verify")]
pub async fn verify_second_factor(code: String) -> Result<(), AppError> {
    use platform::identity::mfa::{MFA_PENDING_KEY, PendingSecondFactor, SecondFactor};
    let platform = ssr::platform()?;
    let session = ssr::session().await?;
    let Some(pending) = session
        .get::<PendingSecondFactor>(MFA_PENDING_KEY)
        .await
        .map_err(|e| AppError::internal(&e))?
    else {
        return Err(AppError::from(
            platform::identity::auth::AuthError::MfaChallenge,
        ));
    };
    let result = platform
        .identity()
        .complete_sign_in_mfa(
            &pending.challenge,
            &SecondFactor::from_input(&code),
            &ssr::client(),
        )
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
                    recovery_codes_left: f.recovery_codes_left,
                },
            )
        })
        .collect())
}
