//! Anonymisation (privacy.yml `data_anonymization`: ip_address, user_agent) with an injected
//! clock, SQLite always and PostgreSQL on a fresh database. Events keep their client's network
//! (/24) and browser family from the start; the full address and user agent are dropped from the
//! database and the audit file once the IDS window (24 hours with the spec's ids.yml) has
//! passed, and not before; the chain still verifies and counts them as reduced; the security
//! report ranks failed sign-ins by network; an altered reduced form is caught.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use platform::{
    Platform,
    access::Principal,
    audit::{AuditQuery, verify},
    identity::auth::Client,
};
use sea_orm::{ConnectionTrait, Statement};
use secrecy::SecretString;

const OLD_IP: &str = "203.0.113.77";
const OLD_UA: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 Anon-Test-7781";
const NEW_IP: &str = "198.51.100.5";
const NEW_UA: &str = "curl/8.5.0";

fn client(ip: &str, ua: &str) -> Client {
    Client {
        ip: Some(ip.into()),
        user_agent: Some(ua.into()),
    }
}

/// `(source_ip, user_agent, ip_net, ua_family)` of every row for `event`, oldest first.
async fn rows(platform: &Platform, event: &str) -> Vec<[Option<String>; 4]> {
    platform
        .audit()
        .flush(std::time::Duration::from_secs(10))
        .await;
    let db = platform.db();
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT source_ip, user_agent, ip_net, ua_family FROM audit_logs WHERE event = '{event}' ORDER BY seq"
    );
    db.query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            ["source_ip", "user_agent", "ip_net", "ua_family"]
                .map(|c| r.try_get::<Option<String>>("", c).unwrap())
        })
        .collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

async fn anonymisation(database_url: Option<String>) {
    let (platform, clock, dir) = support::start_with_clock(database_url, false).await;
    let audit = platform.audit();
    let identity = platform.identity();
    support::signed_in(&platform, "ana", "developer", "anon.example").await;
    let wrong = SecretString::from("not-the-password");
    let right = SecretString::from(support::PASSWORD);
    identity
        .login("ana", &right, &client(OLD_IP, OLD_UA))
        .await
        .unwrap();
    assert!(
        identity
            .login("ana", &wrong, &client(OLD_IP, OLD_UA))
            .await
            .is_err()
    );

    // Recorded with the reduced forms beside the full values.
    let first = rows(&platform, "login_success").await;
    assert_eq!(
        first.last().unwrap(),
        &[s(OLD_IP), s(OLD_UA), s("203.0.113.0/24"), s("Firefox 128")]
    );

    // Within the window nothing is dropped.
    clock.advance(chrono::Duration::hours(23));
    let none = platform.compliance().anonymise().await.unwrap();
    assert_eq!((none.addresses, none.user_agents, none.lines), (0, 0, 0));

    // A day and an hour on, someone signs in from elsewhere; then the old values go.
    clock.advance(chrono::Duration::hours(2));
    identity
        .login("ana", &right, &client(NEW_IP, NEW_UA))
        .await
        .unwrap();
    let done = platform.compliance().anonymise().await.unwrap();
    assert_eq!((done.addresses, done.user_agents), (2, 2), "{done:?}");
    assert_eq!(done.lines, 2, "{done:?}");
    let after = rows(&platform, "login_success").await;
    assert_eq!(
        after[after.len() - 2],
        [None, None, s("203.0.113.0/24"), s("Firefox 128")]
    );
    assert_eq!(
        after[after.len() - 1],
        [s(NEW_IP), s(NEW_UA), s("198.51.100.0/24"), s("curl 8")],
        "the recent sign-in keeps its full values"
    );
    assert_eq!(
        rows(&platform, "login_failure").await,
        vec![[None, None, s("203.0.113.0/24"), s("Firefox 128")]]
    );
    let again = platform.compliance().anonymise().await.unwrap();
    assert_eq!((again.addresses, again.user_agents, again.lines), (0, 0, 0));

    // Neither the audit file nor the journal holds the old values; the file keeps the new ones.
    let log = dir.path().join("data/audit.log");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(OLD_IP) && !text.contains("Anon-Test-7781"));
    assert!(text.contains("203.0.113.0/24") && text.contains(NEW_IP));
    // The rolled journal segment goes once the destinations pass the pass's own event.
    let journal = dir.path().join("data/audit-journal");
    let mut left = testkit::files_holding(&journal, OLD_IP.as_bytes());
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        left = testkit::files_holding(&journal, OLD_IP.as_bytes());
    }
    assert_eq!(left, Vec::<String>::new());

    // The chain verifies and counts what was reduced, in the database and the file.
    let db_check = audit.verify_database().await.unwrap();
    assert_eq!(db_check.broken, None, "{db_check:?}");
    assert_eq!(db_check.reduced, 4, "{db_check:?}");
    let subjects = audit.subjects().all().await.unwrap();
    let (key, _) = platform::secrets::audit_chain_key(&dir.path().join("data"), false).unwrap();
    let file_check = verify::files_with_subjects(
        &verify::rotated_set(&log),
        &platform::audit::line::ChainKey::new(key),
        Some(&subjects),
    )
    .unwrap();
    assert_eq!(file_check.broken, None, "{file_check:?}");
    assert_eq!(file_check.reduced, 4, "{file_check:?}");

    // Search, the CSV export and the security report show the network.
    let page = audit
        .search(
            &Principal::System,
            &AuditQuery::from_params(&platform::audit::AuditParams {
                q: "203.0.113.0/24".into(),
                ..Default::default()
            })
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(page.events.len(), 2);
    assert!(platform::audit::query::csv_row(&page.events[0]).contains("203.0.113.0/24"));
    let now = platform::clock::Clock::now(&clock);
    let report = platform
        .security_report(&Principal::System, now - chrono::Duration::days(2), now)
        .await
        .unwrap();
    assert_eq!(report.failed_logins_by_address.len(), 1);
    assert_eq!(report.failed_logins_by_address[0].name, "203.0.113.0/24");

    // The reduced form is hashed with the event: changing it breaks the chain.
    let db = platform.db();
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        "UPDATE audit_logs SET ip_net = '10.0.0.0/24' WHERE event = 'login_failure'",
    ))
    .await
    .unwrap();
    let broken = audit.verify_database().await.unwrap();
    assert!(
        broken
            .broken
            .is_some_and(|b| b.to_string().contains("does not match its keyed hash")),
    );
    platform.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymisation_on_sqlite() {
    anonymisation(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymisation_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    anonymisation(Some(db.url.clone())).await;
    db.drop_db().await;
}
