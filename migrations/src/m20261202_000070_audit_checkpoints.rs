//! `audit_checkpoints`: where retention cut the front of the audit chain. A row records the last
//! pruned `seq`, its hash and how many events went, signed with the chain key (kept outside the
//! database), so verification starts there; deleting old rows without a signed checkpoint still
//! breaks the chain.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("audit_checkpoints")
                    .if_not_exists()
                    .col(big_integer("seq").primary_key())
                    .col(string_len("hash", 64))
                    .col(big_integer("pruned"))
                    .col(timestamp_with_time_zone("cutoff"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(string_len("sig", 64))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("audit_checkpoints").to_owned())
            .await
    }
}
