//! How many runs may be in progress at once: per user, per module and in all (the sandbox's
//! instance pool), so that one user cannot take every instance. A run holds a [`RunPermit`]
//! from before it is prepared until it has finished; the permit gives its places back when it is
//! dropped, however the run ends (result, error, panic, or a cancelled request).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Which bound refused a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyScope {
    /// `sandbox.resource_limits.max_concurrent_runs_per_user`.
    User,
    /// `sandbox.resource_limits.max_concurrent_runs_per_module`.
    Module,
    /// Every instance of the sandbox is in use.
    Sandbox,
}

impl BusyScope {
    /// As named in audit details.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "per_user",
            Self::Module => "per_module",
            Self::Sandbox => "sandbox",
        }
    }
}

/// A run refused because too many are in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    #[error(
        "you already have {limit} run(s) in progress, the most one user may have at once; try again when one has finished"
    )]
    User { limit: u32 },
    #[error(
        "this module already has {limit} run(s) in progress, the most one module may have at once; try again when one has finished"
    )]
    Module { limit: u32 },
    #[error("the sandbox is running as many modules as it can ({limit}); try again shortly")]
    Sandbox { limit: u32 },
}

impl Busy {
    pub fn scope(&self) -> BusyScope {
        match self {
            Self::User { .. } => BusyScope::User,
            Self::Module { .. } => BusyScope::Module,
            Self::Sandbox { .. } => BusyScope::Sandbox,
        }
    }

    pub fn limit(&self) -> u32 {
        match self {
            Self::User { limit } | Self::Module { limit } | Self::Sandbox { limit } => *limit,
        }
    }
}

#[derive(Default)]
struct Counts {
    users: HashMap<String, u32>,
    modules: HashMap<String, u32>,
    total: u32,
}

/// The bounds and the runs in progress; one per process, shared by every run.
pub struct RunSlots {
    per_user: u32,
    per_module: u32,
    total: u32,
    counts: Mutex<Counts>,
}

impl std::fmt::Debug for RunSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSlots")
            .field("per_user", &self.per_user)
            .field("per_module", &self.per_module)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// One run's places; given back on drop. Entries at zero are removed, so the counts hold only
/// the users and modules with runs in progress.
#[derive(Debug)]
pub struct RunPermit {
    slots: Arc<RunSlots>,
    user: String,
    module: String,
}

