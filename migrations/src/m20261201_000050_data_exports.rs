//! `data_exports`: personal-data export requests (privacy.yml `data_export`). A row tracks one
//! request from `queued` to `ready` (the prepared file waits under `<data dir>/exports/`), then
//! `downloaded`, `expired` or `failed`. The file is fetched at most once; the row stays as the
//! record of the request (the compliance page lists them) and goes with its account.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("data_exports")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(uuid("user_id"))
                    .col(uuid_null("requested_by"))
                    .col(string_len("format", 8))
                    .col(string_len("encryption", 16))
                    .col(boolean("include_binaries"))
                    .col(string_len("status", 16))
                    .col(small_integer("progress"))
                    .col(string_len_null("error", 255))
                    .col(big_integer_null("size_bytes"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .col(timestamp_with_time_zone_null("expires_at"))
                    .col(timestamp_with_time_zone_null("downloaded_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_data_exports_user")
                            .from("data_exports", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_data_exports_user")
                    .table("data_exports")
                    .col("user_id")
                    .col("created_at")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_data_exports_status")
                    .table("data_exports")
                    .col("status")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("data_exports").to_owned())
            .await
    }
}
