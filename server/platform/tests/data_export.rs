//! Personal-data exports (privacy.yml `data_export`) on the compliance service with an injected
//! clock: an export holds exactly one person's data (two people with modules, shares, runs,
//! tokens and events; the document's every section compared), is sealed with age and opened by
//! the real `age` command (with the recipient's key, and with a passphrase), downloads once,
//! expires, and refuses bad recipients and other people's exports. The CSV format is a zip of one
//! CSV file per section with the module files. SQLite always, PostgreSQL on a fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::{io::Write, process::Command};

use platform::{
    Platform,
    access::Principal,
    compliance::{
        ComplianceError,
        export::{ExportRequest, ExportStatus},
    },
    identity::api_tokens::NewApiToken,
    modules::Grantee,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

fn request(format: &str, recipient: Option<String>, passphrase: Option<&str>) -> ExportRequest {
    ExportRequest {
        format: format.into(),
        include_binaries: true,
        recipient,
        passphrase: passphrase.map(SecretString::from),
    }
}

/// Asks for an export, waits for it and downloads it; the sealed bytes.
async fn export(
    platform: &Platform,
    who: &Principal,
    req: ExportRequest,
) -> (ExportStatus, Vec<u8>) {
    let compliance = platform.compliance();
    let queued = compliance.request_export(who, None, req).await.unwrap();
    assert_eq!(queued.status, "queued");
    compliance.exports_idle().await;
    let ready = compliance.export_status(who, &queued.id).await.unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.progress),
        ("ready", 100),
        "{ready:?}"
    );
    let download = compliance.take_export(who, &queued.id).await.unwrap();
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut { download.file }, &mut bytes)
        .await
        .unwrap();
    assert_eq!(bytes.len() as u64, download.size);
    (ready, bytes)
}

/// Opens an age file with the `age` command and the identity file `key`.
fn age_with_key(sealed: &[u8], identity: &age::x25519::Identity) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.txt");
    std::fs::write(&key, format!("{}\n", identity.to_string().expose_secret())).unwrap();
    let input = dir.path().join("export.age");
    std::fs::write(&input, sealed).unwrap();
    let out = dir.path().join("export");
    let status = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&key)
        .arg("-o")
        .arg(&out)
        .arg(&input)
        .status()
        .expect("the age command (Debian package age) runs");
    assert!(status.success(), "age -d -i failed");
    std::fs::read(out).unwrap()
}

/// Opens an age file with the `age` command and a passphrase. age reads a passphrase from its
/// terminal only, so it runs under script(1), whose terminal gets the passphrase typed in.
fn age_with_passphrase(sealed: &[u8], passphrase: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("export.age");
    std::fs::write(&input, sealed).unwrap();
    let out = dir.path().join("export");
    let command = format!("age -d -o {} {}", out.display(), input.display());
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("script(1) runs");
    std::thread::sleep(std::time::Duration::from_millis(500));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{passphrase}\n").as_bytes())
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "age -d with the passphrase failed");
    std::fs::read(out).unwrap()
}

