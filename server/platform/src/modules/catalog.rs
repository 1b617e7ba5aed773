//! Uploading, listing, reading, renaming and deleting modules, and the per-owner storage quota.

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func},
};

use super::{
    ModuleError, ModuleFilter, ModuleInfo, ModuleStatus, Modules, QUOTA_STRIPES, UploadMeta,
    check_name,
    entities::{module, share},
    error::invalid,
    model::{analysis_json, kind_str},
    storage::{Staged, StorageError},
};
use crate::{
    access::Principal,
    audit::{AuditEvent, EventKind, Outcome},
};

impl Modules {
    /// Whether the principal may upload (`modules:create`), checked before a body is read.
    pub async fn check_can_upload(&self, principal: &Principal) -> Result<(), ModuleError> {
        self.require(principal, "create", "upload").await
    }

    /// Streams an upload into temporary storage (bounded by the upload cap).
    pub async fn stage(
        &self,
        body: impl tokio::io::AsyncRead + Unpin,
    ) -> Result<Staged, ModuleError> {
        Ok(self.store.stage(body, self.max_upload).await?)
    }
    /// Uploads a staged module (`modules:create`): validates and analyses it, stores it encrypted,
    /// and quarantines it when the analysis says so. Audited as `module_upload` (and
    /// `module_quarantine`).
    pub async fn upload(
        &self,
        principal: &Principal,
        meta: UploadMeta,
        staged: Staged,
    ) -> Result<ModuleInfo, ModuleError> {
        self.admit(crate::edge::Action::Upload, principal).await?;
        self.require(principal, "create", &meta.name).await?;
        let Some(owner) = principal.id().and_then(|id| uuid::Uuid::parse_str(id).ok()) else {
            return Err(ModuleError::Forbidden(
                "a user account (modules have owners)".into(),
            ));
        };
        let name = check_name(&meta.name).map_err(|m| invalid("name", m))?;
        if staged.size == 0 {
            return Err(ModuleError::Empty);
        }
        let bytes = tokio::fs::read(&staged.path)
            .await
            .map_err(StorageError::from)?;
        let report = self.analyse(bytes).await?;
        let stripe = usize::from(owner.as_bytes()[15]) % QUOTA_STRIPES;
        let _turn = self.quota_turns[stripe].lock().await;
        self.check_quota(principal, owner, &name, staged.size)
            .await?;
        self.store.commit(&staged).await?;
        let status = self.status_for(&report);
        let now = self.clock.now();
        let model = module::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            name: Set(name),
            description: Set(meta.description.trim().chars().take(2000).collect()),
            owner_id: Set(owner),
            size_bytes: Set(i64::try_from(staged.size).unwrap_or(i64::MAX)),
            sha256: Set(staged.sha256.clone()),
            kind: Set(kind_str(report.kind).to_string()),
            status: Set(status.as_str().to_string()),
            risk_score: Set(i16::from(report.risk_score)),
            suspicious: Set(report.suspicious),
            analysis: Set(analysis_json(&report)),
            policy_hash: Set(self.policy_hash.clone()),
            capability_group: Set(None),
            review_note: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            last_run_at: Set(None),
        };
        let inserted = async {
            let txn = self.writes.begin().await?;
            let row = model.insert(&*txn).await?;
            txn.commit().await?;
            Ok::<_, sea_orm::DbErr>(row)
        };
        let row = match inserted.await {
            Ok(row) => row,
            Err(e) => {
                // The staged file goes with `staged`; the stored copy goes unless a module uses it.
                if let Err(cleanup) = self.remove_unused(&staged.sha256).await {
                    tracing::warn!(error = %cleanup, "could not remove the stored copy of a failed upload");
                }
                return Err(e.into());
            }
        };
        let details = serde_json::json!({ "name": row.name, "sha256": row.sha256, "size_bytes": staged.size, "risk_score": report.risk_score, "status": status.as_str() });
        self.record(
            principal,
            EventKind::ModuleUpload,
            Outcome::Success,
            &row,
            details,
        )
        .await?;
        if status == ModuleStatus::Quarantined {
            let (reason, severity) = if report.suspicious {
                ("suspicious upload (an ids.yml upload rule)", "critical")
            } else {
                ("risk score at or above high_risk_threshold", "high")
            };
            let details = serde_json::json!({
                "reason": reason, "severity": severity, "automatic": true,
                "suspicious": report.suspicious, "size_bytes": staged.size,
            });
            self.record(
                principal,
                EventKind::ModuleQuarantine,
                Outcome::Success,
                &row,
                details,
            )
            .await?;
        }
        self.info(row).await
    }

    /// Refuses an upload that would take the owner's modules past
    /// sandbox.yml `storage.module_quota_per_user`; audited as a denied `module_upload`.
    async fn check_quota(
        &self,
        principal: &Principal,
        owner: uuid::Uuid,
        name: &str,
        size: u64,
    ) -> Result<(), ModuleError> {
        let quota = self
            .config
            .sandbox
            .sandbox
            .storage
            .module_quota_per_user
            .bytes();
        // SUM of a BIGINT is NUMERIC on PostgreSQL: cast it back, on both databases.
        let used: Option<i64> = module::Entity::find()
            .select_only()
            .column_as(
                Expr::cust("CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT)"),
                "used",
            )
            .filter(module::Column::OwnerId.eq(owner))
            .into_tuple()
            .one(&self.db)
            .await?;
        let used = u64::try_from(used.unwrap_or_default()).unwrap_or_default();
        if used.saturating_add(size) <= quota {
            return Ok(());
        }
        let event = AuditEvent::new(EventKind::ModuleUpload, principal.actor(), Outcome::Denied)
            .with_details(serde_json::json!({ "name": name, "size_bytes": size, "reason": "quota_exceeded", "quota_bytes": quota, "used_bytes": used }));
        self.audit.record(event).await?;
        Err(ModuleError::QuotaExceeded { quota })
    }

    /// One module (`modules:read`, ownership and sharing apply).
    pub async fn get(&self, principal: &Principal, id: &str) -> Result<ModuleInfo, ModuleError> {
        self.flush_runs().await;
        let row = self.reach(principal, id, "read").await?;
        self.info(row).await
    }

    /// Modules the principal may see, newest first, one page at a time, and the total.
    pub async fn list(
        &self,
        principal: &Principal,
        filter: &ModuleFilter,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<ModuleInfo>, u64), ModuleError> {
        self.flush_runs().await;
        self.require(principal, "read", "*").await?;
        let mut query = module::Entity::find();
        if let Principal::User { id, roles, .. } = principal
            && !principal.can("modules", "*")
            && self.resource_policy().ownership
        {
            let me = uuid::Uuid::parse_str(id).unwrap_or_default();
            let mut shared = Condition::any().add(
                share::Column::GranteeKind
                    .eq("user")
                    .and(share::Column::Grantee.eq(id.clone())),
            );
            if !roles.is_empty() {
                shared = shared.add(
                    share::Column::GranteeKind
                        .eq("role")
                        .and(share::Column::Grantee.is_in(roles.clone())),
                );
            }
            let shared_ids: Vec<uuid::Uuid> = if self.resource_policy().sharing {
                share::Entity::find()
                    .filter(shared)
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .map(|s| s.module_id)
                    .collect()
            } else {
                Vec::new()
            };
            query = query.filter(
                Condition::any()
                    .add(module::Column::OwnerId.eq(me))
                    .add(module::Column::Id.is_in(shared_ids)),
            );
        }
        if let Some(status) = filter.status {
            query = query.filter(module::Column::Status.eq(status.as_str()));
        }
        if let Some(owner) = filter.owner.as_deref().filter(|o| !o.trim().is_empty()) {
            let owner_id = self.user_id(owner).await?.unwrap_or_default();
            query = query.filter(module::Column::OwnerId.eq(owner_id));
        }
        if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let pattern = format!(
                "%{}%",
                q.to_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            query = query.filter(
                Condition::any()
                    .add(
                        Expr::expr(Func::lower(Expr::col(module::Column::Name)))
                            .like(pattern.clone()),
                    )
                    .add(
                        Expr::expr(Func::lower(Expr::col(module::Column::Description)))
                            .like(pattern),
                    ),
            );
        }
        let total = query.clone().count(&self.db).await?;
        let rows = query
            .order_by_desc(module::Column::CreatedAt)
            .order_by_desc(module::Column::Id)
            .offset(offset)
            .limit(limit.clamp(1, 200))
            .all(&self.db)
            .await?;
        Ok((self.infos(rows).await?, total))
    }

    /// Renames or re-describes a module (`modules:update`).
    pub async fn update(
        &self,
        principal: &Principal,
        id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<ModuleInfo, ModuleError> {
        let row = self.reach(principal, id, "update").await?;
        let mut active: module::ActiveModel = row.into();
        if let Some(name) = name {
            active.name = Set(check_name(&name).map_err(|m| invalid("name", m))?);
        }
        if let Some(description) = description {
            active.description = Set(description.trim().chars().take(2000).collect());
        }
        active.updated_at = Set(self.clock.now());
        let txn = self.writes.begin().await?;
        let row = active.update(&*txn).await?;
        txn.commit().await?;
        self.info(row).await
    }

    /// Deletes a module and, when no other module holds the same bytes, its file
    /// (`modules:delete`); audited as `module_delete` with the reason.
    pub async fn delete(
        &self,
        principal: &Principal,
        id: &str,
        reason: Option<String>,
    ) -> Result<(), ModuleError> {
        let row = self.reach(principal, id, "delete").await?;
        let txn = self.writes.begin().await?;
        module::Entity::delete_by_id(row.id).exec(&*txn).await?;
        txn.commit().await?;
        self.remove_unused(&row.sha256).await?;
        let details = serde_json::json!({ "name": row.name, "sha256": row.sha256, "reason": reason, "owner_id": row.owner_id.to_string() });
        self.record(
            principal,
            EventKind::ModuleDelete,
            Outcome::Success,
            &row,
            details,
        )
        .await
    }

    /// Deletes the stored file of `sha256` unless a module still holds the same bytes.
    async fn remove_unused(&self, sha256: &str) -> Result<(), ModuleError> {
        let others = module::Entity::find()
            .filter(module::Column::Sha256.eq(sha256))
            .count(&self.db)
            .await?;
        if others == 0 {
            self.store.remove(sha256).await?;
        }
        Ok(())
    }
}
