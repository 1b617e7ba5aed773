//! The `data_exports` and `erasures` tables.

pub mod data_export {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "data_exports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// Whose data.
        pub user_id: Uuid,
        /// Who asked (and alone may fetch it); `None` for the system.
        pub requested_by: Option<Uuid>,
        pub format: String,
        /// `none`, `recipient` or `passphrase`.
        pub encryption: String,
        pub include_binaries: bool,
        /// `queued`, `running`, `ready`, `downloaded`, `expired` or `failed`.
        pub status: String,
        pub progress: i16,
        pub error: Option<String>,
        pub size_bytes: Option<i64>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub finished_at: Option<DateTimeUtc>,
        pub expires_at: Option<DateTimeUtc>,
        pub downloaded_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod erasure {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "erasures")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The audit subject's pseudonym (stays after the account is gone).
        pub subject: String,
        /// Whose account; `None` once erased.
        pub user_id: Option<Uuid>,
        pub status: String,
        pub step: String,
        pub cursor: Option<String>,
        pub transfer_to: Option<Uuid>,
        /// `self`, `admin` or `retention`.
        pub origin: String,
        pub requested_at: DateTimeUtc,
        pub run_at: Option<DateTimeUtc>,
        pub step_started_at: Option<DateTimeUtc>,
        pub lease_owner: Option<String>,
        pub lease_until: Option<DateTimeUtc>,
        pub attempts: i32,
        pub last_error: Option<String>,
        pub decision_note: Option<String>,
        pub summary: Option<Json>,
        pub finished_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod erased_email {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "erased_emails")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub digest: String,
        pub erased_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
