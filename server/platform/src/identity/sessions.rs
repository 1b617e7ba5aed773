//! Browser sessions: a tower-sessions store kept in the `sessions` table (so every replica sees the
//! same sessions), and what a signed-in session holds.
//!
//! A session stores the user's id, the token version it was opened with and when it was opened.
//! [`Identity::session_principal`] turns that into a [`Principal`] on each request: a disabled user
//! or a changed password voids the session at once (the version no longer matches), and a session
//! older than the absolute timeout is refused even while it is kept active.
//!
//! The table keys each session by the SHA-256 of its id, never the id itself: the id is the cookie
//! value, so whoever reads the database (a backup, a replica) cannot take over a session.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, sea_query::OnConflict};
use serde::{Deserialize, Serialize};
use tower_sessions::{
    SessionStore,
    session::{Id, Record},
    session_store,
};

use super::{Identity, entities::session};
use crate::{access::Principal, clock::Clock};

/// The key under which a signed-in session keeps its [`SessionUser`].
pub const SESSION_USER_KEY: &str = "user";

/// How long sessions last: idle and absolute. Not in the spec; set by `serve` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimeouts {
    pub idle: Duration,
    pub absolute: Duration,
}

impl Default for SessionTimeouts {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
        }
    }
}

/// What a signed-in session holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub user_id: String,
    pub version: i32,
    pub signed_in_at: DateTime<Utc>,
    /// soc2.yml requires a second factor of this account and it has none yet: the session
    /// reaches only the enrolment page until one is confirmed.
    #[serde(default)]
    pub must_enrol: bool,
}

/// The `sessions` table as a tower-sessions store. A session past its idle expiry is gone when
/// read; "now" is the platform's clock (injected in tests).
#[derive(Debug, Clone)]
pub struct DbSessionStore {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
}

impl DbSessionStore {
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>) -> Self {
        Self { db, clock }
    }

    /// Deletes sessions past their expiry; returns how many.
    pub async fn delete_expired(&self, now: DateTime<Utc>) -> Result<u64, sea_orm::DbErr> {
        Ok(session::Entity::delete_many()
            .filter(session::Column::ExpiresAt.lt(now))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}

/// The key a session is stored under: the SHA-256 of its id (the cookie value), in hex.
fn key_of(id: &Id) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(id.to_string().as_bytes()))
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn to_chrono(t: time::OffsetDateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond()).unwrap_or_default()
}

fn user_of(record: &Record) -> Option<uuid::Uuid> {
    let user: SessionUser =
        serde_json::from_value(record.data.get(SESSION_USER_KEY)?.clone()).ok()?;
    uuid::Uuid::parse_str(&user.user_id).ok()
}

fn to_row(record: &Record) -> Result<session::ActiveModel, session_store::Error> {
    use sea_orm::ActiveValue::Set;
    Ok(session::ActiveModel {
        id: Set(key_of(&record.id)),
        user_id: Set(user_of(record)),
        data: Set(serde_json::to_string(&record.data)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?),
        expires_at: Set(to_chrono(record.expiry_date)),
    })
}

#[async_trait::async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // Ids are 128 random bits; on the rare collision, draw again.
        loop {
            let taken = session::Entity::find_by_id(key_of(&record.id))
                .one(&self.db)
                .await
                .map_err(backend)?;
            if taken.is_none() {
                break;
            }
            record.id = Id::default();
        }
        session::Entity::insert(to_row(record)?)
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let upsert = OnConflict::column(session::Column::Id)
            .update_columns([
                session::Column::UserId,
                session::Column::Data,
                session::Column::ExpiresAt,
            ])
            .to_owned();
        session::Entity::insert(to_row(record)?)
            .on_conflict(upsert)
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(row) = session::Entity::find_by_id(key_of(id))
            .one(&self.db)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let expiry = time::OffsetDateTime::from_unix_timestamp(row.expires_at.timestamp())
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        if to_chrono(expiry) <= self.clock.now() {
            return Ok(None);
        }
        let data = serde_json::from_str(&row.data)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date: expiry,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        session::Entity::delete_by_id(key_of(id))
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

impl Identity {
    /// Ends every browser session of a user (used when they are disabled or deleted).
    pub(super) async fn end_sessions_of(&self, user_id: uuid::Uuid) -> Result<(), sea_orm::DbErr> {
        session::Entity::delete_many()
            .filter(session::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The principal of a signed-in session, or `None` when the session no longer stands: the
    /// user is gone or disabled, their password changed, or the absolute timeout has passed; or
    /// it must enrol a second factor first (see [`Self::enrolment_principal`]).
    pub async fn session_principal(
        &self,
        user: &SessionUser,
        timeouts: SessionTimeouts,
    ) -> Result<Option<Principal>, sea_orm::DbErr> {
        if user.must_enrol {
            return Ok(None);
        }
        self.enrolment_principal(user, timeouts).await
    }

    /// The principal of a session that may still have to enrol a second factor: only for
    /// enrolling one, and for signing out.
    pub async fn enrolment_principal(
        &self,
        user: &SessionUser,
        timeouts: SessionTimeouts,
    ) -> Result<Option<Principal>, sea_orm::DbErr> {
        let age = self.clock.now().signed_duration_since(user.signed_in_at);
        if age.to_std().is_ok_and(|age| age > timeouts.absolute) {
            return Ok(None);
        }
        let Ok(id) = uuid::Uuid::parse_str(&user.user_id) else {
            return Ok(None);
        };
        self.live_principal(id, Some(user.version)).await
    }
}
