//! What an export holds: everything the platform keeps about one person, section by section.
//!
//! - `account`: the account row and its roles (never the password hash);
//! - `linked_identities`: Google and LDAP sign-ins linked to it;
//! - `sessions`: browser sessions and API sign-ins (refresh-token families), as metadata only —
//!   never a session id, token or hash;
//! - `api_tokens`: personal tokens as they are listed (name, last four characters, permissions);
//! - `second_factors`: the authenticator app and passkeys (kind, name, times) and how many recovery
//!   codes are left — never a secret, credential or code;
//! - `modules`: modules they own, and with `include_binaries` the module files themselves;
//! - `shares`: who they shared their modules with, and modules shared with them directly;
//! - `runs`: runs they started;
//! - `audit_events`: events where they are the actor or the target. Where someone else acted on
//!   them (an administrator), that person's address and user agent are left out.
//!
//! Rows of anyone else are never read: every query is filtered by the person's id.

use base64::Engine;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde_json::{Value, json};

use super::archive::{Archive, Section};
use crate::{
    audit::entity as audit_log,
    identity::entities::{
        api_token, federated_identity, mfa_factor, mfa_recovery_code, refresh_token, session, user,
        user_role,
    },
    modules::{
        entities::{module, run, share},
        storage::ModuleStore,
    },
};

/// Rows read per query, so a long history is streamed, not loaded.
const PAGE: u64 = 500;

pub(super) const ABOUT: Section = Section {
    name: "export",
    columns: &[
        "format",
        "version",
        "generated_at",
        "user_id",
        "username",
        "includes_binaries",
    ],
};
pub(super) const ACCOUNT: Section = Section {
    name: "account",
    columns: &[
        "id",
        "username",
        "email",
        "disabled",
        "password_set",
        "roles",
        "created_at",
        "updated_at",
        "last_login_at",
    ],
};
pub(super) const LINKED: Section = Section {
    name: "linked_identities",
    columns: &[
        "provider",
        "subject",
        "email",
        "created_at",
        "last_login_at",
    ],
};
pub(super) const SESSIONS: Section = Section {
    name: "sessions",
    columns: &["kind", "started_at", "expires_at", "state"],
};
pub(super) const TOKENS: Section = Section {
    name: "api_tokens",
    columns: &[
        "id",
        "name",
        "hint",
        "permissions",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ],
};
pub(super) const SECOND_FACTORS: Section = Section {
    name: "second_factors",
    columns: &["kind", "name", "created_at", "last_used_at", "remaining"],
};
pub(super) const MODULES: Section = Section {
    name: "modules",
    columns: &[
        "id",
        "name",
        "description",
        "kind",
        "status",
        "size_bytes",
        "sha256",
        "risk_score",
        "suspicious",
        "capability_group",
        "review_note",
        "created_at",
        "updated_at",
        "last_run_at",
        "binary",
    ],
};
pub(super) const SHARES: Section = Section {
    name: "shares",
    columns: &[
        "direction",
        "module_id",
        "module_name",
        "grantee_kind",
        "grantee",
        "created_at",
    ],
};
pub(super) const RUNS: Section = Section {
    name: "runs",
    columns: &[
        "id",
        "module_id",
        "mode",
        "outcome",
        "duration_us",
        "peak_memory_bytes",
        "iterations",
        "result",
        "started_at",
    ],
};
pub(super) const AUDIT: Section = Section {
    name: "audit_events",
    columns: &[
        "id",
        "occurred_at",
        "event",
        "actor_id",
        "actor_name",
        "source_ip",
        "user_agent",
        "target_type",
        "target_id",
        "outcome",
        "details",
    ],
};

/// What the collector reads from.
pub(super) struct Sources<'a> {
    pub db: &'a DatabaseConnection,
    pub store: &'a ModuleStore,
}

