//! Pages and components, one folder per area.

pub mod components;
pub mod forms;
pub mod layout;
pub mod pages;
pub mod sections;
