//! Chain v2: the personal values of an event, and the sealed shape the chain hashes.
//!
//! An event's personal values are the actor's id and name, the client's address and user agent,
//! a target account's id, and the `details` keys in [`PERSONAL_DETAILS`]. Each belongs to a
//! subject (`subjects.rs`): the actor, the target account, or the account a detail names. The
//! chain does not hash them; it hashes `pii`, a map from each value's JSON pointer to
//! `{"s": pseudonym, "d": HMAC-SHA256(subject key, "v2\0" ‖ event id ‖ "\0" ‖ pointer ‖ "\0" ‖
//! canonical value)}`. Erasing a person removes their plaintext and destroys their key: the hashed
//! bytes do not change, so the chain verifies, and the digests can no longer be tested.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::{RecordedEvent, line};

/// `details` keys that carry a person's data (the event's target account's, else the actor's).
pub const PERSONAL_DETAILS: [&str; 8] = [
    "username", "email", "dn", "name", "owner", "owner_id", "detail", "by_name",
];
/// `details` keys naming another account by its username (its subject when it exists).
pub const NAMING_DETAILS: [&str; 2] = ["with", "target"];

/// One sealed personal value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The subject's pseudonym.
    pub s: String,
    /// The keyed digest of the value (empty when the subject was already erased at record time).
    pub d: String,
}

/// Pointer → sealed value.
pub type Pii = BTreeMap<String, Sealed>;

/// Whose value a pointer holds, before subjects are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// An account id.
    Account(String),
    /// A username another account may have (resolved by the audit service).
    Username(String),
    /// A value that belongs to no account (kept under the day's epoch subject).
    Nobody,
}

