//! The admin-console frame: sidebar navigation, header, content.

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_location};

use super::{components::Icon, sections::SECTIONS};
use crate::api::auth::{SignOut, current_user};

const OVERVIEW_ICON: &str = "M3 13h8V3H3zM13 21h8V11h-8zM3 21h8v-6H3zM13 3v6h8V3z";
const MENU_ICON: &str = "M4 6h16M4 12h16M4 18h16";

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let (collapsed, set_collapsed) = signal(false);
    // Effects run only in the browser: this marks the page once the WebAssembly bundle has hydrated it.
    Effect::new(|| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    let location = use_location();
    let sign_out = ServerAction::<SignOut>::new();
    // Refetched on every navigation, so the header follows sign-in and sign-out.
    let me = Resource::new(
        move || (location.pathname.get(), sign_out.version().get()),
        |_| current_user(),
    );
    let current = move |href: &'static str| {
        let path = location.pathname.get();
        let active = if href == "/" {
            path == "/"
        } else {
            path == href || path.starts_with(&format!("{href}/"))
        };
        active.then_some("page")
    };
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <div class="console" class:sidebar-collapsed=collapsed data-testid="console">
            <nav class="sidebar" aria-label="Main">
                <a class="brand" href="/">
                    <span class="brand-mark" aria-hidden="true">"W"</span>
                    <span class="brand-name">"wasm-as-os"</span>
                </a>
                <ul>
                    <li>
                        <A href="/" attr:aria-current=move || current("/")>
                            <Icon path=OVERVIEW_ICON />
                            <span class="nav-label">"Overview"</span>
                        </A>
                    </li>
                    {SECTIONS
                        .iter()
                        .map(|s| {
                            let href = s.path;
                            view! {
                                <li>
                                    <A href=href attr:aria-current=move || current(href)>
                                        <Icon path=s.icon />
                                        <span class="nav-label">{s.title}</span>
                                    </A>
                                </li>
                            }
                        })
                        .collect_view()}
                </ul>
            </nav>
            <div class="main-column">
                <header class="topbar">
                    <button
                        type="button"
                        class="icon-button"
                        aria-label="Collapse navigation"
                        aria-expanded=move || (!collapsed.get()).to_string()
                        on:click=move |_| set_collapsed.update(|c| *c = !*c)
                    >
                        <Icon path=MENU_ICON />
                    </button>
                    <span class="topbar-title">"Control plane"</span>
                    <span class="topbar-spacer"></span>
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            match me.await {
                                Ok(Some(user)) => view! {
                                    <a class="topbar-user" href="/account" data-testid="current-user">{user.username}</a>
                                    <ActionForm action=sign_out attr:class="form-inline">
                                        <button class="button button-small" type="submit">"Sign out"</button>
                                    </ActionForm>
                                }.into_any(),
                                Err(e) if e.is_enrolment_required() => view! {
                                    <ActionForm action=sign_out attr:class="form-inline">
                                        <button class="button button-small" type="submit">"Sign out"</button>
                                    </ActionForm>
                                }.into_any(),
                                _ => view! { <a class="button button-small" href="/login">"Sign in"</a> }.into_any(),
                            }
                        })}
                    </Suspense>
                </header>
                <main id="main" class="content" tabindex="-1">
                    {children()}
                </main>
            </div>
        </div>
    }
}
