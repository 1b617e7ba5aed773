use serde::{Deserialize, Serialize};

/// The kinds of audit event: the spec's names, then the platform's further security events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    LoginSuccess,
    LoginFailure,
    Logout,
    TokenRefresh,
    PermissionDenied,
    RoleChange,
    ModuleUpload,
    ModuleDelete,
    ModuleExecute,
    ConfigChange,
    UserCreate,
    UserDelete,
    ServiceStart,
    ServiceStop,
    // Beyond the spec.
    UserUpdate,
    UserDisable,
    UserEnable,
    ModuleQuarantine,
    ModuleRelease,
    ModuleShare,
    SandboxViolation,
    SnapshotCreate,
    SnapshotRestore,
    DataExport,
    DataErasure,
    IpBlocked,
    ApiTokenCreate,
    ApiTokenRevoke,
    IdentityLink,
    IdentityUnlink,
    RetentionRun,
    RateLimitExceeded,
    IpUnblocked,
    IdsTriggered,
    AlertSent,
    MfaEnrolled,
    MfaRemoved,
    MfaSuccess,
    MfaFailure,
    RecoveryCodeUsed,
    MfaReset,
}

impl EventKind {
    /// Every kind, the spec's first.
    pub const ALL: [Self; 41] = [
        Self::LoginSuccess,
        Self::LoginFailure,
        Self::Logout,
        Self::TokenRefresh,
        Self::PermissionDenied,
        Self::RoleChange,
        Self::ModuleUpload,
        Self::ModuleDelete,
        Self::ModuleExecute,
        Self::ConfigChange,
        Self::UserCreate,
        Self::UserDelete,
        Self::ServiceStart,
        Self::ServiceStop,
        Self::UserUpdate,
        Self::UserDisable,
        Self::UserEnable,
        Self::ModuleQuarantine,
        Self::ModuleRelease,
        Self::ModuleShare,
        Self::SandboxViolation,
        Self::SnapshotCreate,
        Self::SnapshotRestore,
        Self::DataExport,
        Self::DataErasure,
        Self::IpBlocked,
        Self::ApiTokenCreate,
        Self::ApiTokenRevoke,
        Self::IdentityLink,
        Self::IdentityUnlink,
        Self::RetentionRun,
        Self::RateLimitExceeded,
        Self::IpUnblocked,
        Self::IdsTriggered,
        Self::AlertSent,
        Self::MfaEnrolled,
        Self::MfaRemoved,
        Self::MfaSuccess,
        Self::MfaFailure,
        Self::RecoveryCodeUsed,
        Self::MfaReset,
    ];

    /// Whether the spec's audit.yml names this event (and so decides whether it is recorded).
    pub const fn named_in_spec(self) -> bool {
        (self as u8) <= (Self::ServiceStop as u8)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginSuccess => "login_success",
            Self::LoginFailure => "login_failure",
            Self::Logout => "logout",
            Self::TokenRefresh => "token_refresh",
            Self::PermissionDenied => "permission_denied",
            Self::RoleChange => "role_change",
            Self::ModuleUpload => "module_upload",
            Self::ModuleDelete => "module_delete",
            Self::ModuleExecute => "module_execute",
            Self::ConfigChange => "config_change",
            Self::UserCreate => "user_create",
            Self::UserDelete => "user_delete",
            Self::ServiceStart => "service_start",
            Self::ServiceStop => "service_stop",
            Self::UserUpdate => "user_update",
            Self::UserDisable => "user_disable",
            Self::UserEnable => "user_enable",
            Self::ModuleQuarantine => "module_quarantine",
            Self::ModuleRelease => "module_release",
            Self::ModuleShare => "module_share",
            Self::SandboxViolation => "sandbox_violation",
            Self::SnapshotCreate => "snapshot_create",
            Self::SnapshotRestore => "snapshot_restore",
            Self::DataExport => "data_export",
            Self::DataErasure => "data_erasure",
            Self::IpBlocked => "ip_blocked",
            Self::ApiTokenCreate => "api_token_create",
            Self::ApiTokenRevoke => "api_token_revoke",
            Self::IdentityLink => "identity_link",
            Self::IdentityUnlink => "identity_unlink",
            Self::RetentionRun => "retention_run",
            Self::RateLimitExceeded => "rate_limit_exceeded",
            Self::IpUnblocked => "ip_unblocked",
            Self::IdsTriggered => "ids_triggered",
            Self::AlertSent => "alert_sent",
            Self::MfaEnrolled => "mfa_enrolled",
            Self::MfaRemoved => "mfa_removed",
            Self::MfaSuccess => "mfa_success",
            Self::MfaFailure => "mfa_failure",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::MfaReset => "mfa_reset",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// Who acted: a user, or the system itself (CLI, scheduler, start-up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: Option<String>,
    pub name: String,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            id: None,
            name: "system".to_string(),
        }
    }

    pub fn user(id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            id: Some(id.into()),
            name: name.into(),
        }
    }
}

/// What the event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
        }
    }
}

/// One audit event before it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    #[serde(rename = "event")]
    pub kind: EventKind,
    pub actor: Actor,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// privacy.yml `data_anonymization`: the client's network (IPv4 /24, IPv6 /48), kept after
    /// `ip` is dropped (`anonymise.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_net: Option<String>,
    /// The user agent's family and major version, kept after `user_agent` is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ua_family: Option<String>,
    pub target: Option<Target>,
    pub outcome: Outcome,
    pub details: serde_json::Value,
}

impl AuditEvent {
    pub fn new(kind: EventKind, actor: Actor, outcome: Outcome) -> Self {
        Self {
            kind,
            actor,
            ip: None,
            user_agent: None,
            ip_net: None,
            ua_family: None,
            target: None,
            outcome,
            details: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn with_target(mut self, kind: impl Into<String>, id: impl Into<String>) -> Self {
        self.target = Some(Target {
            kind: kind.into(),
            id: id.into(),
        });
        self
    }

    pub fn with_client(mut self, ip: Option<String>, user_agent: Option<String>) -> Self {
        self.ip = ip;
        self.user_agent = user_agent;
        self
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_the_specs_snake_case_names() {
        assert_eq!(EventKind::LoginFailure.as_str(), "login_failure");
        assert_eq!(
            serde_json::to_string(&EventKind::ModuleExecute).unwrap(),
            "\"module_execute\""
        );
        assert_eq!(
            EventKind::parse("permission_denied"),
            Some(EventKind::PermissionDenied)
        );
        assert_eq!(EventKind::parse("reboot"), None);
    }

    #[test]
    fn only_the_specs_events_are_governed_by_audit_yml() {
        assert!(EventKind::ServiceStop.named_in_spec());
        assert!(EventKind::LoginSuccess.named_in_spec());
        assert!(!EventKind::UserUpdate.named_in_spec());
        assert!(!EventKind::SandboxViolation.named_in_spec());
    }
}
