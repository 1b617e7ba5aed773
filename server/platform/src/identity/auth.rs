//! Sign-in with a password (local, or the LDAP directory's: see `ldap_sign_in.rs`), access and
//! refresh tokens, refresh rotation with reuse detection, sign-out, and turning a bearer token
//! into a [`Principal`].

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr,
};
use secrecy::SecretString;
use serde::Serialize;

use super::{
    Identity, IdentityError,
    entities::{refresh_token, role, user, user_role},
    tokens::{Claims, TokenType},
};
use crate::{
    access::{Permission, Principal},
    audit::{Actor, AuditEvent, EventKind, Outcome},
};

/// Where a request came from, for audit events.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// What a successful sign-in or refresh returns.
#[derive(Debug, Clone, Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

/// Errors of authentication; the messages never say which part was wrong.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user, wrong password or disabled account.
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The token is missing, malformed, expired, revoked or otherwise unacceptable.
    #[error("invalid or expired token")]
    InvalidToken,
    /// security.yml's local provider is disabled: nobody signs in with a local password.
    #[error("signing in with a password is turned off on this server")]
    LocalDisabled,
    /// A password provider (the LDAP directory) cannot be reached; accounts of other providers
    /// still sign in.
    #[error(
        "the {0} directory cannot be reached right now; try again later (accounts of this server can still sign in)"
    )]
    ProviderUnavailable(&'static str),
    /// Over rate_limit.yml's sign-in budget.
    #[error(transparent)]
    Limited(#[from] crate::edge::EdgeError),
    /// The password was right and the account has a second factor: answer the challenge
    /// (`POST /auth/mfa`).
    #[error(
        "a second factor is required: answer this challenge with a code from your authenticator app, a passkey or a recovery code"
    )]
    MfaRequired {
        challenge: String,
        /// How it can be answered: `totp`, `passkey`, `recovery_code`.
        methods: Vec<String>,
    },
    /// soc2.yml requires a second factor of this account and none is enrolled yet.
    #[error(
        "your role requires a second factor and none is enrolled: sign in to the dashboard once to enrol an authenticator app"
    )]
    MfaEnrolmentRequired,
    /// A passkey cannot answer here (no passkey enrolled, or a page reached by IP address).
    #[error("{0}")]
    PasskeyUnavailable(String),
    /// The challenge is unknown, was used, or has expired.
    #[error("this sign-in has expired or was already finished: sign in again")]
    MfaChallenge,
    /// The code is wrong, malformed, or was already used.
    #[error("that code is not right or was already used")]
    MfaWrongCode,
    /// Too many wrong second factors in a row.
    #[error("too many wrong codes: the second step is locked; try again in {} minutes", retry_after.div_ceil(60))]
    MfaLocked { retry_after: u64 },
    /// Something failed underneath.
    #[error(transparent)]
    Internal(#[from] IdentityError),
}

impl From<sea_orm::DbErr> for AuthError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(e.into())
    }
}

/// The `provider` that `login_success` and `login_failure` name for a local password (security.yml
/// `auth.providers.local`).
pub const LOCAL_PROVIDER: &str = "local";

/// Which password provider vouched for an account: the directory's accounts keep no password.
fn provider_of(row: &user::Model) -> &'static str {
    if row.password_hash.is_some() {
        LOCAL_PROVIDER
    } else {
        "ldap"
    }
}

impl Identity {
    pub(super) async fn audit_auth(
        &self,
        kind: EventKind,
        outcome: Outcome,
        actor: Actor,
        client: &Client,
        details: serde_json::Value,
    ) -> Result<(), AuthError> {
        let event = AuditEvent::new(kind, actor, outcome)
            .with_client(client.ip.clone(), client.user_agent.clone())
            .with_details(details);
        self.audit
            .record(event)
            .await
            .map_err(IdentityError::from)?;
        Ok(())
    }

