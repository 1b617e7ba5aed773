//! ids.yml rules compiled for the edge: which events each rule watches, whose counter an event
//! moves, and whether the condition holds.
//!
//! Counters are kept alongside the audit events, not read back from them: every event a service
//! records passes [`crate::AuditService::record`], which hands it to the edge before audit.yml
//! decides whether to keep it. A rule counting sign-in failures counts them per source address, a
//! rule counting runs counts them per user, each in the rule's own window (see
//! [`super::store::SLICES`]).

use std::{collections::BTreeSet, net::IpAddr, time::Duration};

use super::condition::{self, Condition, Watches};
use crate::{
    audit::{AuditEvent, EventKind, Outcome},
    config::{
        Config,
        ids::{Action, IdsRule},
    },
};

/// How long `throttle` lasts when the rule gives no `duration` (an addition to the spec).
pub const DEFAULT_THROTTLE: Duration = Duration::from_secs(15 * 60);

/// One ids.yml rule, ready to apply.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub condition: Condition,
    pub action: Action,
    pub duration: Option<Duration>,
}

/// The rules in force: none when `intrusion_detection.enabled` is false. Rules whose condition
/// does not parse never get here: loading the config refuses them.
pub fn rules(config: &Config) -> Vec<Rule> {
    let ids = &config.ids.intrusion_detection;
    if !ids.enabled {
        return Vec::new();
    }
    ids.rules.iter().filter_map(compile).collect()
}

fn compile(rule: &IdsRule) -> Option<Rule> {
    let condition = condition::parse(&rule.condition).ok()?;
    Some(Rule {
        name: rule.name.clone(),
        condition,
        action: rule.action,
        duration: rule.duration.map(|d| d.duration()),
    })
}

/// Resources only the admin role holds a permission on (what `target_resource = admin` means).
pub fn admin_resources(config: &Config) -> BTreeSet<String> {
    let others: Vec<&String> = config
        .rbac
        .roles
        .iter()
        .filter(|(name, _)| name.as_str() != "admin")
        .flat_map(|(_, role)| role.permissions.iter())
        .collect();
    crate::config::rbac::PERMISSION_RESOURCES
        .iter()
        .filter(|r| {
            !others
                .iter()
                .any(|p| p.as_str() == "*" || p.split(':').next() == Some(**r))
        })
        .map(|r| r.to_string())
        .collect()
}

/// What one event tells the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub watches: Watches,
    pub ip: Option<IpAddr>,
    pub user_id: Option<String>,
    /// The refused permission's resource.
    pub resource: Option<String>,
    pub module_size: Option<u64>,
    pub suspicious: bool,
}

/// The observation an audit event stands for, if any rule could watch it.
pub fn observe(event: &AuditEvent) -> Option<Observation> {
    let detail = |k: &str| event.details.get(k);
    let watches = match (event.kind, event.outcome) {
        (EventKind::LoginFailure, _) => Watches::SignIns,
        (EventKind::PermissionDenied, _) => Watches::Refusals,
        (EventKind::ModuleExecute, Outcome::Success | Outcome::Failure) => Watches::Runs,
        (EventKind::ModuleQuarantine, _)
            if detail("automatic").and_then(|v| v.as_bool()) == Some(true)
                && detail("suspicious").and_then(|v| v.as_bool()) == Some(true) =>
        {
            Watches::Uploads
        }
        _ => return None,
    };
    Some(Observation {
        watches,
        ip: event
            .ip
            .as_deref()
            .and_then(|s| s.parse().ok())
            .map(super::address::canonical),
        user_id: event.actor.id.clone(),
        resource: detail("permission")
            .and_then(|v| v.as_str())
            .and_then(|p| p.split(':').next())
            .map(str::to_string),
        module_size: detail("size_bytes").and_then(|v| v.as_u64()),
        suspicious: watches == Watches::Uploads,
    })
}

/// Whose counter a rule moves: the address for sign-ins, the user for runs and uploads, the
/// address (else the user, for refusals met outside a request) for refusals.
pub fn subject(rule: &Rule, o: &Observation) -> Option<String> {
    let ip = || o.ip.map(|ip| format!("ip:{ip}"));
    let user = || o.user_id.as_ref().map(|u| format!("user:{u}"));
    match rule.condition.watches() {
        Watches::SignIns => ip(),
        Watches::Refusals => ip().or_else(user),
        Watches::Runs | Watches::Uploads => user(),
    }
}

