//! The Compliance page's settings: privacy.yml and soc2.yml shown to holders of `system:audit`
//! and edited by holders of `system:config` (admins, through `system:*`). How the values are
//! layered, applied without a restart and protected from a stale save is in
//! [`crate::settings`]; here are the permission checks, the per-field validation and the
//! `config_change` events with the values before and after.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use serde::Serialize;

use super::{Compliance, ComplianceError};
use crate::{
    access::Principal,
    audit::{Actor, AuditEvent, EventKind, Outcome},
    identity::entities::role,
    settings::{self, FILES, FieldKind, SaveRefused},
};

/// One setting as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingView {
    /// Dotted key in its file (`privacy.data_retention.audit_logs`): the form field's name.
    pub key: String,
    pub label: String,
    pub help: String,
    /// `bool`, `span`, `optional_span`, `choices` or `roles`.
    pub kind: String,
    /// For `choices`: what may be listed.
    pub choices: Vec<String>,
    /// The value in force, as the form shows it.
    pub value: String,
    /// The file's own value (over the built-in default).
    pub file_value: String,
    /// The value in force comes from the dashboard, not from the file.
    pub overridden: bool,
}

/// One file's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingsFileView {
    /// `privacy.yml` or `soc2.yml`.
    pub file: String,
    /// Sent back with a save: a save from a page older than the file or the last save is refused.
    pub stamp: String,
    pub updated_by: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    /// The file on disk does not load: why (the last good values stay in force).
    pub problem: Option<String>,
    pub settings: Vec<SettingView>,
}

/// The settings part of the Compliance page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingsPage {
    /// The caller holds `system:config`.
    pub can_edit: bool,
    pub files: Vec<SettingsFileView>,
}

fn kind_name(kind: FieldKind) -> (&'static str, Vec<String>) {
    match kind {
        FieldKind::Bool => ("bool", Vec::new()),
        FieldKind::Span => ("span", Vec::new()),
        FieldKind::OptionalSpan => ("optional_span", Vec::new()),
        FieldKind::Choices(c) => ("choices", c.iter().map(|s| s.to_string()).collect()),
        FieldKind::Roles => ("roles", Vec::new()),
    }
}

fn file_name(file: &str) -> Result<&'static str, ComplianceError> {
    FILES
        .iter()
        .find(|f| **f == file)
        .copied()
        .ok_or_else(|| ComplianceError::UnknownSettings(file.to_string()))
}

/// The keys whose value differs between two settings of one file, with both values.
fn differences(
    file: &str,
    before: &settings::FileState,
    after: &settings::FileState,
) -> (
    serde_json::Map<String, serde_json::Value>,
    serde_json::Map<String, serde_json::Value>,
) {
    let mut old = serde_json::Map::new();
    let mut new = serde_json::Map::new();
    for f in settings::fields(file) {
        let (a, b) = (before.value(f.key), after.value(f.key));
        if a != b {
            old.insert(f.key.to_string(), a);
            new.insert(f.key.to_string(), b);
        }
    }
    (old, new)
}

impl Compliance {
    /// privacy.yml and soc2.yml as in force, per setting with the file's value beside it
    /// (`system:audit`). Reads the files again first, so a change on disk shows at once.
    pub async fn settings(&self, principal: &Principal) -> Result<SettingsPage, ComplianceError> {
        principal
            .require(&self.audit, "system", "audit", "compliance settings")
            .await?;
        self.refresh_settings().await?;
        Ok(self.settings_page(principal))
    }

    fn settings_page(&self, principal: &Principal) -> SettingsPage {
        let live = self.settings.get();
        let files = FILES
            .iter()
            .zip(live.files.iter())
            .map(|(file, state)| SettingsFileView {
                file: file.to_string(),
                stamp: state.stamp(),
                updated_by: state.updated_by.clone(),
                updated_at: state.updated_at,
                problem: state.problem.clone(),
                settings: settings::fields(file)
                    .iter()
                    .map(|f| {
                        let (kind, choices) = kind_name(f.kind);
                        let from_file = state.file_values.get(f.key).cloned().unwrap_or_default();
                        SettingView {
                            key: f.key.to_string(),
                            label: f.label.to_string(),
                            help: f.help.to_string(),
                            kind: kind.to_string(),
                            choices,
                            value: settings::form_text(&state.value(f.key)),
                            file_value: settings::form_text(&from_file),
                            overridden: state.overrides.contains_key(f.key),
                        }
                    })
                    .collect(),
            })
            .collect();
        SettingsPage {
            can_edit: principal.can("system", "config"),
            files,
        }
    }

