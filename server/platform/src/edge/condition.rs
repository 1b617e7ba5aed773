//! The condition language of ids.yml rules, parsed into a small typed tree.
//!
//! ```text
//! condition := all ("or" all)*
//! all       := atom ("and" atom)*
//! atom      := "(" condition ")" | signal
//! signal    := "failed_logins" (">" | ">=") COUNT "in" SPAN        sign-in failures from one address
//!            | "execution_rate" (">" | ">=") COUNT "/" UNIT         runs by one user (UNIT: s, min, h)
//!            | "module_size" (">" | ">=") SIZE                      an uploaded module's size
//!            | "contains_suspicious_patterns"                       the analysis matched a pattern
//!            | "permission_denied"                                  a request was refused
//!            | "target_resource" "=" NAME                           …for this resource; "admin" names
//!                                                                   the resources only admins hold
//! ```
//!
//! A rule watches one kind of event (sign-ins, uploads, refusals or runs), so a condition may not
//! mix signals of two kinds. Errors name the 1-based column where the problem starts.

use std::{fmt, time::Duration};

use crate::config::units::{ByteSize, Span};

/// The kind of event a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watches {
    /// Failed sign-ins (`login_failure`), counted per source address.
    SignIns,
    /// Module uploads, judged by the static analysis.
    Uploads,
    /// Refused requests (`permission_denied`).
    Refusals,
    /// Module runs (`module_execute`), counted per user.
    Runs,
}

impl Watches {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIns => "sign-ins",
            Self::Uploads => "uploads",
            Self::Refusals => "refused requests",
            Self::Runs => "module runs",
        }
    }
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Any(Vec<Condition>),
    All(Vec<Condition>),
    /// More than `more_than` failed sign-ins from one address within `within`.
    FailedLogins {
        more_than: u64,
        within: Duration,
    },
    /// More than `more_than` runs by one user within `per`.
    ExecutionRate {
        more_than: u64,
        per: Duration,
    },
    /// An upload larger than `more_than` bytes.
    ModuleSize {
        more_than: u64,
    },
    /// The analysis found a suspicious pattern.
    SuspiciousPatterns,
    /// The event is a refusal.
    PermissionDenied,
    /// The refused permission's resource (`admin`: one only the admin role holds).
    TargetResource(String),
}

