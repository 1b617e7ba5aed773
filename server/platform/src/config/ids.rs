//! `ids.yml`: intrusion-detection rules and alert destinations.

use serde::Deserialize;

use super::{Problems, audit::SYSLOG_FACILITIES, units::Span};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdsFile {
    pub intrusion_detection: IntrusionDetection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrusionDetection {
    pub enabled: bool,
    pub rules: Vec<IdsRule>,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdsRule {
    pub name: String,
    pub condition: String,
    pub action: Action,
    #[serde(default)]
    pub duration: Option<Span>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    BlockIp,
    Quarantine,
    Alert,
    Throttle,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Alert {
    Email { recipients: Vec<String> },
    Slack { webhook: secrecy::SecretString },
    Syslog { facility: String },
}

impl IdsFile {
    pub(super) fn validate(&self, p: &mut Problems) {
        let ids = &self.intrusion_detection;
        for (i, rule) in ids.rules.iter().enumerate() {
            if rule.name.trim().is_empty() {
                p.push(
                    format!("intrusion_detection.rules[{i}].name"),
                    "must not be empty",
                );
            }
            if rule.condition.trim().is_empty() {
                p.push(
                    format!("intrusion_detection.rules[{i}].condition"),
                    "must not be empty",
                );
            }
            if rule.action == Action::BlockIp && rule.duration.is_none() {
                p.push(
                    format!("intrusion_detection.rules[{i}].duration"),
                    "block_ip needs a duration such as \"1h\"",
                );
            }
        }
        for (i, alert) in ids.alerts.iter().enumerate() {
            match alert {
                Alert::Email { recipients } => {
                    for (j, r) in recipients.iter().enumerate() {
                        if r.split_once('@')
                            .is_none_or(|(user, domain)| user.is_empty() || !domain.contains('.'))
                        {
                            p.push(
                                format!("intrusion_detection.alerts[{i}].recipients[{j}]"),
                                format!("\"{r}\" is not an email address"),
                            );
                        }
                    }
                }
                Alert::Syslog { facility } if !SYSLOG_FACILITIES.contains(&facility.as_str()) => {
                    p.push(
                        format!("intrusion_detection.alerts[{i}].facility"),
                        format!("unknown syslog facility \"{facility}\""),
                    );
                }
                Alert::Slack { .. } | Alert::Syslog { .. } => {}
            }
        }
    }
}
