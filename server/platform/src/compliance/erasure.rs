//! Right to be forgotten (privacy.yml `right_to_be_forgotten`): requests, decisions, and the
//! erasure itself, run as a resumable sequence of idempotent steps.
//!
//! A person asks on the account page (password again) or through the API; an admin
//! (`users:delete`) may ask for anyone. With `automated_deletion: true` a request is scheduled
//! to run after `grace_period` (documented addition, default 7 days) and can be cancelled until
//! then; otherwise an admin approves or rejects it. [`Compliance::run_erasures`] is called by the
//! server every few seconds: it leases the oldest due erasure, runs one bounded unit of its
//! current step and stores where it got to, so an erasure interrupted by `kill -9` continues at
//! the next start from the step it was in.
//!
//! Steps: `lock` (disable the account, end every session and token, mark the audit subject
//! `erasing`: no destination writes the person's values from then on), `settle` (every process
//! has seen that), `modules` (delete the modules the person owns, a few per call), `rows` (runs,
//! shares, exports and their files, linked identities, roles), `scrub_db` and `scrub_files` (the
//! person's values leave the audit rows and files; the chain still verifies), `destroy` (the
//! account row goes, the email stays only as a keyed hash, the subject's key is destroyed) and
//! `compact` (SQLite rewrites its file so deleted rows leave no bytes behind).
//! See docs/erasure-design.md and docs/privacy.md.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{Compliance, ComplianceError, entities::erasure, invalid};
use crate::{
    access::Principal,
    audit::{Actor, AuditEvent, EventKind, Outcome, subjects::STATE_TTL},
    identity::{
        IdentityError,
        entities::{
            api_token, federated_identity, mfa_challenge, mfa_factor, mfa_lockout,
            mfa_recovery_code, refresh_token, session, user, user_role,
        },
    },
    modules::entities::{module, run, share},
};

/// How long a process holds an erasure it works on; another process takes it over after that.
const LEASE: Duration = Duration::from_secs(30);
/// Modules deleted per call of the `modules` step.
const MODULES_PER_CALL: u64 = 10;
/// Audit rows scrubbed per call of the `scrub_db` step.
const ROWS_PER_CALL: u64 = 500;
/// Requests listed at most.
const LIST_LIMIT: u64 = 200;

/// Where an erasure request is.
pub mod status {
    pub const REQUESTED: &str = "requested";
    pub const SCHEDULED: &str = "scheduled";
    pub const RUNNING: &str = "running";
    pub const DONE: &str = "done";
    pub const REJECTED: &str = "rejected";
    pub const CANCELLED: &str = "cancelled";
}

/// The steps of a running erasure, in order.
pub const STEPS: [&str; 8] = [
    "lock",
    "settle",
    "modules",
    "rows",
    "scrub_db",
    "scrub_files",
    "destroy",
    "compact",
];

/// An erasure request as callers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Erasure {
    pub id: String,
    pub status: String,
    /// The step a running erasure is at (`done` when finished).
    pub step: String,
    /// `self`, `admin` or `retention`.
    pub origin: String,
    /// The account's username while it exists (admins' list); `None` once erased.
    pub username: Option<String>,
    pub requested_at: DateTime<Utc>,
    /// When it runs (scheduled) or ran.
    pub run_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why the last attempt of a step failed (it is retried).
    pub last_error: Option<String>,
    /// The reason given when rejected.
    pub note: Option<String>,
    /// What was removed (modules, rows, audit rows and lines scrubbed).
    pub summary: Option<serde_json::Value>,
}

/// What one call of [`Compliance::run_erasures`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Nothing is due.
    Idle,
    /// The due erasure waits (settling) until then.
    Waiting { until: DateTime<Utc> },
    /// One unit of a step ran.
    Progressed { id: uuid::Uuid, step: String },
    /// An erasure finished.
    Done { id: uuid::Uuid },
    /// A step failed; it is retried after the lease.
    Failed { id: uuid::Uuid, error: String },
}

