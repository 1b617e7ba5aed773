//! The account page: who you are, your roles, and changing your password.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::{
    api::auth::{ChangePassword, current_user},
    ui::{
        components::PageHeader,
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
        <PageHeader title="Your account" summary="Your roles and your password." />
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
                    }.into_any(),
                    Ok(None) => page_error(crate::api::AppError::unauthorized()),
                    Err(e) => page_error(e),
                }
            })}
        </Suspense>
    }
}
