//! privacy.yml `data_anonymization`: the reduced forms of an event's client address (`ip_net`,
//! IPv4 /24 or IPv6 /48) and user agent (`ua_family`, family and major version). They are written
//! with the event and hashed with it; once the IDS window has passed, the full `source_ip` and
//! `user_agent` are set to NULL and only these stay (see docs/privacy.md).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite accepts one column per ALTER TABLE.
        for col in [
            string_len_null("ip_net", 64),
            string_len_null("ua_family", 64),
        ] {
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
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in ["ip_net", "ua_family"] {
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
