//! End-to-end tests: the real Terraform CLI drives the provider binary cargo built.
//! See `harness.rs` for how each test is isolated.

mod data_sources;
mod edge;
mod harness;
mod migration;
mod protocol;
mod review;
mod schema;
mod workload;
