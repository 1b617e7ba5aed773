//! The settings an administrator edits while the platform runs: privacy.yml and soc2.yml.
//!
//! Three layers, the later winning key by key: the spec's values compiled in, the file in the
//! config dir, and the *override layer*: the keys an administrator changed on the Compliance page,
//! kept in the database (`settings_overrides`), so every replica applies the same values and a
//! backup carries them. The files are never rewritten, so their comments and layout stay as the
//! operator wrote them; the page shows which values come from the file and which are overridden,
//! and "use the file's values" drops the overrides again.
//!
//! [`Live`] holds the values in force. The services read them through it on every use, so a save
//! applies at once, without a restart; every replica reads the files and the overrides again every
//! few seconds ([`Live::refresh`]), which also notices a file edited on disk. A file that no longer
//! loads keeps the last good values in force and shows its problem on the page.
//!
//! Each file's state has a *stamp* (the file's hash and the override layer's version). A save
//! names the stamp its page was rendered with; when either moved since, the save is refused and
//! says who or what changed it, so two administrators never overwrite each other silently. The
//! version check is also in the database's `UPDATE … WHERE version = ?`, so two replicas saving at
//! the same moment cannot both win.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    sea_query::Expr,
};
use serde_yaml_ng::Value;

use crate::config::{self, Config, privacy::PrivacyFile, soc2::Soc2File, units::Span};

/// The files the dashboard edits, in the order the page shows them.
pub const FILES: [&str; 2] = ["privacy.yml", "soc2.yml"];

/// What kind of value a setting holds, and so how the form shows and reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// On or off.
    Bool,
    /// A period such as `7y` or `90d`.
    Span,
    /// A period, or empty for the documented default.
    OptionalSpan,
    /// Some of a fixed list.
    Choices(&'static [&'static str]),
    /// Role names.
    Roles,
}

/// One editable setting.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The dotted key in its file, e.g. `privacy.data_retention.audit_logs`.
    pub key: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub kind: FieldKind,
}

const fn field(
    key: &'static str,
    label: &'static str,
    help: &'static str,
    kind: FieldKind,
) -> Field {
    Field {
        key,
        label,
        help,
        kind,
    }
}

use FieldKind::{Bool, Choices, OptionalSpan, Roles, Span as Period};

const PRIVACY_FIELDS: &[Field] = &[
    field(
        "privacy.gdpr_compliance",
        "GDPR compliance",
        "Exports, erasure and retention as privacy.yml sets them.",
        Bool,
    ),
    field(
        "privacy.data_retention.audit_logs",
        "Keep audit events for",
        "Older events are pruned behind a signed checkpoint, e.g. 7y.",
        Period,
    ),
    field(
        "privacy.data_retention.user_data",
        "Keep accounts after the last sign-in for",
        "Accounts idle longer are erased, e.g. 2y.",
        Period,
    ),
    field(
        "privacy.data_retention.module_data",
        "Keep modules after the last run for",
        "Modules unused longer are deleted, e.g. 1y.",
        Period,
    ),
    field(
        "privacy.data_retention.metrics_data",
        "Keep metrics for",
        "Prometheus keeps the history; e.g. 90d.",
        Period,
    ),
    field(
        "privacy.data_anonymization.enabled",
        "Anonymisation",
        "Reduce client addresses and user agents once they are old.",
        Bool,
    ),
    field(
        "privacy.data_anonymization.fields_to_anonymize",
        "Fields to anonymise",
        "Comma-separated: ip_address, user_agent, email.",
        Choices(&["ip_address", "user_agent", "email"]),
    ),
    field(
        "privacy.data_anonymization.full_for",
        "Keep full values for",
        "Empty: the IDS window (at least 24h), e.g. 30d.",
        OptionalSpan,
    ),
    field(
        "privacy.right_to_be_forgotten.enabled",
        "Right to be forgotten",
        "People may ask for their account to be erased.",
        Bool,
    ),
    field(
        "privacy.right_to_be_forgotten.automated_deletion",
        "Automated deletion",
        "Requests run by themselves after the grace period.",
        Bool,
    ),
    field(
        "privacy.right_to_be_forgotten.grace_period",
        "Grace period",
        "How long a request waits and can be cancelled, e.g. 7d.",
        Period,
    ),
    field(
        "privacy.data_export.enabled",
        "Data export",
        "People may download their data.",
        Bool,
    ),
    field(
        "privacy.data_export.formats",
        "Export formats",
        "Comma-separated: json, csv.",
        Choices(&["json", "csv"]),
    ),
    field(
        "privacy.data_export.encryption",
        "Encrypt exports",
        "Exports are sealed with age.",
        Bool,
    ),
];

