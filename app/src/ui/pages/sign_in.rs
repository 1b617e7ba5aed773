//! The sign-in page, and the first-start set-up page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::auth::{CreateFirstAdmin, SignIn, setup_token_valid},
    ui::forms::{FieldErrors, FormError},
};

#[component]
pub fn SignInPage() -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".to_string());
    view! {
        <Title text="Sign in" />
        <section class="auth-card card" aria-labelledby="signin-title">
            <h1 id="signin-title">"Sign in"</h1>
            <p class="muted">"Use your wasm-as-os account."</p>
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
