//! `sessions` rows are keyed by the SHA-256 of the session id from now on (the cookie value never
//! reaches the database). Rows keyed by a plain id cannot be converted on both engines, and must
//! not stay readable, so every existing session ends: browsers sign in again.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let delete = Query::delete().from_table("sessions").to_owned();
        manager.execute(delete).await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