    /// Signs in with username and password for the API; audited as `login_success` or
    /// `login_failure`.
    pub async fn login(
        &self,
        username: &str,
        password: &SecretString,
        client: &Client,
    ) -> Result<TokenPair, AuthError> {
        let row = self
            .check_credentials(username, password, client, "password")
            .await?;
        match self
            .second_step(&row, "password", provider_of(&row))
            .await?
        {
            super::mfa::SignInOutcome::SignedIn(user) if user.must_enrol => {
                Err(AuthError::MfaEnrolmentRequired)
            }
            super::mfa::SignInOutcome::SignedIn(_) => {
                self.issue_pair(&row, uuid::Uuid::now_v7()).await
            }
            super::mfa::SignInOutcome::SecondFactor { challenge } => Err(AuthError::MfaRequired {
                challenge,
                methods: self.factor_methods(row.id).await?,
            }),
        }
    }

    /// Signs in with username and password for a browser session; audited like [`Self::login`].
    /// The caller stores a signed-in [`SessionUser`] in a fresh session, or keeps the challenge
    /// of a second factor in the session and asks for it.
    pub async fn sign_in(
        &self,
        username: &str,
        password: &SecretString,
        client: &Client,
    ) -> Result<super::mfa::SignInOutcome, AuthError> {
        let row = self
            .check_credentials(username, password, client, "session")
            .await?;
        Ok(self.second_step(&row, "session", provider_of(&row)).await?)
    }

    /// Records the end of a browser session as `logout`.
    pub async fn sign_out(&self, principal: &Principal, client: &Client) -> Result<(), AuthError> {
        let actor = Actor {
            id: principal.id().map(str::to_string),
            name: principal.name().to_string(),
        };
        self.audit_auth(
            EventKind::Logout,
            Outcome::Success,
            actor,
            client,
            serde_json::json!({ "method": "session" }),
        )
        .await
    }

    /// Verifies a password, records the outcome, and returns the enabled account it belongs to.
    async fn check_credentials(
        &self,
        username: &str,
        password: &SecretString,
        client: &Client,
        method: &str,
    ) -> Result<user::Model, AuthError> {
        if let Some(ip) = client.ip.as_deref().and_then(|s| s.parse().ok()) {
            use crate::edge::{Action, Who};
            self.edge
                .admit(Action::SignIn, Who::Address(ip), Some(ip))
                .await?;
        }
        let name = username.trim().to_lowercase();
        let row = self.find_row(&name).await?;
        if let Some(ldap) = &self.ldap
            && self.directory_managed(row.as_ref()).await?
        {
            return self
                .directory_sign_in(ldap, &name, password, row, client, method)
                .await;
        }
        if self.config.security.local_password_policy().is_none() {
            let actor = Actor {
                id: None,
                name: name.chars().take(64).collect(),
            };
            let details = serde_json::json!({
                "reason": "local sign-in disabled",
                "method": method,
                "provider": LOCAL_PROVIDER,
            });
            self.audit_auth(
                EventKind::LoginFailure,
                Outcome::Failure,
                actor,
                client,
                details,
            )
            .await?;
            return Err(AuthError::LocalDisabled);
        }
        let hash = row.as_ref().and_then(|r| r.password_hash.clone());
        let verified = self
            .hasher
            .verify(password, hash)
            .await
            .map_err(IdentityError::from)?;
        let row = match row {
            Some(r) if verified && !r.disabled => r,
            other => {
                let reason = match &other {
                    None => "unknown user",
                    Some(r) if r.disabled => "account disabled",
                    Some(_) => "wrong password",
                };
                let actor = Actor {
                    id: other.as_ref().map(|r| r.id.to_string()),
                    name: name.chars().take(64).collect(),
                };
                self.audit_auth(
                    EventKind::LoginFailure,
                    Outcome::Failure,
                    actor,
                    client,
                    serde_json::json!({ "reason": reason, "method": method, "provider": LOCAL_PROVIDER }),
                )
                .await?;
                return Err(AuthError::InvalidCredentials);
            }
        };
        let mut active: user::ActiveModel = row.clone().into();
        active.last_login_at = Set(Some(self.clock.now()));
        active.update(&self.db).await?;
        let actor = Actor::user(row.id.to_string(), row.username.clone());
        self.audit_auth(
            EventKind::LoginSuccess,
            Outcome::Success,
            actor,
            client,
            serde_json::json!({ "method": method, "provider": LOCAL_PROVIDER }),
        )
        .await?;
        Ok(row)
    }

