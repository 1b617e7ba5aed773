//! Analysing modules: the verdict an analysis gives an upload, and re-analysis of modules analysed
//! under other rules than the current ones (a background step, and before a stale module runs).

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::{
    ModuleError, ModuleStatus, Modules, Reanalysis, entities::module, model::analysis_json,
    storage::StorageError,
};
use crate::{
    access::Principal,
    audit::{EventKind, Outcome},
};

impl Modules {
    pub(super) fn status_for(&self, report: &analysis::Report) -> ModuleStatus {
        let q = &self.config.static_analysis.static_analysis.quarantine;
        match report.verdict {
            _ if !q.enabled => ModuleStatus::Active,
            analysis::Verdict::Quarantined if q.auto_quarantine || report.suspicious => {
                ModuleStatus::Quarantined
            }
            analysis::Verdict::Quarantined | analysis::Verdict::Review => ModuleStatus::Review,
            analysis::Verdict::Active => ModuleStatus::Active,
        }
    }

    pub(super) async fn analyse(&self, bytes: Vec<u8>) -> Result<analysis::Report, ModuleError> {
        let policy = self.policy.clone();
        tokio::task::spawn_blocking(move || analysis::analyze_with_threads(&bytes, &policy, 1))
            .await
            .map_err(|e| ModuleError::Storage(StorageError::Io(std::io::Error::other(e))))?
            .map_err(ModuleError::from)
    }

    fn stale(&self) -> sea_orm::Select<module::Entity> {
        module::Entity::find().filter(module::Column::PolicyHash.ne(self.policy_hash.clone()))
    }

    /// How many stored modules were analysed under other rules than the current ones.
    pub async fn stale_count(&self) -> Result<u64, ModuleError> {
        use sea_orm::PaginatorTrait;
        Ok(self.stale().count(&self.db).await?)
    }

    /// One step of the background re-analysis: analyses the oldest module whose analysis predates
    /// the current rules (see [`Self::stale_count`]). Start-up does none of this work; `serve`
    /// runs these steps behind the listener, and a run of a stale module re-analyses it first.
    pub async fn reanalyse_next(&self) -> Result<Reanalysis, ModuleError> {
        let Some(row) = self
            .stale()
            .order_by_asc(module::Column::CreatedAt)
            .one(&self.db)
            .await?
        else {
            return Ok(Reanalysis::Idle);
        };
        let updated = self.reanalyse(row).await?;
        Ok(Reanalysis::Reanalysed {
            id: updated.id.to_string(),
            status: updated.status,
        })
    }

    /// Analyses one module again under the current rules and stores the new report and status;
    /// a new quarantine is audited as `module_quarantine`.
    pub(super) async fn reanalyse(&self, row: module::Model) -> Result<module::Model, ModuleError> {
        let bytes = self.store.read(&row.sha256).await?;
        let report = self.analyse(bytes).await?;
        let status = match (self.status_for(&report), ModuleStatus::parse(&row.status)) {
            // A released module stays released unless the new rules quarantine it.
            (ModuleStatus::Review, Some(ModuleStatus::Active)) if row.review_note.is_some() => {
                ModuleStatus::Active
            }
            (new, _) => new,
        };
        let mut active: module::ActiveModel = row.clone().into();
        active.risk_score = Set(i16::from(report.risk_score));
        active.suspicious = Set(report.suspicious);
        active.analysis = Set(analysis_json(&report));
        active.status = Set(status.as_str().to_string());
        active.policy_hash = Set(self.policy_hash.clone());
        active.updated_at = Set(self.clock.now());
        let txn = self.writes.begin().await?;
        let updated = active.update(&*txn).await?;
        txn.commit().await?;
        if status == ModuleStatus::Quarantined && row.status != "quarantined" {
            let details = serde_json::json!({
                "reason": "re-analysis under changed rules",
                "automatic": true
            });
            self.record(
                &Principal::System,
                EventKind::ModuleQuarantine,
                Outcome::Success,
                &updated,
                details,
            )
            .await?;
        }
        Ok(updated)
    }
}
