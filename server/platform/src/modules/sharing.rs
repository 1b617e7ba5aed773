//! Sharing a module with a user or a role, and withdrawing a share (owner, or `modules:*`).

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::{Grantee, ModuleError, ModuleInfo, Modules, entities::share, error::invalid};
use crate::{
    access::Principal,
    audit::{EventKind, Outcome},
};

impl Modules {
    pub(super) async fn user_id(&self, username: &str) -> Result<Option<uuid::Uuid>, ModuleError> {
        use crate::identity::entities::user;
        Ok(user::Entity::find()
            .filter(user::Column::Username.eq(username.trim().to_lowercase()))
            .one(&self.db)
            .await?
            .map(|u| u.id))
    }

    /// An enabled account's id. Unknown and disabled names look the same to the caller, so sharing
    /// does not tell who has an account.
    async fn active_user_id(&self, username: &str) -> Result<Option<uuid::Uuid>, ModuleError> {
        use crate::identity::entities::user;
        Ok(user::Entity::find()
            .filter(user::Column::Username.eq(username.trim().to_lowercase()))
            .filter(user::Column::Disabled.eq(false))
            .one(&self.db)
            .await?
            .map(|u| u.id))
    }

    /// Shares a module with a user or a role (owner, or `modules:*`); audited as `module_share`.
    /// Unknown and disabled users get the same refusal (see [`Self::active_user_id`]).
    pub async fn share(
        &self,
        principal: &Principal,
        id: &str,
        grantee: Grantee,
    ) -> Result<ModuleInfo, ModuleError> {
        let row = self.reach(principal, id, "read").await?;
        self.require_owner(principal, &row, "share").await?;
        if !self.resource_policy().sharing {
            return Err(ModuleError::Conflict(
                "rbac.yml turns sharing of modules off".into(),
            ));
        }
        let (kind, key) = match &grantee {
            Grantee::User(name) => (
                "user",
                self.active_user_id(name)
                    .await?
                    .ok_or_else(|| {
                        invalid(
                            "user",
                            format!("cannot share with \"{name}\": no active account by that name"),
                        )
                    })?
                    .to_string(),
            ),
            Grantee::Role(name) => {
                use crate::identity::entities::role;
                if role::Entity::find_by_id(name.clone())
                    .one(&self.db)
                    .await?
                    .is_none()
                {
                    return Err(invalid("role", format!("no role named \"{name}\"")));
                }
                ("role", name.clone())
            }
        };
        let exists = share::Entity::find_by_id((row.id, kind.to_string(), key.clone()))
            .one(&self.db)
            .await?
            .is_some();
        if !exists {
            let txn = self.writes.begin().await?;
            share::ActiveModel {
                module_id: Set(row.id),
                grantee_kind: Set(kind.into()),
                grantee: Set(key),
                created_at: Set(self.clock.now()),
            }
            .insert(&*txn)
            .await?;
            txn.commit().await?;
            self.record(
                principal,
                EventKind::ModuleShare,
                Outcome::Success,
                &row,
                serde_json::json!({ "action": "share", "with": grantee }),
            )
            .await?;
        }
        self.info(row).await
    }

    /// Withdraws a share; audited as `module_share`.
    pub async fn unshare(
        &self,
        principal: &Principal,
        id: &str,
        grantee: Grantee,
    ) -> Result<ModuleInfo, ModuleError> {
        let row = self.reach(principal, id, "read").await?;
        self.require_owner(principal, &row, "share").await?;
        let (kind, key) = match &grantee {
            Grantee::User(name) => (
                "user",
                self.user_id(name)
                    .await?
                    .map(|u| u.to_string())
                    .unwrap_or_default(),
            ),
            Grantee::Role(name) => ("role", name.clone()),
        };
        let txn = self.writes.begin().await?;
        let gone = share::Entity::delete_by_id((row.id, kind.to_string(), key))
            .exec(&*txn)
            .await?;
        txn.commit().await?;
        if gone.rows_affected > 0 {
            self.record(
                principal,
                EventKind::ModuleShare,
                Outcome::Success,
                &row,
                serde_json::json!({ "action": "unshare", "with": grantee }),
            )
            .await?;
        }
        self.info(row).await
    }
}
