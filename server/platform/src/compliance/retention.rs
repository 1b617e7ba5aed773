//! Retention (privacy.yml `data_retention`): a job that removes what is past its period.
//!
//! - `user_data` (2y after the last sign-in; accounts that never signed in count from their
//!   creation): the account is erased exactly as a person's own request would be (origin
//!   `retention`, run at once), so its audit values go too. The last enabled administrator is kept.
//! - `module_data` (1y after the last run, or the upload when never run): the module is deleted
//!   (`module_delete` with reason `retention`).
//! - `audit_logs` (7y): the oldest events are pruned behind a signed checkpoint
//!   (`audit/checkpoint.rs`), so the rest of the chain still verifies.
//! - `metrics_data` (90d): the platform keeps no metrics history of its own (Prometheus scrapes
//!   `/metrics` and keeps its own), so nothing is stored to remove; the report says so.
//!
//! The job is idempotent (a second run finds nothing) and resumable (each part commits on its
//! own; an interrupted run is finished by the next). The server runs it once a day;
//! `wasm-as-os admin retention run [--dry-run]` runs it now, and `--dry-run` only reports.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;

use super::{Compliance, ComplianceError, erasure::status};
use crate::{
    access::Principal,
    audit::{Actor, AuditEvent, EventKind, Outcome},
    identity::entities::user,
    modules::entities::module,
};

/// What a run removed (or, dry, would remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub dry_run: bool,
    pub ran_at: DateTime<Utc>,
    /// Accounts past `user_data` whose erasure was scheduled (usernames; the erasure removes them).
    pub accounts: Vec<String>,
    /// Modules past `module_data`, deleted.
    pub modules: Vec<String>,
    /// Audit events past `audit_logs`, pruned behind a checkpoint.
    pub audit_events: u64,
    /// Always 0: no metrics history is stored here.
    pub metrics: u64,
}

fn before(now: DateTime<Utc>, span: crate::config::units::Span) -> DateTime<Utc> {
    now - chrono::Duration::from_std(span.duration()).unwrap_or(chrono::Duration::MAX)
}

impl Compliance {
    /// Applies privacy.yml `data_retention` as of now (see the module docs).
    pub async fn run_retention(&self, dry_run: bool) -> Result<RetentionReport, ComplianceError> {
        let now = self.clock.now();
        let periods = self.privacy().data_retention;
        let accounts = self
            .retire_accounts(before(now, periods.user_data), dry_run)
            .await?;
        let modules = self
            .retire_modules(before(now, periods.module_data), dry_run)
            .await?;
        let audit_events = self
            .audit
            .prune(before(now, periods.audit_logs), dry_run)
            .await?
            .events;
        let report = RetentionReport {
            dry_run,
            ran_at: now,
            accounts,
            modules,
            audit_events,
            metrics: 0,
        };
        if !dry_run {
            let details = serde_json::json!({
                "job": "retention",
                "accounts": report.accounts.len(),
                "modules": report.modules.len(),
                "audit_events": report.audit_events,
                "metrics": 0,
            });
            self.audit
                .record(
                    AuditEvent::new(EventKind::RetentionRun, Actor::system(), Outcome::Success)
                        .with_details(details),
                )
                .await?;
        }
        Ok(report)
    }

    /// Applies privacy.yml `data_anonymization` as of now: the full client addresses and user
    /// agents older than the IDS window are dropped, their reduced forms stay (see
    /// `audit/anonymise.rs`). A pass that changed anything is a `retention_run` event with
    /// `job: anonymisation`. The server runs it every hour.
    pub async fn anonymise(&self) -> Result<crate::audit::anonymise::Anonymised, ComplianceError> {
        let done = self.audit.anonymise().await?;
        if done != crate::audit::anonymise::Anonymised::default() {
            let details = serde_json::json!({
                "job": "anonymisation",
                "addresses": done.addresses,
                "user_agents": done.user_agents,
                "file_lines": done.lines,
            });
            self.audit
                .record(
                    AuditEvent::new(EventKind::RetentionRun, Actor::system(), Outcome::Success)
                        .with_details(details),
                )
                .await?;
        }
        Ok(done)
    }

    async fn retire_accounts(
        &self,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Vec<String>, ComplianceError> {
        let stale = user::Entity::find()
            .filter(
                Condition::any()
                    .add(user::Column::LastLoginAt.lt(cutoff))
                    .add(
                        Condition::all()
                            .add(user::Column::LastLoginAt.is_null())
                            .add(user::Column::CreatedAt.lt(cutoff)),
                    ),
            )
            .limit(1000)
            .all(&self.db)
            .await?;
        let mut names = Vec::new();
        for account in stale {
            if self.keeps_an_admin(account.id).await.is_err() {
                continue;
            }
            if let Some(open) = self.open_erasure(account.id).await? {
                if open.status == status::REQUESTED && !dry_run {
                    self.approve_erasure(&Principal::System, &open.id.to_string())
                        .await?;
                }
                if open.status != status::RUNNING {
                    names.push(account.username);
                }
                continue;
            }
            if !dry_run {
                self.erase_now(&Principal::System, &account.id.to_string(), "retention")
                    .await?;
            }
            names.push(account.username);
        }
        Ok(names)
    }

    async fn retire_modules(
        &self,
        cutoff: DateTime<Utc>,
        dry_run: bool,
    ) -> Result<Vec<String>, ComplianceError> {
        let stale = module::Entity::find()
            .filter(
                Condition::any()
                    .add(module::Column::LastRunAt.lt(cutoff))
                    .add(
                        Condition::all()
                            .add(module::Column::LastRunAt.is_null())
                            .add(module::Column::CreatedAt.lt(cutoff)),
                    ),
            )
            .limit(1000)
            .all(&self.db)
            .await?;
        let mut names = Vec::new();
        for m in stale {
            if !dry_run {
                self.modules
                    .delete(
                        &Principal::System,
                        &m.id.to_string(),
                        Some("retention".into()),
                    )
                    .await
                    .map_err(|e| ComplianceError::Step(e.to_string()))?;
            }
            names.push(m.name);
        }
        Ok(names)
    }
}
