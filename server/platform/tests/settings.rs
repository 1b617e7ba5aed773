//! The Compliance page's settings (privacy.yml and soc2.yml) on SQLite and PostgreSQL: a save
//! applies at once without a restart and is audited with the values before and after; a stale
//! save (another administrator's, or the file changed on disk) is refused; an invalid value is
//! refused with its message by field and leaves everything as it was; a file edited on disk is
//! noticed; only `system:config` edits.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use std::collections::BTreeMap;

use platform::{
    Platform,
    access::Principal,
    audit::EventKind,
    compliance::{ComplianceError, export::ExportRequest, settings::SettingsPage},
    identity::roles::NewRole,
};

fn form(page: &SettingsPage, file: &str) -> (String, BTreeMap<String, String>) {
    let f = page.files.iter().find(|f| f.file == file).unwrap();
    (
        f.stamp.clone(),
        f.settings
            .iter()
            .map(|s| (s.key.clone(), s.value.clone()))
            .collect(),
    )
}

fn value(page: &SettingsPage, key: &str) -> (String, bool) {
    let s = page
        .files
        .iter()
        .flat_map(|f| &f.settings)
        .find(|s| s.key == key)
        .unwrap();
    (s.value.clone(), s.overridden)
}

async fn role(platform: &Platform, name: &str, permissions: &[&str]) {
    platform
        .identity()
        .create_role(
            &Principal::System,
            NewRole {
                name: name.into(),
                description: String::new(),
                permissions: permissions.iter().map(|p| p.to_string()).collect(),
            },
        )
        .await
        .unwrap();
}

fn export_request() -> ExportRequest {
    ExportRequest {
        format: "json".into(),
        include_binaries: false,
        recipient: None,
        passphrase: Some("a passphrase for the export".to_string().into()),
    }
}

