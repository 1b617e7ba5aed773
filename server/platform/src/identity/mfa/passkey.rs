//! Passkeys and security keys (WebAuthn) as a second factor, on `webauthn-rs`.
//!
//! A ceremony takes two requests: the options the browser hands to `navigator.credentials`, and
//! the credential it answers with. Between the two the ceremony's state waits in the database (an
//! unconfirmed `mfa_factors` row for a registration, the sign-in's `mfa_challenges` row for an
//! assertion), so any replica can finish what another started, and each state is used once.
//!
//! The relying party is the host the browser shows: the ceremony is bound to the origin of the
//! page that started it (the adapters pass only origins the server answers to: the CSRF layer's
//! public origins), and the browser's signed client data must name that same origin, so an
//! assertion made on another site is refused. WebAuthn needs a host name, not an IP address.
//! A passkey must verify its user (PIN or biometrics), as passkeys do.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};

use super::{CHALLENGE_LIFETIME, RECOVERY_CODES, me, new_recovery_code};
use crate::{
    access::Principal,
    audit::EventKind,
    identity::{
        Identity, IdentityError,
        auth::{AuthError, Client},
        entities::{mfa_challenge, mfa_factor, user},
        error::invalid,
    },
};

/// The `kind` of a passkey factor.
pub const PASSKEY: &str = "passkey";
/// Passkeys one account may register.
pub const MAX_PASSKEYS: u64 = 10;
/// The longest name a passkey may have.
pub const NAME_MAX: usize = 64;
/// The largest credential a browser sends back (attestation objects are a few hundred bytes to a
/// few kilobytes).
pub const MAX_CREDENTIAL: usize = 64 * 1024;

/// What the browser passes to `navigator.credentials.create()` or `.get()` (the `publicKey`
/// member, in the JSON form `PublicKeyCredential.parse…OptionsFromJSON` reads), and the ceremony
/// to name when answering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyOptions {
    pub ceremony: String,
    pub public_key: serde_json::Value,
}

/// A registered passkey, as the account page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyInfo {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A ceremony's state and the origin it was started for.
#[derive(Serialize, Deserialize)]
struct Ceremony<S> {
    origin: String,
    state: S,
}

/// The relying party for a page at `origin`: its host is the RP ID.
fn relying_party(origin: &str) -> Result<Webauthn, String> {
    let url = Url::parse(origin).map_err(|_| format!("\"{origin}\" is not an origin"))?;
    let Some(host) = url.domain() else {
        return Err(
            "passkeys need the dashboard opened by a host name (such as localhost or wasm.example.com), not an IP address"
                .into(),
        );
    };
    let host = host.to_string();
    WebauthnBuilder::new(&host, &url)
        .and_then(|b| b.rp_name("wasm-as-os").build())
        .map_err(|e| format!("passkeys cannot be used at {origin}: {e}"))
}

fn credential_key(id: &[u8]) -> String {
    hex::encode(Sha256::digest(id))
}