/// Why a condition does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at column {column}: {message}")]
pub struct ConditionError {
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl Condition {
    /// The kind of event this condition watches.
    pub fn watches(&self) -> Watches {
        match self {
            Self::Any(c) | Self::All(c) => c.first().map_or(Watches::Refusals, Self::watches),
            Self::FailedLogins { .. } => Watches::SignIns,
            Self::ExecutionRate { .. } => Watches::Runs,
            Self::ModuleSize { .. } | Self::SuspiciousPatterns => Watches::Uploads,
            Self::PermissionDenied | Self::TargetResource(_) => Watches::Refusals,
        }
    }

    /// Every signal of the tree, in order.
    pub fn signals(&self) -> Vec<&Condition> {
        match self {
            Self::Any(c) | Self::All(c) => c.iter().flat_map(Self::signals).collect(),
            signal => vec![signal],
        }
    }

    /// True when the tree is signals joined by `or` only (what the upload analysis can apply).
    pub fn is_disjunction(&self) -> bool {
        match self {
            Self::Any(c) => c.iter().all(Self::is_disjunction),
            Self::All(_) => false,
            _ => true,
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, list: &[Condition], word: &str| {
            for (i, c) in list.iter().enumerate() {
                if i > 0 {
                    write!(f, " {word} ")?;
                }
                match c {
                    Condition::Any(_) | Condition::All(_) => write!(f, "({c})")?,
                    _ => write!(f, "{c}")?,
                }
            }
            Ok(())
        };
        match self {
            Self::Any(c) => join(f, c, "or"),
            Self::All(c) => join(f, c, "and"),
            Self::FailedLogins { more_than, within } => {
                write!(f, "failed_logins > {more_than} in {}", Span(*within))
            }
            Self::ExecutionRate { more_than, per } => {
                write!(f, "execution_rate > {more_than} per {}", Span(*per))
            }
            Self::ModuleSize { more_than } => write!(f, "module_size > {}", ByteSize(*more_than)),
            Self::SuspiciousPatterns => f.write_str("contains_suspicious_patterns"),
            Self::PermissionDenied => f.write_str("permission_denied"),
            Self::TargetResource(r) => write!(f, "target_resource = {r}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Number(u64),
    /// A number glued to a unit: `50MB`, `5m`.
    Quantity(String),
    Greater,
    GreaterEq,
    Equals,
    Slash,
    Open,
    Close,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Word(w) | Self::Quantity(w) => write!(f, "\"{w}\""),
            Self::Number(n) => write!(f, "{n}"),
            Self::Greater => f.write_str("\">\""),
            Self::GreaterEq => f.write_str("\">=\""),
            Self::Equals => f.write_str("\"=\""),
            Self::Slash => f.write_str("\"/\""),
            Self::Open => f.write_str("\"(\""),
            Self::Close => f.write_str("\")\""),
        }
    }
}

/// The longest condition accepted, in characters.
const MAX_LEN: usize = 1000;

fn tokens(text: &str) -> Result<Vec<(usize, Token)>, ConditionError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        let single = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '>' if chars.get(i + 1) == Some(&'=') => {
                i += 1;
                Some(Token::GreaterEq)
            }
            '>' => Some(Token::Greater),
            '=' if chars.get(i + 1) == Some(&'=') => {
                i += 1;
                Some(Token::Equals)
            }
            '=' => Some(Token::Equals),
            '/' => Some(Token::Slash),
            '(' => Some(Token::Open),
            ')' => Some(Token::Close),
            _ => None,
        };
        if let Some(token) = single {
            out.push((column, token));
            i += 1;
            continue;
        }
        if !(c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            return Err(ConditionError {
                column,
                message: format!("unexpected character '{c}'"),
            });
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_.-".contains(chars[i])) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let token = if word.chars().all(|c| c.is_ascii_digit()) {
            Token::Number(word.parse().map_err(|_| ConditionError {
                column,
                message: format!("{word} is too large"),
            })?)
        } else if word.starts_with(|c: char| c.is_ascii_digit()) {
            Token::Quantity(word)
        } else {
            Token::Word(word.to_lowercase())
        };
        out.push((column, token));
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
    end: usize,
    depth: usize,
}

impl Parser {
    fn column(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(c, _)| *c)
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, ConditionError> {
        Err(ConditionError {
            column: self.column(),
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn next(&mut self, wanted: &str) -> Result<Token, ConditionError> {
        match self.tokens.get(self.at) {
            Some((_, t)) => {
                self.at += 1;
                Ok(t.clone())
            }
            None => self.error(format!("expected {wanted}, but the condition ends")),
        }
    }

    fn keyword(&mut self, word: &str) -> bool {
        if self.peek() == Some(&Token::Word(word.into())) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn condition(&mut self) -> Result<Condition, ConditionError> {
        let mut any = vec![self.all()?];
        while self.keyword("or") {
            any.push(self.all()?);
        }
        Ok(if any.len() == 1 {
            any.remove(0)
        } else {
            Condition::Any(any)
        })
    }

    fn all(&mut self) -> Result<Condition, ConditionError> {
        let mut all = vec![self.atom()?];
        while self.keyword("and") {
            all.push(self.atom()?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Condition::All(all)
        })
    }

    fn atom(&mut self) -> Result<Condition, ConditionError> {
        if self.peek() == Some(&Token::Open) {
            if self.depth >= 8 {
                return self.error("parentheses nest too deep (at most 8)");
            }
            self.at += 1;
            self.depth += 1;
            let inner = self.condition()?;
            self.depth -= 1;
            return match self.next("\")\"")? {
                Token::Close => Ok(inner),
                other => {
                    self.at -= 1;
                    self.error(format!("expected \")\", found {other}"))
                }
            };
        }
        let column = self.column();
        let name = match self.next("a signal")? {
            Token::Word(w) => w,
            other => {
                self.at -= 1;
                return self.error(format!(
                    "expected a signal such as failed_logins, found {other}"
                ));
            }
        };
        match name.as_str() {
            "failed_logins" => {
                let more_than = self.threshold()?;
                if !self.keyword("in") {
                    return self
                        .error("expected \"in\" and a window, as in \"failed_logins > 5 in 5m\"");
                }
                let within = self.span()?;
                Ok(Condition::FailedLogins { more_than, within })
            }
            "execution_rate" => {
                let more_than = self.threshold()?;
                match self.next("\"/\" and a unit")? {
                    Token::Slash => {}
                    other => {
                        self.at -= 1;
                        return self.error(format!(
                            "expected \"/\" and a unit, as in \"1000/min\", found {other}"
                        ));
                    }
                }
                let per = match self.next("a unit (s, min or h)")? {
                    Token::Word(u) => match u.as_str() {
                        "s" | "sec" | "second" => Duration::from_secs(1),
                        "m" | "min" | "minute" => Duration::from_secs(60),
                        "h" | "hour" => Duration::from_secs(3600),
                        _ => {
                            self.at -= 1;
                            return self.error(format!("unknown unit \"{u}\" (use s, min or h)"));
                        }
                    },
                    other => {
                        self.at -= 1;
                        return self.error(format!("expected a unit (s, min or h), found {other}"));
                    }
                };
                Ok(Condition::ExecutionRate { more_than, per })
            }
            "module_size" => {
                let more_than = self.threshold_with(|text| {
                    text.parse::<ByteSize>()
                        .map(|b| b.bytes())
                        .map_err(|e| e.to_string())
                })?;
                Ok(Condition::ModuleSize { more_than })
            }
            "contains_suspicious_patterns" => Ok(Condition::SuspiciousPatterns),
            "permission_denied" => Ok(Condition::PermissionDenied),
            "target_resource" => {
                match self.next("\"=\"")? {
                    Token::Equals => {}
                    other => {
                        self.at -= 1;
                        return self.error(format!("expected \"=\", found {other}"));
                    }
                }
                match self.next("a resource name")? {
                    Token::Word(r) => Ok(Condition::TargetResource(r)),
                    other => {
                        self.at -= 1;
                        self.error(format!("expected a resource name, found {other}"))
                    }
                }
            }
            _ => Err(ConditionError {
                column,
                message: format!(
                    "unknown signal \"{name}\" (known: failed_logins, execution_rate, module_size, \
                     contains_suspicious_patterns, permission_denied, target_resource)"
                ),
            }),
        }
    }

    /// `> N` or `>= N` as "more than": `>= 6` is `> 5`.
    fn threshold(&mut self) -> Result<u64, ConditionError> {
        self.threshold_with(|text| {
            text.parse::<u64>()
                .map_err(|_| format!("\"{text}\" is not a whole number"))
        })
    }

    fn threshold_with(
        &mut self,
        parse: impl Fn(&str) -> Result<u64, String>,
    ) -> Result<u64, ConditionError> {
        let inclusive = match self.next("\">\"")? {
            Token::Greater => false,
            Token::GreaterEq => true,
            other => {
                self.at -= 1;
                return self.error(format!("expected \">\" or \">=\", found {other}"));
            }
        };
        let value = match self.next("a number")? {
            Token::Number(n) => parse(&n.to_string()),
            Token::Quantity(q) => parse(&q),
            other => {
                self.at -= 1;
                return self.error(format!("expected a number, found {other}"));
            }
        };
        let value = match value {
            Ok(v) => v,
            Err(message) => {
                self.at -= 1;
                return self.error(message);
            }
        };
        match (inclusive, value) {
            (false, v) => Ok(v),
            (true, 0) => {
                self.at -= 1;
                self.error("\">= 0\" is always true")
            }
            (true, v) => Ok(v - 1),
        }
    }

    fn span(&mut self) -> Result<Duration, ConditionError> {
        match self.next("a window such as 5m")? {
            Token::Quantity(q) => match q.parse::<Span>() {
                Ok(s) if !s.duration().is_zero() => Ok(s.duration()),
                Ok(_) => {
                    self.at -= 1;
                    self.error("the window must be longer than zero")
                }
                Err(e) => {
                    self.at -= 1;
                    self.error(e.to_string())
                }
            },
            other => {
                self.at -= 1;
                self.error(format!("expected a window such as 5m, found {other}"))
            }
        }
    }
}

/// Parses a condition and checks it watches one kind of event.
pub fn parse(text: &str) -> Result<Condition, ConditionError> {
    if text.chars().count() > MAX_LEN {
        return Err(ConditionError {
            column: MAX_LEN + 1,
            message: format!("a condition is at most {MAX_LEN} characters"),
        });
    }
    let tokens = tokens(text)?;
    let end = text.chars().count() + 1;
    if tokens.is_empty() {
        return Err(ConditionError {
            column: 1,
            message: "the condition is empty".into(),
        });
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        end,
        depth: 0,
    };
    let condition = parser.condition()?;
    if let Some(extra) = parser.peek() {
        return parser.error(format!("expected \"and\" or \"or\", found {extra}"));
    }
    // Every signal must watch the same kind of event: find the first one that does not.
    let first = condition.watches();
    let mut signal = 0;
    let mut at = 0;
    while at < parser.tokens.len() {
        if let (column, Token::Word(w)) = &parser.tokens[at]
            && let Some(watch) = watches_of(w)
        {
            if watch != first {
                return Err(ConditionError {
                    column: *column,
                    message: format!(
                        "\"{w}\" watches {}, but this rule watches {}; a rule watches one kind of event",
                        watch.as_str(),
                        first.as_str()
                    ),
                });
            }
            signal += 1;
        }
        at += 1;
    }
    debug_assert_eq!(signal, condition.signals().len());
    Ok(condition)
}

fn watches_of(word: &str) -> Option<Watches> {
    match word {
        "failed_logins" => Some(Watches::SignIns),
        "execution_rate" => Some(Watches::Runs),
        "module_size" | "contains_suspicious_patterns" => Some(Watches::Uploads),
        "permission_denied" | "target_resource" => Some(Watches::Refusals),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConditionError {
        parse(text).unwrap_err()
    }

    #[test]
    fn the_spec_s_four_conditions_parse_into_their_signals() {
        assert_eq!(
            parse("failed_logins > 5 in 5m").unwrap(),
            Condition::FailedLogins {
                more_than: 5,
                within: Duration::from_secs(300)
            }
        );
        assert_eq!(
            parse("module_size > 50MB or contains_suspicious_patterns").unwrap(),
            Condition::Any(vec![
                Condition::ModuleSize {
                    more_than: 50 * 1024 * 1024
                },
                Condition::SuspiciousPatterns
            ])
        );
        assert_eq!(
            parse("permission_denied and target_resource = admin").unwrap(),
            Condition::All(vec![
                Condition::PermissionDenied,
                Condition::TargetResource("admin".into())
            ])
        );
        assert_eq!(
            parse("execution_rate > 1000/min").unwrap(),
            Condition::ExecutionRate {
                more_than: 1000,
                per: Duration::from_secs(60)
            }
        );
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_group() {
        let c =
            parse("permission_denied or permission_denied and target_resource = users").unwrap();
        assert!(matches!(&c, Condition::Any(v) if matches!(v[1], Condition::All(_))));
        let c =
            parse("(permission_denied or target_resource = users) and permission_denied").unwrap();
        assert!(matches!(&c, Condition::All(v) if matches!(v[0], Condition::Any(_))));
        assert_eq!(
            c.to_string(),
            "(permission_denied or target_resource = users) and permission_denied"
        );
    }

    #[test]
    fn at_least_is_more_than_one_less() {
        assert_eq!(
            parse("failed_logins >= 6 in 5m").unwrap(),
            parse("failed_logins > 5 in 5m").unwrap()
        );
        assert_eq!(err("failed_logins >= 0 in 5m").column, 18);
    }

    #[test]
    fn malformed_conditions_are_rejected_with_the_column() {
        let e = err("failed_logins > five in 5m");
        assert_eq!(
            (e.column, e.message.as_str()),
            (17, "expected a number, found \"five\"")
        );
        let e = err("failed_logins > 5");
        assert_eq!(e.column, 18);
        assert!(e.message.contains("\"in\""), "{e}");
        let e = err("failed_logins > 5 in 5 minutes");
        assert_eq!(e.column, 22);
        let e = err("failed_logins > 5 in 5parsecs");
        assert_eq!(e.column, 22);
        let e = err("module_size > 50XB");
        assert_eq!(e.column, 15);
        assert!(e.message.contains("unknown unit"), "{e}");
        let e = err("failed_login > 5 in 5m");
        assert_eq!(e.column, 1);
        assert!(e.message.contains("unknown signal \"failed_login\""), "{e}");
        let e = err("execution_rate > 1000/fortnight");
        assert_eq!(e.column, 23);
        let e = err("permission_denied and");
        assert_eq!(e.column, 22);
        assert!(e.message.contains("the condition ends"), "{e}");
        let e = err("permission_denied permission_denied");
        assert_eq!(e.column, 19);
        let e = err("(permission_denied");
        assert_eq!(e.column, 19);
        let e = err("permission_denied & target_resource = admin");
        assert_eq!(
            (e.column, e.message.as_str()),
            (19, "unexpected character '&'")
        );
        assert_eq!(err("   ").column, 1);
        assert!(err(&"(".repeat(20)).message.contains("too deep"));
        assert!(err(&"x".repeat(2000)).message.contains("at most"));
    }

    #[test]
    fn a_condition_watches_one_kind_of_event() {
        let e = err("failed_logins > 5 in 5m or module_size > 1MB");
        assert_eq!(e.column, 28);
        assert!(e.message.contains("watches uploads"), "{e}");
        assert_eq!(
            parse("module_size > 1MB").unwrap().watches(),
            Watches::Uploads
        );
        assert!(
            parse("module_size > 1MB or contains_suspicious_patterns")
                .unwrap()
                .is_disjunction()
        );
        assert!(
            !parse("module_size > 1MB and contains_suspicious_patterns")
                .unwrap()
                .is_disjunction()
        );
    }
}
