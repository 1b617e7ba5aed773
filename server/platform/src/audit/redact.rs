//! Redaction of sensitive fields (audit.yml `filter_sensitive_data`, `sensitive_fields`).
//!
//! A field is sensitive when its name contains one of the configured words, case-insensitively,
//! at any depth of objects and arrays. The same rule serves the application logs.

use serde_json::Value;

/// What replaces a sensitive value.
pub const REDACTED: &str = "[REDACTED]";

/// The configured words, lowercased; empty when filtering is off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redactor {
    words: Vec<String>,
}

impl Redactor {
    pub fn new<S: AsRef<str>>(enabled: bool, words: &[S]) -> Self {
        let words = if enabled {
            words
                .iter()
                .map(|w| w.as_ref().trim().to_lowercase())
                .filter(|w| !w.is_empty())
                .collect()
        } else {
            Vec::new()
        };
        Self { words }
    }

    /// Whether a field of this name is redacted.
    pub fn is_sensitive(&self, name: &str) -> bool {
        if self.words.is_empty() {
            return false;
        }
        let name = name.to_lowercase();
        self.words.iter().any(|w| name.contains(w.as_str()))
    }

    /// Replaces the value of every sensitive field in `value`, at any depth.
    pub fn redact(&self, value: &mut Value) {
        if self.words.is_empty() {
            return;
        }
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if self.is_sensitive(key) {
                        *v = Value::String(REDACTED.to_string());
                    } else {
                        self.redact(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact(v)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_fields_are_redacted_at_any_depth_whatever_their_case() {
        let r = Redactor::new(true, &["password", "token", "secret", "key"]);
        let mut v = serde_json::json!({
            "username": "alice",
            "New_Password": "hunter2",
            "nested": {"list": [{"refreshToken": "abc", "ok": 1}, {"deeper": {"API_KEY": "k", "SecretSauce": {"x": 1}}}]},
        });
        r.redact(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "username": "alice",
                "New_Password": REDACTED,
                "nested": {"list": [{"refreshToken": REDACTED, "ok": 1}, {"deeper": {"API_KEY": REDACTED, "SecretSauce": REDACTED}}]},
            })
        );
    }

    #[test]
    fn nothing_is_redacted_when_filtering_is_off() {
        let r = Redactor::new(false, &["password"]);
        let mut v = serde_json::json!({"password": "x"});
        r.redact(&mut v);
        assert_eq!(v["password"], "x");
        assert!(!r.is_sensitive("password"));
    }
}
