//! The Roles dashboard: each role's permissions and holders; custom roles are created and edited
//! here, rbac.yml's roles in the file.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::roles::{CreateRole, UpdateRole, list_roles},
    ui::{
        components::PageHeader,
        forms::{FieldErrors, FormError, page_error},
    },
};

#[component]
pub fn RolesPage() -> impl IntoView {
    let create = ServerAction::<CreateRole>::new();
    let update = ServerAction::<UpdateRole>::new();
    let roles = Resource::new(
        move || (create.version().get(), update.version().get()),
        |_| list_roles(),
    );
    let create_error = Signal::derive(move || create.value().get().and_then(Result::err));
    let update_error = Signal::derive(move || update.value().get().and_then(Result::err));
    view! {
        <Title text="Roles" />
        <PageHeader title="Roles" summary="Roles and the permissions they grant, from rbac.yml and your own." />
        <FormError error=update_error />
        <Suspense fallback=|| view! { <p class="muted">"Loading roles…"</p> }>
            {move || Suspend::new(async move {
                match roles.await {
                    Err(e) => page_error(e),
                    Ok(list) => view! {
                        <div class="grid" data-testid="roles">
                            {list.into_iter().map(|r| {
                                let anchor = format!("role-{}", r.name);
                                let title_id = format!("{anchor}-title");
                                let labelled_by = title_id.clone();
                                view! {
                                    <section class="card" id=anchor aria-labelledby=labelled_by>
                                        <h2 id=title_id>{r.name.clone()}" "
                                            {if r.builtin { view! { <span class="pill">"rbac.yml"</span> } } else { view! { <span class="pill pill-ok">"custom"</span> } }}
                                        </h2>
                                        <p class="muted">{r.description.clone()}</p>
                                        <h3>"Permissions"</h3>
                                        <ul class="tag-list">{r.permissions.iter().map(|p| view! { <li class="tag">{p.clone()}</li> }).collect_view()}</ul>
                                        <h3>"Held by"</h3>
                                        <p>{if r.holders.is_empty() { "nobody yet".to_string() } else { r.holders.join(", ") }}</p>
                                        {(!r.builtin).then(|| {
                                            let pid = format!("perm-{}", r.name);
                                            let did = format!("desc-{}", r.name);
                                            view! {
                                                <details>
                                                    <summary>"Edit"</summary>
                                                    <ActionForm action=update attr:class="form">
                                                        <input type="hidden" name="name" value=r.name.clone() />
                                                        <div class="field">
                                                            <label for=did.clone()>"Description"</label>
                                                            <input id=did name="description" value=r.description.clone() />
                                                        </div>
                                                        <div class="field">
                                                            <label for=pid.clone()>"Permissions (one per line)"</label>
                                                            <textarea id=pid name="permissions" rows="4">{r.permissions.join("\n")}</textarea>
                                                        </div>
                                                        <button class="button" type="submit">"Save"</button>
                                                    </ActionForm>
                                                </details>
                                            }
                                        })}
                                    </section>
                                }
                            }).collect_view()}
                        </div>
                    }.into_any(),
                }
            })}
        </Suspense>
        <section class="card" aria-labelledby="new-role-title">
            <h2 id="new-role-title">"Create a custom role"</h2>
            <FormError error=create_error fields=&["name", "permissions"] />
            <ActionForm action=create attr:class="form form-grid" attr:data-testid="create-role-form">
                <div class="field">
                    <label for="role-name">"Name"</label>
                    <input id="role-name" name="name" required aria-describedby="role-name-errors" />
                    <FieldErrors error=create_error field="name" id="role-name-errors" />
                </div>
                <div class="field">
                    <label for="role-description">"Description"</label>
                    <input id="role-description" name="description" />
                </div>
                <div class="field">
                    <label for="role-permissions">"Permissions (one per line, resource:action or resource:*)"</label>
                    <textarea id="role-permissions" name="permissions" rows="4" required aria-describedby="role-permissions-errors"></textarea>
                    <FieldErrors error=create_error field="permissions" id="role-permissions-errors" />
                </div>
                <button class="button button-primary" type="submit">"Create role"</button>
            </ActionForm>
        </section>
    }
}
