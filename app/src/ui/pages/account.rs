//! The account page: who you are, your roles, changing your password, linked sign-ins (Google),
//! personal API tokens and your data (exports, in `account/exports.rs`).

mod erasure;
mod exports;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::{
        auth::{ChangePassword, current_user},
        linked::{LinkedRow, UnlinkIdentity, linked_identities, sign_in_options},
        tokens::{CreateToken, RevokeToken, TokenRow, list_tokens, take_new_token},
    },
    ui::{
        components::{EmptyState, PageHeader},
        forms::{FieldErrors, FormError, page_error},
    },
};

#[component]
pub fn AccountPage() -> impl IntoView {
    let me = Resource::new(|| (), |()| current_user());
    let action = ServerAction::<ChangePassword>::new();
    let error = Signal::derive(move || action.value().get().and_then(Result::err));
    let query = use_query_map();
    let changed = move || {
        query.read().get("changed").is_some() || matches!(action.value().get(), Some(Ok(())))
    };
    view! {
        <Title text="Your account" />
        <PageHeader title="Your account" summary="Your roles, your password, your linked sign-ins, your API tokens and a copy of your data." />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(user)) => view! {
                        <div class="grid">
                            <section class="card" aria-labelledby="who-title">
                                <h2 id="who-title">{user.username.clone()}</h2>
                                <dl class="status-list">
                                    <dt>"Roles"</dt>
                                    <dd>{user.roles.join(", ")}</dd>
                                    <dt>"Permissions"</dt>
                                    <dd><ul class="tag-list">{user.permissions.iter().map(|p| view! { <li class="tag">{p.clone()}</li> }).collect_view()}</ul></dd>
                                </dl>
                            </section>
                            <section class="card" aria-labelledby="pw-title">
                                <h2 id="pw-title">"Change password"</h2>
                                <Show when=changed>
                                    <div class="alert alert-ok" role="status">"Your password was changed. Your other sessions were signed out."</div>
                                </Show>
                                <FormError error fields=&["current_password", "password"] />
                                <ActionForm action attr:class="form">
                                    <div class="field">
                                        <label for="current_password">"Current password"</label>
                                        <input id="current_password" name="current_password" type="password" autocomplete="current-password" required aria-describedby="current-errors" />
                                        <FieldErrors error field="current_password" id="current-errors" />
                                    </div>
                                    <div class="field">
                                        <label for="new_password">"New password"</label>
                                        <input id="new_password" name="new_password" type="password" autocomplete="new-password" required aria-describedby="new-errors" />
                                        <FieldErrors error field="password" id="new-errors" />
                                    </div>
                                    <button class="button button-primary" type="submit">"Change password"</button>
                                </ActionForm>
                            </section>
                        </div>
                        <section class="card" aria-labelledby="mfa-link-title">
                            <h2 id="mfa-link-title">"Two-step sign-in"</h2>
                            <p class="muted">"An authenticator app and recovery codes as a second factor when you sign in."</p>
                            <a class="button" href="/account/mfa" data-testid="mfa-link">"Manage two-step sign-in"</a>
                        </section>
                        <LinkedSection />
                        <TokensSection />
                        <exports::ExportsSection />
                        <erasure::ErasureSection />
                    }.into_any(),
                    Ok(None) => page_error(crate::api::AppError::unauthorized()),
                    Err(e) => page_error(e),
                }
            })}
        </Suspense>
    }
}

/// Sign-ins linked to the account: listed, unlinkable (not the last one), and "Link Google".
#[component]
fn LinkedSection() -> impl IntoView {
    let query = use_query_map();
    let linked = Resource::new(move || query.get(), |_| linked_identities());
    let options = Resource::new(|| (), |()| sign_in_options());
    let unlink = ServerAction::<UnlinkIdentity>::new();
    let error = Signal::derive(move || unlink.value().get().and_then(Result::err));
    let notice = move || {
        let q = query.read();
        if q.get("linked").is_some() {
            Some("Google is linked: you can now sign in with it.")
        } else if q.get("unlinked").is_some() {
            Some("The sign-in was unlinked.")
        } else {
            None
        }
    };
    view! {
        <section class="card" id="linked" aria-labelledby="linked-title">
            <h2 id="linked-title">"Linked sign-ins"</h2>
            <p class="muted">"Other ways to sign in to this account. Each one can be unlinked, except the last way you have to sign in."</p>
            {move || notice().map(|n| view! { <div class="alert alert-ok" role="status">{n}</div> })}
            <FormError error />
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match linked.await {
                        Ok(list) if list.is_empty() => view! {
                            <EmptyState icon="" title="Nothing linked".to_string()>
                                <p>"You sign in with your password only."</p>
                            </EmptyState>
                        }.into_any(),
                        Ok(list) => view! {
                            <div class="table-wrap">
                                <table class="table" data-testid="linked-table">
                                    <thead><tr><th scope="col">"Provider"</th><th scope="col">"Email"</th><th scope="col">"Linked"</th><th scope="col">"Last used"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                                    <tbody>{list.into_iter().map(|l| linked_row(l, unlink)).collect_view()}</tbody>
                                </table>
                            </div>
                        }.into_any(),
                        Err(e) => page_error(e),
                    }
                })}
            </Suspense>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    options.await.ok().filter(|o| o.google).map(|_| view! {
                        <form method="post" action="/auth/google" class="form-inline" data-testid="link-google-form">
                            <input type="hidden" name="link" value="1" />
                            <button class="button button-secondary" type="submit">"Link Google"</button>
                        </form>
                    })
                })}
            </Suspense>
        </section>
    }
}

