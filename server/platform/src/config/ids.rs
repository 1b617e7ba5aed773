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
    Email {
        recipients: Vec<String>,
        /// Addition to the spec: the mail server (the local one on port 25 when left out).
        #[serde(default)]
        smtp: Option<SmtpSettings>,
    },
    Slack {
        webhook: secrecy::SecretString,
    },
    Syslog {
        /// `security` is sent as `authpriv` (facility 10), where syslog daemons keep security
        /// messages.
        facility: String,
        /// Addition to the spec: `udp://host:port` or `tcp://host:port`; the local socket
        /// `/dev/log` when left out.
        #[serde(default)]
        address: Option<url::Url>,
    },
}

/// How email alerts reach their mail server (an addition to the spec).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<secrecy::SecretString>,
    /// The sender, `Name <address>` or an address.
    pub from: String,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: 25,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "wasm-as-os <wasm-as-os@localhost>".into(),
        }
    }
}

/// `none` (plain, for a mail server on this machine), `starttls` or `tls` (implicit TLS).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    #[default]
    None,
    Starttls,
    Tls,
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
            let key = format!("intrusion_detection.rules[{i}].condition");
            match crate::edge::condition::parse(&rule.condition) {
                Err(e) => p.push(key, format!("rule \"{}\": {e}", rule.name)),
                Ok(c) => {
                    use crate::edge::condition::Watches;
                    let watches = c.watches();
                    let fits = match rule.action {
                        Action::Quarantine => watches == Watches::Uploads && c.is_disjunction(),
                        Action::Throttle => matches!(watches, Watches::Runs | Watches::Refusals),
                        Action::BlockIp => watches != Watches::Uploads,
                        Action::Alert => true,
                    };
                    if !fits {
                        let why = match rule.action {
                            Action::Quarantine => {
                                "quarantine needs upload signals joined by \"or\" (module_size, contains_suspicious_patterns)"
                            }
                            Action::Throttle => {
                                "throttle needs a rule on module runs or refused requests (it pauses a user's runs)"
                            }
                            _ => {
                                "block_ip needs a rule on sign-ins, refused requests or runs (an upload rule has no address to block)"
                            }
                        };
                        p.push(key, format!("rule \"{}\": {why}", rule.name));
                    }
                }
            }
            if rule.duration.is_some_and(|d| d.duration().is_zero()) {
                p.push(
                    format!("intrusion_detection.rules[{i}].duration"),
                    "must be longer than zero",
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
                Alert::Email { recipients, smtp } => {
                    if let Some(smtp) = smtp {
                        if smtp.host.trim().is_empty() {
                            p.push(
                                format!("intrusion_detection.alerts[{i}].smtp.host"),
                                "must not be empty",
                            );
                        }
                        if smtp.username.is_some() != smtp.password.is_some() {
                            p.push(
                                format!("intrusion_detection.alerts[{i}].smtp"),
                                "username and password go together",
                            );
                        }
                    }
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
                Alert::Syslog { facility, .. }
                    if !SYSLOG_FACILITIES.contains(&facility.as_str()) =>
                {
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
