//! Server functions (grouped by area), their DTOs, and the error that crosses the wire.

pub mod audit;
pub mod auth;
pub mod compliance;
pub mod erasure;
pub mod error;
pub mod exports;
pub mod linked;
pub mod mfa;
pub mod modules;
pub mod roles;
pub mod security;
#[cfg(feature = "ssr")]
pub mod session;
pub mod system;
pub mod tokens;
pub mod users;

pub use error::AppError;
