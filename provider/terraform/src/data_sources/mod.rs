//! Data sources: the placement engine and catalog, read-only.
//!
//! Same shape as resources: a data source sees decoded values and returns a value and
//! diagnostics; `grpc.rs` does the protobuf. Each one lives in its own file.

pub mod common;
pub mod cost_report;
pub mod placement;
pub mod region_recommendation;
pub mod regions;

use std::sync::Arc;

use async_trait::async_trait;
use tfvalue::Value;

use crate::diagnostics::Diagnostics;
use crate::resources::ProviderContext;
use crate::schema::Schema;

pub struct ReadResult {
    /// The full object: configuration plus every computed attribute.
    pub state: Value,
    pub diagnostics: Diagnostics,
}

#[async_trait]
pub trait DataSource: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> &Schema;

    /// Checks that need only the configuration (values may be unknown: skip those).
    fn validate(&self, config: &Value) -> Diagnostics;

    async fn read(&self, ctx: &ProviderContext, config: Value) -> ReadResult;
}

/// Every data source the provider serves.
pub fn all() -> Vec<Arc<dyn DataSource>> {
    vec![
        Arc::new(placement::PlacementSource::new()),
        Arc::new(regions::Regions::new()),
        Arc::new(region_recommendation::RegionRecommendation::new()),
        Arc::new(cost_report::CostReport::new()),
    ]
}
