//! `static_analysis.yml`: the rules run on every uploaded module, and the quarantine policy.

use serde::Deserialize;

use super::Problems;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticAnalysisFile {
    pub static_analysis: StaticAnalysis,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticAnalysis {
    pub enabled: bool,
    pub rules: Vec<Rule>,
    pub quarantine: Quarantine,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: RuleName,
    pub severity: Severity,
    pub enabled: bool,
    #[serde(default)]
    pub config: Option<ImportRules>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum RuleName {
    DetectInfiniteLoops,
    DetectMemoryLeaks,
    DetectUnsafeOperations,
    CheckImportRestrictions,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// `config` of `check_import_restrictions`: `module.name` patterns (`*` matches any run of characters).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ImportRules {
    #[serde(default)]
    pub allowed_imports: Vec<String>,
    #[serde(default)]
    pub blocked_imports: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Quarantine {
    pub enabled: bool,
    pub high_risk_threshold: f64,
    pub medium_risk_threshold: f64,
    pub auto_quarantine: bool,
    /// Addition to the spec: whether modules in `review` may run before an administrator
    /// releases them. Off by default: they are refused with `module_in_review`.
    #[serde(default)]
    pub run_in_review: bool,
}

impl StaticAnalysisFile {
    pub(super) fn validate(&self, p: &mut Problems) {
        let sa = &self.static_analysis;
        let mut seen = std::collections::BTreeSet::new();
        for (i, rule) in sa.rules.iter().enumerate() {
            if !seen.insert(rule.name) {
                p.push(
                    format!("static_analysis.rules[{i}].name"),
                    "rule is listed twice",
                );
            }
            if rule.config.is_some() && rule.name != RuleName::CheckImportRestrictions {
                p.push(
                    format!("static_analysis.rules[{i}].config"),
                    "only check_import_restrictions takes a config",
                );
            }
            for (list, patterns) in rule.config.iter().flat_map(|c| {
                [
                    ("allowed_imports", &c.allowed_imports),
                    ("blocked_imports", &c.blocked_imports),
                ]
            }) {
                for (j, pattern) in patterns.iter().enumerate() {
                    if pattern
                        .split_once('.')
                        .is_none_or(|(m, n)| m.is_empty() || n.is_empty())
                    {
                        p.push(
                            format!("static_analysis.rules[{i}].config.{list}[{j}]"),
                            format!("\"{pattern}\" is not of the form module.name"),
                        );
                    }
                }
            }
        }
        let q = &sa.quarantine;
        for (key, value) in [
            ("high_risk_threshold", q.high_risk_threshold),
            ("medium_risk_threshold", q.medium_risk_threshold),
        ] {
            if !(0.0..=10.0).contains(&value) {
                p.push(
                    format!("static_analysis.quarantine.{key}"),
                    "must be between 0 and 10",
                );
            }
        }
        if q.medium_risk_threshold > q.high_risk_threshold {
            p.push(
                "static_analysis.quarantine.medium_risk_threshold",
                "must not be above high_risk_threshold",
            );
        }
    }
}
