//! `admin audit verify`: walks a hash chain and names its first broken link.

use std::{
    io::BufRead,
    path::{Path, PathBuf},
};

use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::Value;

use super::{
    AuditError, RecordedEvent, entity, line,
    sink::{database::chain_head, file},
};

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// A database row: its id and place in the chain.
    Row {
        id: uuid::Uuid,
        seq: i64,
        reason: String,
    },
    /// A line of a file (1-based).
    Line {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    /// The chain ends before the head says it does (newest rows deleted).
    Head { reason: String },
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Row { id, seq, reason } => write!(f, "event {id} (seq {seq}): {reason}"),
            Self::Line { file, line, reason } => write!(f, "{}:{line}: {reason}", file.display()),
            Self::Head { reason } => f.write_str(reason),
        }
    }
}

/// The result of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Events whose link was checked before the first break (all of them when intact).
    pub verified: u64,
    /// Rows from before the chain existed (not covered).
    pub unchained: u64,
    pub broken: Option<Broken>,
}

const PAGE: u64 = 1000;

/// Verifies the chain in `audit_logs`, oldest first, in pages.
pub async fn database(
    db: &DatabaseConnection,
    key: &line::ChainKey,
) -> Result<Verification, AuditError> {
    let unchained = entity::Entity::find()
        .filter(entity::Column::Seq.is_null())
        .count(db)
        .await?;
    let mut verified = 0;
    let mut expected_seq = 1i64;
    let mut prev = line::GENESIS.to_string();
    loop {
        let rows = entity::Entity::find()
            .filter(entity::Column::Seq.gte(expected_seq))
            .order_by_asc(entity::Column::Seq)
            .limit(PAGE)
            .all(db)
            .await?;
        let done = (rows.len() as u64) < PAGE;
        for row in rows {
            let (id, seq) = (row.id, row.seq.unwrap_or_default());
            let broken = |reason: String| Verification {
                verified,
                unchained,
                broken: Some(Broken::Row { id, seq, reason }),
            };
            if seq != expected_seq {
                return Ok(broken(format!(
                    "expected seq {expected_seq}: events are missing before this one"
                )));
            }
            if row.prev_hash.as_deref() != Some(prev.as_str()) {
                return Ok(broken(
                    "prev_hash does not match the hash of the previous event".into(),
                ));
            }
            let stored = row.hash.clone().unwrap_or_default();
            let event = match RecordedEvent::try_from(row) {
                Ok(e) => e,
                Err(e) => return Ok(broken(e.to_string())),
            };
            if line::link(key, &prev, &event) != stored {
                return Ok(broken(
                    "the event's content does not match its keyed hash (altered, or re-chained without the key)".into(),
                ));
            }
            prev = stored;
            expected_seq += 1;
            verified += 1;
        }
        if done {
            break;
        }
    }
    let (head_seq, head_hash) = chain_head(db)
        .await
        .map_err(|e| AuditError::Verify(e.to_string()))?;
    if head_seq != expected_seq - 1 || head_hash != prev {
        let reason = format!(
            "the chain head is at seq {head_seq} but the events end at seq {}: the newest events were removed or altered",
            expected_seq - 1
        );
        return Ok(Verification {
            verified,
            unchained,
            broken: Some(Broken::Head { reason }),
        });
    }
    Ok(Verification {
        verified,
        unchained,
        broken: None,
    })
}

/// The files of a rotated log, oldest first: `audit.log.N(.gz)` … `audit.log.1(.gz)`, `audit.log`.
pub fn rotated_set(path: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut n = 1;
    while let Some(p) = file::existing_rotated(path, n) {
        files.push(p);
        n += 1;
    }
    files.reverse();
    if path.exists() {
        files.push(path.to_path_buf());
    }
    files
}

/// Verifies files as one chain, in the given order (see [`rotated_set`]). The first line's
/// `prev_hash` is taken as given: older files may have been deleted by rotation.
pub fn files(paths: &[PathBuf], key: &line::ChainKey) -> Result<Verification, AuditError> {
    let mut verified = 0;
    let mut prev: Option<String> = None;
    for path in paths {
        let io =
            |e: std::io::Error| AuditError::Verify(format!("cannot read {}: {e}", path.display()));
        let reader = file::open_lines(path).map_err(io)?;
        for (i, text) in reader.lines().enumerate() {
            let text = text.map_err(io)?;
            let broken = |reason: &str| Verification {
                verified,
                unchained: 0,
                broken: Some(Broken::Line {
                    file: path.clone(),
                    line: i + 1,
                    reason: reason.to_string(),
                }),
            };
            let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(&text) else {
                return Ok(broken("not a JSON object (altered or torn)"));
            };
            let (Some(Value::String(stored)), Some(Value::String(prev_hash))) =
                (map.remove("hash"), map.remove("prev_hash"))
            else {
                return Ok(broken("no hash or prev_hash"));
            };
            if prev.as_ref().is_some_and(|p| *p != prev_hash) {
                return Ok(broken(
                    "prev_hash does not match the hash of the previous line (a line was removed or inserted)",
                ));
            }
            if line::hash_value(key, &prev_hash, &Value::Object(map)) != stored {
                return Ok(broken(
                    "the line's content does not match its keyed hash (altered, or re-chained without the key)",
                ));
            }
            prev = Some(stored);
            verified += 1;
        }
    }
    Ok(Verification {
        verified,
        unchained: 0,
        broken: None,
    })
}
