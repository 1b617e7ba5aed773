//! Server-side helpers every server function uses: the platform, the browser session, the signed-in
//! principal, the caller's address.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use platform::{
    Platform,
    access::Principal,
    identity::{
        auth::Client,
        sessions::{SESSION_USER_KEY, SessionUser},
    },
};
use tower_sessions::Session;

use super::AppError;

/// The running platform, provided to every request by the server.
pub fn platform() -> Result<Platform, AppError> {
    leptos::prelude::use_context::<Platform>().ok_or_else(AppError::internal_error)
}

/// The browser session of this request.
pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>().await.map_err(|e| {
        tracing::error!(error = %e, "no session layer on this request");
        AppError::internal_error()
    })
}

/// Who is calling: address and user agent, for audit events.
pub fn client() -> Client {
    let Some(parts) = leptos::prelude::use_context::<http::request::Parts>() else {
        return Client::default();
    };
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let user_agent = parts
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect());
    Client { ip, user_agent }
}

/// The origin (`scheme://host[:port]`) of the page that sent this POST, from its `Origin` header
/// (or `Referer`): the CSRF layer lets a cookie-bearing POST through only from one of the server's
/// public origins, so this is one of them. Passkey ceremonies are bound to it.
pub fn page_origin() -> Result<String, AppError> {
    let parts = leptos::prelude::use_context::<http::request::Parts>()
        .ok_or_else(AppError::internal_error)?;
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| url::Url::parse(v).ok())
            .map(|u| u.origin())
            .filter(url::Origin::is_tuple)
            .map(|o| o.ascii_serialization())
    };
    header(http::header::ORIGIN)
        .or_else(|| header(http::header::REFERER))
        .ok_or_else(|| {
            AppError::invalid(
                "passkey",
                "this browser did not say which page asked: passkeys need a browser that sends the Origin header",
            )
        })
}

/// The signed-in principal, if the session holds a user who may still act; a session that must
/// enrol a second factor first gets [`AppError::mfa_enrolment_required`].
pub async fn current_principal() -> Result<Option<Principal>, AppError> {
    match enrolling().await? {
        Some((user, _)) if user.must_enrol => Err(AppError::mfa_enrolment_required()),
        other => Ok(other.map(|(_, principal)| principal)),
    }
}

/// The session's user and principal, also while it must enrol a second factor: only for the
/// enrolment page and signing out.
pub async fn enrolling() -> Result<Option<(SessionUser, Principal)>, AppError> {
    let platform = platform()?;
    let session = session().await?;
    let Some(user) = session
        .get::<SessionUser>(SESSION_USER_KEY)
        .await
        .map_err(|e| AppError::internal(&e))?
    else {
        return Ok(None);
    };
    let principal = platform
        .identity()
        .enrolment_principal(&user, platform.session_timeouts())
        .await
        .map_err(|e| AppError::internal(&e))?;
    if principal.is_none() {
        // The account was disabled, its password changed, or the session is too old: end it.
        session.flush().await.map_err(|e| AppError::internal(&e))?;
    }
    Ok(principal.map(|p| (user, p)))
}

/// The signed-in principal, or [`AppError::unauthorized`].
pub async fn principal() -> Result<Principal, AppError> {
    current_principal()
        .await?
        .ok_or_else(AppError::unauthorized)
}

/// Starts a fresh session (new id) for a user who just signed in.
pub async fn start_session(user: SessionUser) -> Result<(), AppError> {
    let session = session().await?;
    session
        .cycle_id()
        .await
        .map_err(|e| AppError::internal(&e))?;
    session
        .insert(SESSION_USER_KEY, user)
        .await
        .map_err(|e| AppError::internal(&e))
}

/// Where a password sign-in goes after its first step: signed in (to `next`, or to the enrolment
/// page when a second factor must be enrolled first), or to the second-factor page with the
/// challenge kept in the session.
pub async fn after_first_factor(
    outcome: platform::identity::mfa::SignInOutcome,
    next: &str,
) -> Result<(), AppError> {
    use platform::identity::mfa::{MFA_PENDING_KEY, PendingSecondFactor, SignInOutcome};
    match outcome {
        SignInOutcome::SignedIn(user) => {
            let must_enrol = user.must_enrol;
            let linked = finish_pending_link(&user).await?;
            start_session(user).await?;
            if must_enrol {
                leptos_axum::redirect("/account/mfa");
            } else if linked {
                leptos_axum::redirect("/account?linked=google#linked");
            } else {
                leptos_axum::redirect(next);
            }
        }
        SignInOutcome::SecondFactor { challenge } => {
            let session = session().await?;
            session
                .cycle_id()
                .await
                .map_err(|e| AppError::internal(&e))?;
            session
                .remove_value(SESSION_USER_KEY)
                .await
                .map_err(|e| AppError::internal(&e))?;
            let pending = PendingSecondFactor {
                challenge,
                next: next.to_string(),
            };
            session
                .insert(MFA_PENDING_KEY, pending)
                .await
                .map_err(|e| AppError::internal(&e))?;
            leptos_axum::redirect("/login/mfa");
        }
    }
    Ok(())
}

