//! The audit dashboard's query: filters, free text and keyset paging, newest first.
//!
//! Paging is by (`occurred_at`, `id`) < the cursor of the last row shown, so page 1000 costs what
//! page 1 does; the indexes of migrations 000001 and 000010 serve each filter.

use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, LikeExpr},
};

mod export;

use super::{EventKind, Outcome, RecordedEvent, entity};

pub use self::export::{AuditExport, ExportFormat};

/// What the dashboard asks for; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditQuery {
    /// Any of these events (all when empty).
    pub events: Vec<EventKind>,
    /// The actor's username or id.
    pub actor: Option<String>,
    pub outcome: Option<Outcome>,
    /// The id of the resource the event is about.
    pub resource_id: Option<String>,
    /// From this time on (inclusive).
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Before this time (exclusive).
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Case-insensitive text in the actor, resource, address, user agent, event or details.
    pub text: Option<String>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    /// Rows per page (1–500; 50 when 0).
    pub limit: u64,
}

/// The filters as they arrive from a URL query or a form: every field text, empty meaning "any".
/// [`AuditQuery::from_params`] checks them; every adapter (dashboard, export, REST) goes through it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AuditParams {
    /// One event name, or several separated by commas.
    pub event: String,
    pub actor: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// A resource id (module, user, …).
    pub resource: String,
    /// RFC 3339, or `YYYY-MM-DDTHH:MM[:SS]` / `YYYY-MM-DD` read as UTC (what a date input sends).
    pub from: String,
    pub to: String,
    /// Free text.
    pub q: String,
    /// The cursor of the previous page.
    pub after: String,
    pub limit: Option<u64>,
}

fn parse_time(
    field: &'static str,
    value: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, super::AuditError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(Some(t.with_timezone(&chrono::Utc)));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(value, format) {
            return Ok(Some(t.and_utc()));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()));
    }
    Err(super::AuditError::Query {
        field,
        message: format!(
            "expected a date and time such as 2026-11-28T09:30 (UTC) or RFC 3339, got {value:?}"
        ),
    })
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

impl AuditQuery {
    /// Checks text filters: unknown event names, outcomes, times and cursors are refused with a
    /// message naming the field.
    pub fn from_params(p: &AuditParams) -> Result<Self, super::AuditError> {
        let mut events = Vec::new();
        for name in p.event.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            events.push(
                EventKind::parse(name).ok_or_else(|| super::AuditError::Query {
                    field: "event",
                    message: format!("unknown event {name:?}"),
                })?,
            );
        }
        let outcome = match p.outcome.trim() {
            "" => None,
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            "denied" => Some(Outcome::Denied),
            other => {
                return Err(super::AuditError::Query {
                    field: "outcome",
                    message: format!("expected success, failure or denied, got {other:?}"),
                });
            }
        };
        let from = parse_time("from", &p.from)?;
        let to = parse_time("to", &p.to)?;
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            return Err(super::AuditError::Query {
                field: "from",
                message: "must be before to".into(),
            });
        }
        let after = non_empty(&p.after);
        if let Some(a) = &after
            && parse_cursor(a).is_none()
        {
            return Err(super::AuditError::Query {
                field: "after",
                message: format!("not a page cursor: {a:?}"),
            });
        }
        Ok(Self {
            events,
            actor: non_empty(&p.actor),
            outcome,
            resource_id: non_empty(&p.resource),
            from,
            to,
            text: non_empty(&p.q),
            after,
            limit: p.limit.unwrap_or(0),
        })
    }
}

/// The columns of a CSV export, in order.
pub const CSV_HEADER: &str =
    "timestamp,event,outcome,actor_id,actor,ip,user_agent,resource_type,resource_id,details,id\r\n";

/// One event as a CSV record (with its line end).
pub fn csv_row(e: &RecordedEvent) -> String {
    let mut out = String::new();
    let ev = &e.event;
    let details = ev.details.to_string();
    let fields: [&str; 11] = [
        &e.timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        ev.kind.as_str(),
        ev.outcome.as_str(),
        ev.actor.id.as_deref().unwrap_or_default(),
        &ev.actor.name,
        // Once anonymised, the reduced forms are what is kept.
        ev.ip
            .as_deref()
            .or(ev.ip_net.as_deref())
            .unwrap_or_default(),
        ev.user_agent
            .as_deref()
            .or(ev.ua_family.as_deref())
            .unwrap_or_default(),
        ev.target
            .as_ref()
            .map(|t| t.kind.as_str())
            .unwrap_or_default(),
        ev.target
            .as_ref()
            .map(|t| t.id.as_str())
            .unwrap_or_default(),
        &details,
        &e.id.to_string(),
    ];
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        crate::csv::push_field(&mut out, f);
    }
    out.push_str("\r\n");
    out
}

/// One page of events, newest first.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditPage {
    pub events: Vec<RecordedEvent>,
    /// Pass as `after` for the next page; `None` on the last page.
    pub next: Option<String>,
}

fn cursor(e: &RecordedEvent) -> String {
    format!("{}_{}", e.timestamp.timestamp_micros(), e.id)
}

fn parse_cursor(s: &str) -> Option<(chrono::DateTime<chrono::Utc>, uuid::Uuid)> {
    let (micros, id) = s.split_once('_')?;
    Some((
        chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.parse().ok()?,
    ))
}

fn like_pattern(text: &str) -> LikeExpr {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    LikeExpr::new(format!("%{escaped}%")).escape('\\')
}

