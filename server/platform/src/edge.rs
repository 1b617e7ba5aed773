//! The edge: IP lists, rate limits and intrusion detection (rate_limit.yml, ids.yml).
//!
//! Two entry points:
//! - [`Edge::gate`] runs for every HTTP request before any other work: the blacklist (403), the
//!   whitelist (no limits, never blocked), addresses blocked by an ids.yml rule (403), then the
//!   `global` and `per_user` budgets and the `per_endpoint` budgets of paths that are not actions.
//! - [`Edge::admit`] runs inside the services for the three actions the spec's `per_endpoint`
//!   paths name: signing in (`/api/v1/auth/login`, and the dashboard's sign-in form), uploading
//!   (`/api/v1/modules`, and the dashboard's upload) and running (`/api/v1/modules/*/execute`, and
//!   the dashboard's Run). One budget per action and caller, whatever door the request came
//!   through; runs also obey ids.yml throttles.
//!
//! Intrusion detection watches the audit events as services record them ([`Edge::observe`],
//! called by [`crate::AuditService::record`]) and acts: `block_ip`, `throttle`, `alert`;
//! `quarantine` is applied by the upload analysis ([`ids::upload_policy`]).
//!
//! Refusals count in `rate_limit_violations_total{scope}` one by one, and are audited as
//! `rate_limit_exceeded` at most once a minute per caller and scope, with the number refused
//! since (a flood cannot flood the audit log).

pub mod address;
pub mod alerts;
pub mod condition;
pub mod ids;
pub mod limiter;
pub mod redis_store;
pub mod store;

use std::{
    collections::BTreeSet,
    net::IpAddr,
    num::NonZeroUsize,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use lru::LruCache;

use self::{
    limiter::{Pattern, Rate, Take},
    store::{Block, Store, StoreError, Throttle},
};
use crate::{
    access::Principal,
    audit::{Actor, AuditEvent, AuditService, EventKind, Outcome},
    clock::Clock,
    config::{Config, ids::Action as RuleAction},
    metrics::Metrics,
};

tokio::task_local! {
    /// The client address of the HTTP request being served, set by the HTTP layer around each
    /// request, so services that are not told the address (uploads, runs) can still exempt a
    /// whitelisted one.
    static CLIENT_IP: IpAddr;
}

/// Runs `work` as serving a request from `ip`.
pub async fn serving<F: std::future::Future>(ip: IpAddr, work: F) -> F::Output {
    CLIENT_IP.scope(ip, work).await
}

/// The address of the request being served, if this runs inside one.
pub fn request_ip() -> Option<IpAddr> {
    CLIENT_IP.try_with(|ip| *ip).ok()
}

/// An action with its own budget, whatever door it comes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    SignIn,
    Upload,
    Run,
}

impl Action {
    /// The REST path this action is known by in rate_limit.yml `per_endpoint`.
    pub fn path(self) -> &'static str {
        match self {
            Self::SignIn => "/api/v1/auth/login",
            Self::Upload => "/api/v1/modules",
            Self::Run => "/api/v1/modules/-/execute",
        }
    }

    /// The action a REST request is, if any (only the REST door is recognised here: the
    /// dashboard's doors call the same services, which call [`Edge::admit`]).
    fn of_request(method: &str, path: &str) -> Option<Self> {
        if method != "POST" {
            return None;
        }
        [Self::SignIn, Self::Upload, Self::Run]
            .into_iter()
            .find(|a| Pattern::new(&a.path().replace("/-/", "/*/")).matches(path))
    }
}

/// Whose budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who<'a> {
    User(&'a str),
    Address(IpAddr),
}

impl Who<'_> {
    fn key(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Address(ip) => format!("ip:{ip}"),
        }
    }

    fn scope(&self) -> Scope {
        match self {
            Self::User(_) => Scope::User,
            Self::Address(_) => Scope::Ip,
        }
    }
}

/// Which limit refused: the label of `rate_limit_violations_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    User,
    Ip,
    Endpoint,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Global => "global",
            Self::User => "user",
            Self::Ip => "ip",
            Self::Endpoint => "endpoint",
        }
    }
}

