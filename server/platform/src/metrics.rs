//! Prometheus metrics: one registry per platform, rendered in the text exposition format at
//! `GET /metrics`.
//!
//! The spec's security counters (`authentication_failures_total`, `authorization_denials_total`,
//! `suspicious_modules_detected_total`, `rate_limit_violations_total`, `sandbox_violations_total`)
//! are counted from the security events that pass through [`crate::AuditService::record`], so
//! every service that records its event is counted once, whether or not audit.yml keeps it; the
//! rate limiter and the sandbox may also call the methods here directly. Their help texts start
//! with "security:" so the spec's `curl -s …/metrics | grep security` finds them.

use std::{sync::Arc, time::Duration};

use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::audit::{AuditEvent, EventKind, Outcome};

const META: Metadata<'static> = Metadata::new("wasm_as_os", Level::INFO, None);
/// Latency buckets in seconds, from 100 µs to 30 s.
const BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];

const DESCRIPTIONS: &[(&str, &str)] = &[
    (
        "authentication_failures_total",
        "security: failed sign-ins and token refreshes, by reason",
    ),
    (
        "authorization_denials_total",
        "security: requests refused for a missing permission, by resource",
    ),
    (
        "suspicious_modules_detected_total",
        "security: modules flagged by static analysis or quarantined, by severity",
    ),
    (
        "rate_limit_violations_total",
        "security: requests refused by a rate limit, by scope",
    ),
    (
        "sandbox_violations_total",
        "security: modules stopped by a sandbox limit or capability check, by kind",
    ),
    (
        "http_requests_total",
        "HTTP requests served, by method, route template and status",
    ),
    (
        "http_request_duration_seconds",
        "HTTP request latency, by method, route template and status",
    ),
    ("module_executions_total", "module executions, by outcome"),
    (
        "module_execution_duration_seconds",
        "module execution time, by outcome",
    ),
    (
        "audit_events_written_total",
        "audit events delivered, by destination",
    ),
    (
        "audit_events_dropped_total",
        "audit events that could not be accepted or read back, by stage",
    ),
    (
        "audit_destination_failures_total",
        "failed attempts to write a batch to an audit destination, by destination",
    ),
    (
        "ids_triggers_total",
        "security: ids.yml rules that fired, by action",
    ),
    (
        "ip_blocks_active",
        "security: addresses blocked by an ids.yml rule right now",
    ),
    (
        "throttles_active",
        "security: users whose runs an ids.yml rule is holding back right now",
    ),
    (
        "alerts_sent_total",
        "security: ids.yml alerts delivered or given up, by channel and outcome",
    ),
    (
        "audit_backlog_bytes",
        "audit journal bytes not yet delivered, by destination",
    ),
];

/// The registry; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    /// When `/metrics` was last read (Unix seconds; `i64::MIN`: never), evidence for soc2.yml
    /// `monitoring`.
    last_scrape: Arc<std::sync::atomic::AtomicI64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Maps a free-form value onto a fixed set, so labels stay few.
