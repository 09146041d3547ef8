//! Accepting connections on a Unix socket (what Terraform gets, as go-plugin does on Unix) or
//! loopback TCP (tests, debug mode, other platforms): plain, or TLS with our own rustls
//! acceptor.
//!
//! go-plugin pins one client certificate, so we terminate TLS ourselves with a rustls
//! acceptor that accepts exactly that certificate. Each TLS
//! handshake runs in its own task: a bad client (wrong certificate, port
//! scanner, timeout) is logged and dropped without affecting the server.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
#[cfg(unix)]
use tokio::net::UnixListener;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::http2::{serve_connection, Limits, Router};
use super::services::ShutdownSignal;
#[cfg(unix)]
use super::unix_socket::ReadableUnixStream;

/// How long a client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server listens on.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(UnixListener),
}

impl Listener {
    /// The next connection and a description of its peer (for log lines).
    async fn accept(&self) -> io::Result<(Stream, String)> {
        match self {
            Listener::Tcp(l) => {
                let (tcp, peer) = l.accept().await?;
                let _ = tcp.set_nodelay(true);
                Ok((Stream::Tcp(tcp), peer.to_string()))
            }
            #[cfg(unix)]
            Listener::Unix(l) => {
                let (unix, _) = l.accept().await?;
                let unix = ReadableUnixStream::new(unix)?;
                Ok((Stream::Unix(unix), "a local client".to_owned()))
            }
        }
    }
}

/// One byte stream, TCP or Unix.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(ReadableUnixStream),
}

macro_rules! each_stream {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Stream::Tcp($s) => $e,
            #[cfg(unix)]
            Stream::Unix($s) => $e,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each_stream!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each_stream!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_stream!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_stream!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each_stream!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        each_stream!(self, s => s.is_write_vectored())
    }
}

/// An accepted connection, TLS or not. The HTTP/2 connection above it gathers each pass's
/// frames into one write (see [`super::http2`]), so this layer passes writes straight through.
#[derive(Debug)]
pub(crate) enum Conn {
    Plain(Stream),
    Tls(Box<TlsStream<Stream>>),
}

macro_rules! each_conn {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Conn::Plain($s) => $e,
            Conn::Tls($s) => {
                let $s = $s.as_mut();
                $e
            }
        }
    };
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each_conn!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each_conn!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_conn!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each_conn!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }
}

/// Serves one accepted connection; `_alive` is dropped when it ends (see [`accept_loop`]).
async fn serve<R: Router>(
    conn: Conn,
    router: Arc<R>,
    limits: Limits,
    shutdown: ShutdownSignal,
    _alive: mpsc::Sender<()>,
) {
    if let Err(e) = serve_connection(conn, router, limits, Box::pin(shutdown.wait())).await {
        // Terraform ending the process's connection abruptly is ordinary; log it quietly.
        eprintln!("[DEBUG] tfprotocol: connection ended: {e}");
    }
}

/// Accepts connections until shutdown and serves each in its own task. Every task holds a
/// clone of `alive`, so its receiver learns when the last connection has ended.
pub(crate) async fn accept_loop<R: Router>(
    listener: Listener,
    tls: Option<Arc<ServerConfig>>,
    router: Arc<R>,
    limits: Limits,
    shutdown: ShutdownSignal,
    alive: mpsc::Sender<()>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Typically EMFILE; back off instead of spinning.
                    eprintln!("[WARN] tfprotocol: accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (router, shutdown, alive) = (router.clone(), shutdown.clone(), alive.clone());
        match &acceptor {
            None => {
                tokio::spawn(serve(Conn::Plain(stream), router, limits, shutdown, alive));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => {
                            serve(Conn::Tls(Box::new(tls)), router, limits, shutdown, alive).await;
                        }
                        Ok(Err(e)) => {
                            eprintln!("[WARN] tfprotocol: TLS handshake with {peer} refused: {e}");
                        }
                        Err(_) => {
                            eprintln!("[WARN] tfprotocol: TLS handshake with {peer} timed out");
                        }
                    }
                });
            }
        }
    }
}
