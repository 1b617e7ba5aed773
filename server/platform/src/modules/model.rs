//! What the module services take and return: statuses, grantees, the module view, filters and
//! upload metadata, and how a stored row becomes a [`ModuleInfo`].

use chrono::{DateTime, Utc};
use serde::Serialize;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::{
    Modules,
    entities::{module, share},
    error::ModuleError,
};

/// Whether a module may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleStatus {
    Active,
    Review,
    Quarantined,
}

impl ModuleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Review => "review",
            Self::Quarantined => "quarantined",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "review" => Some(Self::Review),
            "quarantined" => Some(Self::Quarantined),
            _ => None,
        }
    }
}

/// Who a module is shared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Grantee {
    /// A user, by username.
    User(String),
    /// Everyone holding a role.
    Role(String),
}

/// The analysis part of a module.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    pub risk_score: u8,
    pub findings: Vec<analysis::Finding>,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub suspicious: bool,
}

/// A module as the services return it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModuleInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owner: String,
    pub owner_id: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub kind: String,
    pub status: ModuleStatus,
    pub analysis: Analysis,
    pub capability_group: Option<String>,
    pub review_note: Option<String>,
    pub shares: Vec<Grantee>,
    pub created_at: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
}

/// Filters of the module list.
#[derive(Debug, Clone, Default)]
pub struct ModuleFilter {
    pub status: Option<ModuleStatus>,
    /// Owner's username.
    pub owner: Option<String>,
    /// Text in the name or description.
    pub q: Option<String>,
}

/// Name and description of an upload.
#[derive(Debug, Clone, Default)]
pub struct UploadMeta {
    pub name: String,
    pub description: String,
}

/// What one step of the background re-analysis did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reanalysis {
    /// This module was analysed again; `status` is its status now.
    Reanalysed { id: String, status: String },
    /// Every module is current.
    Idle,
}

/// Module names: 1–128 printable characters, trimmed.
pub fn check_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        Err("must be 1–128 printable characters".into())
    } else {
        Ok(name.to_string())
    }
}

/// The view of a module row, with its owner's name and its shares.
pub(super) fn view(row: module::Model, owner: String, shares: Vec<Grantee>) -> ModuleInfo {
    let report: StoredAnalysis = serde_json::from_value(row.analysis.clone()).unwrap_or_default();
    ModuleInfo {
        id: row.id.to_string(),
        name: row.name,
        description: row.description,
        owner,
        owner_id: row.owner_id.to_string(),
        size_bytes: u64::try_from(row.size_bytes).unwrap_or_default(),
        sha256: row.sha256,
        kind: row.kind,
        status: ModuleStatus::parse(&row.status).unwrap_or(ModuleStatus::Quarantined),
        analysis: Analysis {
            risk_score: u8::try_from(row.risk_score).unwrap_or(10),
            findings: report.findings,
            imports: report.imports,
            exports: report.exports,
            suspicious: row.suspicious,
        },
        capability_group: row.capability_group,
        review_note: row.review_note,
        shares,
        created_at: row.created_at,
        last_run_at: row.last_run_at,
    }
}

/// What is kept of a report in the `analysis` column.
#[derive(Debug, Default, serde::Deserialize, Serialize)]
struct StoredAnalysis {
    #[serde(default)]
    findings: Vec<analysis::Finding>,
    #[serde(default)]
    imports: Vec<String>,
    #[serde(default)]
    exports: Vec<String>,
}

pub(super) fn analysis_json(report: &analysis::Report) -> serde_json::Value {
    serde_json::json!({ "findings": report.findings, "imports": report.imports, "exports": report.exports })
}

pub(super) fn kind_str(kind: analysis::ModuleKind) -> &'static str {
    match kind {
        analysis::ModuleKind::Core => "core",
        analysis::ModuleKind::Component => "component",
    }
}

impl Modules {
    pub(super) async fn info(&self, row: module::Model) -> Result<ModuleInfo, ModuleError> {
        let id = row.id;
        self.infos(vec![row])
            .await?
            .pop()
            .ok_or_else(|| ModuleError::NotFound(id.to_string()))
    }

    /// The views of several modules: owners, shares and share users in three queries in all.
    pub(super) async fn infos(
        &self,
        rows: Vec<module::Model>,
    ) -> Result<Vec<ModuleInfo>, ModuleError> {
        use crate::identity::entities::user;
        use std::collections::HashMap;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
        let shares = share::Entity::find()
            .filter(share::Column::ModuleId.is_in(ids))
            .order_by_asc(share::Column::Grantee)
            .all(&self.db)
            .await?;
        let mut user_ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.owner_id).collect();
        user_ids.extend(
            shares
                .iter()
                .filter(|s| s.grantee_kind != "role")
                .filter_map(|s| uuid::Uuid::parse_str(&s.grantee).ok()),
        );
        user_ids.sort_unstable();
        user_ids.dedup();
        let names: HashMap<uuid::Uuid, String> = user::Entity::find()
            .filter(user::Column::Id.is_in(user_ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect();
        let mut by_module: HashMap<uuid::Uuid, Vec<Grantee>> = HashMap::new();
        for s in shares {
            let grantee = if s.grantee_kind == "role" {
                Some(Grantee::Role(s.grantee))
            } else {
                uuid::Uuid::parse_str(&s.grantee)
                    .ok()
                    .and_then(|uid| names.get(&uid))
                    .map(|n| Grantee::User(n.clone()))
            };
            by_module.entry(s.module_id).or_default().extend(grantee);
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let owner = names
                    .get(&row.owner_id)
                    .cloned()
                    .unwrap_or_else(|| "(deleted user)".to_string());
                let shares = by_module.remove(&row.id).unwrap_or_default();
                view(row, owner, shares)
            })
            .collect())
    }
}