/// A passkey's name as given: trimmed, 1 to 64 characters, no control characters.
fn valid_name(name: &str) -> Result<String, IdentityError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid("name", "is required: say which device this is"));
    }
    if name.chars().count() > NAME_MAX {
        return Err(invalid("name", "must be at most 64 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("name", "must not contain control characters"));
    }
    Ok(name.to_string())
}

fn parse<T: DeserializeOwned>(json: &str) -> Option<T> {
    (json.len() <= MAX_CREDENTIAL)
        .then(|| serde_json::from_str(json).ok())
        .flatten()
}

impl Identity {
    pub(super) async fn confirmed_passkeys(
        &self,
        user: uuid::Uuid,
    ) -> Result<Vec<mfa_factor::Model>, sea_orm::DbErr> {
        mfa_factor::Entity::find()
            .filter(mfa_factor::Column::UserId.eq(user))
            .filter(mfa_factor::Column::Kind.eq(PASSKEY))
            .filter(mfa_factor::Column::Confirmed.eq(true))
            .order_by_asc(mfa_factor::Column::CreatedAt)
            .all(&self.db)
            .await
    }

    fn open_json<T: DeserializeOwned>(&self, user: uuid::Uuid, sealed: &str) -> Option<T> {
        let bytes = self.mfa.open(user, sealed)?;
        serde_json::from_slice(&bytes).ok()
    }

    fn seal_json<T: Serialize>(
        &self,
        user: uuid::Uuid,
        value: &T,
    ) -> Result<String, IdentityError> {
        let json = serde_json::to_vec(value)
            .map_err(|e| IdentityError::Db(sea_orm::DbErr::Custom(e.to_string())))?;
        self.mfa.seal(user, &json)
    }

    /// The signed-in account's passkeys.
    pub async fn passkeys(&self, principal: &Principal) -> Result<Vec<PasskeyInfo>, IdentityError> {
        let id = me(principal)?;
        Ok(self
            .confirmed_passkeys(id)
            .await?
            .into_iter()
            .map(|f| PasskeyInfo {
                id: f.id.to_string(),
                name: f.name,
                created_at: f.created_at,
                last_used_at: f.last_used_at,
            })
            .collect())
    }

    /// Starts registering a passkey for the signed-in account on the page at `origin`: the
    /// options for `navigator.credentials.create()`. One registration waits at a time.
    pub async fn start_passkey_registration(
        &self,
        principal: &Principal,
        origin: &str,
    ) -> Result<PasskeyOptions, IdentityError> {
        let id = me(principal)?;
        let rp = relying_party(origin).map_err(|m| invalid("passkey", &m))?;
        let existing = self.confirmed_passkeys(id).await?;
        if existing.len() as u64 >= MAX_PASSKEYS {
            return Err(IdentityError::Conflict(format!(
                "an account holds at most {MAX_PASSKEYS} passkeys: remove one first"
            )));
        }
        let exclude = existing
            .iter()
            .filter_map(|f| self.open_json::<Passkey>(id, &f.secret))
            .map(|p| p.cred_id().clone())
            .collect::<Vec<_>>();
        let (options, state) = rp
            .start_passkey_registration(id, principal.name(), principal.name(), Some(exclude))
            .map_err(|e| invalid("passkey", format!("cannot start a registration: {e}")))?;
        mfa_factor::Entity::delete_many()
            .filter(mfa_factor::Column::UserId.eq(id))
            .filter(mfa_factor::Column::Kind.eq(PASSKEY))
            .filter(mfa_factor::Column::Confirmed.eq(false))
            .exec(&self.db)
            .await?;
        let ceremony = uuid::Uuid::now_v7();
        let waiting = Ceremony {
            origin: origin.to_string(),
            state,
        };
        let mut row = self.new_factor(id, PASSKEY, "", self.seal_json(id, &waiting)?);
        row.id = Set(ceremony);
        row.insert(&self.db).await?;
        Ok(PasskeyOptions {
            ceremony: ceremony.to_string(),
            public_key: public_key_member(&options)?,
        })
    }

    /// Finishes a registration with the browser's answer (`credential`, the JSON of the
    /// `PublicKeyCredential`) under `name`. The first factor of an account also gets a set of
    /// recovery codes, returned to be shown once. Audited as `mfa_enrolled`; a refused answer as
    /// `mfa_failure`, and nothing is enrolled.
    pub async fn finish_passkey_registration(
        &self,
        principal: &Principal,
        ceremony: &str,
        name: &str,
        credential: &str,
        client: &Client,
    ) -> Result<Option<Vec<String>>, IdentityError> {
        let id = me(principal)?;
        let name = valid_name(name)?;
        let gone = || {
            invalid(
                "credential",
                "has no registration waiting for it: start again",
            )
        };
        let key = uuid::Uuid::parse_str(ceremony.trim()).map_err(|_| gone())?;
        let waiting = mfa_factor::Entity::find_by_id(key)
            .filter(mfa_factor::Column::UserId.eq(id))
            .filter(mfa_factor::Column::Kind.eq(PASSKEY))
            .filter(mfa_factor::Column::Confirmed.eq(false))
            .one(&self.db)
            .await?
            .ok_or_else(gone)?;
        // Used once, whatever the outcome.
        mfa_factor::Entity::delete_by_id(waiting.id)
            .exec(&self.db)
            .await?;
        if waiting.created_at + CHALLENGE_LIFETIME <= self.clock.now() {
            return Err(invalid(
                "credential",
                "came too late: a registration waits 5 minutes; start again",
            ));
        }
        let state: Ceremony<PasskeyRegistration> =
            self.open_json(id, &waiting.secret).ok_or_else(gone)?;
        let refused = |reason: &str, message: String| (reason.to_string(), message);
        let outcome = match parse::<RegisterPublicKeyCredential>(credential) {
            None => Err(refused(
                "malformed",
                "is not a passkey answer from a browser".into(),
            )),
            Some(answer) => match relying_party(&state.origin) {
                Err(m) => Err(refused("origin", m)),
                Ok(rp) => rp
                    .finish_passkey_registration(&answer, &state.state)
                    .map_err(|e| refused("rejected", format!("was refused: {e}"))),
            },
        };
        let passkey = match outcome {
            Ok(passkey) => passkey,
            Err((reason, message)) => {
                self.enrolment_failed(principal, client, PASSKEY, &reason)
                    .await?;
                return Err(invalid("credential", &message));
            }
        };
        let cred_key = credential_key(passkey.cred_id());
        let taken = mfa_factor::Entity::find()
            .filter(mfa_factor::Column::CredentialKey.eq(cred_key.clone()))
            .count(&self.db)
            .await?;
        if taken > 0 {
            return Err(IdentityError::Conflict(
                "this passkey is already registered".into(),
            ));
        }
        let first = !self.has_factor(id).await?;
        let codes: Option<Vec<String>> =
            first.then(|| (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect());
        let txn = self.db.begin().await?;
        let mut row = self.new_factor(id, PASSKEY, &name, self.seal_json(id, &passkey)?);
        row.confirmed = Set(true);
        row.credential_key = Set(Some(cred_key));
        row.insert(&txn).await?;
        if let Some(codes) = &codes {
            self.replace_recovery_codes(&txn, id, codes).await?;
        }
        txn.commit().await?;
        self.record_mfa(
            principal,
            EventKind::MfaEnrolled,
            id,
            serde_json::json!({ "factor": PASSKEY, "name": name }),
        )
        .await?;
        Ok(codes)
    }

    /// Renames one of the signed-in account's passkeys.
    pub async fn rename_passkey(
        &self,
        principal: &Principal,
        passkey: &str,
        name: &str,
    ) -> Result<(), IdentityError> {
        let id = me(principal)?;
        let name = valid_name(name)?;
        let row = self.own_passkey(id, passkey).await?;
        let mut active: mfa_factor::ActiveModel = row.into();
        active.name = Set(name);
        active.update(&self.db).await?;
        Ok(())
    }

    /// Removes one of the signed-in account's passkeys; the last factor of an account whose role
    /// requires one (soc2.yml) cannot be removed. Without any factor left the recovery codes go
    /// too. Audited as `mfa_removed`.
    pub async fn remove_passkey(
        &self,
        principal: &Principal,
        passkey: &str,
    ) -> Result<(), IdentityError> {
        let id = me(principal)?;
        let row = self.own_passkey(id, passkey).await?;
        self.remove_factor(principal, id, row).await
    }

    async fn own_passkey(
        &self,
        user: uuid::Uuid,
        passkey: &str,
    ) -> Result<mfa_factor::Model, IdentityError> {
        let unknown = || IdentityError::UnknownFactor(passkey.chars().take(64).collect());
        let key = uuid::Uuid::parse_str(passkey.trim()).map_err(|_| unknown())?;
        mfa_factor::Entity::find_by_id(key)
            .filter(mfa_factor::Column::UserId.eq(user))
            .filter(mfa_factor::Column::Kind.eq(PASSKEY))
            .filter(mfa_factor::Column::Confirmed.eq(true))
            .one(&self.db)
            .await?
            .ok_or_else(unknown)
    }

    /// The options for `navigator.credentials.get()` that answer the waiting sign-in
    /// `challenge` with one of the account's passkeys, on the page at `origin`.
    pub async fn passkey_sign_in_options(
        &self,
        challenge: &str,
        origin: &str,
    ) -> Result<PasskeyOptions, AuthError> {
        let waiting = mfa_challenge::Entity::find_by_id(super::challenge_key(challenge.trim()))
            .one(&self.db)
            .await?
            .filter(|w| w.expires_at > self.clock.now())
            .ok_or(AuthError::MfaChallenge)?;
        let rp = relying_party(origin).map_err(AuthError::PasskeyUnavailable)?;
        let passkeys: Vec<Passkey> = self
            .confirmed_passkeys(waiting.user_id)
            .await?
            .iter()
            .filter_map(|f| self.open_json(waiting.user_id, &f.secret))
            .collect();
        if passkeys.is_empty() {
            return Err(AuthError::PasskeyUnavailable(
                "this account has no passkey: use a code from the authenticator app or a recovery code".into(),
            ));
        }
        let (options, state) = rp
            .start_passkey_authentication(&passkeys)
            .map_err(|e| AuthError::PasskeyUnavailable(format!("cannot start: {e}")))?;
        let ceremony = Ceremony {
            origin: origin.to_string(),
            state,
        };
        let json = serde_json::to_string(&ceremony)
            .map_err(|e| IdentityError::Db(sea_orm::DbErr::Custom(e.to_string())))?;
        let mut active: mfa_challenge::ActiveModel = waiting.into();
        active.webauthn = Set(Some(json));
        active.update(&self.db).await?;
        Ok(PasskeyOptions {
            ceremony: challenge.trim().to_string(),
            public_key: public_key_member(&options).map_err(AuthError::Internal)?,
        })
    }

    /// Whether `credential` (the JSON of the browser's `PublicKeyCredential`) answers the passkey
    /// ceremony of the waiting sign-in with one of `row`'s passkeys; updates its signature counter.
    /// The ceremony is used once either way.
    pub(super) async fn use_passkey(
        &self,
        row: &user::Model,
        waiting: &mfa_challenge::Model,
        credential: &str,
    ) -> Result<bool, AuthError> {
        let Some(json) = waiting.webauthn.as_deref() else {
            return Ok(false);
        };
        let mut cleared: mfa_challenge::ActiveModel = waiting.clone().into();
        cleared.webauthn = Set(None);
        cleared.update(&self.db).await?;
        let Ok(ceremony) = serde_json::from_str::<Ceremony<PasskeyAuthentication>>(json) else {
            return Ok(false);
        };
        let Some(answer) = parse::<PublicKeyCredential>(credential) else {
            return Ok(false);
        };
        let Ok(rp) = relying_party(&ceremony.origin) else {
            return Ok(false);
        };
        let result = match rp.finish_passkey_authentication(&answer, &ceremony.state) {
            Ok(result) => result,
            Err(e) => {
                tracing::info!(user = %row.id, error = %e, "a passkey assertion was refused");
                return Ok(false);
            }
        };
        let used = credential_key(result.cred_id());
        let Some(factor) = mfa_factor::Entity::find()
            .filter(mfa_factor::Column::UserId.eq(row.id))
            .filter(mfa_factor::Column::Kind.eq(PASSKEY))
            .filter(mfa_factor::Column::CredentialKey.eq(used))
            .filter(mfa_factor::Column::Confirmed.eq(true))
            .one(&self.db)
            .await?
        else {
            return Ok(false);
        };
        let mut active: mfa_factor::ActiveModel = factor.clone().into();
        if let Some(mut passkey) = self.open_json::<Passkey>(row.id, &factor.secret)
            && passkey.update_credential(&result) == Some(true)
        {
            active.secret = Set(self.seal_json(row.id, &passkey)?);
        }
        active.last_used_at = Set(Some(self.clock.now()));
        active.update(&self.db).await?;
        Ok(true)
    }
}

fn public_key_member<T: Serialize>(options: &T) -> Result<serde_json::Value, IdentityError> {
    let mut value = serde_json::to_value(options)
        .map_err(|e| IdentityError::Db(sea_orm::DbErr::Custom(e.to_string())))?;
    Ok(value
        .get_mut("publicKey")
        .map(serde_json::Value::take)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_host_name_of_the_page() {
        assert!(relying_party("https://localhost:8443").is_ok());
        assert!(relying_party("https://wasm.example.com").is_ok());
        let ip = relying_party("https://127.0.0.1:8443").unwrap_err();
        assert!(ip.contains("host name"), "{ip}");
        assert!(relying_party("not a url").is_err());
    }

    #[test]
    fn names_are_short_printable_and_present() {
        assert_eq!(valid_name("  YubiKey 5 ").unwrap(), "YubiKey 5");
        assert!(valid_name("   ").is_err());
        assert!(valid_name(&"x".repeat(65)).is_err());
        assert!(valid_name("a\u{7}b").is_err());
    }
}
