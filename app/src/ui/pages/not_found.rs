//! The 404 page.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found" />
        <section class="error-page" aria-labelledby="error-title">
            <p class="error-code">"404"</p>
            <h1 id="error-title">"Page not found"</h1>
            <p class="muted">"There is nothing at this address. It may have moved, or the link may be mistyped."</p>
            <a class="button" href="/">"Back to the overview"</a>
        </section>
    }
}

/// The page shown when loading a page's data failed.
#[component]
pub fn ErrorPanel(message: String) -> impl IntoView {
    view! {
        <div class="alert alert-error" role="alert">
            <strong>"Could not load this panel. "</strong>
            {message}
        </div>
    }
}
