//! Second factors: the account's enrolment page (`/account/mfa`) and the second step of signing in
//! (`/login/mfa`). Both work without JavaScript.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::mfa::{
        AddPasskey, ConfirmTotp, MfaView, PasskeyView, RegenerateCodes, RemovePasskey, RemoveTotp,
        RenamePasskey, VerifyPasskey, VerifySecondFactor, mfa_status, second_factor_pending,
        take_recovery_codes,
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
                        Ok(Some(methods)) => {
                            let passkey = methods.iter().any(|m| m == "passkey");
                            view! {
                                {passkey.then(|| view! { <PasskeySignIn /> })}
                                <p class="muted">"Enter the 6-digit code your authenticator app shows for wasm-as-os, or one of your recovery codes."</p>
                                <FormError error fields=&["code"] />
                                <ActionForm action attr:class="form" attr:data-testid="mfa-form">
                                    <div class="field">
                                        <label for="code">"Code"</label>
                                        <input id="code" name="code" autocomplete="one-time-code" inputmode="text" required autofocus=!passkey maxlength="32" aria-describedby="code-hint code-errors" />
                                        <p class="hint" id="code-hint">"6 digits from the app, or a recovery code like abcde-fghjk. A recovery code works once."</p>
                                        <FieldErrors error field="code" id="code-errors" />
                                    </div>
                                    <button class="button button-primary" type="submit" disabled=move || action.pending().get()>
                                        {move || if action.pending().get() { "Checking…" } else { "Verify" }}
                                    </button>
                                </ActionForm>
                            }.into_any()
                        }
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

/// Answering the second step with a passkey: `/passkeys.js` asks the server for the options,
/// hands them to the browser, puts its answer in the hidden field and submits the form.
#[component]
fn PasskeySignIn() -> impl IntoView {
    let action = ServerAction::<VerifyPasskey>::new();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    view! {
        <FormError error fields=&["credential", "passkey"] />
        <ActionForm action attr:class="form passkey-form" attr:data-testid="passkey-sign-in" attr:data-passkey-form="sign-in">
            <input type="hidden" name="credential" value="" />
            <button class="button button-primary" type="button" data-passkey="/api/mfa/passkey_sign_in_options">"Use a passkey"</button>
            <p class="hint" data-passkey-status aria-live="polite"></p>
            <FieldErrors error field="credential" id="credential-errors" />
            <p class="hint passkey-needs-js">"Passkeys need JavaScript in this browser: use a code instead."</p>
        </ActionForm>
        <p class="divider"><span>"or"</span></p>
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
        <PageHeader title="Two-step sign-in" summary="A second factor keeps your account safe even if your password leaks: an authenticator app or a passkey, and recovery codes for when the device is gone." />
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
    let notice = move || {
        let q = query.read();
        if q.get("removed").as_deref() == Some("totp") {
            Some("Your authenticator app was removed.")
        } else if q.get("removed").as_deref() == Some("passkey") {
            Some("The passkey was removed.")
        } else if q.get("added").is_some() {
            Some("Your passkey was added: use it at your next sign-in.")
        } else if q.get("renamed").is_some() {
            Some("The passkey was renamed.")
        } else {
            None
        }
    };
    let totp = view.totp_since.is_some();
    let factors = usize::from(totp) + view.passkeys.len();
    // The last factor of an account whose role requires one stays.
    let removable = !view.required || factors > 1;
    view! {
        {view.must_enrol.then(|| view! {
            <div class="alert alert-info" role="status" data-testid="must-enrol">
                "Your role requires a second factor. Enrol an authenticator app or a passkey to continue to the dashboard."
            </div>
        })}
        {move || notice().map(|text| view! { <div class="alert alert-ok" role="status" data-testid="mfa-notice">{text}</div> })}
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
                    <div class="alert alert-ok" role="status">"Save these now: they are not shown again. Each one signs you in once if you lose your device."</div>
                    <ul class="code-list">
                        {codes.into_iter().map(|c| view! { <li><code data-testid="recovery-code">{c}</code></li> }).collect_view()}
                    </ul>
                    <a class="button" href=href download="wasm-as-os-recovery-codes.txt" data-testid="download-codes">"Download as a text file"</a>
                </section>
            }
        })}
        {(factors > 0).then(|| view! {
            <section class="card" aria-labelledby="factors-title" data-testid="factors">
                <h2 id="factors-title">"Your second factors"</h2>
                <dl class="status-list">
                    <dt>"Authenticator app"</dt>
                    <dd data-testid="totp-state">{match &view.totp_since {
                        Some(since) => format!("enrolled {since}{}", view.totp_last_used.as_ref().map(|t| format!(", last used {t}")).unwrap_or_default()),
                        None => "not enrolled".to_string(),
                    }}</dd>
                    <dt>"Passkeys"</dt>
                    <dd data-testid="passkey-count">{match view.passkeys.len() { 0 => "none".to_string(), 1 => "1 registered".to_string(), n => format!("{n} registered") }}</dd>
                    <dt>"Recovery codes"</dt>
                    <dd data-testid="codes-left">{format!("{} of 10 left", view.recovery_codes_left)}</dd>
                </dl>
                <FormError error=manage_error />
                <div class="actions">
                    <ActionForm action=regenerate attr:class="form-inline">
                        <button class="button" type="submit">"New recovery codes"</button>
                    </ActionForm>
                    {(totp && removable).then(|| view! {
                        <ActionForm action=remove attr:class="form-inline">
                            <button class="button button-danger" type="submit">"Remove authenticator"</button>
                        </ActionForm>
                    })}
                </div>
                {(!removable).then(|| view! { <p class="hint">"Your role requires a second factor (soc2.yml), so your last one cannot be removed here: add another first, or ask an administrator to reset it."</p> })}
            </section>
        })}
        <Passkeys passkeys=view.passkeys removable />
        {view.setup.map(|setup| view! {
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
        })}
    }
}