/// What a step asks the driver to store.
enum Next {
    /// Go on to this step.
    Step(&'static str),
    /// Stay at the step, at this cursor.
    Stay(String),
    /// Stay, and come back at this time.
    Wait(DateTime<Utc>),
    Finished,
}

fn uuid_of(id: &str) -> Result<uuid::Uuid, ComplianceError> {
    uuid::Uuid::parse_str(id).map_err(|_| ComplianceError::UnknownErasure(id.to_string()))
}

fn identity_error(e: IdentityError) -> ComplianceError {
    match e {
        IdentityError::Invalid(fields) => ComplianceError::Invalid(fields),
        IdentityError::Forbidden(p) => ComplianceError::Forbidden(p),
        IdentityError::UnknownUser(u) => ComplianceError::UnknownUser(u),
        other => ComplianceError::Step(other.to_string()),
    }
}

/// One crash point for the erasure test (`WASM_AS_OS_FAILPOINT=erasure:<step>`): the process
/// aborts after the step's work and before its progress is stored, as `kill -9` would.
fn failpoint(step: &str) {
    if let Ok(point) = std::env::var("WASM_AS_OS_FAILPOINT")
        && point.strip_prefix("erasure:") == Some(step)
    {
        tracing::error!(step, "failpoint reached: aborting");
        std::process::abort();
    }
}

impl Compliance {
    fn erasure_settings(
        &self,
    ) -> Result<crate::config::privacy::RightToBeForgotten, ComplianceError> {
        let rtbf = self.privacy().right_to_be_forgotten;
        if !rtbf.enabled {
            return Err(ComplianceError::Disabled("right_to_be_forgotten"));
        }
        Ok(rtbf)
    }

    async fn to_erasure(&self, row: erasure::Model) -> Result<Erasure, ComplianceError> {
        let username = match row.user_id {
            Some(id) => user::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .map(|u| u.username),
            None => None,
        };
        Ok(Erasure {
            id: row.id.to_string(),
            status: row.status,
            step: row.step,
            origin: row.origin,
            username,
            requested_at: row.requested_at,
            run_at: row.run_at,
            finished_at: row.finished_at,
            last_error: row.last_error,
            note: row.decision_note,
            summary: row.summary,
        })
    }

    async fn record_erasure(
        &self,
        actor: Actor,
        user_id: Option<uuid::Uuid>,
        id: uuid::Uuid,
        stage: &str,
        extra: serde_json::Value,
    ) -> Result<(), ComplianceError> {
        let mut details = serde_json::json!({ "erasure_id": id.to_string(), "stage": stage });
        if let (Some(map), serde_json::Value::Object(more)) = (details.as_object_mut(), extra) {
            map.extend(more);
        }
        let mut event =
            AuditEvent::new(EventKind::DataErasure, actor, Outcome::Success).with_details(details);
        if let Some(user_id) = user_id {
            event = event.with_target("user", user_id.to_string());
        }
        self.audit.record(event).await?;
        Ok(())
    }

    /// The open request (requested, scheduled or running) of an account, if any.
    pub(super) async fn open_erasure(
        &self,
        user_id: uuid::Uuid,
    ) -> Result<Option<erasure::Model>, ComplianceError> {
        Ok(erasure::Entity::find()
            .filter(erasure::Column::UserId.eq(user_id))
            .filter(erasure::Column::Status.is_in([
                status::REQUESTED,
                status::SCHEDULED,
                status::RUNNING,
            ]))
            .one(&self.db)
            .await?)
    }

