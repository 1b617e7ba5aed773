//! Accounts for people who sign in through an outside provider (Google), and linking.
//!
//! A federated identity is the pair (provider, subject) the provider vouches for; it is stored in
//! `federated_identities` and never matched by display name. What happens on a sign-in:
//!
//! - **Linked**: the account it belongs to signs in (unless disabled).
//! - **Not linked, but its verified email is an existing account's**: refused, and the identity
//!   waits in the browser session ([`PendingLink`]) until that person signs in with the account's
//!   password, which links it. Linking on the email alone would let whoever controls an address
//!   at the provider take over the account here.
//! - **Neither**: with the provider's `auto_provision` an account is created with its
//!   `default_role` (username from the email, made unique); without it (the default), refused.
//!
//! A signed-in person can also link an identity from the account page, and unlink one as long as
//! it is not their last way to sign in. Linking and unlinking are audited as `identity_link` and
//! `identity_unlink`; sign-ins as `login_success` / `login_failure` with the provider.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};
use serde::{Deserialize, Serialize};

use super::{
    Identity, IdentityError,
    auth::Client,
    entities::{federated_identity, role, user, user_role},
    oidc::{self, Callback, OidcError, PendingLogin, Purpose, VerifiedIdentity},
    sessions::SessionUser,
};
use crate::{
    access::Principal,
    audit::{Actor, AuditEvent, EventKind, Outcome},
};

/// The browser-session key of the sign-ins started and not finished (a list of [`PendingLogin`]).
pub const PENDING_LOGINS_KEY: &str = "oidc_pending";

/// The browser-session key of an identity waiting for its account's password ([`PendingLink`]).
pub const PENDING_LINK_KEY: &str = "oidc_link";

/// A sign-in method linked to an account, as the account page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedIdentity {
    pub id: String,
    pub provider: String,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A verified identity whose email belongs to an existing account: linked once that account's
/// password is given in the same browser session (within [`oidc::FLOW_LIFETIME`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLink {
    pub identity: VerifiedIdentity,
    pub user_id: String,
    pub started_at: DateTime<Utc>,
}

/// What a callback from the provider led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Signed in: start a fresh session for `user`, then go to `next`.
    SignedIn { user: SessionUser, next: String },
    /// The email is an existing account's: keep this in the session and ask for its password.
    LinkRequired(PendingLink),
    /// Linked to the signed-in account (started from the account page).
    Linked,
    /// Google vouched for the account, which has a second factor: keep the challenge in the
    /// session and ask for it, then go to `next`.
    SecondFactor { challenge: String, next: String },
}

/// Why a federated sign-in or link did not go through; fixed messages, safe to show.
#[derive(Debug, thiserror::Error)]
pub enum FederatedError {
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error(
        "no account here belongs to this Google identity: ask an administrator to create one, or sign in with your password and link Google from your account page"
    )]
    NoAccount,
    #[error("your account is disabled")]
    Disabled,
    #[error("this Google account is already linked to another account here")]
    LinkedElsewhere,
    #[error("your session ended before Google answered; sign in and link again")]
    NotSignedIn,
    #[error(transparent)]
    Internal(#[from] IdentityError),
}

impl From<sea_orm::DbErr> for FederatedError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(e.into())
    }
}

impl FederatedError {
    /// A short code for the sign-in page and the audit event's `reason`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Oidc(e) => e.code(),
            Self::NoAccount => "no_account",
            Self::Disabled => "account_disabled",
            Self::LinkedElsewhere => "linked_elsewhere",
            Self::NotSignedIn => "not_signed_in",
            Self::Internal(_) => "internal",
        }
    }
}

impl Identity {
    /// The Google provider's client, when security.yml enables it.
    pub fn google(&self) -> Option<&oidc::OidcClient> {
        self.oidc.as_ref()
    }

    /// Starts "Sign in with Google" (or linking Google, from the account page).
    pub async fn begin_google(
        &self,
        purpose: Purpose,
    ) -> Result<(url::Url, PendingLogin), FederatedError> {
        let client = self.oidc.as_ref().ok_or(OidcError::Disabled)?;
        Ok(client.begin(purpose, self.clock.now()).await?)
    }