fn linked_row(l: LinkedRow, unlink: ServerAction<UnlinkIdentity>) -> impl IntoView {
    let provider = match l.provider.as_str() {
        "google" => "Google".to_string(),
        other => other.to_string(),
    };
    let label = format!("Unlink {provider}");
    view! {
        <tr>
            <td>{provider}</td>
            <td>{l.email.unwrap_or_default()}</td>
            <td>{l.linked_at}</td>
            <td class="muted">{l.last_used_at.unwrap_or_else(|| "never".to_string())}</td>
            <td>
                <ActionForm action=unlink attr:class="form-inline">
                    <input type="hidden" name="id" value=l.id />
                    <button class="button button-danger" type="submit" aria-label=label>"Unlink"</button>
                </ActionForm>
            </td>
        </tr>
    }
}

/// Lifetimes offered for a new token, in days (the service takes 1–365).
const LIFETIMES: [(u32, &str); 5] = [
    (7, "7 days"),
    (30, "30 days"),
    (90, "90 days"),
    (180, "180 days"),
    (365, "1 year"),
];

/// Personal API tokens: the one just made (shown once), a form to make one, and the list.
#[component]
fn TokensSection() -> impl IntoView {
    let query = use_query_map();
    let tokens = Resource::new(move || query.get(), |_| list_tokens());
    let new_token = Resource::new(move || query.get(), |_| take_new_token());
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let error = Signal::derive(move || create.value().get().and_then(Result::err));
    let revoke_error = Signal::derive(move || revoke.value().get().and_then(Result::err));
    let revoked = move || query.read().get("revoked").is_some();
    view! {
        <section class="card" id="tokens" aria-labelledby="tokens-title">
            <h2 id="tokens-title">"API tokens"</h2>
            <p class="muted">"A token lets a script use the REST API as you (send it as "<code>"Authorization: Bearer …"</code>"). It can do at most what you can do now, narrowed to the permissions you name, and stops working when it expires, when you revoke it, or if your account is disabled."</p>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    new_token.await.ok().flatten().map(|token| view! {
                        <div class="alert alert-ok" role="status">
                            <p>"Your new token. Copy it now: it is not shown again."</p>
                            <p><code class="secret" data-testid="new-token">{token}</code></p>
                        </div>
                    })
                })}
            </Suspense>
            <Show when=revoked>
                <div class="alert alert-ok" role="status">"The token was revoked. It stops working at its next use."</div>
            </Show>
            <FormError error=revoke_error />
            <FormError error fields=&["name", "expires_in_days", "permissions"] />
            <ActionForm action=create attr:class="form form-grid" attr:data-testid="create-token-form">
                <div class="field">
                    <label for="token-name">"Token name"</label>
                    <input id="token-name" name="name" type="text" required maxlength="64" placeholder="ci deploy" aria-describedby="token-name-errors" />
                    <FieldErrors error field="name" id="token-name-errors" />
                </div>
                <div class="field">
                    <label for="token-expiry">"Expires after"</label>
                    <select id="token-expiry" name="expires_in_days" aria-describedby="token-expiry-errors">
                        {LIFETIMES.into_iter().map(|(days, label)| view! { <option value=days.to_string() selected=days == 90>{label}</option> }).collect_view()}
                    </select>
                    <FieldErrors error field="expires_in_days" id="token-expiry-errors" />
                </div>
                <div class="field">
                    <label for="token-permissions">"Only these permissions (optional)"</label>
                    <input id="token-permissions" name="permissions" type="text" placeholder="modules:read, modules:execute" aria-describedby="token-permissions-hint token-permissions-errors" />
                    <p class="hint" id="token-permissions-hint">"Separated by commas. Leave empty for all of yours."</p>
                    <FieldErrors error field="permissions" id="token-permissions-errors" />
                </div>
                <button class="button button-primary" type="submit">"Create token"</button>
            </ActionForm>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Ok(list) if list.is_empty() => view! {
                            <EmptyState icon="" title="No tokens yet".to_string()>
                                <p>"Create one above for a script or a CI job."</p>
                            </EmptyState>
                        }.into_any(),
                        Ok(list) => view! {
                            <div class="table-wrap">
                                <table class="table" data-testid="tokens-table">
                                    <thead><tr><th scope="col">"Name"</th><th scope="col">"Token"</th><th scope="col">"Permissions"</th><th scope="col">"Expires"</th><th scope="col">"Last used"</th><th scope="col">"State"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|t| token_row(t, revoke)).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }.into_any(),
                        Err(e) => page_error(e),
                    }
                })}
            </Suspense>
        </section>
    }
}

fn token_row(t: TokenRow, revoke: ServerAction<RevokeToken>) -> impl IntoView {
    let permissions = match &t.permissions {
        None => "all of yours".to_string(),
        Some(list) if list.is_empty() => "none".to_string(),
        Some(list) => list.join(", "),
    };
    let pill = match t.state.as_str() {
        "active" => "pill pill-ok",
        _ => "pill pill-bad",
    };
    let active = t.state == "active";
    let label = format!("Revoke {}", t.name);
    view! {
        <tr>
            <td>{t.name.clone()}</td>
            <td><code>{format!("wao_…{}", t.hint)}</code></td>
            <td>{permissions}</td>
            <td>{t.expires_at}</td>
            <td class="muted">{t.last_used_at.unwrap_or_else(|| "never".to_string())}</td>
            <td><span class=pill>{t.state.clone()}</span></td>
            <td>
                {active.then(|| view! {
                    <ActionForm action=revoke attr:class="form-inline">
                        <input type="hidden" name="id" value=t.id.clone() />
                        <button class="button button-danger" type="submit" aria-label=label>"Revoke"</button>
                    </ActionForm>
                })}
            </td>
        </tr>
    }
}