const SOC2_FIELDS: &[Field] = &[
    field(
        "soc2.security.access_controls",
        "Access controls",
        "Roles and permissions decide every request.",
        Bool,
    ),
    field(
        "soc2.security.multi_factor_auth",
        "Multi-factor authentication",
        "Holders of the roles below must use a second factor.",
        Bool,
    ),
    field(
        "soc2.security.multi_factor_roles",
        "Roles that need a second factor",
        "Comma-separated role names, e.g. admin.",
        Roles,
    ),
    field(
        "soc2.security.encryption_at_rest",
        "Encryption at rest",
        "Modules and secrets stored encrypted.",
        Bool,
    ),
    field(
        "soc2.security.encryption_in_transit",
        "Encryption in transit",
        "HTTPS with tls.yml's minimum version.",
        Bool,
    ),
    field(
        "soc2.availability.monitoring",
        "Monitoring",
        "Metrics are scraped.",
        Bool,
    ),
    field(
        "soc2.availability.alerting",
        "Alerting",
        "Alert channels deliver.",
        Bool,
    ),
    field(
        "soc2.availability.backup_testing",
        "Backup testing",
        "Backups are restored as a test.",
        Bool,
    ),
    field(
        "soc2.availability.disaster_recovery",
        "Disaster recovery",
        "A restore runbook and recent backup.",
        Bool,
    ),
    field(
        "soc2.processing_integrity.input_validation",
        "Input validation",
        "Uploads are checked before they run.",
        Bool,
    ),
    field(
        "soc2.processing_integrity.error_handling",
        "Error handling",
        "Errors never show internals.",
        Bool,
    ),
    field(
        "soc2.processing_integrity.data_integrity_checks",
        "Data integrity checks",
        "The audit chain verifies.",
        Bool,
    ),
    field(
        "soc2.confidentiality.data_classification",
        "Data classification",
        "Every stored personal field has a class.",
        Bool,
    ),
    field(
        "soc2.confidentiality.access_logging",
        "Access logging",
        "Every access is an audit event.",
        Bool,
    ),
    field(
        "soc2.confidentiality.secure_disposal",
        "Secure disposal",
        "Deleted data cannot be read from copies.",
        Bool,
    ),
    field(
        "soc2.privacy.consent_management",
        "Consent management",
        "People accept the privacy notice.",
        Bool,
    ),
    field(
        "soc2.privacy.data_minimization",
        "Data minimisation",
        "Old addresses are reduced.",
        Bool,
    ),
    field(
        "soc2.privacy.purpose_limitation",
        "Purpose limitation",
        "Every stored field has a purpose.",
        Bool,
    ),
];

/// The editable settings of `file` (`privacy.yml` or `soc2.yml`).
pub fn fields(file: &str) -> &'static [Field] {
    match file {
        "privacy.yml" => PRIVACY_FIELDS,
        "soc2.yml" => SOC2_FIELDS,
        _ => &[],
    }
}

/// One file's layers as the platform last read them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileState {
    /// SHA-256 of the file's bytes, or `absent`.
    pub disk: String,
    /// The override layer's version (0: never saved).
    pub version: i64,
    /// Dotted key → value the dashboard set (only keys that differ from the file).
    pub overrides: BTreeMap<String, serde_json::Value>,
    /// The file's own values (over the defaults), by dotted key, for the page and for diffs.
    pub file_values: BTreeMap<String, serde_json::Value>,
    /// Who saved the override layer last, and when.
    pub updated_by: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
    /// The file or the layers no longer load: why. The values in force are the last good ones.
    pub problem: Option<String>,
}

impl FileState {
    /// What a page rendered now must send back with a save.
    pub fn stamp(&self) -> String {
        format!("{}.{}", &self.disk[..self.disk.len().min(16)], self.version)
    }

    /// The value in force of `key`: the override, else the file's.
    pub fn value(&self, key: &str) -> serde_json::Value {
        self.overrides
            .get(key)
            .or_else(|| self.file_values.get(key))
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    }
}

