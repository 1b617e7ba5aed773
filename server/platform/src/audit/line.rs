//! The shape of an event as written to the file and to syslog, and the hash chain over it.
//!
//! A line is one JSON object: `timestamp` (UTC, RFC 3339), `event`, `id`, `actor` {id, username},
//! `ip`, `user_agent`, `outcome`, the resource id at top level (`user_id`, `module_id`, …, named
//! after the target's type), `details`, then `prev_hash` and `hash`.
//!
//! `hash` = hex(HMAC-SHA256(key, prev_hash ‖ "\n" ‖ canonical JSON of the line without `prev_hash`
//! and `hash`)), where canonical JSON sorts object keys and has no whitespace. The database chain
//! uses the same function over the same shape, rebuilt from the row. The key ([`ChainKey`]) is
//! kept outside the database (`<data dir>/audit_chain_key` or `WASM_AS_OS_AUDIT_CHAIN_KEY`), so
//! whoever can rewrite rows or lines cannot compute the hashes of a re-chained history.

use std::{collections::BTreeMap, fmt::Write as _};

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;

use super::{RecordedEvent, personal};

/// The key of the hash chains; its value never appears in logs or `Debug` output.
#[derive(Clone)]
pub struct ChainKey([u8; 32]);

impl ChainKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey([REDACTED])")
    }
}

/// The `prev_hash` of the first event of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Serialize)]
struct ActorShape<'a> {
    id: Option<&'a str>,
    username: &'a str,
}

/// The line without its chain fields, in the order it is written.
#[derive(Serialize)]
struct Shape<'a> {
    timestamp: String,
    event: &'static str,
    id: String,
    actor: ActorShape<'a>,
    ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    // Absent on events recorded without anonymisation, so their hashes do not change.
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_net: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ua_family: Option<&'a str>,
    outcome: &'static str,
    #[serde(flatten)]
    resources: BTreeMap<String, &'a str>,
    details: &'a Value,
}

#[derive(Serialize)]
struct Chained<'a> {
    #[serde(flatten)]
    shape: &'a Shape<'a>,
    prev_hash: &'a str,
    hash: &'a str,
}

/// The top-level name of a target's id: `user` → `user_id`; other characters become `_`.
pub(crate) fn resource_key(kind: &str) -> String {
    let mut key: String = kind
        .chars()
        .take(48)
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if key.is_empty() {
        key.push_str("resource");
    }
    key.push_str("_id");
    key
}

/// RFC 3339 in UTC with microseconds, the precision both databases keep.
pub fn timestamp(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn shape(r: &RecordedEvent) -> Shape<'_> {
    let e = &r.event;
    let resources = e
        .target
        .iter()
        .map(|t| (resource_key(&t.kind), t.id.as_str()))
        .collect();
    Shape {
        timestamp: timestamp(&r.timestamp),
        event: e.kind.as_str(),
        id: r.id.to_string(),
        actor: ActorShape {
            id: e.actor.id.as_deref(),
            username: &e.actor.name,
        },
        ip: e.ip.as_deref(),
        user_agent: e.user_agent.as_deref(),
        ip_net: e.ip_net.as_deref(),
        ua_family: e.ua_family.as_deref(),
        outcome: e.outcome.as_str(),
        resources,
        details: &e.details,
    }
}

/// The event's shape with its plaintext, as a JSON value (chain v1 hashes exactly this).
pub fn plain_value(event: &RecordedEvent) -> Value {
    serde_json::to_value(shape(event)).unwrap_or(Value::Null)
}

/// What the chain hashes for `event`: the plain shape (v1), or the sealed shape (v2, when the
/// event carries `pii`).
pub fn hashed_value(event: &RecordedEvent) -> Value {
    let plain = plain_value(event);
    match &event.pii {
        Some(pii) => personal::sealed(&plain, pii),
        None => plain,
    }
}

/// The hash of `event` linked to `prev`.
pub fn link(key: &ChainKey, prev: &str, event: &RecordedEvent) -> String {
    hash_value(key, prev, &hashed_value(event))
}

/// The hash of a line's object (without its chain fields) linked to `prev`.
pub fn hash_value(key: &ChainKey, prev: &str, value: &Value) -> String {
    let mut text = String::with_capacity(512);
    canonical(value, &mut text);
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key.0) else {
        // HMAC takes keys of any length; this branch cannot be reached.
        return String::new();
    };
    mac.update(prev.as_bytes());
    mac.update(b"\n");
    mac.update(text.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The line for `event` linked to `prev`, ending in `\n`; returns it and its hash.
pub fn render(key: &ChainKey, prev: &str, event: &RecordedEvent) -> (String, String) {
    let Some(pii) = &event.pii else {
        return render_v1(key, prev, event);
    };
    let plain = plain_value(event);
    let hash = hash_value(key, prev, &personal::sealed(&plain, pii));
    let mut value = personal::line_value(&plain, pii);
    if let Value::Object(map) = &mut value {
        map.insert("prev_hash".into(), Value::from(prev));
        map.insert("hash".into(), Value::from(hash.as_str()));
    }
    let mut line = escape_separators(&ordered(&value));
    line.push('\n');
    (line, hash)
}

fn render_v1(key: &ChainKey, prev: &str, event: &RecordedEvent) -> (String, String) {
    let shape = shape(event);
    let value = serde_json::to_value(&shape).unwrap_or(Value::Null);
    let hash = hash_value(key, prev, &value);
    let json = serde_json::to_string(&Chained {
        shape: &shape,
        prev_hash: prev,
        hash: &hash,
    })
    .unwrap_or_default();
    let mut line = escape_separators(&json);
    line.push('\n');
    (line, hash)
}

/// A line's object with `timestamp` and `event` first and the chain fields last, as v1 writes it.
pub(crate) fn ordered(value: &Value) -> String {
    let Value::Object(map) = value else {
        return value.to_string();
    };
    let first = ["timestamp", "event", "id", "v"];
    let last = ["prev_hash", "hash"];
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by_key(|k| {
        let k = k.as_str();
        match (
            first.iter().position(|f| *f == k),
            last.iter().position(|l| *l == k),
        ) {
            (Some(i), _) => (0, i),
            (_, Some(i)) => (2, i),
            _ => (1, 0),
        }
    });
    let mut out = String::from("{");
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(key).unwrap_or_default());
        out.push(':');
        out.push_str(&serde_json::to_string(&map[key]).unwrap_or_default());
    }
    out.push('}');
    out
}

