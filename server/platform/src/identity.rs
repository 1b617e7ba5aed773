//! Identity: local accounts, their roles, and the roles themselves (rbac.yml's and custom ones).
//!
//! Every operation takes the acting [`Principal`], checks its permission here, and records its
//! audit event here, so the CLI, the REST API and the dashboard behave the same.
//!
//! One file per concern: what goes wrong (`error.rs`), what the services take and return
//! (`model.rs`), creating and changing accounts (`accounts.rs`), disabling, deleting and one's own
//! password (`lifecycle.rs`), reading accounts and roles (`directory.rs`), roles (`roles.rs`), who
//! may grant what (`grants.rs`), passwords (`password.rs`), sign-in and tokens (`auth.rs`,
//! `tokens.rs`), browser sessions (`sessions.rs`) and the first-admin link (`setup.rs`).

mod accounts;
pub mod api_tokens;
pub mod auth;
mod directory;
pub(crate) mod entities;
mod error;
pub mod federation;
pub mod grants;
pub mod ldap;
mod ldap_sign_in;
mod lifecycle;
pub mod mfa;
mod model;
pub mod oidc;
pub mod password;
pub mod roles;
pub mod sessions;
pub mod setup;
pub mod tokens;

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use secrecy::SecretString;

use self::error::invalid;
pub use self::{
    error::IdentityError,
    model::{NewUser, Role, User, UserChanges, check_email, check_username},
};
use crate::{
    access::Principal,
    audit::{Actor, AuditEvent, AuditService, EventKind, Outcome},
    clock::Clock,
    config::Config,
    generation::AccessWrites,
};

#[derive(Debug, Clone)]
pub struct Identity {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    config: Arc<Config>,
    /// soc2.yml as in force now (who must use a second factor).
    settings: crate::settings::Live,
    audit: AuditService,
    hasher: password::Hasher,
    keys: tokens::TokenKeys,
    /// The only way to write accounts, roles and refresh-family revocations: each write moves
    /// the access generation once committed (see [`crate::generation::writes`]).
    writes: AccessWrites,
    /// Accounts as authentication needs them, reused while the generation stands.
    accounts: Arc<crate::generation::Fresh<uuid::Uuid, Option<auth::Account>>>,
    /// Whether each refresh family (a sign-in) still stands, reused while the generation stands;
    /// revoking a family moves the generation.
    families: Arc<crate::generation::Fresh<uuid::Uuid, bool>>,
    /// "Sign in with Google", when security.yml enables it.
    oidc: Option<oidc::OidcClient>,
    /// The LDAP directory as a password provider, when security.yml enables it.
    ldap: Option<ldap::LdapClient>,
    /// rate_limit.yml's sign-in budget.
    edge: crate::edge::Edge,
    /// The keys that seal TOTP secrets and hash recovery codes.
    mfa: mfa::MfaKeys,
}

/// Most accounts kept in memory for authentication.
const ACCOUNT_CACHE: usize = 10_000;

/// The secrets identity derives its keys from: the JWT secret (tokens, the Google flow) and the
/// storage key (second factors).
#[derive(Clone, Copy)]
pub struct IdentityKeys<'a> {
    pub jwt_secret: &'a SecretString,
    pub storage_key: &'a [u8; 32],
}

impl Identity {
    pub fn new(
        db: DatabaseConnection,
        clock: Arc<dyn Clock>,
        config: Arc<Config>,
        audit: AuditService,
        keys: IdentityKeys<'_>,
        generation: crate::generation::AccessGeneration,
        edge: crate::edge::Edge,
    ) -> Result<Self, String> {
        let (secret, storage_key) = (keys.jwt_secret, keys.storage_key);
        let permits = std::thread::available_parallelism().map_or(2, usize::from);
        let keys = tokens::TokenKeys::new(secret, &config.security.auth.jwt);
        let accounts = Arc::new(crate::generation::Fresh::new(
            generation.clone(),
            ACCOUNT_CACHE,
        ));
        let families = Arc::new(crate::generation::Fresh::new(
            generation.clone(),
            ACCOUNT_CACHE,
        ));
        let oidc = match config.security.google() {
            Some(google) => Some(oidc::OidcClient::new(google, secret)?),
            None => None,
        };
        let ldap = match config.security.ldap() {
            Some(ldap) => Some(ldap::LdapClient::new(ldap)?),
            None => None,
        };
        Ok(Self {
            writes: AccessWrites::new(db.clone(), generation),
            db,
            clock,
            config,
            settings: audit.settings().clone(),
            audit,
            hasher: password::Hasher::new(permits),
            keys,
            accounts,
            families,
            oidc,
            ldap,
            edge,
            mfa: mfa::MfaKeys::new(storage_key),
        })
    }

    async fn authorize(
        &self,
        principal: &Principal,
        resource: &str,
        action: &str,
        target: &str,
    ) -> Result<(), IdentityError> {
        Ok(principal
            .require(&self.audit, resource, action, target)
            .await?)
    }

    async fn record(
        &self,
        principal: &Principal,
        kind: EventKind,
        user: &User,
        details: serde_json::Value,
    ) -> Result<(), IdentityError> {
        let actor = Actor {
            id: principal.id().map(str::to_string),
            name: principal.name().to_string(),
        };
        let event = AuditEvent::new(kind, actor, Outcome::Success)
            .with_target("user", user.id.clone())
            .with_details(details);
        self.audit.record(event).await?;
        Ok(())
    }
}

fn dedup(names: &[String]) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    names
        .iter()
        .filter(|n| seen.insert(n.as_str()))
        .cloned()
        .collect()
}
