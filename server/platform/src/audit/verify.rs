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

use std::collections::HashMap;

use super::{
    AuditError, RecordedEvent, entity, line, personal,
    sink::{database::chain_head, file},
    subjects::{State, Subject, Subjects},
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
    /// Personal values (chain v2) whose plaintext is gone because their person was erased.
    pub erased: u64,
    /// Client addresses and user agents whose full value was dropped after the IDS window
    /// (privacy.yml `data_anonymization`); the event keeps `ip_net` / `ua_family`.
    pub reduced: u64,
    /// Personal values of file lines not checked against their digests (no subject keys given).
    pub unchecked: u64,
    pub broken: Option<Broken>,
}

/// What the personal values of the events checked so far came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub erased: u64,
    pub reduced: u64,
    pub unchecked: u64,
}

/// Checks the personal values of a v2 event against their digests, counting into `tally`.
pub fn check_personal(
    event: &RecordedEvent,
    subjects: &HashMap<String, Subject>,
    tally: &mut Tally,
) -> Result<(), String> {
    match &event.pii {
        Some(pii) => check_values(
            &event.id,
            &line::plain_value(event),
            pii,
            subjects,
            false,
            tally,
        ),
        None => Ok(()),
    }
}

/// The reduced form that stands in for a full value that anonymisation drops.
fn reduced_form(pointer: &str) -> Option<&'static str> {
    match pointer {
        "/ip" => Some("/ip_net"),
        "/user_agent" => Some("/ua_family"),
        _ => None,
    }
}

/// Plaintext that is there must match its digest under its subject's key, and must not belong to
/// an erased subject. Plaintext that is gone is fine only for a subject being or already erased,
/// or one that holds values of no account. `plain` holds the plaintext at the pointers of `pii`.
/// An address or user agent that is gone is fine when the event keeps its reduced form. Counts
/// the values erased, reduced and, with `unknown_unchecked` (a file checked against a database
/// that does not hold its subjects), those left unchecked.
fn check_values(
    id: &uuid::Uuid,
    plain: &Value,
    pii: &personal::Pii,
    subjects: &HashMap<String, Subject>,
    unknown_unchecked: bool,
    tally: &mut Tally,
) -> Result<(), String> {
    for (pointer, sealed) in pii {
        let Some(subject) = subjects.get(&sealed.s) else {
            if unknown_unchecked {
                tally.unchecked += 1;
                continue;
            }
            return Err(format!(
                "personal field {pointer} names audit subject {} which does not exist",
                sealed.s
            ));
        };
        match plain
            .pointer(pointer)
            .filter(|v| personal::present(Some(v)))
        {
            Some(value) => match subject.key() {
                None => {
                    return Err(format!(
                        "personal field {pointer} still holds plaintext of erased subject {}",
                        sealed.s
                    ));
                }
                Some(key) if personal::digest(key, id, pointer, value) != sealed.d => {
                    return Err(format!(
                        "personal field {pointer} does not match its keyed digest (altered)"
                    ));
                }
                Some(_) => {}
            },
            None if reduced_form(pointer).is_some_and(|r| personal::present(plain.pointer(r))) => {
                tally.reduced += 1;
            }
            None if subject.state == State::Active && !subject.epoch => {
                return Err(format!(
                    "personal field {pointer} was removed, but its subject {} was not erased",
                    sealed.s
                ));
            }
            None => tally.erased += 1,
        }
    }
    Ok(())
}

const PAGE: u64 = 1000;

