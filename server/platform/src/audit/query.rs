//! The audit dashboard's query: filters, free text and keyset paging, newest first.
//!
//! Paging is by (`occurred_at`, `id`) < the cursor of the last row shown, so page 1000 costs what
//! page 1 does; the indexes of migrations 000001 and 000010 serve each filter.

use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, LikeExpr},
};

use super::{EventKind, Outcome, RecordedEvent, entity};

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
    Some((chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?, id.parse().ok()?))
}

fn like_pattern(text: &str) -> LikeExpr {
    let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    LikeExpr::new(format!("%{escaped}%")).escape('\\')
}

pub(super) async fn run(db: &sea_orm::DatabaseConnection, q: &AuditQuery) -> Result<AuditPage, super::AuditError> {
    let limit = match q.limit {
        0 => 50,
        n => std::cmp::Ord::min(n, 500),
    };
    let mut cond = Condition::all();
    if !q.events.is_empty() {
        cond = cond.add(entity::Column::Event.is_in(q.events.iter().map(|e| e.as_str())));
    }
    if let Some(actor) = q.actor.as_deref().filter(|a| !a.is_empty()) {
        cond = cond.add(Condition::any().add(entity::Column::ActorName.eq(actor)).add(entity::Column::ActorId.eq(actor)));
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
        for col in ["actor_name", "actor_id", "target_id", "source_ip", "user_agent", "event"] {
            any = any.add(Expr::cust(format!("LOWER({col})")).like(like_pattern(text)));
        }
        any = any.add(Expr::cust("LOWER(CAST(details AS TEXT))").like(like_pattern(text)));
        cond = cond.add(any);
    }
    if let Some(after) = q.after.as_deref() {
        let (at, id) = parse_cursor(after).ok_or_else(|| super::AuditError::Query(format!("not a page cursor: {after}")))?;
        cond = cond.add(
            Condition::any()
                .add(entity::Column::OccurredAt.lt(at))
                .add(Condition::all().add(entity::Column::OccurredAt.eq(at)).add(entity::Column::Id.lt(id))),
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
    let events: Vec<RecordedEvent> = rows.into_iter().take(limit as usize).map(RecordedEvent::try_from).collect::<Result<_, _>>()?;
    let next = if more { events.last().map(cursor) } else { None };
    Ok(AuditPage { events, next })
}
