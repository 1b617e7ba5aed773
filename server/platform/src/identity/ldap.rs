//! The LDAP directory as a password provider (security.yml `auth.providers` `ldap`, off by
//! default as in the guide), with `ldap3` over rustls.
//!
//! A sign-in binds as `bind_dn` (its password from the environment, e.g.
//! `${LDAP_BIND_PASSWORD}`), searches `user_base` with `user_filter` whose `%s` is the username
//! escaped per RFC 4515 (so `*)(uid=*))(|(uid=*` is looked up literally, never as filter syntax),
//! requires exactly one entry, reads the groups that list it as `member` under `group_base`, and
//! finally binds as the entry itself with the given password on a connection of its own. An
//! empty password is refused before any bind (an LDAP bind with an empty password is an
//! "unauthenticated bind" that some servers accept). `ldaps://` is TLS from the start; `ldap://`
//! with `starttls: true` upgrades; `ca_file` names the CA to trust.

use std::{sync::Arc, time::Duration};

use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, ldap_escape};
use secrecy::{ExposeSecret, SecretString};

use crate::config::security::LdapConfig;

/// The provider name LDAP sign-ins are recorded under.
pub const LDAP: &str = "ldap";

/// What the directory says about a person who proved their password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// The entry's DN, lowercased: the identity's subject.
    pub dn: String,
    pub email: Option<String>,
    /// The DNs and `cn`s of the groups listing the entry as a member, lowercased.
    pub groups: Vec<String>,
}

/// Why a directory sign-in failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// No such entry, several, or the wrong password.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The directory cannot be reached or refuses the service account; the reason is for the log.
    #[error("the LDAP directory is unavailable: {0}")]
    Unavailable(String),
}

/// The configured directory; cheap to clone.
#[derive(Clone)]
pub struct LdapClient(Arc<Inner>);

struct Inner {
    url: String,
    bind_dn: String,
    bind_password: SecretString,
    user_base: String,
    user_filter: String,
    group_base: String,
    starttls: bool,
    timeout: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for LdapClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapClient")
            .field("url", &self.0.url)
            .field("bind_dn", &self.0.bind_dn)
            .finish_non_exhaustive()
    }
}

impl LdapClient {
    pub fn new(config: &LdapConfig) -> Result<Self, String> {
        let tls = match &config.ca_file {
            Some(path) => Some(Arc::new(tls_config(path)?)),
            None => None,
        };
        let group_base = config.group_base.clone().unwrap_or_else(|| {
            config
                .user_base
                .split_once(',')
                .map_or(config.user_base.clone(), |(_, parent)| parent.to_string())
        });
        Ok(Self(Arc::new(Inner {
            url: config.server.to_string(),
            bind_dn: config.bind_dn.clone(),
            bind_password: config.bind_password.clone(),
            user_base: config.user_base.clone(),
            user_filter: config.user_filter.clone(),
            group_base,
            starttls: config.starttls,
            timeout: config.timeout.duration(),
            tls,
        })))
    }

    async fn connect(&self) -> Result<ldap3::Ldap, DirectoryError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.0.timeout)
            .set_starttls(self.0.starttls);
        if let Some(tls) = &self.0.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.0.url)
            .await
            .map_err(|e| {
                DirectoryError::Unavailable(format!("cannot connect to {}: {e}", self.0.url))
            })?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection ended");
            }
        });
        Ok(ldap)
    }

    /// Checks `password` for `username` against the directory.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<DirectoryEntry, DirectoryError> {
        if password.expose_secret().is_empty() || username.is_empty() {
            return Err(DirectoryError::InvalidCredentials);
        }
        let t = self.0.timeout;
        let unavailable =
            |what: &str, e: LdapError| DirectoryError::Unavailable(format!("{what}: {e}"));
        let mut service = self.connect().await?;
        service
            .with_timeout(t)
            .simple_bind(&self.0.bind_dn, self.0.bind_password.expose_secret())
            .await
            .and_then(|r| r.success())
            .map_err(|e| unavailable("the service account (bind_dn) cannot bind", e))?;
        let filter = self.0.user_filter.replacen("%s", &ldap_escape(username), 1);
        let (entries, _) = service
            .with_timeout(t)
            .search(&self.0.user_base, Scope::Subtree, &filter, vec!["mail"])
            .await
            .and_then(|r| r.success())
            .map_err(|e| unavailable("searching user_base failed", e))?;
        let [entry] =
            <[_; 1]>::try_from(entries).map_err(|_| DirectoryError::InvalidCredentials)?;
        let entry = construct(entry)?;
        let group_filter = format!(
            "(|(member={dn})(uniqueMember={dn}))",
            dn = ldap_escape(entry.dn.as_str())
        );
        let (groups, _) = service
            .with_timeout(t)
            .search(
                &self.0.group_base,
                Scope::Subtree,
                &group_filter,
                vec!["cn"],
            )
            .await
            .and_then(|r| r.success())
            .map_err(|e| unavailable("searching groups failed", e))?;
        let _ = service.unbind().await;
        let mut names = Vec::new();
        for group in groups {
            let group = construct(group)?;
            names.push(group.dn.to_lowercase());
            for cn in group.attrs.get("cn").into_iter().flatten() {
                names.push(cn.to_lowercase());
            }
        }
        // The password is checked by binding as the entry, on a connection of its own.
        let mut user = self.connect().await?;
        let bound = user
            .with_timeout(t)
            .simple_bind(&entry.dn, password.expose_secret())
            .await;
        let _ = user.unbind().await;
        match bound.and_then(|r| r.success()) {
            Ok(_) => {}
            Err(LdapError::LdapResult { result }) if result.rc == 49 => {
                return Err(DirectoryError::InvalidCredentials);
            }
            Err(e) => return Err(unavailable("binding as the user failed", e)),
        }
        Ok(DirectoryEntry {
            dn: entry.dn.to_lowercase(),
            email: entry
                .attrs
                .get("mail")
                .and_then(|m| m.first())
                .map(|m| m.trim().to_lowercase()),
            groups: names,
        })
    }
}

/// Reads a search result entry; a malformed one (which `ldap3` would panic on) is an error.
fn construct(entry: ldap3::ResultEntry) -> Result<SearchEntry, DirectoryError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        SearchEntry::construct(entry)
    }))
    .map_err(|_| DirectoryError::Unavailable("the directory sent a malformed entry".into()))
}

/// A rustls client configuration trusting the CA certificates in `path` (PEM).
fn tls_config(path: &std::path::Path) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{} is not PEM certificates: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}
