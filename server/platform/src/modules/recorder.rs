//! The run history, written behind the runs: each run hands its `module_runs` row to one writer
//! task, which inserts whatever has queued up in one transaction together with the modules'
//! `last_run_at`. Runs therefore never wait on each other for the database's write lock (SQLite
//! has one), and a burst of runs costs a few commits instead of two per run.
//!
//! Readers of the history call [`RunRecorder::flush`] first, so a process always sees its own
//! runs. A crash can lose the rows still queued (at most one batch); the run's `module_execute`
//! audit event, recorded before the response, still carries its id, outcome and duration.

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, IntoActiveModel,
    QueryFilter, TransactionTrait, sea_query::Expr,
};
use tokio::sync::{mpsc, oneshot};

use super::{module, run};

/// Rows queued before `record` waits for the writer (back-pressure instead of unbounded memory).
const QUEUE: usize = 4096;
/// Most rows written in one transaction.
const BATCH: usize = 512;
/// How long a reader waits for the queue to drain before reading anyway.
const FLUSH_WAIT: Duration = Duration::from_secs(5);
/// How long a run waits for room in a full queue before its row is dropped (and logged), so a
/// database outage delays runs by this much at most instead of stopping them.
const RECORD_WAIT: Duration = Duration::from_secs(1);
/// Attempts at a batch before giving up on it when the database itself fails.
const ATTEMPTS: u32 = 3;

enum Message {
    Run(Box<run::Model>),
    Flush(oneshot::Sender<()>),
}

/// The handle runs and readers use; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct RunRecorder {
    tx: mpsc::Sender<Message>,
}

impl RunRecorder {
    /// Starts the writer task on the current tokio runtime; `None` outside one.
    pub(crate) fn start(db: DatabaseConnection) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (tx, rx) = mpsc::channel(QUEUE);
        runtime.spawn(write_loop(db, rx));
        Some(Self { tx })
    }

    /// Queues a run's row; waits (at most [`RECORD_WAIT`]) only when the queue is full.
    pub(crate) async fn record(&self, row: run::Model) {
        let (run_id, module_id) = (row.id, row.module_id);
        if let Err(e) = self
            .tx
            .send_timeout(Message::Run(Box::new(row)), RECORD_WAIT)
            .await
        {
            let reason = match e {
                mpsc::error::SendTimeoutError::Timeout(_) => "the run history queue is full",
                mpsc::error::SendTimeoutError::Closed(_) => "the run history writer has stopped",
            };
            tracing::error!(%run_id, %module_id, "{reason}; a run was not added to the run history");
        }
    }

    /// Returns once every row queued before the call is written, or after [`FLUSH_WAIT`].
    pub(crate) async fn flush(&self) {
        self.flush_within(FLUSH_WAIT).await;
    }

    /// [`Self::flush`] with its own bound (shutdown waits longer than a reader).
    pub(crate) async fn flush_within(&self, limit: Duration) {
        let (done, wait) = oneshot::channel();
        let flushed = async {
            if self.tx.send(Message::Flush(done)).await.is_ok() {
                let _ = wait.await;
            }
        };
        if tokio::time::timeout(limit, flushed).await.is_err() {
            tracing::warn!("the run history is still being written; going on without waiting");
        }
    }
}

async fn write_loop(db: DatabaseConnection, mut rx: mpsc::Receiver<Message>) {
    let mut rows = Vec::with_capacity(BATCH);
    let mut waiting = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Run(row) => rows.push(*row),
                Message::Flush(done) => waiting.push(done),
            }
            if rows.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !rows.is_empty() {
            write(&db, &rows).await;
            rows.clear();
        }
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Writes a batch in one transaction. If the database refuses a row (say, its module was
/// deleted in the meantime), each row is written on its own so one bad row costs only itself;
/// if the database itself fails, the batch is tried again a few times with a pause, then given
/// up (and logged: the runs' `module_execute` audit events still record them).
async fn write(db: &DatabaseConnection, rows: &[run::Model]) {
    let mut pause = Duration::from_millis(200);
    for attempt in 1..=ATTEMPTS {
        let Err(e) = write_batch(db, rows).await else {
            return;
        };
        if e.sql_err().is_some() {
            tracing::warn!(error = %e, rows = rows.len(), "the database refused a batch of the run history; writing its rows one by one");
            write_each(db, rows).await;
            return;
        }
        if attempt == ATTEMPTS {
            tracing::error!(error = %e, rows = rows.len(), "the run history could not be written; these runs are only in the audit log");
            return;
        }
        tracing::warn!(error = %e, rows = rows.len(), attempt, "writing the run history failed; trying again");
        tokio::time::sleep(pause).await;
        pause *= 4;
    }
}

async fn write_batch(db: &DatabaseConnection, rows: &[run::Model]) -> Result<(), sea_orm::DbErr> {
    let txn = db.begin().await?;
    run::Entity::insert_many(rows.iter().cloned().map(IntoActiveModel::into_active_model))
        .exec(&txn)
        .await?;
    let mut latest: HashMap<uuid::Uuid, chrono::DateTime<chrono::Utc>> = HashMap::new();
    for row in rows {
        let at = latest.entry(row.module_id).or_insert(row.started_at);
        *at = (*at).max(row.started_at);
    }
    for (module_id, at) in latest {
        touch(&txn, module_id, at).await?;
    }
    txn.commit().await
}

async fn write_each(db: &DatabaseConnection, rows: &[run::Model]) {
    for row in rows {
        let one = async {
            let txn = db.begin().await?;
            row.clone().into_active_model().insert(&txn).await?;
            touch(&txn, row.module_id, row.started_at).await?;
            txn.commit().await
        };
        if let Err(e) = one.await {
            tracing::error!(error = %e, run_id = %row.id, module_id = %row.module_id, "a run could not be added to the run history");
        }
    }
}

/// Moves the module's `last_run_at` forward to `at` (never back).
async fn touch<C: sea_orm::ConnectionTrait>(
    db: &C,
    module_id: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), sea_orm::DbErr> {
    module::Entity::update_many()
        .col_expr(module::Column::LastRunAt, Expr::value(at))
        .filter(module::Column::Id.eq(module_id))
        .filter(
            Condition::any()
                .add(module::Column::LastRunAt.is_null())
                .add(module::Column::LastRunAt.lt(at)),
        )
        .exec(db)
        .await?;
    Ok(())
}
