//! The dashboard's pages.

pub mod account;
pub mod audit;
pub mod compliance;
pub mod home;
pub mod mfa;
pub mod modules;
pub mod not_found;
pub mod roles;
pub mod section;
pub mod security;
pub mod sign_in;
pub mod users;
