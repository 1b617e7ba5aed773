//! The `data_exports` table.

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
