//! `serve`: start the platform, mount the dashboard, the API and health checks, and run until a
//! shutdown signal.

mod connections;
mod redirect;
pub mod tls;

use std::{path::PathBuf, sync::Arc};

use leptos::config::LeptosOptions;
use platform::{
    Notice, Platform, StartOptions,
    audit::{Actor, AuditEvent, EventKind, Outcome},
    identity::sessions::SessionTimeouts,
    modules::Reanalysis,
};

use crate::{cli::ServeArgs, commands::CommandError, http};

pub async fn run(mut options: StartOptions, args: ServeArgs) -> Result<(), CommandError> {
    options.max_upload = args.max_upload.bytes();
    options.run_modules = true;
    options.sessions = SessionTimeouts {
        idle: args.session_idle.duration(),
        absolute: args.session_max_age.duration(),
    };
    let metrics_allow =
        http::metrics::MetricsAllow::parse(&args.metrics_allow).map_err(CommandError::Usage)?;
    let configured_origins =
        http::csrf::PublicOrigins::parse(&args.public_origin).map_err(CommandError::Usage)?;
    let (platform, notices) = Platform::start(options).await?;
    // HTTPS: every file is checked before anything listens (one clear error naming the file).
    let tls = match &platform.config().tls.tls {
        t if t.enabled => {
            let tls = Arc::new(tls::Tls::new(t, chrono::Utc::now())?);
            warn_expiry(&tls.info());
            Some(tls)
        }
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    crate::logging::set_redactor(platform.audit().redactor().clone());
    for notice in notices {
        match notice {
            Notice::GeneratedStorageKey { path } => tracing::warn!(
                path = %path.display(),
                "generated a module-storage key into the data dir; back it up with the data dir, or set WASM_AS_OS_STORAGE_KEY (64 hex characters) — without it stored modules cannot be read"
            ),
            Notice::GeneratedJwtSecret { path } => tracing::warn!(
                path = %path.display(),
                "no JWT secret is configured: generated a random one into the data dir; set auth.jwt.secret (e.g. \"${{JWT_SECRET}}\") in security.yml for production"
            ),
        }
    }
    spawn_reanalysis(platform.clone());
    if let Some(google) = platform.identity().google().cloned() {
        // Named at start when it fails; sign-in tries again, and other methods keep working.
        tokio::spawn(async move {
            match google.discover().await {
                Ok(()) => tracing::info!(provider = "google", "OpenID provider reachable"),
                Err(e) => tracing::error!(
                    provider = "google",
                    error = %e,
                    "auth.providers (oauth2): Sign in with Google is unavailable until the provider can be reached; other sign-in methods keep working"
                ),
            }
        });
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CommandError::Listen {
            addr: args.listen,
            reason: listen_reason(&e),
        })?;
    let addr = listener.local_addr().map_err(CommandError::Serve)?;
    // tls.yml `http_redirect`: bound now, so both listeners are up when the address is printed.
    let plain_listener = match (&tls, platform.config().tls.tls.http_redirect) {
        (Some(_), Some(plain)) => Some((
            plain,
            tokio::net::TcpListener::bind(plain)
                .await
                .map_err(|e| CommandError::Listen {
                    addr: plain,
                    reason: listen_reason(&e),
                })?,
        )),
        _ => None,
    };

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
    let origins = if configured_origins.is_empty() {
        if addr.ip().is_unspecified() || platform.config().tls.tls.enabled {
            tracing::warn!(
                "--public-origin is not set: browser forms are accepted only from {}; set it to the address browsers use (e.g. https://wasm.example.com)",
                http::csrf::PublicOrigins::derived(addr, scheme)
                    .list()
                    .join(", ")
            );
        }
        http::csrf::PublicOrigins::derived(addr, scheme)
    } else {
        configured_origins
    };
    let options = http::Options {
        metrics_allow,
        origins: origins.clone(),
        body_pace: http::slow_body::BodyPace {
            grace: args.body_timeout.duration(),
            min_rate: args.min_body_rate.bytes(),
        },
        headers: http::headers::HeaderPolicy::with_hsts(
            tls.as_ref()
                .and_then(|_| platform.config().tls.tls.hsts_seconds()),
        ),
        tls: tls.clone(),
    };
    let router = http::router(platform.clone(), leptos, options);

    record(
        &platform,
        EventKind::ServiceStart,
        serde_json::json!({ "listen": addr.to_string(), "version": env!("CARGO_PKG_VERSION") }),
    )
    .await;
    match platform.audit().note_config(platform.data_dir()).await {
        Ok(true) => {
            tracing::info!("the configuration changed since the last start: recorded config_change")
        }
        Ok(false) => {}
        Err(e) => tracing::error!(error = %e, "could not record config_change"),
    }
    let shutdown = shutdown_signal();
    tracing::info!(%addr, database = %platform.engine(), "wasm-as-os is listening on {scheme}://{addr}");
    // Tests and scripts read the bound address (useful with --listen 127.0.0.1:0) from this line.
    println!("listening on {scheme}://{addr}");
    offer_setup_link(&platform, &origins).await;
    let sweeper = tokio::spawn(sweep_sessions(platform.clone()));
    // ids.yml alerts go out from here, never from the request that triggered them.
    let alerter = tokio::spawn(platform.edge().alerts().clone().run());
    let eraser = tokio::spawn(run_erasures(platform.clone()));
    let retention = tokio::spawn(run_retention(platform.clone()));
    let anonymiser = tokio::spawn(run_anonymisation(platform.clone()));
    let settings = tokio::spawn(refresh_settings(platform.clone()));

    let connections = connections::ConnectionOptions {
        header_timeout: args.header_timeout.duration(),
        tls: tls.clone(),
    };
    let redirector = match plain_listener {
        Some((plain, listener)) => {
            tracing::info!(%plain, "redirecting plain HTTP to HTTPS");
            let options = connections::ConnectionOptions {
                header_timeout: args.header_timeout.duration(),
                tls: None,
            };
            let router = redirect::router(origins.clone(), addr.port());
            Some(tokio::spawn(connections::serve(
                listener,
                router,
                options,
                std::future::pending::<()>(),
            )))
        }
        _ => None,
    };
    let reloader = tls
        .clone()
        .map(|tls| tokio::spawn(reload_certificates(tls)));
    connections::serve(listener, router, connections, shutdown).await;
    tracing::info!("shutting down");
    for task in [redirector, reloader].into_iter().flatten() {
        task.abort();
    }
    sweeper.abort();
    alerter.abort();
    eraser.abort();
    retention.abort();
    anonymiser.abort();
    settings.abort();
    record(&platform, EventKind::ServiceStop, serde_json::json!({})).await;
    // Delivers every buffered audit event (service_stop included) before the pool closes.
    platform.close().await;
    Ok(())
}

/// Warns when the certificate expires within 30 days.
fn warn_expiry(info: &tls::CertInfo) {
    let days = info.days_left(chrono::Utc::now());
    if days < 30 {
        tracing::warn!(subject = %info.subject, not_after = %info.not_after, days_left = days, "the TLS certificate expires soon; renew it and send SIGHUP");
    } else {
        tracing::info!(subject = %info.subject, not_after = %info.not_after, days_left = days, "TLS certificate loaded");
    }
}

/// Reloads the TLS certificate on SIGHUP, and when its files change (checked every 30 s). A
/// certificate that cannot be used is refused with the reason and the current one stays.
async fn reload_certificates(tls: Arc<tls::Tls>) {
    #[cfg(unix)]
    let mut hangup =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| tracing::error!(error = %e, "cannot listen for SIGHUP; certificates reload when their files change"))
            .ok();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stamp = tls.stamp();
    loop {
        #[cfg(unix)]
        let why = tokio::select! {
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
            _ = tick.tick() => {
                let now = tls.stamp();
                if now == stamp { continue; }
                stamp = now;
                "the files changed"
            }
        };
        #[cfg(not(unix))]
        let why = {
            tick.tick().await;
            let now = tls.stamp();
            if now == stamp {
                continue;
            }
            stamp = now;
            "the files changed"
        };
        match tls.reload(chrono::Utc::now()) {
            Ok(info) => {
                stamp = tls.stamp();
                tracing::info!(reason = why, subject = %info.subject, not_after = %info.not_after, "reloaded the TLS certificate; new connections use it");
                warn_expiry(&info);
            }
            Err(e) => {
                tracing::error!(reason = why, error = %e, "keeping the current TLS certificate: the new one cannot be used")
            }
        }
    }
}

