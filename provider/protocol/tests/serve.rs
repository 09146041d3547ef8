//! End-to-end tests of the plugin server: a real gRPC client talks to
//! `serve_with` in-process over loopback, with and without AutoMTLS, the way
//! Terraform's go-plugin client would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Code, Request, Response, Status};

use tfprotocol::health::health_check_response::ServingStatus;
use tfprotocol::health::health_client::HealthClient;
use tfprotocol::health::HealthCheckRequest;
use tfprotocol::plugin::grpc_broker_client::GrpcBrokerClient;
use tfprotocol::plugin::grpc_controller_client::GrpcControllerClient;
use tfprotocol::plugin::grpc_stdio_client::GrpcStdioClient;
use tfprotocol::plugin::Empty;
use tfprotocol::tfplugin6::provider_client::ProviderClient;
use tfprotocol::tfplugin6::provider_server::Provider;
use tfprotocol::tfplugin6::{self, get_provider_schema, plan_resource_change, schema};
use tfprotocol::{serve_with, HandshakeInfo, PluginAddr, ServeError, ServeOptions, Transport};

/// Implements GetProviderSchema only; everything else is a default stub.
struct TinyProvider;

#[tonic::async_trait]
impl Provider for TinyProvider {
    async fn get_provider_schema(
        &self,
        _request: Request<get_provider_schema::Request>,
    ) -> Result<Response<get_provider_schema::Response>, Status> {
        let id = schema::Attribute {
            name: "id".into(),
            r#type: br#""string""#.to_vec(),
            computed: true,
            ..Default::default()
        };
        let resource = tfplugin6::Schema {
            version: 1,
            block: Some(schema::Block {
                attributes: vec![id],
                ..Default::default()
            }),
        };
        Ok(Response::new(get_provider_schema::Response {
            provider: Some(tfplugin6::Schema::default()),
            resource_schemas: [("hybrid_test".to_owned(), resource)].into(),
            server_capabilities: Some(tfplugin6::ServerCapabilities {
                plan_destroy: true,
                ..Default::default()
            }),
            ..Default::default()
        }))
    }
}

/// A client identity: certificate PEM for the server, DER + key for rustls.
struct ClientId {
    pem: String,
    der: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

/// Like Terraform's: ECDSA P-521, self-signed and marked as a CA.
fn terraform_like_cert() -> ClientId {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "HashiCorp");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
        rcgen::KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    finish(params, key)
}

/// A plain ECDSA P-256 end-entity certificate.
fn p256_cert() -> ClientId {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec!["client".to_owned()]).unwrap();
    finish(params, key)
}

fn finish(params: rcgen::CertificateParams, key: rcgen::KeyPair) -> ClientId {
    let cert = params.self_signed(&key).unwrap();
    ClientId {
        pem: cert.pem(),
        der: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

struct Running {
    info: HandshakeInfo,
    task: JoinHandle<Result<(), ServeError>>,
}

async fn start(client_cert_pem: Option<String>, stop: Option<oneshot::Receiver<()>>) -> Running {
    start_on(Transport::LoopbackTcp, client_cert_pem, stop).await
}

async fn start_on(
    transport: Transport,
    client_cert_pem: Option<String>,
    stop: Option<oneshot::Receiver<()>>,
) -> Running {
    let (tx, rx) = oneshot::channel();
    let options = ServeOptions {
        transport,
        client_cert_pem,
        on_handshake: Some(Box::new(move |info| {
            tx.send(info.clone())
                .expect("test is waiting for the handshake");
            Ok(())
        })),
        stop: stop.map(|rx| -> tfprotocol::server::StopFuture {
            Box::pin(async move {
                let _ = rx.await;
            })
        }),
        ..ServeOptions::default()
    };
    let task = tokio::spawn(serve_with(TinyProvider, options));
    let info = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("handshake in time")
        .expect("handshake sent");
    Running { info, task }
}

/// A gRPC channel over our own rustls client, trusting exactly the server
/// certificate from the handshake (as go-plugin does), presenting `client`.
async fn tls_channel(
    info: &HandshakeInfo,
    client: Option<&ClientId>,
) -> Result<Channel, tonic::transport::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(
            info.server_cert_der.clone().expect("AutoMTLS on"),
        ))
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        Some(id) => builder
            .with_client_auth_cert(vec![id.der.clone()], id.key.clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let addr = info.addr.clone();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("valid DNS name");
    Endpoint::from_static("http://localhost")
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let connector = connector.clone();
            let addr = addr.clone();
            let name = name.clone();
            async move {
                let io: Box<dyn Io> = match addr {
                    PluginAddr::Tcp(addr) => {
                        let tcp = TcpStream::connect(addr).await?;
                        Box::new(connector.connect(name, tcp).await?)
                    }
                    PluginAddr::Unix(path) => {
                        let unix = tokio::net::UnixStream::connect(path).await?;
                        Box::new(connector.connect(name, unix).await?)
                    }
                };
                Ok::<_, std::io::Error>(TokioIo::new(io))
            }
        }))
        .await
}

/// A client byte stream (TLS over TCP or over a Unix socket).
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}