impl RunSlots {
    pub fn new(per_user: u32, per_module: u32, total: u32) -> Arc<Self> {
        Arc::new(Self {
            per_user,
            per_module,
            total,
            counts: Mutex::default(),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a run of `module` by `user`, or which bound is reached (nothing is taken).
    pub fn try_acquire(self: &Arc<Self>, user: &str, module: &str) -> Result<RunPermit, Busy> {
        let mut counts = self.counts();
        if counts.users.get(user).copied().unwrap_or(0) >= self.per_user {
            return Err(Busy::User {
                limit: self.per_user,
            });
        }
        if counts.modules.get(module).copied().unwrap_or(0) >= self.per_module {
            return Err(Busy::Module {
                limit: self.per_module,
            });
        }
        if counts.total >= self.total {
            return Err(Busy::Sandbox { limit: self.total });
        }
        *counts.users.entry(user.to_string()).or_insert(0) += 1;
        *counts.modules.entry(module.to_string()).or_insert(0) += 1;
        counts.total += 1;
        Ok(RunPermit {
            slots: self.clone(),
            user: user.to_string(),
            module: module.to_string(),
        })
    }

    /// Runs in progress: in all, of `user`, of `module`.
    pub fn in_progress(&self, user: &str, module: &str) -> (u32, u32, u32) {
        let counts = self.counts();
        (
            counts.total,
            counts.users.get(user).copied().unwrap_or(0),
            counts.modules.get(module).copied().unwrap_or(0),
        )
    }
}

fn release(map: &mut HashMap<String, u32>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Drop for RunPermit {
    fn drop(&mut self) {
        let mut counts = self.slots.counts();
        release(&mut counts.users, &self.user);
        release(&mut counts.modules, &self.module);
        counts.total = counts.total.saturating_sub(1);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_exactly_the_per_user_limit_and_others_are_not_affected() {
        let slots = RunSlots::new(2, 10, 10);
        let _a = slots.try_acquire("alice", "m1").unwrap();
        let _b = slots.try_acquire("alice", "m2").unwrap();
        assert_eq!(
            slots.try_acquire("alice", "m3").unwrap_err(),
            Busy::User { limit: 2 }
        );
        let _c = slots.try_acquire("bob", "m1").unwrap();
        assert_eq!(slots.in_progress("alice", "m1"), (3, 2, 2));
    }

    #[test]
    fn a_module_gets_exactly_the_per_module_limit_across_users() {
        let slots = RunSlots::new(10, 2, 10);
        let _a = slots.try_acquire("alice", "m").unwrap();
        let _b = slots.try_acquire("bob", "m").unwrap();
        let busy = slots.try_acquire("carol", "m").unwrap_err();
        assert_eq!(busy, Busy::Module { limit: 2 });
        assert_eq!(busy.scope(), BusyScope::Module);
        let _c = slots.try_acquire("carol", "other").unwrap();
    }

    #[test]
    fn the_sandbox_total_bounds_everyone() {
        let slots = RunSlots::new(10, 10, 2);
        let _a = slots.try_acquire("a", "m1").unwrap();
        let _b = slots.try_acquire("b", "m2").unwrap();
        assert_eq!(
            slots.try_acquire("c", "m3").unwrap_err(),
            Busy::Sandbox { limit: 2 }
        );
    }

    #[test]
    fn a_refusal_takes_nothing_and_a_dropped_permit_gives_its_places_back() {
        let slots = RunSlots::new(1, 1, 1);
        let permit = slots.try_acquire("alice", "m").unwrap();
        assert!(slots.try_acquire("alice", "m").is_err());
        assert_eq!(slots.in_progress("alice", "m"), (1, 1, 1));
        drop(permit);
        assert_eq!(slots.in_progress("alice", "m"), (0, 0, 0));
        assert!(slots.counts().users.is_empty() && slots.counts().modules.is_empty());
        let _again = slots.try_acquire("alice", "m").unwrap();
    }

    #[test]
    fn a_permit_is_given_back_when_the_run_returns_an_error() {
        let slots = RunSlots::new(1, 1, 1);
        let run = |slots: &Arc<RunSlots>| -> Result<(), &'static str> {
            let _permit = slots.try_acquire("alice", "m").map_err(|_| "busy")?;
            Err("the run failed")
        };
        assert_eq!(run(&slots), Err("the run failed"));
        assert_eq!(run(&slots), Err("the run failed"), "not busy: released");
        assert_eq!(slots.in_progress("alice", "m"), (0, 0, 0));
    }

    #[test]
    fn a_permit_is_given_back_when_the_run_panics() {
        let slots = RunSlots::new(1, 1, 1);
        let inner = slots.clone();
        let result = std::panic::catch_unwind(move || {
            let _permit = inner.try_acquire("alice", "m").unwrap();
            panic!("the run panicked");
        });
        assert!(result.is_err());
        assert_eq!(slots.in_progress("alice", "m"), (0, 0, 0));
        slots.try_acquire("alice", "m").unwrap();
    }

    #[tokio::test]
    async fn a_permit_is_given_back_when_the_run_is_cancelled() {
        let slots = RunSlots::new(1, 1, 1);
        let inner = slots.clone();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let _permit = inner.try_acquire("alice", "m").unwrap();
            let _ = started_tx.send(());
            std::future::pending::<()>().await;
        });
        started.await.unwrap();
        assert!(
            slots.try_acquire("alice", "m").is_err(),
            "held while running"
        );
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(slots.in_progress("alice", "m"), (0, 0, 0));
        slots.try_acquire("alice", "m").unwrap();
    }
}
