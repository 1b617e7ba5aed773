//! The security overview: counts over time of authentication failures, permission denials, module
//! executions and sandbox violations, read from the recorded audit events (`metrics:read`).

use chrono::{DateTime, Duration, DurationRound, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};
use serde::Serialize;

use crate::{access::Principal, audit::EventKind};

/// The series the security dashboard charts, with the audit event each counts.
pub const SERIES: &[(&str, EventKind)] = &[
    ("Authentication failures", EventKind::LoginFailure),
    ("Permission denials", EventKind::PermissionDenied),
    ("Module executions", EventKind::ModuleExecute),
    ("Sandbox violations", EventKind::SandboxViolation),
];

/// Errors of the security overview.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// The principal lacks `metrics:read`.
    #[error("permission denied: metrics:read is required")]
    Forbidden,
    /// The database failed.
    #[error("database error")]
    Db(#[from] sea_orm::DbErr),
}

/// One charted series: a count per bucket, and the window's total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub name: String,
    pub event: String,
    pub counts: Vec<u64>,
    pub total: u64,
}

/// Counts per time bucket over a window ending now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    /// Start of each bucket.
    pub buckets: Vec<DateTime<Utc>>,
    pub bucket_minutes: i64,
    pub series: Vec<Series>,
}

/// Counts the charted events in `buckets` buckets of `bucket` each, ending at `now`.
pub async fn overview(db: &DatabaseConnection, principal: &Principal, now: DateTime<Utc>, bucket: Duration, buckets: usize) -> Result<Overview, SecurityError> {
    if !principal.can("metrics", "read") {
        return Err(SecurityError::Forbidden);
    }
    let end = now.duration_trunc(bucket).unwrap_or(now) + bucket;
    let start = end - bucket * i32::try_from(buckets).unwrap_or(24);
    let starts: Vec<DateTime<Utc>> = (0..buckets).map(|i| start + bucket * i32::try_from(i).unwrap_or(0)).collect();
    // Counted by the database: one row per (event, bucket) that has events, from the
    // (event, occurred_at) index; the window's events are never read one by one.
    let backend = db.get_database_backend();
    let secs = bucket.num_seconds().max(1);
    let events = SERIES.iter().map(|(_, k)| format!("'{}'", k.as_str())).collect::<Vec<_>>().join(", ");
    let sql = match backend {
        sea_orm::DbBackend::Postgres => format!(
            "SELECT event, CAST(FLOOR(EXTRACT(EPOCH FROM (occurred_at - $1)) / {secs}) AS BIGINT) AS bucket, COUNT(*) AS n \
             FROM audit_logs WHERE event IN ({events}) AND occurred_at >= $1 AND occurred_at < $2 GROUP BY event, bucket"
        ),
        _ => format!(
            "SELECT event, CAST((CAST(strftime('%s', occurred_at) AS INTEGER) - CAST(strftime('%s', ?) AS INTEGER)) / {secs} AS INTEGER) AS bucket, COUNT(*) AS n \
             FROM audit_logs WHERE event IN ({events}) AND occurred_at >= ? AND occurred_at < ? GROUP BY event, bucket"
        ),
    };
    let values: Vec<Value> = match backend {
        sea_orm::DbBackend::Postgres => vec![start.into(), end.into()],
        _ => vec![start.into(), start.into(), end.into()],
    };
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, &sql, values)).await?;
    let mut series: Vec<Series> = SERIES
        .iter()
        .map(|(name, kind)| Series { name: (*name).to_string(), event: kind.as_str().to_string(), counts: vec![0; buckets], total: 0 })
        .collect();
    for row in rows {
        let event: String = row.try_get("", "event")?;
        let index: i64 = row.try_get("", "bucket")?;
        let n: i64 = row.try_get("", "n")?;
        let Some(s) = series.iter_mut().find(|s| s.event == event) else { continue };
        if let Some(slot) = usize::try_from(index).ok().and_then(|i| s.counts.get_mut(i)) {
            let n = u64::try_from(n).unwrap_or_default();
            *slot += n;
            s.total += n;
        }
    }
    Ok(Overview { buckets: starts, bucket_minutes: bucket.num_minutes(), series })
}
