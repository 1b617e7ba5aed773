//! Reading accounts and roles: lists, search, one user (`users:read`).

use std::collections::BTreeMap;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::{
    Identity, IdentityError, Role, User,
    entities::{role, user, user_role},
    model::to_user,
    roles,
};
use crate::access::Principal;

impl Identity {
    /// Every user, by username (`users:read`).
    pub async fn list_users(&self, principal: &Principal) -> Result<Vec<User>, IdentityError> {
        self.authorize(principal, "users", "read", "*").await?;
        let rows = user::Entity::find()
            .order_by_asc(user::Column::Username)
            .all(&self.db)
            .await?;
        let links = user_role::Entity::find()
            .order_by_asc(user_role::Column::RoleName)
            .all(&self.db)
            .await?;
        let mut roles: BTreeMap<uuid::Uuid, Vec<String>> = BTreeMap::new();
        for link in links {
            roles.entry(link.user_id).or_default().push(link.role_name);
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let roles = roles.remove(&r.id).unwrap_or_default();
                to_user(r, roles)
            })
            .collect())
    }

    /// One user by id (`users:read`).
    pub async fn get_user(&self, principal: &Principal, id: &str) -> Result<User, IdentityError> {
        self.authorize(principal, "users", "read", id).await?;
        self.user_by_id(id).await
    }

    /// One user by id, for a service that has authorized its caller already.
    pub(super) async fn user_by_id(&self, id: &str) -> Result<User, IdentityError> {
        let row = self.row_by_id(id).await?;
        self.find(&row.username).await
    }

    /// The account row with this id; a malformed id is an unknown user.
    pub(super) async fn row_by_id(&self, id: &str) -> Result<user::Model, IdentityError> {
        let unknown = || IdentityError::UnknownUser(id.to_string());
        let uuid = uuid::Uuid::parse_str(id).map_err(|_| unknown())?;
        user::Entity::find_by_id(uuid)
            .one(&self.db)
            .await?
            .ok_or_else(unknown)
    }

    /// Every role with its permissions (`users:read`).
    pub async fn list_roles(&self, principal: &Principal) -> Result<Vec<Role>, IdentityError> {
        self.authorize(principal, "users", "read", "roles").await?;
        let rows = role::Entity::find()
            .order_by_asc(role::Column::Name)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(roles::to_role).collect())
    }

    /// One page of users whose name or email contains `query` (`users:read`), and the total.
    pub async fn search_users(
        &self,
        principal: &Principal,
        query: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<User>, u64), IdentityError> {
        use sea_orm::{PaginatorTrait, QuerySelect, sea_query::ExprTrait};
        self.authorize(principal, "users", "read", "*").await?;
        // Usernames and emails are stored lower-case, so a lower-cased needle matches case-insensitively.
        let needle = query.trim().to_lowercase();
        let mut find = user::Entity::find();
        if !needle.is_empty() {
            let escaped = needle
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            let pattern = sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\');
            find = find.filter(
                sea_orm::Condition::any()
                    .add(
                        sea_orm::sea_query::Expr::col(user::Column::Username).like(pattern.clone()),
                    )
                    .add(sea_orm::sea_query::Expr::col(user::Column::Email).like(pattern)),
            );
        }
        let total = find.clone().count(&self.db).await?;
        let rows = find
            .order_by_asc(user::Column::Username)
            .offset(offset)
            .limit(limit.clamp(1, 200))
            .all(&self.db)
            .await?;
        let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
        let links = user_role::Entity::find()
            .filter(user_role::Column::UserId.is_in(ids))
            .order_by_asc(user_role::Column::RoleName)
            .all(&self.db)
            .await?;
        let mut roles: BTreeMap<uuid::Uuid, Vec<String>> = BTreeMap::new();
        for link in links {
            roles.entry(link.user_id).or_default().push(link.role_name);
        }
        let users = rows
            .into_iter()
            .map(|r| {
                let roles = roles.remove(&r.id).unwrap_or_default();
                to_user(r, roles)
            })
            .collect();
        Ok((users, total))
    }

    /// How many accounts exist (no permission: used to decide whether set-up is needed).
    pub async fn user_count(&self) -> Result<u64, sea_orm::DbErr> {
        use sea_orm::PaginatorTrait;
        user::Entity::find().count(&self.db).await
    }

    /// The account row by username (case-insensitive), if any.
    pub(super) async fn find_row(
        &self,
        username: &str,
    ) -> Result<Option<user::Model>, sea_orm::DbErr> {
        let name = username.trim().to_lowercase();
        user::Entity::find()
            .filter(user::Column::Username.eq(name))
            .one(&self.db)
            .await
    }

    pub(super) async fn row(&self, username: &str) -> Result<user::Model, IdentityError> {
        self.find_row(username)
            .await?
            .ok_or_else(|| IdentityError::UnknownUser(username.trim().to_lowercase()))
    }

    pub(super) async fn find(&self, username: &str) -> Result<User, IdentityError> {
        let row = self.row(username).await?;
        let roles = user_role::Entity::find()
            .filter(user_role::Column::UserId.eq(row.id))
            .order_by_asc(user_role::Column::RoleName)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|l| l.role_name)
            .collect();
        Ok(to_user(row, roles))
    }
}
