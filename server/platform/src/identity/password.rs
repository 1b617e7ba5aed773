//! Password policy (security.yml's `local` provider) and argon2id hashing off the async threads.

use std::sync::Arc;

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::SaltString,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::config::security::PasswordPolicy;

/// Longest password accepted: long passphrases are welcome, unbounded input is not.
pub const MAX_LENGTH: usize = 1024;

/// Every rule `password` breaks, one message each; empty when it is acceptable.
pub fn check(policy: &PasswordPolicy, password: &str, username: &str, email: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let chars = password.chars().count();
    if chars < policy.min_length as usize {
        problems.push(format!(
            "must be at least {} characters long",
            policy.min_length
        ));
    }
    if chars > MAX_LENGTH {
        problems.push(format!("must be at most {MAX_LENGTH} characters long"));
    }
    if policy.require_uppercase && !password.chars().any(char::is_uppercase) {
        problems.push("must contain an uppercase letter".to_string());
    }
    if policy.require_lowercase && !password.chars().any(char::is_lowercase) {
        problems.push("must contain a lowercase letter".to_string());
    }
    if policy.require_numbers && !password.chars().any(|c| c.is_ascii_digit()) {
        problems.push("must contain a number".to_string());
    }
    if policy.require_symbols
        && !password
            .chars()
            .any(|c| !c.is_alphanumeric() && !c.is_whitespace())
    {
        problems.push("must contain a symbol".to_string());
    }
    let lowered = password.to_lowercase();
    if !username.is_empty() && lowered == username.to_lowercase() {
        problems.push("must not be the username".to_string());
    }
    if !email.is_empty() && lowered == email.to_lowercase() {
        problems.push("must not be the email address".to_string());
    }
    if is_common(&lowered) {
        problems.push("is one of the 10,000 most common passwords; choose another".to_string());
    }
    problems
}

/// The shipped list of common passwords (zxcvbn's frequency list), one per line.
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// Whether `lowered` (already lowercase) is on the common-password list.
fn is_common(lowered: &str) -> bool {
    static LIST: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
    .contains(lowered)
}

/// Errors of hashing and verification.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// argon2 rejected its input or parameters.
    #[error("password hashing failed: {0}")]
    Argon2(String),
    /// The blocking hashing task did not complete.
    #[error("password hashing task failed")]
    Task,
}

/// argon2id with OWASP's minimum (m=19456 KiB, t=2, p=1); at most `permits` hashes run at once so a
/// burst of logins cannot exhaust memory.
#[derive(Debug, Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
}

impl Hasher {
    pub fn new(permits: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
        }
    }

    fn argon2() -> Result<Argon2<'static>, HashError> {
        let params =
            Params::new(19_456, 2, 1, None).map_err(|e| HashError::Argon2(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, HashError> {
        let _permit = self.permits.acquire().await.map_err(|_| HashError::Task)?;
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            let salt_bytes: [u8; 16] = rand::random();
            let salt = SaltString::encode_b64(&salt_bytes)
                .map_err(|e| HashError::Argon2(e.to_string()))?;
            Self::argon2()?
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| HashError::Argon2(e.to_string()))
        })
        .await
        .map_err(|_| HashError::Task)?
    }

    /// Checks `password` against `hash`; with no hash (unknown user) a dummy hash is verified so the
    /// answer takes as long either way.
    pub async fn verify(
        &self,
        password: &SecretString,
        hash: Option<String>,
    ) -> Result<bool, HashError> {
        let _permit = self.permits.acquire().await.map_err(|_| HashError::Task)?;
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            let known = hash.is_some();
            let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_string());
            let parsed = PasswordHash::new(&hash).map_err(|e| HashError::Argon2(e.to_string()))?;
            let ok = Self::argon2()?
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
            Ok(known && ok)
        })
        .await
        .map_err(|_| HashError::Task)?
    }
}

/// An argon2id hash of a random string, with the same parameters, for unknown-user verification.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0YkQfOMnnxWm3WmK4Ljn6bEQKzgeAVYkBhpxb8xG3b0";

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_policy() -> PasswordPolicy {
        PasswordPolicy {
            min_length: 8,
            require_uppercase: true,
            require_lowercase: true,
            require_numbers: true,
            require_symbols: true,
        }
    }

    #[test]
    fn the_specs_example_passwords_pass_the_specs_policy() {
        assert!(
            check(
                &spec_policy(),
                "SecurePassword123!",
                "admin",
                "admin@company.com"
            )
            .is_empty()
        );
        assert!(
            check(
                &spec_policy(),
                "DevPassword123!",
                "developer1",
                "dev1@company.com"
            )
            .is_empty()
        );
    }

    #[test]
    fn each_broken_rule_gets_its_own_message() {
        let problems = check(&spec_policy(), "abc", "u", "u@x.io");
        assert_eq!(
            problems,
            [
                "must be at least 8 characters long",
                "must contain an uppercase letter",
                "must contain a number",
                "must contain a symbol",
            ]
        );
    }

    #[test]
    fn a_password_without_a_digit_is_rejected() {
        assert_eq!(
            check(&spec_policy(), "NoDigitsHere!", "u", "u@x.io"),
            ["must contain a number"]
        );
    }

    #[test]
    fn a_password_equal_to_the_username_or_email_is_rejected() {
        let policy = PasswordPolicy {
            min_length: 8,
            require_uppercase: false,
            require_lowercase: false,
            require_numbers: false,
            require_symbols: false,
        };
        assert_eq!(
            check(&policy, "Alice-2026", "alice-2026", "a@x.io"),
            ["must not be the username"]
        );
        assert_eq!(
            check(&policy, "a@example.com", "al", "A@example.com"),
            ["must not be the email address"]
        );
    }

    #[test]
    fn a_common_password_is_rejected_whatever_its_case() {
        let policy = PasswordPolicy {
            min_length: 8,
            require_uppercase: false,
            require_lowercase: false,
            require_numbers: false,
            require_symbols: false,
        };
        let message = "is one of the 10,000 most common passwords; choose another";
        assert_eq!(check(&policy, "baseball", "u", "u@x.io"), [message]);
        assert_eq!(check(&policy, "TrustNo1", "u", "u@x.io"), [message]);
        assert!(check(&policy, "violet-anchor-harbour", "u", "u@x.io").is_empty());
    }

    #[test]
    fn the_common_password_list_holds_ten_thousand_entries() {
        let entries = COMMON_PASSWORDS
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(entries, 10_000);
    }

    #[test]
    fn long_passphrases_are_accepted() {
        let long = format!("{}aA1!", "x".repeat(200));
        assert!(check(&spec_policy(), &long, "u", "u@x.io").is_empty());
        assert_eq!(
            check(&spec_policy(), &"aA1!".repeat(300), "u", "u@x.io"),
            [format!("must be at most {MAX_LENGTH} characters long")]
        );
    }

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() {
        let hasher = Hasher::new(2);
        let hash = hasher
            .hash(&SecretString::from("SecurePassword123!"))
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            hasher
                .verify(
                    &SecretString::from("SecurePassword123!"),
                    Some(hash.clone())
                )
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(&SecretString::from("securepassword123!"), Some(hash))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(&SecretString::from("anything"), None)
                .await
                .unwrap(),
            "unknown users never verify"
        );
    }
}
