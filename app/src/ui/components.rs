//! Small shared components.

use leptos::prelude::*;

/// A 24×24 stroked icon from SVG path data.
#[component]
pub fn Icon(path: &'static str) -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="1.75" stroke-linecap="round" stroke-linejoin="round">
            <path d=path />
        </svg>
    }
}

/// The page heading with a one-line description.
#[component]
pub fn PageHeader(title: &'static str, summary: &'static str) -> impl IntoView {
    view! {
        <header class="page-header">
            <h1>{title}</h1>
            <p class="muted">{summary}</p>
        </header>
    }
}

/// What a page shows when it has nothing to list.
#[component]
pub fn EmptyState(icon: &'static str, title: String, children: Children) -> impl IntoView {
    let label = title.clone();
    view! {
        <section class="empty-state" aria-label=label>
            <div class="empty-state-icon"><Icon path=icon /></div>
            <h2>{title}</h2>
            <div class="empty-state-body">{children()}</div>
        </section>
    }
}
