//! `serve`: start the platform, mount the dashboard, the API and health checks, and run until a
//! shutdown signal.

use std::path::PathBuf;

use leptos::config::LeptosOptions;
use platform::{
    Notice, Platform, StartOptions,
    audit::{Actor, AuditEvent, EventKind, Outcome},
};

use crate::{cli::ServeArgs, commands::CommandError, http};

pub async fn run(options: StartOptions, args: ServeArgs) -> Result<(), CommandError> {
    let (platform, notices) = Platform::start(options).await?;
    for notice in notices {
        match notice {
            Notice::GeneratedJwtSecret { path } => tracing::warn!(
                path = %path.display(),
                "no JWT secret is configured: generated a random one into the data dir; set auth.jwt.secret (e.g. \"${{JWT_SECRET}}\") in security.yml for production"
            ),
        }
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CommandError::Listen { addr: args.listen, reason: listen_reason(&e) })?;
    let addr = listener.local_addr().map_err(CommandError::Serve)?;

    let site_root = args
        .site_root
        .or_else(|| std::env::var_os("LEPTOS_SITE_ROOT").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target/site"));
    let leptos = LeptosOptions::builder()
        .output_name("wasm-as-os")
        .site_root(site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    if !site_root.join("pkg").is_dir() {
        tracing::warn!(site_root = %site_root.display(), "browser assets not found: pages render, but without styles or interactivity (build with `cargo leptos build`)");
    }
    let router = http::router(platform.clone(), leptos);

    record(&platform, EventKind::ServiceStart, serde_json::json!({ "listen": addr.to_string(), "version": env!("CARGO_PKG_VERSION") })).await;
    tracing::info!(%addr, database = %platform.engine(), "wasm-as-os is listening on http://{addr}");
    // Tests and scripts read the bound address (useful with --listen 127.0.0.1:0) from this line.
    println!("listening on http://{addr}");

    let served = axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await;
    tracing::info!("shutting down");
    record(&platform, EventKind::ServiceStop, serde_json::json!({})).await;
    platform.close().await;
    served.map_err(CommandError::Serve)
}

async fn record(platform: &Platform, kind: EventKind, details: serde_json::Value) {
    let event = AuditEvent::new(kind, Actor::system(), Outcome::Success).with_details(details);
    if let Err(e) = platform.audit().record(event).await {
        tracing::error!(error = %e, event = kind.as_str(), "could not record audit event");
    }
}

fn listen_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "the address is already in use (is another server running? choose another with --listen)".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied (ports below 1024 need privileges)".into(),
        _ => e.to_string(),
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
