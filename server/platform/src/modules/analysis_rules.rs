//! The static-analysis rules: static_analysis.yml, sandbox.yml and ids.yml mapped onto the
//! analyser's [`analysis::Policy`], and the fingerprint that tells when modules need analysing
//! again. (Who may do what to a module is decided in `access.rs` and `modules/reach.rs`.)

use sha2::{Digest, Sha256};

use crate::config::{Config, static_analysis};

fn severity(s: static_analysis::Severity) -> analysis::Severity {
    match s {
        static_analysis::Severity::Low => analysis::Severity::Low,
        static_analysis::Severity::Medium => analysis::Severity::Medium,
        static_analysis::Severity::High => analysis::Severity::High,
        static_analysis::Severity::Critical => analysis::Severity::Critical,
    }
}

fn rule(r: static_analysis::RuleName) -> analysis::Rule {
    match r {
        static_analysis::RuleName::DetectInfiniteLoops => analysis::Rule::DetectInfiniteLoops,
        static_analysis::RuleName::DetectMemoryLeaks => analysis::Rule::DetectMemoryLeaks,
        static_analysis::RuleName::DetectUnsafeOperations => analysis::Rule::DetectUnsafeOperations,
        static_analysis::RuleName::CheckImportRestrictions => {
            analysis::Rule::CheckImportRestrictions
        }
    }
}

/// Thresholds are compared with whole-number scores, so 7.5 means "8 or more".
fn threshold(t: f64) -> u8 {
    t.ceil().clamp(0.0, 11.0) as u8
}

/// The analysis policy for the current configuration.
pub fn from_config(config: &Config) -> analysis::Policy {
    let sa = &config.static_analysis.static_analysis;
    let limits = &config.sandbox.sandbox.resource_limits;
    let imports = sa
        .rules
        .iter()
        .find_map(|r| r.config.clone())
        .unwrap_or_default();
    let rules = sa
        .rules
        .iter()
        .map(|r| analysis::RuleSetting {
            rule: rule(r.name),
            severity: severity(r.severity),
            enabled: sa.enabled && r.enabled,
        })
        .collect();
    let q = &sa.quarantine;
    // ids.yml's upload rules (the spec's suspicious_module_upload): off with detection off.
    let (suspicious_size, suspicious_patterns) = crate::edge::ids::upload_policy(config);
    analysis::Policy {
        rules,
        allowed_imports: imports.allowed_imports,
        blocked_imports: imports.blocked_imports,
        limits: analysis::Limits {
            max_memory_bytes: limits.max_memory.bytes(),
            max_table_size: u64::from(limits.max_table_size),
            max_globals: limits.max_globals,
        },
        high_risk_threshold: threshold(q.high_risk_threshold),
        medium_risk_threshold: threshold(q.medium_risk_threshold),
        max_module_bytes: suspicious_size.unwrap_or(u64::MAX),
        suspicious_patterns,
    }
}

/// A fingerprint of the policy: modules analysed under another one are analysed again.
pub fn fingerprint(policy: &analysis::Policy) -> String {
    let json = serde_json::to_vec(policy).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}
