//! The GDPR part of the compliance page: the privacy settings in force, the last retention run
//! and anonymisation pass (from their `retention_run` audit events), and the export requests of
//! every account. Reading it needs `system:audit`; the erasure requests beside it come from
//! [`Compliance::list_erasures`] (`users:delete`).

use chrono::{DateTime, Utc};
use sea_orm::{EntityTrait, QueryOrder, QuerySelect};
use serde::Serialize;

use super::{Compliance, ComplianceError, entities::data_export, export::ExportStatus};
use crate::{
    access::Principal,
    audit::{AuditParams, AuditQuery},
    config::{privacy::AnonymizedField, units::Span},
};

/// How many export requests the overview lists.
const EXPORTS_LISTED: u64 = 50;

/// privacy.yml as the platform applies it, with the documented additions resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrivacySettings {
    pub gdpr_compliance: bool,
    /// `(what, period)` in the order of privacy.yml.
    pub retention: Vec<(String, String)>,
    pub anonymisation: bool,
    /// `ip_address`, `user_agent`, `email`.
    pub anonymised_fields: Vec<String>,
    /// How long full addresses and user agents are kept (`full_for`, else the IDS window).
    pub full_values_kept_for: String,
    pub erasure: bool,
    pub automated_deletion: bool,
    pub grace_period: String,
    pub export: bool,
    pub export_formats: Vec<String>,
    pub export_encryption: bool,
}

/// One run of a background job, from its audit event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRun {
    pub at: DateTime<Utc>,
    /// The counts the event recorded (what was removed or reduced).
    pub details: serde_json::Value,
}

/// The page's data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    pub settings: PrivacySettings,
    pub last_retention: Option<JobRun>,
    pub last_anonymisation: Option<JobRun>,
    /// Every account's export requests, newest first (at most 50).
    pub exports: Vec<ExportStatus>,
}

/// A period for people: `7 years`, `90 days`, `1 day`, else the config's own notation.
fn human(span: Span) -> String {
    let secs = span.duration().as_secs();
    let (n, unit) = match secs {
        s if s > 0 && s.is_multiple_of(365 * 86_400) => (s / (365 * 86_400), "year"),
        s if s > 0 && s.is_multiple_of(86_400) => (s / 86_400, "day"),
        s if s > 0 && s.is_multiple_of(3_600) => (s / 3_600, "hour"),
        _ => return span.to_string(),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

impl Compliance {
    /// The privacy settings in force (anyone signed in may know how their data is treated).
    pub fn privacy_settings(&self) -> PrivacySettings {
        let p = self.privacy();
        let r = p.data_retention;
        let anon = &p.data_anonymization;
        PrivacySettings {
            gdpr_compliance: p.gdpr_compliance,
            retention: [
                ("Audit events", r.audit_logs),
                ("Accounts, after the last sign-in", r.user_data),
                ("Modules, after the last run", r.module_data),
                ("Metrics", r.metrics_data),
            ]
            .into_iter()
            .map(|(what, span)| (what.to_string(), human(span)))
            .collect(),
            anonymisation: anon.enabled,
            anonymised_fields: anon
                .fields_to_anonymize
                .iter()
                .map(|f| {
                    match f {
                        AnonymizedField::IpAddress => "ip_address",
                        AnonymizedField::UserAgent => "user_agent",
                        AnonymizedField::Email => "email",
                    }
                    .to_string()
                })
                .collect(),
            full_values_kept_for: human(Span(anon.full_for(&self.config.ids))),
            erasure: p.right_to_be_forgotten.enabled,
            automated_deletion: p.right_to_be_forgotten.automated_deletion,
            grace_period: human(p.right_to_be_forgotten.grace_period),
            export: p.data_export.enabled,
            export_formats: p
                .data_export
                .formats
                .iter()
                .map(|f| format!("{f:?}").to_lowercase())
                .collect(),
            export_encryption: p.data_export.encryption,
        }
    }

    /// The compliance page's GDPR overview (`system:audit`).
    pub async fn overview(&self, principal: &Principal) -> Result<Overview, ComplianceError> {
        principal
            .require(&self.audit, "system", "audit", "compliance overview")
            .await?;
        let query = AuditQuery::from_params(&AuditParams {
            event: "retention_run".into(),
            limit: Some(100),
            ..Default::default()
        })?;
        let runs = self.audit.search(principal, &query).await?.events;
        let latest = |anonymisation: bool| {
            runs.iter()
                .find(|e| {
                    let job = e.event.details.get("job").and_then(|j| j.as_str());
                    (job == Some("anonymisation")) == anonymisation
                })
                .map(|e| JobRun {
                    at: e.timestamp,
                    details: e.event.details.clone(),
                })
        };
        self.sweep(self.clock.now()).await?;
        let rows = data_export::Entity::find()
            .order_by_desc(data_export::Column::CreatedAt)
            .limit(EXPORTS_LISTED)
            .all(&self.db)
            .await?;
        Ok(Overview {
            settings: self.privacy_settings(),
            last_retention: latest(false),
            last_anonymisation: latest(true),
            exports: self.with_usernames(rows).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_as_words() {
        for (text, words) in [
            ("7y", "7 years"),
            ("90d", "90 days"),
            ("1d", "1 day"),
            ("24h", "1 day"),
            ("2h", "2 hours"),
            ("90s", "90s"),
        ] {
            assert_eq!(human(text.parse().unwrap()), words);
        }
    }
}
