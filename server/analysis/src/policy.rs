//! The analysis policy: plain values the platform maps its `static_analysis.yml`, `sandbox.yml`
//! and `ids.yml` settings onto. [`Policy::default`] equals the spec's values.

use serde::{Deserialize, Serialize};

/// A configurable rule, named exactly as in `static_analysis.yml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Loops no branch can leave; functions that only call themselves.
    DetectInfiniteLoops,
    /// `memory.grow` inside a loop whose new pages are never used.
    DetectMemoryLeaks,
    /// Start function, input-driven growth, declared memory/table/globals beyond the limits.
    DetectUnsafeOperations,
    /// Imports checked against the allowed and blocked patterns.
    CheckImportRestrictions,
}

/// How serious a finding is; ordered from `Low` to `Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; contributes 2 to the score.
    Low,
    /// Needs a look; contributes 5.
    Medium,
    /// Likely unsafe; contributes 8.
    High,
    /// Quarantine regardless; contributes 10.
    Critical,
}

/// One rule's entry in the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSetting {
    /// The rule.
    pub rule: Rule,
    /// The severity of the rule's findings (see the crate docs for per-finding exceptions).
    pub severity: Severity,
    /// A disabled rule produces no findings.
    pub enabled: bool,
}

/// Declared-size limits (sandbox.yml `resource_limits`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// `max_memory`, in bytes.
    pub max_memory_bytes: u64,
    /// `max_table_size`, in elements.
    pub max_table_size: u64,
    /// `max_globals`.
    pub max_globals: u32,
}

/// Everything [`crate::analyze`] needs to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Rule settings; a rule missing from the list is disabled.
    pub rules: Vec<RuleSetting>,
    /// `module.name` patterns (`*` matches any run of characters) that need no finding.
    pub allowed_imports: Vec<String>,
    /// `module.name` patterns that give a high finding; they win over `allowed_imports`.
    pub blocked_imports: Vec<String>,
    /// Declared-size limits.
    pub limits: Limits,
    /// A score at or above this is [`crate::Verdict::Quarantined`].
    pub high_risk_threshold: u8,
    /// A score at or above this (and below the high one) is [`crate::Verdict::Review`].
    pub medium_risk_threshold: u8,
    /// ids.yml `suspicious_module_upload`: a larger module is suspicious.
    pub max_module_bytes: u64,
    /// ids.yml `contains_suspicious_patterns`: whether the suspicious patterns are looked for.
    #[serde(default = "looked_for")]
    pub suspicious_patterns: bool,
}

fn looked_for() -> bool {
    true
}

impl Policy {
    /// The setting of `rule` when it is enabled.
    pub fn setting(&self, rule: Rule) -> Option<&RuleSetting> {
        self.rules.iter().find(|s| s.rule == rule && s.enabled)
    }
}

const MIB: u64 = 1024 * 1024;

impl Default for Policy {
    /// The spec's values: static_analysis.yml rules and quarantine thresholds, sandbox.yml
    /// limits (100 MB memory, 1000 table elements, 100 globals), ids.yml's 50 MB.
    fn default() -> Self {
        let setting = |rule, severity| RuleSetting {
            rule,
            severity,
            enabled: true,
        };
        Policy {
            rules: vec![
                setting(Rule::DetectInfiniteLoops, Severity::High),
                setting(Rule::DetectMemoryLeaks, Severity::Medium),
                setting(Rule::DetectUnsafeOperations, Severity::High),
                setting(Rule::CheckImportRestrictions, Severity::Medium),
            ],
            allowed_imports: vec!["env.memory".into(), "env.table".into()],
            blocked_imports: vec!["env.exit".into(), "env.abort".into()],
            limits: Limits {
                max_memory_bytes: 100 * MIB,
                max_table_size: 1000,
                max_globals: 100,
            },
            high_risk_threshold: 8,
            medium_risk_threshold: 5,
            max_module_bytes: 50 * MIB,
            suspicious_patterns: true,
        }
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (also none).
pub fn matches_pattern(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // Position of the last `*` seen and the text position it was tried against.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_matches_any_name_of_its_module() {
        assert!(matches_pattern(
            "wasi_snapshot_preview1.*",
            "wasi_snapshot_preview1.fd_write"
        ));
        assert!(!matches_pattern("wasi_snapshot_preview1.*", "env.fd_write"));
        assert!(matches_pattern("*.abort", "env.abort"));
        assert!(matches_pattern("env.*_exit", "env.proc_exit"));
        assert!(matches_pattern("*", ""));
    }

    #[test]
    fn a_pattern_without_wildcard_matches_only_itself() {
        assert!(matches_pattern("env.exit", "env.exit"));
        assert!(!matches_pattern("env.exit", "env.exit2"));
        assert!(!matches_pattern("env.exit", "env.exi"));
    }

    #[test]
    fn the_default_policy_has_the_spec_values() {
        let p = Policy::default();
        assert_eq!(
            p.setting(Rule::DetectMemoryLeaks).map(|s| s.severity),
            Some(Severity::Medium)
        );
        assert_eq!((p.high_risk_threshold, p.medium_risk_threshold), (8, 5));
        assert_eq!(p.max_module_bytes, 50 * 1024 * 1024);
    }

    #[test]
    fn rule_names_serialize_as_in_static_analysis_yml() {
        let json = serde_json::to_string(&Rule::CheckImportRestrictions).unwrap_or_default();
        assert_eq!(json, "\"check_import_restrictions\"");
    }
}