/// The personal values of `r` (pointer, value, owner), in pointer order.
pub fn fields(r: &RecordedEvent) -> Vec<(String, Value, Owner)> {
    let e = &r.event;
    let actor = match &e.actor.id {
        Some(id) => Owner::Account(id.clone()),
        None => Owner::Nobody,
    };
    let target = e
        .target
        .as_ref()
        .filter(|t| t.kind == "user" && !t.id.is_empty());
    // Whose data the personal details are: the target account's, else the owner's that the
    // event names (`details.owner_id`, e.g. a module deleted on its owner's erasure), else the
    // actor's.
    let owner_id = e
        .details
        .get("owner_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let context = match (target, &owner_id) {
        (Some(t), _) => Owner::Account(t.id.clone()),
        (None, Some(owner)) => Owner::Account(owner.clone()),
        (None, None) => actor.clone(),
    };
    let mut out = Vec::new();
    if let Some(id) = &e.actor.id {
        out.push((
            "/actor/id".to_string(),
            Value::from(id.clone()),
            actor.clone(),
        ));
    }
    let system = e.actor.id.is_none() && e.actor.name == "system";
    if !e.actor.name.is_empty() && !system {
        out.push((
            "/actor/username".to_string(),
            Value::from(e.actor.name.clone()),
            actor.clone(),
        ));
    }
    if let Some(ip) = &e.ip {
        out.push(("/ip".to_string(), Value::from(ip.clone()), actor.clone()));
    }
    if let Some(ua) = &e.user_agent {
        out.push((
            "/user_agent".to_string(),
            Value::from(ua.clone()),
            actor.clone(),
        ));
    }
    if let Some(t) = target {
        out.push((
            format!("/{}", line::resource_key(&t.kind)),
            Value::from(t.id.clone()),
            Owner::Account(t.id.clone()),
        ));
    }
    if let Value::Object(details) = &e.details {
        for (key, value) in details {
            if value.is_null() {
                continue;
            }
            let owner = if PERSONAL_DETAILS.contains(&key.as_str()) {
                context.clone()
            } else if NAMING_DETAILS.contains(&key.as_str()) {
                // A share's grantee is `{"kind": "user", "name": …}`; a role is not personal.
                let name = match value.get("kind").and_then(Value::as_str) {
                    Some("user") => value.get("name").and_then(Value::as_str),
                    Some(_) => continue,
                    None => value.as_str(),
                };
                match name {
                    Some(name) => Owner::Username(name.to_string()),
                    None => context.clone(),
                }
            } else {
                continue;
            };
            out.push((format!("/details/{}", escape(key)), value.clone(), owner));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The keyed digest of one personal value.
pub fn digest(key: &[u8; 32], event: &uuid::Uuid, pointer: &str, value: &Value) -> String {
    let mut text = String::with_capacity(64);
    line::canonical(value, &mut text);
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(b"v2\0");
    mac.update(event.to_string().as_bytes());
    mac.update(b"\0");
    mac.update(pointer.as_bytes());
    mac.update(b"\0");
    mac.update(text.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Removes the value at `pointer` (an object member) from `value`; absent paths are ignored.
pub fn remove(value: &mut Value, pointer: &str) -> Option<Value> {
    let (parent, last) = pointer.rsplit_once('/')?;
    let target = if parent.is_empty() {
        Some(value)
    } else {
        value.pointer_mut(parent)
    };
    target?.as_object_mut()?.remove(&unescape(last))
}

/// Sets `value` at `pointer`, making the parent objects.
pub fn insert(root: &mut Value, pointer: &str, value: Value) {
    let mut current = root;
    let tokens: Vec<String> = pointer.split('/').skip(1).map(unescape).collect();
    for (i, token) in tokens.iter().enumerate() {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        let Value::Object(map) = current else { return };
        if i + 1 == tokens.len() {
            map.insert(token.clone(), value);
            return;
        }
        current = map
            .entry(token.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Whether a plaintext value is there (not removed, not blanked).
pub fn present(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// The sealed shape: the event's shape without the values `pii` names, plus `v` and `pii`.
pub fn sealed(plain: &Value, pii: &Pii) -> Value {
    let mut value = plain.clone();
    for pointer in pii.keys() {
        remove(&mut value, pointer);
    }
    if let Value::Object(map) = &mut value {
        map.insert("v".into(), Value::from(2));
        map.insert(
            "pii".into(),
            serde_json::to_value(pii).unwrap_or(Value::Null),
        );
    }
    value
}

/// What a file line holds: the sealed shape plus the plaintext that is still there.
pub fn line_value(plain: &Value, pii: &Pii) -> Value {
    let mut value = sealed(plain, pii);
    for pointer in pii.keys() {
        if let Some(v) = plain.pointer(pointer).filter(|v| present(Some(v))) {
            insert(&mut value, pointer, v.clone());
        }
    }
    value
}

/// Drops the plaintext at `pointer` from an event (the subject is being erased).
pub fn clear(r: &mut RecordedEvent, pointer: &str) {
    let e = &mut r.event;
    match pointer {
        "/actor/id" => e.actor.id = None,
        "/actor/username" => e.actor.name.clear(),
        "/ip" => e.ip = None,
        "/user_agent" => e.user_agent = None,
        p if p.starts_with("/details/") => {
            remove(&mut e.details, &p["/details".len()..]);
        }
        p => {
            if let Some(t) = &mut e.target
                && p == format!("/{}", line::resource_key(&t.kind))
            {
                t.id.clear();
            }
        }
    }
}

/// The pseudonyms an event names, as stored in `audit_logs.subjects` (` s-a s-b `).
pub fn subjects_column(pii: &Pii) -> String {
    let mut names: Vec<&str> = pii.values().map(|s| s.s.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    format!(" {} ", names.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Actor, AuditEvent, EventKind, Outcome};

    fn event() -> RecordedEvent {
        RecordedEvent {
            id: uuid::Uuid::nil(),
            timestamp: chrono::Utc::now(),
            event: AuditEvent::new(
                EventKind::UserCreate,
                Actor::user("a-1", "admin"),
                Outcome::Success,
            )
            .with_target("user", "u-2")
            .with_client(Some("203.0.113.7".into()), Some("curl/8.1".into()))
            .with_details(serde_json::json!({"username": "bob", "roles": ["viewer"], "with": {"kind": "user", "name": "carol"}, "role": {"kind": "role", "name": "ops"}})),
            pii: None,
        }
    }

    #[test]
    fn personal_values_belong_to_the_actor_the_target_or_the_named_account() {
        let fields = fields(&event());
        let owners: Vec<(&str, &Owner)> = fields.iter().map(|(p, _, o)| (p.as_str(), o)).collect();
        let actor = Owner::Account("a-1".into());
        let target = Owner::Account("u-2".into());
        assert_eq!(
            owners,
            vec![
                ("/actor/id", &actor),
                ("/actor/username", &actor),
                ("/details/username", &target),
                ("/details/with", &Owner::Username("carol".into())),
                ("/ip", &actor),
                ("/user_agent", &actor),
                ("/user_id", &target),
            ]
        );
    }

    #[test]
    fn the_sealed_shape_is_the_same_with_or_without_the_plaintext() {
        let mut r = event();
        let pii: Pii = fields(&r)
            .into_iter()
            .map(|(p, v, _)| {
                let d = digest(&[1; 32], &r.id, &p, &v);
                (p, Sealed { s: "s-x".into(), d })
            })
            .collect();
        let plain = line::plain_value(&r);
        let before = sealed(&plain, &pii);
        let line = line_value(&plain, &pii);
        assert_eq!(line["actor"]["username"], "admin");
        assert_eq!(line["details"]["roles"], serde_json::json!(["viewer"]));
        assert_eq!(line["details"]["with"]["name"], "carol");
        for pointer in pii.keys() {
            clear(&mut r, pointer);
        }
        let erased = line::plain_value(&r);
        assert_eq!(
            r.event.details,
            serde_json::json!({"roles": ["viewer"], "role": {"kind": "role", "name": "ops"}})
        );
        assert_eq!(sealed(&erased, &pii), before);
        let text = line_value(&erased, &pii).to_string();
        for gone in ["admin", "bob", "carol", "203.0.113.7", "curl", "u-2", "a-1"] {
            assert!(!text.contains(gone), "{gone} in {text}");
        }
    }

    #[test]
    fn a_digest_is_bound_to_its_event_and_field() {
        let v = Value::from("alice");
        let id = uuid::Uuid::nil();
        let d = digest(&[1; 32], &id, "/actor/username", &v);
        assert_ne!(d, digest(&[1; 32], &id, "/details/username", &v));
        assert_ne!(
            d,
            digest(&[1; 32], &uuid::Uuid::max(), "/actor/username", &v)
        );
        assert_ne!(d, digest(&[2; 32], &id, "/actor/username", &v));
    }
}
