//! `modules` (uploaded WebAssembly, stored encrypted on disk by content hash), `module_shares`
//! (who else may see and run a module) and `module_runs` (each execution).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("modules")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(string_len("name", 128))
                    .col(text("description").default(""))
                    .col(uuid("owner_id"))
                    .col(big_integer("size_bytes"))
                    .col(string_len("sha256", 64))
                    .col(string_len("kind", 16))
                    .col(string_len("status", 16))
                    .col(small_integer("risk_score"))
                    .col(boolean("suspicious").default(false))
                    .col(json("analysis"))
                    .col(string_len("policy_hash", 64))
                    .col(string_len_null("capability_group", 128))
                    .col(text_null("review_note"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("last_run_at"))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_modules_owner", "owner_id"),
            ("idx_modules_status", "status"),
            ("idx_modules_sha256", "sha256"),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table("modules")
                        .col(col)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("module_shares")
                    .if_not_exists()
                    .col(uuid("module_id"))
                    .col(string_len("grantee_kind", 8))
                    .col(string_len("grantee", 128))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(
                        Index::create()
                            .col("module_id")
                            .col("grantee_kind")
                            .col("grantee"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_module_shares_module")
                            .from("module_shares", "module_id")
                            .to("modules", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_module_shares_grantee")
                    .table("module_shares")
                    .col("grantee")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("module_runs")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(uuid("module_id"))
                    .col(uuid_null("user_id"))
                    .col(string_len("actor", 128))
                    .col(string_len("mode", 16))
                    .col(string_len("outcome", 48))
                    .col(big_integer("duration_us"))
                    .col(big_integer("peak_memory_bytes"))
                    .col(big_integer("iterations"))
                    .col(json("result"))
                    .col(timestamp_with_time_zone("started_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_module_runs_module")
                            .from("module_runs", "module_id")
                            .to("modules", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_module_runs_module")
                    .table("module_runs")
                    .col("module_id")
                    .col("started_at")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("module_runs").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("module_shares").to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table("modules").to_owned())
            .await
    }
}