/// A budget's state after a request, for the `RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: u32,
    pub remaining: u32,
    /// Until the budget is full again.
    pub reset: Duration,
    /// The period `limit` is counted over.
    pub period: Duration,
}

impl Budget {
    fn of(rate: &Rate, take: &Take) -> Self {
        Self {
            limit: rate.requests,
            remaining: take.remaining,
            reset: take.reset,
            period: rate.period,
        }
    }
}

fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn minutes_text(d: Duration) -> String {
    let s = whole_seconds(d);
    if s < 120 {
        format!("{s} s")
    } else {
        format!("{} min", s.div_ceil(60))
    }
}

/// Why the edge refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EdgeError {
    /// The address is in rate_limit.yml `ip_blacklist`.
    #[error("requests from this address are not accepted")]
    Blacklisted,
    /// An ids.yml rule blocked the address for a while.
    #[error("this address is blocked after repeated suspicious activity; try again in {}", minutes_text(*retry_after))]
    Blocked { retry_after: Duration },
    /// Over a rate_limit.yml budget.
    #[error("too many requests; try again in {}", minutes_text(*retry_after))]
    RateLimited {
        scope: Scope,
        retry_after: Duration,
        budget: Budget,
    },
    /// An ids.yml `throttle` rule holds the user's runs back for a while.
    #[error("your module runs are paused after unusually many runs; try again in {}", minutes_text(*retry_after))]
    Throttled { retry_after: Duration },
}

impl EdgeError {
    /// How long the caller should wait, in whole seconds (`Retry-After`).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Blacklisted => None,
            Self::Blocked { retry_after }
            | Self::RateLimited { retry_after, .. }
            | Self::Throttled { retry_after } => Some(whole_seconds(*retry_after).max(1)),
        }
    }

    pub fn budget(&self) -> Option<Budget> {
        match self {
            Self::RateLimited { budget, .. } => Some(*budget),
            _ => None,
        }
    }
}

/// A request the gate let through, with the tightest budget it spent (for the headers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Passed {
    pub budget: Option<Budget>,
}

/// What [`Edge::gate`] needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct GateRequest<'a> {
    /// The client address ([`address::client_address`]).
    pub ip: IpAddr,
    /// The signed-in user, when known without a database read.
    pub user: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    /// False for what no budget covers (static files, health checks).
    pub counted: bool,
}

/// The store rate_limit.yml asks for: Redis when `redis_url` is set (replicas share one budget),
/// else this process' memory.
pub async fn store_for(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    use secrecy::ExposeSecret;
    match &config.rate_limit.rate_limiting.redis_url {
        Some(url) => Ok(Arc::new(
            redis_store::RedisStore::connect(url.expose_secret()).await?,
        )),
        None => Ok(Arc::new(store::MemoryStore::new(store::DEFAULT_CAPACITY))),
    }
}

/// rate_limit.yml, ready to apply.
#[derive(Debug)]
struct Limits {
    enabled: bool,
    global: Rate,
    per_user: Rate,
    per_endpoint: Vec<(Pattern, Rate)>,
    whitelist: Vec<IpNet>,
    blacklist: Vec<IpNet>,
    trusted_proxies: Vec<IpNet>,
}

/// The latest refusal audited per caller and scope.
#[derive(Debug, Clone, Copy)]
struct Reported {
    at: DateTime<Utc>,
    refused_since: u64,
}