pub(super) async fn run(
    db: &sea_orm::DatabaseConnection,
    q: &AuditQuery,
) -> Result<AuditPage, super::AuditError> {
    let limit = match q.limit {
        0 => 50,
        n => std::cmp::Ord::min(n, 500),
    };
    let mut cond = Condition::all();
    if !q.events.is_empty() {
        cond = cond.add(entity::Column::Event.is_in(q.events.iter().map(|e| e.as_str())));
    }
    if let Some(actor) = q.actor.as_deref().filter(|a| !a.is_empty()) {
        cond = cond.add(
            Condition::any()
                .add(entity::Column::ActorName.eq(actor))
                .add(entity::Column::ActorId.eq(actor)),
        );
    }
    if let Some(outcome) = q.outcome {
        cond = cond.add(entity::Column::Outcome.eq(outcome.as_str()));
    }
    if let Some(id) = q.resource_id.as_deref().filter(|a| !a.is_empty()) {
        cond = cond.add(entity::Column::TargetId.eq(id));
    }
    if let Some(from) = q.from {
        cond = cond.add(entity::Column::OccurredAt.gte(from));
    }
    if let Some(to) = q.to {
        cond = cond.add(entity::Column::OccurredAt.lt(to));
    }
    if let Some(text) = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let mut any = Condition::any();
        for col in [
            "actor_name",
            "actor_id",
            "target_id",
            "source_ip",
            "user_agent",
            "ip_net",
            "ua_family",
            "event",
        ] {
            any = any.add(Expr::cust(format!("LOWER({col})")).like(like_pattern(text)));
        }
        any = any.add(Expr::cust("LOWER(CAST(details AS TEXT))").like(like_pattern(text)));
        cond = cond.add(any);
    }
    if let Some(after) = q.after.as_deref() {
        let (at, id) = parse_cursor(after).ok_or_else(|| super::AuditError::Query {
            field: "after",
            message: format!("not a page cursor: {after:?}"),
        })?;
        cond = cond.add(
            Condition::any().add(entity::Column::OccurredAt.lt(at)).add(
                Condition::all()
                    .add(entity::Column::OccurredAt.eq(at))
                    .add(entity::Column::Id.lt(id)),
            ),
        );
    }
    let rows = entity::Entity::find()
        .filter(cond)
        .order_by_desc(entity::Column::OccurredAt)
        .order_by_desc(entity::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    let events: Vec<RecordedEvent> = rows
        .into_iter()
        .take(limit as usize)
        .map(RecordedEvent::try_from)
        .collect::<Result<_, _>>()?;
    let next = if more {
        events.last().map(cursor)
    } else {
        None
    };
    Ok(AuditPage { events, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_checked_field_by_field() {
        let ok = AuditQuery::from_params(&AuditParams {
            event: "login_failure, module_execute".into(),
            outcome: "denied".into(),
            from: "2026-11-28T09:30".into(),
            to: "2026-11-29".into(),
            actor: "  ".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            ok.events,
            vec![EventKind::LoginFailure, EventKind::ModuleExecute]
        );
        assert_eq!(ok.outcome, Some(Outcome::Denied));
        assert_eq!(ok.from.unwrap().to_rfc3339(), "2026-11-28T09:30:00+00:00");
        assert_eq!(ok.actor, None);
        let err = |p: AuditParams| AuditQuery::from_params(&p).unwrap_err().to_string();
        assert!(
            err(AuditParams {
                event: "login_party".into(),
                ..Default::default()
            })
            .contains("event: unknown event \"login_party\"")
        );
        assert!(
            err(AuditParams {
                outcome: "maybe".into(),
                ..Default::default()
            })
            .contains("outcome:")
        );
        assert!(
            err(AuditParams {
                from: "yesterday".into(),
                ..Default::default()
            })
            .contains("from:")
        );
        assert!(
            err(AuditParams {
                from: "2026-11-29".into(),
                to: "2026-11-28".into(),
                ..Default::default()
            })
            .contains("before")
        );
        assert!(
            err(AuditParams {
                after: "x".into(),
                ..Default::default()
            })
            .contains("after:")
        );
    }

    #[test]
    fn csv_rows_quote_and_defuse_formulas() {
        let event = super::super::AuditEvent::new(
            EventKind::LoginFailure,
            super::super::Actor::user("u1", "=cmd|' /C calc'!A0"),
            Outcome::Failure,
        )
        .with_client(
            Some("10.0.0.1".into()),
            Some("agent, \"quoted\"\nnext".into()),
        )
        .with_details(serde_json::json!({"reason": "wrong_password"}));
        let e = RecordedEvent {
            id: uuid::Uuid::nil(),
            timestamp: chrono::DateTime::from_timestamp(0, 0).unwrap(),
            event,
            pii: None,
        };
        let row = csv_row(&e);
        assert!(
            row.starts_with(
                "1970-01-01T00:00:00.000000Z,login_failure,failure,u1,'=cmd|' /C calc'!A0,10.0.0.1,"
            ),
            "{row}"
        );
        assert!(row.contains(",\"agent, \"\"quoted\"\"\nnext\","), "{row}");
        assert!(
            row.contains("\"{\"\"reason\"\":\"\"wrong_password\"\"}\""),
            "{row}"
        );
        assert!(
            row.ends_with(",00000000-0000-0000-0000-000000000000\r\n"),
            "{row}"
        );
    }
}
