//! The `audit_logs` table (and its chain columns; see `sink/database.rs`).

use sea_orm::{ActiveValue::Set, entity::prelude::*};

use super::{Actor, AuditEvent, EventKind, Outcome, RecordedEvent, Target};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_logs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub occurred_at: DateTimeUtc,
    pub event: String,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// privacy.yml `data_anonymization`: the reduced address and user agent (`anonymise.rs`).
    pub ip_net: Option<String>,
    pub ua_family: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub outcome: String,
    pub details: Json,
    /// Place in the hash chain (1, 2, …); `None` for rows written before the chain existed.
    pub seq: Option<i64>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
    /// Chain v2: the digests of the personal values (`personal.rs`); `None` on v1 rows.
    pub pii: Option<Json>,
    /// Chain v2: the pseudonyms the row names, space-separated with a space at each end.
    pub subjects: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl From<&RecordedEvent> for ActiveModel {
    fn from(r: &RecordedEvent) -> Self {
        let e = &r.event;
        Self {
            id: Set(r.id),
            occurred_at: Set(r.timestamp),
            event: Set(e.kind.as_str().to_string()),
            actor_id: Set(e.actor.id.clone()),
            // An erased name is stored as NULL (v1 rows always had one).
            actor_name: Set(
                (r.pii.is_none() || !e.actor.name.is_empty()).then(|| e.actor.name.clone())
            ),
            source_ip: Set(e.ip.clone()),
            user_agent: Set(e.user_agent.clone()),
            ip_net: Set(e.ip_net.clone()),
            ua_family: Set(e.ua_family.clone()),
            target_type: Set(e.target.as_ref().map(|t| t.kind.clone())),
            target_id: Set(e
                .target
                .as_ref()
                .map(|t| t.id.clone())
                .filter(|id| r.pii.is_none() || !id.is_empty())),
            outcome: Set(e.outcome.as_str().to_string()),
            details: Set(e.details.clone()),
            seq: Set(None),
            prev_hash: Set(None),
            hash: Set(None),
            pii: Set(r.pii.as_ref().and_then(|p| serde_json::to_value(p).ok())),
            subjects: Set(r.pii.as_ref().map(super::personal::subjects_column)),
        }
    }
}

impl TryFrom<Model> for RecordedEvent {
    type Error = super::AuditError;

    fn try_from(m: Model) -> Result<Self, Self::Error> {
        let malformed = |reason: String| super::AuditError::Malformed { id: m.id, reason };
        let kind = EventKind::parse(&m.event)
            .ok_or_else(|| malformed(format!("unknown event {}", m.event)))?;
        let outcome = match m.outcome.as_str() {
            "success" => Outcome::Success,
            "failure" => Outcome::Failure,
            "denied" => Outcome::Denied,
            other => return Err(malformed(format!("unknown outcome {other}"))),
        };
        let pii = match m.pii {
            Some(value) => Some(
                serde_json::from_value(value)
                    .map_err(|e| malformed(format!("unreadable pii: {e}")))?,
            ),
            None => None,
        };
        let target = match (m.target_type, m.target_id) {
            (Some(kind), Some(id)) => Some(Target { kind, id }),
            // A v2 row whose target account was erased keeps the type.
            (Some(kind), None) if pii.is_some() => Some(Target {
                kind,
                id: String::new(),
            }),
            _ => None,
        };
        Ok(RecordedEvent {
            id: m.id,
            timestamp: m.occurred_at,
            event: AuditEvent {
                kind,
                actor: Actor {
                    id: m.actor_id,
                    name: m.actor_name.unwrap_or_default(),
                },
                ip: m.source_ip,
                user_agent: m.user_agent,
                ip_net: m.ip_net,
                ua_family: m.ua_family,
                target,
                outcome,
                details: m.details,
            },
            pii,
        })
    }
}
