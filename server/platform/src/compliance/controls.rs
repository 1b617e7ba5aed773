//! SOC 2 controls with live evidence (soc2.yml): for each control, whether soc2.yml requires it and
//! whether it holds now, from what the platform can check at this moment — never from the flag
//! alone. A required control that does not hold says why and how to fix it; a control the product
//! cannot satisfy yet says so.
//!
//! What is not the compliance service's own (the alert channels of the edge, the last metrics
//! scrape) comes in as [`LiveFacts`], gathered by `Platform::controls`.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Query,
};
use serde::Serialize;

use super::{Compliance, ComplianceError};
use crate::{
    access::Principal,
    audit::{AuditParams, AuditQuery, EventKind},
    config::tls::TlsVersion,
    identity::entities::{mfa_factor, user, user_role},
    modules::entities::module,
};

/// How long a chain verification stands as evidence before the page verifies again.
pub const VERIFY_EVERY: chrono::Duration = chrono::Duration::minutes(10);
/// How recent the last metrics scrape must be for monitoring to hold.
pub const SCRAPE_WITHIN: chrono::Duration = chrono::Duration::minutes(5);

/// Where a control stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlState {
    /// The check passed now.
    Holds,
    /// The check failed now: see the reason and the fix.
    Fails,
    /// The product has no way to satisfy it yet.
    NotBuilt,
}

/// One soc2.yml control and its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Control {
    /// soc2.yml's key, e.g. `multi_factor_auth`.
    pub key: &'static str,
    /// soc2.yml's section, e.g. `security`.
    pub area: &'static str,
    pub title: &'static str,
    /// soc2.yml sets it to true.
    pub required: bool,
    pub state: ControlState,
    /// What was checked and what it showed.
    pub evidence: String,
    /// How to make it hold (when it does not).
    pub fix: Option<String>,
    pub checked_at: DateTime<Utc>,
}

/// An alert destination's last delivery: whether it succeeded, and why not.
pub type LastDelivery = Option<(bool, Option<String>)>;

/// Facts of other parts of the platform the checks read.
#[derive(Debug, Clone, Default)]
pub struct LiveFacts {
    /// ids.yml's alert destinations: their channel and last delivery (`None` before the first).
    pub alert_channels: Vec<(String, LastDelivery)>,
    /// When `/metrics` was last read (this process).
    pub last_scrape: Option<DateTime<Utc>>,
}

/// The last verification of the audit chain: when, and what it showed.
pub(super) type ChainCheck = Arc<Mutex<Option<(DateTime<Utc>, bool, String)>>>;

struct Check {
    state: ControlState,
    evidence: String,
    fix: Option<String>,
}

fn holds(evidence: impl Into<String>) -> Check {
    Check {
        state: ControlState::Holds,
        evidence: evidence.into(),
        fix: None,
    }
}

fn fails(evidence: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        state: ControlState::Fails,
        evidence: evidence.into(),
        fix: Some(fix.into()),
    }
}

