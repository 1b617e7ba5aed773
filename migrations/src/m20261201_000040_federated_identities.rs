//! `federated_identities`: who a person is at an outside identity provider (Google, LDAP), as the
//! pair (provider, subject) the provider vouches for — never matched by name or email. Each row
//! belongs to one account; an account may have several, and loses them when it is deleted.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("federated_identities")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(uuid("user_id"))
                    .col(string_len("provider", 32))
                    .col(string_len("subject", 255))
                    .col(string_len_null("email", 255))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("last_login_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_federated_identities_user")
                            .from("federated_identities", "user_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_federated_identities_subject")
                    .table("federated_identities")
                    .col("provider")
                    .col("subject")
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_federated_identities_user")
                    .table("federated_identities")
                    .col("user_id")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("federated_identities").to_owned())
            .await
    }
}
