//! The Modules dashboard: the list, the upload page with its progress bar, the review queue, and
//! (in `modules/detail.rs`) one module's page.

pub mod detail;
mod upload;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

pub use self::upload::UploadPage;
use crate::{
    api::modules::{ModuleView, list_modules, review_queue},
    ui::{
        components::{EmptyState, PageHeader},
        forms::{encode, page_error},
        sections,
    },
};

/// Bytes as KiB/MiB.
pub fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

#[component]
pub fn StatusPill(status: String) -> impl IntoView {
    let class = match status.as_str() {
        "active" => "pill pill-ok",
        "review" => "pill pill-warn",
        _ => "pill pill-bad",
    };
    view! { <span class=class data-testid="module-status">{status}</span> }
}

#[component]
pub fn RiskBadge(score: u8) -> impl IntoView {
    let class = match score {
        0..=4 => "risk risk-low",
        5..=7 => "risk risk-medium",
        _ => "risk risk-high",
    };
    view! { <span class=class title="Risk score, 0–10" data-testid="risk-score">{format!("{score}/10")}</span> }
}

fn module_table(modules: Vec<ModuleView>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table" data-testid="modules-table">
                <thead><tr><th scope="col">"Name"</th><th scope="col">"Owner"</th><th scope="col">"Size"</th><th scope="col">"Status"</th><th scope="col">"Risk"</th><th scope="col">"Last run"</th></tr></thead>
                <tbody>
                    {modules.into_iter().map(|m| view! {
                        <tr>
                            <td><a href=format!("/modules/{}", m.id)>{m.name}</a><div class="muted small">{m.kind}</div></td>
                            <td>{m.owner}</td>
                            <td>{human_size(m.size_bytes)}</td>
                            <td><StatusPill status=m.status /></td>
                            <td><RiskBadge score=m.risk_score /></td>
                            <td class="muted">{m.last_run_at.unwrap_or_else(|| "never".to_string())}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
pub fn ModulesPage() -> impl IntoView {
    let query = use_query_map();
    let status = move || query.read().get("status").unwrap_or_default();
    let q = move || query.read().get("q").unwrap_or_default();
    let page = move || {
        query
            .read()
            .get("page")
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(1)
    };
    let modules = Resource::new(
        move || (status(), q(), page()),
        |(s, q, p)| list_modules(s, q, p),
    );
    let icon = sections::find("modules").map_or("", |s| s.icon);
    view! {
        <Title text="Modules" />
        <PageHeader title="Modules" summary="Uploaded WebAssembly modules, their analysis and their runs." />
        <div class="toolbar-row">
            <form class="toolbar" method="get" action="/modules" role="search">
                <label class="visually-hidden" for="module-search">"Search modules"</label>
                <input id="module-search" name="q" type="search" placeholder="Search by name or description" value=q />
                <label class="visually-hidden" for="module-status">"Status"</label>
                <select id="module-status" name="status">
                    <option value="" selected=move || status().is_empty()>"Any status"</option>
                    <option value="active" selected=move || status() == "active">"Active"</option>
                    <option value="review" selected=move || status() == "review">"In review"</option>
                    <option value="quarantined" selected=move || status() == "quarantined">"Quarantined"</option>
                </select>
                <button class="button" type="submit">"Filter"</button>
            </form>
            <a class="button button-primary" href="/modules/upload">"Upload module"</a>
        </div>
        <Suspense fallback=|| view! { <p class="muted">"Loading modules…"</p> }>
            {move || Suspend::new(async move {
                match modules.await {
                    Err(e) => page_error(e),
                    Ok(data) if data.modules.is_empty() => view! {
                        <EmptyState icon title="No modules here yet".to_string()>
                            <p>"Modules you upload, or that others share with you, appear here with their risk score."</p>
                            <a class="button" href="/modules/upload">"Upload a module"</a>
                        </EmptyState>
                    }.into_any(),
                    Ok(data) => {
                        let pages = data.total.div_ceil(data.per_page).max(1);
                        let link = move |p: u64| format!("/modules?q={}&status={}&page={p}", encode(&q()), encode(&status()));
                        view! {
                            {module_table(data.modules)}
                            <nav class="pager" aria-label="Pages">
                                <span class="muted">{format!("{} modules · page {} of {}", data.total, data.page, pages)}</span>
                                {(data.page > 1).then(|| view! { <a class="button" href=link(data.page - 1)>"Previous"</a> })}
                                {(data.page < pages).then(|| view! { <a class="button" href=link(data.page + 1)>"Next"</a> })}
                            </nav>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn ReviewQueuePage() -> impl IntoView {
    let queue = Resource::new(|| (), |()| review_queue());
    let icon = sections::find("modules").map_or("", |s| s.icon);
    view! {
        <Title text="Review queue" />
        <PageHeader title="Review queue" summary="Modules the analysis put in review or quarantine. Read the findings, then release or delete." />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match queue.await {
                    Err(e) => page_error(e),
                    Ok(list) if list.is_empty() => view! {
                        <EmptyState icon title="Nothing to review".to_string()>
                            <p>"No module is in review or quarantined."</p>
                        </EmptyState>
                    }.into_any(),
                    Ok(list) => module_table(list).into_any(),
                }
            })}
        </Suspense>
    }
}
