//! The authorization matrix of modules, called on the services directly: the spec's four roles ×
//! read / execute / delete / share × owner, shared by user, shared by role, stranger; and who may
//! upload. SQLite always, PostgreSQL on a fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step should panic

mod support;

use platform::{
    Platform,
    access::Principal,
    identity::auth::Client,
    modules::{Grantee, ModuleError, UploadMeta, execute::ExecuteError, execute::ExecuteRequest},
};
use secrecy::SecretString;

const ADD: &str = r#"(module (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#;
use support::PASSWORD;
const ROLES: [&str; 4] = ["admin", "developer", "operator", "viewer"];

/// How a principal relates to the module under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rel {
    Owner,
    SharedByUser,
    SharedByRole,
    Stranger,
}

/// What the service answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Allowed,
    /// Refused, and the module's existence not confirmed.
    NotFound,
    Forbidden,
}

fn answer<T>(result: Result<T, ModuleError>) -> Answer {
    match result {
        Ok(_) => Answer::Allowed,
        Err(ModuleError::NotFound(_)) => Answer::NotFound,
        Err(ModuleError::Forbidden(_)) => Answer::Forbidden,
        Err(other) => panic!("unexpected error: {other:?}"),
    }
}

/// What the spec's rbac.yml says: roles give actions; ownership limits them to one's own modules
/// and those shared with one, except for `modules:*`; only owners and `modules:*` share.
fn expected(role: &str, action: &str, rel: Rel) -> Answer {
    let wildcard = role == "admin";
    let visible = wildcard || rel != Rel::Stranger;
    if !visible {
        return Answer::NotFound;
    }
    let holds = match (role, action) {
        ("admin", _) => true,
        ("developer", "read" | "execute") => true,
        ("operator", "read" | "execute") => true,
        ("viewer", "read") => true,
        (_, "share") => rel == Rel::Owner,
        _ => false,
    };
    if holds {
        Answer::Allowed
    } else {
        Answer::Forbidden
    }
}

struct World {
    platform: Platform,
}

impl World {
    async fn start(database_url: Option<String>) -> (Self, tempfile::TempDir) {
        let (platform, dir) = support::start(database_url, true).await;
        (Self { platform }, dir)
    }

    /// Creates a user through the service and returns their principal, as a request would see it.
    async fn user(&self, name: &str, role: &str) -> Principal {
        support::signed_in(&self.platform, name, role, "matrix.example").await
    }

    async fn upload(&self, owner: &Principal, name: &str) -> Result<String, ModuleError> {
        let modules = self.platform.modules();
        let bytes = wat::parse_str(ADD).unwrap();
        let staged = modules.stage(&bytes[..]).await?;
        let meta = UploadMeta {
            name: name.into(),
            description: String::new(),
        };
        Ok(modules.upload(owner, meta, staged).await?.id)
    }

    async fn act(&self, who: &Principal, action: &str, id: &str) -> Answer {
        let modules = self.platform.modules();
        match action {
            "read" => answer(modules.get(who, id).await),
            "execute" => {
                let request = ExecuteRequest::Call {
                    function: "add".into(),
                    args: vec![sandbox::Value::I32(2), sandbox::Value::I32(3)],
                };
                match modules.execute(who, id, request).await {
                    Ok(_) => Answer::Allowed,
                    Err(ExecuteError::Module(e)) => answer::<()>(Err(e)),
                    Err(other) => panic!("the run failed: {other:?}"),
                }
            }
            "delete" => answer(modules.delete(who, id, None).await),
            "share" => answer(
                modules
                    .share(who, id, Grantee::User("bystander".into()))
                    .await,
            ),
            other => panic!("no action {other}"),
        }
    }
}

async fn matrix(database_url: Option<String>) {
    let (world, _dir) = World::start(database_url).await;
    let author = world.user("author", "developer").await;
    world.user("bystander", "viewer").await;
    let mut failures = Vec::new();
    for role in ROLES {
        for rel in [
            Rel::Owner,
            Rel::SharedByUser,
            Rel::SharedByRole,
            Rel::Stranger,
        ] {
            let name = format!("{role}-{rel:?}").to_lowercase();
            let who = world.user(&name, role).await;
            for action in ["read", "execute", "delete", "share"] {
                // A fresh module per cell: delete must not change the next cell's answer.
                // Operators and viewers cannot upload: their modules are uploaded while they
                // briefly hold developer, as an account that later lost the role would own them.
                let id = if rel == Rel::Owner && !matches!(role, "admin" | "developer") {
                    upload_as_former_developer(&world, &name, role, action).await
                } else {
                    let owner = if rel == Rel::Owner { &who } else { &author };
                    world.upload(owner, &format!("m-{name}-{action}")).await
                }
                .unwrap();
                match rel {
                    Rel::SharedByUser => {
                        world
                            .platform
                            .modules()
                            .share(&Principal::System, &id, Grantee::User(name.clone()))
                            .await
                            .unwrap();
                    }
                    Rel::SharedByRole => {
                        world
                            .platform
                            .modules()
                            .share(&Principal::System, &id, Grantee::Role(role.into()))
                            .await
                            .unwrap();
                    }
                    Rel::Owner | Rel::Stranger => {}
                }
                let got = world.act(&who, action, &id).await;
                let want = expected(role, action, rel);
                if got != want {
                    failures.push(format!(
                        "{role} {action} as {rel:?}: got {got:?}, want {want:?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // Uploading needs modules:create: admins and developers.
    for role in ROLES {
        let who = world.user(&format!("uploader-{role}"), role).await;
        let got = answer(world.upload(&who, &format!("up-{role}")).await);
        let want = if matches!(role, "admin" | "developer") {
            Answer::Allowed
        } else {
            Answer::Forbidden
        };
        assert_eq!(got, want, "{role} uploading");
    }
    world.platform.close().await;
}

/// Uploads a module owned by `name` (an operator or viewer): the account is given developer for the
/// upload and set back to its role, as an account that lost the role would still own its modules.
async fn upload_as_former_developer(
    world: &World,
    name: &str,
    role: &str,
    action: &str,
) -> Result<String, ModuleError> {
    let identity = world.platform.identity();
    let user = identity
        .search_users(&Principal::System, name, 0, 1)
        .await
        .unwrap()
        .0
        .into_iter()
        .find(|u| u.username == name)
        .unwrap();
    identity
        .set_roles(&Principal::System, &user.id, &["developer".to_string()])
        .await
        .unwrap();
    let pair = identity
        .login(name, &SecretString::from(PASSWORD), &Client::default())
        .await
        .unwrap();
    let as_developer = identity.authenticate(&pair.access_token).await.unwrap();
    let id = world
        .upload(&as_developer, &format!("m-{name}-{action}"))
        .await;
    identity
        .set_roles(&Principal::System, &user.id, &[role.to_string()])
        .await
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn the_authorization_matrix_holds_on_sqlite() {
    matrix(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_authorization_matrix_holds_on_postgres() {
    let Some(db) = testkit::FreshDb::create().await else {
        return;
    };
    matrix(Some(db.url.clone())).await;
    db.drop_db().await;
}