    /// Finishes a Google sign-in or link from the provider's callback. `pending` is the session's
    /// list of started sign-ins (the matching one is taken out); `signed_in` is the session's
    /// user, if any. Every refusal is recorded as `login_failure` with its reason.
    pub async fn complete_google(
        &self,
        pending: &mut Vec<PendingLogin>,
        callback: &Callback,
        signed_in: Option<&SessionUser>,
        client: &Client,
    ) -> Result<CallbackOutcome, FederatedError> {
        let started = callback
            .state
            .as_deref()
            .and_then(|state| oidc::OidcClient::take_pending(pending, state));
        let result = self
            .complete_google_inner(started.as_ref(), callback, signed_in, client)
            .await;
        if let Err(e) = &result {
            self.record_federated(
                EventKind::LoginFailure,
                Outcome::Failure,
                Actor {
                    id: None,
                    name: "anonymous".to_string(),
                },
                client,
                oidc::GOOGLE,
                Some((e.code(), e.to_string())),
            )
            .await?;
        }
        result
    }

    async fn complete_google_inner(
        &self,
        started: Option<&PendingLogin>,
        callback: &Callback,
        signed_in: Option<&SessionUser>,
        client: &Client,
    ) -> Result<CallbackOutcome, FederatedError> {
        let oidc = self.oidc.as_ref().ok_or(OidcError::Disabled)?;
        let identity = oidc.complete(started, callback, self.clock.now()).await?;
        let Some(started) = started else {
            return Err(OidcError::UnknownState.into());
        };
        match &started.purpose {
            Purpose::Link { user_id } => {
                let Some(me) = signed_in.filter(|u| &u.user_id == user_id) else {
                    return Err(FederatedError::NotSignedIn);
                };
                let row = self.user_row(&me.user_id).await?;
                self.link(
                    &row,
                    &identity,
                    Actor::user(row.id.to_string(), row.username.clone()),
                )
                .await?;
                Ok(CallbackOutcome::Linked)
            }
            Purpose::SignIn { next } => self.sign_in_identity(&identity, next, client).await,
        }
    }

    /// Signs in whoever `identity` belongs to, or says why not.
    async fn sign_in_identity(
        &self,
        identity: &VerifiedIdentity,
        next: &str,
        client: &Client,
    ) -> Result<CallbackOutcome, FederatedError> {
        let linked = federated_identity::Entity::find()
            .filter(federated_identity::Column::Provider.eq(&identity.provider))
            .filter(federated_identity::Column::Subject.eq(&identity.subject))
            .one(&self.db)
            .await?;
        let row = match linked {
            Some(link) => {
                let row = user::Entity::find_by_id(link.user_id)
                    .one(&self.db)
                    .await?
                    .ok_or(FederatedError::NoAccount)?;
                let mut active: federated_identity::ActiveModel = link.into();
                active.last_login_at = Set(Some(self.clock.now()));
                active.email = Set(Some(identity.email.clone()));
                active.update(&self.db).await?;
                row
            }
            None => {
                let same_email = user::Entity::find()
                    .filter(user::Column::Email.eq(&identity.email))
                    .one(&self.db)
                    .await?;
                if let Some(existing) = same_email {
                    self.record_federated(
                        EventKind::LoginFailure,
                        Outcome::Failure,
                        Actor::user(existing.id.to_string(), existing.username.clone()),
                        client,
                        &identity.provider,
                        Some((
                            "link_required",
                            "the email is an existing account's: its password links it".into(),
                        )),
                    )
                    .await?;
                    return Ok(CallbackOutcome::LinkRequired(PendingLink {
                        identity: identity.clone(),
                        user_id: existing.id.to_string(),
                        started_at: self.clock.now(),
                    }));
                }
                let google = self.config.security.google();
                match google.filter(|g| g.auto_provision) {
                    Some(g) => self.provision(identity, &g.default_role).await?,
                    None => return Err(FederatedError::NoAccount),
                }
            }
        };
        if row.disabled {
            return Err(FederatedError::Disabled);
        }
        let mut active: user::ActiveModel = row.clone().into();
        active.last_login_at = Set(Some(self.clock.now()));
        active.update(&self.db).await?;
        self.record_federated(
            EventKind::LoginSuccess,
            Outcome::Success,
            Actor::user(row.id.to_string(), row.username.clone()),
            client,
            &identity.provider,
            None,
        )
        .await?;
        let step = self
            .second_step(&row, "session", &identity.provider)
            .await?;
        Ok(match step {
            super::mfa::SignInOutcome::SignedIn(user) => CallbackOutcome::SignedIn {
                user,
                next: next.to_string(),
            },
            super::mfa::SignInOutcome::SecondFactor { challenge } => {
                CallbackOutcome::SecondFactor {
                    challenge,
                    next: next.to_string(),
                }
            }
        })
    }

