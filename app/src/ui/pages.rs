//! The dashboard's pages.

pub mod home;
pub mod not_found;
pub mod section;
