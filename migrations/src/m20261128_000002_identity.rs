//! Accounts and roles: `users`, `roles` (rbac.yml's and custom ones) and `user_roles`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("users")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(string_len_uniq("username", 64))
                    .col(string_len_uniq("email", 255))
                    .col(text_null("password_hash"))
                    .col(boolean("disabled").default(false))
                    .col(integer("token_version").default(0))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("last_login_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("roles")
                    .if_not_exists()
                    .col(string_len("name", 64).primary_key())
                    .col(text("description"))
                    .col(boolean("builtin").default(false))
                    .col(json("permissions"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("user_roles")
                    .if_not_exists()
                    .col(uuid("user_id"))
                    .col(string_len("role_name", 64))
                    .primary_key(Index::create().col("user_id").col("role_name"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_roles_user")
                            .from("user_roles", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_roles_role")
                            .from("user_roles", "role_name")
                            .to("roles", "name")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["user_roles", "roles", "users"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
