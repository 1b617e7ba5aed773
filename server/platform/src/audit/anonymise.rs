//! privacy.yml `data_anonymization` for the audit trail: the reduced forms of a client address
//! (IPv4 /24, IPv6 /48) and user agent (family and major version), written with each event and
//! hashed with it, and the job that drops the full values once the IDS window has passed.
//!
//! The full `ip` and `user_agent` of a v2 event are personal values the chain does not hash
//! (`personal.rs`), so dropping them never breaks it; `admin audit verify` counts them as
//! reduced. Events recorded before anonymisation was on carry no reduced form and keep their
//! full values until retention prunes them.

use std::{io, net::IpAddr, path::Path};

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::Value;

use super::{AuditError, entity, erase, line};

/// The network a client address belongs to: `a.b.c.0/24` for IPv4 (and IPv4-mapped IPv6),
/// the /48 prefix for IPv6. `None` for text that is not an address.
pub fn reduce_ip(ip: &str) -> Option<String> {
    let addr: IpAddr = ip.trim().parse().ok()?;
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    };
    Some(match addr {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            format!("{net}/48")
        }
    })
}

/// Families known by their product token, most specific first (Edge and Opera also say Chrome,
/// Chrome also says Safari).
const FAMILIES: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("HeadlessChrome/", "Chrome"),
    ("Chrome/", "Chrome"),
    ("CriOS/", "Chrome"),
    ("curl/", "curl"),
    ("Wget/", "Wget"),
    ("python-requests/", "python-requests"),
    ("python-httpx/", "python-httpx"),
    ("Go-http-client/", "Go-http-client"),
    ("PostmanRuntime/", "Postman"),
    ("node-fetch/", "node-fetch"),
    ("axios/", "axios"),
    ("okhttp/", "okhttp"),
    ("reqwest/", "reqwest"),
    ("wasm-as-os-cli/", "wasm-as-os-cli"),
];

/// A user agent's family and major version (`Firefox 128`, `curl 8`), or `other`.
pub fn ua_family(ua: &str) -> String {
    let major = |rest: &str| -> Option<String> {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        (!digits.is_empty() && digits.len() <= 6).then_some(digits)
    };
    for (token, family) in FAMILIES {
        if let Some(at) = ua.find(token)
            && let Some(v) = major(&ua[at + token.len()..])
        {
            return format!("{family} {v}");
        }
    }
    // Safari says its version in `Version/17.4 … Safari/605`.
    if ua.contains("Safari/")
        && let Some(at) = ua.find("Version/")
        && let Some(v) = major(&ua[at + "Version/".len()..])
    {
        return format!("Safari {v}");
    }
    "other".to_string()
}

/// What one anonymisation pass changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Anonymised {
    /// Database rows whose full address was dropped.
    pub addresses: u64,
    /// Database rows whose full user agent was dropped.
    pub user_agents: u64,
    /// Audit file lines rewritten.
    pub lines: u64,
}

/// Drops the full address and user agent of the rows recorded before `cutoff` that keep a
/// reduced form. The columns, and the column of each one's reduced form, come from the data
/// classification table (`compliance/classification.rs`). One statement per column, each
/// idempotent.
pub async fn database(
    db: &DatabaseConnection,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<(u64, u64), AuditError> {
    use crate::{compliance::classification, config::privacy::AnonymizedField};
    use sea_orm::sea_query::{Alias, ExprTrait};
    let mut counts = [0u64; 2];
    for (i, field) in [AnonymizedField::IpAddress, AnonymizedField::UserAgent]
        .into_iter()
        .enumerate()
    {
        for (column, reduced_into) in classification::reduced("audit_logs", field) {
            counts[i] += entity::Entity::update_many()
                .col_expr(Alias::new(column), Expr::value(Option::<String>::None))
                .filter(entity::Column::OccurredAt.lt(cutoff))
                .filter(Expr::col(Alias::new(column)).is_not_null())
                .filter(Expr::col(Alias::new(reduced_into)).is_not_null())
                .exec(db)
                .await?
                .rows_affected;
        }
    }
    Ok((counts[0], counts[1]))
}

/// How many rows recorded before `cutoff` still keep a full address or user agent that
/// [`database`] would drop.
pub async fn unreduced(
    db: &DatabaseConnection,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<u64, AuditError> {
    use sea_orm::{Condition, PaginatorTrait};
    Ok(entity::Entity::find()
        .filter(entity::Column::OccurredAt.lt(cutoff))
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(entity::Column::SourceIp.is_not_null())
                        .add(entity::Column::IpNet.is_not_null()),
                )
                .add(
                    Condition::all()
                        .add(entity::Column::UserAgent.is_not_null())
                        .add(entity::Column::UaFamily.is_not_null()),
                ),
        )
        .count(db)
        .await?)
}

