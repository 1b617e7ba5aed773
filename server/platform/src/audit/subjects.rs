//! Audit subjects: the pseudonym and the key under which the audit chain commits to a person's
//! personal values (chain v2, `personal.rs`).
//!
//! A subject is made the first time an event names a person (`user_key` = their account id) or a
//! value that belongs to no account (`user_key` = `epoch:<UTC day>`). Its 32-byte key is random and
//! stored wrapped (AES-256-GCM) by `secrets::audit_subject_key`, which lives outside the database:
//! a database dump alone cannot test guesses against the digests. Erasure sets the state to
//! `erasing` (from then on no destination writes the person's plaintext) and then destroys the key
//! (`erased`): the digests stay in the chain and verify, but nobody can test them any more.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    entity::prelude::*,
};

use super::AuditError;

/// How long a subject's state is trusted from memory; an erasure waits longer than this between
/// marking a subject `erasing` and scrubbing its rows, so every process has seen the change.
pub const STATE_TTL: Duration = Duration::from_secs(5);
/// Subjects kept in memory (the cache is cleared when full).
const CACHE_LIMIT: usize = 10_000;

pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_subjects")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub pseudonym: String,
        pub user_key: Option<String>,
        pub wrapped_key: Option<Vec<u8>>,
        pub state: String,
        pub created_at: DateTimeUtc,
        pub erased_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Where a subject is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Active,
    /// An erasure has begun: destinations drop the plaintext of its values.
    Erasing,
    /// The key is destroyed.
    Erased,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Erasing => "erasing",
            Self::Erased => "erased",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "erasing" => Self::Erasing,
            _ => Self::Erased,
        }
    }
}

/// A subject as the audit service uses it; the key never appears in `Debug` output.
#[derive(Clone)]
pub struct Subject {
    pub pseudonym: String,
    pub state: State,
    /// Holds values that belong to no account (one subject per UTC day).
    pub epoch: bool,
    /// `None` once erased.
    key: Option<[u8; 32]>,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("pseudonym", &self.pseudonym)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Subject {
    pub(crate) fn key(&self) -> Option<&[u8; 32]> {
        self.key.as_ref()
    }

    /// Whether destinations may write this subject's plaintext.
    pub fn writes_plaintext(&self) -> bool {
        self.state == State::Active
    }
}

/// The `user_key` of values that belong to no account, for the UTC day of `at`.
pub fn epoch_key(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("epoch:{}", at.format("%Y-%m-%d"))
}

/// The subjects table with a cache in front of it.
pub struct Subjects {
    db: DatabaseConnection,
    cipher: Aes256Gcm,
    /// Keys the tombstone an erased subject keeps in place of its account id.
    tomb_key: [u8; 32],
    by_key: Mutex<HashMap<String, (Subject, Instant)>>,
    by_pseudonym: Mutex<HashMap<String, (Subject, Instant)>>,
}

impl std::fmt::Debug for Subjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Subjects")
    }
}

fn corrupt(pseudonym: &str) -> AuditError {
    AuditError::Verify(format!(
        "the key of audit subject {pseudonym} cannot be unwrapped (is WASM_AS_OS_AUDIT_SUBJECT_KEY or <data dir>/audit_subject_key the one this database was written with?)"
    ))
}

impl Subjects {
    pub fn new(db: DatabaseConnection, wrap_key: &[u8; 32]) -> Self {
        Self {
            db,
            cipher: Aes256Gcm::new(wrap_key.into()),
            tomb_key: *wrap_key,
            by_key: Mutex::new(HashMap::new()),
            by_pseudonym: Mutex::new(HashMap::new()),
        }
    }

