//! Shared by the integration tests: a fresh PostgreSQL database per test.

use sea_orm::{ConnectionTrait, Database};

/// A database created for one test on the server at TEST_POSTGRES_URL, dropped by [`FreshDb::drop_db`].
pub struct FreshDb {
    admin_url: String,
    pub url: String,
    name: String,
}

impl FreshDb {
    /// `None` (with a printed notice) when TEST_POSTGRES_URL is not set.
    pub async fn create() -> Option<Self> {
        let Ok(admin_url) = std::env::var("TEST_POSTGRES_URL") else {
            eprintln!("notice: TEST_POSTGRES_URL is not set; skipping the PostgreSQL run");
            return None;
        };
        let name = format!("wasm_as_os_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await.unwrap();
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        Some(Self { admin_url, url: url.to_string(), name })
    }

    pub async fn drop_db(self) {
        let admin = Database::connect(&self.admin_url).await.unwrap();
        admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await.unwrap();
    }
}