/// privacy.yml and soc2.yml as the platform applies them now.
#[derive(Debug)]
pub struct Effective {
    pub privacy: PrivacyFile,
    pub soc2: Soc2File,
    /// In the order of [`FILES`].
    pub files: [FileState; 2],
}

impl Effective {
    pub fn file(&self, name: &str) -> Option<&FileState> {
        FILES
            .iter()
            .position(|f| *f == name)
            .map(|i| &self.files[i])
    }
}

/// A change [`Live::refresh`] found in a file on disk, for the `config_change` event.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskChange {
    pub file: &'static str,
    pub before: BTreeMap<String, serde_json::Value>,
    pub after: BTreeMap<String, serde_json::Value>,
    /// The file no longer loads; the previous values stay in force.
    pub problem: Option<String>,
}

/// The settings in force, shared by the services; cheap to clone.
#[derive(Debug, Clone)]
pub struct Live(Arc<LiveInner>);

#[derive(Debug)]
struct LiveInner {
    dir: PathBuf,
    current: RwLock<Arc<Effective>>,
    /// One refresh or save at a time on this replica.
    writing: tokio::sync::Mutex<()>,
}

/// The database row of one file's override layer.
pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "settings_overrides")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub file: String,
        /// JSON object: dotted key → value.
        pub overrides: String,
        pub version: i64,
        pub updated_by: Option<String>,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Why a save was refused before anything was written.
#[derive(Debug)]
pub enum SaveRefused {
    /// A message per field key (or `""` for the file as a whole).
    Invalid(BTreeMap<String, Vec<String>>),
    /// The file or the override layer moved since the page was rendered.
    Stale(String),
    Db(DbErr),
}

impl From<DbErr> for SaveRefused {
    fn from(e: DbErr) -> Self {
        Self::Db(e)
    }
}

fn disk_hash(dir: &Path, file: &str) -> String {
    match std::fs::read(dir.join(file)) {
        Ok(bytes) => hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        Err(_) => "absent".to_string(),
    }
}

/// The value at a dotted key of a YAML mapping, as JSON.
fn lookup(root: &Value, key: &str) -> serde_json::Value {
    let mut at = root;
    for segment in key.split('.') {
        match at.get(segment) {
            Some(v) => at = v,
            None => return serde_json::Value::Null,
        }
    }
    serde_json::to_value(at).unwrap_or(serde_json::Value::Null)
}

fn to_yaml(v: &serde_json::Value) -> Value {
    serde_yaml_ng::to_value(v).unwrap_or(Value::Null)
}

fn overlay_of(overrides: &BTreeMap<String, serde_json::Value>) -> Option<Value> {
    (!overrides.is_empty())
        .then(|| config::overlay(overrides.iter().map(|(k, v)| (k.as_str(), to_yaml(v)))))
}

/// The file layer's values of every editable key.
fn file_values(
    dir: &Path,
    file: &str,
) -> Result<BTreeMap<String, serde_json::Value>, config::ConfigError> {
    let root = config::layer_value(dir, file)?;
    Ok(fields(file)
        .iter()
        .map(|f| {
            let value = match lookup(&root, f.key) {
                serde_json::Value::Null => serde_default(f.key),
                v => v,
            };
            (f.key.to_string(), value)
        })
        .collect())
}

/// The value a documented addition takes when neither the spec nor the file sets it (the
/// `#[serde(default)]`s of `config/privacy.rs` and `config/soc2.rs`).
fn serde_default(key: &str) -> serde_json::Value {
    match key {
        "privacy.right_to_be_forgotten.grace_period" => serde_json::json!("7d"),
        "soc2.security.multi_factor_roles" => serde_json::json!(["admin"]),
        _ => serde_json::Value::Null,
    }
}

/// Reads the override rows into per-file maps.
async fn read_overrides(db: &DatabaseConnection) -> Result<BTreeMap<String, entity::Model>, DbErr> {
    Ok(entity::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|row| (row.file.clone(), row))
        .collect())
}

fn parse_overrides(row: Option<&entity::Model>) -> BTreeMap<String, serde_json::Value> {
    row.and_then(|r| serde_json::from_str(&r.overrides).ok())
        .unwrap_or_default()
}

