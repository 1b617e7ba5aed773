//! YAML value plumbing for the loader: parsing, merging over defaults, `${VAR}`, placeholders.

use serde_yaml_ng::{Mapping, Value};

/// Example values from the spec that must never reach a running system.
pub const PLACEHOLDERS: &[&str] = &[
    "your-256-bit-secret-key-here",
    "your-google-client-id",
    "your-google-client-secret",
    "yourdomain.com",
    "admin-password",
    "secure_random_password",
    "hooks.slack.com/services/...",
];

pub(super) fn parse(text: &str) -> Result<Value, String> {
    let value: Value = serde_yaml_ng::from_str(text).map_err(|e| format!("not valid YAML: {e}"))?;
    match value {
        Value::Null => Ok(Value::Mapping(Mapping::new())),
        Value::Mapping(_) => Ok(value),
        _ => Err("expected a mapping of keys at the top level".to_string()),
    }
}

/// `user` over `base`: mappings merge key by key, anything else replaces.
pub(super) fn merge(base: Value, user: Value) -> Value {
    match (base, user) {
        (Value::Mapping(mut base), Value::Mapping(user)) => {
            for (key, value) in user {
                let merged = match base.remove(&key) {
                    Some(old) => merge(old, value),
                    None => value,
                };
                base.insert(key, merged);
            }
            Value::Mapping(base)
        }
        (_, user) => user,
    }
}

fn key_path(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if !segment.starts_with('[') && !out.is_empty() {
            out.push('.');
        }
        out.push_str(segment);
    }
    out
}

fn segment(key: &Value) -> String {
    match key {
        Value::String(s) if s.contains(['.', '/', '*', ' ']) => format!("\"{s}\""),
        Value::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// Replaces `${VAR}` in every string with the variable's value; a missing variable is reported.
/// Sections switched off with `enabled: false` are left as they are.
pub(super) fn interpolate(
    value: &mut Value,
    path: &mut Vec<String>,
    env: &dyn Fn(&str) -> Option<String>,
    report: &mut dyn FnMut(String, String),
) {
    match value {
        Value::String(s) if s.contains("${") => match substitute(s, env) {
            Ok(new) => *s = new,
            Err(reason) => report(key_path(path), reason),
        },
        Value::Mapping(map) if !switched_off(map) => {
            for (k, v) in map.iter_mut() {
                path.push(segment(k));
                interpolate(v, path, env, report);
                path.pop();
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                interpolate(v, path, env, report);
                path.pop();
            }
        }
        _ => {}
    }
}

fn substitute(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unclosed ${ in value".to_string())?;
        let name = &after[..end];
        let valid =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(format!(
                "\"${{{name}}}\" is not a valid environment variable reference"
            ));
        }
        match env(name) {
            Some(v) => out.push_str(&v),
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_placeholder(s: &str) -> bool {
    PLACEHOLDERS.iter().any(|p| s.contains(p))
}

fn switched_off(map: &Mapping) -> bool {
    matches!(map.get("enabled"), Some(Value::Bool(false)))
}

fn contains_placeholder(value: &Value) -> bool {
    match value {
        Value::String(s) => is_placeholder(s),
        Value::Mapping(m) => m.values().any(contains_placeholder),
        Value::Sequence(items) => items.iter().any(contains_placeholder),
        _ => false,
    }
}

/// Reports the spec's example values in a user's file, except inside sections with `enabled: false`.
pub(super) fn find_placeholders(
    value: &Value,
    path: &mut Vec<String>,
    report: &mut dyn FnMut(String, String),
) {
    match value {
        Value::String(s) if is_placeholder(s) => {
            let key = key_path(path);
            let hint = if key.ends_with("jwt.secret") {
                "set secret: \"${JWT_SECRET}\" and export JWT_SECRET with at least 32 random bytes (e.g. `openssl rand -base64 48`), or remove the key to let a local server generate one into its data dir"
            } else {
                "replace it with your real value, or \"${VARIABLE}\" to read it from the environment"
            };
            report(
                key,
                format!("still has the example value from the guide; {hint}"),
            );
        }
        Value::Mapping(map) if !switched_off(map) => {
            for (k, v) in map {
                path.push(segment(k));
                find_placeholders(v, path, report);
                path.pop();
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                find_placeholders(v, path, report);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Built-in defaults never put an example value into effect: a list entry holding one is switched
/// off when it has an `enabled` flag and dropped otherwise, and a lone example value is removed.
pub(super) fn without_placeholders(value: Value) -> Value {
    match value {
        Value::Mapping(map) => Value::Mapping(
            map.into_iter()
                .filter(|(_, v)| !matches!(v, Value::String(s) if is_placeholder(s)))
                .map(|(k, v)| (k, without_placeholders(v)))
                .collect(),
        ),
        Value::Sequence(items) => Value::Sequence(
            items
                .into_iter()
                .filter_map(|item| match item {
                    Value::Mapping(mut m) if contains_placeholder(&Value::Mapping(m.clone())) => {
                        m.contains_key("enabled").then(|| {
                            m.insert(Value::from("enabled"), Value::Bool(false));
                            Value::Mapping(m)
                        })
                    }
                    other if contains_placeholder(&other) => None,
                    other => Some(without_placeholders(other)),
                })
                .collect(),
        ),
        other => other,
    }
}
