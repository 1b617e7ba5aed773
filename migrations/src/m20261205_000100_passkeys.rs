//! Passkeys (WebAuthn) as a second factor, beside the TOTP authenticator of `m20261204_000090_mfa`:
//!
//! - `mfa_factors.credential_key`: the SHA-256 of a passkey's credential id, unique, so one
//!   authenticator's credential belongs to one account only (a passkey row keeps the credential
//!   itself, public key and signature counter, sealed in `secret` like a TOTP secret, so nobody
//!   who can write to the database can swap in a key of their own);
//! - `mfa_challenges.webauthn`: the state of the passkey ceremony a waiting sign-in started
//!   (its challenge and the origin it was made for), used once.
//!
//! A registration waiting for the browser is an unconfirmed `mfa_factors` row, as a TOTP enrolment
//! waiting for its first code is.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        manager
            .alter_table(
                Table::alter()
                    .table("mfa_factors")
                    .add_column(string_len_null("credential_key", 64))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_factors_credential")
                    .table("mfa_factors")
                    .col("credential_key")
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("mfa_challenges")
                    .add_column(text_null("webauthn"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("mfa_challenges")
                    .drop_column("webauthn")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_mfa_factors_credential")
                    .table("mfa_factors")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("mfa_factors")
                    .drop_column("credential_key")
                    .to_owned(),
            )
            .await
    }
}
