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
    /// Addition to the spec: the OpenID provider whose discovery document
    /// (`<issuer>/.well-known/openid-configuration`) is read. Google's by default; any OpenID
    /// provider works (the tests point it at a local one).
    #[serde(default = "google_issuer")]
    pub issuer: url::Url,
    /// Addition to the spec: whether a first sign-in by someone with no account creates one (with
    /// `default_role`). Off by default: an administrator creates the account, or the person links
    /// Google from an existing one.
    #[serde(default)]
    pub auto_provision: bool,
    /// Addition to the spec: the role of accounts created by `auto_provision`.
    #[serde(default = "default_federated_role")]
    pub default_role: String,
}

/// Google's OpenID issuer, whose discovery document is the default.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// The path the server answers OpenID callbacks on; `redirect_url` must point at it.
pub const CALLBACK_PATH: &str = "/auth/callback";

fn google_issuer() -> url::Url {
    url::Url::parse(GOOGLE_ISSUER).unwrap_or_else(|_| unreachable!("a valid constant URL"))
}

fn default_federated_role() -> String {
    "viewer".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    pub server: url::Url,
    pub bind_dn: String,
    pub bind_password: SecretString,
    pub user_base: String,
    pub user_filter: String,
    /// Addition to the spec: upgrade an `ldap://` connection with StartTLS (`ldaps://` is TLS
    /// from the start). Off by default, as the guide's `ldap://` URL is plain.
    #[serde(default)]
    pub starttls: bool,
    /// Addition to the spec: a PEM file of the CA certificates that sign the directory's
    /// certificate (for ldaps and StartTLS); the system's roots when absent.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Addition to the spec: where groups are searched for the signed-in entry (groups that list
    /// it as `member`); `user_base`'s parent when absent.
    #[serde(default)]
    pub group_base: Option<String>,
    /// Addition to the spec: directory group → role. A group is named by its `cn` or its full
    /// DN; the person gets every mapped role of their groups, set again at each sign-in.
    #[serde(default)]
    pub group_roles: std::collections::BTreeMap<String, String>,
    /// Addition to the spec: the role of a person none of whose groups is mapped (`none` refuses
    /// them).
    #[serde(default = "default_federated_role")]
    pub default_role: String,
    /// Addition to the spec: how long one directory operation may take.
    #[serde(default = "ldap_timeout")]
    pub timeout: Span,
}

fn ldap_timeout() -> Span {
    Span(std::time::Duration::from_secs(5))
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

    /// The LDAP provider, when it is enabled.
    pub fn ldap(&self) -> Option<&LdapConfig> {
        self.auth.providers.iter().find_map(|p| match p {
            Provider::Ldap {
                enabled: true,
                config,
            } => Some(config),
            _ => None,
        })
    }

    /// The Google (OpenID) provider, when it is enabled.
    pub fn google(&self) -> Option<&GoogleConfig> {
        self.auth.providers.iter().find_map(|p| match p {
            Provider::Oauth2 {
                enabled: true,
                config,
            } => Some(&config.google),
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
                Provider::Oauth2 { enabled, config } => {
                    if *enabled {
                        validate_google(
                            &config.google,
                            &format!("auth.providers[{i}].config.google"),
                            p,
                        );
                    }
                    "oauth2"
                }
                Provider::Ldap { config, enabled } => {
                    if *enabled {
                        validate_ldap(config, &format!("auth.providers[{i}].config"), p);
                    }
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

fn validate_google(google: &GoogleConfig, at: &str, p: &mut Problems) {
    use secrecy::ExposeSecret;
    if google.client_id.trim().is_empty() {
        p.push(
            format!("{at}.client_id"),
            "must not be empty: the OAuth client id from the Google Cloud console",
        );
    }
    if google.client_secret.expose_secret().trim().is_empty() {
        p.push(
            format!("{at}.client_secret"),
            "must not be empty: set it from the environment, e.g. \"${GOOGLE_CLIENT_SECRET}\"",
        );
    }
    if google.redirect_url.path() != CALLBACK_PATH
        || !matches!(google.redirect_url.scheme(), "http" | "https")
    {
        p.push(
            format!("{at}.redirect_url"),
            format!("must be this server's address followed by {CALLBACK_PATH}, e.g. https://wasm.example.com{CALLBACK_PATH}"),
        );
    }
    let loopback = match google.issuer.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if !(google.issuer.scheme() == "https" || (google.issuer.scheme() == "http" && loopback))
        || google.issuer.query().is_some()
    {
        p.push(
            format!("{at}.issuer"),
            "must be an https:// URL (http:// only on this machine, for testing)",
        );
    }
    if crate::identity::roles::check_role_name(&google.default_role).is_err() {
        p.push(format!("{at}.default_role"), "must name a role");
    }
}

fn validate_ldap(ldap: &LdapConfig, at: &str, p: &mut Problems) {
    if ldap.starttls && ldap.server.scheme() == "ldaps" {
        p.push(
            format!("{at}.starttls"),
            "is for ldap:// URLs; an ldaps:// connection is TLS from the start",
        );
    }
    if let Some(ca) = &ldap.ca_file
        && !ca.is_file()
    {
        p.push(
            format!("{at}.ca_file"),
            format!("{} is not a readable file", ca.display()),
        );
    }
    for (group, role) in &ldap.group_roles {
        if crate::identity::roles::check_role_name(role).is_err() {
            p.push(
                format!("{at}.group_roles.{group}"),
                format!("\"{role}\" is not a role name"),
            );
        }
    }
    if ldap.default_role != "none"
        && crate::identity::roles::check_role_name(&ldap.default_role).is_err()
    {
        p.push(
            format!("{at}.default_role"),
            "must name a role, or be \"none\"",
        );
    }
    if ldap.timeout.duration().is_zero() {
        p.push(format!("{at}.timeout"), "must be longer than zero");
    }
}
