//! The wasm-as-os dashboard: the app shell, its routes, pages and server functions.
//!
//! Built twice: with `ssr` for the server (server functions then call the `platform` services) and
//! with `hydrate` for the browser.

#![recursion_limit = "256"]

pub mod api;
pub mod ui;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    SsrMode,
    components::{Route, Router, Routes},
    path,
};

use crate::ui::{
    layout::Layout,
    pages::{
        account::AccountPage,
        audit::AuditPage,
        compliance::CompliancePage,
        home::Home,
        mfa::{MfaPage, SecondFactorPage},
        modules::{ModulesPage, ReviewQueuePage, UploadPage, detail::ModulePage},
        not_found::NotFound,
        roles::RolesPage,
        section::SectionPage,
        security::SecurityPage,
        sign_in::{SetupPage, SignInPage},
        users::{UserPage, UsersPage},
    },
};

/// The HTML document around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                // Passkey ceremonies on the two-step sign-in pages (WebAuthn is a browser API).
                <script src="/passkeys.js" defer></script>
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/wasm-as-os.css" />
        <Title formatter=|page: String| if page.is_empty() { "wasm-as-os".to_string() } else { format!("{page} · wasm-as-os") } />
        <Router>
            <Layout>
                <Routes fallback=NotFound>
                    // Pages with data render whole on the server, so they work without JavaScript.
                    <Route path=path!("/") view=Home ssr=SsrMode::Async />
                    <Route path=path!("/login") view=SignInPage ssr=SsrMode::Async />
                    <Route path=path!("/login/mfa") view=SecondFactorPage ssr=SsrMode::Async />
                    <Route path=path!("/setup") view=SetupPage ssr=SsrMode::Async />
                    <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async />
                    <Route path=path!("/account/mfa") view=MfaPage ssr=SsrMode::Async />
                    <Route path=path!("/users") view=UsersPage ssr=SsrMode::Async />
                    <Route path=path!("/users/:id") view=UserPage ssr=SsrMode::Async />
                    <Route path=path!("/roles") view=RolesPage ssr=SsrMode::Async />
                    <Route path=path!("/modules") view=ModulesPage ssr=SsrMode::Async />
                    <Route path=path!("/modules/upload") view=UploadPage />
                    <Route path=path!("/modules/review") view=ReviewQueuePage ssr=SsrMode::Async />
                    <Route path=path!("/modules/:id") view=ModulePage ssr=SsrMode::Async />
                    <Route path=path!("/scheduler") view=|| view! { <SectionPage section="scheduler" /> } />
                    <Route path=path!("/snapshots") view=|| view! { <SectionPage section="snapshots" /> } />
                    <Route path=path!("/audit") view=AuditPage ssr=SsrMode::Async />
                    <Route path=path!("/security") view=SecurityPage ssr=SsrMode::Async />
                    <Route path=path!("/compliance") view=CompliancePage ssr=SsrMode::Async />
                </Routes>
            </Layout>
        </Router>
    }
}