/// One's passkeys: the list (rename, remove) and registering another.
#[component]
fn Passkeys(passkeys: Vec<PasskeyView>, removable: bool) -> impl IntoView {
    let add = ServerAction::<AddPasskey>::new();
    let rename = ServerAction::<RenamePasskey>::new();
    let remove = ServerAction::<RemovePasskey>::new();
    let add_error = Signal::derive(move || add.value().get().and_then(Result::err));
    let manage_error = Signal::derive(move || {
        rename
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| remove.value().get().and_then(Result::err))
    });
    let empty = passkeys.is_empty();
    view! {
        <section class="card" id="passkeys" aria-labelledby="passkeys-title" data-testid="passkeys">
            <h2 id="passkeys-title">"Passkeys and security keys"</h2>
            <p class="muted">"A passkey on this device, a phone or a security key answers the second step with a touch or a fingerprint. Register more than one so losing a device does not lock you out."</p>
            <FormError error=manage_error />
            {if empty {
                view! { <p class="muted" data-testid="no-passkeys">"No passkey registered yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="table" data-testid="passkey-table">
                            <thead><tr><th scope="col">"Name"</th><th scope="col">"Added"</th><th scope="col">"Last used"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                            <tbody>
                                {passkeys.into_iter().map(|p| {
                                    let field = format!("passkey-name-{}", p.id);
                                    let label_for = field.clone();
                                    let id_rename = p.id.clone();
                                    let id_remove = p.id.clone();
                                    let remove_label = format!("Remove passkey {}", p.name);
                                    view! {
                                        <tr data-testid="passkey-row">
                                            <td>
                                                <ActionForm action=rename attr:class="form-inline-grid">
                                                    <input type="hidden" name="id" value=id_rename />
                                                    <label class="visually-hidden" for=label_for>"Name of this passkey"</label>
                                                    <input id=field type="text" name="name" value=p.name required maxlength="64" data-testid="passkey-name" />
                                                    <button class="button button-small" type="submit">"Rename"</button>
                                                </ActionForm>
                                            </td>
                                            <td>{p.added}</td>
                                            <td>{p.last_used.unwrap_or_else(|| "never".to_string())}</td>
                                            <td>
                                                {removable.then(|| view! {
                                                    <ActionForm action=remove attr:class="form-inline">
                                                        <input type="hidden" name="id" value=id_remove />
                                                        <button class="button button-danger button-small" type="submit" aria-label=remove_label>"Remove"</button>
                                                    </ActionForm>
                                                })}
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
            <h3>"Add a passkey"</h3>
            <FormError error=add_error fields=&["name", "credential", "passkey"] />
            <ActionForm action=add attr:class="form form-inline" attr:data-testid="add-passkey-form" attr:data-passkey-form="register">
                <input type="hidden" name="ceremony" value="" />
                <input type="hidden" name="credential" value="" />
                <div class="field">
                    <label for="passkey-name">"Name"</label>
                    <input id="passkey-name" name="name" required maxlength="64" placeholder="e.g. Work laptop" aria-describedby="passkey-name-errors passkey-errors" />
                    <FieldErrors error=add_error field="name" id="passkey-name-errors" />
                    <FieldErrors error=add_error field="credential" id="passkey-errors" />
                </div>
                <button class="button button-primary" type="button" data-passkey="/api/mfa/passkey_options">"Add a passkey"</button>
                <p class="hint" data-passkey-status aria-live="polite"></p>
                <p class="hint passkey-needs-js">"Registering a passkey needs JavaScript in this browser."</p>
            </ActionForm>
        </section>
    }
}
