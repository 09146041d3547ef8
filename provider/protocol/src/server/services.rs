//! The go-plugin helper services served next to the Provider.
//!
//! Terraform's go-plugin client expects them on every gRPC plugin: the health
//! check (`plugin` must be SERVING), the controller (its Shutdown is how
//! Terraform ends the plugin), the stdio stream and the connection broker
//! (served by the `routes` module alone: an idle stream whose inbound messages
//! are discarded).
//! Every stream we hand out ends when the server shuts down, so a graceful
//! shutdown never waits on a stream that would otherwise stay open forever.

use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;
use tokio_stream::StreamExt as _;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::health::health_check_response::ServingStatus;
use crate::health::{HealthCheckRequest, HealthCheckResponse};
use crate::plugin::{Empty, StdioData};

/// The name go-plugin health-checks.
pub const PLUGIN_HEALTH_SERVICE: &str = "plugin";

/// One-shot, many-listener shutdown flag shared by the server's parts.
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    tx: watch::Sender<bool>,
}

impl Default for ShutdownSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl ShutdownSignal {
    /// A signal that has not fired yet.
    pub fn new() -> Self {
        Self {
            tx: watch::Sender::new(false),
        }
    }

    /// Fires the signal (idempotent).
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the signal has fired.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the signal has fired.
    pub fn wait(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            // An error means the sender is gone, which also means shutdown.
            let _ = rx.wait_for(|fired| *fired).await;
        }
    }

    /// A stream that yields nothing and ends on shutdown.
    pub(crate) fn idle_stream<T: Send + 'static>(&self) -> BoxStream<T> {
        Box::pin(
            WatchStream::new(self.tx.subscribe())
                .take_while(|fired| !*fired)
                .filter_map(|_| None),
        )
    }
}

/// `plugin.GRPCController`: Shutdown ends the server gracefully.
#[derive(Debug, Clone)]
pub struct Controller {
    pub(crate) shutdown: ShutdownSignal,
}

#[tonic::async_trait]
impl crate::plugin::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        self.shutdown.trigger();
        Ok(Response::new(Empty {}))
    }
}

/// `plugin.GRPCStdio`: we log to stderr directly, so the stream stays silent
/// and ends with the server.
#[derive(Debug, Clone)]
pub struct Stdio {
    pub(crate) shutdown: ShutdownSignal,
}

#[tonic::async_trait]
impl crate::plugin::grpc_stdio_server::GrpcStdio for Stdio {
    async fn stream_stdio(
        &self,
        _request: Request<()>,
    ) -> Result<Response<BoxStream<StdioData>>, Status> {
        Ok(Response::new(self.shutdown.idle_stream()))
    }
}

/// `grpc.health.v1.Health`: the whole server and `plugin` are SERVING.
#[derive(Debug, Clone)]
pub struct Health {
    pub(crate) shutdown: ShutdownSignal,
}

impl Health {
    fn status_of(service: &str) -> Result<ServingStatus, Status> {
        match service {
            "" | PLUGIN_HEALTH_SERVICE => Ok(ServingStatus::Serving),
            other => Err(Status::not_found(format!("unknown service {other:?}"))),
        }
    }
}

#[tonic::async_trait]
impl crate::health::health_server::Health for Health {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let status = Self::status_of(&request.get_ref().service)?;
        Ok(Response::new(HealthCheckResponse {
            status: status as i32,
        }))
    }

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<BoxStream<HealthCheckResponse>>, Status> {
        let status =
            Self::status_of(&request.get_ref().service).unwrap_or(ServingStatus::ServiceUnknown);
        let first = tokio_stream::once(Ok(HealthCheckResponse {
            status: status as i32,
        }));
        Ok(Response::new(Box::pin(
            first.chain(self.shutdown.idle_stream()),
        )))
    }
}
