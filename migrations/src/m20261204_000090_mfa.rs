//! Second factors (soc2.yml `security.multi_factor_auth`):
//!
//! - `mfa_factors`: a user's TOTP authenticator (its secret sealed with AES-256-GCM under a key
//!   derived from the platform's storage key; counts once `confirmed`; `last_step` refuses a replay);
//! - `mfa_recovery_codes`: ten single-use codes, kept as keyed hashes;
//! - `mfa_challenges`: the half-finished sign-ins waiting for a second factor, keyed by the SHA-256
//!   of the challenge id the caller holds, short-lived;
//! - `mfa_lockouts`: wrong second factors in a row, and until when the step is locked.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn owned_by_user(table: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_user"))
        .from(table, "user_id")
        .to("users", "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("mfa_factors")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(uuid("user_id"))
                    .col(string_len("kind", 16))
                    .col(string_len("name", 64))
                    .col(text("secret"))
                    .col(boolean("confirmed"))
                    .col(big_integer_null("last_step"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("last_used_at"))
                    .foreign_key(&mut owned_by_user("mfa_factors"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_factors_user")
                    .table("mfa_factors")
                    .col("user_id")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("mfa_recovery_codes")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(uuid("user_id"))
                    .col(string_len("code_hash", 64))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("used_at"))
                    .foreign_key(&mut owned_by_user("mfa_recovery_codes"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_recovery_codes_user")
                    .table("mfa_recovery_codes")
                    .col("user_id")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("mfa_challenges")
                    .if_not_exists()
                    .col(string_len("id", 64).primary_key())
                    .col(uuid("user_id"))
                    .col(string_len("method", 32))
                    .col(string_len("provider", 32))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .foreign_key(&mut owned_by_user("mfa_challenges"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("mfa_lockouts")
                    .if_not_exists()
                    .col(pk_uuid("user_id"))
                    .col(integer("failures"))
                    .col(timestamp_with_time_zone_null("locked_until"))
                    .foreign_key(&mut owned_by_user("mfa_lockouts"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "mfa_lockouts",
            "mfa_challenges",
            "mfa_recovery_codes",
            "mfa_factors",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
