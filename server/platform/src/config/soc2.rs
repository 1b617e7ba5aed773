//! `soc2.yml`: the SOC 2 controls the platform enforces or reports on.

use serde::Deserialize;

use super::Problems;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Soc2File {
    pub soc2: Soc2,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Soc2 {
    pub security: Soc2Security,
    pub availability: Soc2Availability,
    pub processing_integrity: Soc2ProcessingIntegrity,
    pub confidentiality: Soc2Confidentiality,
    pub privacy: Soc2Privacy,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Soc2Security {
    pub access_controls: bool,
    /// A second factor is required of holders of `multi_factor_roles` (and offered to everyone).
    pub multi_factor_auth: bool,
    pub encryption_at_rest: bool,
    pub encryption_in_transit: bool,
    /// Beyond the spec: the roles whose holders must enrol a second factor when
    /// `multi_factor_auth` is on (default: `["admin"]`).
    #[serde(default = "default_mfa_roles")]
    pub multi_factor_roles: Vec<String>,
}

fn default_mfa_roles() -> Vec<String> {
    vec!["admin".to_string()]
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Soc2Availability {
    pub monitoring: bool,
    pub alerting: bool,
    pub backup_testing: bool,
    pub disaster_recovery: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Soc2ProcessingIntegrity {
    pub input_validation: bool,
    pub error_handling: bool,
    pub data_integrity_checks: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Soc2Confidentiality {
    pub data_classification: bool,
    pub access_logging: bool,
    pub secure_disposal: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Soc2Privacy {
    pub consent_management: bool,
    pub data_minimization: bool,
    pub purpose_limitation: bool,
}

impl Soc2File {
    pub(super) fn validate(&self, p: &mut Problems) {
        let roles = &self.soc2.security.multi_factor_roles;
        for (i, role) in roles.iter().enumerate() {
            let valid = !role.is_empty()
                && role.len() <= 64
                && role.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !valid {
                p.push(
                    "soc2.security.multi_factor_roles",
                    format!("\"{role}\" is not a role name (lowercase letters, digits, - and _)"),
                );
            } else if roles[..i].contains(role) {
                p.push(
                    "soc2.security.multi_factor_roles",
                    format!("\"{role}\" is listed twice"),
                );
            }
        }
    }
}
