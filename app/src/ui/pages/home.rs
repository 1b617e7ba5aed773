//! The overview page: platform status and where to start.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    api::{auth::current_user, system::system_status},
    ui::{components::PageHeader, pages::not_found::ErrorPanel, sections::SECTIONS},
};

#[component]
pub fn Home() -> impl IntoView {
    let status = Resource::new(|| (), |()| system_status());
    let me = Resource::new(|| (), |()| current_user());
    view! {
        <Title text="Overview" />
        // A session that must enrol a second factor first goes to enrolment from here too.
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                me.await
                    .err()
                    .filter(|e| e.is_enrolment_required())
                    .map(|_| view! { <leptos_router::components::Redirect path="/account/mfa" /> })
            })}
        </Suspense>
        <PageHeader title="Overview" summary="The state of this wasm-as-os installation." />
        <div class="grid">
            <section class="card" aria-labelledby="status-title">
                <h2 id="status-title">"Platform status"</h2>
                <Suspense fallback=|| view! { <p class="muted">"Checking…"</p> }>
                    {move || Suspend::new(async move {
                        match status.await {
                            Ok(s) => view! {
                                <dl class="status-list" data-testid="status">
                                    <dt>"Version"</dt>
                                    <dd>{s.version}</dd>
                                    <dt>"Database"</dt>
                                    <dd><StatusPill ok=s.database_reachable yes="reachable" no="unreachable" /></dd>
                                    <dt>"Schema"</dt>
                                    <dd><StatusPill ok=s.schema_current yes="up to date" no="migrations pending" /></dd>
                                </dl>
                            }.into_any(),
                            Err(e) => view! { <ErrorPanel message=e.to_string() /> }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
            <section class="card" aria-labelledby="areas-title">
                <h2 id="areas-title">"Areas"</h2>
                <ul class="area-list">
                    {SECTIONS
                        .iter()
                        .map(|s| view! {
                            <li>
                                <a href=s.path>{s.title}</a>
                                <span class="muted">{s.summary}</span>
                            </li>
                        })
                        .collect_view()}
                </ul>
            </section>
        </div>
    }
}

#[component]
fn StatusPill(ok: bool, yes: &'static str, no: &'static str) -> impl IntoView {
    view! {
        <span class=if ok { "pill pill-ok" } else { "pill pill-bad" }>{if ok { yes } else { no }}</span>
    }
}
