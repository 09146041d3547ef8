//! Which call serves which gRPC path: the Provider's methods and go-plugin's services, called
//! through the traits tonic generates from our `.proto` files (the connection itself is ours,
//! see [`super::http2`]).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt as _};
use tonic::{Request, Response, Status};

use super::http2::{frame_message, Call, Replies, Router};
use super::services::{Controller, Health, ShutdownSignal, Stdio};
use crate::health::health_server::Health as _;
use crate::plugin::grpc_controller_server::GrpcController as _;
use crate::plugin::grpc_stdio_server::GrpcStdio as _;
use crate::plugin::ConnInfo;
use crate::tfplugin6::provider_server::Provider;

/// go-plugin's broker stream: opened by the client when it connects, never used by providers.
const BROKER_PATH: &[u8] = b"/plugin.GRPCBroker/StartStream";

/// The services one provider process serves.
pub(crate) struct Routes<P> {
    provider: Arc<P>,
    controller: Arc<Controller>,
    stdio: Arc<Stdio>,
    health: Arc<Health>,
    shutdown: ShutdownSignal,
}

impl<P: Provider> Routes<P> {
    pub(crate) fn new(provider: P, shutdown: ShutdownSignal) -> Routes<P> {
        Routes {
            provider: Arc::new(provider),
            controller: Arc::new(Controller {
                shutdown: shutdown.clone(),
            }),
            stdio: Arc::new(Stdio {
                shutdown: shutdown.clone(),
            }),
            health: Arc::new(Health {
                shutdown: shutdown.clone(),
            }),
            shutdown,
        }
    }
}

/// The request message, decoded, as tonic's traits take it.
fn decode<Req: prost::Message + Default>(request: Bytes) -> Result<Request<Req>, Status> {
    Req::decode(request)
        .map(Request::new)
        .map_err(|e| Status::internal(format!("the request message does not decode: {e}")))
}

/// A unary call: decodes `request`, runs `method` on `service`, frames the response.
fn unary<S, Req, Resp, Fut>(
    service: &Arc<S>,
    request: Bytes,
    method: impl FnOnce(Arc<S>, Request<Req>) -> Fut,
) -> Call
where
    Req: prost::Message + Default,
    Resp: prost::Message,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    match decode(request) {
        Ok(request) => {
            let answer = method(Arc::clone(service), request);
            Call::Unary(Box::pin(async move {
                answer.await.map(|r| frame_message(r.get_ref()))
            }))
        }
        Err(status) => Call::Unary(Box::pin(std::future::ready(Err(status)))),
    }
}

/// A server stream opened by `open`, each message framed.
fn streaming<S, Req, Resp, Fut>(
    service: &Arc<S>,
    request: Bytes,
    open: impl FnOnce(Arc<S>, Request<Req>) -> Fut,
) -> Call
where
    Req: prost::Message + Default,
    Resp: prost::Message + 'static,
    Fut:
        Future<Output = Result<Response<tonic::codegen::BoxStream<Resp>>, Status>> + Send + 'static,
{
    let opened = match decode(request) {
        Ok(request) => open(Arc::clone(service), request),
        Err(status) => return Call::Streaming(Box::pin(stream::once(async { Err(status) }))),
    };
    let replies: Replies = Box::pin(stream::once(opened).flat_map(|opened| -> Replies {
        match opened {
            Ok(stream) => Box::pin(
                stream
                    .into_inner()
                    .map(|item| item.map(|message| frame_message(&message))),
            ),
            Err(status) => Box::pin(stream::once(async { Err(status) })),
        }
    }));
    Call::Streaming(replies)
}

/// Every Provider method is unary: this is where a path's last segment names its trait method.
macro_rules! provider_methods {
    ($provider:expr, $method:expr, $request:expr; $($name:literal => $call:ident),* $(,)?) => {
        match $method {
            $($name => Some(unary($provider, $request, |p, q| async move { p.$call(q).await })),)*
            _ => None,
        }
    };
}

const PROVIDER_PREFIX: &[u8] = b"/tfplugin6.Provider/";

/// The call of the Provider's `method` (the path after [`PROVIDER_PREFIX`]).
fn provider_call<P: Provider>(provider: &Arc<P>, method: &[u8], request: Bytes) -> Option<Call> {
    provider_methods!(provider, method, request;
        b"GetMetadata" => get_metadata,
        b"GetProviderSchema" => get_provider_schema,
        b"ValidateProviderConfig" => validate_provider_config,
        b"ValidateResourceConfig" => validate_resource_config,
        b"ValidateDataResourceConfig" => validate_data_resource_config,
        b"UpgradeResourceState" => upgrade_resource_state,
        b"GetResourceIdentitySchemas" => get_resource_identity_schemas,
        b"UpgradeResourceIdentity" => upgrade_resource_identity,
        b"ConfigureProvider" => configure_provider,
        b"ReadResource" => read_resource,
        b"PlanResourceChange" => plan_resource_change,
        b"ApplyResourceChange" => apply_resource_change,
        b"ImportResourceState" => import_resource_state,
        b"MoveResourceState" => move_resource_state,
        b"ReadDataSource" => read_data_source,
        b"ValidateEphemeralResourceConfig" => validate_ephemeral_resource_config,
        b"OpenEphemeralResource" => open_ephemeral_resource,
        b"RenewEphemeralResource" => renew_ephemeral_resource,
        b"CloseEphemeralResource" => close_ephemeral_resource,
        b"GetFunctions" => get_functions,
        b"CallFunction" => call_function,
        b"StopProvider" => stop_provider,
    )
}

impl<P: Provider> Router for Routes<P> {
    fn starts_on_headers(&self, path: &[u8]) -> bool {
        path == BROKER_PATH
    }

    fn call(&self, path: &[u8], request: Bytes) -> Option<Call> {
        let r = request;
        if let Some(method) = path.strip_prefix(PROVIDER_PREFIX) {
            return provider_call(&self.provider, method, r);
        }
        Some(match path {
            b"/plugin.GRPCController/Shutdown" => {
                unary(
                    &self.controller,
                    r,
                    |c, q| async move { c.shutdown(q).await },
                )
            }
            b"/plugin.GRPCStdio/StreamStdio" => {
                streaming(
                    &self.stdio,
                    r,
                    |s, q| async move { s.stream_stdio(q).await },
                )
            }
            b"/grpc.health.v1.Health/Check" => {
                unary(&self.health, r, |h, q| async move { h.check(q).await })
            }
            b"/grpc.health.v1.Health/Watch" => {
                streaming(&self.health, r, |h, q| async move { h.watch(q).await })
            }
            BROKER_PATH => {
                // The client's messages are discarded by the connection; ours never come.
                let idle: Replies = Box::pin(
                    self.shutdown
                        .idle_stream::<ConnInfo>()
                        .map(|item| item.map(|message| frame_message(&message))),
                );
                Call::Streaming(idle)
            }
            _ => return None,
        })
    }
}