    /// Creates an account for `identity` with `role`, linked to it; audited as `user_create`
    /// and `identity_link`.
    async fn provision(
        &self,
        identity: &VerifiedIdentity,
        role_name: &str,
    ) -> Result<user::Model, FederatedError> {
        if role::Entity::find_by_id(role_name.to_string())
            .one(&self.db)
            .await?
            .is_none()
        {
            tracing::error!(
                role = role_name,
                "security.yml: the Google provider's default_role names no role; nobody is created"
            );
            return Err(FederatedError::NoAccount);
        }
        let username = self.free_username(&identity.email).await?;
        let now = self.clock.now();
        let id = uuid::Uuid::now_v7();
        let txn = self.writes.begin().await.map_err(IdentityError::from)?;
        let row = user::ActiveModel {
            id: Set(id),
            username: Set(username.clone()),
            email: Set(identity.email.clone()),
            password_hash: Set(None),
            disabled: Set(false),
            token_version: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            last_login_at: Set(None),
        }
        .insert(&*txn)
        .await?;
        user_role::ActiveModel {
            user_id: Set(id),
            role_name: Set(role_name.to_string()),
        }
        .insert(&*txn)
        .await?;
        let link = new_link(id, identity, now);
        link.clone().insert(&*txn).await?;
        txn.commit().await.map_err(IdentityError::from)?;
        let actor = Actor::user(id.to_string(), username.clone());
        let created = AuditEvent::new(EventKind::UserCreate, actor.clone(), Outcome::Success)
            .with_target("user", id.to_string())
            .with_details(serde_json::json!({
                "username": username,
                "roles": [role_name],
                "provider": identity.provider,
                "auto_provision": true,
            }));
        self.audit
            .record(created)
            .await
            .map_err(IdentityError::from)?;
        self.record_link(
            EventKind::IdentityLink,
            actor,
            &row,
            identity.provider.as_str(),
            &identity.email,
        )
        .await?;
        Ok(row)
    }

