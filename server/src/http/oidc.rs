//! "Sign in with Google" in the browser. `POST /auth/google` starts it: a form button on the
//! sign-in page (and "Link Google" on the account page), so it works without JavaScript and goes
//! through the CSRF origin check. `GET /auth/callback` (security.yml's `redirect_url`) finishes
//! it. The flow is the platform's (`identity::oidc`, `identity::federation`): this adapter only
//! keeps its state in the browser session and turns outcomes into redirects. Every refusal lands
//! on the sign-in page with a code the page explains, never a 500.
//!
//! The callback is a cross-site GET by design (the provider sends the browser back), so it has no
//! origin check: what binds it to this browser is the `state` kept in this session, taken out on
//! first use.

use std::net::SocketAddr;

use axum::{
    Form,
    extract::{ConnectInfo, Query, State},
    http::HeaderMap,
    response::{IntoResponse, Redirect, Response},
};
use platform::{
    Platform,
    identity::{
        federation::{CallbackOutcome, FederatedError, PENDING_LINK_KEY, PENDING_LOGINS_KEY},
        oidc::{Callback, PENDING_PER_SESSION, PendingLogin, Purpose},
        sessions::{SESSION_USER_KEY, SessionUser},
    },
};
use serde::Deserialize;
use tower_sessions::Session;

/// The form behind the "Sign in with Google" and "Link Google" buttons.
#[derive(Debug, Default, Deserialize)]
pub struct StartForm {
    /// Where to go after signing in (a local path).
    #[serde(default)]
    next: Option<String>,
    /// Present on the account page's "Link Google" button.
    #[serde(default)]
    link: Option<String>,
}

fn to_login(code: &str) -> Response {
    Redirect::to(&format!("/login?error={code}")).into_response()
}

/// `POST /auth/google`.
pub async fn start(
    State(platform): State<Platform>,
    session: Session,
    form: Result<Form<StartForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    let purpose = if form.link.is_some() {
        let Some(principal) = super::dashboard::session_principal(&platform, &session).await else {
            return Redirect::to("/login?next=/account").into_response();
        };
        let Some(user_id) = principal.id() else {
            return to_login("not_signed_in");
        };
        Purpose::Link {
            user_id: user_id.to_string(),
        }
    } else {
        Purpose::SignIn {
            next: app::api::session::safe_next(form.next.as_deref()),
        }
    };
    let (url, pending) = match platform.identity().begin_google(purpose).await {
        Ok(started) => started,
        Err(e) => return to_login(e.code()),
    };
    let mut list: Vec<PendingLogin> = session
        .get(PENDING_LOGINS_KEY)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    list.push(pending);
    if list.len() > PENDING_PER_SESSION {
        list.drain(..list.len() - PENDING_PER_SESSION);
    }
    if let Err(e) = session.insert(PENDING_LOGINS_KEY, list).await {
        tracing::error!(error = %e, "cannot keep the sign-in in the session");
        return to_login("internal");
    }
    Redirect::to(url.as_str()).into_response()
}

/// `GET /auth/callback?code=…&state=…` (or `?error=…&state=…`).
pub async fn callback(
    State(platform): State<Platform>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    session: Session,
    query: Result<Query<Callback>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let callback = query.map(|Query(q)| q).unwrap_or_default();
    let mut pending: Vec<PendingLogin> = session
        .get(PENDING_LOGINS_KEY)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let signed_in = session
        .get::<SessionUser>(SESSION_USER_KEY)
        .await
        .ok()
        .flatten();
    let client = super::api::client(peer, &headers);
    let result = platform
        .identity()
        .complete_google(&mut pending, &callback, signed_in.as_ref(), &client)
        .await;
    // The matching sign-in was taken out: it cannot be used again.
    let kept = if pending.is_empty() {
        session
            .remove::<Vec<PendingLogin>>(PENDING_LOGINS_KEY)
            .await
            .map(|_| ())
    } else {
        session.insert(PENDING_LOGINS_KEY, pending).await
    };
    if let Err(e) = kept {
        tracing::error!(error = %e, "cannot update the session after a Google callback");
        return to_login("internal");
    }
    match result {
        Ok(CallbackOutcome::SignedIn { user, next }) => {
            let started = async {
                session.cycle_id().await?;
                session.remove_value(PENDING_LINK_KEY).await?;
                session.insert(SESSION_USER_KEY, user).await
            };
            match started.await {
                Ok(()) => Redirect::to(&next).into_response(),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the session after a Google sign-in");
                    to_login("internal")
                }
            }
        }
        Ok(CallbackOutcome::SecondFactor { challenge, next }) => {
            use platform::identity::mfa::{MFA_PENDING_KEY, PendingSecondFactor};
            let waiting = async {
                session.cycle_id().await?;
                session.remove_value(PENDING_LINK_KEY).await?;
                session.remove_value(SESSION_USER_KEY).await?;
                session
                    .insert(MFA_PENDING_KEY, PendingSecondFactor { challenge, next })
                    .await
            };
            match waiting.await {
                Ok(()) => Redirect::to("/login/mfa").into_response(),
                Err(e) => {
                    tracing::error!(error = %e, "cannot keep the sign-in waiting for its second factor");
                    to_login("internal")
                }
            }
        }
        Ok(CallbackOutcome::LinkRequired(link)) => {
            match session.insert(PENDING_LINK_KEY, link).await {
                Ok(()) => Redirect::to("/login?link=google").into_response(),
                Err(e) => {
                    tracing::error!(error = %e, "cannot keep the identity waiting for its link");
                    to_login("internal")
                }
            }
        }
        Ok(CallbackOutcome::Linked) => Redirect::to("/account?linked=google").into_response(),
        Err(FederatedError::Internal(e)) => {
            tracing::error!(error = %e, "Google sign-in failed");
            to_login("internal")
        }
        Err(e) => to_login(e.code()),
    }
}
