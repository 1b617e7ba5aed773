//! What each subcommand does; every command goes through the platform services.

use std::sync::Arc;

use platform::{Platform, StartOptions, clock::SystemClock, config, store};

use crate::cli::{AdminCommand, AuditCommand, Cli, Command, ConfigCommand};

/// A command failure, printed as one line after `error: `.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Start(#[from] platform::StartError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        addr: std::net::SocketAddr,
        reason: String,
    },
    #[error(transparent)]
    Identity(#[from] platform::identity::IdentityError),
    #[error("the server stopped with an error: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Audit(#[from] platform::audit::AuditError),
    #[error(
        "the audit log's hash chain is broken at {broken} ({verified} events verified before it)"
    )]
    AuditBroken {
        broken: platform::audit::verify::Broken,
        verified: u64,
    },
    #[error(transparent)]
    Modules(#[from] platform::modules::ModuleError),
    #[error(transparent)]
    Compliance(#[from] platform::compliance::ComplianceError),
    #[error(transparent)]
    Tls(#[from] crate::serve::tls::TlsError),
    #[error("{0}")]
    Usage(String),
    /// An enabled identity provider cannot be used (e.g. its discovery document is unreachable).
    #[error("{0}")]
    Provider(String),
}

impl CommandError {
    /// The one line printed after `error: `. A service error reads as its row in the one error
    /// table (`platform::problem`), as in the API and the dashboard; an internal cause is logged.
    pub fn line(&self) -> String {
        use platform::problem::Describe;
        let service: &dyn Describe = match self {
            Self::Identity(e) => e,
            Self::Audit(e) => e,
            Self::Modules(e) => e,
            Self::Compliance(e) => e,
            _ => return self.to_string(),
        };
        let problem = service.problem();
        if problem.kind == platform::problem::Kind::Internal {
            tracing::error!(error = %platform::error_chain(service), "the command failed");
        }
        problem.message
    }
}

pub async fn run(cli: Cli) -> Result<(), CommandError> {
    let options = StartOptions {
        config_dir: cli.config_dir.clone(),
        data_dir: cli.data_dir.clone(),
        database_url: cli
            .database_url
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok()),
        clock: Arc::new(SystemClock),
        sessions: Default::default(),
        max_upload: platform::DEFAULT_MAX_UPLOAD,
        run_modules: false,
    };
    match cli.command {
        Command::Serve(args) => crate::serve::run(options, args).await,
        Command::Migrate => migrate(&options).await,
        Command::Config(ConfigCommand::Check) => config_check(&options).await,
        Command::Admin(AdminCommand::Audit(AuditCommand::Verify(args))) if args.file.is_some() => {
            crate::admin::verify_files(options, args.file.as_deref()).await
        }
        Command::Admin(command) => admin(options, command).await,
    }
}

async fn admin(options: StartOptions, command: AdminCommand) -> Result<(), CommandError> {
    let (platform, _) = Platform::start(options).await?;
    let result = match command {
        AdminCommand::CreateUser(args) => crate::admin::create_user(&platform, args).await,
        AdminCommand::UpdateUser(args) => crate::admin::update_user(&platform, args).await,
        AdminCommand::DisableUser(args) => {
            crate::admin::set_disabled(&platform, &args.username, true).await
        }
        AdminCommand::EnableUser(args) => {
            crate::admin::set_disabled(&platform, &args.username, false).await
        }
        AdminCommand::ListUsers(args) => crate::admin::list_users(&platform, args.format).await,
        AdminCommand::Status => status(&platform).await,
        AdminCommand::Audit(AuditCommand::Verify(_)) => {
            crate::admin::verify_database(&platform).await
        }
        AdminCommand::SecurityReport(args) => crate::report::security_report(&platform, args).await,
        AdminCommand::Erasure(command) => crate::admin::erasure(&platform, command).await,
        AdminCommand::Retention(crate::cli::RetentionCommand::Run { dry_run }) => {
            crate::admin::retention(&platform, dry_run).await
        }
    };
    platform.close().await;
    result
}

async fn config_check(options: &StartOptions) -> Result<(), CommandError> {
    let config = config::load(&options.config_dir)?;
    config::sandbox::check_allowed_paths(&config.sandbox, &options.data_dir)?;
    check_providers(&config).await?;
    if config.tls.tls.enabled {
        let tls = crate::serve::tls::Tls::new(&config.tls.tls, chrono::Utc::now())?;
        let info = tls.info();
        println!(
            "TLS: certificate {} valid until {} ({} days), TLS {}+, {} suites",
            info.subject,
            info.not_after.format("%Y-%m-%d"),
            info.days_left(chrono::Utc::now()),
            tls.summary.min_version,
            tls.summary.cipher_suites.len()
        );
    }
    print_edge(&config);
    let mfa = &config.soc2.soc2.security;
    if mfa.multi_factor_auth && !mfa.multi_factor_roles.is_empty() {
        println!(
            "second factor: required of {} (soc2.yml), offered to everyone",
            mfa.multi_factor_roles.join(", ")
        );
    } else {
        println!("second factor: offered, required of nobody");
    }
    println!("configuration in {} is valid", options.config_dir.display());
    Ok(())
}

/// What rate_limit.yml and ids.yml will do, as parsed.
fn print_edge(config: &config::Config) {
    let rl = &config.rate_limit.rate_limiting;
    if rl.enabled {
        let budget = |l: &config::rate_limit::Limit| {
            let per = l.window.map_or("min".to_string(), |w| w.to_string());
            format!("{}/{per} (burst {})", l.requests_per_minute, l.burst)
        };
        println!(
            "rate limits: global {}, per user {}, {} endpoint budget(s)",
            budget(&rl.global),
            budget(&rl.per_user),
            rl.per_endpoint.len()
        );
    } else {
        println!("rate limits: off");
    }
    println!(
        "ip lists: {} whitelisted and {} blacklisted network(s), {} trusted prox(ies)",
        rl.ip_whitelist.len(),
        rl.ip_blacklist.len(),
        rl.trusted_proxies.len()
    );
    let rules = platform::edge::ids::rules(config);
    if rules.is_empty() {
        println!("intrusion detection: off");
    }
    for rule in rules {
        let duration = rule
            .duration
            .map(|d| format!(" for {}", config::units::Span(d)))
            .unwrap_or_default();
        println!(
            "ids rule {}: {}{duration} when {}",
            rule.name,
            platform::edge::action_name(rule.action),
            rule.condition
        );
    }
}

/// Reaches every enabled outside identity provider, as sign-in would.
async fn check_providers(config: &config::Config) -> Result<(), CommandError> {
    use platform::config::security::Provider;
    for (i, provider) in config.security.auth.providers.iter().enumerate() {
        if let Provider::Oauth2 {
            enabled: true,
            config: oauth,
        } = provider
        {
            let at = format!("config/security.yml: auth.providers[{i}].config.google");
            // The flow key is not used by discovery; any secret will do here.
            let secret = secrecy::SecretString::from("config check".to_string());
            let client = platform::identity::oidc::OidcClient::new(&oauth.google, &secret)
                .map_err(|e| CommandError::Provider(format!("{at}: {e}")))?;
            client
                .discover()
                .await
                .map_err(|e| CommandError::Provider(format!("{at}: {e}")))?;
        }
    }
    Ok(())
}

async fn migrate(options: &StartOptions) -> Result<(), CommandError> {
    let config = config::load(&options.config_dir)?;
    platform::prepare_data_dir(&options.data_dir)?;
    let (url, engine) = store::target(&config, &options.data_dir, options.database_url.as_deref())?;
    let db = store::connect(&config, &url, &engine).await?;
    store::migrate(&db).await?;
    println!("database schema is up to date ({engine})");
    Ok(())
}

async fn status(platform: &Platform) -> Result<(), CommandError> {
    let readiness = platform.readiness().await;
    println!("config dir   {}", platform.config().dir.display());
    println!("data dir     {}", platform.data_dir().display());
    println!(
        "database     {} ({})",
        platform.engine(),
        if readiness.database {
            "reachable"
        } else {
            "unreachable"
        }
    );
    println!(
        "schema       {}",
        if readiness.migrations {
            "up to date"
        } else {
            "migrations pending"
        }
    );
    if readiness.migrations {
        let stale = platform.modules().stale_count().await?;
        println!("re-analysis  {stale} module(s) waiting to be analysed under the current rules");
    }
    let tls = &platform.config().tls.tls;
    if !tls.enabled {
        println!("tls          off (plain HTTP; put the server behind TLS before exposing it)");
    } else {
        match crate::serve::tls::Tls::new(tls, chrono::Utc::now()) {
            Ok(t) => {
                let info = t.info();
                let days = info.days_left(chrono::Utc::now());
                println!(
                    "tls          on: TLS {}+, {} suites, client certificates {}",
                    t.summary.min_version,
                    t.summary.cipher_suites.len(),
                    t.summary.client_auth
                );
                println!(
                    "certificate  {} until {} ({days} days{})",
                    info.subject,
                    info.not_after.format("%Y-%m-%d %H:%M UTC"),
                    if days < 30 { ", RENEW SOON" } else { "" }
                );
            }
            Err(e) => println!("tls          on, but the certificate cannot be used: {e}"),
        }
    }
    Ok(())
}
