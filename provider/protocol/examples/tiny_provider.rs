//! A minimal provider binary on top of `tfprotocol`, used to check the server
//! against a real Terraform (see `tests/terraform.rs`) and as a usage example.
//!
//! Schema: resource `hybrid_test` and data source `hybrid_echo`, each with a
//! required `name` and a computed `id`. Plans echo the proposed state and the
//! data source echoes its config; apply is not implemented.

use std::process::ExitCode;

use tfprotocol::tfplugin6::provider_server::Provider;
use tfprotocol::tfplugin6::{
    configure_provider, get_provider_schema, plan_resource_change, read_data_source, schema,
    stop_provider, validate_data_resource_config, validate_provider_config,
    validate_resource_config, Schema,
};
use tonic::{Request, Response, Status};

struct Tiny;

fn object_schema() -> Schema {
    let attr = |name: &str, required: bool| schema::Attribute {
        name: name.to_owned(),
        r#type: br#""string""#.to_vec(),
        required,
        computed: !required,
        description: format!("{name} of the object"),
        ..Default::default()
    };
    Schema {
        version: 0,
        block: Some(schema::Block {
            attributes: vec![attr("id", false), attr("name", true)],
            ..Default::default()
        }),
    }
}

#[tonic::async_trait]
impl Provider for Tiny {
    async fn get_provider_schema(
        &self,
        _: Request<get_provider_schema::Request>,
    ) -> Result<Response<get_provider_schema::Response>, Status> {
        Ok(Response::new(get_provider_schema::Response {
            provider: Some(Schema {
                version: 0,
                block: Some(schema::Block::default()),
            }),
            resource_schemas: [("hybrid_test".to_owned(), object_schema())].into(),
            data_source_schemas: [("hybrid_echo".to_owned(), object_schema())].into(),
            ..Default::default()
        }))
    }

    async fn validate_provider_config(
        &self,
        _: Request<validate_provider_config::Request>,
    ) -> Result<Response<validate_provider_config::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn validate_resource_config(
        &self,
        _: Request<validate_resource_config::Request>,
    ) -> Result<Response<validate_resource_config::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn validate_data_resource_config(
        &self,
        _: Request<validate_data_resource_config::Request>,
    ) -> Result<Response<validate_data_resource_config::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn configure_provider(
        &self,
        _: Request<configure_provider::Request>,
    ) -> Result<Response<configure_provider::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn plan_resource_change(
        &self,
        request: Request<plan_resource_change::Request>,
    ) -> Result<Response<plan_resource_change::Response>, Status> {
        Ok(Response::new(plan_resource_change::Response {
            planned_state: request.into_inner().proposed_new_state,
            ..Default::default()
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<read_data_source::Request>,
    ) -> Result<Response<read_data_source::Response>, Status> {
        Ok(Response::new(read_data_source::Response {
            state: request.into_inner().config,
            ..Default::default()
        }))
    }

    async fn stop_provider(
        &self,
        _: Request<stop_provider::Request>,
    ) -> Result<Response<stop_provider::Response>, Status> {
        Ok(Response::new(Default::default()))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = if std::env::args().any(|a| a == "--debug") {
        tfprotocol::server::serve_debug(Tiny, "registry.terraform.io/hybrid/hybrid").await
    } else {
        tfprotocol::serve(Tiny).await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
