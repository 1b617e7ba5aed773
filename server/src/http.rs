//! The HTTP surface: dashboard pages and server functions (Leptos), health checks, request logging.

pub mod api;
mod health;
mod request_log;

use axum::{Router, routing::get};
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use platform::Platform;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// State shared by every handler.
#[derive(Clone, axum::extract::FromRef)]
pub struct AppState {
    pub leptos: LeptosOptions,
    pub platform: Platform,
}

pub fn router(platform: Platform, leptos: LeptosOptions) -> Router {
    let state = AppState { leptos: leptos.clone(), platform: platform.clone() };
    let routes = generate_route_list(app::App);
    let context = move || provide_context(platform.clone());
    Router::<AppState>::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/api/v1", api::router())
        .leptos_routes_with_context(&state, routes, context, move || app::shell(leptos.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(app::shell))
        .layer(axum::middleware::from_fn(request_log::log_request))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
