//! Data classification and purpose limitation (soc2.yml `data_classification`,
//! `purpose_limitation`): every column of every table that holds data about a person, with its
//! class, the purpose it is kept for, how long, where a data export shows it (or why it never
//! does) and whether privacy.yml's anonymisation reduces it. One table, read by:
//!
//! - the Compliance page (`Compliance::classification`), which shows it;
//! - the data export (`export/collect.rs`): every exported column is one this table sends to
//!   that section, and every column this table sends to a section is in it (checked by the
//!   tests below, and live by the `purpose_limitation` control);
//! - anonymisation (`audit/anonymise.rs`): the columns it drops, and the reduced form each keeps,
//!   come from [`reduced`];
//! - the `data_classification` control, which reads the live database's columns of these tables
//!   and fails naming any column not classified here (a migration that adds one without a class).

use serde::Serialize;

use crate::config::privacy::AnonymizedField;

/// What kind of data a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Names a person or an account: username, account id, a provider's subject.
    Identifier,
    /// Reaches the person: an email address.
    Contact,
    /// Proves who someone is: password and token hashes, second-factor secrets. Never exported.
    Credential,
    /// Online identifiers: client address, user agent.
    Network,
    /// What the person did and when: sign-ins, runs, audit events.
    Activity,
    /// What the person made: modules, their names and descriptions, run results.
    Content,
    /// About the system, not the person (states, sizes, counters, references to rows).
    Operational,
}

/// Why a column is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Signing in and keeping a session.
    Authentication,
    /// Deciding what an account may do (roles, shares, tokens' permissions).
    Authorisation,
    /// The audit trail: who did what, for security and accountability.
    Accountability,
    /// Intrusion detection and lockouts.
    SecurityMonitoring,
    /// Running the modules people upload.
    Service,
    /// Carrying out people's privacy rights (exports, erasure).
    PrivacyRights,
}

/// Where a data export shows a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Export {
    /// In this section of the export, under this column.
    In {
        section: &'static str,
        column: &'static str,
    },
    /// Never exported, and why.
    Withheld { reason: &'static str },
}

/// One classified column.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Field {
    pub table: &'static str,
    pub column: &'static str,
    pub class: Class,
    pub purpose: Purpose,
    /// How long it is kept.
    pub kept: &'static str,
    pub export: Export,
    /// Further export columns it feeds (`(section, column)`), e.g. a module's name beside each
    /// of its shares.
    pub also: &'static [(&'static str, &'static str)],
    /// privacy.yml `fields_to_anonymize` entry that reduces it, and the column holding the
    /// reduced form.
    pub reduced: Option<(AnonymizedField, &'static str)>,
}

const fn f(
    table: &'static str,
    column: &'static str,
    class: Class,
    purpose: Purpose,
    kept: &'static str,
    export: Export,
) -> Field {
    Field {
        table,
        column,
        class,
        purpose,
        kept,
        export,
        also: &[],
        reduced: None,
    }
}

const fn to(section: &'static str, column: &'static str) -> Export {
    Export::In { section, column }
}

const fn withheld(reason: &'static str) -> Export {
    Export::Withheld { reason }
}

use Class::{Activity, Contact, Content, Credential, Identifier, Network, Operational};
use Purpose::{
    Accountability, Authentication, Authorisation, PrivacyRights, SecurityMonitoring, Service,
};

const ACCOUNT: &str = "user_data (after the last sign-in), or until erasure";
const SESSION: &str = "until the session or token expires";
const MODULE: &str = "module_data (after the last run), or until the module is deleted";
const AUDIT: &str = "audit_logs; the person's values are sealed and erased with the account";
const INTERNAL: &str = "internal bookkeeping, not about the person";
const SECRET: &str = "a secret: never leaves the server";

/// Not a table: the module files under `<data dir>/modules/`, sealed per file.
pub const MODULE_STORE: &str = "module files";

