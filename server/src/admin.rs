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

/// `admin audit verify --file PATH`: the file and its rotated predecessors, oldest first.
pub fn verify_files(
    data_dir: &std::path::Path,
    path: Option<&std::path::Path>,
) -> Result<(), CommandError> {
    let Some(path) = path else { return Ok(()) };
    let (key, _) = platform::secrets::audit_chain_key(data_dir, false)
        .map_err(platform::audit::AuditError::from)?;
    let key = platform::audit::line::ChainKey::new(key);
    let files = verify::rotated_set(path);
    if files.is_empty() {
        return Err(CommandError::Usage(format!(
            "no audit log at {}",
            path.display()
        )));
    }
    report(
        verify::files(&files, &key)?,
        &format!("in {} file(s)", files.len()),
    )
}

/// `admin audit verify`: the database's chain.
pub async fn verify_database(platform: &Platform) -> Result<(), CommandError> {
    let result = platform.audit().verify_database().await?;
    let note = if result.unchained > 0 {
        format!(
            "in the database ({} older events predate the chain)",
            result.unchained
        )
    } else {
        "in the database".to_string()
    };
    report(result, &note)
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
