//! The syslog destination: RFC 5424 messages with the configured facility and tag (APP-NAME),
//! to the local socket `/dev/log`, or to `udp://host:port` (one datagram per event) or
//! `tcp://host:port` (octet-counted framing, RFC 6587).
//!
//! The header fields are printable ASCII without spaces (anything else is replaced by `_`); the
//! message is the event's JSON line, which has no raw control characters or line separators.

use std::path::PathBuf;

use tokio::{
    io::AsyncWriteExt,
    net::{TcpStream, UdpSocket, UnixDatagram},
    sync::Mutex,
};

use super::SinkError;
use crate::audit::{Outcome, RecordedEvent, line};

const LOCAL_SOCKET: &str = "/dev/log";
/// Longer messages are cut so a datagram stays deliverable.
const MAX_MESSAGE: usize = 60 * 1024;

#[derive(Debug, Clone)]
enum Target {
    Local(PathBuf),
    Udp(String),
    Tcp(String),
}

#[derive(Debug)]
enum Conn {
    Local(UnixDatagram),
    Udp(UdpSocket),
    Tcp(TcpStream),
}

#[derive(Debug)]
pub struct SyslogSink {
    facility: u8,
    app_name: String,
    hostname: String,
    target: Target,
    conn: Mutex<Option<Conn>>,
}

/// The facility's number (RFC 5424 table 1); `security` is treated as `authpriv`.
pub fn facility_code(name: &str) -> u8 {
    match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" | "security" => 10,
        "ftp" => 11,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => 1,
    }
}

/// Printable US-ASCII without spaces, at most `max` characters, `-` when empty (RFC 5424 §6).
fn header_field(s: &str, max: usize) -> String {
    let out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if out.is_empty() { "-".to_string() } else { out }
}

fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    header_field(name.trim(), 255)
}

impl SyslogSink {
    pub fn new(facility: &str, tag: &str, address: Option<&url::Url>) -> Self {
        let target = match address {
            Some(url) => {
                let hostport = format!(
                    "{}:{}",
                    url.host_str().unwrap_or("127.0.0.1"),
                    url.port().unwrap_or(514)
                );
                if url.scheme() == "tcp" {
                    Target::Tcp(hostport)
                } else {
                    Target::Udp(hostport)
                }
            }
            None => Target::Local(PathBuf::from(LOCAL_SOCKET)),
        };
        Self {
            facility: facility_code(facility),
            app_name: header_field(tag, 48),
            hostname: hostname(),
            target,
            conn: Mutex::new(None),
        }
    }

    /// The RFC 5424 message for `event`.
    pub fn format(&self, event: &RecordedEvent) -> String {
        let severity = match event.event.outcome {
            Outcome::Success => 5,                   // notice
            Outcome::Failure | Outcome::Denied => 4, // warning
        };
        let pri = u16::from(self.facility) * 8 + severity;
        // The platform cannot drop values from a remote log later: with anonymisation on, syslog
        // only ever gets the reduced address and user agent.
        let mut msg = if event.event.ip_net.is_some() || event.event.ua_family.is_some() {
            let mut reduced = event.clone();
            if reduced.event.ip_net.is_some() {
                reduced.event.ip = None;
            }
            if reduced.event.ua_family.is_some() {
                reduced.event.user_agent = None;
            }
            line::render_unchained(&reduced)
        } else {
            line::render_unchained(event)
        };
        if msg.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            msg.truncate(cut);
        }
        format!(
            "<{pri}>1 {} {} {} {} {} - {msg}",
            line::timestamp(&event.timestamp),
            self.hostname,
            self.app_name,
            std::process::id(),
            header_field(event.event.kind.as_str(), 32),
        )
    }

    async fn connect(&self) -> std::io::Result<Conn> {
        Ok(match &self.target {
            Target::Local(path) => {
                let s = UnixDatagram::unbound()?;
                s.connect(path)?;
                Conn::Local(s)
            }
            Target::Udp(addr) => {
                let bind = if addr.starts_with('[') {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                };
                let s = UdpSocket::bind(bind).await?;
                s.connect(addr).await?;
                Conn::Udp(s)
            }
            Target::Tcp(addr) => Conn::Tcp(TcpStream::connect(addr).await?),
        })
    }

    pub async fn write(&self, events: &[RecordedEvent]) -> Result<(), SinkError> {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            *guard = Some(self.connect().await?);
        }
        let result = self.send_all(guard.as_mut(), events).await;
        if result.is_err() {
            *guard = None;
        }
        result
    }

    async fn send_all(
        &self,
        conn: Option<&mut Conn>,
        events: &[RecordedEvent],
    ) -> Result<(), SinkError> {
        let Some(conn) = conn else { return Ok(()) };
        match conn {
            Conn::Local(s) => {
                for e in events {
                    s.send(self.format(e).as_bytes()).await?;
                }
            }
            Conn::Udp(s) => {
                for e in events {
                    s.send(self.format(e).as_bytes()).await?;
                }
            }
            Conn::Tcp(s) => {
                let mut buf = Vec::with_capacity(events.len() * 500);
                for e in events {
                    let msg = self.format(e);
                    buf.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
                }
                s.write_all(&buf).await?;
                s.flush().await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Actor, AuditEvent, EventKind};

    #[test]
    fn a_message_has_the_rfc5424_header_with_facility_severity_and_tag() {
        let sink = SyslogSink::new("local0", "wasm as-os", None);
        let e = RecordedEvent {
            id: uuid::Uuid::nil(),
            timestamp: chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
                .unwrap()
                .to_utc(),
            event: AuditEvent::new(
                EventKind::LoginFailure,
                Actor::user("1", "eve\nforged <13>1 line"),
                Outcome::Failure,
            ),
            pii: None,
        };
        let m = sink.format(&e);
        assert!(
            m.starts_with("<132>1 2026-01-02T03:04:05.000000Z "),
            "local0 (16) * 8 + warning (4): {m}"
        );
        let fields: Vec<&str> = m.splitn(8, ' ').collect();
        assert_eq!(
            (fields[3], fields[5], fields[6]),
            ("wasm_as-os", "login_failure", "-")
        );
        assert!(!m.contains('\n') && m.contains("eve\\nforged"), "{m}");
    }
}