fn not_built(evidence: impl Into<String>) -> Check {
    Check {
        state: ControlState::NotBuilt,
        evidence: evidence.into(),
        fix: None,
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

impl Compliance {
    /// Every soc2.yml control with its live evidence (`system:audit`).
    pub async fn controls(
        &self,
        principal: &Principal,
        facts: &LiveFacts,
    ) -> Result<Vec<Control>, ComplianceError> {
        principal
            .require(&self.audit, "system", "audit", "compliance controls")
            .await?;
        let now = self.clock.now();
        let live = self.settings.get();
        let soc2 = &live.soc2.soc2;
        let s = &soc2.security;
        let a = &soc2.availability;
        let p = &soc2.processing_integrity;
        let c = &soc2.confidentiality;
        let v = &soc2.privacy;
        let not_yet_backup = "there is no backup command yet: the backup and restore issue builds `admin backup`, its verification and scheduled restore tests";
        let rows: Vec<(&'static str, &'static str, &'static str, bool, Check)> = vec![
            (
                "security",
                "access_controls",
                "Access controls",
                s.access_controls,
                self.check_access_controls().await?,
            ),
            (
                "security",
                "multi_factor_auth",
                "Multi-factor authentication",
                s.multi_factor_auth,
                self.check_mfa().await?,
            ),
            (
                "security",
                "encryption_at_rest",
                "Encryption at rest",
                s.encryption_at_rest,
                self.check_at_rest().await?,
            ),
            (
                "security",
                "encryption_in_transit",
                "Encryption in transit",
                s.encryption_in_transit,
                self.check_in_transit(),
            ),
            (
                "availability",
                "monitoring",
                "Monitoring",
                a.monitoring,
                check_monitoring(facts, now),
            ),
            (
                "availability",
                "alerting",
                "Alerting",
                a.alerting,
                self.check_alerting(facts),
            ),
            (
                "availability",
                "backup_testing",
                "Backup testing",
                a.backup_testing,
                not_built(not_yet_backup),
            ),
            (
                "availability",
                "disaster_recovery",
                "Disaster recovery",
                a.disaster_recovery,
                not_built(not_yet_backup),
            ),
            (
                "processing_integrity",
                "input_validation",
                "Input validation",
                p.input_validation,
                self.check_input_validation().await?,
            ),
            (
                "processing_integrity",
                "error_handling",
                "Error handling",
                p.error_handling,
                holds(
                    "every entry point answers errors from one table (a 4xx with a code and a message, never a stack trace or a secret); tested against the real binary, and the REST API is fuzzed against its OpenAPI document in CI",
                ),
            ),
            (
                "processing_integrity",
                "data_integrity_checks",
                "Data integrity checks",
                p.data_integrity_checks,
                self.check_chain(now).await?,
            ),
            (
                "confidentiality",
                "data_classification",
                "Data classification",
                c.data_classification,
                self.check_classification().await?,
            ),
            (
                "confidentiality",
                "access_logging",
                "Access logging",
                c.access_logging,
                self.check_access_logging(principal).await?,
            ),
            (
                "confidentiality",
                "secure_disposal",
                "Secure disposal",
                c.secure_disposal,
                not_built(
                    "deleting a module deletes its file, but copies of it (backups, replicas) stay readable with the platform key: per-module keys (crypto-shredding) are not built yet",
                ),
            ),
            (
                "privacy",
                "consent_management",
                "Consent management",
                v.consent_management,
                not_built("no privacy-notice version is shown or accepted at sign-in yet"),
            ),
            (
                "privacy",
                "data_minimization",
                "Data minimisation",
                v.data_minimization,
                self.check_minimisation().await?,
            ),
            (
                "privacy",
                "purpose_limitation",
                "Purpose limitation",
                v.purpose_limitation,
                check_purposes(),
            ),
        ];
        Ok(rows
            .into_iter()
            .map(|(area, key, title, required, check)| Control {
                key,
                area,
                title,
                required,
                state: check.state,
                evidence: check.evidence,
                fix: check.fix,
                checked_at: now,
            })
            .collect())
    }

    async fn check_access_controls(&self) -> Result<Check, ComplianceError> {
        let roles = self.config.rbac.roles.len() as u64;
        // Counted in the database: the page loads this on every visit, whatever the number of
        // accounts.
        let enabled = user::Entity::find()
            .filter(user::Column::Disabled.eq(false))
            .count(&self.db)
            .await?;
        let roleless = || {
            user::Entity::find()
                .filter(user::Column::Disabled.eq(false))
                .filter(
                    user::Column::Id.not_in_subquery(
                        Query::select()
                            .column(user_role::Column::UserId)
                            .from(user_role::Entity)
                            .to_owned(),
                    ),
                )
        };
        let without_count = roleless().count(&self.db).await?;
        let shown: Vec<String> = roleless()
            .select_only()
            .column(user::Column::Username)
            .order_by_asc(user::Column::Username)
            .limit(5)
            .into_tuple()
            .all(&self.db)
            .await?;
        let base = format!(
            "{} in rbac.yml; every request is decided by role permissions and resource ownership",
            plural(roles, "role", "roles")
        );
        if roles == 0 {
            return Ok(fails(
                "rbac.yml defines no role",
                "define roles in rbac.yml",
            ));
        }
        if without_count == 0 {
            Ok(holds(format!(
                "{base}; every enabled account ({enabled}) holds a role"
            )))
        } else {
            Ok(fails(
                format!(
                    "{base}; {} hold no role ({})",
                    plural(without_count, "enabled account", "enabled accounts"),
                    shown.join(", ")
                ),
                "give each account a role on the Users page, or disable it",
            ))
        }
    }

    async fn check_mfa(&self) -> Result<Check, ComplianceError> {
        let live = self.settings.get();
        let roles = &live.soc2.soc2.security.multi_factor_roles;
        if roles.is_empty() {
            return Ok(fails(
                "soc2.yml multi_factor_roles names no role, so nobody is required to use a second factor",
                "list the roles that must use a second factor in soc2.yml multi_factor_roles (admins at least)",
            ));
        }
        // Enabled holders of the required roles, and those of them with a confirmed factor,
        // counted in the database.
        let required = || {
            user::Entity::find()
                .filter(user::Column::Disabled.eq(false))
                .filter(
                    user::Column::Id.in_subquery(
                        Query::select()
                            .column(user_role::Column::UserId)
                            .from(user_role::Entity)
                            .and_where(user_role::Column::RoleName.is_in(roles.iter().cloned()))
                            .to_owned(),
                    ),
                )
        };
        let total = required().count(&self.db).await?;
        let with = required()
            .filter(
                user::Column::Id.in_subquery(
                    Query::select()
                        .column(mfa_factor::Column::UserId)
                        .from(mfa_factor::Entity)
                        .and_where(mfa_factor::Column::Confirmed.eq(true))
                        .to_owned(),
                ),
            )
            .count(&self.db)
            .await?;
        let evidence = format!(
            "{with} of {} holding {} have a second factor",
            plural(total, "enabled account", "enabled accounts"),
            roles.join(", ")
        );
        if with == total {
            Ok(holds(evidence))
        } else {
            Ok(fails(
                evidence,
                "those accounts are sent to enrol at their next sign-in; ask them to sign in, or disable accounts no longer used",
            ))
        }
    }

    async fn check_at_rest(&self) -> Result<Check, ComplianceError> {
        let modules = module::Entity::find().count(&self.db).await?;
        Ok(holds(format!(
            "module files are sealed with AES-256-GCM under the storage key ({} stored); second-factor secrets and passkeys are sealed under keys derived from it; passwords are Argon2id hashes and tokens SHA-256 hashes",
            plural(modules, "module", "modules")
        )))
    }

    fn check_in_transit(&self) -> Check {
        let tls = &self.config.tls.tls;
        let version = match tls.min_version {
            TlsVersion::Tls12 => "TLS 1.2",
            TlsVersion::Tls13 => "TLS 1.3",
        };
        if tls.enabled {
            holds(format!(
                "HTTPS is on (tls.yml), at least {version}, {} cipher suites",
                tls.cipher_suites.len()
            ))
        } else {
            fails(
                "tls.yml has HTTPS turned off: the dashboard and API are served in clear text",
                "set enabled: true in tls.yml with a certificate and key (or terminate TLS at a proxy in front and say so in the deployment guide)",
            )
        }
    }

    fn check_alerting(&self, facts: &LiveFacts) -> Check {
        let ids = &self.config.ids.intrusion_detection;
        if facts.alert_channels.is_empty() {
            return fails(
                format!(
                    "ids.yml has no alert destination{}",
                    if ids.enabled {
                        ""
                    } else {
                        " and intrusion detection is off"
                    }
                ),
                "add an email, Slack or webhook destination under ids.yml alerts",
            );
        }
        let failing: Vec<String> = facts
            .alert_channels
            .iter()
            .filter_map(|(channel, last)| match last {
                Some((false, error)) => Some(format!(
                    "{channel}: {}",
                    error.as_deref().unwrap_or("the last delivery failed")
                )),
                _ => None,
            })
            .collect();
        let delivered = facts
            .alert_channels
            .iter()
            .filter(|(_, last)| matches!(last, Some((true, _))))
            .count() as u64;
        if failing.is_empty() {
            holds(format!(
                "{} configured; {delivered} delivered an alert since start, none failed",
                plural(
                    facts.alert_channels.len() as u64,
                    "alert destination",
                    "alert destinations"
                )
            ))
        } else {
            fails(
                format!("the last delivery failed: {}", failing.join("; ")),
                "fix the destination in ids.yml (address, SMTP server, webhook URL) and watch the Security page's alert status",
            )
        }
    }

    async fn check_input_validation(&self) -> Result<Check, ComplianceError> {
        let sa = &self.config.static_analysis;
        let quarantined = module::Entity::find()
            .filter(module::Column::Status.eq("quarantined"))
            .count(&self.db)
            .await?;
        if sa.static_analysis.enabled {
            Ok(holds(format!(
                "uploads are validated as WebAssembly and checked by static analysis before they can run ({} quarantined); request bodies are size-bounded and typed",
                plural(quarantined, "module", "modules")
            )))
        } else {
            Ok(fails(
                "static_analysis.yml turns the upload checks off: modules are only validated as WebAssembly",
                "set enabled: true in static_analysis.yml",
            ))
        }
    }

    /// The audit chain, verified at most every [`VERIFY_EVERY`] (the result stands meanwhile).
    async fn check_chain(&self, now: DateTime<Utc>) -> Result<Check, ComplianceError> {
        let cached = self
            .chain_check
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .filter(|(at, _, _)| now - *at < VERIFY_EVERY);
        let (at, intact, summary) = match cached {
            Some(c) => c,
            None => {
                let result = self.audit.verify_database().await?;
                let (intact, summary) = match &result.broken {
                    None => (
                        true,
                        format!(
                            "{} events verified intact",
                            plural(result.verified, "audit event", "audit")
                        ),
                    ),
                    Some(b) => (
                        false,
                        format!(
                            "the chain is broken at {b} ({} verified before it)",
                            result.verified
                        ),
                    ),
                };
                if let Ok(mut slot) = self.chain_check.lock() {
                    *slot = Some((now, intact, summary.clone()));
                }
                (now, intact, summary)
            }
        };
        let when = at.format("%Y-%m-%d %H:%M UTC");
        if intact {
            Ok(holds(format!(
                "audit hash chain last verified {when}: {summary}"
            )))
        } else {
            Ok(fails(
                format!("audit hash chain last verified {when}: {summary}"),
                "investigate with `wasm-as-os admin audit verify`: a broken link means rows were changed or deleted outside the platform",
            ))
        }
    }

    async fn check_access_logging(&self, principal: &Principal) -> Result<Check, ComplianceError> {
        let audit = &self.config.audit.audit;
        let logged: Vec<EventKind> = audit
            .events
            .authentication
            .iter()
            .chain(&audit.events.authorization)
            .copied()
            .collect();
        let wanted = [
            EventKind::LoginSuccess,
            EventKind::LoginFailure,
            EventKind::PermissionDenied,
        ];
        let missing: Vec<String> = wanted
            .iter()
            .filter(|k| !logged.contains(k))
            .map(|k| k.as_str().to_string())
            .collect();
        if !audit.enabled {
            return Ok(fails(
                "audit.yml turns the audit log off",
                "set enabled: true in audit.yml",
            ));
        }
        if !missing.is_empty() {
            return Ok(fails(
                format!("audit.yml leaves out {}", missing.join(", ")),
                "add them to audit.yml events",
            ));
        }
        let query = AuditQuery::from_params(&AuditParams {
            limit: Some(1),
            ..Default::default()
        })?;
        let last = self
            .audit
            .search(principal, &query)
            .await?
            .events
            .first()
            .map(|e| e.timestamp.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "none yet".into());
        Ok(holds(format!(
            "sign-ins, failures and refusals are recorded to {} (hash-chained); last event: {last}",
            plural(
                audit.destinations.len() as u64,
                "destination",
                "destinations"
            )
        )))
    }

    /// Every column of the live database's tables that hold personal data has a class, a
    /// purpose and a retention in the classification table.
    async fn check_classification(&self) -> Result<Check, ComplianceError> {
        use sea_orm::{ConnectionTrait, Statement};

        use super::classification::{FIELDS, tables};
        let backend = self.db.get_database_backend();
        let mut unclassified = Vec::new();
        let mut columns = 0usize;
        for table in tables() {
            let statement = match backend {
                sea_orm::DbBackend::Sqlite => Statement::from_sql_and_values(
                    backend,
                    "SELECT name AS column_name FROM pragma_table_info(?)",
                    [table.into()],
                ),
                _ => Statement::from_sql_and_values(
                    backend,
                    "SELECT column_name::text AS column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
                    [table.into()],
                ),
            };
            for row in self.db.query_all_raw(statement).await? {
                let column: String = row.try_get("", "column_name")?;
                columns += 1;
                if !FIELDS
                    .iter()
                    .any(|f| f.table == table && f.column == column)
                {
                    unclassified.push(format!("{table}.{column}"));
                }
            }
        }
        Ok(if unclassified.is_empty() {
            holds(format!(
                "all {columns} columns of the {} tables holding personal data have a class, a purpose and a retention (shown below); checked against the live database",
                tables().len()
            ))
        } else {
            fails(
                format!(
                    "{} column(s) in the database have no class: {}",
                    unclassified.len(),
                    unclassified.join(", ")
                ),
                "give each a class, purpose, retention and export rule in server/platform/src/compliance/classification.rs",
            )
        })
    }

    async fn check_minimisation(&self) -> Result<Check, ComplianceError> {
        let live = self.settings.get();
        let privacy = &live.privacy.privacy;
        if !privacy.data_anonymization.enabled {
            return Ok(fails(
                "privacy.yml turns anonymisation off: full client addresses and user agents are kept for the whole retention",
                "set data_anonymization.enabled: true in privacy.yml",
            ));
        }
        let (left, cutoff) = self.audit.unreduced().await?;
        let before = cutoff.format("%Y-%m-%d %H:%M UTC");
        if left == 0 {
            Ok(holds(format!(
                "anonymisation is on: no audit event from before {before} keeps a full client address or user agent (only the network and browser family stay); exports and erasures cover every personal field"
            )))
        } else {
            Ok(fails(
                format!(
                    "{} from before {before} still keep a full client address or user agent",
                    plural(left, "audit event", "audit events")
                ),
                "the hourly anonymisation pass has not caught up: check that `serve` is running and its log",
            ))
        }
    }
}

fn check_monitoring(facts: &LiveFacts, now: DateTime<Utc>) -> Check {
    match facts.last_scrape {
        Some(at) if now - at <= SCRAPE_WITHIN => holds(format!(
            "/metrics was last read {} (Prometheus text format, security metrics included)",
            at.format("%Y-%m-%d %H:%M:%S UTC")
        )),
        Some(at) => fails(
            format!(
                "/metrics was last read {}, more than 5 minutes ago",
                at.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            "check the Prometheus scrape job of this server",
        ),
        None => fails(
            "nothing has read /metrics since this server started",
            "point a Prometheus scrape job at /metrics (from an allowed network, or with a metrics:read token)",
        ),
    }
}

/// Every classified field has a purpose, and the data export writes exactly the fields the table
/// sends to it (no stored field leaves in an export without a purpose, none is left out).
fn check_purposes() -> Check {
    use super::classification::{Export, FIELDS, export_disagreements};
    let problems = export_disagreements(&super::export::sections());
    let withheld = FIELDS
        .iter()
        .filter(|f| matches!(f.export, Export::Withheld { .. }))
        .count();
    if problems.is_empty() {
        holds(format!(
            "each of the {} classified fields is kept for one stated purpose and time; the data export writes exactly the {} exported ones, and {withheld} are withheld with a reason (secrets, internal bookkeeping)",
            FIELDS.len(),
            FIELDS.len() - withheld
        ))
    } else {
        fails(
            problems.join("; "),
            "make the export's sections and server/platform/src/compliance/classification.rs agree",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitoring_holds_only_while_scraped() {
        let now = Utc::now();
        let never = LiveFacts::default();
        assert_eq!(check_monitoring(&never, now).state, ControlState::Fails);
        let recent = LiveFacts {
            last_scrape: Some(now - chrono::Duration::seconds(30)),
            ..Default::default()
        };
        assert_eq!(check_monitoring(&recent, now).state, ControlState::Holds);
        let stale = LiveFacts {
            last_scrape: Some(now - chrono::Duration::minutes(6)),
            ..Default::default()
        };
        let check = check_monitoring(&stale, now);
        assert_eq!(check.state, ControlState::Fails);
        assert!(check.fix.is_some());
    }
}
