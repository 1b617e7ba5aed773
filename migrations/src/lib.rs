//! The schema, as ordered migrations that run unchanged on SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_audit_logs;
mod m20261128_000002_identity;
mod m20261128_000003_refresh_tokens;
mod m20261128_000004_sessions;
mod m20261128_000005_modules;
mod m20261128_000010_audit_chain;
mod m20261130_000020_identity_session_hashes;
mod m20261201_000030_api_tokens;
mod m20261201_000040_federated_identities;
mod m20261201_000050_data_exports;
mod m20261202_000060_erasure;
mod m20261202_000070_audit_checkpoints;
mod m20261203_000080_anonymisation;
mod m20261204_000090_mfa;
mod m20261205_000100_passkeys;
mod m20261206_000110_settings_overrides;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_audit_logs::Migration),
            Box::new(m20261128_000002_identity::Migration),
            Box::new(m20261128_000003_refresh_tokens::Migration),
            Box::new(m20261128_000004_sessions::Migration),
            Box::new(m20261128_000005_modules::Migration),
            Box::new(m20261128_000010_audit_chain::Migration),
            Box::new(m20261130_000020_identity_session_hashes::Migration),
            Box::new(m20261201_000030_api_tokens::Migration),
            Box::new(m20261201_000040_federated_identities::Migration),
            Box::new(m20261201_000050_data_exports::Migration),
            Box::new(m20261202_000060_erasure::Migration),
            Box::new(m20261202_000070_audit_checkpoints::Migration),
            Box::new(m20261203_000080_anonymisation::Migration),
            Box::new(m20261204_000090_mfa::Migration),
            Box::new(m20261205_000100_passkeys::Migration),
            Box::new(m20261206_000110_settings_overrides::Migration),
        ]
    }
}
