//! The HTTP surface: dashboard pages and server functions (Leptos), health checks, request logging,
//! Prometheus metrics.

pub mod api;
pub mod csrf;
mod dashboard;
pub mod edge;
pub mod headers;
mod health;
pub mod metrics;
mod oidc;
mod request_log;
mod server_fn_status;
pub mod slow_body;

use axum::{Router, routing::get};
use leptos::config::LeptosOptions;
use leptos::prelude::{provide_context, use_context};
use leptos_axum::{LeptosRoutes, generate_route_list};
use platform::Platform;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_sessions::{Expiry, SessionManagerLayer, cookie::SameSite};

/// State shared by every handler.
#[derive(Clone, axum::extract::FromRef)]
pub struct AppState {
    pub leptos: LeptosOptions,
    pub platform: Platform,
    /// HTTPS in force (for `/readyz`), when tls.yml turns it on.
    pub tls: TlsState,
    /// The origins browsers reach this server at (passkey ceremonies are bound to one).
    pub origins: csrf::PublicOrigins,
}

/// The TLS side of the server, when on.
#[derive(Clone, Default)]
pub struct TlsState(pub Option<std::sync::Arc<crate::serve::tls::Tls>>);

/// Browser sessions: an HttpOnly, SameSite=Lax cookie (Secure under TLS) naming a row of the
/// `sessions` table; idle expiry is renewed by each request, the absolute limit is checked by the
/// platform.
fn session_layer(
    platform: &Platform,
) -> SessionManagerLayer<platform::identity::sessions::DbSessionStore> {
    let idle = time::Duration::try_from(platform.session_timeouts().idle)
        .unwrap_or(time::Duration::minutes(30));
    SessionManagerLayer::new(platform.session_store())
        .with_name("wasm_as_os_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(platform.config().tls.tls.enabled)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle))
}

/// What the Compliance page shows about HTTPS (the same facts as `/readyz`).
fn transit_view(tls: Option<&crate::serve::tls::Tls>) -> app::api::compliance::TransitView {
    let Some(tls) = tls else {
        return app::api::compliance::TransitView::default();
    };
    let info = tls.info();
    app::api::compliance::TransitView {
        enabled: true,
        min_version: tls.summary.min_version.to_string(),
        cipher_suites: tls.summary.cipher_suites.clone(),
        client_auth: tls.summary.client_auth.to_string(),
        certificate: Some(info.subject.clone()),
        expires: Some(info.not_after.format("%Y-%m-%d").to_string()),
        days_left: Some(info.days_left(chrono::Utc::now())),
    }
}

/// What `serve` decides about the HTTP surface.
pub struct Options {
    pub metrics_allow: metrics::MetricsAllow,
    /// The origins cookie-carrying writes must come from.
    pub origins: csrf::PublicOrigins,
    pub body_pace: slow_body::BodyPace,
    pub headers: headers::HeaderPolicy,
    pub tls: Option<std::sync::Arc<crate::serve::tls::Tls>>,
}

pub fn router(platform: Platform, leptos: LeptosOptions, options: Options) -> Router {
    let state = AppState {
        leptos: leptos.clone(),
        platform: platform.clone(),
        tls: TlsState(options.tls.clone()),
        origins: options.origins.clone(),
    };
    let sessions = session_layer(&platform);
    let routes = generate_route_list(app::App);
    // Each page gets the platform and the nonce `headers::security_headers` put in its CSP, so
    // Leptos marks its inline scripts with it.
    let transit = app::api::compliance::TransitSource({
        let tls = options.tls.clone();
        std::sync::Arc::new(move || transit_view(tls.as_deref()))
    });
    let context = move || {
        provide_context(platform.clone());
        provide_context(transit.clone());
        if let Some(parts) = use_context::<axum::http::request::Parts>()
            && let Some(nonce) = parts.extensions.get::<headers::CspNonce>()
        {
            provide_context(leptos::nonce::Nonce::from_value(nonce.0.clone()));
        }
    };
    Router::<AppState>::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/api/v1", api::router())
        .route(
            "/modules/upload",
            axum::routing::post(dashboard::upload)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/audit/export", get(dashboard::audit_export))
        .route(
            "/account/exports/{id}/download",
            get(dashboard::export_download),
        )
        .route("/auth/google", axum::routing::post(oidc::start))
        .route(
            platform::config::security::CALLBACK_PATH,
            get(oidc::callback),
        )
        .merge(metrics::router(options.metrics_allow))
        .leptos_routes_with_context(&state, routes, context.clone(), move || {
            app::shell(leptos.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, app::shell))
        .layer(axum::middleware::from_fn(server_fn_status::status))
        // Inside the session layer, so a refusal can name the signed-in user in its audit event.
        .layer(axum::middleware::from_fn_with_state(
            (state.platform.clone(), options.origins),
            csrf::check,
        ))
        // Inside the session layer, so a budget can be the signed-in user's.
        .layer(axum::middleware::from_fn_with_state(
            state.platform.clone(),
            edge::gate,
        ))
        .layer(sessions)
        .layer(axum::middleware::from_fn_with_state(
            options.body_pace,
            slow_body::pace,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.platform.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            options.headers,
            headers::security_headers,
        ))
        .layer(axum::middleware::from_fn(request_log::log_request))
        // Outermost but for the request id: every layer below sees the client's address.
        .layer(axum::middleware::from_fn_with_state(
            state.platform.clone(),
            edge::client_address,
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}