/// Hands `value` to the next page in a one-time cookie `name` (`HttpOnly`, `SameSite=Strict`,
/// `max_age` seconds, `Secure` under TLS): how a secret shown once (a new API token, new recovery
/// codes) crosses the redirect after a form's POST without being stored on the server or put in a
/// URL. Its path is `/` because the hydrated page reads it through a server function.
pub fn hand_over(name: &str, value: &str, max_age: u32) {
    let secure = match platform() {
        Ok(p) if p.config().tls.tls.enabled => "; Secure",
        _ => "",
    };
    set_cookie(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ));
}

/// Takes the one-time cookie `name` (see [`hand_over`]): its value, once; the answer clears it and
/// is not cached.
pub async fn take_handed_over(name: &str) -> Result<Option<String>, AppError> {
    let headers: http::HeaderMap = leptos_axum::extract()
        .await
        .map_err(|e| AppError::internal(&e))?;
    let value = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_string());
    if value.is_some() {
        set_cookie(&format!(
            "{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
        ));
        if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            response.insert_header(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            );
        }
    }
    Ok(value)
}

fn set_cookie(value: &str) {
    match (
        leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
        http::HeaderValue::from_str(value),
    ) {
        (Some(response), Ok(value)) => response.append_header(http::header::SET_COOKIE, value),
        _ => tracing::error!("could not set a one-time cookie"),
    }
}

/// After a password sign-in: links the Google identity that waited in this session for this
/// account's password (see `platform::identity::federation`); the wait ends either way. Returns
/// whether it linked. A link that cannot be made does not stop the sign-in.
pub async fn finish_pending_link(user: &SessionUser) -> Result<bool, AppError> {
    use platform::identity::federation::{PENDING_LINK_KEY, PendingLink};
    let session = session().await?;
    let Ok(Some(pending)) = session.remove::<PendingLink>(PENDING_LINK_KEY).await else {
        return Ok(false);
    };
    match platform()?
        .identity()
        .finish_pending_link(user, &pending)
        .await
    {
        Ok(linked) => Ok(linked),
        Err(e) => {
            tracing::warn!(error = %e, "the waiting Google identity was not linked");
            Ok(false)
        }
    }
}

/// Only paths of this site are followed after sign-in: `next` is resolved the way a browser
/// resolves a `Location` (tabs and newlines dropped, `\\` read as `/`, dot segments applied)
/// against this site, and kept only if the result is on this site. The answer is that result's
/// path, query and fragment, re-serialised (so percent-encoded, valid in a header); anything else,
/// or anything over 2,000 characters, gives `/`.
pub fn safe_next(next: Option<&str>) -> String {
    // Any origin serves: only whether the target stays on it matters.
    const SITE: &str = "http://site.invalid/";
    let local = next.and_then(|next| {
        let site = url::Url::parse(SITE).ok()?;
        let target = site.join(next).ok()?;
        if target.origin() != site.origin() || !target.username().is_empty() {
            return None;
        }
        let local = &target[url::Position::BeforePath..];
        // `/.//evil.example` resolves to the path `//evil.example`: a network-path reference.
        let ok = local.starts_with('/')
            && !local.starts_with("//")
            && !local.contains('\\')
            && local.len() <= 2000
            && http::HeaderValue::from_str(local).is_ok();
        ok.then(|| local.to_string())
    });
    local.unwrap_or_else(|| "/".to_string())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn local_paths_are_kept_with_their_query_and_fragment() {
        for (next, kept) in [
            ("/users", "/users"),
            ("/modules/upload?x=1#top", "/modules/upload?x=1#top"),
            (
                "/audit/export?format=csv&kind=login_failure",
                "/audit/export?format=csv&kind=login_failure",
            ),
            ("/%2F/evil.example", "/%2F/evil.example"),
            ("/a b", "/a%20b"),
            ("/é", "/%C3%A9"),
        ] {
            assert_eq!(safe_next(Some(next)), kept, "{next:?}");
        }
    }

    #[test]
    fn every_known_way_off_the_site_gives_the_home_page() {
        let bypasses = [
            "//evil.example",
            "///evil.example",
            "////evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "\\/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "\t//evil.example",
            " //evil.example",
            "/.//evil.example",
            "/./\\evil.example",
            "/..//evil.example",
            "https://evil.example",
            "http://evil.example/x",
            "HTTP://evil.example",
            "http:evil.example",
            "https:evil.example",
            "https:/evil.example",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "//user@evil.example",
            "http://site.invalid@evil.example",
            "//evil.example%2F..",
            "/\u{0}/evil.example",
            "\u{b}//evil.example",
        ];
        for next in bypasses {
            let got = safe_next(Some(next));
            assert!(
                got.starts_with('/') && !got.starts_with("//") && !got.contains('\\'),
                "{next:?} gave {got:?}"
            );
            let resolved = url::Url::parse("https://wasm.example.com/login")
                .unwrap()
                .join(&got)
                .unwrap();
            assert_eq!(
                resolved.host_str(),
                Some("wasm.example.com"),
                "{next:?} gave {got:?}"
            );
        }
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(Some("/.//evil.example")), "/");
        assert_eq!(safe_next(None), "/");
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(3000)))), "/");
    }

    #[test]
    fn the_answer_is_always_a_valid_header_value() {
        for next in ["/\n", "/x\r\nSet-Cookie: a=b", "/\u{7f}", "/\u{0}", "/€\t"] {
            let got = safe_next(Some(next));
            assert!(
                http::HeaderValue::from_str(&got).is_ok(),
                "{next:?} gave {got:?}"
            );
        }
    }
}
