//! Second factors: TOTP authenticators, recovery codes, the second step of a sign-in, lockout and
//! an administrator's reset (soc2.yml `security.multi_factor_auth`).
//!
//! Every way of signing in (a local or LDAP password, Google) ends its first step in
//! [`Identity::second_step`]: an account with a confirmed factor gets a short-lived challenge
//! instead of a session or tokens, and [`Identity::complete_sign_in_mfa`] /
//! [`Identity::complete_login_mfa`] finish it with a TOTP code or a recovery code. An account
//! whose roles soc2.yml's `multi_factor_roles` name (admins by default) and that has no factor yet
//! gets a session that reaches only the enrolment page (`must_enrol`), and the REST login refuses
//! it with `mfa_enrolment_required`. Personal API tokens are not asked for a second factor: they
//! were created behind one.
//!
//! TOTP secrets are sealed with AES-256-GCM under a key derived from the platform's storage key
//! (bound to the account's id); recovery codes are kept as HMAC-SHA-256 under another derived key.
//! A TOTP step is accepted once. Five wrong second factors in a row lock the step for 15 minutes.

pub mod passkey;
pub mod totp;

use std::collections::BTreeMap;

use aes_gcm::{Aes256Gcm, KeyInit, Nonce, aead::Aead, aead::Payload};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, TransactionTrait, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    Identity, IdentityError,
    auth::{AuthError, Client, TokenPair},
    entities::{mfa_challenge, mfa_factor, mfa_lockout, mfa_recovery_code, user, user_role},
    error::invalid,
    sessions::SessionUser,
};
use crate::{
    access::Principal,
    audit::{Actor, AuditEvent, EventKind, Outcome},
};

/// How long a sign-in waits for its second factor.
pub const CHALLENGE_LIFETIME: chrono::Duration = chrono::Duration::minutes(5);
/// Wrong second factors in a row that lock the step.
pub const MAX_FAILURES: i32 = 5;
/// How long the step stays locked.
pub const LOCKOUT: chrono::Duration = chrono::Duration::minutes(15);
/// Recovery codes in a set.
pub const RECOVERY_CODES: usize = 10;
/// Challenges one account may have waiting at once; the oldest gives way.
const MAX_CHALLENGES: u64 = 5;
/// The browser-session key of a sign-in waiting for its second factor ([`PendingSecondFactor`]).
pub const MFA_PENDING_KEY: &str = "mfa_pending";
/// The `kind` of a TOTP factor.
pub const TOTP: &str = "totp";
/// The issuer authenticator apps show.
const ISSUER: &str = "wasm-as-os";

/// A sign-in waiting in a browser session for its second factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSecondFactor {
    /// The challenge id (the session holds it; the database only its hash).
    pub challenge: String,
    /// Where to go once signed in.
    pub next: String,
}

/// What a person gives as a second factor.
#[derive(Debug, Clone)]
pub enum SecondFactor {
    /// A code from the authenticator app.
    Totp(String),
    /// One of the recovery codes.
    RecoveryCode(String),
    /// A passkey's answer: the JSON of the browser's `PublicKeyCredential`, for the options of
    /// [`Identity::passkey_sign_in_options`].
    Passkey(String),
}

impl SecondFactor {
    /// One input field takes both: six digits are a TOTP code, anything else a recovery code.
    pub fn from_input(code: &str) -> Self {
        if totp::normalise(code).is_some() {
            Self::Totp(code.to_string())
        } else {
            Self::RecoveryCode(code.to_string())
        }
    }

    fn factor(&self) -> &'static str {
        match self {
            Self::Totp(_) => TOTP,
            Self::RecoveryCode(_) => "recovery_code",
            Self::Passkey(_) => passkey::PASSKEY,
        }
    }
}

/// Where the first step of a sign-in leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInOutcome {
    /// Signed in (with `must_enrol` set when a factor must be enrolled first).
    SignedIn(SessionUser),
    /// A second factor is needed: the challenge id to answer.
    SecondFactor { challenge: String },
}

/// A TOTP enrolment waiting for its first code: the secret for manual entry and the URI the QR
/// code holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpSetup {
    pub secret: String,
    pub uri: String,
    /// The URI as a QR code, an SVG document drawn here (no outside service sees the secret).
    pub qr_svg: String,
}