/// Builds the settings from the files and the given override layers; the problems if they do
/// not load.
fn build(
    dir: &Path,
    mut states: [FileState; 2],
) -> Result<Effective, Box<([FileState; 2], config::ConfigError)>> {
    for (i, file) in FILES.iter().enumerate() {
        match file_values(dir, file) {
            Ok(values) => states[i].file_values = values,
            Err(e) => return Err(Box::new((states, e))),
        }
    }
    match config::load_editable(
        dir,
        overlay_of(&states[0].overrides),
        overlay_of(&states[1].overrides),
    ) {
        Ok((privacy, soc2)) => Ok(Effective {
            privacy,
            soc2,
            files: states,
        }),
        Err(e) => Err(Box::new((states, e))),
    }
}

/// Whether two values of a setting mean the same (`7y` and `365d`·7; lists as sets).
pub fn same_value(kind: FieldKind, a: &serde_json::Value, b: &serde_json::Value) -> bool {
    let span = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<Span>().ok());
    match kind {
        FieldKind::Span | FieldKind::OptionalSpan => match (span(a), span(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
        FieldKind::Choices(_) | FieldKind::Roles => {
            let set = |v: &serde_json::Value| {
                let mut items: Vec<String> = v
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                items.sort();
                items.dedup();
                items
            };
            set(a) == set(b)
        }
        FieldKind::Bool => a == b,
    }
}

/// The form's text for a value.
pub fn form_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// Reads one submitted field; the message for the field when it does not parse.
pub fn parse_field(kind: FieldKind, text: &str) -> Result<serde_json::Value, String> {
    let text = text.trim();
    let list = |text: &str| -> Vec<String> {
        text.split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    match kind {
        FieldKind::Bool => match text {
            "true" | "on" => Ok(serde_json::Value::Bool(true)),
            "false" | "off" => Ok(serde_json::Value::Bool(false)),
            _ => Err("choose on or off".into()),
        },
        FieldKind::Span | FieldKind::OptionalSpan => {
            if text.is_empty() {
                return if kind == FieldKind::OptionalSpan {
                    Ok(serde_json::Value::Null)
                } else {
                    Err("enter a period such as 90d or 7y".into())
                };
            }
            let span: Span = text.parse()?;
            if span.duration().is_zero() {
                return Err("must be longer than zero".into());
            }
            Ok(serde_json::Value::String(text.to_string()))
        }
        FieldKind::Choices(allowed) => {
            let items = list(text);
            if let Some(bad) = items.iter().find(|i| !allowed.contains(&i.as_str())) {
                return Err(format!("\"{bad}\" is not one of {}", allowed.join(", ")));
            }
            let mut seen = Vec::new();
            for item in items {
                if !seen.contains(&item) {
                    seen.push(item);
                }
            }
            Ok(serde_json::json!(seen))
        }
        FieldKind::Roles => {
            let items = list(text);
            let mut seen: Vec<String> = Vec::new();
            for item in items {
                if seen.contains(&item) {
                    return Err(format!("\"{item}\" is listed twice"));
                }
                seen.push(item);
            }
            Ok(serde_json::json!(seen))
        }
    }
}

impl Live {
    /// The settings the config was loaded with (no override layer yet: see [`Self::refresh`]).
    pub fn new(config: &Config) -> Self {
        let states = FILES.map(|file| FileState {
            disk: disk_hash(&config.dir, file),
            file_values: file_values(&config.dir, file).unwrap_or_default(),
            ..Default::default()
        });
        Self(Arc::new(LiveInner {
            dir: config.dir.clone(),
            current: RwLock::new(Arc::new(Effective {
                privacy: config.privacy.clone(),
                soc2: config.soc2.clone(),
                files: states,
            })),
            writing: tokio::sync::Mutex::new(()),
        }))
    }

    /// The settings in force now.
    pub fn get(&self) -> Arc<Effective> {
        self.0
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, effective: Effective) {
        *self
            .0
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(effective);
    }

    /// Reads the files and the override layer again when either moved; returns what changed on
    /// disk. A file that no longer loads keeps the last good values in force, with its problem.
    pub async fn refresh(&self, db: &DatabaseConnection) -> Result<Vec<DiskChange>, DbErr> {
        let _one = self.0.writing.lock().await;
        self.refresh_locked(db).await
    }

    async fn refresh_locked(&self, db: &DatabaseConnection) -> Result<Vec<DiskChange>, DbErr> {
        let rows = read_overrides(db).await?;
        let current = self.get();
        let states: [FileState; 2] = std::array::from_fn(|i| {
            let file = FILES[i];
            let row = rows.get(file);
            FileState {
                disk: disk_hash(&self.0.dir, file),
                version: row.map_or(0, |r| r.version),
                overrides: parse_overrides(row),
                file_values: BTreeMap::new(),
                updated_by: row.and_then(|r| r.updated_by.clone()),
                updated_at: row.map(|r| r.updated_at),
                problem: None,
            }
        });
        let moved = |i: usize| {
            states[i].disk != current.files[i].disk || states[i].version != current.files[i].version
        };
        if !(0..FILES.len()).any(moved) {
            return Ok(Vec::new());
        }
        let disk_moved: Vec<usize> = (0..FILES.len())
            .filter(|&i| states[i].disk != current.files[i].disk)
            .collect();
        match build(&self.0.dir, states) {
            Ok(next) => {
                let changes = disk_moved
                    .into_iter()
                    .map(|i| DiskChange {
                        file: FILES[i],
                        before: current.files[i].file_values.clone(),
                        after: next.files[i].file_values.clone(),
                        problem: None,
                    })
                    .collect();
                self.set(next);
                Ok(changes)
            }
            Err(failed) => {
                let (mut states, e) = *failed;
                let mut changes = Vec::new();
                for (i, state) in states.iter_mut().enumerate() {
                    let name = format!("config/{}", FILES[i]);
                    let mine: Vec<String> = e
                        .problems
                        .iter()
                        .filter(|p| p.file == name)
                        .map(ToString::to_string)
                        .collect();
                    state.problem = (!mine.is_empty()).then(|| mine.join("; "));
                    // Keep the last good file values for display and the next diff.
                    state.file_values = current.files[i].file_values.clone();
                    if disk_moved.contains(&i) {
                        changes.push(DiskChange {
                            file: FILES[i],
                            before: current.files[i].file_values.clone(),
                            after: BTreeMap::new(),
                            problem: state.problem.clone(),
                        });
                    }
                }
                tracing::warn!(error = %e, "the settings on disk do not load; the previous ones stay in force");
                self.set(Effective {
                    privacy: current.privacy.clone(),
                    soc2: current.soc2.clone(),
                    files: states,
                });
                Ok(changes)
            }
        }
    }

    /// Saves `file`'s override layer so that the settings in force become `values` (dotted key
    /// → value, every editable key of the file; `None`: the file's own values), if `stamp` is
    /// still the file's stamp. Returns the settings before and after.
    pub async fn save(
        &self,
        db: &DatabaseConnection,
        file: &'static str,
        stamp: &str,
        values: Option<&BTreeMap<String, serde_json::Value>>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(Arc<Effective>, Arc<Effective>), SaveRefused> {
        let _one = self.0.writing.lock().await;
        self.refresh_locked(db).await?;
        let before = self.get();
        let index = FILES.iter().position(|f| *f == file).unwrap_or(0);
        let state = &before.files[index];
        if state.stamp() != stamp {
            return Err(SaveRefused::Stale(stale_reason(file, state, stamp)));
        }
        if let Some(problem) = &state.problem {
            return Err(SaveRefused::Invalid(BTreeMap::from([(
                String::new(),
                vec![format!(
                    "{file} on disk does not load ({problem}); fix the file first"
                )],
            )])));
        }
        // Only what differs from the file goes into the layer.
        let overrides: BTreeMap<String, serde_json::Value> = match values {
            None => BTreeMap::new(),
            Some(values) => fields(file)
                .iter()
                .filter_map(|f| {
                    let v = values.get(f.key)?;
                    let from_file = state.file_values.get(f.key).cloned().unwrap_or_default();
                    (!same_value(f.kind, v, &from_file)).then(|| (f.key.to_string(), v.clone()))
                })
                .collect(),
        };
        let mut states = before.files.clone();
        states[index].overrides = overrides.clone();
        let next = match build(&self.0.dir, states) {
            Ok(next) => next,
            Err(failed) => {
                let e = failed.1;
                let name = format!("config/{file}");
                let mut fields_out: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for p in e.problems {
                    let key = if p.file == name && fields(file).iter().any(|f| f.key == p.key) {
                        p.key.clone()
                    } else {
                        String::new()
                    };
                    let message = if key.is_empty() {
                        p.to_string()
                    } else {
                        p.reason.clone()
                    };
                    fields_out.entry(key).or_default().push(message);
                }
                return Err(SaveRefused::Invalid(fields_out));
            }
        };
        let text = serde_json::to_string(&overrides).map_err(|e| DbErr::Custom(e.to_string()))?;
        let written = if state.version == 0 {
            entity::Entity::insert(entity::ActiveModel {
                file: Set(file.to_string()),
                overrides: Set(text),
                version: Set(1),
                updated_by: Set(Some(by.to_string())),
                updated_at: Set(now),
            })
            .exec_without_returning(db)
            .await
            .map(|n| n == 1)
            // The primary key refuses a second first save.
            .or_else(|e| match e.sql_err() {
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => Ok(false),
                _ => Err(e),
            })?
        } else {
            entity::Entity::update_many()
                .col_expr(entity::Column::Overrides, Expr::value(text))
                .col_expr(entity::Column::Version, Expr::value(state.version + 1))
                .col_expr(entity::Column::UpdatedBy, Expr::value(by.to_string()))
                .col_expr(entity::Column::UpdatedAt, Expr::value(now))
                .filter(entity::Column::File.eq(file))
                .filter(entity::Column::Version.eq(state.version))
                .exec(db)
                .await?
                .rows_affected
                == 1
        };
        if !written {
            return Err(SaveRefused::Stale(format!(
                "another administrator saved {file} a moment ago; reload the page to see their change"
            )));
        }
        let mut next = next;
        next.files[index].version = state.version + 1;
        next.files[index].updated_by = Some(by.to_string());
        next.files[index].updated_at = Some(now);
        self.set(next);
        Ok((before, self.get()))
    }
}

fn stale_reason(file: &str, state: &FileState, stamp: &str) -> String {
    let (disk, version) = stamp.rsplit_once('.').unwrap_or((stamp, ""));
    if !state.disk.starts_with(disk) || disk.is_empty() {
        format!(
            "{file} was changed on disk since this page was opened; reload the page to see the values in force before you edit"
        )
    } else if version != state.version.to_string() {
        let who = state
            .updated_by
            .as_deref()
            .unwrap_or("another administrator");
        let when = state
            .updated_at
            .map(|t| format!(" at {}", t.format("%H:%M:%S UTC")))
            .unwrap_or_default();
        format!(
            "{who} saved {file}{when} since this page was opened; reload the page to see their change before you edit"
        )
    } else {
        format!("{file} changed since this page was opened; reload the page")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_and_refuse() {
        assert_eq!(
            parse_field(FieldKind::Bool, "true"),
            Ok(serde_json::json!(true))
        );
        assert!(parse_field(FieldKind::Bool, "maybe").is_err());
        assert_eq!(
            parse_field(FieldKind::Span, " 5y "),
            Ok(serde_json::json!("5y"))
        );
        assert!(
            parse_field(FieldKind::Span, "5 yrs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert_eq!(
            parse_field(FieldKind::Span, "0d"),
            Err("must be longer than zero".into())
        );
        assert_eq!(
            parse_field(FieldKind::OptionalSpan, ""),
            Ok(serde_json::Value::Null)
        );
        let formats = FieldKind::Choices(&["json", "csv"]);
        assert_eq!(
            parse_field(formats, "csv, json,csv"),
            Ok(serde_json::json!(["csv", "json"]))
        );
        assert!(parse_field(formats, "xml").unwrap_err().contains("xml"));
        assert!(parse_field(FieldKind::Roles, "admin admin").is_err());
    }

    #[test]
    fn equal_values_are_recognised() {
        assert!(same_value(
            FieldKind::Span,
            &serde_json::json!("7y"),
            &serde_json::json!("2555d")
        ));
        assert!(!same_value(
            FieldKind::Span,
            &serde_json::json!("7y"),
            &serde_json::json!("5y")
        ));
        assert!(same_value(
            FieldKind::Roles,
            &serde_json::json!(["a", "b"]),
            &serde_json::json!(["b", "a"])
        ));
    }

    #[test]
    fn every_field_exists_in_its_file() {
        let config = config::load(Path::new("/nonexistent-config-dir")).unwrap();
        let live = Live::new(&config);
        let now = live.get();
        for (i, file) in FILES.iter().enumerate() {
            for f in fields(file) {
                assert!(
                    !now.files[i].value(f.key).is_null() || f.kind == FieldKind::OptionalSpan,
                    "{} has no value",
                    f.key
                );
            }
        }
    }
}