    /// Reads the files and the saved settings again (every replica does this every few seconds);
    /// a file changed on disk is recorded as `config_change` by the system.
    pub async fn refresh_settings(&self) -> Result<(), ComplianceError> {
        for change in self.settings.refresh(&self.db).await? {
            let mut details = serde_json::json!({
                "file": change.file,
                "source": "disk",
                "before": change.before,
                "after": change.after,
            });
            if let Some(problem) = &change.problem {
                details["problem"] = serde_json::json!(problem);
            }
            let outcome = if change.problem.is_some() {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            self.audit
                .record(
                    AuditEvent::new(EventKind::ConfigChange, Actor::system(), outcome)
                        .with_details(details),
                )
                .await?;
        }
        Ok(())
    }

    /// Saves `file`'s settings from the page's form (`system:config`): `values` holds the form's
    /// text per dotted key (a setting left out keeps its value in force), `stamp` what the page
    /// was rendered with.
    /// `None` drops the dashboard's changes, so the file's values apply again. Applied at once and
    /// recorded as `config_change` with the values before and after.
    pub async fn save_settings(
        &self,
        principal: &Principal,
        file: &str,
        stamp: &str,
        values: Option<&BTreeMap<String, String>>,
    ) -> Result<SettingsPage, ComplianceError> {
        principal
            .require(&self.audit, "system", "config", "compliance settings")
            .await?;
        let file = file_name(file)?;
        let parsed = match values {
            None => None,
            Some(values) => Some(self.parse_values(file, values).await?),
        };
        // A file changed on disk is recorded before the save is judged against it.
        self.refresh_settings().await?;
        let now = self.clock.now();
        let (before, after) = match self
            .settings
            .save(
                &self.db,
                file,
                stamp,
                parsed.as_ref(),
                principal.name(),
                now,
            )
            .await
        {
            Ok(pair) => pair,
            Err(SaveRefused::Invalid(fields)) => return Err(ComplianceError::Invalid(fields)),
            Err(SaveRefused::Stale(reason)) => return Err(ComplianceError::Stale(reason)),
            Err(SaveRefused::Db(e)) => return Err(e.into()),
        };
        let (Some(old), Some(new)) = (before.file(file), after.file(file)) else {
            return Ok(self.settings_page(principal));
        };
        let (before_values, after_values) = differences(file, old, new);
        let details = serde_json::json!({
            "file": file,
            "source": "dashboard",
            "action": if values.is_none() { "use_file_values" } else { "save" },
            "before": before_values,
            "after": after_values,
        });
        self.audit
            .record(
                AuditEvent::new(EventKind::ConfigChange, principal.actor(), Outcome::Success)
                    .with_target("config", file)
                    .with_details(details),
            )
            .await?;
        Ok(self.settings_page(principal))
    }

    /// Reads the form's text per setting; every message at once, by field.
    async fn parse_values(
        &self,
        file: &'static str,
        values: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, serde_json::Value>, ComplianceError> {
        let fields = settings::fields(file);
        let in_force = self.settings.get();
        let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(unknown) = values.keys().find(|k| !fields.iter().any(|f| f.key == *k)) {
            problems
                .entry(unknown.clone())
                .or_default()
                .push(format!("is not a setting of {file}"));
        }
        let mut parsed = BTreeMap::new();
        for f in fields {
            let kept;
            let text = match values.get(f.key) {
                Some(text) => text,
                None => {
                    kept = in_force
                        .file(file)
                        .map(|s| settings::form_text(&s.value(f.key)))
                        .unwrap_or_default();
                    &kept
                }
            };
            if text.len() > 1024 {
                problems
                    .entry(f.key.to_string())
                    .or_default()
                    .push("is too long".into());
                continue;
            }
            match settings::parse_field(f.kind, text) {
                Ok(v) => {
                    parsed.insert(f.key.to_string(), v);
                }
                Err(message) => problems.entry(f.key.to_string()).or_default().push(message),
            }
        }
        // Role names must name roles that exist.
        for f in fields.iter().filter(|f| f.kind == FieldKind::Roles) {
            let Some(names) = parsed.get(f.key).and_then(|v| v.as_array()) else {
                continue;
            };
            let names: Vec<String> = names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect();
            if names.is_empty() {
                continue;
            }
            let known: Vec<String> = role::Entity::find()
                .select_only()
                .column(role::Column::Name)
                .filter(role::Column::Name.is_in(names.clone()))
                .into_tuple()
                .all(&self.db)
                .await?;
            for name in names.iter().filter(|n| !known.contains(n)) {
                problems
                    .entry(f.key.to_string())
                    .or_default()
                    .push(format!("there is no role named \"{name}\""));
            }
        }
        if problems.is_empty() {
            Ok(parsed)
        } else {
            Err(ComplianceError::Invalid(problems))
        }
    }
}
