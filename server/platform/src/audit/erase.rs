//! Erasing one subject's plaintext from the audit destinations the platform controls: the
//! `audit_logs` rows and the audit files (rotated and compressed ones included). Only values the
//! chain does not hash are touched (chain v2, `personal.rs`), so `admin audit verify` still passes.
//! Each call is idempotent; an erasure interrupted half-way repeats it.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufRead, Write},
    path::{Path, PathBuf},
};

use flate2::{Compression, write::GzEncoder};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ActiveValue::Unchanged, ColumnTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::Value;

use super::{AuditError, RecordedEvent, entity, line, personal, sink::file, verify};

/// Drops the plaintext of `pseudonym` from up to `limit` rows with `seq` after `after`; returns
/// how many rows it changed and the last `seq` it looked at (`None` when no rows are left).
pub async fn database_page(
    db: &DatabaseConnection,
    pseudonym: &str,
    after: i64,
    limit: u64,
) -> Result<(u64, Option<i64>), AuditError> {
    let rows = entity::Entity::find()
        .filter(entity::Column::Subjects.contains(format!(" {pseudonym} ")))
        .filter(entity::Column::Seq.gt(after))
        .order_by_asc(entity::Column::Seq)
        .limit(limit)
        .all(db)
        .await?;
    let last = rows.last().and_then(|r| r.seq);
    let mut changed = 0;
    for row in rows {
        let id = row.id;
        let mut event = RecordedEvent::try_from(row)?;
        let Some(pii) = event.pii.clone() else {
            continue;
        };
        let before = event.clone();
        for (pointer, sealed) in &pii {
            if sealed.s == pseudonym {
                personal::clear(&mut event, pointer);
            }
        }
        if event == before {
            continue;
        }
        let full = entity::ActiveModel::from(&event);
        let update = entity::ActiveModel {
            id: Unchanged(id),
            actor_id: full.actor_id,
            actor_name: full.actor_name,
            source_ip: full.source_ip,
            user_agent: full.user_agent,
            target_id: full.target_id,
            details: Set(event.event.details.clone()),
            ..Default::default()
        };
        update.update(db).await?;
        changed += 1;
    }
    Ok((changed, last))
}

/// Rewrites each audit file in `paths` (a file and its rotations) that holds plaintext of
/// `pseudonym`, under the file destination's lock; returns how many lines changed.
pub fn files(log: &Path, pseudonym: &str) -> io::Result<u64> {
    let needle = format!("\"{pseudonym}\"");
    rewrite_set(log, &|text: &str| {
        if text.contains(&needle) {
            scrub_line(text, pseudonym)
        } else {
            None
        }
    })
}

/// Rewrites the lines of `log` and its rotations that `change` returns a new text for (`None`:
/// keep the line), under the file destination's lock; returns how many lines changed. A file is
/// replaced whole by rename, so a reader or a crash sees the old file or the new one.
pub(crate) fn rewrite_set(log: &Path, change: &dyn Fn(&str) -> Option<String>) -> io::Result<u64> {
    let mut lock_name = log.as_os_str().to_owned();
    lock_name.push(".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(PathBuf::from(lock_name))?;
    lock.lock()?;
    let mut changed = 0;
    for path in verify::rotated_set(log) {
        changed += rewrite(&path, change)?;
    }
    Ok(changed)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".erase-tmp");
    PathBuf::from(name)
}

fn rewrite(path: &Path, change: &dyn Fn(&str) -> Option<String>) -> io::Result<u64> {
    let tmp = tmp_path(path);
    // A rewrite interrupted before its rename leaves this behind; the original is intact.
    let _ = fs::remove_file(&tmp);
    let mut lines = Vec::new();
    let mut changed = 0;
    for text in file::open_lines(path)?.lines() {
        let text = text?;
        match change(&text) {
            Some(new) if new != text => {
                changed += 1;
                lines.push(new);
            }
            _ => lines.push(text),
        }
    }
    if changed == 0 {
        return Ok(0);
    }
    let out = File::create(&tmp)?;
    let compressed = path.extension().is_some_and(|e| e == "gz");
    if compressed {
        let mut encoder = GzEncoder::new(out, Compression::default());
        for l in &lines {
            encoder.write_all(l.as_bytes())?;
            encoder.write_all(b"\n")?;
        }
        encoder.finish()?.sync_all()?;
    } else {
        let mut out = io::BufWriter::new(out);
        for l in &lines {
            out.write_all(l.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(changed)
}

/// The line without the plaintext of `pseudonym`; `None` when it is not a v2 line.
fn scrub_line(text: &str, pseudonym: &str) -> Option<String> {
    let mut value: Value = serde_json::from_str(text).ok()?;
    let pii: personal::Pii = serde_json::from_value(value.get("pii")?.clone()).ok()?;
    let mut touched = false;
    for (pointer, sealed) in &pii {
        if sealed.s == pseudonym && personal::remove(&mut value, pointer).is_some() {
            touched = true;
        }
    }
    if !touched {
        return Some(text.to_string());
    }
    Some(line::escape_separators(&line::ordered(&value)))
}