fn column(rows: &Value, key: &str) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| match &r[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

async fn one_persons_data(database_url: Option<String>) {
    let (platform, clock, _dir) = support::start_with_clock(database_url, true).await;
    let alice = support::signed_in(&platform, "alice", "developer", "alice.example").await;
    let bob = support::signed_in(&platform, "bob", "developer", "bob.example").await;
    let alice_tool = support::upload_wat(&platform, &alice, "alice-tool", support::ADD).await;
    let bob_tool = support::upload_wat(&platform, &bob, "bob-tool", support::ADD).await;
    platform
        .modules()
        .share(&alice, &alice_tool, Grantee::User("bob".into()))
        .await
        .unwrap();
    platform
        .modules()
        .share(&bob, &bob_tool, Grantee::User("alice".into()))
        .await
        .unwrap();
    support::run_add(&platform, &alice, &alice_tool).await;
    support::run_add(&platform, &bob, &bob_tool).await;
    support::run_add(&platform, &bob, &alice_tool).await;
    let new_token = |name: &str| NewApiToken {
        name: name.into(),
        expires_in_days: Some(30),
        permissions: None,
    };
    let identity = platform.identity();
    identity
        .create_api_token(&alice, new_token("alice-ci"))
        .await
        .unwrap();
    identity
        .create_api_token(&bob, new_token("bob-secret-ci"))
        .await
        .unwrap();
    // Alice has an authenticator app.
    let setup = identity.totp_setup(&alice).await.unwrap();
    let totp_key = setup.secret.clone();
    let secret = platform::identity::mfa::totp::base32_decode(&setup.secret).unwrap();
    let now_code = {
        use platform::clock::Clock;
        let step = platform::identity::mfa::totp::step_at(clock.now().timestamp() as u64);
        platform::identity::mfa::totp::display_code(&secret, step)
    };
    let alice_codes = identity
        .confirm_totp(
            &alice,
            &now_code,
            &platform::identity::auth::Client::default(),
        )
        .await
        .unwrap();
    clock.advance(chrono::Duration::minutes(5));

    // privacy.yml asks for encryption: an export without a recipient or passphrase is refused.
    let refused = platform
        .compliance()
        .request_export(&alice, None, request("json", None, None))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ComplianceError::Invalid(f) if f.contains_key("recipient")),
        "{refused:?}"
    );

    let key = age::x25519::Identity::generate();
    let (status, sealed) = export(
        &platform,
        &alice,
        request("json", Some(key.to_public().to_string()), None),
    )
    .await;
    assert!(sealed.starts_with(b"age-encryption.org/v1"));
    assert!(
        status.file_name.ends_with(".json.age"),
        "{}",
        status.file_name
    );
    let plain = age_with_key(&sealed, &key);
    let text = String::from_utf8(plain.clone()).unwrap();
    let doc: Value = serde_json::from_slice(&plain).unwrap();
    let alice_id = alice.id().unwrap();
    let bob_id = bob.id().unwrap();

    assert_eq!(doc["export"]["username"], "alice");
    assert_eq!(doc["export"]["user_id"], alice_id);
    let account = &doc["account"];
    assert_eq!(account["username"], "alice");
    assert_eq!(account["email"], "alice@alice.example");
    assert_eq!(account["roles"], serde_json::json!(["developer"]));
    assert_eq!(account["password_set"], true);
    assert!(account.get("password_hash").is_none());
    assert_eq!(doc["linked_identities"], serde_json::json!([]));
    assert_eq!(column(&doc["sessions"], "kind"), ["api"], "one API sign-in");
    assert_eq!(column(&doc["api_tokens"], "name"), ["alice-ci"]);
    // Her authenticator app and recovery codes, as facts: never the secret or a code.
    assert_eq!(
        column(&doc["second_factors"], "kind"),
        ["totp", "recovery_codes"]
    );
    assert_eq!(doc["second_factors"][1]["remaining"], 10);
    assert!(!text.contains(&totp_key), "the TOTP secret");
    assert!(
        alice_codes.iter().all(|c| !text.contains(c.as_str())),
        "a recovery code"
    );
    assert_eq!(column(&doc["modules"], "id"), [alice_tool.as_str()]);
    let binary = doc["modules"][0]["binary"].as_str().unwrap();
    use base64::Engine;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(binary)
            .unwrap(),
        wat::parse_str(support::ADD).unwrap()
    );
    assert_eq!(
        doc["shares"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (
                s["direction"].as_str().unwrap(),
                s["module_id"].as_str().unwrap(),
                s["grantee"].as_str().unwrap_or("")
            ))
            .collect::<Vec<_>>(),
        [
            ("by_me", alice_tool.as_str(), "bob"),
            ("with_me", bob_tool.as_str(), "")
        ]
    );
    assert_eq!(
        column(&doc["runs"], "module_id"),
        [alice_tool.as_str()],
        "alice's run only, not bob's run of her module"
    );
    let events = doc["audit_events"].as_array().unwrap();
    for e in events {
        assert!(
            e["actor_id"] == alice_id || (e["target_type"] == "user" && e["target_id"] == alice_id),
            "an event neither by nor about alice: {e}"
        );
    }
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for kind in [
        "user_create",
        "login_success",
        "module_upload",
        "module_share",
        "api_token_create",
        "data_export",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    // Nothing of bob's: not his id, email, runs or token; his module only as shared with alice
    // (its id and name, once).
    assert_eq!(text.matches(bob_tool.as_str()).count(), 1);
    for theirs in [
        bob_id,
        "bob@bob.example",
        "bob-secret-ci",
        "bob-tool description",
    ] {
        if let Some(at) = text.find(theirs) {
            let around = &text[at.saturating_sub(300)..(at + 100).min(text.len())];
            panic!("the export holds {theirs}: …{around}…");
        }
    }
    // Never a secret: no password hash, token hash or session key.
    assert!(!text.contains("$argon2"), "a password hash");

    // The link works once.
    let again = platform
        .compliance()
        .take_export(&alice, &status.id)
        .await
        .unwrap_err();
    assert!(matches!(again, ComplianceError::Downloaded), "{again:?}");
    // Bob cannot see, let alone fetch, alice's export.
    assert!(matches!(
        platform.compliance().take_export(&bob, &status.id).await,
        Err(ComplianceError::UnknownExport(_))
    ));
    platform.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_holds_one_persons_data_on_sqlite() {
    one_persons_data(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_holds_one_persons_data_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    one_persons_data(Some(db.url.clone())).await;
    db.drop_db().await;
}

async fn passphrase_csv_expiry_and_refusals(database_url: Option<String>) {
    let (platform, clock, dir) = support::start_with_clock(database_url, false).await;
    let carol = support::signed_in(&platform, "carol", "developer", "carol.example").await;
    let dave = support::signed_in(&platform, "dave", "viewer", "dave.example").await;
    let admin = support::signed_in(&platform, "root", "admin", "admin.example").await;
    let tool = support::upload_wat(&platform, &carol, "carol-tool", support::ADD).await;
    let compliance = platform.compliance();

    // A passphrase-sealed CSV zip, opened by `age -d` with the passphrase.
    let passphrase = "correct horse battery staple";
    let (status, sealed) = export(&platform, &carol, request("csv", None, Some(passphrase))).await;
    assert!(status.file_name.ends_with(".zip.age"));
    let zipped = age_with_passphrase(&sealed, passphrase);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zipped)).unwrap();
    let mut names: Vec<String> = zip.file_names().map(|n| n.unwrap().to_string()).collect();
    names.sort();
    let binary = format!("modules/{tool}.wasm");
    let mut expected = vec![
        "account.csv",
        "api_tokens.csv",
        "audit_events.csv",
        "export.csv",
        "linked_identities.csv",
        "modules.csv",
        "runs.csv",
        "second_factors.csv",
        "sessions.csv",
        "shares.csv",
    ];
    expected.push(&binary);
    expected.sort();
    assert_eq!(names, expected);
    let mut account = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("account.csv").unwrap(), &mut account).unwrap();
    let mut lines = account.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,username,email,disabled,password_set,roles,created_at,updated_at,last_login_at"
    );
    assert!(
        lines
            .next()
            .unwrap()
            .contains(",carol,carol@carol.example,false,true,")
    );
    let mut wasm = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name(&binary).unwrap(), &mut wasm).unwrap();
    assert_eq!(wasm, wat::parse_str(support::ADD).unwrap());

    // Bad recipients and short passphrases name their field and store nothing.
    for (recipient, passphrase, field) in [
        (Some("age1notarecipient".to_string()), None, "recipient"),
        (
            Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA".to_string()),
            None,
            "recipient",
        ),
        (None, Some("short"), "passphrase"),
    ] {
        let err = compliance
            .request_export(&carol, None, request("json", recipient, passphrase))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ComplianceError::Invalid(f) if f.contains_key(field)),
            "{err:?}"
        );
    }
    let err = compliance
        .request_export(&carol, None, request("xml", None, Some(passphrase)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ComplianceError::Invalid(f) if f.contains_key("format")),
        "{err:?}"
    );
    assert_eq!(compliance.list_exports(&carol).await.unwrap().len(), 1);

    // A link unused for a day expires, and its file is gone.
    let key = age::x25519::Identity::generate();
    let queued = compliance
        .request_export(
            &carol,
            None,
            request("json", Some(key.to_public().to_string()), None),
        )
        .await
        .unwrap();
    compliance.exports_idle().await;
    let file = dir
        .path()
        .join("data/exports")
        .join(format!("{}.export", queued.id));
    assert!(file.exists());
    clock.advance(chrono::Duration::hours(25));
    let err = compliance
        .take_export(&carol, &queued.id)
        .await
        .unwrap_err();
    assert!(matches!(err, ComplianceError::Expired), "{err:?}");
    assert!(!file.exists(), "an expired export's file is deleted");
    assert_eq!(
        compliance
            .export_status(&carol, &queued.id)
            .await
            .unwrap()
            .status,
        "expired"
    );

    // Exporting someone else's data takes users:read and system:audit: a viewer is refused.
    let err = compliance
        .request_export(
            &dave,
            Some(carol.id().unwrap()),
            request("json", None, Some(passphrase)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ComplianceError::Forbidden(_)), "{err:?}");
    // An administrator may; the export is theirs to fetch, not carol's.
    let (by_admin, sealed) = {
        let queued = compliance
            .request_export(
                &admin,
                Some(carol.id().unwrap()),
                request("json", Some(key.to_public().to_string()), None),
            )
            .await
            .unwrap();
        compliance.exports_idle().await;
        assert!(matches!(
            compliance.take_export(&carol, &queued.id).await,
            Err(ComplianceError::UnknownExport(_))
        ));
        let d = compliance.take_export(&admin, &queued.id).await.unwrap();
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut { d.file }, &mut bytes)
            .await
            .unwrap();
        (queued, bytes)
    };
    let doc: Value = serde_json::from_slice(&age_with_key(&sealed, &key)).unwrap();
    assert_eq!(doc["account"]["username"], "carol");
    assert_eq!(by_admin.username, "carol");
    // Both the request and the download are audited, naming the administrator.
    platform.audit().caught_up().await;
    let q = platform::audit::AuditQuery {
        events: vec![platform::audit::EventKind::DataExport],
        actor: Some("root".into()),
        ..Default::default()
    };
    let page = platform
        .audit()
        .search(&Principal::System, &q)
        .await
        .unwrap();
    let stages: Vec<String> = page
        .events
        .iter()
        .map(|e| e.event.details["stage"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stages, ["downloaded", "requested"]);
    platform.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passphrases_csv_expiry_and_refusals_on_sqlite() {
    passphrase_csv_expiry_and_refusals(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passphrases_csv_expiry_and_refusals_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    passphrase_csv_expiry_and_refusals(Some(db.url.clone())).await;
    db.drop_db().await;
}
