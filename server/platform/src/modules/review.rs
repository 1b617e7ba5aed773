//! An administrator's decisions on a module (`modules:*`): the review queue, quarantine and
//! release, and the sandbox.yml capability group a module runs with.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::{ModuleError, ModuleInfo, ModuleStatus, Modules, entities::module, error::invalid};
use crate::{
    access::Principal,
    audit::{EventKind, Outcome},
};

impl Modules {
    /// Modules waiting for review or quarantined (`modules:*`), worst first.
    pub async fn review_queue(
        &self,
        principal: &Principal,
    ) -> Result<Vec<ModuleInfo>, ModuleError> {
        self.require(principal, "*", "review-queue").await?;
        let rows = module::Entity::find()
            .filter(module::Column::Status.is_in(["review", "quarantined"]))
            .order_by_desc(module::Column::RiskScore)
            .order_by_desc(module::Column::CreatedAt)
            .all(&self.db)
            .await?;
        self.infos(rows).await
    }

    /// Releases a module from review or quarantine, or quarantines it (`modules:*`), with a reason;
    /// audited as `module_release` / `module_quarantine`.
    pub async fn set_quarantine(
        &self,
        principal: &Principal,
        id: &str,
        quarantine: bool,
        reason: &str,
    ) -> Result<ModuleInfo, ModuleError> {
        self.require(principal, "*", id).await?;
        let row = self.reach(principal, id, "read").await?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(invalid(
                "reason",
                "give a reason; it is kept in the audit log",
            ));
        }
        let (status, kind) = if quarantine {
            (ModuleStatus::Quarantined, EventKind::ModuleQuarantine)
        } else {
            (ModuleStatus::Active, EventKind::ModuleRelease)
        };
        let mut active: module::ActiveModel = row.into();
        active.status = Set(status.as_str().to_string());
        active.review_note = Set(Some(reason.chars().take(2000).collect()));
        active.updated_at = Set(self.clock.now());
        let txn = self.writes.begin().await?;
        let row = active.update(&*txn).await?;
        txn.commit().await?;
        self.record(
            principal,
            kind,
            Outcome::Success,
            &row,
            serde_json::json!({ "reason": reason, "automatic": false }),
        )
        .await?;
        self.info(row).await
    }

    /// Assigns a sandbox.yml `module_capabilities` group to a module, or none (`modules:*`);
    /// audited as `module_update`… recorded under `config_change`.
    pub async fn set_capability_group(
        &self,
        principal: &Principal,
        id: &str,
        group: Option<String>,
    ) -> Result<ModuleInfo, ModuleError> {
        self.require(principal, "*", id).await?;
        let row = self.reach(principal, id, "read").await?;
        if let Some(g) = &group
            && !self
                .config
                .sandbox
                .sandbox
                .module_capabilities
                .contains_key(g)
        {
            let known: Vec<&String> = self
                .config
                .sandbox
                .sandbox
                .module_capabilities
                .keys()
                .collect();
            return Err(invalid(
                "capability_group",
                format!("no capability group \"{g}\" in sandbox.yml (known: {known:?})"),
            ));
        }
        let before = row.capability_group.clone();
        let mut active: module::ActiveModel = row.into();
        active.capability_group = Set(group.clone());
        active.updated_at = Set(self.clock.now());
        let txn = self.writes.begin().await?;
        let row = active.update(&*txn).await?;
        txn.commit().await?;
        let details =
            serde_json::json!({ "setting": "capability_group", "from": before, "to": group });
        self.record(
            principal,
            EventKind::ConfigChange,
            Outcome::Success,
            &row,
            details,
        )
        .await?;
        self.info(row).await
    }
}
