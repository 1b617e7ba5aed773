//! Application logs through `tracing`: readable text by default, JSON lines with `--log-format json`.
//!
//! The redaction rule of audit.yml applies here too: a field whose name contains one of
//! `sensitive_fields` is logged as `[REDACTED]`, at any depth of a JSON line. Control characters
//! in logged values are escaped, so a value cannot start a forged log line.

use std::{
    fmt,
    io::{self, IsTerminal, Write},
    sync::RwLock,
};

use platform::audit::{Redactor, redact::REDACTED};
use tracing::field::{Field, Visit};
use tracing_subscriber::{
    EnvFilter,
    field::{MakeVisitor, VisitFmt, VisitOutput},
    fmt::{self as tfmt, MakeWriter, format::DefaultFields},
};

use crate::cli::LogFormat;

const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn";

/// Until the config is read, the spec's own list applies.
static REDACTOR: RwLock<Option<Redactor>> = RwLock::new(None);

fn with_redactor<T>(f: impl FnOnce(&Redactor) -> T) -> T {
    let guard = REDACTOR
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match guard.as_ref() {
        Some(r) => f(r),
        None => f(&Redactor::new(
            true,
            &["password", "token", "secret", "key"],
        )),
    }
}

/// Applies audit.yml's `filter_sensitive_data` and `sensitive_fields` to the logs from now on.
pub fn set_redactor(redactor: Redactor) {
    *REDACTOR
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(redactor);
}

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let ansi = std::io::stderr().is_terminal();
    let result = match format {
        LogFormat::Text => tfmt::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(ansi)
            .fmt_fields(RedactingFields(DefaultFields::new()))
            .try_init(),
        LogFormat::Json => tfmt::fmt()
            .with_env_filter(filter)
            .with_writer(RedactingJson)
            .with_target(false)
            .with_ansi(false)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    if let Err(e) = result {
        eprintln!("warning: logging was already initialised: {e}");
    }
}

/// Text output: redacts by field name and escapes control characters in values.
pub struct RedactingFields<M>(pub M);

impl<T, M: MakeVisitor<T>> MakeVisitor<T> for RedactingFields<M> {
    type Visitor = RedactingVisitor<M::Visitor>;

    fn make_visitor(&self, target: T) -> Self::Visitor {
        RedactingVisitor(self.0.make_visitor(target))
    }
}

pub struct RedactingVisitor<V>(V);

/// Escapes control characters (newlines among them) of a value's text.
struct Escaped(String);

impl fmt::Debug for Escaped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn escape_controls(s: String) -> String {
    if !s.chars().any(char::is_control) {
        return s;
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

impl<V: Visit> Visit for RedactingVisitor<V> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if with_redactor(|r| r.is_sensitive(field.name())) {
            self.0.record_debug(field, &format_args!("{REDACTED}"));
        } else {
            self.0
                .record_debug(field, &Escaped(escape_controls(format!("{value:?}"))));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if with_redactor(|r| r.is_sensitive(field.name())) {
            self.0.record_str(field, REDACTED);
        } else {
            self.0
                .record_str(field, &escape_controls(value.to_string()));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{}", platform::error_chain(value)));
    }
}

impl<V: VisitOutput<O>, O> VisitOutput<O> for RedactingVisitor<V> {
    fn finish(self) -> O {
        self.0.finish()
    }
}

impl<V: VisitFmt> VisitFmt for RedactingVisitor<V> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        self.0.writer()
    }
}

/// JSON output: each line is parsed and its sensitive fields redacted before it reaches stderr.
pub struct RedactingJson;

impl<'a> MakeWriter<'a> for RedactingJson {
    type Writer = JsonLine;

    fn make_writer(&'a self) -> Self::Writer {
        JsonLine(Vec::with_capacity(256))
    }
}

/// Buffers one formatted event and writes it, redacted, when dropped.
pub struct JsonLine(Vec<u8>);

impl Write for JsonLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Redacts every JSON line of `text` (lines that are not JSON are kept as they are).
pub fn redact_json_lines(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for line in text.split_inclusive(|b| *b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(mut v) => {
                with_redactor(|r| r.redact(&mut v));
                out.extend_from_slice(serde_json::to_string(&v).unwrap_or_default().as_bytes());
                out.push(b'\n');
            }
            Err(_) => out.extend_from_slice(line),
        }
    }
    out
}

impl Drop for JsonLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let _ = io::stderr().lock().write_all(&redact_json_lines(&self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_log_lines_are_redacted_at_any_depth() {
        let line = br#"{"message":"x","password":"p","nested":{"api_key":"k","list":[{"Token":"t"}]},"user":"bob"}
"#;
        let out = String::from_utf8(redact_json_lines(line)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["password"], REDACTED);
        assert_eq!(v["nested"]["api_key"], REDACTED);
        assert_eq!(v["nested"]["list"][0]["Token"], REDACTED);
        assert_eq!(v["user"], "bob");
    }

    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn text_log_fields_are_redacted_and_cannot_forge_a_line() {
        let out = Captured::default();
        let subscriber = tfmt::fmt()
            .with_writer(out.clone())
            .with_ansi(false)
            .fmt_fields(RedactingFields(DefaultFields::new()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(client_secret = "s3cr3t", session_token = %"abc", username = %"bob\nINFO forged line", "login");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(
            !text.contains("s3cr3t") && !text.contains("abc") && text.contains(REDACTED),
            "{text}"
        );
        assert_eq!(text.matches('\n').count(), 1, "one line: {text}");
        assert!(text.contains("bob\\nINFO forged line"), "{text}");
    }
}