/// Every column of every table holding data about a person.
pub const FIELDS: &[Field] = &[
    // users
    f(
        "users",
        "id",
        Identifier,
        Authentication,
        ACCOUNT,
        to("account", "id"),
    ),
    f(
        "users",
        "username",
        Identifier,
        Authentication,
        ACCOUNT,
        to("account", "username"),
    ),
    f(
        "users",
        "email",
        Contact,
        Authentication,
        ACCOUNT,
        to("account", "email"),
    ),
    f(
        "users",
        "password_hash",
        Credential,
        Authentication,
        ACCOUNT,
        to("account", "password_set"),
    ),
    f(
        "users",
        "disabled",
        Operational,
        Authorisation,
        ACCOUNT,
        to("account", "disabled"),
    ),
    f(
        "users",
        "token_version",
        Operational,
        Authentication,
        ACCOUNT,
        withheld(INTERNAL),
    ),
    f(
        "users",
        "created_at",
        Activity,
        Authentication,
        ACCOUNT,
        to("account", "created_at"),
    ),
    f(
        "users",
        "updated_at",
        Activity,
        Authentication,
        ACCOUNT,
        to("account", "updated_at"),
    ),
    f(
        "users",
        "last_login_at",
        Activity,
        Authentication,
        ACCOUNT,
        to("account", "last_login_at"),
    ),
    // user_roles
    f(
        "user_roles",
        "user_id",
        Identifier,
        Authorisation,
        ACCOUNT,
        to("account", "id"),
    ),
    f(
        "user_roles",
        "role_name",
        Operational,
        Authorisation,
        ACCOUNT,
        to("account", "roles"),
    ),
    // federated_identities
    f(
        "federated_identities",
        "id",
        Operational,
        Authentication,
        ACCOUNT,
        withheld(INTERNAL),
    ),
    f(
        "federated_identities",
        "user_id",
        Identifier,
        Authentication,
        ACCOUNT,
        to("account", "id"),
    ),
    f(
        "federated_identities",
        "provider",
        Operational,
        Authentication,
        ACCOUNT,
        to("linked_identities", "provider"),
    ),
    f(
        "federated_identities",
        "subject",
        Identifier,
        Authentication,
        ACCOUNT,
        to("linked_identities", "subject"),
    ),
    f(
        "federated_identities",
        "email",
        Contact,
        Authentication,
        ACCOUNT,
        to("linked_identities", "email"),
    ),
    f(
        "federated_identities",
        "created_at",
        Activity,
        Authentication,
        ACCOUNT,
        to("linked_identities", "created_at"),
    ),
    f(
        "federated_identities",
        "last_login_at",
        Activity,
        Authentication,
        ACCOUNT,
        to("linked_identities", "last_login_at"),
    ),
    // sessions (browser) and refresh_tokens (API sign-ins)
    f(
        "sessions",
        "id",
        Credential,
        Authentication,
        SESSION,
        withheld(SECRET),
    ),
    f(
        "sessions",
        "user_id",
        Identifier,
        Authentication,
        SESSION,
        to("sessions", "kind"),
    ),
    f(
        "sessions",
        "data",
        Credential,
        Authentication,
        SESSION,
        withheld(SECRET),
    ),
    f(
        "sessions",
        "expires_at",
        Activity,
        Authentication,
        SESSION,
        to("sessions", "expires_at"),
    ),
    f(
        "refresh_tokens",
        "id",
        Credential,
        Authentication,
        SESSION,
        withheld(SECRET),
    ),
    f(
        "refresh_tokens",
        "family_id",
        Operational,
        Authentication,
        SESSION,
        withheld(INTERNAL),
    ),
    f(
        "refresh_tokens",
        "user_id",
        Identifier,
        Authentication,
        SESSION,
        to("sessions", "kind"),
    ),
    f(
        "refresh_tokens",
        "used",
        Operational,
        Authentication,
        SESSION,
        to("sessions", "state"),
    ),
    f(
        "refresh_tokens",
        "revoked",
        Operational,
        Authentication,
        SESSION,
        to("sessions", "state"),
    ),
    f(
        "refresh_tokens",
        "issued_at",
        Activity,
        Authentication,
        SESSION,
        to("sessions", "started_at"),
    ),
    f(
        "refresh_tokens",
        "expires_at",
        Activity,
        Authentication,
        SESSION,
        to("sessions", "expires_at"),
    ),
    // api_tokens
    f(
        "api_tokens",
        "id",
        Operational,
        Authentication,
        ACCOUNT,
        to("api_tokens", "id"),
    ),
    f(
        "api_tokens",
        "user_id",
        Identifier,
        Authentication,
        ACCOUNT,
        to("account", "id"),
    ),
    f(
        "api_tokens",
        "name",
        Content,
        Authentication,
        ACCOUNT,
        to("api_tokens", "name"),
    ),
    f(
        "api_tokens",
        "token_hash",
        Credential,
        Authentication,
        ACCOUNT,
        withheld(SECRET),
    ),
    f(
        "api_tokens",
        "hint",
        Operational,
        Authentication,
        ACCOUNT,
        to("api_tokens", "hint"),
    ),
    f(
        "api_tokens",
        "permissions",
        Operational,
        Authorisation,
        ACCOUNT,
        to("api_tokens", "permissions"),
    ),
    f(
        "api_tokens",
        "created_at",
        Activity,
        Authentication,
        ACCOUNT,
        to("api_tokens", "created_at"),
    ),
    f(
        "api_tokens",
        "expires_at",
        Operational,
        Authentication,
        ACCOUNT,
        to("api_tokens", "expires_at"),
    ),
    f(
        "api_tokens",
        "last_used_at",
        Activity,
        Authentication,
        ACCOUNT,
        to("api_tokens", "last_used_at"),
    ),
    f(
        "api_tokens",
        "revoked_at",
        Activity,
        Authentication,
        ACCOUNT,
        to("api_tokens", "revoked_at"),
    ),
    // second factors
    f(
        "mfa_factors",
        "id",
        Operational,
        Authentication,
        ACCOUNT,
        withheld(INTERNAL),
    ),
    f(
        "mfa_factors",
        "user_id",
        Identifier,
        Authentication,
        ACCOUNT,
        to("account", "id"),
    ),
    f(
        "mfa_factors",
        "kind",
        Operational,
        Authentication,
        ACCOUNT,
        to("second_factors", "kind"),
    ),
    f(
        "mfa_factors",
        "name",
        Content,
        Authentication,
        ACCOUNT,
        to("second_factors", "name"),
    ),
    f(
        "mfa_factors",
        "secret",
        Credential,
        Authentication,
        ACCOUNT,
        withheld(SECRET),
    ),
    f(
        "mfa_factors",
        "confirmed",
        Operational,
        Authentication,
        ACCOUNT,
        withheld("an unconfirmed factor is not exported"),
    ),
    f(
        "mfa_factors",
        "last_step",
        Operational,
        Authentication,
        ACCOUNT,
        withheld(INTERNAL),
    ),
    f(
        "mfa_factors",
        "created_at",
        Activity,
        Authentication,
        ACCOUNT,
        to("second_factors", "created_at"),
    ),
    f(
        "mfa_factors",
        "last_used_at",
        Activity,
        Authentication,
        ACCOUNT,
        to("second_factors", "last_used_at"),
    ),
    f(
        "mfa_factors",
        "credential_key",
        Credential,
        Authentication,
        ACCOUNT,
        withheld(SECRET),
    ),
    f(
        "mfa_recovery_codes",
        "id",
        Operational,
        Authentication,
        ACCOUNT,
        withheld(INTERNAL),
    ),
    f(
        "mfa_recovery_codes",
        "user_id",
        Identifier,
        Authentication,
        ACCOUNT,
        to("account", "id"),
    ),
    f(
        "mfa_recovery_codes",
        "code_hash",
        Credential,
        Authentication,
        ACCOUNT,
        withheld(SECRET),
    ),
    f(
        "mfa_recovery_codes",
        "created_at",
        Activity,
        Authentication,
        ACCOUNT,
        to("second_factors", "created_at"),
    ),
    f(
        "mfa_recovery_codes",
        "used_at",
        Activity,
        Authentication,
        ACCOUNT,
        to("second_factors", "remaining"),
    ),
    f(
        "mfa_lockouts",
        "user_id",
        Identifier,
        SecurityMonitoring,
        ACCOUNT,
        withheld("a lockout lasts minutes; the audit events record it"),
    ),
    f(
        "mfa_lockouts",
        "failures",
        Activity,
        SecurityMonitoring,
        ACCOUNT,
        withheld("a lockout lasts minutes; the audit events record it"),
    ),
    f(
        "mfa_lockouts",
        "locked_until",
        Activity,
        SecurityMonitoring,
        ACCOUNT,
        withheld("a lockout lasts minutes; the audit events record it"),
    ),
    f(
        "mfa_challenges",
        "id",
        Credential,
        Authentication,
        SESSION,
        withheld(SECRET),
    ),
    f(
        "mfa_challenges",
        "user_id",
        Identifier,
        Authentication,
        SESSION,
        withheld("a sign-in step lasts minutes"),
    ),
    f(
        "mfa_challenges",
        "method",
        Operational,
        Authentication,
        SESSION,
        withheld("a sign-in step lasts minutes"),
    ),
    f(
        "mfa_challenges",
        "provider",
        Operational,
        Authentication,
        SESSION,
        withheld("a sign-in step lasts minutes"),
    ),
    f(
        "mfa_challenges",
        "created_at",
        Activity,
        Authentication,
        SESSION,
        withheld("a sign-in step lasts minutes"),
    ),
    f(
        "mfa_challenges",
        "expires_at",
        Operational,
        Authentication,
        SESSION,
        withheld("a sign-in step lasts minutes"),
    ),
    f(
        "mfa_challenges",
        "webauthn",
        Credential,
        Authentication,
        SESSION,
        withheld(SECRET),
    ),
    // modules, shares, runs
    f(
        "modules",
        "id",
        Operational,
        Service,
        MODULE,
        to("modules", "id"),
    ),
    Field {
        also: &[("shares", "module_name")],
        ..f(
            "modules",
            "name",
            Content,
            Service,
            MODULE,
            to("modules", "name"),
        )
    },
    f(
        "modules",
        "description",
        Content,
        Service,
        MODULE,
        to("modules", "description"),
    ),
    f(
        "modules",
        "owner_id",
        Identifier,
        Authorisation,
        MODULE,
        to("account", "id"),
    ),
    f(
        "modules",
        "sha256",
        Operational,
        Service,
        MODULE,
        to("modules", "sha256"),
    ),
    f(
        MODULE_STORE,
        "content",
        Content,
        Service,
        MODULE,
        to("modules", "binary"),
    ),
    f(
        "modules",
        "size_bytes",
        Operational,
        Service,
        MODULE,
        to("modules", "size_bytes"),
    ),
    f(
        "modules",
        "kind",
        Operational,
        Service,
        MODULE,
        to("modules", "kind"),
    ),
    f(
        "modules",
        "status",
        Operational,
        Service,
        MODULE,
        to("modules", "status"),
    ),
    f(
        "modules",
        "risk_score",
        Operational,
        SecurityMonitoring,
        MODULE,
        to("modules", "risk_score"),
    ),
    f(
        "modules",
        "suspicious",
        Operational,
        SecurityMonitoring,
        MODULE,
        to("modules", "suspicious"),
    ),
    f(
        "modules",
        "analysis",
        Operational,
        SecurityMonitoring,
        MODULE,
        withheld("the analyser's findings about the binary, not the person"),
    ),
    f(
        "modules",
        "policy_hash",
        Operational,
        Service,
        MODULE,
        withheld(INTERNAL),
    ),
    f(
        "modules",
        "capability_group",
        Operational,
        Authorisation,
        MODULE,
        to("modules", "capability_group"),
    ),
    f(
        "modules",
        "review_note",
        Content,
        SecurityMonitoring,
        MODULE,
        to("modules", "review_note"),
    ),
    f(
        "modules",
        "created_at",
        Activity,
        Service,
        MODULE,
        to("modules", "created_at"),
    ),
    f(
        "modules",
        "updated_at",
        Activity,
        Service,
        MODULE,
        to("modules", "updated_at"),
    ),
    f(
        "modules",
        "last_run_at",
        Activity,
        Service,
        MODULE,
        to("modules", "last_run_at"),
    ),
    f(
        "module_shares",
        "module_id",
        Operational,
        Authorisation,
        MODULE,
        to("shares", "module_id"),
    ),
    Field {
        also: &[("shares", "direction")],
        ..f(
            "module_shares",
            "grantee_kind",
            Operational,
            Authorisation,
            MODULE,
            to("shares", "grantee_kind"),
        )
    },
    f(
        "module_shares",
        "grantee",
        Identifier,
        Authorisation,
        MODULE,
        to("shares", "grantee"),
    ),
    f(
        "module_shares",
        "created_at",
        Activity,
        Authorisation,
        MODULE,
        to("shares", "created_at"),
    ),
    f(
        "module_runs",
        "id",
        Operational,
        Service,
        MODULE,
        to("runs", "id"),
    ),
    f(
        "module_runs",
        "module_id",
        Operational,
        Service,
        MODULE,
        to("runs", "module_id"),
    ),
    f(
        "module_runs",
        "user_id",
        Identifier,
        Service,
        MODULE,
        to("account", "id"),
    ),
    f(
        "module_runs",
        "actor",
        Identifier,
        Service,
        MODULE,
        withheld("the person's own name, in the account section"),
    ),
    f(
        "module_runs",
        "mode",
        Operational,
        Service,
        MODULE,
        to("runs", "mode"),
    ),
    f(
        "module_runs",
        "outcome",
        Activity,
        Service,
        MODULE,
        to("runs", "outcome"),
    ),
    f(
        "module_runs",
        "duration_us",
        Operational,
        Service,
        MODULE,
        to("runs", "duration_us"),
    ),
    f(
        "module_runs",
        "peak_memory_bytes",
        Operational,
        Service,
        MODULE,
        to("runs", "peak_memory_bytes"),
    ),
    f(
        "module_runs",
        "iterations",
        Operational,
        Service,
        MODULE,
        to("runs", "iterations"),
    ),
    f(
        "module_runs",
        "result",
        Content,
        Service,
        MODULE,
        to("runs", "result"),
    ),
    f(
        "module_runs",
        "started_at",
        Activity,
        Service,
        MODULE,
        to("runs", "started_at"),
    ),
    // the audit trail
    f(
        "audit_logs",
        "id",
        Operational,
        Accountability,
        AUDIT,
        to("audit_events", "id"),
    ),
    f(
        "audit_logs",
        "occurred_at",
        Activity,
        Accountability,
        AUDIT,
        to("audit_events", "occurred_at"),
    ),
    f(
        "audit_logs",
        "event",
        Activity,
        Accountability,
        AUDIT,
        to("audit_events", "event"),
    ),
    f(
        "audit_logs",
        "actor_id",
        Identifier,
        Accountability,
        AUDIT,
        to("audit_events", "actor_id"),
    ),
    f(
        "audit_logs",
        "actor_name",
        Identifier,
        Accountability,
        AUDIT,
        to("audit_events", "actor_name"),
    ),
    Field {
        reduced: Some((AnonymizedField::IpAddress, "ip_net")),
        ..f(
            "audit_logs",
            "source_ip",
            Network,
            SecurityMonitoring,
            AUDIT,
            to("audit_events", "source_ip"),
        )
    },
    Field {
        reduced: Some((AnonymizedField::UserAgent, "ua_family")),
        ..f(
            "audit_logs",
            "user_agent",
            Network,
            SecurityMonitoring,
            AUDIT,
            to("audit_events", "user_agent"),
        )
    },
    f(
        "audit_logs",
        "ip_net",
        Network,
        SecurityMonitoring,
        AUDIT,
        to("audit_events", "source_ip"),
    ),
    f(
        "audit_logs",
        "ua_family",
        Network,
        SecurityMonitoring,
        AUDIT,
        to("audit_events", "user_agent"),
    ),
    f(
        "audit_logs",
        "target_type",
        Operational,
        Accountability,
        AUDIT,
        to("audit_events", "target_type"),
    ),
    f(
        "audit_logs",
        "target_id",
        Identifier,
        Accountability,
        AUDIT,
        to("audit_events", "target_id"),
    ),
    f(
        "audit_logs",
        "outcome",
        Activity,
        Accountability,
        AUDIT,
        to("audit_events", "outcome"),
    ),
    f(
        "audit_logs",
        "details",
        Activity,
        Accountability,
        AUDIT,
        to("audit_events", "details"),
    ),
    f(
        "audit_logs",
        "seq",
        Operational,
        Accountability,
        AUDIT,
        withheld("the hash chain's position"),
    ),
    f(
        "audit_logs",
        "prev_hash",
        Operational,
        Accountability,
        AUDIT,
        withheld("the hash chain"),
    ),
    f(
        "audit_logs",
        "hash",
        Operational,
        Accountability,
        AUDIT,
        withheld("the hash chain"),
    ),
    f(
        "audit_logs",
        "pii",
        Identifier,
        Accountability,
        AUDIT,
        to("audit_events", "actor_name"),
    ),
    f(
        "audit_logs",
        "subjects",
        Identifier,
        Accountability,
        AUDIT,
        withheld("pseudonyms: the sealed values are exported in their columns"),
    ),
    f(
        "audit_subjects",
        "pseudonym",
        Identifier,
        Accountability,
        AUDIT,
        withheld(INTERNAL),
    ),
    f(
        "audit_subjects",
        "user_key",
        Identifier,
        Accountability,
        AUDIT,
        withheld(INTERNAL),
    ),
    f(
        "audit_subjects",
        "wrapped_key",
        Credential,
        Accountability,
        AUDIT,
        withheld(SECRET),
    ),
    f(
        "audit_subjects",
        "state",
        Operational,
        Accountability,
        AUDIT,
        withheld(INTERNAL),
    ),
    f(
        "audit_subjects",
        "created_at",
        Operational,
        Accountability,
        AUDIT,
        withheld(INTERNAL),
    ),
    f(
        "audit_subjects",
        "erased_at",
        Operational,
        PrivacyRights,
        AUDIT,
        withheld(INTERNAL),
    ),
    // privacy rights
    Field {
        reduced: Some((AnonymizedField::Email, "digest")),
        ..f(
            "erased_emails",
            "digest",
            Contact,
            PrivacyRights,
            "for good: only a keyed hash, so an erased address cannot sign up again unnoticed",
            withheld("only a keyed hash of an erased account's address"),
        )
    },
    f(
        "erased_emails",
        "erased_at",
        Operational,
        PrivacyRights,
        "for good, with the digest",
        withheld("only a keyed hash of an erased account's address"),
    ),
    f(
        "data_exports",
        "id",
        Operational,
        PrivacyRights,
        "until downloaded or expired",
        withheld(INTERNAL),
    ),
    f(
        "data_exports",
        "user_id",
        Identifier,
        PrivacyRights,
        "until downloaded or expired",
        withheld("the export itself"),
    ),
    f(
        "data_exports",
        "requested_by",
        Identifier,
        PrivacyRights,
        "until downloaded or expired",
        withheld("the export itself"),
    ),
    f(
        "data_exports",
        "format",
        Operational,
        PrivacyRights,
        "until downloaded or expired",
        withheld("the export itself"),
    ),
    f(
        "data_exports",
        "encryption",
        Operational,
        PrivacyRights,
        "until downloaded or expired",
        withheld("the export itself"),
    ),
    f(
        "data_exports",
        "include_binaries",
        Operational,
        PrivacyRights,
        "until downloaded or expired",
        withheld("the export itself"),
    ),
    f(
        "data_exports",
        "status",
        Operational,
        PrivacyRights,
        "until downloaded or expired",
        withheld("the export itself"),
    ),
    f(
        "data_exports",
        "progress",
        Operational,
        PrivacyRights,
        "until downloaded or expired",
        withheld("the export itself"),
    ),
    f(
        "data_exports",
        "error",
        Operational,
        PrivacyRights,
        "until downloaded or expired",
        withheld("the export itself"),
    ),
    f(
        "data_exports",
        "size_bytes",
        Operational,
        PrivacyRights,
        "until downloaded or expired",
        withheld("the export itself"),
    ),
    f(
        "data_exports",
        "created_at",
        Activity,
        PrivacyRights,
        "until downloaded or expired",
        withheld("the export itself"),
    ),
    f(
        "data_exports",
        "updated_at",
        Operational,
        PrivacyRights,
        "until downloaded or expired",
        withheld("the export itself"),
    ),
    f(
        "data_exports",
        "finished_at",
        Operational,
        PrivacyRights,
        "until downloaded or expired",
        withheld("the export itself"),
    ),
    f(
        "data_exports",
        "expires_at",
        Operational,
        PrivacyRights,
        "until downloaded or expired",
        withheld("the export itself"),
    ),
    f(
        "data_exports",
        "downloaded_at",
        Activity,
        PrivacyRights,
        "until downloaded or expired",
        withheld("the export itself"),
    ),
];

