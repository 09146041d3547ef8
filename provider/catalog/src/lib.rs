//! Embedded catalog of real cloud data (placeholder: the catalog issue fills in data and loader).
pub mod model;
pub use model::*;
