//! Right to be forgotten (privacy.yml `right_to_be_forgotten`) on the compliance service with an
//! injected clock, SQLite always and PostgreSQL on a fresh database.
//!
//! A person with a password, sign-ins from a distinctive address and browser, failed sign-ins,
//! modules (one shared, one run by someone else), a share from someone else, an API token and a
//! downloaded export asks for erasure. A wrong password is refused; the request waits the grace
//! period of `automated_deletion`; then the erasure runs to the end. Afterwards none of the
//! person's username, email, account id, address or user agent is anywhere: not in any table, not
//! in any byte of the data dir (SQLite file and WAL, journal, audit files, exports, module store),
//! while `admin audit verify` passes on the database and on the files, and the other person's
//! data is still there. Tampering after the erasure is still caught.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use platform::{
    Platform,
    access::Principal,
    audit::{line::ChainKey, verify},
    compliance::{ComplianceError, erasure::RunOutcome},
    identity::{api_tokens::NewApiToken, auth::Client},
    modules::Grantee,
};
use sea_orm::{ConnectionTrait, Statement};
use secrecy::SecretString;

const OTHER: &str = r#"(module (func (export "add") (param i32 i32) (result i32) local.get 1 local.get 0 i32.add))"#;

/// The erased person's values, each distinctive enough that finding it anywhere is a leak.
const NAME: &str = "quillonmarsh";
const EMAIL: &str = "quillonmarsh@wrenfield.example";
const IP: &str = "203.0.113.77";
const AGENT: &str = "QuillonAgent/7.3 (X11; Linux x86_64)";

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Every row of every table as text (PostgreSQL: `row::text`; SQLite: the columns joined).
async fn table_dump(platform: &Platform) -> String {
    let db = platform.db();
    let backend = db.get_database_backend();
    let tables_sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'table'",
    };
    let tables: Vec<String> = db
        .query_all_raw(Statement::from_string(backend, tables_sql))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.try_get::<String>("", "name").unwrap())
        .collect();
    assert!(tables.iter().any(|t| t == "audit_logs"), "{tables:?}");
    let mut dump = String::new();
    for table in tables {
        let sql = match backend {
            sea_orm::DatabaseBackend::Postgres => {
                format!("SELECT t::text AS row FROM \"{table}\" t")
            }
            _ => {
                let cols: Vec<String> = db
                    .query_all_raw(Statement::from_string(
                        backend,
                        format!("SELECT name FROM pragma_table_info('{table}')"),
                    ))
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|r| r.try_get::<String>("", "name").unwrap())
                    .collect();
                // UUIDs are 16-byte blobs in SQLite: shown in hex (searched without dashes).
                let joined: Vec<String> = cols
                    .iter()
                    .map(|c| format!("COALESCE(CASE WHEN typeof(\"{c}\") = 'blob' THEN hex(\"{c}\") ELSE CAST(\"{c}\" AS TEXT) END, '')"))
                    .collect();
                format!(
                    "SELECT {} AS row FROM \"{table}\"",
                    joined.join(" || '|' || ")
                )
            }
        };
        for r in db
            .query_all_raw(Statement::from_string(backend, sql))
            .await
            .unwrap()
        {
            dump.push_str(&table);
            dump.push_str(": ");
            dump.push_str(&r.try_get::<String>("", "row").unwrap());
            dump.push('\n');
        }
    }
    dump
}

