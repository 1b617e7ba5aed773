//! The Users dashboard: search and page through accounts, create one; and one user's page with
//! roles, disable/enable, password reset and delete.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::{
    api::{
        mfa::{FactorBadge, ResetMfa, user_factors},
        users::{
            CreateUser, DeleteUser, ResetPassword, SetUserDisabled, SetUserRoles, get_user,
            list_users,
        },
    },
    ui::{
        components::{EmptyState, PageHeader},
        forms::{FieldErrors, FormError, encode, page_error},
        sections,
    },
};

#[component]
pub fn UsersPage() -> impl IntoView {
    let query = use_query_map();
    let q = move || query.read().get("q").unwrap_or_default();
    let page = move || {
        query
            .read()
            .get("page")
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(1)
    };
    let create = ServerAction::<CreateUser>::new();
    let users = Resource::new(
        move || (q(), page(), create.version().get()),
        |(q, page, _)| list_users(q, page),
    );
    let error = Signal::derive(move || create.value().get().and_then(Result::err));
    let factors = Resource::new(move || create.version().get(), |_| user_factors());
    view! {
        <Title text="Users" />
        <PageHeader title="Users" summary="People who sign in to wasm-as-os, their roles and their status." />
        <form class="toolbar" method="get" action="/users" role="search">
            <label class="visually-hidden" for="user-search">"Search users"</label>
            <input id="user-search" name="q" type="search" placeholder="Search by name or email" value=q />
            <button class="button" type="submit">"Search"</button>
        </form>
        <Suspense fallback=|| view! { <p class="muted">"Loading users…"</p> }>
            {move || Suspend::new(async move {
                let factors = factors.await.unwrap_or_default();
                match users.await {
                    Err(e) => page_error(e),
                    Ok(data) => {
                        let pages = data.total.div_ceil(data.per_page).max(1);
                        let roles = data.roles.clone();
                        let list = if data.users.is_empty() {
                            let icon = sections::find("users").map_or("", |s| s.icon);
                            view! {
                                <EmptyState icon title="No users match".to_string()>
                                    <p>"Try another search, or create an account below."</p>
                                </EmptyState>
                            }.into_any()
                        } else {
                            view! {
                                <div class="table-wrap">
                                    <table class="table" data-testid="users-table">
                                        <thead><tr><th scope="col">"Username"</th><th scope="col">"Email"</th><th scope="col">"Roles"</th><th scope="col">"Status"</th><th scope="col">"Second factor"</th><th scope="col">"Last sign-in"</th></tr></thead>
                                        <tbody>
                                            {data.users.into_iter().map(|u| { let badge = factor_badge(factors.get(&u.id)); view! {
                                                <tr>
                                                    <td><a href=format!("/users/{}", u.id)>{u.username}</a></td>
                                                    <td>{u.email}</td>
                                                    <td>{u.roles.join(", ")}</td>
                                                    <td>{if u.disabled { view! { <span class="pill pill-bad">"disabled"</span> } } else { view! { <span class="pill pill-ok">"active"</span> } }}</td>
                                                    <td>{badge}</td>
                                                    <td class="muted">{u.last_login_at.unwrap_or_else(|| "never".to_string())}</td>
                                                </tr>
                                            }}).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            }.into_any()
                        };
                        view! {
                            {list}
                            <nav class="pager" aria-label="Pages">
                                <span class="muted">{format!("{} users · page {} of {}", data.total, data.page, pages)}</span>
                                {(data.page > 1).then(|| view! { <a class="button" href=format!("/users?q={}&page={}", encode(&q()), data.page - 1)>"Previous"</a> })}
                                {(data.page < pages).then(|| view! { <a class="button" href=format!("/users?q={}&page={}", encode(&q()), data.page + 1)>"Next"</a> })}
                            </nav>
                            <section class="card" aria-labelledby="new-user-title">
                                <h2 id="new-user-title">"Create a user"</h2>
                                <FormError error fields=&["username", "email", "password", "roles"] />
                                <ActionForm action=create attr:class="form form-grid" attr:data-testid="create-user-form">
                                    <div class="field">
                                        <label for="new-username">"Username"</label>
                                        <input id="new-username" name="username" required aria-describedby="new-username-errors" />
                                        <FieldErrors error field="username" id="new-username-errors" />
                                    </div>
                                    <div class="field">
                                        <label for="new-email">"Email"</label>
                                        <input id="new-email" name="email" type="email" required aria-describedby="new-email-errors" />
                                        <FieldErrors error field="email" id="new-email-errors" />
                                    </div>
                                    <div class="field">
                                        <label for="new-password">"Initial password"</label>
                                        <input id="new-password" name="password" type="password" autocomplete="new-password" required aria-describedby="new-password-errors" />
                                        <FieldErrors error field="password" id="new-password-errors" />
                                    </div>
                                    <fieldset class="field">
                                        <legend>"Roles"</legend>
                                        <RoleCheckboxes roles held=Vec::new() prefix="new" />
                                        <FieldErrors error field="roles" id="new-roles-errors" />
                                    </fieldset>
                                    <button class="button button-primary" type="submit">"Create user"</button>
                                </ActionForm>
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// One checkbox per role, named `roles[<name>]` so the form posts the checked ones.
/// An account's second factors as a pill: the app, passkeys, and how many recovery codes are left.
fn factor_badge(factors: Option<&FactorBadge>) -> AnyView {
    match factors.filter(|f| f.totp || f.passkeys > 0) {
        Some(f) => {
            let mut parts = Vec::new();
            if f.totp {
                parts.push("app".to_string());
            }
            match f.passkeys {
                0 => {}
                1 => parts.push("1 passkey".to_string()),
                n => parts.push(format!("{n} passkeys")),
            }
            parts.push(format!("{} codes", f.recovery_codes_left));
            view! { <span class="pill pill-ok" data-testid="factor">{parts.join(" · ")}</span> }
                .into_any()
        }
        None => view! { <span class="muted" data-testid="factor">"none"</span> }.into_any(),
    }
}

#[component]
fn RoleCheckboxes(roles: Vec<String>, held: Vec<String>, prefix: &'static str) -> impl IntoView {
    view! {
        <div class="checkbox-row">
            {roles.into_iter().map(|r| {
                let id = format!("{prefix}-role-{r}");
                let label_for = id.clone();
                let checked = held.contains(&r);
                view! {
                    <label class="checkbox" for=label_for>
                        <input type="checkbox" id=id name=format!("roles[{r}]") value="on" checked=checked />
                        {r}
                    </label>
                }
            }).collect_view()}
        </div>
    }
}

#[component]
pub fn UserPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let roles_action = ServerAction::<SetUserRoles>::new();
    let disable_action = ServerAction::<SetUserDisabled>::new();
    let reset_action = ServerAction::<ResetPassword>::new();
    let delete_action = ServerAction::<DeleteUser>::new();
    let mfa_action = ServerAction::<ResetMfa>::new();
    let factors = Resource::new(move || mfa_action.version().get(), |_| user_factors());
    let user = Resource::new(
        move || {
            (
                id(),
                roles_action.version().get(),
                disable_action.version().get(),
                reset_action.version().get(),
            )
        },
        |(id, ..)| get_user(id),
    );
    let roles_error = Signal::derive(move || roles_action.value().get().and_then(Result::err));
    let reset_error = Signal::derive(move || reset_action.value().get().and_then(Result::err));
    let other_error = Signal::derive(move || {
        disable_action
            .value()
            .get()
            .and_then(Result::err)
            .or_else(|| delete_action.value().get().and_then(Result::err))
            .or_else(|| mfa_action.value().get().and_then(Result::err))
    });
    let query = use_query_map();
    let created = move || query.read().get("created").is_some();
    let mfa_reset = move || {
        query.read().get("mfa_reset").is_some() || matches!(mfa_action.value().get(), Some(Ok(())))
    };
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let factors = factors.await.unwrap_or_default();
                match user.await {
                    Err(e) => page_error(e),
                    Ok((u, all_roles)) => {
                        let (id_roles, id_status, id_reset, id_delete) = (u.id.clone(), u.id.clone(), u.id.clone(), u.id.clone());
                        let id_mfa = u.id.clone();
                        let badge = factor_badge(factors.get(&u.id));
                        view! {
                        <Title text=u.username.clone() />
                        <header class="page-header">
                            <p class="breadcrumb"><a href="/users">"Users"</a>" / "</p>
                            <h1>{u.username.clone()}</h1>
                            <p class="muted">{format!("{} · created {}", u.email, u.created_at)}</p>
                        </header>
                        <Show when=created>
                            <div class="alert alert-ok" role="status">"The user was created."</div>
                        </Show>
                        <FormError error=other_error />
                        <div class="grid">
                            <section class="card" aria-labelledby="roles-title">
                                <h2 id="roles-title">"Roles"</h2>
                                <FormError error=roles_error fields=&["roles"] />
                                <ActionForm action=roles_action attr:class="form" attr:data-testid="roles-form">
                                    <input type="hidden" name="id" value=id_roles.clone() />
                                    <RoleCheckboxes roles=all_roles held=u.roles.clone() prefix="edit" />
                                    <FieldErrors error=roles_error field="roles" id="edit-roles-errors" />
                                    <button class="button button-primary" type="submit">"Save roles"</button>
                                </ActionForm>
                                {move || matches!(roles_action.value().get(), Some(Ok(_))).then(|| view! { <p class="muted" role="status">"Roles saved."</p> })}
                            </section>
                            <section class="card" aria-labelledby="status-title">
                                <h2 id="status-title">"Status"</h2>
                                <p>{if u.disabled { "This account is disabled: it cannot sign in and its tokens do not work." } else { "This account is active." }}</p>
                                <ActionForm action=disable_action attr:class="form-inline">
                                    <input type="hidden" name="id" value=id_status.clone() />
                                    <input type="hidden" name="disabled" value=(!u.disabled).to_string() />
                                    <button class="button" type="submit">{if u.disabled { "Enable account" } else { "Disable account" }}</button>
                                </ActionForm>
                            </section>
                            <section class="card" aria-labelledby="reset-title">
                                <h2 id="reset-title">"Reset password"</h2>
                                <FormError error=reset_error fields=&["password"] />
                                <ActionForm action=reset_action attr:class="form">
                                    <input type="hidden" name="id" value=id_reset.clone() />
                                    <div class="field">
                                        <label for="reset-password">"New password"</label>
                                        <input id="reset-password" name="password" type="password" autocomplete="new-password" required aria-describedby="reset-errors" />
                                        <FieldErrors error=reset_error field="password" id="reset-errors" />
                                    </div>
                                    <button class="button" type="submit">"Set password"</button>
                                </ActionForm>
                                {move || matches!(reset_action.value().get(), Some(Ok(_))).then(|| view! { <p class="muted" role="status">"Password set. The user's sessions were signed out."</p> })}
                            </section>
                            <section class="card" aria-labelledby="mfa-title" data-testid="user-mfa">
                                <h2 id="mfa-title">"Second factor"</h2>
                                <p>{badge}</p>
                                <Show when=mfa_reset>
                                    <div class="alert alert-ok" role="status">"The second factors were reset and the user's sessions ended. They enrol again at their next sign-in where their role requires it."</div>
                                </Show>
                                <p class="muted">"Resetting removes the authenticator app and the recovery codes, for someone who lost both."</p>
                                <ActionForm action=mfa_action attr:class="form-inline">
                                    <input type="hidden" name="user_id" value=id_mfa />
                                    <button class="button" type="submit">"Reset second factor"</button>
                                </ActionForm>
                            </section>
                            <section class="card card-danger" aria-labelledby="delete-title">
                                <h2 id="delete-title">"Delete user"</h2>
                                <p class="muted">"Deleting removes the account, its roles and its sessions. Audit events stay."</p>
                                <ActionForm action=delete_action attr:class="form-inline">
                                    <input type="hidden" name="id" value=id_delete.clone() />
                                    <button class="button button-danger" type="submit">"Delete user"</button>
                                </ActionForm>
                            </section>
                        </div>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