/// How far the export is (0–100), written to its row as it moves (and `updated_at` with it, which
/// tells a live preparation from one a restart interrupted).
pub(super) struct Progress<'a> {
    pub db: &'a DatabaseConnection,
    pub clock: &'a dyn crate::clock::Clock,
    pub id: uuid::Uuid,
    pub shown: i16,
}

impl Progress<'_> {
    pub async fn reached(&mut self, percent: i16) {
        use sea_orm::sea_query::Expr;
        if percent <= self.shown {
            return;
        }
        self.shown = percent;
        let written = super::super::entities::data_export::Entity::update_many()
            .col_expr(
                super::super::entities::data_export::Column::Progress,
                Expr::value(percent),
            )
            .col_expr(
                super::super::entities::data_export::Column::UpdatedAt,
                Expr::value(self.clock.now()),
            )
            .filter(super::super::entities::data_export::Column::Id.eq(self.id))
            .exec(self.db)
            .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, export = %self.id, "the export's progress could not be written");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(super) enum CollectError {
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("module file: {0}")]
    Store(#[from] crate::modules::storage::StorageError),
}

fn time(t: chrono::DateTime<chrono::Utc>) -> Value {
    json!(t)
}

/// Writes the person's data into `archive`, reporting progress up to `until` percent.
pub(super) async fn collect<W: std::io::Write + std::io::Seek>(
    src: &Sources<'_>,
    person: &user::Model,
    include_binaries: bool,
    archive: &mut Archive<W>,
    progress: &mut Progress<'_>,
) -> Result<(), CollectError> {
    let id = person.id;
    account(src, person, archive).await?;
    progress.reached(5).await;
    let linked = federated_identity::Entity::find()
        .filter(federated_identity::Column::UserId.eq(id))
        .order_by_asc(federated_identity::Column::CreatedAt)
        .all(src.db)
        .await?;
    archive.begin(LINKED)?;
    for l in linked {
        archive.row_of(
            LINKED,
            &[
                json!(l.provider),
                json!(l.subject),
                json!(l.email),
                time(l.created_at),
                json!(l.last_login_at),
            ],
        )?;
    }
    archive.end()?;
    sessions(src, id, archive).await?;
    tokens(src, id, archive).await?;
    second_factors(src, id, archive).await?;
    progress.reached(15).await;
    let owned = modules(src, id, include_binaries, archive, progress).await?;
    shares(src, id, &owned, archive).await?;
    progress.reached(40).await;
    runs(src, id, archive, progress).await?;
    audit_events(src, id, archive, progress).await?;
    if include_binaries && !archive.inline_binaries() {
        for m in &owned {
            let bytes = src.store.read(&m.sha256).await?;
            archive.file(&format!("modules/{}.wasm", m.id), &bytes)?;
        }
    }
    progress.reached(90).await;
    Ok(())
}

async fn account<W: std::io::Write + std::io::Seek>(
    src: &Sources<'_>,
    person: &user::Model,
    archive: &mut Archive<W>,
) -> Result<(), CollectError> {
    let roles: Vec<String> = user_role::Entity::find()
        .filter(user_role::Column::UserId.eq(person.id))
        .order_by_asc(user_role::Column::RoleName)
        .all(src.db)
        .await?
        .into_iter()
        .map(|r| r.role_name)
        .collect();
    archive.record(
        ACCOUNT,
        &[
            json!(person.id),
            json!(person.username),
            json!(person.email),
            json!(person.disabled),
            json!(person.password_hash.is_some()),
            json!(roles),
            time(person.created_at),
            time(person.updated_at),
            json!(person.last_login_at),
        ],
    )?;
    Ok(())
}

