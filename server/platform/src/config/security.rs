//! `security.yml`: JWT settings and the identity providers.

use secrecy::SecretString;
use serde::Deserialize;

use super::{Problems, units::Span};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityFile {
    pub auth: Auth,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub jwt: Jwt,
    pub providers: Vec<Provider>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jwt {
    /// HMAC secret; `None` when the config leaves it out (a random one is then kept in the data dir).
    #[serde(default)]
    pub secret: Option<SecretString>,
    pub expiry: Span,
    pub refresh_expiry: Span,
    pub issuer: String,
    pub audience: String,
}

/// One entry of `auth.providers`, tagged by its `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Provider {
    Local { enabled: bool, config: LocalConfig },
    Oauth2 { enabled: bool, config: OAuth2Config },
    Ldap { enabled: bool, config: LdapConfig },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    pub password_policy: PasswordPolicy,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicy {
    pub min_length: u32,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_numbers: bool,
    pub require_symbols: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    pub google: GoogleConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleConfig {
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_url: url::Url,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    pub server: url::Url,
    pub bind_dn: String,
    pub bind_password: SecretString,
    pub user_base: String,
    pub user_filter: String,
}

impl SecurityFile {
    pub fn local_password_policy(&self) -> Option<&PasswordPolicy> {
        self.auth.providers.iter().find_map(|p| match p {
            Provider::Local {
                enabled: true,
                config,
            } => Some(&config.password_policy),
            _ => None,
        })
    }

    pub(super) fn validate(&self, p: &mut Problems) {
        let jwt = &self.auth.jwt;
        if jwt.expiry.duration().is_zero() {
            p.push("auth.jwt.expiry", "must be longer than zero");
        }
        if jwt.refresh_expiry < jwt.expiry {
            p.push(
                "auth.jwt.refresh_expiry",
                "must not be shorter than auth.jwt.expiry",
            );
        }
        if let Some(secret) = &jwt.secret {
            use secrecy::ExposeSecret;
            if secret.expose_secret().len() < 32 {
                p.push("auth.jwt.secret", "is too short: use at least 32 random bytes (256 bits), e.g. `openssl rand -base64 48`");
            }
        }
        for (key, value) in [
            ("auth.jwt.issuer", &jwt.issuer),
            ("auth.jwt.audience", &jwt.audience),
        ] {
            if value.trim().is_empty() {
                p.push(key, "must not be empty");
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, provider) in self.auth.providers.iter().enumerate() {
            let kind = match provider {
                Provider::Local { config, .. } => {
                    let min = config.password_policy.min_length;
                    if !(8..=128).contains(&min) {
                        p.push(
                            format!("auth.providers[{i}].config.password_policy.min_length"),
                            "must be between 8 and 128",
                        );
                    }
                    "local"
                }
                Provider::Oauth2 { .. } => "oauth2",
                Provider::Ldap { config, .. } => {
                    if !matches!(config.server.scheme(), "ldap" | "ldaps") {
                        p.push(
                            format!("auth.providers[{i}].config.server"),
                            "must be an ldap:// or ldaps:// URL",
                        );
                    }
                    if config.user_filter.matches("%s").count() != 1 {
                        p.push(
                            format!("auth.providers[{i}].config.user_filter"),
                            "must contain %s exactly once (where the username goes)",
                        );
                    }
                    "ldap"
                }
            };
            if !seen.insert(kind) {
                p.push(
                    format!("auth.providers[{i}]"),
                    format!("provider type \"{kind}\" is listed twice"),
                );
            }
        }
    }
}
