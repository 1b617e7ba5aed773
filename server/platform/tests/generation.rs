//! Every access-changing service operation moves the access generation: accounts, user roles,
//! roles, modules, shares and refresh-family revocation are cached while it stands (see
//! `generation.rs`), so a write that forgot it would serve stale authorization. Each operation
//! below is checked the same way: the access tables are read before and after (without the
//! columns no cached decision uses), and if they changed, the generation must have moved.
//! SQLite always, PostgreSQL on a fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use platform::{
    Platform,
    access::Principal,
    identity::{
        NewUser, UserChanges,
        auth::Client,
        roles::{NewRole, RoleChanges},
    },
    modules::{Grantee, UploadMeta},
};
use sea_orm::{ConnectionTrait, Statement};
use secrecy::SecretString;

const ADD: &str = r#"(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#;
const PASSWORD: &str = "Generation-Password-42!";

/// The access tables, each with the columns cached decisions depend on. Left out: the sign-in
/// time (`users.last_login_at`), the run time (`modules.last_run_at`), and refresh tokens that
/// are merely issued or used (only revocation ends a family).
const ACCESS_TABLES: [(&str, &[&str], &str); 6] = [
    (
        "users",
        &[
            "id",
            "username",
            "email",
            "password_hash",
            "disabled",
            "token_version",
        ],
        "",
    ),
    ("user_roles", &["user_id", "role_name"], ""),
    (
        "roles",
        &["name", "description", "builtin", "permissions"],
        "",
    ),
    (
        "modules",
        &[
            "id",
            "name",
            "description",
            "owner_id",
            "sha256",
            "status",
            "risk_score",
            "policy_hash",
            "capability_group",
            "review_note",
        ],
        "",
    ),
    (
        "module_shares",
        &["module_id", "grantee_kind", "grantee"],
        "",
    ),
    ("refresh_tokens", &["id", "family_id"], "WHERE revoked"),
];

struct World {
    platform: Platform,
}