async fn sessions<W: std::io::Write + std::io::Seek>(
    src: &Sources<'_>,
    id: uuid::Uuid,
    archive: &mut Archive<W>,
) -> Result<(), CollectError> {
    archive.begin(SESSIONS)?;
    let browser = session::Entity::find()
        .filter(session::Column::UserId.eq(id))
        .order_by_asc(session::Column::ExpiresAt)
        .limit(PAGE)
        .all(src.db)
        .await?;
    for s in browser {
        // The stored record; only the sign-in time is read from it.
        let started = serde_json::from_str::<Value>(&s.data)
            .ok()
            .and_then(|d| d.get(crate::identity::sessions::SESSION_USER_KEY).cloned())
            .and_then(|u| u.get("signed_in_at").cloned())
            .unwrap_or(Value::Null);
        archive.row_of(
            SESSIONS,
            &[
                json!("browser"),
                started,
                time(s.expires_at),
                json!("active"),
            ],
        )?;
    }
    let families = refresh_token::Entity::find()
        .filter(refresh_token::Column::UserId.eq(id))
        .order_by_asc(refresh_token::Column::IssuedAt)
        .limit(PAGE)
        .all(src.db)
        .await?;
    for t in families {
        let state = if t.revoked {
            "revoked"
        } else if t.used {
            "rotated"
        } else {
            "issued"
        };
        archive.row_of(
            SESSIONS,
            &[
                json!("api"),
                time(t.issued_at),
                time(t.expires_at),
                json!(state),
            ],
        )?;
    }
    archive.end()?;
    Ok(())
}

async fn tokens<W: std::io::Write + std::io::Seek>(
    src: &Sources<'_>,
    id: uuid::Uuid,
    archive: &mut Archive<W>,
) -> Result<(), CollectError> {
    let rows = api_token::Entity::find()
        .filter(api_token::Column::UserId.eq(id))
        .order_by_asc(api_token::Column::CreatedAt)
        .all(src.db)
        .await?;
    archive.begin(TOKENS)?;
    for t in rows {
        archive.row_of(
            TOKENS,
            &[
                json!(t.id),
                json!(t.name),
                json!(t.hint),
                t.permissions.unwrap_or(Value::Null),
                time(t.created_at),
                time(t.expires_at),
                json!(t.last_used_at),
                json!(t.revoked_at),
            ],
        )?;
    }
    archive.end()?;
    Ok(())
}

async fn second_factors<W: std::io::Write + std::io::Seek>(
    src: &Sources<'_>,
    id: uuid::Uuid,
    archive: &mut Archive<W>,
) -> Result<(), CollectError> {
    let factors = mfa_factor::Entity::find()
        .filter(mfa_factor::Column::UserId.eq(id))
        .filter(mfa_factor::Column::Confirmed.eq(true))
        .order_by_asc(mfa_factor::Column::CreatedAt)
        .all(src.db)
        .await?;
    let codes = mfa_recovery_code::Entity::find()
        .filter(mfa_recovery_code::Column::UserId.eq(id))
        .all(src.db)
        .await?;
    archive.begin(SECOND_FACTORS)?;
    for f in factors {
        archive.row_of(
            SECOND_FACTORS,
            &[
                json!(f.kind),
                json!(f.name),
                time(f.created_at),
                json!(f.last_used_at),
                Value::Null,
            ],
        )?;
    }
    if let Some(made) = codes.iter().map(|c| c.created_at).min() {
        let unused = codes.iter().filter(|c| c.used_at.is_none()).count();
        let last_used = codes.iter().filter_map(|c| c.used_at).max();
        archive.row_of(
            SECOND_FACTORS,
            &[
                json!("recovery_codes"),
                json!("Recovery codes"),
                time(made),
                json!(last_used),
                json!(unused),
            ],
        )?;
    }
    archive.end()?;
    Ok(())
}

