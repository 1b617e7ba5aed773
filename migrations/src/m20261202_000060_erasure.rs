//! Erasure (privacy.yml `right_to_be_forgotten`) with an audit trail that stays verifiable.
//!
//! - `audit_subjects`: one pseudonym per person (or per UTC day, for values that belong to no
//!   account) with a random key, stored wrapped by a key kept outside the database. Audit events
//!   written from now on (chain v2) commit to personal values only through an HMAC under that key;
//!   erasing a person drops their plaintext and destroys the key, and the chain still verifies.
//! - `audit_logs.pii` holds those digests (hashed with the event), `audit_logs.subjects` the
//!   pseudonyms an event names (space-separated, so an erasure can find the rows).
//! - `erasures`: the requests and the resumable state of the erasure that runs them. No name,
//!   email or address is stored here.
//! - `erased_emails`: a keyed hash of each erased account's address ("keep hash for uniqueness").
//!
//! See docs/erasure-design.md.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite accepts one column per ALTER TABLE.
        for col in [json_null("pii"), text_null("subjects")] {
            let mut col = col;
            manager
                .alter_table(
                    Table::alter()
                        .table("audit_logs")
                        .add_column(&mut col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table("audit_subjects")
                    .if_not_exists()
                    .col(string_len("pseudonym", 40).primary_key())
                    .col(string_len_null("user_key", 64).unique_key())
                    .col(blob_null("wrapped_key"))
                    .col(string_len("state", 16))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("erased_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("erasures")
                    .if_not_exists()
                    .col(pk_uuid("id"))
                    .col(string_len("subject", 40))
                    .col(uuid_null("user_id"))
                    .col(string_len("status", 16))
                    .col(string_len("step", 16))
                    .col(string_len_null("cursor", 64))
                    .col(uuid_null("transfer_to"))
                    .col(string_len("origin", 16))
                    .col(timestamp_with_time_zone("requested_at"))
                    .col(timestamp_with_time_zone_null("run_at"))
                    .col(timestamp_with_time_zone_null("step_started_at"))
                    .col(string_len_null("lease_owner", 40))
                    .col(timestamp_with_time_zone_null("lease_until"))
                    .col(integer("attempts"))
                    .col(string_len_null("last_error", 255))
                    .col(string_len_null("decision_note", 255))
                    .col(json_null("summary"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_erasures_status")
                    .table("erasures")
                    .col("status")
                    .col("run_at")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("erased_emails")
                    .if_not_exists()
                    .col(string_len("digest", 64).primary_key())
                    .col(timestamp_with_time_zone("erased_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["erased_emails", "erasures", "audit_subjects"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for col in ["subjects", "pii"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("audit_logs")
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
