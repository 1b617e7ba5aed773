//! ids.yml alerts: an `alert` rule that fires sends its `ids_triggered` event to every destination
//! of `intrusion_detection.alerts`: email over SMTP, a Slack incoming webhook, syslog.
//!
//! Sending never holds a request up: [`Alerts::queue`] puts the alert on a bounded queue (a full
//! queue drops it, counted and logged) and [`Alerts::run`] delivers in the background. Each
//! destination is tried up to [`ATTEMPTS`] times with growing pauses; every outcome is audited as
//! `alert_sent` and counted in `alerts_sent_total{channel,outcome}`, and each channel's last
//! outcome shows on the Security page. Alerts are rate limited per rule: at most
//! [`PER_RULE_PER_HOUR`] an hour (the edge already sends one rule's alert for one subject at most
//! every ten minutes).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use crate::{
    audit::sink::syslog::SyslogSink,
    audit::{Actor, AuditEvent, AuditService, EventKind, Outcome, RecordedEvent},
    clock::Clock,
    config::ids::{Alert, SmtpSettings, SmtpTls},
    metrics::Metrics,
};

/// Tries per destination before giving up.
pub const ATTEMPTS: u32 = 3;
/// The pause before the second try (doubled before the third).
pub const FIRST_PAUSE: Duration = Duration::from_secs(2);
/// The most alerts one rule sends in an hour.
pub const PER_RULE_PER_HOUR: u32 = 20;
/// Alerts waiting to be sent at most.
const QUEUE: usize = 256;
/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// One alert to send.
#[derive(Debug, Clone)]
pub struct AlertMessage {
    pub rule: String,
    /// The rule's condition, as understood.
    pub condition: String,
    /// The `ids_triggered` event as recorded.
    pub event: RecordedEvent,
}

impl AlertMessage {
    fn subject(&self) -> String {
        format!("[wasm-as-os] intrusion detection: {}", self.rule)
    }

    /// A few lines a person can read: the rule, when, the condition, who.
    fn text(&self) -> String {
        let d = &self.event.event.details;
        let field = |k: &str| d[k].as_str().unwrap_or("-").to_string();
        format!(
            "Rule {} fired at {}.\nCondition: {}\nAction: {}\nAddress: {}\nUser: {}\nEvent id: {}",
            self.rule,
            self.event.timestamp.format("%Y-%m-%d %H:%M:%S UTC"),
            self.condition,
            field("action"),
            self.event.event.ip.as_deref().unwrap_or("-"),
            field("user_id"),
            self.event.id,
        )
    }
}

/// A destination's last outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelStatus {
    /// 1-based, in the order of ids.yml `alerts`.
    pub destination: usize,
    pub channel: String,
    pub ok: bool,
    pub at: DateTime<Utc>,
    /// Why the last delivery failed (never a secret: URLs and passwords are left out).
    pub error: Option<String>,
}

#[derive(Debug)]
enum Channel {
    Email {
        recipients: Vec<String>,
        smtp: SmtpSettings,
    },
    Slack {
        webhook: secrecy::SecretString,
    },
    Syslog(SyslogSink),
}

impl Channel {
    fn name(&self) -> &'static str {
        match self {
            Self::Email { .. } => "email",
            Self::Slack { .. } => "slack",
            Self::Syslog(_) => "syslog",
        }
    }
}