/// One's second factors, as the account page shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaStatus {
    /// When the authenticator was enrolled and last used.
    pub totp: Option<FactorInfo>,
    /// The registered passkeys.
    pub passkeys: Vec<passkey::PasskeyInfo>,
    /// Unused recovery codes.
    pub recovery_codes_left: u64,
    /// Whether soc2.yml requires a factor of this account's roles.
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorInfo {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// An account's factors, as the Users page shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFactors {
    pub totp: bool,
    pub passkeys: u64,
    pub recovery_codes_left: u64,
}

/// The keys of the second factors, derived from the platform's storage key.
#[derive(Clone)]
pub struct MfaKeys {
    cipher: Aes256Gcm,
    codes: [u8; 32],
}

impl std::fmt::Debug for MfaKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaKeys(..)")
    }
}

fn derive(key: &[u8; 32], label: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

impl MfaKeys {
    pub fn new(storage_key: &[u8; 32]) -> Self {
        let seal = derive(storage_key, "wasm-as-os/mfa/totp-secret/v1");
        Self {
            cipher: Aes256Gcm::new((&seal).into()),
            codes: derive(storage_key, "wasm-as-os/mfa/recovery-code/v1"),
        }
    }

    /// `hex(nonce || ciphertext)`, bound to the account.
    fn seal(&self, user: uuid::Uuid, secret: &[u8]) -> Result<String, IdentityError> {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: user.as_bytes(),
                },
            )
            .map_err(|_| IdentityError::Db(sea_orm::DbErr::Custom("cannot seal".into())))?;
        Ok(hex::encode([nonce.as_slice(), &sealed].concat()))
    }

    fn open(&self, user: uuid::Uuid, sealed: &str) -> Option<Vec<u8>> {
        let bytes = hex::decode(sealed).ok()?;
        let (nonce, body) = bytes.split_at_checked(12)?;
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: user.as_bytes(),
                },
            )
            .ok()
    }

    fn code_hash(&self, user: uuid::Uuid, code: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.codes)
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
        mac.update(user.as_bytes());
        mac.update(code.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// A recovery code as typed, reduced to its ten characters (case, spaces and dashes ignored), or
/// `None` when it cannot be one.
pub fn normalise_recovery_code(code: &str) -> Option<String> {
    let plain: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (plain.len() == 10 && plain.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))).then_some(plain)
}

/// Letters and digits that cannot be mistaken for one another (no 0/o, 1/l/i).
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

pub(crate) fn new_recovery_code() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let chars: String = (0..10)
        .map(|_| char::from(RECOVERY_ALPHABET[rng.random_range(0..RECOVERY_ALPHABET.len())]))
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// `text` as a QR code in SVG (empty when it does not fit in one, which an otpauth URI always does).
pub fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build();
            // Inline in HTML: the XML declaration has no place there.
            svg.find("<svg")
                .map_or(svg.clone(), |at| svg[at..].to_string())
        }
        Err(_) => String::new(),
    }
}

fn challenge_key(challenge: &str) -> String {
    hex::encode(Sha256::digest(challenge.as_bytes()))
}

fn me(principal: &Principal) -> Result<uuid::Uuid, IdentityError> {
    principal
        .id()
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .ok_or_else(|| IdentityError::Forbidden("a signed-in account".into()))
}

/// Why a second factor was refused, for the audit event and the metric.
enum Refusal {
    UnknownChallenge,
    Expired,
    Locked(u64),
    Wrong { locked_now: bool },
}

impl Identity {
    /// Whether soc2.yml requires a second factor of someone holding `roles`.
    pub fn mfa_required_for(&self, roles: &[String]) -> bool {
        let live = self.settings.get();
        let security = &live.soc2.soc2.security;
        security.multi_factor_auth
            && roles
                .iter()
                .any(|r| security.multi_factor_roles.iter().any(|m| m == r))
    }