/// With no account yet, prints a one-time link for creating the first administrator. It goes to
/// the console only (stdout), never to the log.
async fn offer_setup_link(platform: &Platform, origins: &http::csrf::PublicOrigins) {
    use secrecy::ExposeSecret;
    match platform.identity().issue_setup_token().await {
        Ok(Some(setup)) => {
            let origin = origins.first().unwrap_or("http://localhost:3000");
            let text = format!(
                "\nNo account exists yet. Open this one-time link to create the first administrator\n(valid until {}):\n  {origin}/setup?token={}\nOr run: wasm-as-os admin create-user --username admin --password … --email … --roles admin\n\n",
                setup.expires_at.format("%Y-%m-%d %H:%M UTC"),
                setup.token.expose_secret()
            );
            // Written directly (not println!), so a closed stdout cannot bring the server down.
            let mut out = std::io::stdout();
            let _ = std::io::Write::write_all(&mut out, text.as_bytes())
                .and_then(|()| std::io::Write::flush(&mut out));
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %platform::error_chain(&e), "could not issue a set-up link")
        }
    }
}

/// Deletes expired browser sessions every ten minutes; keeps the block and throttle gauges
/// current every minute (blocks end by themselves).
async fn sweep_sessions(platform: Platform) {
    let store = platform.session_store();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    let mut minutes = 0u32;
    loop {
        tick.tick().await;
        platform.edge().refresh_gauges().await;
        if minutes.is_multiple_of(10)
            && let Err(e) = store.delete_expired(platform.clock().now()).await
        {
            tracing::warn!(error = %e, "could not delete expired sessions");
        }
        minutes = minutes.wrapping_add(1);
    }
}

