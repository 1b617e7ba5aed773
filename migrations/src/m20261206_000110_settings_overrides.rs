//! The settings an administrator changed on the Compliance page (privacy.yml and soc2.yml): one
//! row per file holding only the keys that differ from the file, as dotted key → YAML value
//! (JSON text). The files on disk are never rewritten; the platform applies file, then this
//! layer. `version` moves on every save, so a save made from an older page is refused instead of
//! overwriting the other administrator's change. Every replica reads the same rows.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("settings_overrides")
                    .if_not_exists()
                    .col(string_len("file", 32).primary_key())
                    .col(text("overrides"))
                    .col(big_integer("version"))
                    .col(string_len_null("updated_by", 128))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("settings_overrides").to_owned())
            .await
    }
}
