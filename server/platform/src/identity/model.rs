//! What the identity services take and return (never a password hash), and the username and email
//! rules.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::Serialize;

use super::entities::user;

/// A user as the services return it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    pub roles: Vec<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A role and the permissions it grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Role {
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub permissions: Vec<String>,
}

/// A new local account.
#[derive(Debug)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password: SecretString,
    pub roles: Vec<String>,
}

/// Changes to an account; `None` and empty lists leave things as they are.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub email: Option<String>,
    pub password: Option<SecretString>,
    pub add_roles: Vec<String>,
    pub remove_roles: Vec<String>,
}

/// Usernames: 3–64 of lowercase letters, digits, `.`, `_`, `-`, starting with a letter or digit.
pub fn check_username(name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    let ok_start = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    if (3..=64).contains(&name.len()) && ok_chars && ok_start {
        Ok(())
    } else {
        Err("must be 3–64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit".into())
    }
}

/// A plausible email address: one `@`, a non-empty local part and a dotted domain, no spaces.
pub fn check_email(email: &str) -> Result<(), String> {
    // What the OpenAPI document states as `^[!-?A-~]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$`.
    let label =
        |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let valid = email.len() <= 255
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && local.bytes().all(|b| b.is_ascii_graphic() && b != b'@')
                && domain.split('.').count() >= 2
                && domain.split('.').all(label)
        });
    if valid {
        Ok(())
    } else {
        Err(format!("\"{email}\" is not a valid email address"))
    }
}

pub(super) fn to_user(r: user::Model, roles: Vec<String>) -> User {
    User {
        id: r.id.to_string(),
        username: r.username,
        email: r.email,
        roles,
        disabled: r.disabled,
        created_at: r.created_at,
        last_login_at: r.last_login_at,
    }
}

#[cfg(test)]
mod tests {
    use super::check_email;

    #[test]
    fn emails_follow_the_documented_pattern() {
        for good in [
            "admin@company.com",
            "a.b+tag@mail.example.org",
            "x@a-b.c",
            "o'neil@x.io",
        ] {
            assert!(check_email(good).is_ok(), "{good} should pass");
        }
        for bad in [
            "not-an-email",
            "@company.com",
            "a@company",
            "a@b..c",
            "a b@c.d",
            "a@b@c.d",
            "wg@ly.7p0hxj{m0sl,;u",
            "a@b;c.d",
            "é@b.cd",
        ] {
            assert!(check_email(bad).is_err(), "{bad} should fail");
        }
        assert!(check_email(&format!("a@{}.com", "b".repeat(260))).is_err());
    }
}