/// Runs due erasures (privacy.yml `right_to_be_forgotten`): right after start, which resumes one
/// an earlier process left half-done, then every five seconds, step after step while there is work.
async fn run_erasures(platform: Platform) {
    use platform::compliance::erasure::RunOutcome;
    // Lease holder name of this process: it takes its own unfinished work back at once.
    let owner = format!("serve-{}", uuid::Uuid::new_v4().simple());
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        loop {
            match platform.compliance().run_erasures(&owner).await {
                Ok(RunOutcome::Progressed { .. }) => continue,
                Ok(RunOutcome::Done { id }) => {
                    tracing::info!(erasure = %id, "an erasure finished");
                    continue;
                }
                Ok(RunOutcome::Idle | RunOutcome::Waiting { .. } | RunOutcome::Failed { .. }) => {
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %platform::error_chain(&e), "could not run erasures");
                    break;
                }
            }
        }
    }
}

/// Applies privacy.yml `data_retention` a minute after start and then once a day; replicas may
/// all do it (the job is idempotent).
async fn run_retention(platform: Platform) {
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(86_400));
    loop {
        tick.tick().await;
        match platform.compliance().run_retention(false).await {
            Ok(report) => tracing::info!(
                accounts = report.accounts.len(),
                modules = report.modules.len(),
                audit_events = report.audit_events,
                "retention applied"
            ),
            Err(e) => {
                tracing::warn!(error = %platform::error_chain(&e), "could not apply retention")
            }
        }
    }
}

/// Drops full client addresses and user agents past the IDS window (privacy.yml
/// `data_anonymization`) two minutes after start and then every hour; idempotent like retention.
async fn run_anonymisation(platform: Platform) {
    tokio::time::sleep(std::time::Duration::from_secs(120)).await;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3_600));
    loop {
        tick.tick().await;
        match platform.compliance().anonymise().await {
            Ok(done) => tracing::info!(
                addresses = done.addresses,
                user_agents = done.user_agents,
                file_lines = done.lines,
                "anonymisation applied"
            ),
            Err(e) => {
                tracing::warn!(error = %platform::error_chain(&e), "could not anonymise the audit trail")
            }
        }
    }
}

/// Reads privacy.yml, soc2.yml and the dashboard's saved settings again every five seconds, so a
/// file edited on disk or a save through another replica applies here without a restart.
async fn refresh_settings(platform: Platform) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = platform.compliance().refresh_settings().await {
            tracing::warn!(error = %platform::error_chain(&e), "could not read the settings again");
        }
    }
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

/// Registers for SIGINT and SIGTERM at once (before the address is announced, so a signal sent
/// right after cannot kill the process without its shutdown), then waits for either.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let streams = {
        use tokio::signal::unix::{SignalKind, signal};
        [SignalKind::interrupt(), SignalKind::terminate()].map(|kind| {
            signal(kind)
                .map_err(|e| tracing::error!(error = %e, "cannot listen for a shutdown signal"))
                .ok()
        })
    };
    async move {
        #[cfg(unix)]
        {
            let [interrupt, terminate] = streams;
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => {},
                () = wait(terminate) => {},
            }
        }
        #[cfg(not(unix))]
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    }
}

/// Analyses stored modules again behind the listener when the analysis rules changed, one module
/// a step, with progress in the log (and the pending count in `admin status`). A run of a module
/// not yet reached re-analyses that module first, so nothing runs under outdated rules.
fn spawn_reanalysis(platform: Platform) {
    tokio::spawn(async move {
        let modules = platform.modules();
        let pending = match modules.stale_count().await {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %platform::error_chain(&e), "cannot count modules to analyse again");
                return;
            }
        };
        tracing::info!(
            pending,
            "the analysis rules changed: analysing stored modules again in the background"
        );
        let mut done: u64 = 0;
        loop {
            match modules.reanalyse_next().await {
                Ok(Reanalysis::Reanalysed { .. }) => {
                    done += 1;
                    if done.is_multiple_of(100) {
                        tracing::info!(done, pending, "re-analysis in progress");
                    }
                }
                Ok(Reanalysis::Idle) => {
                    tracing::info!(modules = done, "re-analysis finished");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %platform::error_chain(&e), done, "re-analysis stopped; modules left are analysed again when they run or at the next start");
                    return;
                }
            }
        }
    });
}
