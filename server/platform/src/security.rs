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
    let backend = db.get_database_backend();
    let placeholders = match backend {
        sea_orm::DbBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = format!("SELECT event, occurred_at FROM audit_logs WHERE occurred_at >= {placeholders}");
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, &sql, [Value::from(start)])).await?;
    let mut series: Vec<Series> = SERIES
        .iter()
        .map(|(name, kind)| Series { name: (*name).to_string(), event: kind.as_str().to_string(), counts: vec![0; buckets], total: 0 })
        .collect();
    for row in rows {
        let event: String = row.try_get("", "event")?;
        let at: DateTime<Utc> = row.try_get("", "occurred_at")?;
        let Some(s) = series.iter_mut().find(|s| s.event == event) else { continue };
        let index = (at - start).num_seconds() / bucket.num_seconds().max(1);
        if let Some(slot) = usize::try_from(index).ok().and_then(|i| s.counts.get_mut(i)) {
            *slot += 1;
            s.total += 1;
        }
    }
    Ok(Overview { buckets: starts, bucket_minutes: bucket.num_minutes(), series })
}
