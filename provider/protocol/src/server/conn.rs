//! Accepting connections on a Unix socket (what Terraform gets, as go-plugin does on Unix) or
//! loopback TCP (tests, debug mode, other platforms): plain, or TLS with our own rustls
//! acceptor.
//!
//! tonic's built-in TLS cannot express go-plugin's pinned client certificate,
//! so we terminate TLS ourselves and hand tonic ready streams. Each TLS
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
use tonic::transport::server::{Connected, TcpConnectInfo};

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

/// An accepted connection, TLS or not, with its writes coalesced (see `poll_flush` below).
#[derive(Debug)]
pub(crate) struct Conn {
    transport: Transport,
    /// What h2 wrote since its last flush, and how much of it the transport has taken.
    out: Vec<u8>,
    sent: usize,
    /// How many flushes in a row found bytes to send and let them wait (see
    /// [`Conn::poll_flush`]).
    deferred: u8,
}

#[derive(Debug)]
enum Transport {
    Plain(Stream),
    Tls(Box<TlsStream<Stream>>),
}

/// Writes held back before they are sent even without a flush, in bytes: large enough for any
/// ordinary response, small enough that a large one (a provider schema) streams.
const COALESCE_LIMIT: usize = 64 * 1024;

/// How many flushes in a row may hold the bytes back (see [`Conn::poll_flush`]).
const DEFERRED_TURNS: u8 = 3;

impl Conn {
    pub(crate) fn plain(stream: Stream) -> Conn {
        Conn::over(Transport::Plain(stream))
    }

    pub(crate) fn tls(stream: TlsStream<Stream>) -> Conn {
        Conn::over(Transport::Tls(Box::new(stream)))
    }

    fn over(transport: Transport) -> Conn {
        Conn {
            transport,
            out: Vec::new(),
            sent: 0,
            deferred: 0,
        }
    }

    /// Sends what h2 wrote, in as few transport writes as the transport takes: with TLS each
    /// write is a TLS record and a system call, and Terraform's side reads and decrypts each.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let pending = &self.out[self.sent..];
            let n = match &mut self.transport {
                Transport::Plain(s) => std::task::ready!(Pin::new(s).poll_write(cx, pending))?,
                Transport::Tls(s) => {
                    std::task::ready!(Pin::new(s.as_mut()).poll_write(cx, pending))?
                }
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.out.clear();
        self.sent = 0;
        // A large message grew the buffer: give the memory back instead of keeping its peak.
        if self.out.capacity() > 2 * COALESCE_LIMIT {
            self.out = Vec::new();
        }
        Poll::Ready(Ok(()))
    }

