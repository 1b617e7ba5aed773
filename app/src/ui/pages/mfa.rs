//! Second factors: the account's enrolment page (`/account/mfa`) and the second step of signing in
//! (`/login/mfa`). Both work without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::mfa::{
        ConfirmTotp, MfaView, RegenerateCodes, RemoveTotp, VerifySecondFactor, mfa_status,
        second_factor_pending, take_recovery_codes,
    },
    ui::{
        components::PageHeader,
        forms::{FieldErrors, FormError, page_error},
    },
};

/// The second step of signing in: a code from the authenticator app, or a recovery code.
#[component]
pub fn SecondFactorPage() -> impl IntoView {
    let action = ServerAction::<VerifySecondFactor>::new();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let pending = Resource::new(move || action.version().get(), |_| second_factor_pending());
    view! {
        <Title text="Second factor" />
        <section class="auth-card card" aria-labelledby="mfa-title">
            <h1 id="mfa-title">"Two-step sign-in"</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match pending.await {
                        Ok(true) => view! {
                            <p class="muted">"Enter the 6-digit code your authenticator app shows for wasm-as-os, or one of your recovery codes."</p>
                            <FormError error fields=&["code"] />
                            <ActionForm action attr:class="form" attr:data-testid="mfa-form">
                                <div class="field">
                                    <label for="code">"Code"</label>
                                    <input id="code" name="code" autocomplete="one-time-code" inputmode="text" required autofocus maxlength="32" aria-describedby="code-hint code-errors" />
                                    <p class="hint" id="code-hint">"6 digits from the app, or a recovery code like abcde-fghjk. A recovery code works once."</p>
                                    <FieldErrors error field="code" id="code-errors" />
                                </div>
                                <button class="button button-primary" type="submit" disabled=move || action.pending().get()>
                                    {move || if action.pending().get() { "Checking…" } else { "Verify" }}
                                </button>
                            </ActionForm>
                        }.into_any(),
                        _ => view! {
                            <div class="alert alert-error" role="alert" data-testid="mfa-expired">
                                "No sign-in is waiting for a second factor in this browser: it took longer than 5 minutes, was finished, or was never started. Sign in again."
                            </div>
                            <a class="button" href="/login">"Go to sign-in"</a>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The account's second factors: enrol an authenticator app, recovery codes, removal.
#[component]
pub fn MfaPage() -> impl IntoView {
    let query = use_query_map();
    let status = Resource::new(move || query.get(), |_| mfa_status());
    let codes = Resource::new(move || query.get(), |_| take_recovery_codes());
    view! {
        <Title text="Two-step sign-in" />
        <PageHeader title="Two-step sign-in" summary="A second factor keeps your account safe even if your password leaks: an authenticator app, and recovery codes for when the phone is gone." />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let fresh = codes.await.ok().flatten();
                match status.await {
                    Ok(view) => view! { <MfaSections view fresh /> }.into_any(),
                    Err(e) => page_error(e),
                }
            })}
        </Suspense>
    }
}

#[component]
fn MfaSections(view: MfaView, fresh: Option<Vec<String>>) -> impl IntoView {
    let confirm = ServerAction::<ConfirmTotp>::new();
    let regenerate = ServerAction::<RegenerateCodes>::new();
    let remove = ServerAction::<RemoveTotp>::new();
    let error = Signal::derive(move || confirm.value().get().and_then(Result::err));
    let manage_error = Signal::derive(move || {
        remove
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| regenerate.value().get().and_then(Result::err))
    });
    let query = use_query_map();
    let removed = move || query.read().get("removed").is_some();
    let required = view.required;
    view! {
        {view.must_enrol.then(|| view! {
            <div class="alert alert-info" role="status" data-testid="must-enrol">
                "Your role requires a second factor. Enrol an authenticator app to continue to the dashboard."
            </div>
        })}
        <Show when=removed>
            <div class="alert alert-ok" role="status">"Your authenticator app and recovery codes were removed."</div>
        </Show>
        {fresh.map(|codes| {
            let text = format!(
                "wasm-as-os recovery codes for {}\nEach code works once. Keep them somewhere safe.\n\n{}\n",
                view.username,
                codes.join("\n")
            );
            let href = format!("data:text/plain;charset=utf-8,{}", crate::ui::forms::encode(&text));
            view! {
                <section class="card" id="codes" aria-labelledby="codes-title" data-testid="recovery-codes">
                    <h2 id="codes-title">"Your recovery codes"</h2>
                    <div class="alert alert-ok" role="status">"Save these now: they are not shown again. Each one signs you in once if you lose your phone."</div>
                    <ul class="code-list">
                        {codes.into_iter().map(|c| view! { <li><code data-testid="recovery-code">{c}</code></li> }).collect_view()}
                    </ul>
                    <a class="button" href=href download="wasm-as-os-recovery-codes.txt" data-testid="download-codes">"Download as a text file"</a>
                </section>
            }
        })}
        {match view.setup {
            Some(setup) => view! {
                <section class="card" aria-labelledby="enrol-title" data-testid="enrol-totp">
                    <h2 id="enrol-title">"Enrol an authenticator app"</h2>
                    <ol class="steps">
                        <li>"Scan this QR code with an authenticator app (any TOTP app: Aegis, 1Password, Google Authenticator…)."</li>
                        <li>"Or type the key by hand: time-based, 6 digits, every 30 seconds."</li>
                        <li>"Enter the code the app shows to confirm."</li>
                    </ol>
                    <div class="qr" role="img" aria-label="QR code of the authenticator key" inner_html=setup.qr_svg></div>
                    <p>"Key: "<code class="secret" data-testid="totp-secret">{setup.secret}</code></p>
                    <FormError error fields=&["code"] />
                    <ActionForm action=confirm attr:class="form form-inline" attr:data-testid="confirm-totp-form">
                        <div class="field">
                            <label for="totp-code">"Code from the app"</label>
                            <input id="totp-code" name="code" autocomplete="one-time-code" inputmode="numeric" pattern="[0-9 ]{6,7}" required maxlength="7" aria-describedby="totp-code-errors" />
                            <FieldErrors error field="code" id="totp-code-errors" />
                        </div>
                        <button class="button button-primary" type="submit">"Confirm"</button>
                    </ActionForm>
                </section>
            }.into_any(),
            None => view! {
                <section class="card" aria-labelledby="factors-title" data-testid="factors">
                    <h2 id="factors-title">"Your second factors"</h2>
                    <dl class="status-list">
                        <dt>"Authenticator app"</dt>
                        <dd data-testid="totp-state">{format!("enrolled {}", view.totp_since.unwrap_or_default())}{view.totp_last_used.map(|t| format!(", last used {t}"))}</dd>
                        <dt>"Recovery codes"</dt>
                        <dd data-testid="codes-left">{format!("{} of 10 left", view.recovery_codes_left)}</dd>
                    </dl>
                    <FormError error=manage_error />
                    <div class="actions">
                        <ActionForm action=regenerate attr:class="form-inline">
                            <button class="button" type="submit">"New recovery codes"</button>
                        </ActionForm>
                        {(!required).then(|| view! {
                            <ActionForm action=remove attr:class="form-inline">
                                <button class="button button-danger" type="submit">"Remove authenticator"</button>
                            </ActionForm>
                        })}
                    </div>
                    {required.then(|| view! { <p class="hint">"Your role requires a second factor (soc2.yml), so it cannot be removed here; an administrator can reset it."</p> })}
                </section>
            }.into_any(),
        }}
    }
}