/// How often a caller's refusals are audited at most, per scope.
const REPORT_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);
/// How long the same rule does not act twice on the same subject (alerts; blocks and throttles
/// in force are not renewed by the events they refuse).
const RETRIGGER_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// The edge service; cheap to clone.
#[derive(Debug, Clone)]
pub struct Edge(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    limits: Limits,
    rules: Vec<ids::Rule>,
    admin_resources: BTreeSet<String>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    audit: AuditService,
    metrics: Metrics,
    reported: Mutex<LruCache<String, Reported>>,
    triggered: Mutex<LruCache<String, DateTime<Utc>>>,
    alerts: alerts::Alerts,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Edge {
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        audit: AuditService,
        metrics: Metrics,
    ) -> Self {
        let rl = &config.rate_limit.rate_limiting;
        let limits = Limits {
            enabled: rl.enabled,
            global: Rate::from_limit(&rl.global),
            per_user: Rate::from_limit(&rl.per_user),
            per_endpoint: rl
                .per_endpoint
                .iter()
                .map(|(p, l)| (Pattern::new(p), Rate::from_limit(l)))
                .collect(),
            whitelist: rl.ip_whitelist.clone(),
            blacklist: rl.ip_blacklist.clone(),
            trusted_proxies: rl.trusted_proxies.clone(),
        };
        let cap = NonZeroUsize::new(store::DEFAULT_CAPACITY).unwrap_or(NonZeroUsize::MIN);
        let alerts = alerts::Alerts::new(
            &config.ids.intrusion_detection.alerts,
            clock.clone(),
            audit.clone(),
            metrics.clone(),
            alerts::FIRST_PAUSE,
        );
        Self(Arc::new(Inner {
            limits,
            rules: ids::rules(config),
            admin_resources: ids::admin_resources(config),
            store,
            clock,
            audit,
            metrics,
            reported: Mutex::new(LruCache::new(cap)),
            triggered: Mutex::new(LruCache::new(cap)),
            alerts,
        }))
    }

    /// The alert destinations of ids.yml (`serve` runs their delivery).
    pub fn alerts(&self) -> &alerts::Alerts {
        &self.0.alerts
    }

    /// The client address of a request from `peer` (see [`address`]).
    pub fn client_address<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    ) -> IpAddr {
        address::client_address(peer, forwarded_for, &self.0.limits.trusted_proxies)
    }

    fn now_us(&self) -> i64 {
        self.0.clock.now().timestamp_micros()
    }

    fn whitelisted(&self, ip: IpAddr) -> bool {
        address::contains(&self.0.limits.whitelist, ip)
    }

    /// Decides a request before any other work (see the module docs).
    pub async fn gate(&self, r: &GateRequest<'_>) -> Result<Passed, EdgeError> {
        let limits = &self.0.limits;
        let who = r.user.map_or(Who::Address(r.ip), Who::User);
        if address::contains(&limits.blacklist, r.ip) {
            self.refused(&who, r.ip, Scope::Ip, "ip_blacklist", r.path)
                .await;
            return Err(EdgeError::Blacklisted);
        }
        if self.whitelisted(r.ip) {
            return Ok(Passed::default());
        }
        let now = self.0.clock.now();
        if let Some(block) = self
            .fail_open(self.0.store.block(r.ip, now).await)
            .flatten()
        {
            let retry_after = (block.until - now).to_std().unwrap_or_default();
            self.refused(&who, r.ip, Scope::Ip, "ip_blocked", r.path)
                .await;
            return Err(EdgeError::Blocked { retry_after });
        }
        if !limits.enabled || !r.counted {
            return Ok(Passed::default());
        }
        let mut tightest: Option<Budget> = None;
        let mut spend = |budget: Budget| {
            if tightest.is_none_or(|t| budget.remaining < t.remaining) {
                tightest = Some(budget);
            }
        };
        let global = self.spend("global", &limits.global, Scope::Global, &who, r.ip, r.path);
        spend(global.await?);
        let key = who.key();
        let user = self.spend(&key, &limits.per_user, who.scope(), &who, r.ip, r.path);
        spend(user.await?);
        if Action::of_request(r.method, r.path).is_none()
            && let Some((pattern, rate)) =
                limits.per_endpoint.iter().find(|(p, _)| p.matches(r.path))
        {
            let key = format!("endpoint:{}:{key}", pattern.text);
            spend(
                self.spend(&key, rate, Scope::Endpoint, &who, r.ip, r.path)
                    .await?,
            );
        }
        Ok(Passed { budget: tightest })
    }

    /// Spends one `action` of `who`'s budget, inside the service that performs it. `ip` is the
    /// client's address when the caller knows it, else the address of the request being served
    /// ([`serving`]). A whitelisted address spends nothing, and neither does work done outside any
    /// request (the CLI, background jobs); runs obey throttles either way.
    pub async fn admit(
        &self,
        action: Action,
        who: Who<'_>,
        ip: Option<IpAddr>,
    ) -> Result<Option<Budget>, EdgeError> {
        let ip = ip.or_else(request_ip);
        if ip.is_some_and(|ip| self.whitelisted(ip)) {
            return Ok(None);
        }
        if action == Action::Run
            && let Who::User(user) = who
        {
            let now = self.0.clock.now();
            if let Some(t) = self
                .fail_open(self.0.store.throttle(user, now).await)
                .flatten()
            {
                let retry_after = (t.until - now).to_std().unwrap_or_default();
                return Err(EdgeError::Throttled { retry_after });
            }
        }
        let limits = &self.0.limits;
        let Some(ip) = ip.filter(|_| limits.enabled) else {
            return Ok(None);
        };
        let path = action.path();
        let Some((pattern, rate)) = limits.per_endpoint.iter().find(|(p, _)| p.matches(path))
        else {
            return Ok(None);
        };
        let key = format!("endpoint:{}:{}", pattern.text, who.key());
        self.spend(&key, rate, Scope::Endpoint, &who, ip, &pattern.text)
            .await
            .map(Some)
    }

    async fn spend(
        &self,
        key: &str,
        rate: &Rate,
        scope: Scope,
        who: &Who<'_>,
        ip: IpAddr,
        path: &str,
    ) -> Result<Budget, EdgeError> {
        let taken = self.0.store.take(key, rate, self.now_us()).await;
        let Some(take) = self.fail_open(taken) else {
            return Ok(Budget {
                limit: rate.requests,
                remaining: rate.burst,
                reset: Duration::ZERO,
                period: rate.period,
            });
        };
        let budget = Budget::of(rate, &take);
        if take.allowed {
            return Ok(budget);
        }
        self.refused(who, ip, scope, scope.as_str(), path).await;
        Err(EdgeError::RateLimited {
            scope,
            retry_after: take.retry_after,
            budget,
        })
    }

    /// A store failure lets the request through (limits fail open, so a Redis outage is not an
    /// outage of the product); it is logged.
    fn fail_open<T>(&self, result: Result<T, StoreError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "the rate-limit store failed; the request is let through");
                None
            }
        }
    }

    /// Counts a refusal and audits it, at most once a minute per caller and scope.
    async fn refused(&self, who: &Who<'_>, ip: IpAddr, scope: Scope, limit: &str, path: &str) {
        if limit != "ip_blacklist" && limit != "ip_blocked" {
            self.0.metrics.rate_limit_violation(Some(scope.as_str()));
        }
        let now = self.0.clock.now();
        let key = format!("{limit}:{}", who.key());
        let refused_since = {
            let mut reported = lock(&self.0.reported);
            match reported.get_mut(&key) {
                Some(r) if now - r.at < REPORT_EVERY => {
                    r.refused_since += 1;
                    return;
                }
                Some(r) => {
                    let n = r.refused_since;
                    *r = Reported {
                        at: now,
                        refused_since: 0,
                    };
                    n
                }
                None => {
                    reported.put(
                        key,
                        Reported {
                            at: now,
                            refused_since: 0,
                        },
                    );
                    0
                }
            }
        };
        let actor = match who {
            Who::User(id) => Actor {
                id: Some((*id).to_string()),
                name: (*id).to_string(),
            },
            Who::Address(_) => Actor {
                id: None,
                name: "anonymous".into(),
            },
        };
        let event = AuditEvent::new(EventKind::RateLimitExceeded, actor, Outcome::Denied)
            .with_client(Some(ip.to_string()), None)
            .with_details(serde_json::json!({
                "limit": limit,
                "scope": scope.as_str(),
                "path": path.chars().take(256).collect::<String>(),
                "also_refused_in_the_minute_before": refused_since,
            }));
        if let Err(e) = self.0.audit.record(event).await {
            tracing::warn!(error = %e, "a rate-limit refusal could not be audited");
        }
    }

    /// Applies the ids.yml rules to what an event a service just recorded tells them.
    pub async fn observe(&self, o: ids::Observation) {
        if self.0.rules.is_empty() {
            return;
        }
        if o.ip.is_some_and(|ip| self.whitelisted(ip)) {
            return;
        }
        for (index, rule) in self.0.rules.iter().enumerate() {
            if rule.condition.watches() != o.watches {
                continue;
            }
            let Some(subject) = ids::subject(rule, &o) else {
                continue;
            };
            let mut counts = Vec::new();
            for (i, window) in ids::windows(&rule.condition).into_iter().enumerate() {
                let key = format!("ids:{index}:{i}:{subject}");
                let n = self.0.store.count(&key, window, self.now_us()).await;
                counts.push(self.fail_open(n).unwrap_or(0));
            }
            if ids::holds(
                &rule.condition,
                &o,
                &counts,
                &mut 0,
                &self.0.admin_resources,
            ) {
                self.act(rule, &o, &subject).await;
            }
        }
    }

    async fn act(&self, rule: &ids::Rule, o: &ids::Observation, subject: &str) {
        let now = self.0.clock.now();
        let key = format!("{}:{subject}", rule.name);
        {
            let mut triggered = lock(&self.0.triggered);
            if triggered
                .get(&key)
                .is_some_and(|at| now - *at < RETRIGGER_AFTER)
            {
                return;
            }
            triggered.put(key, now);
        }
        let duration = |default: Duration| {
            chrono::Duration::from_std(rule.duration.unwrap_or(default))
                .unwrap_or(chrono::Duration::hours(1))
        };
        // The condition stays out: its words ("permission_denied") would make the guide's
        // `grep "permission_denied" audit.log` count this event as a refusal.
        let mut details = serde_json::json!({
            "rule": rule.name,
            "action": action_name(rule.action),
        });
        let kind = match rule.action {
            RuleAction::BlockIp => {
                let Some(ip) = o.ip else { return };
                let block = Block {
                    ip,
                    rule: rule.name.clone(),
                    since: now,
                    until: now + duration(Duration::from_secs(3600)),
                };
                if let Err(e) = self.0.store.put_block(&block).await {
                    tracing::error!(error = %e, ip = %ip, "an ids.yml block could not be stored");
                    return;
                }
                details["until"] = serde_json::json!(block.until);
                EventKind::IpBlocked
            }
            RuleAction::Throttle => {
                let Some(user) = &o.user_id else { return };
                let throttle = Throttle {
                    user_id: user.clone(),
                    rule: rule.name.clone(),
                    since: now,
                    until: now + duration(ids::DEFAULT_THROTTLE),
                };
                if let Err(e) = self.0.store.put_throttle(&throttle).await {
                    tracing::error!(error = %e, "an ids.yml throttle could not be stored");
                    return;
                }
                details["user_id"] = serde_json::json!(user);
                details["until"] = serde_json::json!(throttle.until);
                EventKind::IdsTriggered
            }
            RuleAction::Alert | RuleAction::Quarantine => {
                details["user_id"] = serde_json::json!(o.user_id);
                EventKind::IdsTriggered
            }
        };
        self.0.metrics.ids_trigger(action_name(rule.action));
        self.refresh_gauges().await;
        let event = AuditEvent::new(kind, Actor::system(), Outcome::Success)
            .with_client(o.ip.map(|ip| ip.to_string()), None)
            .with_details(details);
        let recorded = match self.0.audit.record(event.clone()).await {
            Ok(recorded) => recorded,
            Err(e) => {
                tracing::error!(error = %e, rule = %rule.name, "an ids.yml action could not be audited");
                None
            }
        };
        if rule.action == RuleAction::Alert {
            // An event audit.yml does not keep is still sent, as it would have been recorded.
            let event = recorded.unwrap_or_else(|| crate::audit::RecordedEvent {
                id: uuid::Uuid::now_v7(),
                timestamp: now,
                event,
                pii: None,
            });
            self.0.alerts.queue(alerts::AlertMessage {
                rule: rule.name.clone(),
                condition: rule.condition.to_string(),
                event,
            });
        }
    }

    /// Sets the `ip_blocks_active` and `throttles_active` gauges (after a change, and from the
    /// server's housekeeping so expiries show).
    pub async fn refresh_gauges(&self) {
        let now = self.0.clock.now();
        let blocks = self.0.store.blocks(now).await;
        let throttles = self.0.store.throttles(now).await;
        if let (Ok(b), Ok(t)) = (blocks, throttles) {
            self.0.metrics.edge_state(b.len(), t.len());
        }
    }

    /// What the Security page shows of the edge (`system:audit`): blocks and throttles in force,
    /// the latest rule triggers from the audit log, and whether the principal may lift a block.
    pub async fn overview(&self, principal: &Principal) -> Result<EdgeOverview, EdgeAdminError> {
        let blocks = self.blocks(principal).await?;
        let throttles = self.0.store.throttles(self.0.clock.now()).await?;
        self.0.audit.caught_up().await;
        let query = crate::audit::AuditQuery {
            events: vec![EventKind::IpBlocked, EventKind::IdsTriggered],
            limit: 20,
            ..Default::default()
        };
        let triggers = self.0.audit.search(principal, &query).await?.events;
        Ok(EdgeOverview {
            blocks,
            throttles,
            triggers,
            channels: self.0.alerts.status(),
            can_unblock: principal.can("system", "unblock"),
        })
    }

    /// Addresses blocked now, newest first (`system:audit`).
    pub async fn blocks(&self, principal: &Principal) -> Result<Vec<Block>, EdgeAdminError> {
        principal
            .require(&self.0.audit, "system", "audit", "blocked addresses")
            .await?;
        Ok(self.0.store.blocks(self.0.clock.now()).await?)
    }

    /// Users whose runs are throttled now, newest first (`system:audit`).
    pub async fn throttles(&self, principal: &Principal) -> Result<Vec<Throttle>, EdgeAdminError> {
        principal
            .require(&self.0.audit, "system", "audit", "throttled users")
            .await?;
        Ok(self.0.store.throttles(self.0.clock.now()).await?)
    }

    /// Ends a block early (`system:*`); audited as `ip_unblocked`.
    pub async fn unblock(&self, principal: &Principal, ip: IpAddr) -> Result<(), EdgeAdminError> {
        principal
            .require(&self.0.audit, "system", "unblock", "blocked addresses")
            .await?;
        let ip = address::canonical(ip);
        if !self.0.store.remove_block(ip).await? {
            return Err(EdgeAdminError::NotBlocked(ip));
        }
        self.refresh_gauges().await;
        let event = AuditEvent::new(EventKind::IpUnblocked, principal.actor(), Outcome::Success)
            .with_target("ip", ip.to_string())
            .with_details(serde_json::json!({ "ip": ip.to_string() }));
        self.0.audit.record(event).await?;
        Ok(())
    }
}

