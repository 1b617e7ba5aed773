//! Refusals in one place: every service decides a permission with [`Principal::require`] (or
//! refuses with [`Principal::deny`] after a decision of its own, such as a share check), and both
//! record the refusal as one `permission_denied` audit event naming the permission, the target
//! and why. No service builds that event itself; the one other refusal, a cross-site write refused
//! by the HTTP layer before any service runs, builds it with [`denied_event`] too.

use crate::{
    access::Principal,
    audit::{Actor, AuditError, AuditEvent, AuditService, EventKind, Outcome},
    identity::IdentityError,
    modules::ModuleError,
    security::SecurityError,
};

/// The `permission_denied` event: `actor` was refused; `details` say what and why.
pub fn denied_event(actor: Actor, details: serde_json::Value) -> AuditEvent {
    AuditEvent::new(EventKind::PermissionDenied, actor, Outcome::Denied).with_details(details)
}

/// A refusal, already recorded; or the audit event of the refusal could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum Denial {
    /// The principal lacks this permission (`resource:action`).
    #[error("permission denied: {0} is required")]
    Forbidden(String),
    /// The refusal could not be recorded, so it is not reported as a plain refusal either.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl Principal {
    /// Who acted, as audit events name them.
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.id().map(str::to_string),
            name: self.name().to_string(),
        }
    }

    /// Holds `resource:action` (or `resource:*`), or is refused and the refusal is recorded.
    pub async fn require(
        &self,
        audit: &AuditService,
        resource: &str,
        action: &str,
        target: &str,
    ) -> Result<(), Denial> {
        if self.can(resource, action) {
            return Ok(());
        }
        Err(self
            .deny(audit, &format!("{resource}:{action}"), target, None)
            .await)
    }

    /// Records that `permission` on `target` was refused (and `reason`, when the decision was more
    /// than a missing permission) and returns the refusal.
    pub async fn deny(
        &self,
        audit: &AuditService,
        permission: &str,
        target: &str,
        reason: Option<&str>,
    ) -> Denial {
        let mut details = serde_json::json!({ "permission": permission, "target": target });
        if let Some(reason) = reason {
            details["reason"] = serde_json::json!(reason);
        }
        match audit.record(denied_event(self.actor(), details)).await {
            Ok(_) => Denial::Forbidden(permission.to_string()),
            Err(e) => Denial::Audit(e),
        }
    }
}

// Each service error takes a refusal as its own `Forbidden`, and a failure to record it as the
// audit failure it is.

impl From<Denial> for IdentityError {
    fn from(d: Denial) -> Self {
        match d {
            Denial::Forbidden(permission) => Self::Forbidden(permission),
            Denial::Audit(e) => Self::Audit(e),
        }
    }
}

impl From<Denial> for AuditError {
    fn from(d: Denial) -> Self {
        match d {
            Denial::Forbidden(_) => Self::Forbidden,
            Denial::Audit(e) => e,
        }
    }
}

impl From<Denial> for SecurityError {
    fn from(d: Denial) -> Self {
        match d {
            Denial::Forbidden(permission) => Self::Forbidden(permission),
            Denial::Audit(e) => Self::Audit(e),
        }
    }
}

impl From<Denial> for ModuleError {
    fn from(d: Denial) -> Self {
        match d {
            Denial::Forbidden(permission) => Self::Forbidden(permission),
            Denial::Audit(e) => Self::Audit(e),
        }
    }
}