impl World {
    async fn start(database_url: Option<String>) -> (Self, tempfile::TempDir) {
        let (platform, dir) = support::start(database_url, false).await;
        // On PostgreSQL the generation is known once its listener is connected.
        for _ in 0..200 {
            if platform.access_generation().current().is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        (Self { platform }, dir)
    }

    /// Runs one SQL statement as the test's own hand on the database.
    async fn sql(&self, sql: &str) {
        let db = self.platform.db();
        db.execute_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap();
    }

    /// The access tables as text, one line per row, in a stable order.
    async fn access_tables(&self) -> Vec<String> {
        let db = self.platform.db();
        // SQLite keeps UUIDs as blobs: `quote` renders any value as text there.
        let text = |c: &str| match db.get_database_backend() {
            sea_orm::DbBackend::Sqlite => format!("quote({c})"),
            _ => format!("COALESCE(CAST({c} AS TEXT), '(null)')"),
        };
        let mut lines = Vec::new();
        for (table, columns, filter) in ACCESS_TABLES {
            let row = columns
                .iter()
                .map(|c| text(c))
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            let sql = format!("SELECT {row} AS v FROM {table} {filter} ORDER BY 1");
            let rows = db
                .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
                .await
                .unwrap();
            for r in rows {
                lines.push(format!(
                    "{table}: {}",
                    r.try_get::<String>("", "v").unwrap()
                ));
            }
        }
        lines
    }

    /// Runs `op` and checks that it changed the access tables and moved the generation.
    async fn moves<T>(&self, what: &str, op: impl std::future::Future<Output = T>) -> T {
        let generation = self.platform.access_generation();
        let tag = generation.current();
        assert!(tag.is_some(), "{what}: the generation cannot be read");
        let before = self.access_tables().await;
        let out = op.await;
        let after = self.access_tables().await;
        assert_ne!(
            before, after,
            "{what}: changed no access table, so it proves nothing here"
        );
        let changed: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
        assert_ne!(
            generation.current(),
            tag,
            "{what} changed {changed:?} but the access generation did not move"
        );
        out
    }

    async fn user_id(&self, name: &str) -> String {
        let (users, _) = self
            .platform
            .identity()
            .search_users(&Principal::System, name, 0, 10)
            .await
            .unwrap();
        users.into_iter().find(|u| u.username == name).unwrap().id
    }
}

async fn every_access_write_moves_the_generation(database_url: Option<String>) {
    let (world, _dir) = World::start(database_url).await;
    let identity = world.platform.identity();
    let modules = world.platform.modules();
    let system = Principal::System;
    let new_user = |name: &str, role: &str| NewUser {
        username: name.into(),
        email: format!("{name}@generation.example"),
        password: SecretString::from(PASSWORD),
        roles: vec![role.into()],
    };

    // Accounts.
    world
        .moves(
            "create_user",
            identity.create_user(&system, new_user("ada", "developer")),
        )
        .await
        .unwrap();
    world
        .moves(
            "create_user",
            identity.create_user(&system, new_user("bob", "viewer")),
        )
        .await
        .unwrap();
    let changes = UserChanges {
        email: Some("ada@elsewhere.example".into()),
        ..UserChanges::default()
    };
    world
        .moves(
            "update_user (email)",
            identity.update_user(&system, "ada", changes),
        )
        .await
        .unwrap();
    let changes = UserChanges {
        add_roles: vec!["operator".into()],
        ..UserChanges::default()
    };
    world
        .moves(
            "update_user (roles)",
            identity.update_user(&system, "ada", changes),
        )
        .await
        .unwrap();
    let bob = world.user_id("bob").await;
    let roles = ["operator".to_string()];
    world
        .moves("set_roles", identity.set_roles(&system, &bob, &roles))
        .await
        .unwrap();
    world
        .moves(
            "set_disabled (disable)",
            identity.set_disabled(&system, "bob", true),
        )
        .await
        .unwrap();
    world
        .moves(
            "set_disabled (enable)",
            identity.set_disabled(&system, "bob", false),
        )
        .await
        .unwrap();
    let pair = identity
        .login("ada", &SecretString::from(PASSWORD), &Client::default())
        .await
        .unwrap();
    let ada = identity.authenticate(&pair.access_token).await.unwrap();
    let current = SecretString::from(PASSWORD);
    let new = SecretString::from("Generation-Password-43!");
    world
        .moves(
            "change_own_password",
            identity.change_own_password(&ada, &current, new),
        )
        .await
        .unwrap();

    // Refresh families: presenting a used refresh token revokes its family.
    let pair = identity
        .login("bob", &SecretString::from(PASSWORD), &Client::default())
        .await
        .unwrap();
    identity
        .refresh(&pair.refresh_token, &Client::default())
        .await
        .unwrap();
    let reused = world
        .moves(
            "refresh (reuse revokes the family)",
            identity.refresh(&pair.refresh_token, &Client::default()),
        )
        .await;
    assert!(reused.is_err(), "a reused refresh token is refused");

    // Roles.
    let role = NewRole {
        name: "auditors".into(),
        description: "reads the log".into(),
        permissions: vec!["system:audit".into()],
    };
    world
        .moves("create_role", identity.create_role(&system, role))
        .await
        .unwrap();
    let changes = RoleChanges {
        description: Some("reads the audit log".into()),
        permissions: None,
    };
    world
        .moves(
            "update_role",
            identity.update_role(&system, "auditors", changes),
        )
        .await
        .unwrap();
    // rbac.yml's roles follow the file: a role whose permissions drifted from it is written back.
    world
        .sql(r#"UPDATE roles SET permissions = '["modules:read"]' WHERE name = 'viewer'"#)
        .await;
    world
        .moves("sync_builtin_roles", identity.sync_builtin_roles())
        .await
        .unwrap();

    // Modules.
    let bytes = wat::parse_str(ADD).unwrap();
    let staged = modules.stage(&bytes[..]).await.unwrap();
    let meta = UploadMeta {
        name: "adder".into(),
        description: String::new(),
    };
    let id = world
        .moves("upload", modules.upload(&ada, meta, staged))
        .await
        .unwrap()
        .id;
    world
        .moves(
            "update",
            modules.update(&system, &id, Some("adder-2".into()), None),
        )
        .await
        .unwrap();
    world
        .moves(
            "share (user)",
            modules.share(&ada, &id, Grantee::User("bob".into())),
        )
        .await
        .unwrap();
    world
        .moves(
            "share (role)",
            modules.share(&ada, &id, Grantee::Role("viewer".into())),
        )
        .await
        .unwrap();
    world
        .moves(
            "unshare",
            modules.unshare(&ada, &id, Grantee::User("bob".into())),
        )
        .await
        .unwrap();
    world
        .moves(
            "set_quarantine (quarantine)",
            modules.set_quarantine(&system, &id, true, "checking"),
        )
        .await
        .unwrap();
    world
        .moves(
            "set_quarantine (release)",
            modules.set_quarantine(&system, &id, false, "checked"),
        )
        .await
        .unwrap();
    world
        .moves(
            "set_capability_group",
            modules.set_capability_group(&system, &id, Some("trusted-modules".into())),
        )
        .await
        .unwrap();
    // A module analysed under other rules than the current ones is analysed again.
    world
        .sql("UPDATE modules SET policy_hash = 'older rules'")
        .await;
    world
        .moves("reanalyse_next", modules.reanalyse_next())
        .await
        .unwrap();
    world
        .moves("delete", modules.delete(&system, &id, None))
        .await
        .unwrap();

    // Last, as it takes the account the modules above belonged to.
    let ada_id = world.user_id("ada").await;
    world
        .moves("delete_user", identity.delete_user(&system, &ada_id))
        .await
        .unwrap();
    world.platform.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_access_write_moves_the_generation_on_sqlite() {
    every_access_write_moves_the_generation(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_access_write_moves_the_generation_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    every_access_write_moves_the_generation(Some(db.url.clone())).await;
    db.drop_db().await;
}
