//! Server functions of the Compliance page (see `platform::compliance::overview`): the privacy
//! settings in force, the erasure requests an administrator decides, the last retention run and
//! anonymisation pass, and every account's export requests.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use super::session as ssr;
use super::{AppError, exports::ExportRow};

/// privacy.yml as the platform applies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsView {
    pub gdpr_compliance: bool,
    pub retention: Vec<(String, String)>,
    pub anonymisation: bool,
    pub anonymised_fields: Vec<String>,
    pub full_values_kept_for: String,
    pub erasure: bool,
    pub automated_deletion: bool,
    pub grace_period: String,
    pub export: bool,
    pub export_formats: Vec<String>,
    pub export_encryption: bool,
}

/// An erasure request as the administrators' list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureAdminRow {
    pub id: String,
    /// The account while it exists; empty once erased.
    pub username: String,
    /// `self`, `admin` or `retention`.
    pub origin: String,
    pub status: String,
    pub step: String,
    pub requested_at: String,
    pub run_at: Option<String>,
    pub last_error: Option<String>,
}

impl ErasureAdminRow {
    /// Not run yet: an administrator can still approve (run it now) or reject it.
    pub fn open(&self) -> bool {
        matches!(self.status.as_str(), "requested" | "scheduled")
    }
}

/// A background job's last run: when, and what it counted (`(label, number)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    pub at: String,
    pub counts: Vec<(String, u64)>,
}

/// HTTPS as the server applies it (soc2.yml `encryption_in_transit`; tls.yml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TransitView {
    pub enabled: bool,
    /// `1.2` or `1.3`.
    pub min_version: String,
    /// The suites offered (rustls names).
    pub cipher_suites: Vec<String>,
    /// `off`, `require_and_verify` or `verify_if_given`.
    pub client_auth: String,
    pub certificate: Option<String>,
    pub expires: Option<String>,
    pub days_left: Option<i64>,
}

/// How the server tells the page what TLS is in force (the TLS set-up lives in the binary).
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct TransitSource(pub std::sync::Arc<dyn Fn() -> TransitView + Send + Sync>);

/// One soc2.yml control with its live evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlView {
    pub key: String,
    pub area: String,
    pub title: String,
    pub required: bool,
    /// `holds`, `fails` or `not_built`.
    pub state: String,
    pub evidence: String,
    pub fix: Option<String>,
    pub checked_at: String,
}

/// One editable setting of privacy.yml or soc2.yml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingEdit {
    /// The dotted key, also the form field's key (`values[<key>]`).
    pub key: String,
    pub label: String,
    pub help: String,
    /// `bool`, `span`, `optional_span`, `choices` or `roles`.
    pub kind: String,
    pub choices: Vec<String>,
    pub value: String,
    pub file_value: String,
    pub overridden: bool,
}

/// One file's settings form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsFileEdit {
    pub file: String,
    pub stamp: String,
    /// `alice at 2026-12-02 10:40 UTC` when the dashboard changed it.
    pub updated: Option<String>,
    pub problem: Option<String>,
    pub settings: Vec<SettingEdit>,
}

/// privacy.yml and soc2.yml, editable with `system:config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsEditView {
    pub can_edit: bool,
    pub files: Vec<SettingsFileEdit>,
}

/// One classified column (see `platform::compliance::classification`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassifiedField {
    pub table: String,
    pub column: String,
    pub class: String,
    pub purpose: String,
    pub kept: String,
    /// `section.column` of the data export, or why it is withheld.
    pub export: String,
    pub exported: bool,
    /// privacy.yml's anonymisation entry that reduces it.
    pub reduced: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceView {
    /// Every personal column: class, purpose, retention, export, anonymisation.
    pub classification: Vec<ClassifiedField>,
    /// The settings forms.
    pub editable: SettingsEditView,
    /// soc2.yml's controls, checked now.
    pub controls: Vec<ControlView>,
    pub settings: SettingsView,
    pub transit: TransitView,
    /// `None` when the caller may not decide erasures (`users:delete`).
    pub erasures: Option<Vec<ErasureAdminRow>>,
    pub last_retention: Option<JobView>,
    pub last_anonymisation: Option<JobView>,
    pub exports: Vec<ExportRow>,
}

#[cfg(feature = "ssr")]
fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(feature = "ssr")]
fn job(
    run: Option<platform::compliance::overview::JobRun>,
    labels: &[(&str, &str)],
) -> Option<JobView> {
    run.map(|r| JobView {
        at: when(r.at),
        counts: labels
            .iter()
            .map(|(key, label)| {
                let n = r
                    .details
                    .get(*key)
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                (label.to_string(), n)
            })
            .collect(),
    })
}

#[cfg(feature = "ssr")]
fn classified(f: &platform::compliance::classification::Field) -> ClassifiedField {
    use platform::compliance::classification::Export;
    let name = |v: serde_json::Value| v.as_str().unwrap_or_default().replace('_', " ");
    let (export, exported) = match f.export {
        Export::In { section, column } => {
            let mut all = vec![format!("{section}.{column}")];
            all.extend(f.also.iter().map(|(s, c)| format!("{s}.{c}")));
            (all.join(", "), true)
        }
        Export::Withheld { reason } => (format!("withheld: {reason}"), false),
    };
    ClassifiedField {
        table: f.table.to_string(),
        column: f.column.to_string(),
        class: name(serde_json::json!(f.class)),
        purpose: name(serde_json::json!(f.purpose)),
        kept: f.kept.to_string(),
        export,
        exported,
        reduced: f
            .reduced
            .map(|(field, into)| format!("{} → {into}", name(serde_json::json!(field)))),
    }
}

