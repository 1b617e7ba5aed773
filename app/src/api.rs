//! Server functions (one per file, grouped by area), their DTOs, and the error that crosses the wire.

pub mod error;
pub mod system;

pub use error::AppError;