impl super::Compliance {
    /// The classification table, for the Compliance page (`system:audit`).
    pub async fn classification(
        &self,
        principal: &crate::access::Principal,
    ) -> Result<&'static [Field], super::ComplianceError> {
        principal
            .require(&self.audit, "system", "audit", "data classification")
            .await?;
        Ok(FIELDS)
    }
}

/// The database tables [`FIELDS`] covers, each with every column.
pub fn tables() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for f in FIELDS {
        if f.table != MODULE_STORE && !out.contains(&f.table) {
            out.push(f.table);
        }
    }
    out
}

/// The columns of `table` anonymisation reduces for privacy.yml's `field`, each with the column
/// holding its reduced form.
pub fn reduced(table: &str, field: AnonymizedField) -> Vec<(&'static str, &'static str)> {
    FIELDS
        .iter()
        .filter(|f| f.table == table)
        .filter_map(|f| match f.reduced {
            Some((a, into)) if a == field => Some((f.column, into)),
            _ => None,
        })
        .collect()
}

/// The export columns of `section` the table names.
pub fn exported(section: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    for f in FIELDS {
        let main = match f.export {
            Export::In { section, column } => Some((section, column)),
            Export::Withheld { .. } => None,
        };
        for (s, column) in main.into_iter().chain(f.also.iter().copied()) {
            if s == section && !out.contains(&column) {
                out.push(column);
            }
        }
    }
    out
}

