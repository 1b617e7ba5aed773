//! `audit.yml`: where audit events go, which events are recorded, and what is redacted.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Problems, units::ByteSize};
use crate::audit::EventKind;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFile {
    pub audit: Audit,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    pub enabled: bool,
    pub destinations: Vec<Destination>,
    pub events: Events,
    pub filter_sensitive_data: bool,
    pub sensitive_fields: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Destination {
    File {
        path: PathBuf,
        rotation: Rotation,
    },
    Syslog {
        facility: String,
        tag: String,
        /// `udp://host:port` or `tcp://host:port`; the local syslog socket when left out.
        #[serde(default)]
        address: Option<url::Url>,
    },
    Database {
        table: String,
    },
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    pub max_size: ByteSize,
    pub max_files: u32,
    pub compress: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Events {
    #[serde(default)]
    pub authentication: Vec<EventKind>,
    #[serde(default)]
    pub authorization: Vec<EventKind>,
    #[serde(default)]
    pub modules: Vec<EventKind>,
    #[serde(default)]
    pub system: Vec<EventKind>,
}

/// Syslog facilities by name (RFC 5424), plus `security` as the spec's ids.yml uses it (authpriv).
pub const SYSLOG_FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "security", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
    "local7",
];

impl Audit {
    /// Whether `kind` is listed under `events` (and auditing is on).
    pub fn records(&self, kind: EventKind) -> bool {
        self.enabled
            && [
                &self.events.authentication,
                &self.events.authorization,
                &self.events.modules,
                &self.events.system,
            ]
            .iter()
            .any(|list| list.contains(&kind))
    }
}

impl AuditFile {
    pub(super) fn validate(&self, p: &mut Problems) {
        for (i, dest) in self.audit.destinations.iter().enumerate() {
            match dest {
                Destination::File { rotation, .. } => {
                    if rotation.max_size.bytes() < 1024 {
                        p.push(
                            format!("audit.destinations[{i}].rotation.max_size"),
                            "must be at least 1KB",
                        );
                    }
                    if rotation.max_files == 0 {
                        p.push(
                            format!("audit.destinations[{i}].rotation.max_files"),
                            "must be at least 1",
                        );
                    }
                }
                Destination::Syslog {
                    facility, address, ..
                } => {
                    if !SYSLOG_FACILITIES.contains(&facility.as_str()) {
                        p.push(
                            format!("audit.destinations[{i}].facility"),
                            format!("unknown syslog facility \"{facility}\""),
                        );
                    }
                    if address
                        .as_ref()
                        .is_some_and(|a| !matches!(a.scheme(), "udp" | "tcp"))
                    {
                        p.push(
                            format!("audit.destinations[{i}].address"),
                            "must be udp://host:port or tcp://host:port",
                        );
                    }
                }
                Destination::Database { table } if table != "audit_logs" => {
                    p.push(
                        format!("audit.destinations[{i}].table"),
                        "the database destination writes to the audit_logs table",
                    );
                }
                Destination::Database { .. } => {}
            }
        }
        for (i, field) in self.audit.sensitive_fields.iter().enumerate() {
            if field.trim().is_empty() {
                p.push(format!("audit.sensitive_fields[{i}]"), "must not be empty");
            }
        }
    }
}