#[server(endpoint = "compliance/overview", input = leptos::server_fn::codec::GetUrl)]
pub async fn compliance_overview() -> Result<ComplianceView, AppError> {
    use platform::compliance::ComplianceError;
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let compliance = platform.compliance();
    let o = compliance.overview(&principal).await?;
    let erasures = match compliance.list_erasures(&principal, false).await {
        Ok(list) => Some(
            list.into_iter()
                .map(|e| ErasureAdminRow {
                    id: e.id,
                    username: e.username.unwrap_or_default(),
                    origin: e.origin,
                    status: e.status,
                    step: e.step,
                    requested_at: when(e.requested_at),
                    run_at: e.run_at.map(when),
                    last_error: e.last_error,
                })
                .collect(),
        ),
        Err(ComplianceError::Forbidden(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let s = o.settings;
    let transit = leptos::prelude::use_context::<TransitSource>()
        .map(|source| (source.0)())
        .unwrap_or_default();
    let controls = platform
        .controls(&principal)
        .await?
        .into_iter()
        .map(|c| ControlView {
            key: c.key.to_string(),
            area: c.area.replace('_', " "),
            title: c.title.to_string(),
            required: c.required,
            state: match c.state {
                platform::compliance::controls::ControlState::Holds => "holds",
                platform::compliance::controls::ControlState::Fails => "fails",
                platform::compliance::controls::ControlState::NotBuilt => "not_built",
            }
            .to_string(),
            evidence: c.evidence,
            fix: c.fix,
            checked_at: when(c.checked_at),
        })
        .collect();
    let page = compliance.settings(&principal).await?;
    let classification = compliance
        .classification(&principal)
        .await?
        .iter()
        .map(classified)
        .collect();
    let editable = SettingsEditView {
        can_edit: page.can_edit,
        files: page
            .files
            .into_iter()
            .map(|f| SettingsFileEdit {
                updated: match (f.updated_by, f.updated_at) {
                    (Some(by), Some(at)) => Some(format!("{by} at {}", when(at))),
                    _ => None,
                },
                file: f.file,
                stamp: f.stamp,
                problem: f.problem,
                settings: f
                    .settings
                    .into_iter()
                    .map(|s| SettingEdit {
                        key: s.key,
                        label: s.label,
                        help: s.help,
                        kind: s.kind,
                        choices: s.choices,
                        value: s.value,
                        file_value: s.file_value,
                        overridden: s.overridden,
                    })
                    .collect(),
            })
            .collect(),
    };
    Ok(ComplianceView {
        classification,
        editable,
        controls,
        transit,
        settings: SettingsView {
            gdpr_compliance: s.gdpr_compliance,
            retention: s.retention,
            anonymisation: s.anonymisation,
            anonymised_fields: s.anonymised_fields,
            full_values_kept_for: s.full_values_kept_for,
            erasure: s.erasure,
            automated_deletion: s.automated_deletion,
            grace_period: s.grace_period,
            export: s.export,
            export_formats: s.export_formats,
            export_encryption: s.export_encryption,
        },
        erasures,
        last_retention: job(
            o.last_retention,
            &[
                ("accounts", "accounts scheduled for erasure"),
                ("modules", "modules deleted"),
                ("audit_events", "audit events pruned"),
                ("metrics", "metrics samples removed"),
            ],
        ),
        last_anonymisation: job(
            o.last_anonymisation,
            &[
                ("addresses", "addresses reduced"),
                ("user_agents", "user agents reduced"),
                ("file_lines", "audit file lines rewritten"),
            ],
        ),
        exports: o
            .exports
            .into_iter()
            .map(super::exports::export_row)
            .collect(),
    })
}

/// Approves (`decision` = `approve`) or rejects (`reject`, with a reason the person sees) an
/// erasure request.
#[server(endpoint = "compliance/erasure")]
pub async fn decide_erasure(
    id: String,
    decision: String,
    #[server(default)] reason: String,
) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let compliance = platform.compliance();
    match decision.as_str() {
        "approve" => {
            compliance.approve_erasure(&principal, &id).await?;
            leptos_axum::redirect("/compliance?erasure=approved#erasures");
        }
        "reject" => {
            compliance.reject_erasure(&principal, &id, &reason).await?;
            leptos_axum::redirect("/compliance?erasure=rejected#erasures");
        }
        _ => {
            return Err(AppError::invalid("decision", "choose approve or reject"));
        }
    }
    Ok(())
}

/// Saves one file's settings from the Compliance page (`system:config`): `values[<dotted key>]`
/// for every setting of the file, and the `stamp` the page was rendered with (a save from an older
/// page is refused). `reset` = `file` drops the dashboard's changes so the file's values apply.
#[server(endpoint = "compliance/settings")]
pub async fn save_settings(
    file: String,
    stamp: String,
    #[server(default)] values: std::collections::BTreeMap<String, String>,
    #[server(default)] reset: String,
) -> Result<(), AppError> {
    let platform = ssr::platform()?;
    let principal = ssr::principal().await?;
    let values = (reset != "file").then_some(&values);
    platform
        .compliance()
        .save_settings(&principal, &file, &stamp, values)
        .await?;
    let anchor = file.trim_end_matches(".yml");
    let what = if values.is_some() { "saved" } else { "reset" };
    leptos_axum::redirect(&format!("/compliance?settings={what}#settings-{anchor}"));
    Ok(())
}
