//! `privacy.yml`: GDPR retention, anonymisation, erasure and export.

use serde::Deserialize;

use super::{Problems, units::Span};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyFile {
    pub privacy: Privacy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Privacy {
    pub gdpr_compliance: bool,
    pub data_retention: DataRetention,
    pub data_anonymization: DataAnonymization,
    pub right_to_be_forgotten: RightToBeForgotten,
    pub data_export: DataExport,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DataRetention {
    pub audit_logs: Span,
    pub user_data: Span,
    pub module_data: Span,
    pub metrics_data: Span,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataAnonymization {
    pub enabled: bool,
    pub fields_to_anonymize: Vec<AnonymizedField>,
    /// Documented addition: how long the full client address and user agent are kept before
    /// only their reduced forms stay. Left out: the IDS window (the longest `duration` or
    /// `in <span>` of ids.yml), at least 24 hours.
    #[serde(default)]
    pub full_for: Option<Span>,
}

/// The shortest time full addresses and user agents are kept, whatever ids.yml says.
pub const MIN_FULL_FOR: std::time::Duration = std::time::Duration::from_secs(86_400);

impl DataAnonymization {
    /// Whether `field` is stored reduced.
    pub fn reduces(&self, field: AnonymizedField) -> bool {
        self.enabled && self.fields_to_anonymize.contains(&field)
    }

    /// How long full values are kept: `full_for`, else the IDS window with a 24-hour floor.
    pub fn full_for(&self, ids: &super::ids::IdsFile) -> std::time::Duration {
        if let Some(span) = self.full_for {
            return span.duration();
        }
        let rules = &ids.intrusion_detection.rules;
        let windows = rules.iter().flat_map(|r| {
            let within = r
                .condition
                .split(" in ")
                .skip(1)
                .filter_map(|rest| rest.split_whitespace().next()?.parse::<Span>().ok());
            r.duration.into_iter().chain(within).map(Span::duration)
        });
        windows.fold(MIN_FULL_FOR, std::cmp::max)
    }
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AnonymizedField {
    IpAddress,
    UserAgent,
    Email,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RightToBeForgotten {
    pub enabled: bool,
    pub automated_deletion: bool,
    /// Documented addition: with `automated_deletion`, how long a request waits (and can be
    /// cancelled) before the erasure runs by itself. Default 7 days.
    #[serde(default = "default_grace_period")]
    pub grace_period: Span,
}

fn default_grace_period() -> Span {
    Span(std::time::Duration::from_secs(7 * 86_400))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataExport {
    pub enabled: bool,
    pub formats: Vec<ExportFormat>,
    pub encryption: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Json,
    Csv,
}

impl PrivacyFile {
    pub(super) fn validate(&self, p: &mut Problems) {
        let r = &self.privacy.data_retention;
        for (key, span) in [
            ("audit_logs", r.audit_logs),
            ("user_data", r.user_data),
            ("module_data", r.module_data),
            ("metrics_data", r.metrics_data),
        ] {
            if span.duration().is_zero() {
                p.push(
                    format!("privacy.data_retention.{key}"),
                    "must be longer than zero",
                );
            }
        }
        if self
            .privacy
            .data_anonymization
            .full_for
            .is_some_and(|s| s.duration().is_zero())
        {
            p.push(
                "privacy.data_anonymization.full_for",
                "must be longer than zero",
            );
        }
        if self.privacy.data_export.enabled && self.privacy.data_export.formats.is_empty() {
            p.push(
                "privacy.data_export.formats",
                "list at least one format when data_export is enabled",
            );
        }
    }
}