async fn erasure_leaves_nothing(database_url: Option<String>) {
    let (platform, clock, dir) = support::start_with_clock(database_url.clone(), true).await;
    let data = dir.path().join("data");
    let bob = support::signed_in(&platform, "bertrand", "developer", "bertrand.example").await;
    let _admin = support::signed_in(&platform, "carolyn", "admin", "carolyn.example").await;
    support::signed_in(&platform, NAME, "developer", "wrenfield.example").await;
    let client = Client {
        ip: Some(IP.into()),
        user_agent: Some(AGENT.into()),
    };
    let identity = platform.identity();
    let wrong = identity
        .login(NAME, &SecretString::from("not-the-password"), &client)
        .await;
    assert!(wrong.is_err());
    let pair = identity
        .login(NAME, &SecretString::from(support::PASSWORD), &client)
        .await
        .unwrap();
    let person = identity.authenticate(&pair.access_token).await.unwrap();
    let person_id = person.id().unwrap().to_string();

    let own = support::upload_wat(&platform, &person, "ledger", support::ADD).await;
    let shared_bytes = support::upload_wat(&platform, &person, "ledger-copy", OTHER).await;
    let bobs = support::upload_wat(&platform, &bob, "bobs-tool", OTHER).await;
    platform
        .modules()
        .share(&person, &own, Grantee::User("bertrand".into()))
        .await
        .unwrap();
    platform
        .modules()
        .share(&bob, &bobs, Grantee::User(NAME.into()))
        .await
        .unwrap();
    support::run_add(&platform, &person, &own).await;
    support::run_add(&platform, &bob, &own).await;
    support::run_add(&platform, &person, &bobs).await;
    identity
        .create_api_token(
            &person,
            NewApiToken {
                name: "quillon-ci".into(),
                expires_in_days: Some(30),
                permissions: None,
            },
        )
        .await
        .unwrap();
    let key = age::x25519::Identity::generate();
    let export = platform
        .compliance()
        .request_export(
            &person,
            None,
            platform::compliance::export::ExportRequest {
                format: "json".into(),
                include_binaries: true,
                recipient: Some(key.to_public().to_string()),
                passphrase: None,
            },
        )
        .await
        .unwrap();
    platform.compliance().exports_idle().await;
    platform
        .audit()
        .flush(std::time::Duration::from_secs(10))
        .await;
    let before = testkit::file_bytes(&data);
    assert!(
        before.iter().any(|(_, b)| holds(b, NAME)) && before.iter().any(|(_, b)| holds(b, IP)),
        "the setup put the person's values on disk"
    );
    assert!(
        std::fs::read_dir(data.join("exports")).unwrap().count() > 0,
        "{export:?}"
    );
    assert!(
        table_dump(&platform).await.contains(NAME),
        "the dump shows what the tables hold"
    );

    // A wrong password is refused, and recorded.
    let compliance = platform.compliance();
    let refused = compliance
        .request_erasure(&person, &SecretString::from("guess"))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ComplianceError::Invalid(f) if f.contains_key("password")),
        "{refused:?}"
    );
    // Someone else cannot erase another account.
    let denied = compliance
        .request_erasure_for(&bob, &person_id)
        .await
        .unwrap_err();
    assert!(
        matches!(denied, ComplianceError::Forbidden(_)),
        "{denied:?}"
    );

    // privacy.yml: automated_deletion: the request waits the grace period (7 days), then runs.
    let request = compliance
        .request_erasure(&person, &SecretString::from(support::PASSWORD))
        .await
        .unwrap();
    assert_eq!(request.status, "scheduled");
    assert_eq!(
        request.run_at.unwrap() - clock_now(&platform),
        chrono::Duration::days(7)
    );
    assert_eq!(
        compliance.run_erasures("test").await.unwrap(),
        RunOutcome::Idle
    );
    clock.advance(chrono::Duration::days(7) + chrono::Duration::minutes(1));
    let steps = support::run_erasure_to_end(&platform, &clock).await;
    assert_eq!(
        steps,
        [
            "settle",
            "modules",
            "modules",
            "rows",
            "scrub_db",
            "scrub_db",
            "scrub_files",
            "destroy",
            "compact"
        ],
        "each step ran (modules: one unit of work, then none left; scrub_db: one page, then none)"
    );
    let done = compliance
        .list_erasures(&Principal::System, false)
        .await
        .unwrap();
    assert_eq!(done[0].status, "done");
    assert_eq!(done[0].username, None);
    let summary = done[0].summary.clone().unwrap();
    assert_eq!(summary["modules_deleted"], 2, "{summary}");
    assert!(
        summary["audit_rows_scrubbed"].as_u64().unwrap() > 5,
        "{summary}"
    );
    assert!(
        summary["audit_lines_scrubbed"].as_u64().unwrap() > 5,
        "{summary}"
    );
    assert_eq!(
        compliance.run_erasures("test").await.unwrap(),
        RunOutcome::Idle
    );

    // The chain verifies, in the database and in the files, with the person's values erased.
    platform
        .audit()
        .flush(std::time::Duration::from_secs(10))
        .await;
    let db_check = platform.audit().verify_database().await.unwrap();
    assert_eq!(db_check.broken, None, "{db_check:?}");
    assert!(db_check.erased > 10, "{db_check:?}");
    let (chain, _) = platform::secrets::audit_chain_key(&data, false).unwrap();
    let chain = ChainKey::new(chain);
    let subjects = platform.audit().subjects().all().await.unwrap();
    let files = verify::rotated_set(&data.join("audit.log"));
    let file_check = verify::files_with_subjects(&files, &chain, Some(&subjects)).unwrap();
    assert_eq!(file_check.broken, None, "{file_check:?}");
    assert!(file_check.erased > 10, "{file_check:?}");
    assert_eq!(file_check.verified, db_check.verified);

    // Nothing of the person is left: not in any table, not in any byte of the data dir.
    let dump = table_dump(&platform).await;
    let id_hex = person_id.replace('-', "");
    for gone in [
        NAME,
        EMAIL,
        &person_id,
        &id_hex,
        IP,
        "QuillonAgent",
        "quillon-ci",
        "ledger",
    ] {
        let line = dump.lines().find(|l| holds(l.as_bytes(), gone));
        assert_eq!(line, None, "{gone} is still in the database");
    }
    assert!(dump.contains("bertrand"), "the other person's data stays");
    assert!(dump.contains("bobs-tool"));
    // The journal deletes delivered segments behind its readers; give it a moment.
    for _ in 0..50 {
        let after = testkit::file_bytes(&data);
        if !after.iter().any(|(_, b)| holds(b, NAME)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let after = testkit::file_bytes(&data);
    let id_bytes = uuid::Uuid::parse_str(&person_id).unwrap().into_bytes();
    let raw_id = |b: &[u8]| b.windows(16).any(|w| w == id_bytes);
    let files: Vec<&str> = after
        .iter()
        .filter(|(_, b)| raw_id(b))
        .map(|(p, _)| p.as_str())
        .collect();
    assert!(
        files.is_empty(),
        "the account id (as bytes) is still in {files:?}"
    );
    for gone in [NAME, EMAIL, &person_id, IP, "QuillonAgent"] {
        let files: Vec<&str> = after
            .iter()
            .filter(|(_, b)| holds(b, gone))
            .map(|(p, _)| p.as_str())
            .collect();
        assert!(files.is_empty(), "{gone} is still in {files:?}");
    }
    assert_eq!(
        std::fs::read_dir(data.join("exports")).unwrap().count(),
        0,
        "the person's export files are gone"
    );
    assert!(compliance.email_was_erased(EMAIL).await.unwrap());
    assert!(
        !compliance
            .email_was_erased("bertrand@bertrand.example")
            .await
            .unwrap()
    );
    let _ = shared_bytes;

    // Tampering after the erasure is still caught: writing the name back, or altering the
    // other person's name.
    let db = platform.db();
    let backend = db.get_database_backend();
    let (p1, p2) = match backend {
        sea_orm::DatabaseBackend::Postgres => ("$1", "$2"),
        _ => ("?", "?"),
    };
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        format!("UPDATE audit_logs SET actor_name = {p1} WHERE actor_name = {p2}"),
        ["mallory".into(), "bertrand".into()],
    ))
    .await
    .unwrap();
    let tampered = platform.audit().verify_database().await.unwrap();
    let reason = tampered.broken.map(|b| b.to_string()).unwrap_or_default();
    assert!(
        reason.contains("does not match its keyed digest"),
        "{reason}"
    );
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        format!("UPDATE audit_logs SET actor_name = {p1} WHERE actor_name = {p2}"),
        ["bertrand".into(), "mallory".into()],
    ))
    .await
    .unwrap();
    db.execute_raw(Statement::from_string(
        backend,
        format!(
            "UPDATE audit_logs SET actor_name = '{NAME}' WHERE actor_name IS NULL AND event = 'module_upload'"
        ),
    ))
    .await
    .unwrap();
    let restored = platform.audit().verify_database().await.unwrap();
    let reason = restored.broken.map(|b| b.to_string()).unwrap_or_default();
    assert!(reason.contains("plaintext of erased subject"), "{reason}");
    platform.close().await;
}

fn clock_now(platform: &Platform) -> chrono::DateTime<chrono::Utc> {
    platform.clock().now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_leaves_nothing_on_sqlite() {
    erasure_leaves_nothing(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_leaves_nothing_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    erasure_leaves_nothing(Some(db.url.clone())).await;
    db.drop_db().await;
}