/// Whether `condition` holds for `o`, with `count(i)` the counter of the i-th counting signal.
pub fn holds(
    condition: &Condition,
    o: &Observation,
    counts: &[u64],
    next: &mut usize,
    admin: &BTreeSet<String>,
) -> bool {
    match condition {
        // Every counting signal is visited (no short cut), so the indexes stay in step.
        Condition::Any(list) => {
            let each: Vec<bool> = list
                .iter()
                .map(|c| holds(c, o, counts, next, admin))
                .collect();
            each.into_iter().any(|b| b)
        }
        Condition::All(list) => {
            let each: Vec<bool> = list
                .iter()
                .map(|c| holds(c, o, counts, next, admin))
                .collect();
            each.into_iter().all(|b| b)
        }
        Condition::FailedLogins { more_than, .. } | Condition::ExecutionRate { more_than, .. } => {
            let n = counts.get(*next).copied().unwrap_or(0);
            *next += 1;
            n > *more_than
        }
        Condition::ModuleSize { more_than } => o.module_size.is_some_and(|s| s > *more_than),
        Condition::SuspiciousPatterns => o.suspicious,
        Condition::PermissionDenied => o.watches == Watches::Refusals,
        Condition::TargetResource(r) if r == "admin" => {
            o.resource.as_ref().is_some_and(|res| admin.contains(res))
        }
        Condition::TargetResource(r) => o.resource.as_deref() == Some(r.as_str()),
    }
}

/// The windows of a condition's counting signals, in order.
pub fn windows(condition: &Condition) -> Vec<Duration> {
    condition
        .signals()
        .into_iter()
        .filter_map(|s| match s {
            Condition::FailedLogins { within, .. } => Some(*within),
            Condition::ExecutionRate { per, .. } => Some(*per),
            _ => None,
        })
        .collect()
}

/// The upload analysis' share of the rules: the size above which an upload is suspicious and
/// whether suspicious patterns count, from every rule watching uploads (`None`, `false` when
/// none does or detection is off).
pub fn upload_policy(config: &Config) -> (Option<u64>, bool) {
    let mut size: Option<u64> = None;
    let mut patterns = false;
    for rule in rules(config) {
        for signal in rule.condition.signals() {
            match signal {
                Condition::ModuleSize { more_than } => {
                    size = Some(size.map_or(*more_than, |s| s.min(*more_than)));
                }
                Condition::SuspiciousPatterns => patterns = true,
                _ => {}
            }
        }
    }
    (size, patterns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Actor;

    fn config() -> Config {
        let dir = tempfile::tempdir().unwrap();
        crate::config::load_with_env(dir.path(), &|_| None).unwrap()
    }

    #[test]
    fn the_spec_s_rules_compile_and_admin_resources_come_from_rbac() {
        let c = config();
        let rules = rules(&c);
        assert_eq!(rules.len(), 4);
        assert_eq!(rules[0].action, Action::BlockIp);
        assert_eq!(rules[0].duration, Some(Duration::from_secs(3600)));
        let admin = admin_resources(&c);
        assert!(
            admin.contains("users") && admin.contains("system"),
            "{admin:?}"
        );
        assert!(!admin.contains("modules") && !admin.contains("metrics"));
        assert_eq!(upload_policy(&c), (Some(50 * 1024 * 1024), true));
    }

    #[test]
    fn privilege_escalation_matches_a_refusal_on_an_admin_resource_only() {
        let c = config();
        let rule = &rules(&c)[2];
        let admin = admin_resources(&c);
        let event = |permission: &str| {
            AuditEvent::new(
                EventKind::PermissionDenied,
                Actor::user("u1", "mallory"),
                Outcome::Denied,
            )
            .with_details(serde_json::json!({ "permission": permission }))
        };
        let o = observe(&event("users:create")).unwrap();
        assert!(holds(&rule.condition, &o, &[], &mut 0, &admin));
        let o = observe(&event("modules:delete")).unwrap();
        assert!(!holds(&rule.condition, &o, &[], &mut 0, &admin));
    }

    #[test]
    fn counting_signals_compare_their_own_counter() {
        let c = parse_rule("failed_logins > 5 in 5m");
        let o = Observation {
            watches: Watches::SignIns,
            ip: Some("203.0.113.1".parse().unwrap()),
            user_id: None,
            resource: None,
            module_size: None,
            suspicious: false,
        };
        let admin = BTreeSet::new();
        assert!(!holds(&c, &o, &[5], &mut 0, &admin));
        assert!(holds(&c, &o, &[6], &mut 0, &admin));
        assert_eq!(windows(&c), vec![Duration::from_secs(300)]);
    }

    fn parse_rule(text: &str) -> Condition {
        condition::parse(text).unwrap()
    }
}