async fn flow(database_url: Option<String>) {
    let (platform, _clock, dir) = support::start_requiring(database_url).await;
    let config = dir.path().join("config");
    let privacy_file = std::fs::read(config.join("privacy.yml")).unwrap();
    role(&platform, "settings-admin", &["system:*"]).await;
    role(&platform, "auditor", &["system:audit"]).await;
    let admin = support::signed_in(&platform, "alice", "settings-admin", "example.com").await;
    let other_admin = support::signed_in(&platform, "bob", "settings-admin", "example.com").await;
    let auditor = support::signed_in(&platform, "carol", "auditor", "example.com").await;
    let dev = support::signed_in(&platform, "dave", "developer", "example.com").await;
    let compliance = platform.compliance();

    // Who sees and who edits.
    assert!(matches!(
        compliance.settings(&dev).await,
        Err(ComplianceError::Forbidden(_))
    ));
    let seen = compliance.settings(&auditor).await.unwrap();
    assert!(!seen.can_edit);
    let (stamp, values) = form(&seen, "privacy.yml");
    assert!(matches!(
        compliance
            .save_settings(&auditor, "privacy.yml", &stamp, Some(&values))
            .await,
        Err(ComplianceError::Forbidden(_))
    ));
    let page = compliance.settings(&admin).await.unwrap();
    assert!(page.can_edit);
    assert_eq!(
        value(&page, "privacy.data_retention.audit_logs"),
        ("7y".into(), false)
    );

    // Exports are on; an admin turns them off and shortens the audit retention: at once, no
    // restart.
    compliance
        .request_export(&dev, None, export_request())
        .await
        .unwrap();
    let (stamp, mut values) = form(&page, "privacy.yml");
    values.insert("privacy.data_export.enabled".into(), "false".into());
    values.insert("privacy.data_retention.audit_logs".into(), "5y".into());
    let after = compliance
        .save_settings(&admin, "privacy.yml", &stamp, Some(&values))
        .await
        .unwrap();
    assert_eq!(
        value(&after, "privacy.data_retention.audit_logs"),
        ("5y".into(), true)
    );
    assert!(matches!(
        compliance
            .request_export(&dev, None, export_request())
            .await,
        Err(ComplianceError::Disabled("data_export"))
    ));
    assert_eq!(
        compliance.privacy_settings().retention[0].1,
        "5 years",
        "the settings in force"
    );
    // The file on disk is untouched: the change lives in the override layer.
    assert_eq!(
        std::fs::read(config.join("privacy.yml")).unwrap(),
        privacy_file
    );

    // Audited with the values before and after, only the keys that changed.
    let events = support::events_json(&platform, EventKind::ConfigChange).await;
    let saved = events
        .iter()
        .find(|e| e["details"]["source"] == "dashboard")
        .expect("a config_change from the dashboard");
    assert_eq!(saved["actor"]["name"], "alice");
    assert_eq!(saved["details"]["file"], "privacy.yml");
    assert_eq!(
        saved["details"]["before"],
        serde_json::json!({"privacy.data_export.enabled": true, "privacy.data_retention.audit_logs": "7y"})
    );
    assert_eq!(
        saved["details"]["after"],
        serde_json::json!({"privacy.data_export.enabled": false, "privacy.data_retention.audit_logs": "5y"})
    );

    // Bob's page was rendered before Alice saved: his save is refused and names her.
    let Err(ComplianceError::Stale(why)) = compliance
        .save_settings(&other_admin, "privacy.yml", &stamp, Some(&values))
        .await
    else {
        panic!("a stale save must be refused");
    };
    assert!(why.contains("alice"), "{why}");

    // An invalid value: the message is on its field, nothing changes.
    let (stamp, mut values) = form(&after, "privacy.yml");
    values.insert("privacy.data_retention.user_data".into(), "2 yrs".into());
    values.insert("privacy.data_export.formats".into(), "json, xml".into());
    let Err(ComplianceError::Invalid(fields)) = compliance
        .save_settings(&admin, "privacy.yml", &stamp, Some(&values))
        .await
    else {
        panic!("an invalid value must be refused");
    };
    assert!(
        fields["privacy.data_retention.user_data"][0].contains("unknown unit"),
        "{fields:?}"
    );
    assert!(fields["privacy.data_export.formats"][0].contains("xml"));
    let unchanged = compliance.settings(&admin).await.unwrap();
    assert_eq!(
        form(&unchanged, "privacy.yml").0,
        stamp,
        "nothing was saved"
    );
    assert_eq!(
        std::fs::read(config.join("privacy.yml")).unwrap(),
        privacy_file
    );
    // A role that does not exist cannot be required to use a second factor.
    let (soc2_stamp, mut soc2) = form(&unchanged, "soc2.yml");
    soc2.insert(
        "soc2.security.multi_factor_roles".into(),
        "admin, nosuchrole".into(),
    );
    let Err(ComplianceError::Invalid(fields)) = compliance
        .save_settings(&admin, "soc2.yml", &soc2_stamp, Some(&soc2))
        .await
    else {
        panic!("an unknown role must be refused");
    };
    assert!(fields["soc2.security.multi_factor_roles"][0].contains("nosuchrole"));

    // soc2.yml: second factors required of no role, at once.
    let identity = platform.identity();
    assert!(identity.mfa_required_for(&["admin".into()]));
    soc2.insert("soc2.security.multi_factor_roles".into(), String::new());
    compliance
        .save_settings(&admin, "soc2.yml", &soc2_stamp, Some(&soc2))
        .await
        .unwrap();
    assert!(!identity.mfa_required_for(&["admin".into()]));

    // The file changes on disk while a page is open: noticed, the open page's save is refused,
    // and the change is recorded.
    let page = compliance.settings(&admin).await.unwrap();
    let (stamp, values) = form(&page, "privacy.yml");
    let text = String::from_utf8(privacy_file.clone()).unwrap();
    assert!(text.contains("metrics_data: \"90d\""));
    std::fs::write(
        config.join("privacy.yml"),
        text.replacen("metrics_data: \"90d\"", "metrics_data: \"30d\"", 1),
    )
    .unwrap();
    let Err(ComplianceError::Stale(why)) = compliance
        .save_settings(&admin, "privacy.yml", &stamp, Some(&values))
        .await
    else {
        panic!("a save from before the file changed must be refused");
    };
    assert!(why.contains("on disk"), "{why}");
    let page = compliance.settings(&admin).await.unwrap();
    assert_eq!(
        value(&page, "privacy.data_retention.metrics_data"),
        ("30d".into(), false)
    );
    let events = support::events_json(&platform, EventKind::ConfigChange).await;
    let disk = events
        .iter()
        .find(|e| e["details"]["source"] == "disk")
        .expect("a config_change for the file on disk");
    assert_eq!(
        disk["details"]["after"]["privacy.data_retention.metrics_data"],
        "30d"
    );

    // A broken file keeps the values in force and says why.
    std::fs::write(config.join("privacy.yml"), "privacy: [not, a, mapping").unwrap();
    let page = compliance.settings(&admin).await.unwrap();
    let privacy = page.files.iter().find(|f| f.file == "privacy.yml").unwrap();
    assert!(privacy.problem.is_some());
    assert_eq!(compliance.privacy_settings().retention[0].1, "5 years");
    std::fs::write(config.join("privacy.yml"), &privacy_file).unwrap();

    // "Use the file's values" drops the dashboard's changes.
    let page = compliance.settings(&admin).await.unwrap();
    assert!(page.files[0].problem.is_none());
    let (stamp, _) = form(&page, "privacy.yml");
    let page = compliance
        .save_settings(&admin, "privacy.yml", &stamp, None)
        .await
        .unwrap();
    assert_eq!(
        value(&page, "privacy.data_retention.audit_logs"),
        ("7y".into(), false)
    );
    compliance
        .request_export(&admin, None, export_request())
        .await
        .unwrap();

    // The stamp of the page after a save is the one the next save sends.
    let (stamp, mut values) = form(&page, "privacy.yml");
    values.insert(
        "privacy.right_to_be_forgotten.grace_period".into(),
        "14d".into(),
    );
    compliance
        .save_settings(&admin, "privacy.yml", &stamp, Some(&values))
        .await
        .unwrap();
    assert_eq!(compliance.privacy_settings().grace_period, "14 days");
}

#[tokio::test]
async fn settings_on_sqlite() {
    flow(None).await;
}

#[tokio::test]
async fn settings_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    flow(Some(db.url.clone())).await;
    db.drop_db().await;
}