pub fn action_name(a: RuleAction) -> &'static str {
    match a {
        RuleAction::BlockIp => "block_ip",
        RuleAction::Quarantine => "quarantine",
        RuleAction::Alert => "alert",
        RuleAction::Throttle => "throttle",
    }
}

/// The edge as the Security page shows it.
#[derive(Debug, Clone)]
pub struct EdgeOverview {
    pub blocks: Vec<Block>,
    pub throttles: Vec<Throttle>,
    /// `ip_blocked` and `ids_triggered` events, newest first.
    pub triggers: Vec<crate::audit::RecordedEvent>,
    /// Each alert destination's last delivery.
    pub channels: Vec<alerts::ChannelStatus>,
    pub can_unblock: bool,
}

/// Errors of the edge's admin operations.
#[derive(Debug, thiserror::Error)]
pub enum EdgeAdminError {
    /// The principal lacks the permission.
    #[error("permission denied: {0} is required")]
    Forbidden(String),
    /// The address is not blocked.
    #[error("{0} is not blocked")]
    NotBlocked(IpAddr),
    /// The shared store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit event could not be recorded.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl From<crate::denial::Denial> for EdgeAdminError {
    fn from(d: crate::denial::Denial) -> Self {
        match d {
            crate::denial::Denial::Forbidden(p) => Self::Forbidden(p),
            crate::denial::Denial::Audit(a) => Self::Audit(a),
        }
    }
}

/// Lets [`crate::AuditService`] hand every recorded event to the edge.
#[async_trait::async_trait]
pub trait Observer: Send + Sync + std::fmt::Debug {
    async fn observe(&self, observation: ids::Observation);
}

#[async_trait::async_trait]
impl Observer for Edge {
    async fn observe(&self, observation: ids::Observation) {
        Edge::observe(self, observation).await;
    }
}