    pub(super) async fn issue_pair(
        &self,
        row: &user::Model,
        family: uuid::Uuid,
    ) -> Result<TokenPair, AuthError> {
        let jwt = &self.config.security.auth.jwt;
        let now = self.clock.now();
        let refresh_id = uuid::Uuid::now_v7();
        let refresh_lifetime = jwt.refresh_expiry.duration();
        let fam = family.to_string();
        let sign = |typ, jti: &str, lifetime| {
            self.keys
                .issue(
                    typ,
                    &row.id.to_string(),
                    &row.username,
                    row.token_version,
                    jti,
                    Some(&fam),
                    now,
                    lifetime,
                )
                .map_err(|e| AuthError::Internal(IdentityError::Token(e)))
        };
        let access_token = sign(
            TokenType::Access,
            &uuid::Uuid::now_v7().to_string(),
            jwt.expiry.duration(),
        )?;
        let refresh_token = sign(
            TokenType::Refresh,
            &refresh_id.to_string(),
            refresh_lifetime,
        )?;
        refresh_token::ActiveModel {
            id: Set(refresh_id),
            family_id: Set(family),
            user_id: Set(row.id),
            used: Set(false),
            revoked: Set(false),
            issued_at: Set(now),
            expires_at: Set(now
                + chrono::Duration::from_std(refresh_lifetime)
                    .unwrap_or(chrono::Duration::days(7))),
        }
        .insert(&self.db)
        .await?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            token_type: "Bearer",
            expires_in: jwt.expiry.duration().as_secs(),
        })
    }

    /// Revokes every refresh token of a family, and with it the family's access tokens: the
    /// generation moves, so [`Self::authenticate`] looks the family up again.
    async fn revoke_family(&self, family: uuid::Uuid) -> Result<(), AuthError> {
        let txn = self.writes.begin().await?;
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::Revoked, Expr::value(true))
            .filter(refresh_token::Column::FamilyId.eq(family))
            .exec(&*txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Whether a refresh family still stands: some token of it is not revoked. Read once and
    /// reused until the access generation moves.
    async fn family_stands(&self, family: uuid::Uuid) -> Result<bool, sea_orm::DbErr> {
        let load = async {
            let live = refresh_token::Entity::find()
                .filter(refresh_token::Column::FamilyId.eq(family))
                .filter(refresh_token::Column::Revoked.eq(false))
                .one(&self.db)
                .await?;
            Ok::<_, sea_orm::DbErr>(live.is_some())
        };
        Ok(*self.families.get_or_load(&family, load).await?)
    }

    async fn live_user(&self, claims: &Claims) -> Result<user::Model, AuthError> {
        let id = uuid::Uuid::parse_str(&claims.sub).map_err(|_| AuthError::InvalidToken)?;
        match user::Entity::find_by_id(id).one(&self.db).await? {
            Some(u) if !u.disabled && u.token_version == claims.ver => Ok(u),
            _ => Err(AuthError::InvalidToken),
        }
    }

    /// Exchanges a refresh token for a new pair. Each refresh token works once: presenting a used
    /// one revokes its whole family. Audited as `token_refresh`.
    pub async fn refresh(&self, token: &str, client: &Client) -> Result<TokenPair, AuthError> {
        let claims = self
            .keys
            .verify(token, TokenType::Refresh, self.clock.now())
            .map_err(|_| AuthError::InvalidToken)?;
        let jti = uuid::Uuid::parse_str(&claims.jti).map_err(|_| AuthError::InvalidToken)?;
        let Some(row) = refresh_token::Entity::find_by_id(jti).one(&self.db).await? else {
            return Err(AuthError::InvalidToken);
        };
        let actor = Actor::user(claims.sub.clone(), claims.name.clone());
        if self.config.security.local_password_policy().is_none() {
            // Every family comes from a password sign-in: with local sign-in turned off, it ends.
            self.revoke_family(row.family_id).await?;
            let details = serde_json::json!({ "reason": "local sign-in is turned off" });
            self.audit_auth(
                EventKind::TokenRefresh,
                Outcome::Failure,
                actor,
                client,
                details,
            )
            .await?;
            return Err(AuthError::LocalDisabled);
        }
        // Mark used only if still unused, so two concurrent refreshes cannot both succeed.
        let claimed = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::Used, Expr::value(true))
            .filter(refresh_token::Column::Id.eq(jti))
            .filter(refresh_token::Column::Used.eq(false))
            .filter(refresh_token::Column::Revoked.eq(false))
            .exec(&self.db)
            .await?;
        if claimed.rows_affected != 1 {
            self.revoke_family(row.family_id).await?;
            let details = serde_json::json!({ "reason": "refresh token reused; family revoked" });
            self.audit_auth(
                EventKind::TokenRefresh,
                Outcome::Failure,
                actor,
                client,
                details,
            )
            .await?;
            return Err(AuthError::InvalidToken);
        }
        let user = self.live_user(&claims).await?;
        let pair = self.issue_pair(&user, row.family_id).await?;
        self.audit_auth(
            EventKind::TokenRefresh,
            Outcome::Success,
            actor,
            client,
            serde_json::json!({}),
        )
        .await?;
        Ok(pair)
    }

    /// Revokes the refresh family of the access token's session; audited as `logout`.
    pub async fn logout(&self, access_token: &str, client: &Client) -> Result<(), AuthError> {
        let claims = self
            .keys
            .verify(access_token, TokenType::Access, self.clock.now())
            .map_err(|_| AuthError::InvalidToken)?;
        if let Some(family) = claims
            .fam
            .as_deref()
            .and_then(|f| uuid::Uuid::parse_str(f).ok())
        {
            self.revoke_family(family).await?;
        }
        self.audit_auth(
            EventKind::Logout,
            Outcome::Success,
            Actor::user(claims.sub, claims.name),
            client,
            serde_json::json!({}),
        )
        .await
    }

    /// The principal of the account a verified TLS client certificate names (tls.yml
    /// `client_auth.map_to_user: subject_cn`, the certificate's CN is a username). The TLS layer
    /// has checked the certificate against `client_auth.ca_file`; the account must exist and be
    /// enabled, else `InvalidToken` (401).
    pub async fn authenticate_certificate(&self, username: &str) -> Result<Principal, AuthError> {
        let name = username.trim().to_lowercase();
        let Some(row) = self.find_row(&name).await? else {
            return Err(AuthError::InvalidToken);
        };
        self.live_principal(row.id, None)
            .await?
            .ok_or(AuthError::InvalidToken)
    }

    /// The user a bearer access token names, when its signature and lifetime check out; no
    /// database read (a rate-limit key, not an authentication: see [`Self::authenticate`]).
    pub fn token_subject(&self, access_token: &str) -> Option<String> {
        if access_token.starts_with(super::api_tokens::TOKEN_PREFIX) {
            return None;
        }
        self.keys
            .verify_access(access_token, self.clock.now())
            .ok()
            .map(|claims| claims.sub)
    }

    /// The principal behind a bearer access token: the user must exist, be enabled, the token
    /// must predate no disable or password change, and its sign-in (refresh family) must not have
    /// ended by logout or refresh-token reuse.
    /// A personal API token (`wao_…`, see [`super::api_tokens`]) is taken here too.
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, AuthError> {
        if access_token.starts_with(super::api_tokens::TOKEN_PREFIX) {
            return self.authenticate_api_token(access_token).await;
        }
        let claims = self
            .keys
            .verify_access(access_token, self.clock.now())
            .map_err(|_| AuthError::InvalidToken)?;
        let id = uuid::Uuid::parse_str(&claims.sub).map_err(|_| AuthError::InvalidToken)?;
        let family = claims
            .fam
            .as_deref()
            .and_then(|f| uuid::Uuid::parse_str(f).ok())
            .ok_or(AuthError::InvalidToken)?;
        if !self.family_stands(family).await? {
            return Err(AuthError::InvalidToken);
        }
        self.live_principal(id, Some(claims.ver))
            .await?
            .ok_or(AuthError::InvalidToken)
    }

    /// The principal of an enabled account whose token version is still `version` (when one is
    /// given); `None` when the account is gone, disabled or its credentials changed since. The account is read with
    /// one query and then reused until an account or role changes anywhere (see
    /// [`crate::generation`]), as every authenticated request needs it.
    pub(super) async fn live_principal(
        &self,
        id: uuid::Uuid,
        version: Option<i32>,
    ) -> Result<Option<Principal>, sea_orm::DbErr> {
        let account = self
            .accounts
            .get_or_load(&id, self.load_account(id))
            .await?;
        Ok(match account.as_ref() {
            Some(a) if !a.disabled && version.is_none_or(|v| a.token_version == v) => {
                Some(Principal::User {
                    id: id.to_string(),
                    username: a.username.clone(),
                    roles: a.roles.clone(),
                    permissions: a.permissions.clone(),
                })
            }
            _ => None,
        })
    }

    /// The account joined with its roles and their permissions, in one query.
    async fn load_account(&self, id: uuid::Uuid) -> Result<Option<Account>, sea_orm::DbErr> {
        use sea_orm::{
            ConnectionTrait,
            sea_query::{ExprTrait, Query},
        };
        let stmt = Query::select()
            .column((user::Entity, user::Column::Username))
            .column((user::Entity, user::Column::Disabled))
            .column((user::Entity, user::Column::TokenVersion))
            .column((user_role::Entity, user_role::Column::RoleName))
            .column((role::Entity, role::Column::Permissions))
            .from(user::Entity)
            .left_join(
                user_role::Entity,
                Expr::col((user_role::Entity, user_role::Column::UserId))
                    .equals((user::Entity, user::Column::Id)),
            )
            .left_join(
                role::Entity,
                Expr::col((role::Entity, role::Column::Name))
                    .equals((user_role::Entity, user_role::Column::RoleName)),
            )
            .and_where(Expr::col((user::Entity, user::Column::Id)).eq(id))
            .to_owned();
        let rows = self
            .db
            .query_all_raw(self.db.get_database_backend().build(&stmt))
            .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut roles = Vec::new();
        let mut permissions = std::collections::BTreeSet::new();
        for row in &rows {
            let Some(name) = row.try_get::<Option<String>>("", "role_name")? else {
                continue;
            };
            let granted: Option<serde_json::Value> = row.try_get("", "permissions")?;
            let granted = granted
                .and_then(|p| serde_json::from_value::<Vec<String>>(p).ok())
                .unwrap_or_default();
            permissions.extend(granted.iter().filter_map(|p| p.parse::<Permission>().ok()));
            roles.push(name);
        }
        roles.sort();
        Ok(Some(Account {
            username: first.try_get("", "username")?,
            disabled: first.try_get("", "disabled")?,
            token_version: first.try_get("", "token_version")?,
            roles,
            permissions: permissions.into_iter().collect(),
        }))
    }
}

/// An account as authentication needs it.
#[derive(Debug)]
pub(crate) struct Account {
    username: String,
    disabled: bool,
    token_version: i32,
    roles: Vec<String>,
    permissions: crate::access::PermissionSet,
}
