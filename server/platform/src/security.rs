//! The security overview: counts over time of authentication failures, permission denials, module
//! executions and sandbox violations, read from the recorded audit events (`metrics:read`).

use chrono::{DateTime, Duration, DurationRound, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};
use serde::Serialize;

use crate::audit::EventKind;

/// The series the security dashboard charts, with the audit event each counts.
pub const SERIES: &[(&str, EventKind)] = &[
    ("Authentication failures", EventKind::LoginFailure),
    ("Permission denials", EventKind::PermissionDenied),
    ("Module executions", EventKind::ModuleExecute),
    ("Sandbox violations", EventKind::SandboxViolation),
    // Audited at most once a minute per caller and limit (docs/edge.md), so this counts callers
    // refused per minute rather than every refusal; rate_limit_violations_total has those.
    ("Rate-limit refusals", EventKind::RateLimitExceeded),
    // Wrong, expired or locked-out second factors (soc2.yml multi_factor_auth).
    ("MFA failures", EventKind::MfaFailure),
];

/// Errors of the security overview.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// The principal lacks the permission (`metrics:read`, or `system:audit` for the report).
    #[error("permission denied: {0} is required")]
    Forbidden(String),
    /// The database failed.
    #[error("database error")]
    Db(#[from] sea_orm::DbErr),
    /// The refusal could not be recorded.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
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

/// Counts the charted events in `buckets` buckets of `bucket` each, ending at `now`. The caller
/// ([`crate::Platform::security_overview`]) has checked `metrics:read`.
pub(crate) async fn overview(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    bucket: Duration,
    buckets: usize,
) -> Result<Overview, SecurityError> {
    let end = now.duration_trunc(bucket).unwrap_or(now) + bucket;
    let start = end - bucket * i32::try_from(buckets).unwrap_or(24);
    let starts: Vec<DateTime<Utc>> = (0..buckets)
        .map(|i| start + bucket * i32::try_from(i).unwrap_or(0))
        .collect();
    // Counted by the database: one row per (event, bucket) that has events, from the
    // (event, occurred_at) index; the window's events are never read one by one.
    let backend = db.get_database_backend();
    let secs = bucket.num_seconds().max(1);
    let events = SERIES
        .iter()
        .map(|(_, k)| format!("'{}'", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
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
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, &sql, values))
        .await?;
    let mut series: Vec<Series> = SERIES
        .iter()
        .map(|(name, kind)| Series {
            name: (*name).to_string(),
            event: kind.as_str().to_string(),
            counts: vec![0; buckets],
            total: 0,
        })
        .collect();
    for row in rows {
        let event: String = row.try_get("", "event")?;
        let index: i64 = row.try_get("", "bucket")?;
        let n: i64 = row.try_get("", "n")?;
        let Some(s) = series.iter_mut().find(|s| s.event == event) else {
            continue;
        };
        if let Some(slot) = usize::try_from(index)
            .ok()
            .and_then(|i| s.counts.get_mut(i))
        {
            let n = u64::try_from(n).unwrap_or_default();
            *slot += n;
            s.total += n;
        }
    }
    Ok(Overview {
        buckets: starts,
        bucket_minutes: bucket.num_minutes(),
        series,
    })
}

/// How many events of one kind ended one way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventCount {
    pub event: String,
    pub outcome: String,
    pub count: u64,
}

/// A name (actor, address or module) and how often it appears.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ranked {
    pub name: String,
    pub count: u64,
}

/// The security report over `[start, end)`: what the spec's `admin security-report` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    /// Every event kind and outcome seen in the window, by name.
    pub events: Vec<EventCount>,
    pub total_events: u64,
    /// Accounts with the most failed sign-ins.
    pub failed_logins_by_actor: Vec<Ranked>,
    /// Addresses with the most failed sign-ins.
    pub failed_logins_by_address: Vec<Ranked>,
    /// Actors refused most often.
    pub denials_by_actor: Vec<Ranked>,
    /// Modules run most often.
    pub executions_by_module: Vec<Ranked>,
    /// Sandbox violations by kind (`sandbox.memory_limit`, …).
    pub sandbox_violations: Vec<Ranked>,
}

