//! What an analysis produces: findings, the risk score and the verdict.

use serde::{Deserialize, Serialize};

use crate::policy::{Rule, Severity};

/// Whether the bytes are a core module or a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleKind {
    /// A core WebAssembly module.
    Core,
    /// A component (component model).
    Component,
}

/// What the platform should do with the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Below the medium threshold: may run.
    Active,
    /// At or above the medium threshold: an admin should look.
    Review,
    /// At or above the high threshold, or suspicious: must not run (with `auto_quarantine`).
    Quarantined,
}

/// The id of what produced a finding: one of the configurable rules, or the ids.yml
/// `suspicious_module_upload` rule. Serialized in snake_case, as in the config files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    /// See [`Rule::DetectInfiniteLoops`].
    DetectInfiniteLoops,
    /// See [`Rule::DetectMemoryLeaks`].
    DetectMemoryLeaks,
    /// See [`Rule::DetectUnsafeOperations`].
    DetectUnsafeOperations,
    /// See [`Rule::CheckImportRestrictions`].
    CheckImportRestrictions,
    /// ids.yml: a module over the size limit or matching a suspicious pattern.
    SuspiciousModuleUpload,
}

impl From<Rule> for RuleId {
    fn from(rule: Rule) -> Self {
        match rule {
            Rule::DetectInfiniteLoops => RuleId::DetectInfiniteLoops,
            Rule::DetectMemoryLeaks => RuleId::DetectMemoryLeaks,
            Rule::DetectUnsafeOperations => RuleId::DetectUnsafeOperations,
            Rule::CheckImportRestrictions => RuleId::CheckImportRestrictions,
        }
    }
}

/// Where a finding is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// Absolute function index (imported functions count first). In a component, the index
    /// within the core module that contains `offset`.
    pub function: Option<u32>,
    /// The function's name from the name section, when it has one.
    pub function_name: Option<String>,
    /// Byte offset in the uploaded bytes.
    pub offset: Option<usize>,
}

/// One thing the analysis found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What produced it.
    pub rule: RuleId,
    /// How serious it is.
    pub severity: Severity,
    /// A sentence a person can act on.
    pub message: String,
    /// Where it is.
    pub location: Location,
}

/// The result of analysing a valid module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Core module or component.
    pub kind: ModuleKind,
    /// Size of the analysed bytes.
    pub size_bytes: u64,
    /// Imports as `module.name` (core) or the component's import names.
    pub imports: Vec<String>,
    /// Export names.
    pub exports: Vec<String>,
    /// The imports that reach the network (`wasi:sockets/*`, `wasi:http/*`, any version): the
    /// module needs the sandbox's `network_access` capability to use them (see
    /// [`crate::is_network_import`]).
    #[serde(default)]
    pub network_imports: Vec<String>,
    /// Findings in the order found.
    pub findings: Vec<Finding>,
    /// 0..=10, see [`risk_score`].
    pub risk_score: u8,
    /// What to do with the module.
    pub verdict: Verdict,
    /// ids.yml `suspicious_module_upload` matched (size or pattern).
    pub suspicious: bool,
}

/// Contribution of the most severe finding.
fn weight(severity: Severity) -> u8 {
    match severity {
        Severity::Low => 2,
        Severity::Medium => 5,
        Severity::High => 8,
        Severity::Critical => 10,
    }
}

/// How far further findings may raise the score above the top weight; it stops one below
/// the next severity's weight, so many small findings never look like one bigger one.
fn headroom(severity: Severity) -> u8 {
    match severity {
        Severity::Low => 2,
        Severity::Medium => 2,
        Severity::High => 1,
        Severity::Critical => 0,
    }
}

/// The risk score: 0 without findings; otherwise `weight(top) + min(headroom(top), n - 1)`,
/// where `top` is the highest severity found and `n` the number of findings. Weights are
/// low 2, medium 5, high 8, critical 10; headroom low 2, medium 2, high 1, critical 0, so
/// the score never exceeds 10, stays below the next severity's weight, and never decreases
/// when a finding is added.
pub fn risk_score(findings: &[Finding]) -> u8 {
    let Some(top) = findings.iter().map(|f| f.severity).max() else {
        return 0;
    };
    let extra = u8::try_from(findings.len() - 1).unwrap_or(u8::MAX);
    weight(top) + extra.min(headroom(top))
}

/// The verdict for a score under the given thresholds; a suspicious module is always quarantined.
pub fn verdict(score: u8, suspicious: bool, high: u8, medium: u8) -> Verdict {
    if suspicious || score >= high {
        Verdict::Quarantined
    } else if score >= medium {
        Verdict::Review
    } else {
        Verdict::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity) -> Finding {
        Finding {
            rule: RuleId::DetectUnsafeOperations,
            severity,
            message: String::new(),
            location: Location::default(),
        }
    }

    fn score(severities: &[Severity]) -> u8 {
        risk_score(&severities.iter().map(|&s| finding(s)).collect::<Vec<_>>())
    }

    #[test]
    fn the_score_is_the_top_weight_plus_capped_extra_findings() {
        use Severity::*;
        assert_eq!(score(&[]), 0);
        assert_eq!(score(&[Low]), 2);
        assert_eq!(score(&[Low, Low, Low, Low]), 4);
        assert_eq!(score(&[Medium]), 5);
        assert_eq!(score(&[Medium; 30]), 7);
        assert_eq!(score(&[High]), 8);
        assert_eq!(score(&[High, Low]), 9);
        assert_eq!(score(&[High; 5]), 9);
        assert_eq!(score(&[Critical, High]), 10);
    }

    #[test]
    fn adding_a_finding_never_lowers_the_score() {
        use Severity::*;
        let all = [Low, Medium, High, Critical];
        let mut current: Vec<Severity> = Vec::new();
        for round in 0..12 {
            let before = score(&current);
            current.push(all[(round * 7) % 4]);
            assert!(score(&current) >= before, "{current:?}");
            assert!(score(&current) <= 10);
        }
        for &a in &all {
            for &b in &all {
                assert!(score(&[a, b]) >= score(&[a]));
            }
        }
    }

    #[test]
    fn the_verdict_follows_the_thresholds() {
        assert_eq!(verdict(8, false, 8, 5), Verdict::Quarantined);
        assert_eq!(verdict(7, false, 8, 5), Verdict::Review);
        assert_eq!(verdict(4, false, 8, 5), Verdict::Active);
        assert_eq!(verdict(0, true, 8, 5), Verdict::Quarantined);
    }
}