    /// Refuses to erase the last enabled administrator: nobody could administer the platform.
    pub(super) async fn keeps_an_admin(&self, user_id: uuid::Uuid) -> Result<(), ComplianceError> {
        let admin = crate::identity::grants::ADMIN_ROLE;
        let holds = user_role::Entity::find()
            .filter(user_role::Column::UserId.eq(user_id))
            .filter(user_role::Column::RoleName.eq(admin))
            .count(&self.db)
            .await?
            > 0;
        if !holds {
            return Ok(());
        }
        let others: Vec<uuid::Uuid> = user_role::Entity::find()
            .select_only()
            .column(user_role::Column::UserId)
            .filter(user_role::Column::RoleName.eq(admin))
            .filter(user_role::Column::UserId.ne(user_id))
            .into_tuple()
            .all(&self.db)
            .await?;
        let enabled = user::Entity::find()
            .filter(user::Column::Id.is_in(others))
            .filter(user::Column::Disabled.eq(false))
            .count(&self.db)
            .await?;
        if enabled == 0 {
            return Err(invalid(
                "user",
                "this is the last enabled administrator; give another account the admin role first",
            ));
        }
        Ok(())
    }

    async fn new_erasure(
        &self,
        user_id: uuid::Uuid,
        origin: &str,
        scheduled_for: Option<DateTime<Utc>>,
    ) -> Result<erasure::Model, ComplianceError> {
        let now = self.clock.now();
        let subject = self
            .audit
            .subjects()
            .resolve(&user_id.to_string(), now)
            .await?;
        let row = erasure::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            subject: Set(subject.pseudonym),
            user_id: Set(Some(user_id)),
            status: Set(if scheduled_for.is_some() {
                status::SCHEDULED
            } else {
                status::REQUESTED
            }
            .to_string()),
            step: Set(STEPS[0].to_string()),
            cursor: Set(None),
            transfer_to: Set(None),
            origin: Set(origin.to_string()),
            requested_at: Set(now),
            run_at: Set(scheduled_for),
            step_started_at: Set(None),
            lease_owner: Set(None),
            lease_until: Set(None),
            attempts: Set(0),
            last_error: Set(None),
            decision_note: Set(None),
            summary: Set(None),
            finished_at: Set(None),
        };
        Ok(row.insert(&self.db).await?)
    }

    /// A person asks for their own erasure, confirming with their password. With
    /// `automated_deletion` it is scheduled after the grace period; otherwise it waits for an
    /// admin. Asking again returns the open request.
    pub async fn request_erasure(
        &self,
        principal: &Principal,
        password: &SecretString,
    ) -> Result<Erasure, ComplianceError> {
        let settings = self.erasure_settings()?;
        let user_id = Self::own_id(principal)?;
        self.identity
            .confirm_own_password(principal, password)
            .await
            .map_err(identity_error)?;
        if let Some(open) = self.open_erasure(user_id).await? {
            return self.to_erasure(open).await;
        }
        self.keeps_an_admin(user_id).await?;
        let run_at = settings.automated_deletion.then(|| {
            self.clock.now()
                + chrono::Duration::from_std(settings.grace_period.duration())
                    .unwrap_or(chrono::Duration::days(7))
        });
        let row = self.new_erasure(user_id, "self", run_at).await?;
        self.record_erasure(
            principal.actor(),
            Some(user_id),
            row.id,
            "requested",
            serde_json::json!({ "run_at": run_at.map(|t| t.to_rfc3339()) }),
        )
        .await?;
        self.to_erasure(row).await
    }

    /// An admin (`users:delete`) erases an account; it runs at once, with no grace period.
    pub async fn request_erasure_for(
        &self,
        principal: &Principal,
        user_id: &str,
    ) -> Result<Erasure, ComplianceError> {
        self.erase_now(principal, user_id, "admin").await
    }

