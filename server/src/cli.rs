//! Command-line interface. Every flag can also be set with a `WASM_AS_OS_*` environment variable.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run untrusted WebAssembly modules safely, with identity, access control, audit and compliance.
#[derive(Debug, Parser)]
#[command(name = "wasm-as-os", version, propagate_version = true)]
pub struct Cli {
    /// Directory holding the YAML configuration (security.yml, rbac.yml, …).
    #[arg(
        long,
        global = true,
        env = "WASM_AS_OS_CONFIG_DIR",
        default_value = "./config"
    )]
    pub config_dir: PathBuf,

    /// Directory for the embedded database, generated secrets and stored modules.
    #[arg(
        long,
        global = true,
        env = "WASM_AS_OS_DATA_DIR",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,

    /// PostgreSQL connection URL; overrides database.yml (DATABASE_URL is read too).
    #[arg(
        long,
        global = true,
        env = "WASM_AS_OS_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, global = true, env = "WASM_AS_OS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web dashboard and the REST API.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Work with the configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Administer users and the platform.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "WASM_AS_OS_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Directory with the built browser assets (pkg/); cargo-leptos sets LEPTOS_SITE_ROOT.
    #[arg(long, env = "WASM_AS_OS_SITE_ROOT")]
    pub site_root: Option<PathBuf>,

    /// Largest module upload accepted (e.g. 100MB); modules over 50MB are quarantined as suspicious.
    #[arg(long, env = "WASM_AS_OS_MAX_UPLOAD", default_value = "100MB")]
    pub max_upload: platform::config::units::ByteSize,

    /// A browser session ends after this long without a request (e.g. 30m, 2h).
    #[arg(long, env = "WASM_AS_OS_SESSION_IDLE", default_value = "30m")]
    pub session_idle: platform::config::units::Span,

    /// A browser session ends this long after sign-in, however active (e.g. 12h).
    #[arg(long, env = "WASM_AS_OS_SESSION_MAX_AGE", default_value = "12h")]
    pub session_max_age: platform::config::units::Span,

    /// The origins browsers use to reach the dashboard (e.g. https://wasm.example.com),
    /// comma-separated. Form posts and other cookie-carrying writes from any other origin are
    /// refused. Default: http://127.0.0.1:PORT, http://localhost:PORT and http://[::1]:PORT of the
    /// listen address (its own address when it listens on one non-loopback address).
    #[arg(long, env = "WASM_AS_OS_PUBLIC_ORIGIN", value_delimiter = ',')]
    pub public_origin: Vec<String>,

    /// A request's line and headers must arrive within this time; an idle kept-alive connection
    /// is closed after it.
    #[arg(long, env = "WASM_AS_OS_HEADER_TIMEOUT", default_value = "30s")]
    pub header_timeout: platform::config::units::Span,

    /// A request body may take this long, plus one second for every --min-body-rate bytes it
    /// delivers; a slower body is cut off with 408.
    #[arg(long, env = "WASM_AS_OS_BODY_TIMEOUT", default_value = "30s")]
    pub body_timeout: platform::config::units::Span,

    /// The rate (bytes per second) that keeps a long request body, such as a large upload, going
    /// past --body-timeout.
    #[arg(long, env = "WASM_AS_OS_MIN_BODY_RATE", default_value = "16KB")]
    pub min_body_rate: platform::config::units::ByteSize,

    /// Addresses or networks that may read /metrics without a token, comma-separated; `none`
    /// requires a bearer token with metrics:read from everyone (use it behind a local proxy).
    #[arg(
        long,
        env = "WASM_AS_OS_METRICS_ALLOW",
        value_delimiter = ',',
        default_value = "127.0.0.0/8,::1/128"
    )]
    pub metrics_allow: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check every configuration file and print each problem found.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a local user account.
    CreateUser(CreateUserArgs),
    /// Change a user's roles, email or password.
    UpdateUser(UpdateUserArgs),
    /// Disable a user: their sessions end and their tokens stop working at once.
    DisableUser(UsernameArg),
    /// Enable a disabled user again.
    EnableUser(UsernameArg),
    /// List every user.
    ListUsers(ListUsersArgs),
    /// Show the state of the installation: configuration, database and schema.
    Status,
    /// Work with the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Summarise the audit log over a date range: events by kind and outcome, failed sign-ins,
    /// denials, module executions and sandbox violations.
    SecurityReport(SecurityReportArgs),
    /// Erasure requests (privacy.yml right_to_be_forgotten).
    #[command(subcommand)]
    Erasure(ErasureCommand),
    /// Data retention (privacy.yml data_retention).
    #[command(subcommand)]
    Retention(RetentionCommand),
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Remove what is past its retention period now (the server does it once a day).
    Run {
        /// Only print what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ErasureCommand {
    /// List erasure requests (the open ones unless --all).
    List {
        #[arg(long)]
        all: bool,
    },
    /// Approve a request: it runs at the server's next pass (or with `admin erasure run`).
    Approve { id: String },
    /// Reject a request, saying why (the person sees the reason).
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Erase a user's account and personal data now.
    User { username: String },
    /// Run the due erasures to the end here (the server also runs them every few seconds).
    Run,
}

#[derive(Debug, Args)]
pub struct SecurityReportArgs {
    /// First day included (YYYY-MM-DD, UTC).
    #[arg(long)]
    pub start_date: String,
    /// Last day included (YYYY-MM-DD, UTC).
    #[arg(long)]
    pub end_date: String,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Write the report here instead of to standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Csv,
    Pdf,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain and report the first broken link (exit status 1).
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Verify this audit log file, with its rotated (and compressed) predecessors, instead of the
    /// database.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CreateUserArgs {
    /// Login name: 3–64 lowercase letters, digits, '.', '_' or '-'.
    #[arg(long, env = "WASM_AS_OS_USERNAME")]
    pub username: String,
    /// Password, checked against security.yml's password policy (prefer the environment variable).
    #[arg(long, env = "WASM_AS_OS_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Email address.
    #[arg(long, env = "WASM_AS_OS_EMAIL")]
    pub email: String,
    /// Roles, comma-separated (admin, developer, operator, viewer or a custom role).
    #[arg(long, env = "WASM_AS_OS_ROLES", value_delimiter = ',', required = true)]
    pub roles: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateUserArgs {
    /// The user to change.
    #[arg(long, env = "WASM_AS_OS_USERNAME")]
    pub username: String,
    /// Roles to add, comma-separated.
    #[arg(long, env = "WASM_AS_OS_ADD_ROLES", value_delimiter = ',')]
    pub add_roles: Vec<String>,
    /// Roles to remove, comma-separated.
    #[arg(long, env = "WASM_AS_OS_REMOVE_ROLES", value_delimiter = ',')]
    pub remove_roles: Vec<String>,
    /// New email address.
    #[arg(long, env = "WASM_AS_OS_EMAIL")]
    pub email: Option<String>,
    /// New password (prefer the environment variable).
    #[arg(long, env = "WASM_AS_OS_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

#[derive(Debug, Args)]
pub struct UsernameArg {
    /// The user.
    #[arg(long, env = "WASM_AS_OS_USERNAME")]
    pub username: String,
}

#[derive(Debug, Args)]
pub struct ListUsersArgs {
    /// Output format.
    #[arg(long, env = "WASM_AS_OS_FORMAT", value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
    Csv,
}
