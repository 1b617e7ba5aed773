//! `admin` user-management commands, run as the system principal through the identity service.

use platform::audit::verify::{self, Verification};
use platform::{
    Platform,
    access::Principal,
    identity::{NewUser, User, UserChanges},
};
use secrecy::SecretString;

use crate::{
    cli::{CreateUserArgs, ListFormat, UpdateUserArgs},
    commands::CommandError,
};

pub async fn create_user(platform: &Platform, args: CreateUserArgs) -> Result<(), CommandError> {
    let CreateUserArgs {
        username,
        password,
        email,
        roles,
    } = args;
    let new = NewUser {
        username,
        email,
        password: SecretString::from(password),
        roles,
    };
    let user = platform
        .identity()
        .create_user(&Principal::System, new)
        .await?;
    println!(
        "created user {} <{}> with roles: {}",
        user.username,
        user.email,
        user.roles.join(", ")
    );
    Ok(())
}

pub async fn update_user(platform: &Platform, args: UpdateUserArgs) -> Result<(), CommandError> {
    let changes = UserChanges {
        email: args.email,
        password: args.password.map(SecretString::from),
        add_roles: args.add_roles,
        remove_roles: args.remove_roles,
    };
    let user = platform
        .identity()
        .update_user(&Principal::System, &args.username, changes)
        .await?;
    println!(
        "updated user {}: roles {}",
        user.username,
        user.roles.join(", ")
    );
    Ok(())
}

pub async fn set_disabled(
    platform: &Platform,
    username: &str,
    disabled: bool,
) -> Result<(), CommandError> {
    let user = platform
        .identity()
        .set_disabled(&Principal::System, username, disabled)
        .await?;
    let word = if disabled { "disabled" } else { "enabled" };
    println!("{word} user {}", user.username);
    Ok(())
}

pub async fn list_users(platform: &Platform, format: ListFormat) -> Result<(), CommandError> {
    let users = platform.identity().list_users(&Principal::System).await?;
    print!("{}", render(&users, format));
    Ok(())
}

fn status(u: &User) -> &'static str {
    if u.disabled { "disabled" } else { "active" }
}

pub fn render(users: &[User], format: ListFormat) -> String {
    match format {
        ListFormat::Json => serde_json::to_string_pretty(users)
            .map(|s| s + "\n")
            .unwrap_or_default(),
        ListFormat::Csv => {
            let mut out = String::from("username,email,roles,status,created_at\n");
            for u in users {
                let fields = [
                    u.username.clone(),
                    u.email.clone(),
                    u.roles.join(" "),
                    status(u).to_string(),
                    u.created_at.to_rfc3339(),
                ];
                out.push_str(
                    &fields
                        .iter()
                        .map(|f| platform::csv::field(f))
                        .collect::<Vec<_>>()
                        .join(","),
                );
                out.push('\n');
            }
            out
        }
        ListFormat::Table => {
            let header = ["USERNAME", "EMAIL", "ROLES", "STATUS", "CREATED"];
            let rows: Vec<[String; 5]> = users
                .iter()
                .map(|u| {
                    [
                        u.username.clone(),
                        u.email.clone(),
                        u.roles.join(","),
                        status(u).to_string(),
                        u.created_at.format("%Y-%m-%d %H:%M").to_string(),
                    ]
                })
                .collect();
            let mut widths = header.map(str::len);
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let line = |cells: [&str; 5]| {
                let padded: Vec<String> = cells
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                padded.join("  ").trim_end().to_string() + "\n"
            };
            let mut out = line(header);
            for row in &rows {
                out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
            }
            if rows.is_empty() {
                out.push_str("(no users yet: create one with `wasm-as-os admin create-user`)\n");
            }
            out
        }
    }
}

/// `admin audit verify --file PATH`: the file and its rotated predecessors, oldest first. The
/// chain needs only the chain key; the personal values of its lines (chain v2) are checked against
/// the audit subjects' keys when the database can be opened, and reported as unchecked otherwise.
pub async fn verify_files(
    options: platform::StartOptions,
    path: Option<&std::path::Path>,
) -> Result<(), CommandError> {
    let Some(path) = path else { return Ok(()) };
    let (key, _) = platform::secrets::audit_chain_key(&options.data_dir, false)
        .map_err(platform::audit::AuditError::from)?;
    let key = platform::audit::line::ChainKey::new(key);
    let files = verify::rotated_set(path);
    if files.is_empty() {
        return Err(CommandError::Usage(format!(
            "no audit log at {}",
            path.display()
        )));
    }
    let subjects = match Platform::start(options).await {
        Ok((platform, _)) => {
            let subjects = platform.audit().subjects().all().await;
            platform.close().await;
            subjects.ok()
        }
        Err(e) => {
            tracing::warn!(error = %platform::error_chain(&e), "the database cannot be opened: checking the chain only");
            None
        }
    };
    let result = verify::files_with_subjects(&files, &key, subjects.as_ref())?;
    let place = with_notes(
        &format!("in {} file(s)", files.len()),
        &[
            (result.erased, "personal values erased"),
            (result.reduced, "addresses or user agents reduced"),
            (
                result.unchecked,
                "personal values not checked: their subject keys are not in this database",
            ),
        ],
    );
    report(result, &place)
}