    /// An erasure that runs at once (`origin` `admin`, or `retention` from the retention job).
    pub(super) async fn erase_now(
        &self,
        principal: &Principal,
        user_id: &str,
        origin: &str,
    ) -> Result<Erasure, ComplianceError> {
        self.erasure_settings()?;
        principal
            .require(&self.audit, "users", "delete", user_id)
            .await?;
        let uuid = uuid::Uuid::parse_str(user_id)
            .map_err(|_| ComplianceError::UnknownUser(user_id.to_string()))?;
        if user::Entity::find_by_id(uuid)
            .one(&self.db)
            .await?
            .is_none()
        {
            return Err(ComplianceError::UnknownUser(user_id.to_string()));
        }
        if principal.id() == Some(user_id) {
            return Err(invalid(
                "user",
                "ask for your own erasure on your account page (it asks for your password)",
            ));
        }
        if let Some(open) = self.open_erasure(uuid).await? {
            let id = open.id;
            if open.status == status::REQUESTED || open.status == status::SCHEDULED {
                return self.approve_erasure(principal, &id.to_string()).await;
            }
            return self.to_erasure(open).await;
        }
        self.keeps_an_admin(uuid).await?;
        let row = self
            .new_erasure(uuid, origin, Some(self.clock.now()))
            .await?;
        self.record_erasure(
            principal.actor(),
            Some(uuid),
            row.id,
            "requested",
            serde_json::json!({}),
        )
        .await?;
        self.to_erasure(row).await
    }

    /// The caller's own latest request (open or finished), if any.
    pub async fn own_erasure(
        &self,
        principal: &Principal,
    ) -> Result<Option<Erasure>, ComplianceError> {
        let user_id = Self::own_id(principal)?;
        let row = erasure::Entity::find()
            .filter(erasure::Column::UserId.eq(user_id))
            .order_by_desc(erasure::Column::RequestedAt)
            .one(&self.db)
            .await?;
        match row {
            Some(row) => Ok(Some(self.to_erasure(row).await?)),
            None => Ok(None),
        }
    }