/// The line of `event` without chain fields (syslog messages), on one line.
pub fn render_unchained(event: &RecordedEvent) -> String {
    match &event.pii {
        Some(pii) => escape_separators(&ordered(&personal::line_value(&plain_value(event), pii))),
        None => escape_separators(&serde_json::to_string(&shape(event)).unwrap_or_default()),
    }
}

/// JSON already escapes C0 controls, `"` and `\`; this also escapes DEL, the C1 controls (NEL
/// among them) and the Unicode line and paragraph separators, so no tool reading the file or a
/// syslog stream sees a line break inside an event. The result is still the same JSON value.
pub fn escape_separators(json: &str) -> String {
    if !json.chars().any(needs_escape) {
        return json.to_string();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if needs_escape(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    matches!(c, '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}')
}

/// Sorted keys, no whitespace; strings and numbers as serde_json writes them.
pub fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key).unwrap_or_default());
                out.push(':');
                canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&serde_json::to_string(other).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Actor, AuditEvent, EventKind, Outcome};

    const KEY: ChainKey = ChainKey([7; 32]);

    fn event(name: &str) -> RecordedEvent {
        let at = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05.123456Z")
            .unwrap()
            .to_utc();
        RecordedEvent {
            id: uuid::Uuid::nil(),
            timestamp: at,
            event: AuditEvent::new(
                EventKind::ModuleExecute,
                Actor::user("u1", name),
                Outcome::Success,
            )
            .with_target("module", "m-7")
            .with_client(Some("10.0.0.1".into()), Some("curl/8".into()))
            .with_details(serde_json::json!({"b": 1, "a": [true, null]})),
            pii: None,
        }
    }

    #[test]
    fn a_line_has_the_specs_fields_at_top_level() {
        let (line, hash) = render(&KEY, GENESIS, &event("alice"));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["timestamp"], "2026-01-02T03:04:05.123456Z");
        assert_eq!(v["event"], "module_execute");
        assert_eq!(
            v["actor"],
            serde_json::json!({"id": "u1", "username": "alice"})
        );
        assert_eq!(v["module_id"], "m-7");
        assert_eq!(
            (
                v["ip"].as_str(),
                v["user_agent"].as_str(),
                v["outcome"].as_str()
            ),
            (Some("10.0.0.1"), Some("curl/8"), Some("success"))
        );
        assert_eq!(
            (v["prev_hash"].as_str(), v["hash"].as_str()),
            (Some(GENESIS), Some(hash.as_str()))
        );
        assert!(
            line.starts_with("{\"timestamp\":")
                && line.ends_with("}\n")
                && line.matches('\n').count() == 1
        );
    }

    #[test]
    fn the_hash_covers_every_field_and_the_previous_hash() {
        let (line, hash) = render(&KEY, GENESIS, &event("alice"));
        let mut v: Value = serde_json::from_str(&line).unwrap();
        let map = v.as_object_mut().unwrap();
        map.remove("hash");
        map.remove("prev_hash");
        assert_eq!(
            hash_value(&KEY, GENESIS, &v),
            hash,
            "a line verifies from its own text"
        );
        assert_eq!(link(&KEY, GENESIS, &event("alice")), hash);
        assert_ne!(link(&KEY, GENESIS, &event("mallory")), hash);
        assert_ne!(link(&KEY, &hash, &event("alice")), hash);
    }

    #[test]
    fn the_hash_depends_on_the_key_so_the_chain_cannot_be_recomputed_without_it() {
        let hash = link(&KEY, GENESIS, &event("alice"));
        assert_ne!(link(&ChainKey([8; 32]), GENESIS, &event("alice")), hash);
        let unkeyed = {
            use sha2::Digest;
            let mut text = String::new();
            canonical(
                &serde_json::to_value(shape(&event("alice"))).unwrap(),
                &mut text,
            );
            hex::encode(Sha256::digest(format!("{GENESIS}\n{text}")))
        };
        assert_ne!(
            unkeyed, hash,
            "a plain SHA-256 over the same text is not the hash"
        );
    }

    #[test]
    fn no_user_value_can_break_a_line() {
        let forged = "bob\n{\"event\":\"login_success\"}\r\u{85}\u{2028}\u{7f}\u{1b}[31m";
        let (line, _) = render(&KEY, GENESIS, &event(forged));
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(
            !line.contains(['\r', '\u{85}', '\u{2028}', '\u{7f}', '\u{1b}']),
            "{line}"
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["actor"]["username"], forged, "the value is kept, escaped");
    }
}