/// Verifies the chain in `audit_logs`, oldest first, in pages.
pub async fn database(
    db: &DatabaseConnection,
    key: &line::ChainKey,
    subjects: &Subjects,
) -> Result<Verification, AuditError> {
    let unchained = entity::Entity::find()
        .filter(entity::Column::Seq.is_null())
        .count(db)
        .await?;
    let mut verified = 0;
    let mut tally = Tally::default();
    // Retention may have pruned the front of the chain behind a signed checkpoint.
    let (mut expected_seq, mut prev) = match super::checkpoint::start(db, key).await? {
        Ok(Some(start)) => (start.seq + 1, start.hash),
        Ok(None) => (1i64, line::GENESIS.to_string()),
        Err(reason) => {
            return Ok(Verification {
                verified,
                unchained,
                erased: tally.erased,
                reduced: tally.reduced,
                unchecked: 0,
                broken: Some(Broken::Head { reason }),
            });
        }
    };
    loop {
        let rows = entity::Entity::find()
            .filter(entity::Column::Seq.gte(expected_seq))
            .order_by_asc(entity::Column::Seq)
            .limit(PAGE)
            .all(db)
            .await?;
        let done = (rows.len() as u64) < PAGE;
        let names: Vec<String> = rows
            .iter()
            .filter_map(|r| r.subjects.as_deref())
            .flat_map(|s| s.split_whitespace().map(str::to_string))
            .collect();
        let known = subjects
            .by_pseudonyms(&names, std::time::Duration::ZERO)
            .await?;
        for row in rows {
            let (id, seq) = (row.id, row.seq.unwrap_or_default());
            let broken = move |reason: String| Verification {
                verified,
                unchained,
                erased: tally.erased,
                reduced: tally.reduced,
                unchecked: 0,
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
            if let Err(reason) = check_personal(&event, &known, &mut tally) {
                return Ok(broken(reason));
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
            erased: tally.erased,
            reduced: tally.reduced,
            unchecked: 0,
            broken: Some(Broken::Head { reason }),
        });
    }
    Ok(Verification {
        verified,
        unchained,
        erased: tally.erased,
        reduced: tally.reduced,
        unchecked: 0,
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
    files_with_subjects(paths, key, None)
}

/// [`files`], also checking each v2 line's personal values against `subjects` when given.
pub fn files_with_subjects(
    paths: &[PathBuf],
    key: &line::ChainKey,
    subjects: Option<&HashMap<String, Subject>>,
) -> Result<Verification, AuditError> {
    let mut verified = 0;
    let mut tally = Tally::default();
    let mut prev: Option<String> = None;
    for path in paths {
        let io =
            |e: std::io::Error| AuditError::Verify(format!("cannot read {}: {e}", path.display()));
        let reader = file::open_lines(path).map_err(io)?;
        for (i, text) in reader.lines().enumerate() {
            let text = text.map_err(io)?;
            let broken = move |reason: &str| Verification {
                verified,
                unchained: 0,
                erased: tally.erased,
                reduced: tally.reduced,
                unchecked: tally.unchecked,
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
            let mut value = Value::Object(map);
            let line_pii: Option<personal::Pii> = match value.get("v") {
                Some(v) if v == 2 => match value
                    .get("pii")
                    .cloned()
                    .map(serde_json::from_value::<personal::Pii>)
                {
                    Some(Ok(pii)) => Some(pii),
                    _ => return Ok(broken("a v2 line without a readable pii map")),
                },
                _ => None,
            };
            let plain = value.clone();
            if let Some(pii) = &line_pii {
                for pointer in pii.keys() {
                    personal::remove(&mut value, pointer);
                }
            }
            if line::hash_value(key, &prev_hash, &value) != stored {
                return Ok(broken(
                    "the line's content does not match its keyed hash (altered, or re-chained without the key)",
                ));
            }
            if let Some(pii) = line_pii {
                match subjects {
                    Some(known) => {
                        if let Err(reason) = check_line(&plain, pii, known, &mut tally) {
                            return Ok(broken(&reason));
                        }
                    }
                    None => tally.unchecked += pii.len() as u64,
                }
            }
            prev = Some(stored);
            verified += 1;
        }
    }
    Ok(Verification {
        verified,
        unchained: 0,
        erased: tally.erased,
        reduced: tally.reduced,
        unchecked: tally.unchecked,
        broken: None,
    })
}

/// [`check_values`] for a file line, whose plaintext sits at the pointers themselves.
fn check_line(
    line: &Value,
    pii: personal::Pii,
    subjects: &HashMap<String, Subject>,
    tally: &mut Tally,
) -> Result<(), String> {
    let id = line
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .ok_or("a v2 line without an event id")?;
    check_values(&id, line, &pii, subjects, true, tally)
}