    /// What an erased subject keeps instead of its account id: a keyed hash (the key is outside
    /// the database), so a later event naming the same id (a stale token, a late journal line)
    /// finds the erased subject instead of making a new one that would link the id again.
    fn tombstone(&self, user_key: &str) -> String {
        use hmac::{Hmac, Mac};
        let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.tomb_key) else {
            return String::new();
        };
        mac.update(b"erased-subject\0");
        mac.update(user_key.as_bytes());
        let hex = hex::encode(mac.finalize().into_bytes());
        format!("x-{}", &hex[..62])
    }

    fn wrap(&self, pseudonym: &str, key: &[u8; 32]) -> Result<Vec<u8>, AuditError> {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: key,
                    aad: pseudonym.as_bytes(),
                },
            )
            .map_err(|_| corrupt(pseudonym))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    fn unwrap_row(&self, row: entity::Model) -> Result<Subject, AuditError> {
        let key = match (&row.wrapped_key, State::parse(&row.state)) {
            (Some(wrapped), State::Active | State::Erasing) if wrapped.len() > 12 => {
                let (nonce, sealed) = wrapped.split_at(12);
                let plain = self
                    .cipher
                    .decrypt(
                        Nonce::from_slice(nonce),
                        Payload {
                            msg: sealed,
                            aad: row.pseudonym.as_bytes(),
                        },
                    )
                    .map_err(|_| corrupt(&row.pseudonym))?;
                Some(<[u8; 32]>::try_from(plain.as_slice()).map_err(|_| corrupt(&row.pseudonym))?)
            }
            _ => None,
        };
        Ok(Subject {
            epoch: row
                .user_key
                .as_deref()
                .is_some_and(|k| k.starts_with("epoch:")),
            pseudonym: row.pseudonym,
            state: State::parse(&row.state),
            key,
        })
    }

    fn remember(&self, user_key: Option<&str>, subject: &Subject) {
        let now = Instant::now();
        if let Some(user_key) = user_key {
            let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() >= CACHE_LIMIT {
                map.clear();
            }
            map.insert(user_key.to_string(), (subject.clone(), now));
        }
        let mut map = self.by_pseudonym.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CACHE_LIMIT {
            map.clear();
        }
        map.insert(subject.pseudonym.clone(), (subject.clone(), now));
    }

    fn cached(
        map: &Mutex<HashMap<String, (Subject, Instant)>>,
        key: &str,
        ttl: Duration,
    ) -> Option<Subject> {
        let map = map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(s, _)| s.clone())
    }

    /// Forgets what is cached (an erasure in this process changed a state).
    pub fn invalidate(&self) {
        self.by_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.by_pseudonym
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The subject of `user_key` (an account id or [`epoch_key`]), made when new.
    pub async fn resolve(
        &self,
        user_key: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Subject, AuditError> {
        if let Some(s) = Self::cached(&self.by_key, user_key, STATE_TTL) {
            return Ok(s);
        }
        for key in [user_key.to_string(), self.tombstone(user_key)] {
            if let Some(row) = self.find_by_user_key(&self.db, &key).await? {
                let subject = self.unwrap_row(row)?;
                self.remember(Some(user_key), &subject);
                return Ok(subject);
            }
        }
        let pseudonym = format!("s-{}", uuid::Uuid::new_v4());
        let key: [u8; 32] = rand::random();
        let row = entity::ActiveModel {
            pseudonym: Set(pseudonym.clone()),
            user_key: Set(Some(user_key.to_string())),
            wrapped_key: Set(Some(self.wrap(&pseudonym, &key)?)),
            state: Set(State::Active.as_str().to_string()),
            created_at: Set(now),
            erased_at: Set(None),
        };
        entity::Entity::insert(row)
            .on_conflict_do_nothing_on([entity::Column::UserKey])
            .exec(&self.db)
            .await?;
        // Another process may have made it first: the stored row wins.
        let row = self
            .find_by_user_key(&self.db, user_key)
            .await?
            .ok_or_else(|| AuditError::Verify(format!("audit subject for {user_key} vanished")))?;
        let subject = self.unwrap_row(row)?;
        self.remember(Some(user_key), &subject);
        Ok(subject)
    }

    /// The subject of an account id, without making one.
    pub async fn find(
        &self,
        conn: &impl ConnectionTrait,
        user_key: &str,
    ) -> Result<Option<Subject>, AuditError> {
        match self.find_by_user_key(conn, user_key).await? {
            Some(row) => Ok(Some(self.unwrap_row(row)?)),
            None => Ok(None),
        }
    }

    async fn find_by_user_key(
        &self,
        conn: &impl ConnectionTrait,
        user_key: &str,
    ) -> Result<Option<entity::Model>, AuditError> {
        Ok(entity::Entity::find()
            .filter(entity::Column::UserKey.eq(user_key))
            .one(conn)
            .await?)
    }

    /// Subjects by pseudonym, from memory when seen within `ttl`; unknown pseudonyms are absent.
    pub async fn by_pseudonyms(
        &self,
        pseudonyms: &[String],
        ttl: Duration,
    ) -> Result<HashMap<String, Subject>, AuditError> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for p in pseudonyms {
            match Self::cached(&self.by_pseudonym, p, ttl) {
                Some(s) => {
                    found.insert(p.clone(), s);
                }
                None if !missing.contains(p) => missing.push(p.clone()),
                None => {}
            }
        }
        for chunk in missing.chunks(500) {
            let rows = entity::Entity::find()
                .filter(entity::Column::Pseudonym.is_in(chunk.iter().cloned()))
                .all(&self.db)
                .await?;
            for row in rows {
                let user_key = row.user_key.clone();
                let subject = self.unwrap_row(row)?;
                self.remember(user_key.as_deref(), &subject);
                found.insert(subject.pseudonym.clone(), subject);
            }
        }
        Ok(found)
    }

    /// Every subject (for checking the personal fields of audit files).
    pub async fn all(&self) -> Result<HashMap<String, Subject>, AuditError> {
        let rows = entity::Entity::find().all(&self.db).await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            let subject = self.unwrap_row(row)?;
            out.insert(subject.pseudonym.clone(), subject);
        }
        Ok(out)
    }

    /// Marks a subject `erasing` (idempotent; an erased subject stays erased).
    pub async fn begin_erasure(
        &self,
        conn: &impl ConnectionTrait,
        pseudonym: &str,
    ) -> Result<(), AuditError> {
        entity::Entity::update_many()
            .col_expr(entity::Column::State, Expr::value(State::Erasing.as_str()))
            .filter(entity::Column::Pseudonym.eq(pseudonym))
            .filter(entity::Column::State.eq(State::Active.as_str()))
            .exec(conn)
            .await?;
        self.invalidate();
        Ok(())
    }

    /// Destroys a subject's key and its link to the account (idempotent).
    pub async fn destroy(
        &self,
        conn: &impl ConnectionTrait,
        pseudonym: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), AuditError> {
        let row = entity::Entity::find_by_id(pseudonym.to_string())
            .one(conn)
            .await?;
        let tomb = row
            .and_then(|r| r.user_key)
            .filter(|k| !k.starts_with("x-"))
            .map(|k| self.tombstone(&k));
        let mut update = entity::Entity::update_many();
        if let Some(tomb) = tomb {
            update = update.col_expr(entity::Column::UserKey, Expr::value(Some(tomb)));
        }
        update
            .col_expr(entity::Column::State, Expr::value(State::Erased.as_str()))
            .col_expr(
                entity::Column::WrappedKey,
                Expr::value(Option::<Vec<u8>>::None),
            )
            .col_expr(entity::Column::ErasedAt, Expr::value(Some(now)))
            .filter(entity::Column::Pseudonym.eq(pseudonym))
            .exec(conn)
            .await?;
        self.invalidate();
        Ok(())
    }
}