/// Disagreements between the table and the export's sections (`(section, columns)`): columns
/// the export writes that the table does not send there, and the reverse. Empty when they agree.
pub fn export_disagreements(sections: &[(&str, &[&str])]) -> Vec<String> {
    let mut out = Vec::new();
    for (name, columns) in sections {
        let classified = exported(name);
        for c in columns.iter().filter(|c| !classified.contains(c)) {
            out.push(format!(
                "the export writes {name}.{c}, which no classified field feeds"
            ));
        }
        for c in classified.iter().filter(|c| !columns.contains(c)) {
            out.push(format!(
                "{name}.{c} is classified as exported but the export does not write it"
            ));
        }
    }
    for f in FIELDS {
        if let Export::In { section, .. } = f.export
            && !sections.iter().any(|(n, _)| *n == section)
        {
            out.push(format!(
                "{}.{} is classified into export section {section}, which does not exist",
                f.table, f.column
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_classified_once() {
        let mut seen = std::collections::BTreeSet::new();
        for f in FIELDS {
            assert!(
                seen.insert((f.table, f.column)),
                "{}.{} twice",
                f.table,
                f.column
            );
        }
    }

    #[test]
    fn credentials_are_never_exported_as_values() {
        for f in FIELDS.iter().filter(|f| f.class == Class::Credential) {
            // A password hash is only shown as whether one is set.
            if let Export::In { column, .. } = f.export {
                assert_eq!((f.table, column), ("users", "password_set"));
            }
        }
    }

    #[test]
    fn the_export_writes_exactly_what_is_classified() {
        let problems = export_disagreements(&crate::compliance::export::sections());
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn anonymisation_reduces_the_audit_columns() {
        assert_eq!(
            reduced("audit_logs", AnonymizedField::IpAddress),
            vec![("source_ip", "ip_net")]
        );
        assert_eq!(
            reduced("audit_logs", AnonymizedField::UserAgent),
            vec![("user_agent", "ua_family")]
        );
    }
}
