//! The provider itself: configuration, schemas, resources, diagnostics and logging, wired to
//! the protocol (`tfprotocol`), the placement engine, the catalog and the cloud drivers.
//!
//! Who calls whom: `grpc` (protobuf) -> `resources` (decoded values) -> `placement` (pure
//! decisions over `catalog`) and `clouds` (IO). Only `grpc` knows protobuf; only `resources`
//! know Terraform attribute names.

pub mod attrs;
pub mod checks;
pub mod config;
pub mod data_sources;
pub mod diagnostics;
pub mod docs;
pub mod engine_values;
pub mod fuzzing;
pub mod grpc;
pub mod logging;
pub mod observe;
pub mod resources;
pub mod review;
pub mod schema;