/// The alert destinations and their queue; cheap to clone.
#[derive(Debug, Clone)]
pub struct Alerts(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    channels: Vec<Channel>,
    http: reqwest::Client,
    sender: tokio::sync::mpsc::Sender<AlertMessage>,
    receiver: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<AlertMessage>>,
    /// By destination (its index under `alerts`).
    status: Mutex<HashMap<usize, ChannelStatus>>,
    sent: Mutex<HashMap<String, (DateTime<Utc>, u32)>>,
    clock: Arc<dyn Clock>,
    audit: AuditService,
    metrics: Metrics,
    pause: Duration,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why one attempt failed, in words safe to show.
type Failure = String;

impl Alerts {
    /// The destinations of ids.yml; `pause` is the wait before the second attempt (doubled
    /// after).
    pub fn new(
        alerts: &[Alert],
        clock: Arc<dyn Clock>,
        audit: AuditService,
        metrics: Metrics,
        pause: Duration,
    ) -> Self {
        let channels = alerts
            .iter()
            .map(|a| match a {
                Alert::Email { recipients, smtp } => Channel::Email {
                    recipients: recipients.clone(),
                    smtp: smtp.clone().unwrap_or_default(),
                },
                Alert::Slack { webhook } => Channel::Slack {
                    webhook: webhook.clone(),
                },
                Alert::Syslog { facility, address } => Channel::Syslog(SyslogSink::new(
                    facility,
                    "wasm-as-os-ids",
                    address.as_ref(),
                )),
            })
            .collect();
        let (sender, receiver) = tokio::sync::mpsc::channel(QUEUE);
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self(Arc::new(Inner {
            channels,
            http,
            sender,
            receiver: tokio::sync::Mutex::new(receiver),
            status: Mutex::new(HashMap::new()),
            sent: Mutex::new(HashMap::new()),
            clock,
            audit,
            metrics,
            pause,
        }))
    }

    /// Queues an alert unless its rule already sent [`PER_RULE_PER_HOUR`] this hour; never
    /// waits.
    pub fn queue(&self, message: AlertMessage) {
        if self.0.channels.is_empty() {
            return;
        }
        let now = self.0.clock.now();
        {
            let mut sent = lock(&self.0.sent);
            let entry = sent.entry(message.rule.clone()).or_insert((now, 0));
            if now - entry.0 >= chrono::Duration::hours(1) {
                *entry = (now, 0);
            }
            if entry.1 >= PER_RULE_PER_HOUR {
                tracing::warn!(rule = %message.rule, "alert not sent: the rule reached its hourly alert limit");
                return;
            }
            entry.1 += 1;
        }
        if self.0.sender.try_send(message).is_err() {
            tracing::error!("alert dropped: the alert queue is full");
            for channel in &self.0.channels {
                self.0.metrics.alert_sent(channel.name(), false);
            }
        }
    }

    /// Each destination's last outcome.
    pub fn status(&self) -> Vec<ChannelStatus> {
        let mut out: Vec<ChannelStatus> = lock(&self.0.status).values().cloned().collect();
        out.sort_by_key(|s| s.destination);
        out
    }

    /// Delivers queued alerts until the process ends (spawned by `serve`).
    pub async fn run(self) {
        loop {
            let next = self.0.receiver.lock().await.recv().await;
            let Some(message) = next else { return };
            self.deliver(&message).await;
        }
    }

    /// Sends one alert to every destination, each with its retries; returns when all are done.
    pub async fn deliver(&self, message: &AlertMessage) {
        let sends = self
            .0
            .channels
            .iter()
            .enumerate()
            .map(|(i, channel)| self.deliver_to(i, channel, message));
        futures_util::future::join_all(sends).await;
    }

    async fn deliver_to(&self, index: usize, channel: &Channel, message: &AlertMessage) {
        let mut pause = self.0.pause;
        let mut attempts = 0;
        let mut last: Result<(), Failure> = Err("not tried".into());
        while attempts < ATTEMPTS {
            attempts += 1;
            last = match tokio::time::timeout(ATTEMPT_TIMEOUT, self.send(channel, message)).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
            };
            if last.is_ok() {
                break;
            }
            if attempts < ATTEMPTS {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        let ok = last.is_ok();
        let error = last.err();
        if let Some(e) = &error {
            tracing::warn!(channel = channel.name(), rule = %message.rule, error = %e, "an alert could not be delivered");
        }
        self.0.metrics.alert_sent(channel.name(), ok);
        lock(&self.0.status).insert(
            index,
            ChannelStatus {
                destination: index + 1,
                channel: channel.name().to_string(),
                ok,
                at: self.0.clock.now(),
                error: error.clone(),
            },
        );
        let event = AuditEvent::new(
            EventKind::AlertSent,
            Actor::system(),
            if ok {
                Outcome::Success
            } else {
                Outcome::Failure
            },
        )
        .with_details(serde_json::json!({
            "channel": channel.name(),
            "rule": message.rule,
            "attempts": attempts,
            "trigger_event": message.event.id.to_string(),
            "error": error,
        }));
        if let Err(e) = self.0.audit.record(event).await {
            tracing::error!(error = %e, "an alert's delivery could not be audited");
        }
    }

    async fn send(&self, channel: &Channel, message: &AlertMessage) -> Result<(), Failure> {
        match channel {
            Channel::Slack { webhook } => {
                let body = serde_json::json!({
                    "text": format!("*{}*\n{}", message.subject(), message.text()),
                });
                let response = self
                    .0
                    .http
                    .post(webhook.expose_secret())
                    .json(&body)
                    .send()
                    .await
                    // Without the URL: the webhook's path is its secret.
                    .map_err(|e| {
                        format!("the webhook could not be reached: {}", e.without_url())
                    })?;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("the webhook answered {}", response.status()))
                }
            }
            Channel::Syslog(sink) => sink
                .write(std::slice::from_ref(&message.event))
                .await
                .map_err(|e| format!("syslog: {e}")),
            Channel::Email { recipients, smtp } => send_email(smtp, recipients, message).await,
        }
    }
}

async fn send_email(
    smtp: &SmtpSettings,
    recipients: &[String],
    message: &AlertMessage,
) -> Result<(), Failure> {
    use lettre::{
        AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
        transport::smtp::authentication::Credentials,
    };
    let mut builder = Message::builder()
        .from(smtp.from.parse().map_err(|e| format!("smtp.from: {e}"))?)
        .subject(message.subject());
    for r in recipients {
        builder = builder.to(r.parse().map_err(|e| format!("recipient {r}: {e}"))?);
    }
    let email = builder
        .body(message.text())
        .map_err(|e| format!("the message could not be built: {e}"))?;
    let transport = match smtp.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|e| format!("smtp: {e}"))?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
            .map_err(|e| format!("smtp: {e}"))?,
    };
    let mut transport = transport.port(smtp.port).timeout(Some(ATTEMPT_TIMEOUT));
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        transport = transport.credentials(Credentials::new(
            user.clone(),
            password.expose_secret().to_string(),
        ));
    }
    transport
        .build()
        .send(email)
        .await
        .map(|_| ())
        .map_err(|e| format!("smtp {}:{}: {e}", smtp.host, smtp.port))
}