    async fn role_names(&self, user: uuid::Uuid) -> Result<Vec<String>, sea_orm::DbErr> {
        Ok(user_role::Entity::find()
            .filter(user_role::Column::UserId.eq(user))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|l| l.role_name)
            .collect())
    }

    /// A factor of `user` waiting for its confirmation (a first TOTP code, the browser's answer
    /// to a passkey registration), its secret or state `sealed`.
    fn new_factor(
        &self,
        user: uuid::Uuid,
        kind: &str,
        name: &str,
        sealed: String,
    ) -> mfa_factor::ActiveModel {
        mfa_factor::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            user_id: Set(user),
            kind: Set(kind.to_string()),
            name: Set(name.to_string()),
            secret: Set(sealed),
            confirmed: Set(false),
            last_step: Set(None),
            created_at: Set(self.clock.now()),
            last_used_at: Set(None),
            credential_key: Set(None),
        }
    }

    /// Records a refused enrolment (a wrong first code, a refused passkey) as `mfa_failure` with
    /// `stage: enrolment`.
    async fn enrolment_failed(
        &self,
        principal: &Principal,
        client: &Client,
        factor: &str,
        reason: &str,
    ) -> Result<(), IdentityError> {
        let actor = Actor {
            id: principal.id().map(str::to_string),
            name: principal.name().to_string(),
        };
        let details =
            serde_json::json!({ "factor": factor, "reason": reason, "stage": "enrolment" });
        let event = AuditEvent::new(EventKind::MfaFailure, actor, Outcome::Failure)
            .with_client(client.ip.clone(), client.user_agent.clone())
            .with_details(details);
        self.audit.record(event).await?;
        Ok(())
    }

    /// Whether the account has any confirmed second factor.
    async fn has_factor(&self, user: uuid::Uuid) -> Result<bool, sea_orm::DbErr> {
        Ok(mfa_factor::Entity::find()
            .filter(mfa_factor::Column::UserId.eq(user))
            .filter(mfa_factor::Column::Confirmed.eq(true))
            .count(&self.db)
            .await?
            > 0)
    }

    /// How the account can answer a second-factor challenge: `totp`, `passkey` (what it has
    /// enrolled) and `recovery_code`.
    pub(super) async fn factor_methods(
        &self,
        user: uuid::Uuid,
    ) -> Result<Vec<String>, sea_orm::DbErr> {
        let kinds: Vec<String> = mfa_factor::Entity::find()
            .filter(mfa_factor::Column::UserId.eq(user))
            .filter(mfa_factor::Column::Confirmed.eq(true))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|f| f.kind)
            .collect();
        let mut methods: Vec<String> = [TOTP, passkey::PASSKEY]
            .into_iter()
            .filter(|k| kinds.iter().any(|have| have == k))
            .map(str::to_string)
            .collect();
        methods.push("recovery_code".into());
        Ok(methods)
    }

    /// How the sign-in waiting for `challenge` can be answered (see [`Self::factor_methods`]);
    /// `None` when no such sign-in waits.
    pub async fn challenge_methods(
        &self,
        challenge: &str,
    ) -> Result<Option<Vec<String>>, IdentityError> {
        let waiting = mfa_challenge::Entity::find_by_id(challenge_key(challenge.trim()))
            .one(&self.db)
            .await?
            .filter(|w| w.expires_at > self.clock.now());
        match waiting {
            Some(w) => Ok(Some(self.factor_methods(w.user_id).await?)),
            None => Ok(None),
        }
    }

    async fn confirmed_totp(
        &self,
        user: uuid::Uuid,
    ) -> Result<Option<mfa_factor::Model>, sea_orm::DbErr> {
        mfa_factor::Entity::find()
            .filter(mfa_factor::Column::UserId.eq(user))
            .filter(mfa_factor::Column::Kind.eq(TOTP))
            .filter(mfa_factor::Column::Confirmed.eq(true))
            .one(&self.db)
            .await
    }

    /// After a first factor (`method`: session or password; `provider`: local, ldap, google)
    /// succeeded for `row`: signed in, or a challenge for the second factor.
    pub(super) async fn second_step(
        &self,
        row: &user::Model,
        method: &str,
        provider: &str,
    ) -> Result<SignInOutcome, sea_orm::DbErr> {
        if self.has_factor(row.id).await? {
            let challenge = self.create_challenge(row.id, method, provider).await?;
            return Ok(SignInOutcome::SecondFactor { challenge });
        }
        let must_enrol = self.mfa_required_for(&self.role_names(row.id).await?);
        Ok(SignInOutcome::SignedIn(SessionUser {
            user_id: row.id.to_string(),
            version: row.token_version,
            signed_in_at: self.clock.now(),
            must_enrol,
        }))
    }

    async fn create_challenge(
        &self,
        user: uuid::Uuid,
        method: &str,
        provider: &str,
    ) -> Result<String, sea_orm::DbErr> {
        let now = self.clock.now();
        mfa_challenge::Entity::delete_many()
            .filter(mfa_challenge::Column::ExpiresAt.lte(now))
            .exec(&self.db)
            .await?;
        let waiting = mfa_challenge::Entity::find()
            .filter(mfa_challenge::Column::UserId.eq(user))
            .order_by_asc(mfa_challenge::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let surplus = (waiting.len() as u64 + 1).saturating_sub(MAX_CHALLENGES);
        for old in waiting.iter().take(surplus as usize) {
            mfa_challenge::Entity::delete_by_id(old.id.clone())
                .exec(&self.db)
                .await?;
        }
        let challenge = hex::encode(rand::random::<[u8; 32]>());
        mfa_challenge::ActiveModel {
            id: Set(challenge_key(&challenge)),
            user_id: Set(user),
            method: Set(method.chars().take(32).collect()),
            provider: Set(provider.chars().take(32).collect()),
            created_at: Set(now),
            expires_at: Set(now + CHALLENGE_LIFETIME),
            webauthn: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(challenge)
    }

    /// Finishes a browser sign-in with its second factor.
    pub async fn complete_sign_in_mfa(
        &self,
        challenge: &str,
        answer: &SecondFactor,
        client: &Client,
    ) -> Result<SessionUser, AuthError> {
        let row = self.pass_second_factor(challenge, answer, client).await?;
        Ok(SessionUser {
            user_id: row.id.to_string(),
            version: row.token_version,
            signed_in_at: self.clock.now(),
            must_enrol: false,
        })
    }

    /// Finishes a REST login (`POST /auth/mfa`) with its second factor: a token pair.
    pub async fn complete_login_mfa(
        &self,
        challenge: &str,
        answer: &SecondFactor,
        client: &Client,
    ) -> Result<TokenPair, AuthError> {
        let row = self.pass_second_factor(challenge, answer, client).await?;
        self.issue_pair(&row, uuid::Uuid::now_v7()).await
    }

    async fn pass_second_factor(
        &self,
        challenge: &str,
        answer: &SecondFactor,
        client: &Client,
    ) -> Result<user::Model, AuthError> {
        let now = self.clock.now();
        let factor = answer.factor();
        let found = mfa_challenge::Entity::find_by_id(challenge_key(challenge.trim()))
            .one(&self.db)
            .await?;
        let Some(waiting) = found else {
            self.refuse(None, factor, Refusal::UnknownChallenge, client)
                .await?;
            return Err(AuthError::MfaChallenge);
        };
        let row = user::Entity::find_by_id(waiting.user_id)
            .one(&self.db)
            .await?
            .filter(|r| !r.disabled);
        let Some(row) = row else {
            mfa_challenge::Entity::delete_by_id(waiting.id)
                .exec(&self.db)
                .await?;
            return Err(AuthError::InvalidCredentials);
        };
        if waiting.expires_at <= now {
            mfa_challenge::Entity::delete_by_id(waiting.id)
                .exec(&self.db)
                .await?;
            self.refuse(Some(&row), factor, Refusal::Expired, client)
                .await?;
            return Err(AuthError::MfaChallenge);
        }
        let lockout = mfa_lockout::Entity::find_by_id(row.id)
            .one(&self.db)
            .await?;
        if let Some(until) = lockout
            .as_ref()
            .and_then(|l| l.locked_until)
            .filter(|until| *until > now)
        {
            let wait = (until - now).num_seconds().max(1) as u64;
            self.refuse(Some(&row), factor, Refusal::Locked(wait), client)
                .await?;
            return Err(AuthError::MfaLocked { retry_after: wait });
        }
        let remaining = match answer {
            SecondFactor::Totp(code) => self.use_totp(&row, code).await?.then_some(None),
            SecondFactor::RecoveryCode(code) => self.use_recovery_code(&row, code).await?.map(Some),
            SecondFactor::Passkey(credential) => self
                .use_passkey(&row, &waiting, credential)
                .await?
                .then_some(None),
        };
        let Some(remaining) = remaining else {
            let locked_now = self.count_failure(row.id, now).await?;
            self.refuse(Some(&row), factor, Refusal::Wrong { locked_now }, client)
                .await?;
            return Err(if locked_now {
                AuthError::MfaLocked {
                    retry_after: LOCKOUT.num_seconds() as u64,
                }
            } else {
                AuthError::MfaWrongCode
            });
        };
        mfa_challenge::Entity::delete_by_id(waiting.id.clone())
            .exec(&self.db)
            .await?;
        mfa_lockout::Entity::delete_by_id(row.id)
            .exec(&self.db)
            .await?;
        let actor = Actor::user(row.id.to_string(), row.username.clone());
        let details = serde_json::json!({
            "factor": factor,
            "method": waiting.method,
            "provider": waiting.provider,
        });
        self.audit_auth(
            EventKind::MfaSuccess,
            Outcome::Success,
            actor.clone(),
            client,
            details,
        )
        .await?;
        if let Some(left) = remaining {
            let details = serde_json::json!({ "remaining": left });
            self.audit_auth(
                EventKind::RecoveryCodeUsed,
                Outcome::Success,
                actor,
                client,
                details,
            )
            .await?;
        }
        Ok(row)
    }

    /// Counts a wrong second factor of `user`; whether it locked the step now. The count is an
    /// increment in the database, so concurrent wrong answers (on any replica) each count.
    async fn count_failure(
        &self,
        user: uuid::Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, sea_orm::DbErr> {
        let first = mfa_lockout::ActiveModel {
            user_id: Set(user),
            failures: Set(0),
            locked_until: Set(None),
        };
        mfa_lockout::Entity::insert(first)
            .on_conflict_do_nothing_on([mfa_lockout::Column::UserId])
            .exec(&self.db)
            .await?;
        mfa_lockout::Entity::update_many()
            .col_expr(
                mfa_lockout::Column::Failures,
                sea_orm::sea_query::ExprTrait::add(Expr::col(mfa_lockout::Column::Failures), 1),
            )
            .filter(mfa_lockout::Column::UserId.eq(user))
            .exec(&self.db)
            .await?;
        // The one whose increment reached the limit locks (and restarts the count).
        let locked = mfa_lockout::Entity::update_many()
            .col_expr(mfa_lockout::Column::Failures, Expr::value(0))
            .col_expr(
                mfa_lockout::Column::LockedUntil,
                Expr::value(Some(now + LOCKOUT)),
            )
            .filter(mfa_lockout::Column::UserId.eq(user))
            .filter(mfa_lockout::Column::Failures.gte(MAX_FAILURES))
            .exec(&self.db)
            .await?;
        Ok(locked.rows_affected > 0)
    }

    /// Whether `code` is the account's TOTP code for a step not used before; claims the step.
    async fn use_totp(&self, row: &user::Model, code: &str) -> Result<bool, AuthError> {
        let Some(factor) = self.confirmed_totp(row.id).await? else {
            return Ok(false);
        };
        let Some(secret) = self.mfa.open(row.id, &factor.secret) else {
            tracing::error!(user = %row.id, "a TOTP secret cannot be opened with this storage key");
            return Ok(false);
        };
        let now_step = totp::step_at(self.clock.now().timestamp().max(0) as u64);
        let last = factor.last_step.map(|s| s.max(0) as u64);
        let Some(step) = totp::matching_step(&secret, code, now_step, last) else {
            return Ok(false);
        };
        // Claim the step only if no concurrent sign-in claimed it (or a later one) first.
        let step = step as i64;
        let claimed = mfa_factor::Entity::update_many()
            .col_expr(mfa_factor::Column::LastStep, Expr::value(step))
            .col_expr(
                mfa_factor::Column::LastUsedAt,
                Expr::value(self.clock.now()),
            )
            .filter(mfa_factor::Column::Id.eq(factor.id))
            .filter(
                Condition::any()
                    .add(mfa_factor::Column::LastStep.is_null())
                    .add(mfa_factor::Column::LastStep.lt(step)),
            )
            .exec(&self.db)
            .await?;
        Ok(claimed.rows_affected == 1)
    }

    /// Spends a recovery code: the number left afterwards, or `None` when it is not an unused one.
    async fn use_recovery_code(
        &self,
        row: &user::Model,
        code: &str,
    ) -> Result<Option<u64>, AuthError> {
        let Some(plain) = normalise_recovery_code(code) else {
            return Ok(None);
        };
        let spent = mfa_recovery_code::Entity::update_many()
            .col_expr(
                mfa_recovery_code::Column::UsedAt,
                Expr::value(self.clock.now()),
            )
            .filter(mfa_recovery_code::Column::UserId.eq(row.id))
            .filter(mfa_recovery_code::Column::CodeHash.eq(self.mfa.code_hash(row.id, &plain)))
            .filter(mfa_recovery_code::Column::UsedAt.is_null())
            .exec(&self.db)
            .await?;
        if spent.rows_affected != 1 {
            return Ok(None);
        }
        Ok(Some(self.recovery_codes_left(row.id).await?))
    }

    async fn recovery_codes_left(&self, user: uuid::Uuid) -> Result<u64, sea_orm::DbErr> {
        mfa_recovery_code::Entity::find()
            .filter(mfa_recovery_code::Column::UserId.eq(user))
            .filter(mfa_recovery_code::Column::UsedAt.is_null())
            .count(&self.db)
            .await
    }

    /// Records a refused second factor as `mfa_failure` (counted as
    /// `authentication_failures_total{reason="mfa_failed"}`).
    async fn refuse(
        &self,
        row: Option<&user::Model>,
        factor: &str,
        why: Refusal,
        client: &Client,
    ) -> Result<(), AuthError> {
        let actor = match row {
            Some(r) => Actor::user(r.id.to_string(), r.username.clone()),
            None => Actor {
                id: None,
                name: "anonymous".to_string(),
            },
        };
        let mut details = serde_json::json!({ "factor": factor });
        match why {
            Refusal::UnknownChallenge => details["reason"] = "unknown_challenge".into(),
            Refusal::Expired => details["reason"] = "challenge_expired".into(),
            Refusal::Locked(wait) => {
                details["reason"] = "locked".into();
                details["retry_after"] = wait.into();
            }
            Refusal::Wrong { locked_now } => {
                details["reason"] = "wrong_code".into();
                if locked_now {
                    details["locked_minutes"] = LOCKOUT.num_minutes().into();
                }
            }
        }
        self.audit_auth(
            EventKind::MfaFailure,
            Outcome::Failure,
            actor,
            client,
            details,
        )
        .await
    }

    /// The signed-in account's second factors.
    pub async fn mfa_status(&self, principal: &Principal) -> Result<MfaStatus, IdentityError> {
        let id = me(principal)?;
        let totp = self.confirmed_totp(id).await?.map(|f| FactorInfo {
            name: f.name,
            created_at: f.created_at,
            last_used_at: f.last_used_at,
        });
        Ok(MfaStatus {
            totp,
            passkeys: self.passkeys(principal).await?,
            recovery_codes_left: self.recovery_codes_left(id).await?,
            required: self.mfa_required_for(&self.role_names(id).await?),
        })
    }

    /// The account page's view: the factors, and, while no authenticator app is enrolled, its
    /// waiting enrolment (started on the first view, shown again after).
    pub async fn mfa_page(
        &self,
        principal: &Principal,
    ) -> Result<(MfaStatus, Option<TotpSetup>), IdentityError> {
        let status = self.mfa_status(principal).await?;
        let setup = match status.totp {
            Some(_) => None,
            None => Some(self.totp_setup(principal).await?),
        };
        Ok((status, setup))
    }

    /// Starts (or shows again) enrolling an authenticator app: the secret waits, unconfirmed,
    /// until [`Self::confirm_totp`] gets a code from it. One waits at a time.
    pub async fn totp_setup(&self, principal: &Principal) -> Result<TotpSetup, IdentityError> {
        let id = me(principal)?;
        if self.confirmed_totp(id).await?.is_some() {
            return Err(IdentityError::Conflict(
                "an authenticator app is already enrolled: remove it first to enrol another".into(),
            ));
        }
        let waiting = mfa_factor::Entity::find()
            .filter(mfa_factor::Column::UserId.eq(id))
            .filter(mfa_factor::Column::Kind.eq(TOTP))
            .filter(mfa_factor::Column::Confirmed.eq(false))
            .one(&self.db)
            .await?;
        let secret = match waiting.and_then(|f| self.mfa.open(id, &f.secret)) {
            Some(secret) => secret,
            None => {
                mfa_factor::Entity::delete_many()
                    .filter(mfa_factor::Column::UserId.eq(id))
                    .filter(mfa_factor::Column::Kind.eq(TOTP))
                    .filter(mfa_factor::Column::Confirmed.eq(false))
                    .exec(&self.db)
                    .await?;
                let secret: [u8; totp::SECRET_BYTES] = rand::random();
                self.new_factor(id, TOTP, "Authenticator app", self.mfa.seal(id, &secret)?)
                    .insert(&self.db)
                    .await?;
                secret.to_vec()
            }
        };
        let uri = totp::otpauth_uri(ISSUER, principal.name(), &secret);
        Ok(TotpSetup {
            secret: totp::base32(&secret),
            qr_svg: qr_svg(&uri),
            uri,
        })
    }

    /// Confirms the waiting authenticator with a first code: it counts from now on, and a fresh
    /// set of recovery codes is returned (shown once). Audited as `mfa_enrolled`; a wrong code as
    /// `mfa_failure`, and nothing changes.
    pub async fn confirm_totp(
        &self,
        principal: &Principal,
        code: &str,
        client: &Client,
    ) -> Result<Vec<String>, IdentityError> {
        let id = me(principal)?;
        let waiting = mfa_factor::Entity::find()
            .filter(mfa_factor::Column::UserId.eq(id))
            .filter(mfa_factor::Column::Kind.eq(TOTP))
            .filter(mfa_factor::Column::Confirmed.eq(false))
            .one(&self.db)
            .await?
            .ok_or_else(|| invalid("code", "has no enrolment waiting for it: start again"))?;
        let secret = self
            .mfa
            .open(id, &waiting.secret)
            .ok_or_else(|| invalid("code", "has no enrolment waiting for it: start again"))?;
        let now_step = totp::step_at(self.clock.now().timestamp().max(0) as u64);
        let Some(step) = totp::matching_step(&secret, code, now_step, None) else {
            self.enrolment_failed(principal, client, TOTP, "wrong_code")
                .await?;
            let message = if totp::normalise(code).is_none() {
                "must be the 6 digits your app shows"
            } else {
                "is not the code your app shows now: check the phone's clock and try the next one"
            };
            return Err(invalid("code", message));
        };
        let first = !self.has_factor(id).await?;
        let codes: Vec<String> = if first {
            (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect()
        } else {
            Vec::new()
        };
        let txn = self.db.begin().await?;
        let mut active: mfa_factor::ActiveModel = waiting.into();
        active.confirmed = Set(true);
        active.last_step = Set(Some(step as i64));
        active.last_used_at = Set(Some(self.clock.now()));
        active.update(&txn).await?;
        if first {
            self.replace_recovery_codes(&txn, id, &codes).await?;
        }
        txn.commit().await?;
        self.record_mfa(
            principal,
            EventKind::MfaEnrolled,
            id,
            serde_json::json!({ "factor": TOTP }),
        )
        .await?;
        Ok(codes)
    }

    async fn replace_recovery_codes(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        user: uuid::Uuid,
        codes: &[String],
    ) -> Result<(), sea_orm::DbErr> {
        mfa_recovery_code::Entity::delete_many()
            .filter(mfa_recovery_code::Column::UserId.eq(user))
            .exec(txn)
            .await?;
        let now = self.clock.now();
        let rows = codes.iter().filter_map(|code| {
            let plain = normalise_recovery_code(code)?;
            Some(mfa_recovery_code::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                user_id: Set(user),
                code_hash: Set(self.mfa.code_hash(user, &plain)),
                created_at: Set(now),
                used_at: Set(None),
            })
        });
        mfa_recovery_code::Entity::insert_many(rows)
            .exec(txn)
            .await?;
        Ok(())
    }

    /// A new set of recovery codes (the old set stops working); needs an enrolled factor.
    pub async fn regenerate_recovery_codes(
        &self,
        principal: &Principal,
    ) -> Result<Vec<String>, IdentityError> {
        let id = me(principal)?;
        if !self.has_factor(id).await? {
            return Err(IdentityError::Conflict(
                "recovery codes go with a second factor: enrol an authenticator app or a passkey first".into(),
            ));
        }
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let txn = self.db.begin().await?;
        self.replace_recovery_codes(&txn, id, &codes).await?;
        txn.commit().await?;
        self.record_mfa(
            principal,
            EventKind::MfaEnrolled,
            id,
            serde_json::json!({ "factor": "recovery_codes", "regenerated": true }),
        )
        .await?;
        Ok(codes)
    }

    /// Removes one's authenticator app; the last factor of an account whose role requires one
    /// (soc2.yml) cannot be removed. Without any factor left the recovery codes go too. Audited as
    /// `mfa_removed`.
    pub async fn remove_totp(&self, principal: &Principal) -> Result<(), IdentityError> {
        let id = me(principal)?;
        let Some(row) = self.confirmed_totp(id).await? else {
            return Err(IdentityError::Conflict(
                "no authenticator app is enrolled".into(),
            ));
        };
        self.remove_factor(principal, id, row).await
    }

    async fn remove_factor(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
        row: mfa_factor::Model,
    ) -> Result<(), IdentityError> {
        let confirmed = mfa_factor::Entity::find()
            .filter(mfa_factor::Column::UserId.eq(id))
            .filter(mfa_factor::Column::Confirmed.eq(true))
            .count(&self.db)
            .await?;
        if confirmed <= 1 && self.mfa_required_for(&self.role_names(id).await?) {
            return Err(IdentityError::Conflict(
                "your role requires a second factor (soc2.yml): the last one cannot be removed; add another first, or ask an administrator to reset it".into(),
            ));
        }
        if confirmed <= 1 {
            self.drop_factors(id).await?;
        } else {
            mfa_factor::Entity::delete_by_id(row.id)
                .exec(&self.db)
                .await?;
        }
        self.record_mfa(
            principal,
            EventKind::MfaRemoved,
            id,
            serde_json::json!({ "factor": row.kind, "name": row.name }),
        )
        .await
    }

    async fn drop_factors(&self, id: uuid::Uuid) -> Result<(), sea_orm::DbErr> {
        let txn = self.db.begin().await?;
        mfa_factor::Entity::delete_many()
            .filter(mfa_factor::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        mfa_recovery_code::Entity::delete_many()
            .filter(mfa_recovery_code::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        mfa_challenge::Entity::delete_many()
            .filter(mfa_challenge::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        mfa_lockout::Entity::delete_by_id(id).exec(&txn).await?;
        txn.commit().await
    }

    /// Removes every second factor of the account `id` (`users:update`) and ends its sessions:
    /// it signs in with its password alone next time, and enrols again where soc2.yml requires.
    /// Audited as `mfa_reset`.
    pub async fn reset_mfa(&self, principal: &Principal, id: &str) -> Result<(), IdentityError> {
        self.authorize(principal, "users", "update", id).await?;
        let row = self.row_by_id(id).await?;
        self.drop_factors(row.id).await?;
        self.end_sessions_of(row.id).await?;
        self.record_mfa(
            principal,
            EventKind::MfaReset,
            row.id,
            serde_json::json!({ "username": row.username }),
        )
        .await
    }

    /// Each account's second factors, for the Users page (`users:read`).
    pub async fn factor_summary(
        &self,
        principal: &Principal,
    ) -> Result<BTreeMap<String, UserFactors>, IdentityError> {
        self.authorize(principal, "users", "read", "*").await?;
        let mut out: BTreeMap<String, UserFactors> = BTreeMap::new();
        for f in mfa_factor::Entity::find()
            .filter(mfa_factor::Column::Confirmed.eq(true))
            .all(&self.db)
            .await?
        {
            let entry = out.entry(f.user_id.to_string()).or_default();
            entry.totp |= f.kind == TOTP;
            entry.passkeys += u64::from(f.kind == passkey::PASSKEY);
        }
        for c in mfa_recovery_code::Entity::find()
            .filter(mfa_recovery_code::Column::UsedAt.is_null())
            .all(&self.db)
            .await?
        {
            out.entry(c.user_id.to_string())
                .or_default()
                .recovery_codes_left += 1;
        }
        Ok(out)
    }

    async fn record_mfa(
        &self,
        principal: &Principal,
        kind: EventKind,
        user: uuid::Uuid,
        details: serde_json::Value,
    ) -> Result<(), IdentityError> {
        let actor = Actor {
            id: principal.id().map(str::to_string),
            name: principal.name().to_string(),
        };
        let event = AuditEvent::new(kind, actor, Outcome::Success)
            .with_target("user", user.to_string())
            .with_details(details);
        self.audit.record(event).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_ten_unambiguous_characters_in_two_groups() {
        for _ in 0..50 {
            let code = new_recovery_code();
            assert_eq!(code.len(), 11);
            assert_eq!(&code[5..6], "-");
            assert!(normalise_recovery_code(&code).is_some(), "{code}");
        }
        assert_eq!(
            normalise_recovery_code(" ABCDE-fghjk ").as_deref(),
            Some("abcdefghjk")
        );
        assert_eq!(
            normalise_recovery_code("abcde-fghj0"),
            None,
            "0 is not in the alphabet"
        );
        assert_eq!(normalise_recovery_code("abcde"), None);
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_account_and_key() {
        let keys = MfaKeys::new(&[7u8; 32]);
        let alice = uuid::Uuid::now_v7();
        let sealed = keys.seal(alice, b"secret bytes").unwrap();
        assert!(!sealed.contains(&hex::encode(b"secret bytes")));
        assert_eq!(
            keys.open(alice, &sealed).as_deref(),
            Some(&b"secret bytes"[..])
        );
        assert_eq!(keys.open(uuid::Uuid::now_v7(), &sealed), None);
        assert_eq!(MfaKeys::new(&[8u8; 32]).open(alice, &sealed), None);
        assert_eq!(keys.open(alice, "zz"), None);
    }

    #[test]
    fn one_field_takes_both_kinds_of_code() {
        assert!(matches!(
            SecondFactor::from_input("123 456"),
            SecondFactor::Totp(_)
        ));
        assert!(matches!(
            SecondFactor::from_input("abcde-fghjk"),
            SecondFactor::RecoveryCode(_)
        ));
    }
}
