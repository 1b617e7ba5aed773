//! The sign-in page, and the first-start set-up page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::{
        auth::{CreateFirstAdmin, SignIn, setup_token_valid},
        linked::sign_in_options,
    },
    ui::forms::{FieldErrors, FormError},
};

/// What the sign-in page says for a code the Google callback sent it here with. Only known codes
/// are shown (a link cannot make the page say anything else).
pub fn sign_in_problem(code: &str) -> Option<String> {
    let token = |why: &str| {
        format!(
            "Google's answer could not be verified, so you were not signed in: {why}. Start again; if this keeps happening, tell your administrator."
        )
    };
    Some(match code {
        "provider_disabled" => "Sign-in with Google is not turned on on this server.".into(),
        "provider_unavailable" => "Google cannot be reached right now. Try again later, or sign in with your password.".into(),
        "provider_refused" => "Google did not sign you in (the sign-in was cancelled or refused). Try again.".into(),
        "missing_code" => "Google's answer was incomplete (it carried no authorization code). Start again.".into(),
        "unknown_state" => "This sign-in was not started in this browser, was already used, or your session expired. Start again.".into(),
        "flow_expired" => "The sign-in took longer than 10 minutes. Start again.".into(),
        "email_not_verified" => "Your Google email address is not verified. Verify it with Google, then try again.".into(),
        "no_account" => "No account here belongs to this Google identity. Ask an administrator to create one, or sign in with your password and link Google from your account page.".into(),
        "account_disabled" => "Your account is disabled.".into(),
        "linked_elsewhere" => "This Google account is already linked to another account here.".into(),
        "not_signed_in" => "Your session ended before Google answered. Sign in and link again.".into(),
        "internal" => "Something went wrong on our side. Try again.".into(),
        "id_token_missing" => token("it carried no identity token"),
        "id_token_malformed" => token("its identity token could not be read"),
        "id_token_algorithm" => token("its identity token is signed in a way that is not accepted"),
        "id_token_unknown_key" => token("its identity token is signed with a key Google does not publish"),
        "id_token_signature" => token("its identity token's signature does not match Google's key"),
        "id_token_issuer" => token("its identity token was issued by another provider"),
        "id_token_audience" => token("its identity token is meant for another application"),
        "id_token_expired" => token("its identity token has expired"),
        "id_token_issued_at" => token("its identity token's issue time is wrong"),
        "id_token_claims" => token("its identity token lacks a required claim"),
        "id_token_nonce" => token("its identity token belongs to another sign-in"),
        "id_token_subject" => token("its identity token names no one"),
        _ => return None,
    })
}

#[component]
pub fn SignInPage() -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".to_string());
    let problem = move || query.read().get("error").and_then(|c| sign_in_problem(&c));
    let link = move || query.read().get("link").is_some_and(|p| p == "google");
    let options = Resource::new(|| (), |()| sign_in_options());
    view! {
        <Title text="Sign in" />
        <section class="auth-card card" aria-labelledby="signin-title">
            <h1 id="signin-title">"Sign in"</h1>
            <p class="muted">"Use your wasm-as-os account."</p>
            {move || problem().map(|message| view! {
                <div class="alert alert-error" role="alert" data-testid="sign-in-problem">{message}</div>
            })}
            <Show when=link>
                <div class="alert alert-info" role="status" data-testid="link-notice">
                    "Your Google email address belongs to an existing account. Sign in with that account's password to link Google to it; after that, Google alone will do."
                </div>
            </Show>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    options.await.ok().filter(|o| o.google).map(|_| view! {
                        <form method="post" action="/auth/google" class="form" data-testid="google-form">
                            <input type="hidden" name="next" value=next />
                            <button class="button button-google" type="submit">"Sign in with Google"</button>
                        </form>
                        <p class="divider"><span>"or with your password"</span></p>
                    })
                })}
            </Suspense>
            <FormError error fields=&["username"] />
            <ActionForm action attr:class="form" attr:data-testid="sign-in-form">
                <input type="hidden" name="next" value=next />
                <div class="field">
                    <label for="username">"Username"</label>
                    <input id="username" name="username" autocomplete="username" required autofocus aria-describedby="username-errors" />
                    <FieldErrors error field="username" id="username-errors" />
                </div>
                <div class="field">
                    <label for="password">"Password"</label>
                    <input id="password" name="password" type="password" autocomplete="current-password" required />
                </div>
                <button class="button button-primary" type="submit" disabled=move || action.pending().get()>
                    {move || if action.pending().get() { "Signing in…" } else { "Sign in" }}
                </button>
            </ActionForm>
        </section>
    }
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.read().get("token").unwrap_or_default();
    let valid = Resource::new(token, setup_token_valid);
    let action = ServerAction::<CreateFirstAdmin>::new();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    view! {
        <Title text="Set up" />
        <section class="auth-card card" aria-labelledby="setup-title">
            <h1 id="setup-title">"Create the first administrator"</h1>
            <Suspense fallback=|| view! { <p class="muted">"Checking the link…"</p> }>
                {move || Suspend::new(async move {
                    match valid.await {
                        Ok(true) => view! {
                            <p class="muted">"This one-time link lets you create the account that administers this installation."</p>
                            <FormError error fields=&["username", "email", "password"] />
                            <ActionForm action attr:class="form" attr:data-testid="setup-form">
                                <input type="hidden" name="token" value=token />
                                <div class="field">
                                    <label for="username">"Username"</label>
                                    <input id="username" name="username" autocomplete="username" required aria-describedby="username-errors" />
                                    <FieldErrors error field="username" id="username-errors" />
                                </div>
                                <div class="field">
                                    <label for="email">"Email"</label>
                                    <input id="email" name="email" type="email" autocomplete="email" required aria-describedby="email-errors" />
                                    <FieldErrors error field="email" id="email-errors" />
                                </div>
                                <div class="field">
                                    <label for="password">"Password"</label>
                                    <input id="password" name="password" type="password" autocomplete="new-password" required aria-describedby="password-errors password-hint" />
                                    <p class="hint" id="password-hint">"At least 8 characters with upper- and lowercase letters, a number and a symbol (security.yml)."</p>
                                    <FieldErrors error field="password" id="password-errors" />
                                </div>
                                <button class="button button-primary" type="submit">"Create administrator"</button>
                            </ActionForm>
                        }.into_any(),
                        _ => view! {
                            <div class="alert alert-error" role="alert">
                                "This set-up link is not valid: it has expired, was already used, or an account exists. Restart the server to get a new link while no account exists, or sign in."
                            </div>
                            <a class="button" href="/login">"Go to sign-in"</a>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
