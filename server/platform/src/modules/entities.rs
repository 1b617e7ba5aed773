//! The `modules`, `module_shares` and `module_runs` tables.

pub mod module {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "modules")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub name: String,
        pub description: String,
        pub owner_id: Uuid,
        pub size_bytes: i64,
        pub sha256: String,
        pub kind: String,
        pub status: String,
        pub risk_score: i16,
        pub suspicious: bool,
        pub analysis: Json,
        pub policy_hash: String,
        pub capability_group: Option<String>,
        pub review_note: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub last_run_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod share {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "module_shares")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub module_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub grantee_kind: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub grantee: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod run {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "module_runs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub module_id: Uuid,
        pub user_id: Option<Uuid>,
        pub actor: String,
        pub mode: String,
        pub outcome: String,
        pub duration_us: i64,
        pub peak_memory_bytes: i64,
        pub iterations: i64,
        pub result: Json,
        pub started_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