impl Report {
    /// The count of one event kind (all outcomes).
    pub fn count(&self, event: &str) -> u64 {
        self.events
            .iter()
            .filter(|e| e.event == event)
            .map(|e| e.count)
            .sum()
    }
}

/// How many names each ranking keeps.
const TOP: u64 = 10;

/// Builds the security report over `[start, end)`, counted by the database. The caller
/// ([`crate::Platform::security_report`]) has checked `system:audit`.
pub(crate) async fn report(
    db: &DatabaseConnection,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Report, SecurityError> {
    let backend = db.get_database_backend();
    let (p1, p2) = match backend {
        sea_orm::DbBackend::Postgres => ("$1", "$2"),
        _ => ("?", "?"),
    };
    let window = format!("occurred_at >= {p1} AND occurred_at < {p2}");
    let values = || -> Vec<Value> { vec![start.into(), end.into()] };
    let sql = format!(
        "SELECT event, outcome, COUNT(*) AS n FROM audit_logs WHERE {window} GROUP BY event, outcome ORDER BY event, outcome"
    );
    let mut events = Vec::new();
    for row in db
        .query_all_raw(Statement::from_sql_and_values(backend, &sql, values()))
        .await?
    {
        let count: i64 = row.try_get("", "n")?;
        events.push(EventCount {
            event: row.try_get("", "event")?,
            outcome: row.try_get("", "outcome")?,
            count: u64::try_from(count).unwrap_or_default(),
        });
    }
    // `column` and `event` are constants of this function, never input.
    let ranked = |column: &'static str, event: &'static str| {
        let sql = format!(
            "SELECT COALESCE({column}, '(none)') AS name, COUNT(*) AS n FROM audit_logs WHERE event = '{event}' AND {window} \
             GROUP BY COALESCE({column}, '(none)') ORDER BY n DESC, name LIMIT {TOP}"
        );
        let statement = Statement::from_sql_and_values(backend, &sql, values());
        async move {
            let mut out = Vec::new();
            for row in db.query_all_raw(statement).await? {
                let count: i64 = row.try_get("", "n")?;
                out.push(Ranked {
                    name: row.try_get("", "name")?,
                    count: u64::try_from(count).unwrap_or_default(),
                });
            }
            Ok::<_, SecurityError>(out)
        }
    };
    let violation = match backend {
        sea_orm::DbBackend::Postgres => "details->>'violation'",
        _ => "json_extract(details, '$.violation')",
    };
    let sandbox_sql = format!(
        "SELECT COALESCE({violation}, '(unknown)') AS name, COUNT(*) AS n FROM audit_logs WHERE event = 'sandbox_violation' AND {window} \
         GROUP BY COALESCE({violation}, '(unknown)') ORDER BY n DESC, name LIMIT {TOP}"
    );
    let mut sandbox_violations = Vec::new();
    for row in db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            &sandbox_sql,
            values(),
        ))
        .await?
    {
        let count: i64 = row.try_get("", "n")?;
        sandbox_violations.push(Ranked {
            name: row.try_get("", "name")?,
            count: u64::try_from(count).unwrap_or_default(),
        });
    }
    Ok(Report {
        start,
        end,
        generated_at: now,
        total_events: events.iter().map(|e| e.count).sum(),
        events,
        failed_logins_by_actor: ranked("actor_name", "login_failure").await?,
        failed_logins_by_address: ranked("COALESCE(source_ip, ip_net)", "login_failure").await?,
        denials_by_actor: ranked("actor_name", "permission_denied").await?,
        executions_by_module: ranked("target_id", "module_execute").await?,
        sandbox_violations,
    })
}
