//! The one way to write what cached access decisions are made of.
//!
//! Accounts, user roles, roles, modules, module shares and refresh-token revocation are cached
//! under the [`AccessGeneration`] (see the parent module). A write to them that did not move the
//! generation would let every process keep using the old answer. So the services do not hold the
//! generation at all: they hold an [`AccessWrites`], whose [`AccessWrites::begin`] is the only way
//! to open a transaction for those tables, and the [`AccessTx`] it returns moves the generation
//! once it is finished. There is no "remember to advance" left at a call site.
//!
//! The generation moves when the transaction is dropped, after its commit or rollback, so a
//! request cancelled between the commit and the end of the call (a client hanging up) still moves
//! it. A rolled-back transaction moves it too; that costs one reload of what was cached, never a
//! stale answer.
//!
//! Columns that no cached decision reads are written without it, on the service's connection:
//! `users.last_login_at` (sign-in), `modules.last_run_at` (the run history) and
//! `refresh_tokens.used` (a refresh). The service tests in `tests/generation.rs` compare the access
//! tables before and after every access-changing operation and fail when they changed while the
//! generation stood still.

use std::ops::Deref;

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};

use super::AccessGeneration;

/// Opens the transactions that write accounts, roles, modules and shares; cheap to clone.
#[derive(Debug, Clone)]
pub struct AccessWrites {
    db: DatabaseConnection,
    generation: AccessGeneration,
}

impl AccessWrites {
    pub fn new(db: DatabaseConnection, generation: AccessGeneration) -> Self {
        Self { db, generation }
    }

    /// A transaction for access-changing writes; the generation moves once it is dropped
    /// (normally by [`AccessTx::commit`]).
    pub async fn begin(&self) -> Result<AccessTx, DbErr> {
        let txn = self.db.begin().await?;
        Ok(AccessTx {
            txn,
            _moves: Moves(self.generation.clone()),
        })
    }
}

/// A transaction opened by [`AccessWrites::begin`]: use it as the connection (`&*tx`) for every
/// write to the access tables, then [`Self::commit`].
#[must_use = "uncommitted writes are rolled back when this is dropped"]
#[derive(Debug)]
pub struct AccessTx {
    // Dropped first: the transaction ends (commits or rolls back) before the generation moves.
    txn: DatabaseTransaction,
    _moves: Moves,
}

impl AccessTx {
    /// Commits the writes; the generation moves after the commit, whatever its outcome.
    pub async fn commit(self) -> Result<(), DbErr> {
        let Self { txn, _moves } = self;
        txn.commit().await
    }
}

impl Deref for AccessTx {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

/// Moves the generation when dropped.
#[derive(Debug)]
struct Moves(AccessGeneration);

impl Drop for Moves {
    fn drop(&mut self) {
        self.0.advance();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite() -> (DatabaseConnection, AccessGeneration) {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        (db, AccessGeneration::in_memory())
    }

    #[tokio::test]
    async fn a_committed_access_write_moves_the_generation() {
        let (db, generation) = sqlite().await;
        let writes = AccessWrites::new(db, generation.clone());
        let before = generation.current();
        let tx = writes.begin().await.unwrap();
        assert_eq!(generation.current(), before, "nothing moves before the end");
        tx.commit().await.unwrap();
        assert_ne!(generation.current(), before);
    }

    #[tokio::test]
    async fn an_abandoned_access_write_moves_the_generation_too() {
        let (db, generation) = sqlite().await;
        let writes = AccessWrites::new(db, generation.clone());
        let before = generation.current();
        drop(writes.begin().await.unwrap());
        assert_ne!(generation.current(), before);
    }
}
