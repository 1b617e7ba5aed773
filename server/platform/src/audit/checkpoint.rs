//! Retention of the audit table (privacy.yml `data_retention.audit_logs`) without breaking the
//! chain: the oldest rows go in one transaction that also writes a checkpoint, signed with the
//! chain key, naming the last pruned `seq` and its hash. Verification starts after the newest
//! checkpoint whose signature holds; removing rows without one (or forging one without the key)
//! still fails verification.

use hmac::{Hmac, Mac};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use sha2::Sha256;

use super::{AuditError, entity, line::ChainKey};

pub(crate) mod table {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_checkpoints")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        pub hash: String,
        pub pruned: i64,
        pub cutoff: DateTimeUtc,
        pub created_at: DateTimeUtc,
        pub sig: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Where verification starts: after `seq`, whose hash was `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub seq: i64,
    pub hash: String,
}

fn signature(key: &ChainKey, row: &table::Model) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key.bytes()) else {
        return String::new();
    };
    mac.update(b"checkpoint\0");
    mac.update(
        format!(
            "{}\0{}\0{}\0{}",
            row.seq,
            row.hash,
            row.pruned,
            super::line::timestamp(&row.cutoff)
        )
        .as_bytes(),
    );
    hex::encode(mac.finalize().into_bytes())
}

/// The newest checkpoint, checked: `Ok(None)` without one; an error message when its signature
/// does not hold (forged, or altered).
pub async fn start(
    db: &DatabaseConnection,
    key: &ChainKey,
) -> Result<Result<Option<Start>, String>, AuditError> {
    let newest = table::Entity::find()
        .order_by_desc(table::Column::Seq)
        .one(db)
        .await?;
    Ok(match newest {
        None => Ok(None),
        Some(row) if signature(key, &row) == row.sig => Ok(Some(Start {
            seq: row.seq,
            hash: row.hash,
        })),
        Some(row) => Err(format!(
            "the retention checkpoint at seq {} is not signed with the chain key (forged or altered)",
            row.seq
        )),
    })
}

/// What pruning removes (or would remove).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Events removed.
    pub events: u64,
    /// The last removed `seq`.
    pub through: Option<i64>,
}

/// Removes the chained rows recorded before `cutoff` (all rows up to the last one before the
/// first row at or after it), with a signed checkpoint, in one transaction holding the chain head.
/// With `dry_run`, only counts them.
pub async fn prune(
    db: &DatabaseConnection,
    key: &ChainKey,
    cutoff: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
    dry_run: bool,
) -> Result<Pruned, AuditError> {
    let txn = db.begin().await?;
    let backend = txn.get_database_backend();
    if !dry_run {
        txn.execute_raw(Statement::from_string(
            backend,
            "UPDATE audit_chain SET seq = seq WHERE id = 1",
        ))
        .await?;
    }
    // The first event that stays; everything chained before it goes (events are chained in the
    // order they were recorded, so no younger event is cut).
    let first_kept: Option<i64> = entity::Entity::find()
        .select_only()
        .column(entity::Column::Seq)
        .filter(entity::Column::Seq.is_not_null())
        .filter(entity::Column::OccurredAt.gte(cutoff))
        .order_by_asc(entity::Column::Seq)
        .into_tuple::<Option<i64>>()
        .one(&txn)
        .await?
        .flatten();
    let mut old = entity::Entity::find()
        .filter(entity::Column::Seq.is_not_null())
        .filter(entity::Column::OccurredAt.lt(cutoff));
    if let Some(kept) = first_kept {
        old = old.filter(entity::Column::Seq.lt(kept));
    }
    let last = old
        .clone()
        .order_by_desc(entity::Column::Seq)
        .one(&txn)
        .await?;
    let Some(last) = last else {
        return Ok(Pruned::default());
    };
    let through = last.seq.unwrap_or_default();
    let events = entity::Entity::find()
        .filter(entity::Column::Seq.lte(through))
        .count(&txn)
        .await?;
    if dry_run {
        return Ok(Pruned {
            events,
            through: Some(through),
        });
    }
    entity::Entity::delete_many()
        .filter(entity::Column::Seq.lte(through))
        .exec(&txn)
        .await?;
    let previous = table::Entity::find()
        .order_by_desc(table::Column::Seq)
        .one(&txn)
        .await?
        .map(|c| c.pruned)
        .unwrap_or(0);
    let mut row = table::Model {
        seq: through,
        hash: last.hash.unwrap_or_default(),
        pruned: previous + events as i64,
        cutoff,
        created_at: now,
        sig: String::new(),
    };
    row.sig = signature(key, &row);
    table::ActiveModel {
        seq: Set(row.seq),
        hash: Set(row.hash),
        pruned: Set(row.pruned),
        cutoff: Set(row.cutoff),
        created_at: Set(row.created_at),
        sig: Set(row.sig),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(Pruned {
        events,
        through: Some(through),
    })
}