async fn modules<W: std::io::Write + std::io::Seek>(
    src: &Sources<'_>,
    id: uuid::Uuid,
    include_binaries: bool,
    archive: &mut Archive<W>,
    progress: &mut Progress<'_>,
) -> Result<Vec<module::Model>, CollectError> {
    let owned = module::Entity::find()
        .filter(module::Column::OwnerId.eq(id))
        .order_by_asc(module::Column::CreatedAt)
        .order_by_asc(module::Column::Id)
        .all(src.db)
        .await?;
    archive.begin(MODULES)?;
    let total = owned.len().max(1);
    for (i, m) in owned.iter().enumerate() {
        let binary = match (include_binaries, archive.inline_binaries()) {
            (false, _) => Value::Null,
            (true, true) => json!(
                base64::engine::general_purpose::STANDARD.encode(src.store.read(&m.sha256).await?)
            ),
            (true, false) => json!(format!("modules/{}.wasm", m.id)),
        };
        archive.row_of(
            MODULES,
            &[
                json!(m.id),
                json!(m.name),
                json!(m.description),
                json!(m.kind),
                json!(m.status),
                json!(m.size_bytes),
                json!(m.sha256),
                json!(m.risk_score),
                json!(m.suspicious),
                json!(m.capability_group),
                json!(m.review_note),
                time(m.created_at),
                time(m.updated_at),
                json!(m.last_run_at),
                binary,
            ],
        )?;
        let step = i16::try_from(15 * (i + 1) / total).unwrap_or(15);
        progress.reached(15 + step).await;
    }
    archive.end()?;
    Ok(owned)
}

async fn shares<W: std::io::Write + std::io::Seek>(
    src: &Sources<'_>,
    id: uuid::Uuid,
    owned: &[module::Model],
    archive: &mut Archive<W>,
) -> Result<(), CollectError> {
    archive.begin(SHARES)?;
    let names: std::collections::HashMap<uuid::Uuid, &str> =
        owned.iter().map(|m| (m.id, m.name.as_str())).collect();
    for chunk in owned.chunks(PAGE as usize) {
        let rows = share::Entity::find()
            .filter(share::Column::ModuleId.is_in(chunk.iter().map(|m| m.id)))
            .order_by_asc(share::Column::CreatedAt)
            .all(src.db)
            .await?;
        // People are named by username (what the person typed when sharing), roles by name.
        let people: Vec<uuid::Uuid> = rows
            .iter()
            .filter(|s| s.grantee_kind == "user")
            .filter_map(|s| uuid::Uuid::parse_str(&s.grantee).ok())
            .collect();
        let usernames: std::collections::HashMap<uuid::Uuid, String> = user::Entity::find()
            .filter(user::Column::Id.is_in(people))
            .all(src.db)
            .await?
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect();
        for s in rows {
            let grantee = uuid::Uuid::parse_str(&s.grantee)
                .ok()
                .filter(|_| s.grantee_kind == "user")
                .and_then(|g| usernames.get(&g).cloned())
                .unwrap_or(s.grantee);
            archive.row_of(
                SHARES,
                &[
                    json!("by_me"),
                    json!(s.module_id),
                    json!(names.get(&s.module_id)),
                    json!(s.grantee_kind),
                    json!(grantee),
                    time(s.created_at),
                ],
            )?;
        }
    }
    let with_me = share::Entity::find()
        .filter(share::Column::GranteeKind.eq("user"))
        .filter(share::Column::Grantee.eq(id.to_string()))
        .order_by_asc(share::Column::CreatedAt)
        .all(src.db)
        .await?;
    for s in with_me {
        let name = module::Entity::find_by_id(s.module_id)
            .one(src.db)
            .await?
            .map(|m| m.name);
        archive.row_of(
            SHARES,
            &[
                json!("with_me"),
                json!(s.module_id),
                json!(name),
                json!("user"),
                Value::Null,
                time(s.created_at),
            ],
        )?;
    }
    archive.end()?;
    Ok(())
}

/// Progress across a paged section: from `from` to `to` percent as `done` of `total` rows pass.
fn between(from: i16, to: i16, done: u64, total: u64) -> i16 {
    let span = u64::try_from(to - from).unwrap_or(0);
    from + i16::try_from(span * done / total.max(1)).unwrap_or(0)
}

