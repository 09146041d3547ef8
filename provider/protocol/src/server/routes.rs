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
    match Req::decode(request) {
        Ok(decoded) => {
            let answer = method(Arc::clone(service), Request::new(decoded));
            Call::Unary(Box::pin(async move {
                answer.await.map(|r| frame_message(r.get_ref()))
            }))
        }
        Err(e) => Call::Unary(Box::pin(std::future::ready(Err(Status::internal(
            format!("the request message does not decode: {e}"),
        ))))),
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
    let opened = match Req::decode(request) {
        Ok(decoded) => open(Arc::clone(service), Request::new(decoded)),
        Err(e) => {
            let status = Status::internal(format!("the request message does not decode: {e}"));
            return Call::Streaming(Box::pin(stream::once(async { Err(status) })));
        }
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

impl<P: Provider> Router for Routes<P> {
    fn starts_on_headers(&self, path: &[u8]) -> bool {
        path == BROKER_PATH
    }

    fn call(&self, path: &[u8], request: Bytes) -> Option<Call> {
        let p = &self.provider;
        let r = request;
        Some(match path {
            b"/tfplugin6.Provider/GetMetadata" => {
                unary(p, r, |p, q| async move { p.get_metadata(q).await })
            }
            b"/tfplugin6.Provider/GetProviderSchema" => {
                unary(p, r, |p, q| async move { p.get_provider_schema(q).await })
            }
            b"/tfplugin6.Provider/ValidateProviderConfig" => {
                unary(
                    p,
                    r,
                    |p, q| async move { p.validate_provider_config(q).await },
                )
            }
            b"/tfplugin6.Provider/ValidateResourceConfig" => {
                unary(
                    p,
                    r,
                    |p, q| async move { p.validate_resource_config(q).await },
                )
            }
            b"/tfplugin6.Provider/ValidateDataResourceConfig" => unary(p, r, |p, q| async move {
                p.validate_data_resource_config(q).await
            }),
            b"/tfplugin6.Provider/UpgradeResourceState" => {
                unary(
                    p,
                    r,
                    |p, q| async move { p.upgrade_resource_state(q).await },
                )
            }
            b"/tfplugin6.Provider/GetResourceIdentitySchemas" => unary(p, r, |p, q| async move {
                p.get_resource_identity_schemas(q).await
            }),
            b"/tfplugin6.Provider/UpgradeResourceIdentity" => {
                unary(
                    p,
                    r,
                    |p, q| async move { p.upgrade_resource_identity(q).await },
                )
            }
            b"/tfplugin6.Provider/ConfigureProvider" => {
                unary(p, r, |p, q| async move { p.configure_provider(q).await })
            }
            b"/tfplugin6.Provider/ReadResource" => {
                unary(p, r, |p, q| async move { p.read_resource(q).await })
            }
            b"/tfplugin6.Provider/PlanResourceChange" => {
                unary(p, r, |p, q| async move { p.plan_resource_change(q).await })
            }
            b"/tfplugin6.Provider/ApplyResourceChange" => {
                unary(p, r, |p, q| async move { p.apply_resource_change(q).await })
            }
            b"/tfplugin6.Provider/ImportResourceState" => {
                unary(p, r, |p, q| async move { p.import_resource_state(q).await })
            }
            b"/tfplugin6.Provider/MoveResourceState" => {
                unary(p, r, |p, q| async move { p.move_resource_state(q).await })
            }
            b"/tfplugin6.Provider/ReadDataSource" => {
                unary(p, r, |p, q| async move { p.read_data_source(q).await })
            }
            b"/tfplugin6.Provider/ValidateEphemeralResourceConfig" => {
                unary(p, r, |p, q| async move {
                    p.validate_ephemeral_resource_config(q).await
                })
            }
            b"/tfplugin6.Provider/OpenEphemeralResource" => {
                unary(
                    p,
                    r,
                    |p, q| async move { p.open_ephemeral_resource(q).await },
                )
            }
            b"/tfplugin6.Provider/RenewEphemeralResource" => {
                unary(
                    p,
                    r,
                    |p, q| async move { p.renew_ephemeral_resource(q).await },
                )
            }
            b"/tfplugin6.Provider/CloseEphemeralResource" => {
                unary(
                    p,
                    r,
                    |p, q| async move { p.close_ephemeral_resource(q).await },
                )
            }
            b"/tfplugin6.Provider/GetFunctions" => {
                unary(p, r, |p, q| async move { p.get_functions(q).await })
            }
            b"/tfplugin6.Provider/CallFunction" => {
                unary(p, r, |p, q| async move { p.call_function(q).await })
            }
            b"/tfplugin6.Provider/StopProvider" => {
                unary(p, r, |p, q| async move { p.stop_provider(q).await })
            }
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