    /// Room for more: the held-back bytes go out first once they reach [`COALESCE_LIMIT`].
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.out.len() >= COALESCE_LIMIT {
            std::task::ready!(self.poll_send(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    /// Addresses for TCP; none for a Unix socket (its peer has no address).
    fn connect_info(&self) -> TcpConnectInfo {
        let stream = match &self.transport {
            Transport::Plain(s) => s,
            Transport::Tls(tls) => tls.get_ref().0,
        };
        match stream {
            Stream::Tcp(tcp) => TcpConnectInfo {
                local_addr: tcp.local_addr().ok(),
                remote_addr: tcp.peer_addr().ok(),
            },
            #[cfg(unix)]
            Stream::Unix(_) => TcpConnectInfo {
                local_addr: None,
                remote_addr: None,
            },
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().transport {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_room(cx))?;
        this.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_room(cx))?;
        let mut taken = 0;
        for buf in bufs {
            this.out.extend_from_slice(buf);
            taken += buf.len();
        }
        Poll::Ready(Ok(taken))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// h2 flushes after every DATA frame and again after the trailers, in separate turns of
    /// its connection task, so a unary response was two or three TLS records and as many
    /// `writev`s. A flush that finds bytes to send therefore lets them wait and wakes the
    /// connection task, which runs again once the tasks already woken (handlers finishing
    /// other responses) have run; up to [`DEFERRED_TURNS`] flushes in a row do so, and the
    /// next one sends. One turn was not enough: the connection task answers grpc-go's PING
    /// (sent after every response it reads, for its bandwidth estimate) and flushes before
    /// the request that came with it has reached its handler, and the trailers follow the
    /// message a turn later. Three turns let the PING's answer, the response and its
    /// trailers go out as one write: in a 100-workload apply, 2.8 `writev` per workload
    /// instead of 4.0, and 8 % less provider CPU at 300 workloads. A response waits a few
    /// scheduler passes, microseconds.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.out.is_empty() && this.deferred < DEFERRED_TURNS {
            this.deferred += 1;
            cx.waker().wake_by_ref();
            return Poll::Ready(Ok(()));
        }
        std::task::ready!(this.poll_send(cx))?;
        this.deferred = 0;
        match &mut this.transport {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_send(cx))?;
        match &mut this.transport {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Accepts connections until shutdown and sends the ready ones to `out`.
pub(crate) async fn accept_loop(
    listener: Listener,
    tls: Option<Arc<ServerConfig>>,
    out: mpsc::Sender<Conn>,
    shutdown: ShutdownSignal,
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
        let out = out.clone();
        match &acceptor {
            None => {
                if out.send(Conn::plain(stream)).await.is_err() {
                    return;
                }
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => {
                            let _ = out.send(Conn::tls(tls)).await;
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

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use tokio::io::AsyncReadExt;

    use tokio::net::UnixStream;

    use super::*;

    /// Counts its wake-ups.
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn ready<T: std::fmt::Debug>(p: Poll<io::Result<T>>) -> T {
        match p {
            Poll::Ready(r) => r.unwrap(),
            Poll::Pending => panic!("expected Ready"),
        }
    }

    fn nothing_to_read(peer: &UnixStream) -> bool {
        let mut buf = [0u8; 64];
        matches!(peer.try_read(&mut buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    #[tokio::test]
    async fn flushes_hold_bytes_back_for_a_few_turns_and_wake_the_writer_meanwhile() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let mut conn = Conn::plain(Stream::Unix(ReadableUnixStream::new(ours).unwrap()));
        let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);

        // Nothing written: a flush is a flush, nothing waits and nobody is woken.
        ready(Pin::new(&mut conn).poll_flush(&mut cx));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);

        // Headers and message, flushed: held back for a few turns, with the writer woken
        // each time.
        assert_eq!(
            ready(Pin::new(&mut conn).poll_write(&mut cx, b"head+msg;")),
            9
        );
        for turn in 1..DEFERRED_TURNS {
            ready(Pin::new(&mut conn).poll_flush(&mut cx));
            assert_eq!(wakes.0.load(Ordering::SeqCst), usize::from(turn));
            assert!(nothing_to_read(&peer));
        }

        // Trailers in the last of those turns; the flush after it sends everything as one
        // write, without another wake-up.
        let slices = [io::IoSlice::new(b"trail"), io::IoSlice::new(b"ers")];
        assert_eq!(
            ready(Pin::new(&mut conn).poll_write_vectored(&mut cx, &slices)),
            8
        );
        ready(Pin::new(&mut conn).poll_flush(&mut cx));
        assert_eq!(wakes.0.load(Ordering::SeqCst), usize::from(DEFERRED_TURNS));
        assert!(nothing_to_read(&peer));
        ready(Pin::new(&mut conn).poll_flush(&mut cx));
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            usize::from(DEFERRED_TURNS),
            "no more wake-ups"
        );
        let mut got = vec![0u8; 64];
        let n = peer.read(&mut got).await.unwrap();
        assert_eq!(&got[..n], b"head+msg;trailers");

        // The next flush with bytes waits a turn again; a shutdown sends at once.
        ready(Pin::new(&mut conn).poll_write(&mut cx, b"bye"));
        ready(Pin::new(&mut conn).poll_flush(&mut cx));
        assert!(nothing_to_read(&peer));
        ready(Pin::new(&mut conn).poll_shutdown(&mut cx));
        let mut rest = Vec::new();
        peer.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"bye");
    }

    #[tokio::test]
    async fn held_back_bytes_go_out_once_they_reach_the_limit() {
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let mut conn = Conn::plain(Stream::Unix(ReadableUnixStream::new(ours).unwrap()));
        let waker = Waker::from(Arc::new(Wakes(AtomicUsize::new(0))));
        let mut cx = Context::from_waker(&waker);
        let big = vec![7u8; COALESCE_LIMIT];
        ready(Pin::new(&mut conn).poll_write(&mut cx, &big));
        assert!(nothing_to_read(&peer));
        // The next write finds the limit reached and sends what is held first.
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            peer.read_to_end(&mut all).await.unwrap();
            all
        });
        let more = [1u8; 10];
        std::future::poll_fn(|cx| Pin::new(&mut conn).poll_write(cx, &more))
            .await
            .unwrap();
        assert_eq!(conn.out, more, "only the new bytes wait");
        std::future::poll_fn(|cx| Pin::new(&mut conn).poll_shutdown(cx))
            .await
            .unwrap();
        drop(conn);
        let all = reader.await.unwrap();
        assert_eq!(all.len(), COALESCE_LIMIT + 10);
        assert!(all[..COALESCE_LIMIT].iter().all(|b| *b == 7));
    }
}
