//! The audit core: the event model and the service that records events.
//!
//! Every state change in the platform records its event here, from the service that made it.
//! Destinations other than the database, redaction and the dashboard build on this (audit.yml).

mod entity;
mod event;

use std::sync::Arc;

use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, QueryOrder, QuerySelect};

pub use self::event::{Actor, AuditEvent, EventKind, Outcome, Target};
use crate::{clock::Clock, config::Config};

/// Errors of the audit service.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The event could not be written to the database.
    #[error("could not store the audit event")]
    Store(#[from] sea_orm::DbErr),
    /// A stored row could not be read back as an event.
    #[error("stored audit event {id} is malformed: {reason}")]
    Malformed { id: uuid::Uuid, reason: String },
}

/// An event as stored, with its id and time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RecordedEvent {
    pub id: uuid::Uuid,
    pub timestamp: chrono::DateTime<chrono::Utc>,
    #[serde(flatten)]
    pub event: AuditEvent,
}

#[derive(Debug, Clone)]
pub struct AuditService {
    db: DatabaseConnection,
    clock: Arc<dyn Clock>,
    config: Arc<Config>,
}

impl AuditService {
    pub fn new(db: DatabaseConnection, clock: Arc<dyn Clock>, config: Arc<Config>) -> Self {
        Self { db, clock, config }
    }

    /// Records `event` unless audit.yml leaves it out; returns the stored event.
    pub async fn record(&self, event: AuditEvent) -> Result<Option<RecordedEvent>, AuditError> {
        if !self.wants(event.kind) {
            return Ok(None);
        }
        let recorded = RecordedEvent { id: uuid::Uuid::now_v7(), timestamp: self.clock.now(), event };
        entity::ActiveModel::from(&recorded).insert(&self.db).await?;
        Ok(Some(recorded))
    }

    /// Whether audit.yml asks for this kind of event. Events the spec names are recorded only when
    /// listed under `events`; the platform's further security events are always recorded.
    pub fn wants(&self, kind: EventKind) -> bool {
        let settings = &self.config.audit.audit;
        settings.enabled && (!kind.named_in_spec() || settings.records(kind))
    }

    /// The newest events first.
    pub async fn recent(&self, limit: u64) -> Result<Vec<RecordedEvent>, AuditError> {
        let rows = entity::Entity::find()
            .order_by_desc(entity::Column::OccurredAt)
            .order_by_desc(entity::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter().map(RecordedEvent::try_from).collect()
    }
}

