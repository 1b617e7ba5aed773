//! `audit_logs`: one row per audit event (fields after GitLab's audit events).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "audit_logs";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TABLE)
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(timestamp_with_time_zone("occurred_at"))
                    .col(string_len("event", 64))
                    .col(string_len_null("actor_id", 64))
                    .col(string_len_null("actor_name", 255))
                    .col(string_len_null("source_ip", 64))
                    .col(string_len_null("user_agent", 512))
                    .col(string_len_null("target_type", 64))
                    .col(string_len_null("target_id", 255))
                    .col(string_len("outcome", 16))
                    .col(json("details"))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_audit_logs_occurred_at", &["occurred_at", "id"][..]),
            ("idx_audit_logs_event", &["event", "occurred_at"][..]),
            ("idx_audit_logs_actor", &["actor_id", "occurred_at"][..]),
        ] {
            let mut index = Index::create();
            index.name(name).table(TABLE).if_not_exists();
            for col in cols {
                index.col(*col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TABLE).to_owned())
            .await
    }
}