    /// A username made from the email's local part that nobody has yet.
    async fn free_username(&self, email: &str) -> Result<String, FederatedError> {
        let local = email.split('@').next().unwrap_or_default();
        let mut base: String = local
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .skip_while(|c| !c.is_ascii_alphanumeric())
            .take(56)
            .collect();
        while base.len() < 3 {
            base.push('0');
        }
        for n in 1..100u32 {
            let candidate = if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            if super::check_username(&candidate).is_ok()
                && self.find_row(&candidate).await?.is_none()
            {
                return Ok(candidate);
            }
        }
        Ok(format!(
            "user-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ))
    }

    /// Links `identity` to the account `row`; nothing to do when it already is.
    async fn link(
        &self,
        row: &user::Model,
        identity: &VerifiedIdentity,
        actor: Actor,
    ) -> Result<(), FederatedError> {
        let existing = federated_identity::Entity::find()
            .filter(federated_identity::Column::Provider.eq(&identity.provider))
            .filter(federated_identity::Column::Subject.eq(&identity.subject))
            .one(&self.db)
            .await?;
        match existing {
            Some(link) if link.user_id == row.id => return Ok(()),
            Some(_) => return Err(FederatedError::LinkedElsewhere),
            None => {}
        }
        let count = federated_identity::Entity::find()
            .filter(federated_identity::Column::UserId.eq(row.id))
            .count(&self.db)
            .await?;
        if count >= MAX_LINKS {
            return Err(IdentityError::Conflict(format!(
                "an account can have at most {MAX_LINKS} linked sign-ins"
            ))
            .into());
        }
        // A concurrent link of the same identity fails on the unique index.
        new_link(row.id, identity, self.clock.now())
            .insert(&self.db)
            .await
            .map_err(|_| FederatedError::LinkedElsewhere)?;
        self.record_link(
            EventKind::IdentityLink,
            actor,
            row,
            &identity.provider,
            &identity.email,
        )
        .await
    }

    /// After a password sign-in: links the identity waiting in the session, if it was waiting
    /// for this account and is not too old. Returns whether it linked.
    pub async fn finish_pending_link(
        &self,
        user: &SessionUser,
        pending: &PendingLink,
    ) -> Result<bool, FederatedError> {
        let fresh = self.clock.now() - pending.started_at <= oidc::FLOW_LIFETIME;
        if pending.user_id != user.user_id || !fresh {
            return Ok(false);
        }
        let row = self.user_row(&user.user_id).await?;
        let actor = Actor::user(row.id.to_string(), row.username.clone());
        self.link(&row, &pending.identity, actor).await?;
        Ok(true)
    }

    /// The signed-in person's linked sign-ins.
    pub async fn linked_identities(
        &self,
        principal: &Principal,
    ) -> Result<Vec<LinkedIdentity>, IdentityError> {
        let Some(id) = principal.id().and_then(|id| uuid::Uuid::parse_str(id).ok()) else {
            return Ok(Vec::new());
        };
        Ok(federated_identity::Entity::find()
            .filter(federated_identity::Column::UserId.eq(id))
            .order_by_asc(federated_identity::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|l| LinkedIdentity {
                id: l.id.to_string(),
                provider: l.provider,
                email: l.email,
                created_at: l.created_at,
                last_login_at: l.last_login_at,
            })
            .collect())
    }

    /// Unlinks one of the signed-in person's identities, unless it is their last way to sign in.
    pub async fn unlink_identity(
        &self,
        principal: &Principal,
        link_id: &str,
    ) -> Result<(), IdentityError> {
        let unknown = || IdentityError::UnknownIdentity(link_id.chars().take(64).collect());
        let me = principal
            .id()
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
            .ok_or_else(unknown)?;
        let id = uuid::Uuid::parse_str(link_id).map_err(|_| unknown())?;
        let link = federated_identity::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|l| l.user_id == me)
            .ok_or_else(unknown)?;
        let row = self.user_row(&me.to_string()).await?;
        let others = federated_identity::Entity::find()
            .filter(federated_identity::Column::UserId.eq(me))
            .count(&self.db)
            .await?
            - 1;
        let has_password =
            row.password_hash.is_some() && self.config.security.local_password_policy().is_some();
        if others == 0 && !has_password {
            return Err(IdentityError::Conflict(
                "this is your only way to sign in: link another one or have a password set first"
                    .into(),
            ));
        }
        federated_identity::Entity::delete_by_id(id)
            .exec(&self.db)
            .await?;
        let actor = Actor::user(row.id.to_string(), row.username.clone());
        self.record_link(
            EventKind::IdentityUnlink,
            actor,
            &row,
            &link.provider,
            link.email.as_deref().unwrap_or_default(),
        )
        .await
        .map_err(|e| match e {
            FederatedError::Internal(e) => e,
            other => IdentityError::Conflict(other.to_string()),
        })
    }

    async fn user_row(&self, id: &str) -> Result<user::Model, IdentityError> {
        let unknown = || IdentityError::UnknownUser(id.chars().take(64).collect());
        let uuid = uuid::Uuid::parse_str(id).map_err(|_| unknown())?;
        user::Entity::find_by_id(uuid)
            .one(&self.db)
            .await?
            .ok_or_else(unknown)
    }

    async fn record_link(
        &self,
        kind: EventKind,
        actor: Actor,
        row: &user::Model,
        provider: &str,
        email: &str,
    ) -> Result<(), FederatedError> {
        let event = AuditEvent::new(kind, actor, Outcome::Success)
            .with_target("user", row.id.to_string())
            .with_details(serde_json::json!({
                "username": row.username,
                "provider": provider,
                "email": email,
            }));
        self.audit
            .record(event)
            .await
            .map_err(IdentityError::from)?;
        Ok(())
    }

    async fn record_federated(
        &self,
        kind: EventKind,
        outcome: Outcome,
        actor: Actor,
        client: &Client,
        provider: &str,
        reason: Option<(&str, String)>,
    ) -> Result<(), FederatedError> {
        let mut details = serde_json::json!({ "method": "session", "provider": provider });
        if let Some((code, message)) = reason {
            details["reason"] = code.into();
            details["detail"] = message.into();
        }
        let event = AuditEvent::new(kind, actor, outcome)
            .with_client(client.ip.clone(), client.user_agent.clone())
            .with_details(details);
        self.audit
            .record(event)
            .await
            .map_err(IdentityError::from)?;
        Ok(())
    }
}

/// Most identities one account may link.
const MAX_LINKS: u64 = 10;

fn new_link(
    user_id: uuid::Uuid,
    identity: &VerifiedIdentity,
    now: DateTime<Utc>,
) -> federated_identity::ActiveModel {
    federated_identity::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        user_id: Set(user_id),
        provider: Set(identity.provider.clone()),
        subject: Set(identity.subject.clone()),
        email: Set(Some(identity.email.clone())),
        created_at: Set(now),
        last_login_at: Set(Some(now)),
    }
}
