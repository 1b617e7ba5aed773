//! Tamper evidence and the audit dashboard's query.
//!
//! Each `audit_logs` row gets its place in the hash chain (`seq`, `prev_hash`, `hash`); the single
//! row of `audit_chain` is the head every writer locks to append (a serialised append, so several
//! replicas writing the same database still form one chain). Indexes serve the dashboard's filters
//! with keyset paging on (`occurred_at`, `id`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const LOGS: &str = "audit_logs";
const CHAIN: &str = "audit_chain";
/// The `prev_hash` of the first event in the chain.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite accepts one column per ALTER TABLE.
        for col in [
            big_integer_null("seq"),
            string_len_null("prev_hash", 64),
            string_len_null("hash", 64),
        ] {
            let mut col = col;
            manager
                .alter_table(Table::alter().table(LOGS).add_column(&mut col).to_owned())
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(CHAIN)
                    .if_not_exists()
                    .col(integer("id").primary_key())
                    .col(big_integer("seq"))
                    .col(string_len("hash", 64))
                    .to_owned(),
            )
            .await?;
        let mut head = Query::insert();
        head.into_table(CHAIN).columns(["id", "seq", "hash"]);
        head.values([1.into(), 0i64.into(), GENESIS.into()])
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        manager.exec_stmt(head).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_logs_seq")
                    .table(LOGS)
                    .col("seq")
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_audit_logs_actor_name",
                &["actor_name", "occurred_at"][..],
            ),
            ("idx_audit_logs_outcome", &["outcome", "occurred_at"][..]),
            ("idx_audit_logs_target", &["target_id", "occurred_at"][..]),
        ] {
            let mut index = Index::create();
            index.name(name).table(LOGS).if_not_exists();
            for col in cols {
                index.col(*col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "idx_audit_logs_seq",
            "idx_audit_logs_actor_name",
            "idx_audit_logs_outcome",
            "idx_audit_logs_target",
        ] {
            manager
                .drop_index(Index::drop().name(name).table(LOGS).to_owned())
                .await?;
        }
        manager
            .drop_table(Table::drop().table(CHAIN).to_owned())
            .await?;
        for col in ["seq", "prev_hash", "hash"] {
            manager
                .alter_table(Table::alter().table(LOGS).drop_column(col).to_owned())
                .await?;
        }
        Ok(())
    }
}