async fn runs<W: std::io::Write + std::io::Seek>(
    src: &Sources<'_>,
    id: uuid::Uuid,
    archive: &mut Archive<W>,
    progress: &mut Progress<'_>,
) -> Result<(), CollectError> {
    let mine = || run::Entity::find().filter(run::Column::UserId.eq(id));
    let total = mine().count(src.db).await?;
    archive.begin(RUNS)?;
    let mut after: Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)> = None;
    let mut done = 0;
    loop {
        let mut query = mine();
        if let Some((at, last)) = after {
            query = query.filter(
                Condition::any().add(run::Column::StartedAt.gt(at)).add(
                    Condition::all()
                        .add(run::Column::StartedAt.eq(at))
                        .add(run::Column::Id.gt(last)),
                ),
            );
        }
        let page = query
            .order_by_asc(run::Column::StartedAt)
            .order_by_asc(run::Column::Id)
            .limit(PAGE)
            .all(src.db)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.started_at, last.id));
        done += page.len() as u64;
        for r in page {
            archive.row_of(
                RUNS,
                &[
                    json!(r.id),
                    json!(r.module_id),
                    json!(r.mode),
                    json!(r.outcome),
                    json!(r.duration_us),
                    json!(r.peak_memory_bytes),
                    json!(r.iterations),
                    r.result,
                    time(r.started_at),
                ],
            )?;
        }
        progress.reached(between(40, 55, done, total)).await;
    }
    archive.end()?;
    Ok(())
}

async fn audit_events<W: std::io::Write + std::io::Seek>(
    src: &Sources<'_>,
    id: uuid::Uuid,
    archive: &mut Archive<W>,
    progress: &mut Progress<'_>,
) -> Result<(), CollectError> {
    let me = id.to_string();
    let about_me = || {
        audit_log::Entity::find().filter(
            Condition::any()
                .add(audit_log::Column::ActorId.eq(me.clone()))
                .add(
                    Condition::all()
                        .add(audit_log::Column::TargetType.eq("user"))
                        .add(audit_log::Column::TargetId.eq(me.clone())),
                ),
        )
    };
    let total = about_me().count(src.db).await?;
    archive.begin(AUDIT)?;
    let mut after: Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)> = None;
    let mut done = 0;
    loop {
        let mut query = about_me();
        if let Some((at, last)) = after {
            query = query.filter(
                Condition::any()
                    .add(audit_log::Column::OccurredAt.gt(at))
                    .add(
                        Condition::all()
                            .add(audit_log::Column::OccurredAt.eq(at))
                            .add(audit_log::Column::Id.gt(last)),
                    ),
            );
        }
        let page = query
            .order_by_asc(audit_log::Column::OccurredAt)
            .order_by_asc(audit_log::Column::Id)
            .limit(PAGE)
            .all(src.db)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.occurred_at, last.id));
        done += page.len() as u64;
        for e in page {
            // Someone else's address and browser are theirs, not this person's.
            let theirs = e.actor_id.as_deref() == Some(me.as_str());
            archive.row_of(
                AUDIT,
                &[
                    json!(e.id),
                    time(e.occurred_at),
                    json!(e.event),
                    json!(e.actor_id),
                    json!(e.actor_name),
                    // Past the IDS window only the reduced forms are kept (data_anonymization).
                    if theirs {
                        json!(e.source_ip.or(e.ip_net))
                    } else {
                        Value::Null
                    },
                    if theirs {
                        json!(e.user_agent.or(e.ua_family))
                    } else {
                        Value::Null
                    },
                    json!(e.target_type),
                    json!(e.target_id),
                    json!(e.outcome),
                    e.details,
                ],
            )?;
        }
        progress.reached(between(55, 85, done, total)).await;
    }
    archive.end()?;
    Ok(())
}