    /// Cancels a request that has not started (its owner, or `users:delete`).
    pub async fn cancel_erasure(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Erasure, ComplianceError> {
        let row = self.erasure_row(id).await?;
        let own = row.user_id.map(|u| u.to_string()).as_deref() == principal.id()
            && principal.id().is_some();
        if !own {
            principal
                .require(&self.audit, "users", "delete", id)
                .await?;
        }
        self.decide(principal, row, status::CANCELLED, "cancelled", None)
            .await
    }

    /// Requests for admins (`users:delete`): the open ones, or all (newest first).
    pub async fn list_erasures(
        &self,
        principal: &Principal,
        open_only: bool,
    ) -> Result<Vec<Erasure>, ComplianceError> {
        principal
            .require(&self.audit, "users", "delete", "erasure requests")
            .await?;
        let mut query = erasure::Entity::find().order_by_desc(erasure::Column::RequestedAt);
        if open_only {
            query = query.filter(erasure::Column::Status.is_in([
                status::REQUESTED,
                status::SCHEDULED,
                status::RUNNING,
            ]));
        }
        let rows = query.limit(LIST_LIMIT).all(&self.db).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.to_erasure(row).await?);
        }
        Ok(out)
    }

    /// Approves a request (`users:delete`): it runs at once.
    pub async fn approve_erasure(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Erasure, ComplianceError> {
        principal
            .require(&self.audit, "users", "delete", id)
            .await?;
        let row = self.erasure_row(id).await?;
        if let Some(user_id) = row.user_id {
            self.keeps_an_admin(user_id).await?;
        }
        self.decide(principal, row, status::SCHEDULED, "approved", None)
            .await
    }

    /// Rejects a request with a reason (`users:delete`), e.g. a legal hold (GDPR art. 17(3)).
    pub async fn reject_erasure(
        &self,
        principal: &Principal,
        id: &str,
        reason: &str,
    ) -> Result<Erasure, ComplianceError> {
        principal
            .require(&self.audit, "users", "delete", id)
            .await?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 255 {
            return Err(invalid(
                "reason",
                "say why, in at most 255 characters (the person sees it)",
            ));
        }
        let row = self.erasure_row(id).await?;
        self.decide(principal, row, status::REJECTED, "rejected", Some(reason))
            .await
    }

    async fn erasure_row(&self, id: &str) -> Result<erasure::Model, ComplianceError> {
        erasure::Entity::find_by_id(uuid_of(id)?)
            .one(&self.db)
            .await?
            .ok_or_else(|| ComplianceError::UnknownErasure(id.to_string()))
    }

    /// Moves a request that has not started to `to`, atomically (a running one is not stopped).
    async fn decide(
        &self,
        principal: &Principal,
        row: erasure::Model,
        to: &str,
        stage: &str,
        note: Option<&str>,
    ) -> Result<Erasure, ComplianceError> {
        let now = self.clock.now();
        let mut update = erasure::Entity::update_many()
            .col_expr(erasure::Column::Status, Expr::value(to))
            .col_expr(
                erasure::Column::DecisionNote,
                Expr::value(note.map(str::to_string)),
            )
            .filter(erasure::Column::Id.eq(row.id))
            .filter(erasure::Column::Status.is_in([status::REQUESTED, status::SCHEDULED]));
        if to == status::SCHEDULED {
            update = update.col_expr(erasure::Column::RunAt, Expr::value(Some(now)));
        } else {
            update = update.col_expr(erasure::Column::FinishedAt, Expr::value(Some(now)));
        }
        let changed = update.exec(&self.db).await?.rows_affected;
        if changed == 0 {
            return Err(ComplianceError::ErasureStarted(row.status));
        }
        self.record_erasure(
            principal.actor(),
            row.user_id,
            row.id,
            stage,
            serde_json::json!({ "reason": note }),
        )
        .await?;
        self.to_erasure(self.erasure_row(&row.id.to_string()).await?)
            .await
    }

    /// Runs one unit of the oldest due erasure (called by the server every few seconds and by
    /// `admin erasure run`). See the module docs for the steps.
    pub async fn run_erasures(&self, owner: &str) -> Result<RunOutcome, ComplianceError> {
        let now = self.clock.now();
        let due = erasure::Entity::find()
            .filter(erasure::Column::Status.is_in([status::SCHEDULED, status::RUNNING]))
            .filter(erasure::Column::RunAt.lte(now))
            .filter(
                Condition::any()
                    .add(erasure::Column::LeaseUntil.is_null())
                    .add(erasure::Column::LeaseUntil.lt(now))
                    .add(erasure::Column::LeaseOwner.eq(owner)),
            )
            .order_by_asc(erasure::Column::RunAt)
            .one(&self.db)
            .await?;
        let Some(row) = due else {
            return Ok(RunOutcome::Idle);
        };
        let lease_until = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        let claimed = erasure::Entity::update_many()
            .col_expr(erasure::Column::Status, Expr::value(status::RUNNING))
            .col_expr(
                erasure::Column::LeaseOwner,
                Expr::value(Some(owner.to_string())),
            )
            .col_expr(erasure::Column::LeaseUntil, Expr::value(Some(lease_until)))
            .filter(erasure::Column::Id.eq(row.id))
            .filter(
                Condition::any()
                    .add(erasure::Column::LeaseUntil.is_null())
                    .add(erasure::Column::LeaseUntil.lt(now))
                    .add(erasure::Column::LeaseOwner.eq(owner)),
            )
            .exec(&self.db)
            .await?
            .rows_affected;
        if claimed == 0 {
            return Ok(RunOutcome::Idle);
        }
        if row.status == status::SCHEDULED {
            self.record_erasure(
                Actor::system(),
                row.user_id,
                row.id,
                "started",
                serde_json::json!({}),
            )
            .await?;
        }
        let step = row.step.clone();
        match self.step(&row, now).await {
            Ok(next) => {
                failpoint(&step);
                self.advance(&row, next, now).await
            }
            Err(e) => {
                let error: String = e.to_string().chars().take(255).collect();
                tracing::warn!(erasure = %row.id, step = %step, error = %error, "an erasure step failed; it is retried");
                erasure::Entity::update_many()
                    .col_expr(erasure::Column::Attempts, Expr::value(row.attempts + 1))
                    .col_expr(erasure::Column::LastError, Expr::value(Some(error.clone())))
                    .col_expr(
                        erasure::Column::LeaseOwner,
                        Expr::value(Option::<String>::None),
                    )
                    .filter(erasure::Column::Id.eq(row.id))
                    .exec(&self.db)
                    .await?;
                Ok(RunOutcome::Failed { id: row.id, error })
            }
        }
    }

    async fn advance(
        &self,
        row: &erasure::Model,
        next: Next,
        now: DateTime<Utc>,
    ) -> Result<RunOutcome, ComplianceError> {
        let mut update = erasure::Entity::update_many()
            .col_expr(
                erasure::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                erasure::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                erasure::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .filter(erasure::Column::Id.eq(row.id));
        let outcome = match next {
            Next::Step(step) => {
                update = update
                    .col_expr(erasure::Column::Step, Expr::value(step))
                    .col_expr(erasure::Column::Cursor, Expr::value(Option::<String>::None))
                    .col_expr(erasure::Column::StepStartedAt, Expr::value(Some(now)));
                RunOutcome::Progressed {
                    id: row.id,
                    step: step.to_string(),
                }
            }
            Next::Stay(cursor) => {
                update = update.col_expr(erasure::Column::Cursor, Expr::value(Some(cursor)));
                RunOutcome::Progressed {
                    id: row.id,
                    step: row.step.clone(),
                }
            }
            Next::Wait(until) => {
                update = update.col_expr(erasure::Column::RunAt, Expr::value(Some(until)));
                RunOutcome::Waiting { until }
            }
            Next::Finished => {
                update = update
                    .col_expr(erasure::Column::Status, Expr::value(status::DONE))
                    .col_expr(erasure::Column::Step, Expr::value("done"))
                    .col_expr(erasure::Column::Cursor, Expr::value(Option::<String>::None))
                    .col_expr(erasure::Column::FinishedAt, Expr::value(Some(now)));
                RunOutcome::Done { id: row.id }
            }
        };
        update.exec(&self.db).await?;
        Ok(outcome)
    }

    /// Adds `n` to a counter of the erasure's summary.
    async fn count(&self, row: &erasure::Model, key: &str, n: u64) -> Result<(), ComplianceError> {
        if n == 0 {
            return Ok(());
        }
        let fresh = self.erasure_row(&row.id.to_string()).await?;
        let mut summary = fresh.summary.unwrap_or_else(|| serde_json::json!({}));
        let before = summary
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        summary[key] = serde_json::Value::from(before + n);
        erasure::Entity::update_many()
            .col_expr(erasure::Column::Summary, Expr::value(Some(summary)))
            .filter(erasure::Column::Id.eq(row.id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// One unit of the erasure's current step; idempotent.
    async fn step(
        &self,
        row: &erasure::Model,
        now: DateTime<Utc>,
    ) -> Result<Next, ComplianceError> {
        let user_id = row.user_id;
        match row.step.as_str() {
            "lock" => {
                if let Some(uid) = user_id {
                    let txn = self.db.begin().await?;
                    user::Entity::update_many()
                        .col_expr(user::Column::Disabled, Expr::value(true))
                        .col_expr(
                            user::Column::TokenVersion,
                            Expr::col(user::Column::TokenVersion).add(1),
                        )
                        .filter(user::Column::Id.eq(uid))
                        .exec(&txn)
                        .await?;
                    session::Entity::delete_many()
                        .filter(session::Column::UserId.eq(uid))
                        .exec(&txn)
                        .await?;
                    refresh_token::Entity::delete_many()
                        .filter(refresh_token::Column::UserId.eq(uid))
                        .exec(&txn)
                        .await?;
                    api_token::Entity::delete_many()
                        .filter(api_token::Column::UserId.eq(uid))
                        .exec(&txn)
                        .await?;
                    txn.commit().await?;
                }
                self.audit
                    .subjects()
                    .begin_erasure(&self.db, &row.subject)
                    .await?;
                Ok(Next::Step("settle"))
            }
            "settle" => {
                let started = row.step_started_at.unwrap_or(now);
                let until = started
                    + chrono::Duration::from_std(STATE_TTL + Duration::from_secs(5))
                        .unwrap_or_default();
                if now < until {
                    return Ok(Next::Wait(until));
                }
                self.audit.flush(crate::audit::SHUTDOWN_TIMEOUT).await;
                Ok(Next::Step("modules"))
            }
            "modules" => {
                let Some(uid) = user_id else {
                    return Ok(Next::Step("rows"));
                };
                let owned = module::Entity::find()
                    .filter(module::Column::OwnerId.eq(uid))
                    .order_by_asc(module::Column::Id)
                    .limit(MODULES_PER_CALL)
                    .all(&self.db)
                    .await?;
                if owned.is_empty() {
                    return Ok(Next::Step("rows"));
                }
                let mut deleted = 0;
                for m in &owned {
                    run::Entity::delete_many()
                        .filter(run::Column::ModuleId.eq(m.id))
                        .exec(&self.db)
                        .await?;
                    share::Entity::delete_many()
                        .filter(share::Column::ModuleId.eq(m.id))
                        .exec(&self.db)
                        .await?;
                    self.modules
                        .delete(
                            &Principal::System,
                            &m.id.to_string(),
                            Some("erasure".into()),
                        )
                        .await
                        .map_err(|e| ComplianceError::Step(e.to_string()))?;
                    deleted += 1;
                }
                self.count(row, "modules_deleted", deleted).await?;
                Ok(Next::Stay(
                    owned.last().map(|m| m.id.to_string()).unwrap_or_default(),
                ))
            }
            "rows" => {
                if let Some(uid) = user_id {
                    self.delete_rows(row, uid).await?;
                }
                Ok(Next::Step("scrub_db"))
            }
            "scrub_db" => {
                let after = row
                    .cursor
                    .as_deref()
                    .and_then(|c| c.parse::<i64>().ok())
                    .unwrap_or(0);
                let (changed, last) = self
                    .audit
                    .erase_rows(&row.subject, after, ROWS_PER_CALL)
                    .await?;
                self.count(row, "audit_rows_scrubbed", changed).await?;
                match last {
                    Some(seq) => Ok(Next::Stay(seq.to_string())),
                    None => Ok(Next::Step("scrub_files")),
                }
            }
            "scrub_files" => {
                let lines = self.audit.erase_files(&row.subject).await?;
                self.count(row, "audit_lines_scrubbed", lines).await?;
                Ok(Next::Step("destroy"))
            }
            "destroy" => {
                self.destroy(row, now).await?;
                Ok(Next::Step("compact"))
            }
            "compact" => {
                self.compact().await?;
                Ok(Next::Finished)
            }
            other => Err(ComplianceError::Step(format!(
                "unknown erasure step {other}"
            ))),
        }
    }

    /// Step `rows`: what else the account's id or name is stored with.
    async fn delete_rows(
        &self,
        row: &erasure::Model,
        uid: uuid::Uuid,
    ) -> Result<(), ComplianceError> {
        let runs = run::Entity::delete_many()
            .filter(run::Column::UserId.eq(uid))
            .exec(&self.db)
            .await?
            .rows_affected;
        let shares = share::Entity::delete_many()
            .filter(share::Column::GranteeKind.eq("user"))
            .filter(share::Column::Grantee.eq(uid.to_string()))
            .exec(&self.db)
            .await?
            .rows_affected;
        let exports = self.erase_exports(uid).await?;
        federated_identity::Entity::delete_many()
            .filter(federated_identity::Column::UserId.eq(uid))
            .exec(&self.db)
            .await?;
        user_role::Entity::delete_many()
            .filter(user_role::Column::UserId.eq(uid))
            .exec(&self.db)
            .await?;
        // Second factors: the sealed TOTP secret and passkeys, recovery code hashes, waiting
        // sign-ins and the lockout counter (the foreign keys cascade too; not every SQLite
        // connection enforces them).
        mfa_factor::Entity::delete_many()
            .filter(mfa_factor::Column::UserId.eq(uid))
            .exec(&self.db)
            .await?;
        mfa_recovery_code::Entity::delete_many()
            .filter(mfa_recovery_code::Column::UserId.eq(uid))
            .exec(&self.db)
            .await?;
        mfa_challenge::Entity::delete_many()
            .filter(mfa_challenge::Column::UserId.eq(uid))
            .exec(&self.db)
            .await?;
        mfa_lockout::Entity::delete_by_id(uid)
            .exec(&self.db)
            .await?;
        self.count(row, "runs_deleted", runs).await?;
        self.count(row, "shares_deleted", shares).await?;
        self.count(row, "exports_deleted", exports).await?;
        Ok(())
    }

    /// Step `destroy`: the last event naming the account, the account row, the subject's key.
    async fn destroy(
        &self,
        row: &erasure::Model,
        now: DateTime<Utc>,
    ) -> Result<(), ComplianceError> {
        // Journal segments written before the erasure began go once delivered.
        self.audit.roll_journal()?;
        if let Some(uid) = row.user_id {
            let summary = self
                .erasure_row(&row.id.to_string())
                .await?
                .summary
                .unwrap_or_else(|| serde_json::json!({}));
            // The subject is `erasing`: the event keeps the pseudonym and none of the values.
            self.record_erasure(
                Actor::system(),
                Some(uid),
                row.id,
                "completed",
                serde_json::json!({ "summary": summary }),
            )
            .await?;
        }
        self.audit.flush(crate::audit::SHUTDOWN_TIMEOUT).await;
        let txn = self.db.begin().await?;
        if let Some(uid) = row.user_id {
            if let Some(account) = user::Entity::find_by_id(uid).one(&txn).await? {
                let digest = self.email_digest(&account.email)?;
                let exists = super::entities::erased_email::Entity::find_by_id(digest.clone())
                    .one(&txn)
                    .await?
                    .is_some();
                if !exists {
                    super::entities::erased_email::ActiveModel {
                        digest: Set(digest),
                        erased_at: Set(now),
                    }
                    .insert(&txn)
                    .await?;
                }
                user::Entity::delete_by_id(uid).exec(&txn).await?;
            }
            erasure::Entity::update_many()
                .col_expr(
                    erasure::Column::UserId,
                    Expr::value(Option::<uuid::Uuid>::None),
                )
                .filter(erasure::Column::UserId.eq(uid))
                .exec(&txn)
                .await?;
        }
        self.audit
            .subjects()
            .destroy(&txn, &row.subject, now)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// The keyed hash an erased account's email is kept as (privacy.yml: email, "keep hash for
    /// uniqueness").
    pub fn email_digest(&self, email: &str) -> Result<String, ComplianceError> {
        let (key, _) = crate::secrets::anonymisation_key(&self.data_dir)
            .map_err(|e| ComplianceError::Step(e.to_string()))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&key)
            .map_err(|e| ComplianceError::Step(e.to_string()))?;
        mac.update(email.trim().to_lowercase().as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    /// Whether an address belonged to an erased account.
    pub async fn email_was_erased(&self, email: &str) -> Result<bool, ComplianceError> {
        let digest = self.email_digest(email)?;
        Ok(super::entities::erased_email::Entity::find_by_id(digest)
            .one(&self.db)
            .await?
            .is_some())
    }

    /// Step `compact`: SQLite keeps deleted rows' bytes in free pages and the WAL until it
    /// rewrites the file; PostgreSQL's dead rows are reclaimed by its autovacuum.
    async fn compact(&self) -> Result<(), ComplianceError> {
        let backend = self.db.get_database_backend();
        if backend == sea_orm::DatabaseBackend::Sqlite {
            self.db
                .execute_raw(Statement::from_string(backend, "VACUUM"))
                .await?;
            self.db
                .execute_raw(Statement::from_string(
                    backend,
                    "PRAGMA wal_checkpoint(TRUNCATE)",
                ))
                .await?;
        }
        Ok(())
    }
}
