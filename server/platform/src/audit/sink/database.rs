//! The database destination: the `audit_logs` table, one transaction per batch.
//!
//! The chain is a serialised append: a batch first takes the row lock on the single
//! `audit_chain` head (an `UPDATE`, which on SQLite also takes the write lock before any read),
//! reads the last `seq` and `hash`, numbers and links its events, inserts them and moves the head.
//! Replicas writing the same PostgreSQL database queue on that lock and form one chain.
//! Events already stored (a batch replayed after a crash) are skipped, so replay is exactly once.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect, Statement, TransactionTrait,
};

use sea_orm::sea_query::ExprTrait;

use super::SinkError;
use crate::audit::{RecordedEvent, entity, line};

/// Events stored per transaction (also the rows of one `INSERT`, under SQLite's bind limit).
const EVENTS_PER_TRANSACTION: usize = 500;

#[derive(Debug)]
pub struct DatabaseSink {
    db: DatabaseConnection,
    key: line::ChainKey,
}

/// The chain head's `seq` and `hash`, read inside the caller's transaction.
pub async fn chain_head(conn: &impl ConnectionTrait) -> Result<(i64, String), SinkError> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT seq, hash FROM audit_chain WHERE id = 1",
        ))
        .await?
        .ok_or(SinkError::NoChainHead)?;
    Ok((
        row.try_get::<i64>("", "seq")?,
        row.try_get::<String>("", "hash")?,
    ))
}

impl DatabaseSink {
    pub fn new(db: DatabaseConnection, key: line::ChainKey) -> Self {
        Self { db, key }
    }

    /// Stores a batch, [`EVENTS_PER_TRANSACTION`] events per transaction: on SQLite a transaction
    /// holds the database's one write lock, and a batch of thousands of events in one transaction
    /// held it long enough for the run history's writer, and the requests queueing rows behind
    /// it, to wait (the execute p99, `docs/benchmarks.md`). A crash between two transactions
    /// replays the batch, and the events already stored are skipped.
    pub async fn write(&self, events: &[RecordedEvent]) -> Result<(), SinkError> {
        for chunk in events.chunks(EVENTS_PER_TRANSACTION) {
            self.write_chunk(chunk).await?;
        }
        Ok(())
    }

    async fn write_chunk(&self, events: &[RecordedEvent]) -> Result<(), SinkError> {
        if events.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin().await?;
        let backend = txn.get_database_backend();
        txn.execute_raw(Statement::from_string(
            backend,
            "UPDATE audit_chain SET seq = seq WHERE id = 1",
        ))
        .await?;
        let (mut seq, mut prev) = chain_head(&txn).await?;
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id).collect();
        let stored: Vec<uuid::Uuid> = entity::Entity::find()
            .select_only()
            .column(entity::Column::Id)
            .filter(entity::Column::Id.is_in(ids))
            .into_tuple()
            .all(&txn)
            .await?;
        let mut rows = Vec::with_capacity(events.len());
        for event in events.iter().filter(|e| !stored.contains(&e.id)) {
            seq += 1;
            let hash = line::link(&self.key, &prev, event);
            let mut row = entity::ActiveModel::from(event);
            row.seq = Set(Some(seq));
            row.prev_hash = Set(Some(prev.clone()));
            row.hash = Set(Some(hash.clone()));
            rows.push(row);
            prev = hash;
        }
        if !rows.is_empty() {
            entity::Entity::insert_many(rows)
                .exec_without_returning(&txn)
                .await?;
            let update = sea_orm::sea_query::Query::update()
                .table("audit_chain")
                .values([("seq", seq.into()), ("hash", prev.clone().into())])
                .and_where(sea_orm::sea_query::Expr::col("id").eq(1))
                .to_owned();
            txn.execute(&update).await?;
        }
        txn.commit().await?;
        Ok(())
    }
}