/// `admin audit verify`: the database's chain.
pub async fn verify_database(platform: &Platform) -> Result<(), CommandError> {
    let result = platform.audit().verify_database().await?;
    let place = with_notes(
        "in the database",
        &[
            (result.erased, "personal values erased"),
            (result.reduced, "addresses or user agents reduced"),
            (result.unchained, "older events predate the chain"),
        ],
    );
    report(result, &place)
}

/// `place`, then the non-zero counts in brackets: `in the database (3 personal values erased)`.
fn with_notes(place: &str, counts: &[(u64, &str)]) -> String {
    let notes: Vec<String> = counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, text)| format!("{n} {text}"))
        .collect();
    if notes.is_empty() {
        place.to_string()
    } else {
        format!("{place} ({})", notes.join("; "))
    }
}

fn report(result: Verification, place: &str) -> Result<(), CommandError> {
    match result.broken {
        None => {
            println!("{} events verified {place}", result.verified);
            Ok(())
        }
        Some(broken) => Err(CommandError::AuditBroken {
            broken,
            verified: result.verified,
        }),
    }
}

/// `admin erasure …`: erasure requests, as the system principal.
pub async fn erasure(
    platform: &Platform,
    command: crate::cli::ErasureCommand,
) -> Result<(), CommandError> {
    use crate::cli::ErasureCommand;
    use platform::{access::Principal, compliance::erasure::RunOutcome};
    let compliance = platform.compliance();
    let system = Principal::System;
    let show = |e: &platform::compliance::erasure::Erasure| {
        let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_else(|| "-".into())
        };
        format!(
            "{}  {:<9}  {:<11}  {:<9}  {:<20}  run at {}\n",
            e.id,
            e.status,
            e.step,
            e.origin,
            e.username.as_deref().unwrap_or("(erased)"),
            when(e.run_at)
        )
    };
    match command {
        ErasureCommand::List { all } => {
            let list = compliance.list_erasures(&system, !all).await?;
            if list.is_empty() {
                println!("no erasure requests");
            }
            for e in &list {
                print!("{}", show(e));
            }
        }
        ErasureCommand::Approve { id } => {
            print!("{}", show(&compliance.approve_erasure(&system, &id).await?));
        }
        ErasureCommand::Reject { id, reason } => {
            print!(
                "{}",
                show(&compliance.reject_erasure(&system, &id, &reason).await?)
            );
        }
        ErasureCommand::User { username } => {
            let wanted = username.trim().to_lowercase();
            let user = platform
                .identity()
                .list_users(&system)
                .await?
                .into_iter()
                .find(|u| u.username == wanted)
                .ok_or_else(|| CommandError::Usage(format!("no user named {username}")))?;
            print!(
                "{}",
                show(&compliance.request_erasure_for(&system, &user.id).await?)
            );
        }
        ErasureCommand::Run => {
            let owner = format!("cli-{}", uuid::Uuid::new_v4().simple());
            let mut finished = 0;
            loop {
                match compliance.run_erasures(&owner).await? {
                    RunOutcome::Progressed { .. } => {}
                    RunOutcome::Done { id } => {
                        println!("erased: request {id}");
                        finished += 1;
                    }
                    RunOutcome::Waiting { until } => {
                        let wait = (until - platform.clock().now())
                            .to_std()
                            .unwrap_or_default()
                            .min(std::time::Duration::from_secs(30));
                        tokio::time::sleep(wait).await;
                    }
                    RunOutcome::Failed { id, error } => {
                        return Err(CommandError::Usage(format!(
                            "erasure {id} failed: {error} (it is retried)"
                        )));
                    }
                    RunOutcome::Idle => break,
                }
            }
            println!("{finished} erasure(s) finished; nothing else is due");
        }
    }
    Ok(())
}

/// `admin retention run [--dry-run]`: applies privacy.yml `data_retention` and prints what it
/// removed (or would remove).
pub async fn retention(platform: &Platform, dry_run: bool) -> Result<(), CommandError> {
    let report = platform.compliance().run_retention(dry_run).await?;
    let periods = &platform.config().privacy.privacy.data_retention;
    let verb = if dry_run { "would remove" } else { "removed" };
    let list = |names: &[String]| {
        if names.is_empty() {
            String::new()
        } else {
            format!(": {}", names.join(", "))
        }
    };
    let span = |s: platform::config::units::Span| humantime_days(s.duration());
    println!(
        "retention {verb} (as of {}):",
        report.ran_at.format("%Y-%m-%d %H:%M UTC")
    );
    println!(
        "  user_data ({} after the last sign-in): {} account(s), erased{}",
        span(periods.user_data),
        report.accounts.len(),
        list(&report.accounts)
    );
    println!(
        "  module_data ({} after the last run): {} module(s){}",
        span(periods.module_data),
        report.modules.len(),
        list(&report.modules)
    );
    println!(
        "  audit_logs ({}): {} event(s), behind a signed checkpoint",
        span(periods.audit_logs),
        report.audit_events
    );
    println!(
        "  metrics_data ({}): nothing stored here (Prometheus keeps the history it scrapes)",
        span(periods.metrics_data)
    );
    Ok(())
}

/// A period in days, as the report prints it.
fn humantime_days(d: std::time::Duration) -> String {
    format!("{} days", d.as_secs() / 86_400)
}