/// Rewrites the lines of `log` and its rotations recorded before `cutoff` without their full
/// address and user agent, where the line keeps the reduced form; returns the lines changed.
pub fn files(log: &Path, cutoff: chrono::DateTime<chrono::Utc>) -> io::Result<u64> {
    let cutoff = line::timestamp(&cutoff);
    erase::rewrite_set(log, &|text: &str| reduce_line(text, &cutoff))
}

/// The line without the full values that have a reduced form, when it is older than `cutoff`
/// (both RFC 3339 UTC with microseconds, so they compare as text); `None` to keep it.
fn reduce_line(text: &str, cutoff: &str) -> Option<String> {
    if !(text.contains("\"ip_net\"") || text.contains("\"ua_family\"")) {
        return None;
    }
    let mut value: Value = serde_json::from_str(text).ok()?;
    let map = value.as_object_mut()?;
    if map.get("v") != Some(&Value::from(2))
        || map.get("timestamp").and_then(Value::as_str)? >= cutoff
    {
        return None;
    }
    let mut touched = false;
    for (full, reduced) in [("ip", "ip_net"), ("user_agent", "ua_family")] {
        if map.get(reduced).is_some_and(Value::is_string)
            && map.get(full).is_some_and(|v| !v.is_null())
        {
            map.remove(full);
            touched = true;
        }
    }
    touched.then(|| line::escape_separators(&line::ordered(&value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_reduced_to_their_network() {
        assert_eq!(reduce_ip("203.0.113.77").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(
            reduce_ip("2001:db8:abcd:12:1:2:3:4").as_deref(),
            Some("2001:db8:abcd::/48")
        );
        assert_eq!(
            reduce_ip("::ffff:198.51.100.9").as_deref(),
            Some("198.51.100.0/24")
        );
        assert_eq!(reduce_ip("not an address"), None);
    }

    #[test]
    fn user_agents_are_reduced_to_family_and_major_version() {
        for (ua, family) in [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox 128",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
                "Chrome 126",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.56",
                "Edge 126",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
                "Safari 17",
            ),
            ("curl/8.5.0", "curl 8"),
            ("python-requests/2.31.0", "python-requests 2"),
            ("SomethingOdd/1.0 (unique-id 4711)", "other"),
            ("", "other"),
        ] {
            assert_eq!(ua_family(ua), family, "{ua}");
        }
    }

    #[test]
    fn only_old_v2_lines_with_a_reduced_form_lose_their_full_values() {
        let line = |ts: &str, v: u8| {
            format!(
                r#"{{"timestamp":"{ts}","event":"login_success","ip":"203.0.113.77","user_agent":"curl/8.5.0","ip_net":"203.0.113.0/24","ua_family":"curl 8","v":{v},"prev_hash":"x","hash":"y"}}"#
            )
        };
        let cutoff = "2026-01-02T00:00:00.000000Z";
        let old = reduce_line(&line("2026-01-01T00:00:00.000000Z", 2), cutoff).unwrap();
        assert!(
            !old.contains("203.0.113.77") && !old.contains("curl/8.5.0"),
            "{old}"
        );
        assert!(
            old.contains("203.0.113.0/24") && old.contains("\"hash\":\"y\""),
            "{old}"
        );
        assert_eq!(
            reduce_line(&line("2026-01-03T00:00:00.000000Z", 2), cutoff),
            None
        );
        assert_eq!(
            reduce_line(&line("2026-01-01T00:00:00.000000Z", 1), cutoff),
            None
        );
        assert_eq!(reduce_line(&old, cutoff), None, "idempotent");
    }
}