fn pick(value: Option<&str>, known: &[&'static str]) -> &'static str {
    let v = value
        .unwrap_or_default()
        .to_lowercase()
        .replace([' ', '-'], "_");
    known
        .iter()
        .find(|k| v.starts_with(**k))
        .copied()
        .unwrap_or("other")
}

const AUTH_REASONS: &[&str] = &[
    "mfa_failed",
    "unknown_user",
    "wrong_password",
    "account_disabled",
    "account_locked",
    "refresh_token_reused",
    "invalid_token",
    "mfa_failed",
];
const RESOURCES: &[&str] = &[
    "modules",
    "users",
    "system",
    "scheduler",
    "metrics",
    "snapshots",
    "tasks",
];
const SEVERITIES: &[&str] = &["critical", "high", "medium", "low"];
const SANDBOX_KINDS: &[&str] = &[
    "memory_limit",
    "timeout",
    "stack_overflow",
    "iteration_limit",
    "table_limit",
    "globals_limit",
    "capability_denied",
    "blocked_import",
];
const SCOPES: &[&str] = &["ip", "user", "endpoint", "global"];
const IDS_ACTIONS: &[&str] = &["block_ip", "quarantine", "alert", "throttle"];
const ALERT_CHANNELS: &[&str] = &["email", "slack", "syslog"];

impl Metrics {
    pub fn new() -> Self {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets(BUCKETS) {
            Ok(b) => b,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        for (name, help) in DESCRIPTIONS {
            recorder.describe_counter((*name).into(), None, (*help).into());
        }
        let metrics = Self {
            recorder: Arc::new(recorder),
            handle,
            last_scrape: Arc::new(std::sync::atomic::AtomicI64::new(i64::MIN)),
        };
        // The spec's counters are shown from the start, at zero.
        for reason in AUTH_REASONS {
            metrics
                .counter(
                    "authentication_failures_total",
                    vec![Label::new("reason", *reason)],
                )
                .increment(0);
        }
        for resource in RESOURCES {
            metrics
                .counter(
                    "authorization_denials_total",
                    vec![Label::new("resource", *resource)],
                )
                .increment(0);
        }
        for severity in SEVERITIES {
            metrics
                .counter(
                    "suspicious_modules_detected_total",
                    vec![Label::new("severity", *severity)],
                )
                .increment(0);
        }
        for scope in SCOPES {
            metrics
                .counter(
                    "rate_limit_violations_total",
                    vec![Label::new("scope", *scope)],
                )
                .increment(0);
        }
        for action in IDS_ACTIONS {
            metrics
                .counter("ids_triggers_total", vec![Label::new("action", *action)])
                .increment(0);
        }
        metrics.edge_state(0, 0);
        for kind in SANDBOX_KINDS {
            metrics
                .counter("sandbox_violations_total", vec![Label::new("kind", *kind)])
                .increment(0);
        }
        for outcome in ["success", "failure"] {
            metrics
                .counter(
                    "module_executions_total",
                    vec![Label::new("outcome", outcome)],
                )
                .increment(0);
        }
        metrics
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> metrics::Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &META)
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> metrics::Histogram {
        self.recorder
            .register_histogram(&Key::from_parts(name, labels), &META)
    }

    /// The text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Notes that a scraper read the metrics at `at`.
    pub fn scraped(&self, at: chrono::DateTime<chrono::Utc>) {
        self.last_scrape
            .store(at.timestamp(), std::sync::atomic::Ordering::Relaxed);
    }

    /// When the metrics were last read by a scraper (this process).
    pub fn last_scrape(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self.last_scrape.load(std::sync::atomic::Ordering::Relaxed) {
            i64::MIN => None,
            secs => chrono::DateTime::from_timestamp(secs, 0),
        }
    }

    /// Counts the security metrics an audit event stands for.
    pub fn observe_event(&self, e: &AuditEvent) {
        let detail = |k: &str| e.details.get(k).and_then(|v| v.as_str());
        match (e.kind, e.outcome) {
            (EventKind::LoginFailure, _) | (EventKind::TokenRefresh, Outcome::Failure) => {
                self.authentication_failure(detail("reason"))
            }
            (EventKind::MfaFailure, _) => self.authentication_failure(Some("mfa_failed")),
            (EventKind::PermissionDenied, _) => {
                self.authorization_denial(detail("permission").and_then(|p| p.split(':').next()))
            }
            // Only quarantines made by the analysis count as detections; an admin's manual one does not.
            (EventKind::ModuleQuarantine, _)
                if e.details.get("automatic").and_then(|v| v.as_bool()) == Some(true) =>
            {
                self.suspicious_module(detail("severity"))
            }
            (EventKind::SandboxViolation, _) => self.sandbox_violation(
                detail("violation")
                    .or(detail("kind"))
                    .map(|v| v.trim_start_matches("sandbox.")),
            ),
            // Refused before running (no permission, quarantined): not an execution.
            (EventKind::ModuleExecute, Outcome::Success | Outcome::Failure) => {
                let ms = e
                    .details
                    .get("duration_ms")
                    .and_then(|v| v.as_f64())
                    .unwrap_or_default();
                self.module_execution(
                    e.outcome == Outcome::Success,
                    Duration::from_secs_f64(ms.max(0.0) / 1000.0),
                )
            }
            _ => {}
        }
    }

    pub fn authentication_failure(&self, reason: Option<&str>) {
        self.counter(
            "authentication_failures_total",
            vec![Label::new("reason", pick(reason, AUTH_REASONS))],
        )
        .increment(1);
    }

    pub fn authorization_denial(&self, resource: Option<&str>) {
        self.counter(
            "authorization_denials_total",
            vec![Label::new("resource", pick(resource, RESOURCES))],
        )
        .increment(1);
    }

    pub fn suspicious_module(&self, severity: Option<&str>) {
        self.counter(
            "suspicious_modules_detected_total",
            vec![Label::new("severity", pick(severity, SEVERITIES))],
        )
        .increment(1);
    }

    pub fn rate_limit_violation(&self, scope: Option<&str>) {
        self.counter(
            "rate_limit_violations_total",
            vec![Label::new("scope", pick(scope, SCOPES))],
        )
        .increment(1);
    }

    /// An ids.yml rule fired with `action`.
    pub fn ids_trigger(&self, action: &str) {
        self.counter(
            "ids_triggers_total",
            vec![Label::new("action", pick(Some(action), IDS_ACTIONS))],
        )
        .increment(1);
    }

    /// Blocks and throttles in force.
    pub fn edge_state(&self, blocks: usize, throttles: usize) {
        for (name, n) in [
            ("ip_blocks_active", blocks),
            ("throttles_active", throttles),
        ] {
            self.recorder
                .register_gauge(&Key::from_name(name), &META)
                .set(n as f64);
        }
    }

    /// One alert delivered (`success`) or given up after its retries (`failure`).
    pub fn alert_sent(&self, channel: &str, success: bool) {
        self.counter(
            "alerts_sent_total",
            vec![
                Label::new("channel", pick(Some(channel), ALERT_CHANNELS)),
                Label::new("outcome", if success { "success" } else { "failure" }),
            ],
        )
        .increment(1);
    }

    pub fn sandbox_violation(&self, kind: Option<&str>) {
        self.counter(
            "sandbox_violations_total",
            vec![Label::new("kind", pick(kind, SANDBOX_KINDS))],
        )
        .increment(1);
    }

    /// One served request; `route` is the route template (`/api/v1/users/{id}`), never the path.
    pub fn http_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let labels = || {
            vec![
                Label::new("method", method.to_string()),
                Label::new("route", route.to_string()),
                Label::new("status", status.to_string()),
            ]
        };
        self.counter("http_requests_total", labels()).increment(1);
        self.histogram("http_request_duration_seconds", labels())
            .record(elapsed.as_secs_f64());
    }

    pub fn module_execution(&self, success: bool, elapsed: Duration) {
        let outcome = if success { "success" } else { "failure" };
        self.counter(
            "module_executions_total",
            vec![Label::new("outcome", outcome)],
        )
        .increment(1);
        self.histogram(
            "module_execution_duration_seconds",
            vec![Label::new("outcome", outcome)],
        )
        .record(elapsed.as_secs_f64());
    }

    pub fn audit_written(&self, destination: &str, n: u64) {
        self.counter(
            "audit_events_written_total",
            vec![Label::new("destination", destination.to_string())],
        )
        .increment(n);
    }

    pub fn audit_dropped(&self, stage: &'static str, n: u64) {
        self.counter(
            "audit_events_dropped_total",
            vec![Label::new("stage", stage)],
        )
        .increment(n);
    }

    pub fn audit_destination_failure(&self, destination: &str) {
        self.counter(
            "audit_destination_failures_total",
            vec![Label::new("destination", destination.to_string())],
        )
        .increment(1);
    }

    pub fn audit_backlog(&self, destination: &str, bytes: u64) {
        let key = Key::from_parts(
            "audit_backlog_bytes",
            vec![Label::new("destination", destination.to_string())],
        );
        self.recorder.register_gauge(&key, &META).set(bytes as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Actor;

    #[test]
    fn security_events_count_in_the_specs_metrics_with_few_labels() {
        let m = Metrics::new();
        let failure = AuditEvent::new(EventKind::LoginFailure, Actor::system(), Outcome::Failure)
            .with_details(serde_json::json!({"reason": "wrong password"}));
        m.observe_event(&failure);
        m.observe_event(
            &failure
                .clone()
                .with_details(serde_json::json!({"reason": "made up <script>"})),
        );
        let denied = AuditEvent::new(
            EventKind::PermissionDenied,
            Actor::system(),
            Outcome::Denied,
        )
        .with_details(serde_json::json!({"permission": "users:create"}));
        m.observe_event(&denied);
        let text = m.render();
        assert!(
            text.contains("authentication_failures_total{reason=\"wrong_password\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("authentication_failures_total{reason=\"other\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("authorization_denials_total{resource=\"users\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sandbox_violations_total{kind=\"memory_limit\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("# HELP rate_limit_violations_total security:"),
            "{text}"
        );
    }

    #[test]
    fn module_events_count_detections_violations_and_executions() {
        let m = Metrics::new();
        let module = |kind, outcome, details| {
            AuditEvent::new(kind, Actor::system(), outcome).with_details(details)
        };
        m.observe_event(&module(
            EventKind::ModuleQuarantine,
            Outcome::Success,
            serde_json::json!({"automatic": true, "severity": "critical"}),
        ));
        // An admin's manual quarantine is not a detection.
        m.observe_event(&module(
            EventKind::ModuleQuarantine,
            Outcome::Success,
            serde_json::json!({"reason": "manual"}),
        ));
        m.observe_event(&module(
            EventKind::SandboxViolation,
            Outcome::Denied,
            serde_json::json!({"violation": "sandbox.iteration_limit"}),
        ));
        m.observe_event(&module(
            EventKind::ModuleExecute,
            Outcome::Success,
            serde_json::json!({"duration_ms": 12.5}),
        ));
        m.observe_event(&module(
            EventKind::ModuleExecute,
            Outcome::Failure,
            serde_json::json!({"duration_ms": 3.0}),
        ));
        // Refused before running: no execution.
        m.observe_event(&module(
            EventKind::ModuleExecute,
            Outcome::Denied,
            serde_json::json!({}),
        ));
        let text = m.render();
        assert!(
            text.contains("suspicious_modules_detected_total{severity=\"critical\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("sandbox_violations_total{kind=\"iteration_limit\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("module_executions_total{outcome=\"success\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("module_executions_total{outcome=\"failure\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("module_execution_duration_seconds_count{outcome=\"success\"} 1"),
            "{text}"
        );
    }
}