async fn plain_channel(info: &HandshakeInfo) -> Channel {
    let addr = info
        .addr
        .tcp()
        .expect("these tests serve plain text on TCP");
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn schema_of(channel: Channel) -> Result<get_provider_schema::Response, Status> {
    ProviderClient::new(channel)
        .get_provider_schema(get_provider_schema::Request {})
        .await
        .map(Response::into_inner)
}

/// Shutdown via the controller and expect `serve` to return Ok promptly
/// (well before the 5 s grace period, so our streams ended by themselves).
async fn shutdown_and_join(channel: Channel, task: JoinHandle<Result<(), ServeError>>) {
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .expect("Shutdown answers before the server stops");
    let result = tokio::time::timeout(Duration::from_secs(4), task)
        .await
        .expect("serve returned after Shutdown")
        .expect("serve task did not fail");
    result.expect("serve returned Ok");
}

async fn assert_full_session(running: Running, client: &ClientId) {
    let channel = tls_channel(&running.info, Some(client)).await.unwrap();

    let schema = schema_of(channel.clone()).await.unwrap();
    let resource = &schema.resource_schemas["hybrid_test"];
    assert_eq!(resource.version, 1);
    let block = resource.block.as_ref().unwrap();
    assert_eq!(block.attributes[0].r#type, br#""string""#);
    assert!(schema.server_capabilities.unwrap().plan_destroy);

    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);

    let err = ProviderClient::new(channel.clone())
        .plan_resource_change(plan_resource_change::Request {
            type_name: "hybrid_test".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);

    // go-plugin's client opens these right after connecting; they must not
    // keep the server alive after Shutdown.
    let _stdio = GrpcStdioClient::new(channel.clone())
        .stream_stdio(())
        .await
        .unwrap()
        .into_inner();
    let _broker = GrpcBrokerClient::new(channel.clone())
        .start_stream(tokio_stream::pending())
        .await
        .unwrap()
        .into_inner();

    shutdown_and_join(channel, running.task).await;
}

#[tokio::test]
async fn terraform_like_p521_ca_client_cert_is_accepted() {
    let client = terraform_like_cert();
    let running = start(Some(client.pem.clone()), None).await;
    assert_full_session(running, &client).await;
}

/// What Terraform gets from `serve`: AutoMTLS over a Unix socket in a private directory,
/// which is gone once serving ends.
#[tokio::test]
async fn unix_socket_session_with_autotls() {
    let client = terraform_like_cert();
    let base = tempfile::tempdir().unwrap();
    let running = start_on(
        Transport::UnixSocket {
            dir: Some(base.path().to_path_buf()),
        },
        Some(client.pem.clone()),
        None,
    )
    .await;
    let PluginAddr::Unix(path) = running.info.addr.clone() else {
        panic!("expected a Unix socket, got {:?}", running.info.addr);
    };
    assert!(running.info.line().starts_with("1|6|unix|"));
    assert!(path.exists());
    assert_full_session(running, &client).await;
    assert!(!path.exists(), "socket left behind");
    assert_eq!(std::fs::read_dir(base.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn p256_client_cert_is_accepted() {
    let client = p256_cert();
    let running = start(Some(client.pem.clone()), None).await;
    assert_full_session(running, &client).await;
}

#[tokio::test]
async fn other_or_missing_client_cert_is_refused_and_server_survives() {
    let pinned = terraform_like_cert();
    let running = start(Some(pinned.pem.clone()), None).await;

    for intruder in [Some(terraform_like_cert()), Some(p256_cert()), None] {
        // Depending on TLS version the refusal surfaces at connect time or at
        // the first RPC; either way no RPC may succeed.
        if let Ok(channel) = tls_channel(&running.info, intruder.as_ref()).await {
            let err = schema_of(channel).await.expect_err("intruder was served");
            assert_ne!(err.code(), Code::Ok);
        }
    }

    // The server is still up for the right client.
    let channel = tls_channel(&running.info, Some(&pinned)).await.unwrap();
    schema_of(channel.clone()).await.unwrap();
    shutdown_and_join(channel, running.task).await;
}

#[tokio::test]
async fn handshake_line_has_unpadded_base64_server_cert() {
    let client = p256_cert();
    let running = start(Some(client.pem.clone()), None).await;
    let line = running.info.line();
    let parts: Vec<&str> = line.split('|').collect();
    assert_eq!(parts.len(), 6, "{line}");
    assert_eq!(&parts[..3], &["1", "6", "tcp"]);
    assert_eq!(parts[3], running.info.addr.to_string());
    assert!(running.info.addr.tcp().is_some());
    assert!(parts[3].starts_with("127.0.0.1:"));
    assert_eq!(parts[4], "grpc");
    let cert = parts[5];
    assert!(cert.len() > 50, "go-plugin ignores short certs");
    assert!(!cert.contains('=') && !cert.contains('\n'));
    let der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(cert)
        .unwrap();
    assert_eq!(Some(der), running.info.server_cert_der);

    let channel = tls_channel(&running.info, Some(&client)).await.unwrap();
    shutdown_and_join(channel, running.task).await;
}

#[tokio::test]
async fn plaintext_without_client_cert() {
    let running = start(None, None).await;
    assert!(running.info.server_cert_der.is_none());
    assert!(running.info.line().ends_with("|grpc|"));
    let channel = plain_channel(&running.info).await;
    schema_of(channel.clone()).await.unwrap();

    let mut health = HealthClient::new(channel.clone());
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);

    shutdown_and_join(channel, running.task).await;
    // The watch stream ends with the server instead of holding it open.
    assert!(matches!(watch.message().await, Ok(None) | Err(_)));
}

#[tokio::test]
async fn stop_future_ends_serve() {
    let (stop_tx, stop_rx) = oneshot::channel();
    let running = start(None, Some(stop_rx)).await;
    let channel = plain_channel(&running.info).await;
    let _stdio = GrpcStdioClient::new(channel.clone())
        .stream_stdio(())
        .await
        .unwrap();
    stop_tx.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(4), running.task)
        .await
        .expect("serve returned after stop")
        .unwrap();
    result.unwrap();
}

#[tokio::test]
async fn bad_client_cert_pem_is_an_error() {
    let err = serve_with(
        TinyProvider,
        ServeOptions {
            client_cert_pem: Some("garbage".into()),
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ServeError::ClientCert(_)), "{err}");
}
