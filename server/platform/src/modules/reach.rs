//! Who reaches a module: ownership and sharing as rbac.yml's `resources` section says, the cached
//! access a run decides on, and whether a module's status lets it run.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::{
    ModuleAccess, ModuleError, ModuleStatus, Modules, RunTarget,
    entities::{module, share},
};
use crate::{
    access::{Principal, Relation},
    denial::Denial,
};

impl Modules {
    /// The caller's relation to a module.
    async fn relation(
        &self,
        principal: &Principal,
        row: &module::Model,
    ) -> Result<Relation, ModuleError> {
        if matches!(principal, Principal::User { id, .. } if row.owner_id.to_string() != *id) {
            let shares = share::Entity::find()
                .filter(share::Column::ModuleId.eq(row.id))
                .all(&self.db)
                .await?;
            return Ok(relation_with(principal, row.owner_id, &shares));
        }
        Ok(relation_with(principal, row.owner_id, &[]))
    }

    pub(super) fn resource_policy(&self) -> crate::config::rbac::ResourcePolicy {
        self.config
            .rbac
            .resources
            .get("modules")
            .copied()
            .unwrap_or(crate::config::rbac::ResourcePolicy {
                ownership: true,
                sharing: true,
            })
    }

    /// Loads a module the principal may `action`; modules they may not see at all are "not found".
    pub(crate) async fn reach(
        &self,
        principal: &Principal,
        id: &str,
        action: &str,
    ) -> Result<module::Model, ModuleError> {
        let not_found = || ModuleError::NotFound(id.to_string());
        let uuid = uuid::Uuid::parse_str(id).map_err(|_| not_found())?;
        let row = module::Entity::find_by_id(uuid)
            .one(&self.db)
            .await?
            .ok_or_else(not_found)?;
        let relation = self.relation(principal, &row).await?;
        self.check_reach(principal, id, action, relation).await?;
        Ok(row)
    }

    /// [`Self::reach`] for runs: owner, shares, status, capability group and content hash come
    /// from memory while no module, share, account or role changed anywhere (see
    /// [`crate::generation`]).
    pub(crate) async fn reach_for_run(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<RunTarget, ModuleError> {
        let not_found = || ModuleError::NotFound(id.to_string());
        let uuid = uuid::Uuid::parse_str(id).map_err(|_| not_found())?;
        let access = self
            .access
            .get_or_load(&uuid, self.load_access(uuid))
            .await?;
        let Some(access) = Option::as_ref(&access) else {
            return Err(not_found());
        };
        let relation = relation_with(principal, access.owner_id, &access.shares);
        self.check_reach(principal, id, "execute", relation).await?;
        if access.stale {
            // Not yet reached by the background re-analysis: analysed now, for a caller who may
            // run it, so nothing runs under outdated rules.
            let row = module::Entity::find_by_id(uuid)
                .one(&self.db)
                .await?
                .ok_or_else(not_found)?;
            let row = if row.policy_hash == self.policy_hash {
                row
            } else {
                self.reanalyse(row).await?
            };
            return Ok(run_target(row));
        }
        Ok(access.target.clone())
    }

    async fn load_access(&self, id: uuid::Uuid) -> Result<Option<ModuleAccess>, ModuleError> {
        let Some(row) = module::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(None);
        };
        let shares = share::Entity::find()
            .filter(share::Column::ModuleId.eq(id))
            .all(&self.db)
            .await?;
        Ok(Some(ModuleAccess {
            stale: row.policy_hash != self.policy_hash,
            owner_id: row.owner_id,
            target: run_target(row),
            shares,
        }))
    }

    async fn check_reach(
        &self,
        principal: &Principal,
        id: &str,
        action: &str,
        relation: Relation,
    ) -> Result<(), ModuleError> {
        let not_found = || ModuleError::NotFound(id.to_string());
        let policy = self.resource_policy();
        if !principal.can_on("modules", "read", policy, relation) {
            // Invisible modules are not confirmed to exist, but the attempt is audited.
            return Err(
                match principal.deny(&self.audit, "modules:read", id, None).await {
                    Denial::Forbidden(_) => not_found(),
                    Denial::Audit(e) => e.into(),
                },
            );
        }
        if !principal.can_on("modules", action, policy, relation) {
            let permission = format!("modules:{action}");
            return Err(principal
                .deny(&self.audit, &permission, id, None)
                .await
                .into());
        }
        Ok(())
    }

    pub(super) async fn require_owner(
        &self,
        principal: &Principal,
        row: &module::Model,
        what: &str,
    ) -> Result<(), ModuleError> {
        let owner = matches!(principal, Principal::System)
            || principal.id() == Some(row.owner_id.to_string().as_str());
        if owner || principal.can("modules", "*") {
            Ok(())
        } else {
            let permission = format!("modules:{what} (owner or modules:*)");
            Err(principal
                .deny(&self.audit, &permission, &row.id.to_string(), None)
                .await
                .into())
        }
    }

    /// Whether a module in `status` may run: quarantined never, in review only when
    /// static_analysis.yml `quarantine.run_in_review` allows it.
    pub(crate) fn runnable(&self, id: &str, status: &str) -> Result<(), ModuleError> {
        match ModuleStatus::parse(status) {
            Some(ModuleStatus::Active) => Ok(()),
            Some(ModuleStatus::Review)
                if self
                    .config
                    .static_analysis
                    .static_analysis
                    .quarantine
                    .run_in_review =>
            {
                Ok(())
            }
            Some(ModuleStatus::Review) => Err(ModuleError::InReview(id.to_string())),
            Some(ModuleStatus::Quarantined) | None => Err(ModuleError::Quarantined(id.to_string())),
        }
    }
}

fn run_target(row: module::Model) -> RunTarget {
    RunTarget {
        id: row.id,
        status: row.status,
        sha256: row.sha256,
        capability_group: row.capability_group,
    }
}

/// How the caller relates to a module, given its shares.
fn relation_with(principal: &Principal, owner_id: uuid::Uuid, shares: &[share::Model]) -> Relation {
    let Principal::User { id, roles, .. } = principal else {
        return Relation::Owner;
    };
    if owner_id.to_string() == *id {
        return Relation::Owner;
    }
    let shared = shares.iter().any(|s| {
        (s.grantee_kind == "user" && s.grantee == *id)
            || (s.grantee_kind == "role" && roles.contains(&s.grantee))
    });
    if shared {
        Relation::SharedWith
    } else {
        Relation::Other
    }
}
