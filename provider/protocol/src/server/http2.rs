//! The gRPC server's HTTP/2: one task per connection that reads frames, runs calls and writes
//! their answers, with nothing in between.
//!
//! Why not hyper and h2 under tonic: a provider answers one small call at a time, with its
//! caches cold, between Terraform's own work on the same cores. Measured with callgrind, h2,
//! hyper and tonic took 65,000 to 80,000 instructions per call even for a call that does
//! nothing: a task and channels per stream, a locked stream store, a body type per layer, a
//! header map per request. A gRPC server that Terraform talks to needs a small part of HTTP/2:
//!
//! - every call is a POST of one message (or, for go-plugin's broker, a stream whose inbound
//!   messages we do not read), answered by headers, messages and trailers;
//! - one client, which follows the protocol; we stay strict where it costs nothing (stream ids,
//!   frame sizes, flow control) and answer a violation with GOAWAY, as RFC 9113 asks.
//!
//! Calls run as futures inside the connection's task (a `FuturesUnordered`), so a call that
//! completes at once is answered in the same pass that read it, and the answer, its trailers and
//! any PING acknowledgement leave in one write. A call is cancelled (its future dropped) when the
//! client resets its stream or the connection ends, as with tonic.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::FutureExt as _;
use futures_util::stream::{FuturesUnordered, Stream, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::Status;

use super::frames::{self, code, flag, kind, setting, FrameHeader, HEADER_LEN};

/// A unary call's answer: the response message, already framed for gRPC (see [`frame_message`]).
pub(crate) type Reply = Pin<Box<dyn Future<Output = Result<Vec<u8>, Status>> + Send>>;

/// A server stream's messages, each framed for gRPC.
pub(crate) type Replies = Pin<Box<dyn Stream<Item = Result<Vec<u8>, Status>> + Send>>;

/// What a request starts.
pub(crate) enum Call {
    /// One response message, or a status.
    Unary(Reply),
    /// Response messages until the stream ends (or the server shuts down).
    Streaming(Replies),
}

/// Maps a request path to the call that serves it.
pub(crate) trait Router: Send + Sync + 'static {
    /// Whether a call on `path` starts when its headers arrive, without waiting for a request
    /// message: client-streaming calls, whose inbound messages the connection discards.
    fn starts_on_headers(&self, path: &[u8]) -> bool;

    /// The call for `path` with `request` (the request message without gRPC's prefix), or
    /// `None` for a method we do not serve. `request` shares the connection's copy of the
    /// message, so the `bytes` fields of a decoded request can slice it instead of copying.
    fn call(&self, path: &[u8], request: Bytes) -> Option<Call>;
}

/// Frames `message` for gRPC: a byte saying "not compressed", the length, the message.
pub(crate) fn frame_message(message: &impl prost::Message) -> Vec<u8> {
    let len = message.encoded_len();
    let mut out = Vec::with_capacity(5 + len);
    out.push(0);
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    // Encoding into a Vec cannot run out of room.
    let _ = message.encode(&mut out);
    out
}

/// Limits of one connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The largest request message, in bytes.
    pub(crate) max_message: usize,
    /// The largest response message, in bytes.
    pub(crate) max_response: usize,
    /// The most request bytes one connection may hold for calls whose request has not fully
    /// arrived, over all its streams: without it, 1,024 streams of almost `max_message` each
    /// could hold 256 GiB.
    pub(crate) max_buffered: usize,
}

/// The receive window we give each stream and the connection: big enough that Terraform never
/// waits for us on an ordinary message, returned as the data arrives.
const RECEIVE_WINDOW: u32 = 4 << 20;

/// Streams the client may open at once (Terraform's parallelism is 10 by default).
const MAX_CONCURRENT_STREAMS: u32 = 1024;

/// How many passes a write that only acknowledges (a PING, SETTINGS or a window) may wait for a
/// call in flight to add its answer to it.
const DEFERRED_PASSES: u8 = 3;

/// At most this many bytes are read in one pass before the calls get their turn.
const READ_BUDGET: usize = 256 * 1024;

/// `buffered` less the `len` bytes a stream gave up (never below zero: a miscount must not
/// wrap into a budget that refuses every request).
fn release(buffered: usize, len: usize) -> usize {
    debug_assert!(
        len <= buffered,
        "released {len} of {buffered} buffered bytes"
    );
    buffered.saturating_sub(len)
}

/// Serves gRPC over `io` until the client goes away or `stop` resolves and the calls in flight
/// have answered. An I/O error ends the connection (and its calls) and is returned.
pub(crate) async fn serve_connection<IO, R>(
    io: IO,
    router: Arc<R>,
    limits: Limits,
    stop: Pin<Box<dyn Future<Output = ()> + Send>>,
) -> io::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    R: Router,
{
    let mut conn = Connection::new(io, router, limits, stop);
    std::future::poll_fn(|cx| conn.poll_drive(cx)).await
}

/// What the connection's calls report back.
enum Event {
    Answered(u32, Result<Vec<u8>, Status>),
    Streamed(u32, Option<Result<Vec<u8>, Status>>, Replies),
}

type EventFuture = Pin<Box<dyn Future<Output = Option<Event>> + Send>>;

/// Where a stream is.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// The request message is arriving.
    Receiving,
    /// The call runs (or streams); the client's side may still be open.
    Running,
    /// Our side is done (its last frames are waiting for flow-control window).
    Closing,
}

struct StreamState {
    path: Vec<u8>,
    body: Vec<u8>,
    phase: Phase,
    /// The client has ended its side.
    remote_closed: bool,
    /// Our response headers are out.
    headers_sent: bool,
    /// Response bytes (DATA payload) waiting for window, and how much of them went out.
    outbox: Vec<u8>,
    outbox_sent: usize,
    /// The trailer block to send once the outbox is empty.
    trailers: Option<Vec<u8>>,
    send_window: i64,
    /// Bytes received on this stream that we have not yet returned as window.
    unacked: u32,
    /// Cancels the call when the stream is reset.
    cancel: Option<futures_util::future::AbortHandle>,
}

impl StreamState {
    fn new(path: Vec<u8>, send_window: i64) -> StreamState {
        StreamState {
            path,
            body: Vec::new(),
            phase: Phase::Receiving,
            remote_closed: false,
            headers_sent: false,
            outbox: Vec::new(),
            outbox_sent: 0,
            trailers: None,
            send_window,
            unacked: 0,
            cancel: None,
        }
    }
}

/// A connection-level protocol error: GOAWAY with this code, then close.
struct ConnectionError(u32);

/// A header block that CONTINUATION frames are still adding to.
struct PartialHeaders {
    stream: u32,
    block: Vec<u8>,
    end_stream: bool,
}

struct Connection<IO, R> {
    io: IO,
    router: Arc<R>,
    limits: Limits,
    stop: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    decoder: loona_hpack::Decoder<'static>,
    /// Bytes read, `rbuf[rpos..rlen]` not yet parsed.
    rbuf: Vec<u8>,
    rpos: usize,
    rlen: usize,
    /// Bytes to write, `out[sent..]` not yet written.
    out: Vec<u8>,
    sent: usize,
    /// Whether `out` holds anything besides acknowledgements.
    out_has_answers: bool,
    deferred: u8,
    preface_done: bool,
    streams: HashMap<u32, StreamState>,
    calls: FuturesUnordered<EventFuture>,
    partial: Option<PartialHeaders>,
    last_stream: u32,
    send_window: i64,
    peer_initial_window: i64,
    peer_max_frame: usize,
    /// Bytes received on the connection that we have not yet returned as window.
    unacked: u32,
    /// Request bytes held in the `body` of streams still receiving (see `Limits::max_buffered`).
    buffered: usize,
    /// GOAWAY sent: no new streams; close once the streams are done.
    going_away: bool,
    /// Closing after a protocol error: write what is queued and stop.
    failed: bool,
    read_closed: bool,
}

impl<IO, R> Connection<IO, R>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    R: Router,
{
    fn new(
        io: IO,
        router: Arc<R>,
        limits: Limits,
        stop: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Self {
        let mut out = Vec::with_capacity(4096);
        // The server's preface: our settings, and the connection's window raised to match.
        frames::put_settings(
            &mut out,
            &[
                (setting::MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS),
                (setting::INITIAL_WINDOW_SIZE, RECEIVE_WINDOW),
            ],
        );
        frames::put_window_update(&mut out, 0, RECEIVE_WINDOW - frames::DEFAULT_WINDOW as u32);
        Connection {
            io,
            router,
            limits,
            stop: Some(stop),
            decoder: loona_hpack::Decoder::new(),
            rbuf: vec![0; 32 * 1024],
            rpos: 0,
            rlen: 0,
            out,
            sent: 0,
            out_has_answers: false,
            deferred: 0,
            preface_done: false,
            streams: HashMap::new(),
            calls: FuturesUnordered::new(),
            partial: None,
            last_stream: 0,
            send_window: frames::DEFAULT_WINDOW,
            peer_initial_window: frames::DEFAULT_WINDOW,
            peer_max_frame: frames::DEFAULT_MAX_FRAME,
            unacked: 0,
            buffered: 0,
            going_away: false,
            failed: false,
            read_closed: false,
        }
    }

    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if let Some(stop) = self.stop.as_mut() {
                if stop.as_mut().poll(cx).is_ready() {
                    self.stop = None;
                    self.go_away();
                }
            }
            let mut again = false;
            if !self.read_closed && !self.failed {
                again = self.poll_read_frames(cx)?;
            }
            if self.read_closed {
                // The client is gone: nobody is left to answer, so the calls are dropped.
                return Poll::Ready(Ok(()));
            }
            if !self.failed {
                while let Poll::Ready(Some(event)) = self.calls.poll_next_unpin(cx) {
                    if let Some(event) = event {
                        self.on_event(event);
                    }
                }
            }
            if self.sent < self.out.len() {
                if !self.out_has_answers
                    && self.deferred < DEFERRED_PASSES
                    && self.unary_call_running()
                    && !self.failed
                {
                    // Only acknowledgements so far, and a call may answer within a pass or two:
                    // send them together.
                    self.deferred += 1;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                match self.poll_write_out(cx)? {
                    Poll::Ready(()) => self.deferred = 0,
                    Poll::Pending => return Poll::Pending,
                }
            }
            if self.failed || (self.going_away && self.streams.is_empty() && self.calls.is_empty())
            {
                std::task::ready!(Pin::new(&mut self.io).poll_flush(cx))?;
                return Pin::new(&mut self.io).poll_shutdown(cx);
            }
            if !again {
                return Poll::Pending;
            }
        }
    }

    /// Whether a unary call is running (server streams run until the connection ends, so they
    /// do not count).
    fn unary_call_running(&self) -> bool {
        self.streams
            .values()
            .any(|s| s.phase == Phase::Running && !s.headers_sent)
    }

    /// Writes `out`; `Ready` once all of it is written and flushed.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let n =
                std::task::ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.out.clear();
        self.sent = 0;
        self.out_has_answers = false;
        // A large message grew the buffer: give the memory back instead of keeping its peak.
        if self.out.capacity() > 256 * 1024 {
            self.out = Vec::with_capacity(4096);
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Reads what has arrived and handles its frames. Returns whether to take another pass
    /// (the read budget ran out with data left).
    fn poll_read_frames(&mut self, cx: &mut Context<'_>) -> io::Result<bool> {
        let mut budget = READ_BUDGET;
        loop {
            if self.rpos == self.rlen {
                self.rpos = 0;
                self.rlen = 0;
            }
            if self.rlen == self.rbuf.len() {
                let frame_end = self.needed_bytes();
                if self.rpos > 0 {
                    self.rbuf.copy_within(self.rpos..self.rlen, 0);
                    self.rlen -= self.rpos;
                    self.rpos = 0;
                }
                if self.rlen == self.rbuf.len() || frame_end > self.rbuf.len() {
                    let want = frame_end.max(self.rbuf.len() + 16 * 1024);
                    self.rbuf.resize(want, 0);
                }
            }
            let mut buf = ReadBuf::new(&mut self.rbuf[self.rlen..]);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Pending => return Ok(false),
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Ready(Ok(())) => {
                    let n = buf.filled().len();
                    if n == 0 {
                        self.read_closed = true;
                        return Ok(false);
                    }
                    self.rlen += n;
                    budget = budget.saturating_sub(n);
                }
            }
            if let Err(ConnectionError(error)) = self.handle_frames() {
                frames::put_goaway(&mut self.out, self.last_stream, error);
                self.out_has_answers = true;
                self.failed = true;
                return Ok(false);
            }
            if self.rpos == self.rlen && self.rbuf.len() > 256 * 1024 {
                // A large message grew the buffer: give the memory back.
                self.rbuf = vec![0; 32 * 1024];
                self.rpos = 0;
                self.rlen = 0;
            }
            if budget == 0 {
                return Ok(true);
            }
        }
    }

    /// How far into `rbuf` (from `rpos`) the frame being read ends, as far as it is known.
    fn needed_bytes(&self) -> usize {
        let available = self.rlen - self.rpos;
        if !self.preface_done {
            return frames::PREFACE.len();
        }
        if available < HEADER_LEN {
            return HEADER_LEN;
        }
        let mut header = [0; HEADER_LEN];
        header.copy_from_slice(&self.rbuf[self.rpos..self.rpos + HEADER_LEN]);
        HEADER_LEN + FrameHeader::parse(&header).len
    }

    fn handle_frames(&mut self) -> Result<(), ConnectionError> {
        if !self.preface_done {
            let available = self.rlen - self.rpos;
            let seen = available.min(frames::PREFACE.len());
            if self.rbuf[self.rpos..self.rpos + seen] != frames::PREFACE[..seen] {
                return Err(ConnectionError(code::PROTOCOL_ERROR));
            }
            if available < frames::PREFACE.len() {
                return Ok(());
            }
            self.rpos += frames::PREFACE.len();
            self.preface_done = true;
        }
        // The buffer is taken out so that a frame's payload can be borrowed while the
        // connection changes.
        let rbuf = std::mem::take(&mut self.rbuf);
        let result = self.handle_buffered_frames(&rbuf);
        self.rbuf = rbuf;
        result
    }

    fn handle_buffered_frames(&mut self, rbuf: &[u8]) -> Result<(), ConnectionError> {
        while self.rlen - self.rpos >= HEADER_LEN && !self.failed {
            let mut raw = [0; HEADER_LEN];
            raw.copy_from_slice(&rbuf[self.rpos..self.rpos + HEADER_LEN]);
            let header = FrameHeader::parse(&raw);
            if header.len > frames::DEFAULT_MAX_FRAME {
                return Err(ConnectionError(code::FRAME_SIZE_ERROR));
            }
            let end = self.rpos + HEADER_LEN + header.len;
            if end > self.rlen {
                return Ok(());
            }
            let payload = &rbuf[self.rpos + HEADER_LEN..end];
            self.rpos = end;
            self.handle_frame(header, payload)?;
        }
        Ok(())
    }

    fn handle_frame(&mut self, header: FrameHeader, payload: &[u8]) -> Result<(), ConnectionError> {
        if let Some(partial) = self.partial.as_mut() {
            // A header block must be finished before any other frame (RFC 9113, 6.10).
            if header.kind != kind::CONTINUATION || header.stream != partial.stream {
                return Err(ConnectionError(code::PROTOCOL_ERROR));
            }
            partial.block.extend_from_slice(payload);
            if partial.block.len() > self.limits.max_message {
                return Err(ConnectionError(code::PROTOCOL_ERROR));
            }
            if header.flags & flag::END_HEADERS != 0 {
                if let Some(partial) = self.partial.take() {
                    self.on_header_block(partial.stream, &partial.block, partial.end_stream)?;
                }
            }
            return Ok(());
        }
        match header.kind {
            kind::DATA => self.on_data(header, payload),
            kind::HEADERS => self.on_headers(header, payload),
            kind::PRIORITY => Ok(()),
            kind::RST_STREAM => {
                if header.stream == 0 || payload.len() != 4 {
                    return Err(ConnectionError(code::PROTOCOL_ERROR));
                }
                if let Some(stream) = self.remove_stream(header.stream) {
                    if let Some(cancel) = stream.cancel {
                        cancel.abort();
                    }
                }
                Ok(())
            }
            kind::SETTINGS => self.on_settings(header, payload),
            kind::PUSH_PROMISE | kind::CONTINUATION => Err(ConnectionError(code::PROTOCOL_ERROR)),
            kind::PING => {
                let Ok(data) = <&[u8; 8]>::try_from(payload) else {
                    return Err(ConnectionError(code::FRAME_SIZE_ERROR));
                };
                if header.flags & flag::ACK == 0 {
                    frames::put_ping_ack(&mut self.out, data);
                }
                Ok(())
            }
            kind::GOAWAY => {
                // The client opens no more streams; the ones it has keep going.
                self.go_away();
                Ok(())
            }
            kind::WINDOW_UPDATE => self.on_window_update(header, payload),
            // Unknown frame types are ignored (RFC 9113, 4.1).
            _ => Ok(()),
        }
    }

    fn on_settings(&mut self, header: FrameHeader, payload: &[u8]) -> Result<(), ConnectionError> {
        if header.stream != 0 {
            return Err(ConnectionError(code::PROTOCOL_ERROR));
        }
        if header.flags & flag::ACK != 0 {
            return Ok(());
        }
        if !payload.len().is_multiple_of(6) {
            return Err(ConnectionError(code::FRAME_SIZE_ERROR));
        }
        for pair in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([pair[0], pair[1]]);
            let value = u32::from_be_bytes([pair[2], pair[3], pair[4], pair[5]]);
            match id {
                setting::INITIAL_WINDOW_SIZE => {
                    let value = i64::from(value);
                    if value > frames::MAX_WINDOW {
                        return Err(ConnectionError(code::FLOW_CONTROL_ERROR));
                    }
                    let delta = value - self.peer_initial_window;
                    self.peer_initial_window = value;
                    for stream in self.streams.values_mut() {
                        stream.send_window += delta;
                    }
                }
                setting::MAX_FRAME_SIZE => {
                    let value = value as usize;
                    if !(frames::DEFAULT_MAX_FRAME..=0x00ff_ffff).contains(&value) {
                        return Err(ConnectionError(code::PROTOCOL_ERROR));
                    }
                    self.peer_max_frame = value;
                }
                _ => {}
            }
        }
        frames::put_settings_ack(&mut self.out);
        self.flush_blocked_streams();
        Ok(())
    }

    fn on_window_update(
        &mut self,
        header: FrameHeader,
        payload: &[u8],
    ) -> Result<(), ConnectionError> {
        let Ok(raw) = <[u8; 4]>::try_from(payload) else {
            return Err(ConnectionError(code::FRAME_SIZE_ERROR));
        };
        let increment = i64::from(u32::from_be_bytes(raw) & 0x7fff_ffff);
        if header.stream == 0 {
            if increment == 0 {
                return Err(ConnectionError(code::PROTOCOL_ERROR));
            }
            self.send_window += increment;
            if self.send_window > frames::MAX_WINDOW {
                return Err(ConnectionError(code::FLOW_CONTROL_ERROR));
            }
            self.flush_blocked_streams();
            return Ok(());
        }
        let Some(stream) = self.streams.get_mut(&header.stream) else {
            return Ok(());
        };
        stream.send_window += increment;
        if increment == 0 || stream.send_window > frames::MAX_WINDOW {
            self.reset(header.stream, code::FLOW_CONTROL_ERROR);
            return Ok(());
        }
        self.flush_stream(header.stream);
        Ok(())
    }

    fn on_headers(&mut self, header: FrameHeader, payload: &[u8]) -> Result<(), ConnectionError> {
        if header.stream == 0 {
            return Err(ConnectionError(code::PROTOCOL_ERROR));
        }
        let mut block = strip_padding(header.flags, payload)?;
        if header.flags & flag::PRIORITY != 0 {
            block = block
                .get(5..)
                .ok_or(ConnectionError(code::FRAME_SIZE_ERROR))?;
        }
        let end_stream = header.flags & flag::END_STREAM != 0;
        if header.flags & flag::END_HEADERS == 0 {
            self.partial = Some(PartialHeaders {
                stream: header.stream,
                block: block.to_vec(),
                end_stream,
            });
            return Ok(());
        }
        self.on_header_block(header.stream, block, end_stream)
    }

    fn on_header_block(
        &mut self,
        id: u32,
        block: &[u8],
        end_stream: bool,
    ) -> Result<(), ConnectionError> {
        let mut path = None;
        let decoded = self.decoder.decode_with_cb(block, |name, value| {
            if name.as_ref() == b":path" {
                path = Some(value.into_owned());
            }
        });
        if decoded.is_err() {
            return Err(ConnectionError(code::COMPRESSION_ERROR));
        }
        if let Some(stream) = self.streams.get_mut(&id) {
            // Trailers: the client's side ends here.
            if !end_stream {
                return Err(ConnectionError(code::PROTOCOL_ERROR));
            }
            stream.remote_closed = true;
            if stream.phase == Phase::Receiving {
                self.start_call(id);
            }
            return Ok(());
        }
        if id.is_multiple_of(2) || id <= self.last_stream {
            // A closed stream's headers, or a stream id a client may not use.
            return Err(ConnectionError(code::PROTOCOL_ERROR));
        }
        self.last_stream = id;
        if self.going_away || self.streams.len() >= MAX_CONCURRENT_STREAMS as usize {
            frames::put_rst_stream(&mut self.out, id, code::REFUSED_STREAM);
            return Ok(());
        }
        let path = path.unwrap_or_default();
        let starts_now = self.router.starts_on_headers(&path);
        let mut stream = StreamState::new(path, self.peer_initial_window);
        stream.remote_closed = end_stream;
        self.streams.insert(id, stream);
        if starts_now || end_stream {
            self.start_call(id);
        }
        Ok(())
    }

    fn on_data(&mut self, header: FrameHeader, payload: &[u8]) -> Result<(), ConnectionError> {
        if header.stream == 0 {
            return Err(ConnectionError(code::PROTOCOL_ERROR));
        }
        if header.stream > self.last_stream {
            // DATA on a stream that was never opened.
            return Err(ConnectionError(code::PROTOCOL_ERROR));
        }
        // Flow control counts the whole payload, padding included.
        let counted = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        self.unacked = self.unacked.saturating_add(counted);
        if self.unacked >= RECEIVE_WINDOW / 2 {
            frames::put_window_update(&mut self.out, 0, self.unacked);
            self.unacked = 0;
        }
        let data = strip_padding(header.flags, payload)?;
        let end_stream = header.flags & flag::END_STREAM != 0;
        let limit = self.limits.max_message.saturating_add(5);
        let Some(stream) = self.streams.get_mut(&header.stream) else {
            // A stream we reset or finished; its data is dropped.
            return Ok(());
        };
        if stream.remote_closed {
            self.reset(header.stream, code::STREAM_CLOSED);
            return Ok(());
        }
        stream.remote_closed = end_stream;
        if !end_stream {
            stream.unacked = stream.unacked.saturating_add(counted);
            if stream.unacked >= RECEIVE_WINDOW / 2 {
                frames::put_window_update(&mut self.out, header.stream, stream.unacked);
                stream.unacked = 0;
            }
        }
        match stream.phase {
            Phase::Receiving => {
                let refusal = if stream.body.len() + data.len() > limit {
                    Some(format!(
                        "the request is larger than the largest message this provider accepts ({} bytes)",
                        self.limits.max_message
                    ))
                } else if self.buffered + data.len() > self.limits.max_buffered {
                    Some(format!(
                        "the provider already holds {} bytes of requests still arriving on this connection, the most it holds is {} bytes",
                        self.buffered, self.limits.max_buffered
                    ))
                } else {
                    None
                };
                if let Some(message) = refusal {
                    self.buffered = release(self.buffered, stream.body.len());
                    stream.body = Vec::new();
                    self.answer(header.stream, Err(Status::resource_exhausted(message)));
                    return Ok(());
                }
                self.buffered += data.len();
                stream.body.extend_from_slice(data);
                if end_stream {
                    self.start_call(header.stream);
                }
            }
            // A client stream's messages (the broker's) are not read.
            Phase::Running | Phase::Closing => {}
        }
        Ok(())
    }

    /// Starts the call of stream `id`, whose request has arrived (or is not waited for).
    fn start_call(&mut self, id: u32) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        stream.phase = Phase::Running;
        self.buffered = release(self.buffered, stream.body.len());
        let body = Bytes::from(std::mem::take(&mut stream.body));
        let request = if body.is_empty() {
            Ok(body)
        } else {
            unframe(body)
        };
        let call = match request {
            Ok(request) => match self.router.call(&stream.path, request) {
                Some(call) => call,
                None => {
                    let message = format!(
                        "this provider does not serve {}",
                        String::from_utf8_lossy(&stream.path)
                    );
                    self.answer(id, Err(Status::unimplemented(message)));
                    return;
                }
            },
            Err(status) => {
                self.answer(id, Err(status));
                return;
            }
        };
        let event: Pin<Box<dyn Future<Output = Event> + Send>> = match call {
            Call::Unary(reply) => Box::pin(async move {
                let answer = AssertUnwindSafe(reply)
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Err(crashed()));
                Event::Answered(id, answer)
            }),
            Call::Streaming(replies) => {
                // Headers go out at once: a client waits for them before it reads messages.
                put_response_headers(&mut self.out, stream, id, self.peer_max_frame);
                self.out_has_answers = true;
                next_reply(id, replies)
            }
        };
        self.run(id, event);
    }

    /// Runs `event`, the next step of stream `id`'s call, among the connection's calls; a reset
    /// of the stream cancels it.
    fn run(&mut self, id: u32, event: Pin<Box<dyn Future<Output = Event> + Send>>) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        let (abort, registration) = futures_util::future::AbortHandle::new_pair();
        stream.cancel = Some(abort);
        self.calls.push(Box::pin(async move {
            futures_util::future::Abortable::new(event, registration)
                .await
                .ok()
        }));
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Answered(id, result) => self.answer(id, result),
            Event::Streamed(id, Some(Ok(message)), rest) => {
                if let Some(stream) = self.streams.get_mut(&id) {
                    stream.outbox.extend_from_slice(&message);
                    self.run(id, next_reply(id, rest));
                    self.flush_stream(id);
                }
            }
            Event::Streamed(id, Some(Err(status)), _) => self.finish(id, Err(status)),
            Event::Streamed(id, None, _) => self.finish(id, Ok(())),
        }
    }

    /// Queues a unary call's answer (message and trailers, or a status alone).
    fn answer(&mut self, id: u32, result: Result<Vec<u8>, Status>) {
        let result = match result {
            Ok(message) if message.len() > self.limits.max_response.saturating_add(5) => {
                Err(Status::resource_exhausted(format!(
                    "the response is larger than the largest message this provider sends ({} bytes)",
                    self.limits.max_response
                )))
            }
            other => other,
        };
        match result {
            Ok(message) => {
                if let Some(stream) = self.streams.get_mut(&id) {
                    if stream.outbox.is_empty() {
                        stream.outbox = message;
                        stream.outbox_sent = 0;
                    } else {
                        stream.outbox.extend_from_slice(&message);
                    }
                }
                self.finish(id, Ok(()));
            }
            Err(status) => self.finish(id, Err(status)),
        }
    }

    /// Ends stream `id` with a status: its queued messages, then trailers (or, before any
    /// headers, a trailers-only response).
    fn finish(&mut self, id: u32, status: Result<(), Status>) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        let mut block = Vec::with_capacity(64);
        if !stream.headers_sent && stream.outbox.is_empty() {
            block.extend_from_slice(frames::RESPONSE_HEADERS);
        }
        match status {
            Ok(()) => frames::put_status(&mut block, 0, ""),
            Err(status) => frames::put_status(&mut block, status.code() as i32, status.message()),
        }
        stream.trailers = Some(block);
        stream.phase = Phase::Closing;
        stream.cancel = None;
        self.flush_stream(id);
    }

    /// Sends as much of stream `id`'s queued answer as the windows allow.
    fn flush_stream(&mut self, id: u32) {
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        if stream.outbox_sent < stream.outbox.len() && !stream.headers_sent {
            put_response_headers(&mut self.out, stream, id, self.peer_max_frame);
            self.out_has_answers = true;
        }
        while stream.outbox_sent < stream.outbox.len() {
            let room = stream.send_window.min(self.send_window);
            if room <= 0 {
                return;
            }
            let left = stream.outbox.len() - stream.outbox_sent;
            let n = left
                .min(self.peer_max_frame)
                .min(usize::try_from(room).unwrap_or(usize::MAX));
            frames::put_data(
                &mut self.out,
                id,
                &stream.outbox[stream.outbox_sent..stream.outbox_sent + n],
                false,
            );
            self.out_has_answers = true;
            stream.outbox_sent += n;
            stream.send_window -= n as i64;
            self.send_window -= n as i64;
        }
        stream.outbox = Vec::new();
        stream.outbox_sent = 0;
        let Some(trailers) = stream.trailers.take() else {
            return;
        };
        frames::put_headers(&mut self.out, id, &trailers, true, self.peer_max_frame);
        self.out_has_answers = true;
        let remote_closed = stream.remote_closed;
        self.remove_stream(id);
        if !remote_closed {
            // The client may still be sending (a stream we ended early): tell it to stop.
            frames::put_rst_stream(&mut self.out, id, code::NO_ERROR);
        }
    }

    fn flush_blocked_streams(&mut self) {
        let blocked: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, s)| s.outbox_sent < s.outbox.len())
            .map(|(id, _)| *id)
            .collect();
        for id in blocked {
            self.flush_stream(id);
        }
    }

    /// Forgets stream `id`, and the request bytes it held.
    fn remove_stream(&mut self, id: u32) -> Option<StreamState> {
        let stream = self.streams.remove(&id)?;
        self.buffered = release(self.buffered, stream.body.len());
        Some(stream)
    }

    /// Resets stream `id` with `error` and cancels its call.
    fn reset(&mut self, id: u32, error: u32) {
        if let Some(stream) = self.remove_stream(id) {
            if let Some(cancel) = stream.cancel {
                cancel.abort();
            }
        }
        frames::put_rst_stream(&mut self.out, id, error);
    }

    /// Stops taking streams: GOAWAY, and server streams (which would run until the connection
    /// ends) end with an OK status. Calls in flight still answer.
    fn go_away(&mut self) {
        if self.going_away {
            return;
        }
        self.going_away = true;
        frames::put_goaway(&mut self.out, self.last_stream, code::NO_ERROR);
        self.out_has_answers = true;
        let streaming: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, s)| s.phase == Phase::Running && s.headers_sent)
            .map(|(id, _)| *id)
            .collect();
        for id in streaming {
            if let Some(cancel) = self.streams.get_mut(&id).and_then(|s| s.cancel.take()) {
                cancel.abort();
            }
            self.finish(id, Ok(()));
        }
    }
}

/// Our response headers for stream `id`, sent once.
fn put_response_headers(out: &mut Vec<u8>, stream: &mut StreamState, id: u32, max_frame: usize) {
    if !stream.headers_sent {
        frames::put_headers(out, id, frames::RESPONSE_HEADERS, false, max_frame);
        stream.headers_sent = true;
    }
}

/// The next message of a server stream, as an event.
fn next_reply(id: u32, mut replies: Replies) -> Pin<Box<dyn Future<Output = Event> + Send>> {
    Box::pin(async move {
        let item = AssertUnwindSafe(replies.next())
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Some(Err(crashed())));
        Event::Streamed(id, item, replies)
    })
}

/// The status of a call whose future unwound: the provider's own handlers turn their failures
/// into diagnostics, so this is a bug, and it ends only that call, never the connection.
fn crashed() -> Status {
    Status::internal("the call failed inside the provider without an answer (a bug in the provider); other calls go on")
}

/// A DATA or HEADERS payload without its padding.
fn strip_padding(flags: u8, payload: &[u8]) -> Result<&[u8], ConnectionError> {
    if flags & flag::PADDED == 0 {
        return Ok(payload);
    }
    let Some((&pad, rest)) = payload.split_first() else {
        return Err(ConnectionError(code::FRAME_SIZE_ERROR));
    };
    let keep = rest
        .len()
        .checked_sub(usize::from(pad))
        .ok_or(ConnectionError(code::PROTOCOL_ERROR))?;
    Ok(&rest[..keep])
}

/// The one message of a unary request (gRPC's 5-byte prefix removed).
fn unframe(body: Bytes) -> Result<Bytes, Status> {
    let Some((prefix, message)) = body.split_first_chunk::<5>() else {
        return Err(Status::internal("the request message is cut short"));
    };
    if prefix[0] != 0 {
        return Err(Status::unimplemented(
            "this provider does not accept compressed messages",
        ));
    }
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if len != message.len() {
        return Err(Status::internal(
            "a unary request must carry exactly one message",
        ));
    }
    Ok(body.slice(5..))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};

    use super::*;
    use crate::server::fuzzing::{framed, FuzzRouter};

    /// `/echo` answers its request; `/slow` waits until dropped or released; `/stream` sends
    /// two messages and ends.
    struct TestRouter {
        slow_dropped: Arc<AtomicBool>,
        release: Arc<tokio::sync::Notify>,
    }

    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// The fuzzer's routes (`/echo`, `/stream`, `/hang`), plus `/slow`, which answers once
    /// released and says whether it was dropped first, and `/crash`, which unwinds.
    impl Router for TestRouter {
        fn starts_on_headers(&self, path: &[u8]) -> bool {
            FuzzRouter.starts_on_headers(path)
        }

        fn call(&self, path: &[u8], request: Bytes) -> Option<Call> {
            match path {
                b"/slow" => {
                    let guard = SetOnDrop(self.slow_dropped.clone());
                    let release = self.release.clone();
                    Some(Call::Unary(Box::pin(async move {
                        release.notified().await;
                        drop(guard);
                        Ok(framed(b"late"))
                    })))
                }
                b"/crash" => Some(Call::Unary(Box::pin(async {
                    let fail = true;
                    assert!(!fail, "a handler bug");
                    Ok(Vec::new())
                }))),
                _ => FuzzRouter.call(path, request),
            }
        }
    }

    /// A client side that writes raw frames and reads the server's.
    struct Client {
        io: DuplexStream,
        encoder: loona_hpack::Encoder<'static>,
        decoder: loona_hpack::Decoder<'static>,
        read: Vec<u8>,
    }

    #[derive(Debug)]
    struct Frame {
        header: FrameHeader,
        payload: Vec<u8>,
    }

    impl Client {
        fn headers(&mut self, stream: u32, path: &str, end_stream: bool) -> Vec<u8> {
            let block = self.encoder.encode([
                (&b":method"[..], &b"POST"[..]),
                (b":scheme", b"http"),
                (b":path", path.as_bytes()),
                (b"content-type", b"application/grpc"),
                (b"te", b"trailers"),
            ]);
            let mut out = Vec::new();
            frames::put_headers(&mut out, stream, &block, end_stream, 16_384);
            out
        }

        async fn send(&mut self, bytes: &[u8]) {
            self.io.write_all(bytes).await.unwrap();
        }

        /// The next frame, or `None` once the server closed the connection.
        async fn frame(&mut self) -> Option<Frame> {
            loop {
                if self.read.len() >= HEADER_LEN {
                    let header = FrameHeader::parse(self.read[..HEADER_LEN].try_into().unwrap());
                    if self.read.len() >= HEADER_LEN + header.len {
                        let payload = self.read[HEADER_LEN..HEADER_LEN + header.len].to_vec();
                        self.read.drain(..HEADER_LEN + header.len);
                        return Some(Frame { header, payload });
                    }
                }
                let mut buf = [0; 4096];
                let n = tokio::time::timeout(Duration::from_secs(5), self.io.read(&mut buf))
                    .await
                    .expect("the server answers within 5 s")
                    .unwrap();
                if n == 0 {
                    return None;
                }
                self.read.extend_from_slice(&buf[..n]);
            }
        }

        /// Frames until one of `kind` on `stream` arrives.
        async fn until(&mut self, kind: u8, stream: u32) -> Frame {
            loop {
                let frame = self.frame().await.expect("connection open");
                if frame.header.kind == kind && frame.header.stream == stream {
                    return frame;
                }
            }
        }

        fn fields(&mut self, block: &[u8]) -> Vec<(String, String)> {
            self.decoder
                .decode(block)
                .unwrap()
                .into_iter()
                .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
                .collect()
        }
    }

    use std::time::Duration;

    struct Served {
        client: Client,
        server: tokio::task::JoinHandle<io::Result<()>>,
        slow_dropped: Arc<AtomicBool>,
        release: Arc<tokio::sync::Notify>,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
    }

    /// A served connection whose client has sent its preface and settings.
    async fn served(max_message: usize) -> Served {
        served_with(Limits {
            max_message,
            max_response: max_message,
            max_buffered: 4 * max_message,
        })
        .await
    }

    async fn served_with(limits: Limits) -> Served {
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let slow_dropped = Arc::new(AtomicBool::new(false));
        let release = Arc::new(tokio::sync::Notify::new());
        let router = Arc::new(TestRouter {
            slow_dropped: slow_dropped.clone(),
            release: release.clone(),
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_connection(
            server_io,
            router,
            limits,
            Box::pin(async move {
                let _ = stop_rx.await;
            }),
        ));
        let mut client = Client {
            io: client_io,
            encoder: loona_hpack::Encoder::new(),
            decoder: loona_hpack::Decoder::new(),
            read: Vec::new(),
        };
        let mut hello = frames::PREFACE.to_vec();
        frames::put_settings(&mut hello, &[]);
        client.send(&hello).await;
        let settings = client.frame().await.unwrap();
        assert_eq!(settings.header.kind, kind::SETTINGS);
        Served {
            client,
            server,
            slow_dropped,
            release,
            stop: Some(stop_tx),
        }
    }

    #[tokio::test]
    async fn a_ping_and_a_call_read_together_are_answered_in_order_with_trailers() {
        let mut s = served(1024).await;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&[0, 0, 8, kind::PING, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(b"pingpong");
        bytes.extend(s.client.headers(1, "/echo", false));
        frames::put_data(&mut bytes, 1, &framed(b"hello"), true);
        s.client.send(&bytes).await;

        let ping = s.client.until(kind::PING, 0).await;
        assert_eq!(ping.header.flags, flag::ACK);
        assert_eq!(ping.payload, b"pingpong");
        let headers = s.client.until(kind::HEADERS, 1).await;
        assert_eq!(headers.header.flags & flag::END_STREAM, 0);
        let fields = s.client.fields(&headers.payload);
        assert_eq!(fields[0], (":status".into(), "200".into()));
        let data = s.client.until(kind::DATA, 1).await;
        assert_eq!(data.payload, framed(b"hello"));
        let trailers = s.client.until(kind::HEADERS, 1).await;
        assert_ne!(trailers.header.flags & flag::END_STREAM, 0);
        let fields = s.client.fields(&trailers.payload);
        assert_eq!(fields, [("grpc-status".into(), "0".into())]);
    }

    #[tokio::test]
    async fn unknown_methods_oversized_requests_and_crashed_calls_get_a_status_and_the_connection_goes_on(
    ) {
        let mut s = served(16).await;
        for (stream, path, message, status) in [
            (1, "/nope", Vec::new(), "12"),
            (3, "/echo", vec![7; 64], "8"),
            (5, "/crash", Vec::new(), "13"),
        ] {
            let mut bytes = s.client.headers(stream, path, false);
            frames::put_data(&mut bytes, stream, &framed(&message), true);
            s.client.send(&bytes).await;
            let only = s.client.until(kind::HEADERS, stream).await;
            assert_ne!(only.header.flags & flag::END_STREAM, 0, "{path}");
            let fields = s.client.fields(&only.payload);
            assert!(
                fields.contains(&("grpc-status".into(), status.into())),
                "{path}: {fields:?}"
            );
        }

        let mut bytes = s.client.headers(7, "/echo", false);
        frames::put_data(&mut bytes, 7, &framed(b"still here"), true);
        s.client.send(&bytes).await;
        let data = s.client.until(kind::DATA, 7).await;
        assert_eq!(data.payload, framed(b"still here"));
    }

    #[tokio::test]
    async fn requests_still_arriving_share_one_budget_per_connection() {
        let mut s = served_with(Limits {
            max_message: 64,
            max_response: 64,
            max_buffered: 100,
        })
        .await;
        let message = framed(&[1; 50]);
        // 55 bytes held for stream 1; 55 more for stream 3 would pass the budget of 100.
        let mut bytes = s.client.headers(1, "/echo", false);
        frames::put_data(&mut bytes, 1, &message, false);
        bytes.extend(s.client.headers(3, "/echo", false));
        frames::put_data(&mut bytes, 3, &message, false);
        s.client.send(&bytes).await;
        let refused = s.client.until(kind::HEADERS, 3).await;
        let fields = s.client.fields(&refused.payload);
        assert!(
            fields.contains(&("grpc-status".into(), "8".into())),
            "{fields:?}"
        );
        assert!(
            fields
                .iter()
                .any(|(k, v)| k == "grpc-message" && v.contains("still arriving")),
            "{fields:?}"
        );

        // Stream 1 completes: its call gets its 55 bytes and the budget gets them back.
        let mut bytes = Vec::new();
        frames::put_data(&mut bytes, 1, &[], true);
        s.client.send(&bytes).await;
        assert_eq!(s.client.until(kind::DATA, 1).await.payload, message);

        // A reset gives its stream's bytes back too: 7 is dropped half-sent, 9 then fits.
        let mut bytes = s.client.headers(7, "/echo", false);
        frames::put_data(&mut bytes, 7, &message, false);
        frames::put_rst_stream(&mut bytes, 7, 0x8); // CANCEL
        bytes.extend(s.client.headers(9, "/echo", false));
        frames::put_data(&mut bytes, 9, &message, false);
        frames::put_data(&mut bytes, 9, &[], true);
        s.client.send(&bytes).await;
        assert_eq!(s.client.until(kind::DATA, 9).await.payload, message);
    }

    #[tokio::test]
    async fn a_response_larger_than_the_window_waits_for_window_updates() {
        let mut s = served(1 << 20).await;
        // The client's windows: 100 bytes per stream; the connection keeps 65,535.
        let mut bytes = Vec::new();
        frames::put_settings(&mut bytes, &[(setting::INITIAL_WINDOW_SIZE, 100)]);
        let big: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        bytes.extend(s.client.headers(1, "/echo", false));
        let message = framed(&big);
        let chunks: Vec<&[u8]> = message.chunks(16_000).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            frames::put_data(&mut bytes, 1, chunk, i + 1 == chunks.len());
        }
        s.client.send(&bytes).await;
        let mut got = Vec::new();
        let first = s.client.until(kind::DATA, 1).await;
        assert_eq!(first.payload.len(), 100);
        got.extend(first.payload);
        while got.len() < big.len() + 5 {
            let mut update = Vec::new();
            frames::put_window_update(&mut update, 1, 7_000);
            s.client.send(&update).await;
            let frame = s.client.until(kind::DATA, 1).await;
            assert!(frame.payload.len() <= 7_000);
            got.extend(frame.payload);
        }
        assert_eq!(got, framed(&big));
        let trailers = s.client.until(kind::HEADERS, 1).await;
        assert_ne!(trailers.header.flags & flag::END_STREAM, 0);
    }

    #[tokio::test]
    async fn a_reset_cancels_its_call_and_shutdown_ends_streams_then_the_connection() {
        let mut s = served(1024).await;
        let mut bytes = s.client.headers(1, "/slow", false);
        frames::put_data(&mut bytes, 1, &framed(b""), true);
        bytes.extend(s.client.headers(3, "/stream", false));
        s.client.send(&bytes).await;
        let first = s.client.until(kind::DATA, 3).await;
        assert_eq!(first.payload, framed(b"one"));
        let mut bytes = Vec::new();
        frames::put_rst_stream(&mut bytes, 1, code::NO_ERROR);
        s.client.send(&bytes).await;
        let trailers = s.client.until(kind::HEADERS, 3).await;
        assert_ne!(trailers.header.flags & flag::END_STREAM, 0);
        // The stream ended while the client's side is open: it is told to stop sending.
        let rst = s.client.until(kind::RST_STREAM, 3).await;
        assert_eq!(rst.payload, code::NO_ERROR.to_be_bytes());
        for _ in 0..100 {
            if s.slow_dropped.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            s.slow_dropped.load(Ordering::SeqCst),
            "the reset call was dropped"
        );

        // A call in flight at shutdown still answers; then the connection closes.
        let mut bytes = s.client.headers(5, "/slow", false);
        frames::put_data(&mut bytes, 5, &framed(b""), true);
        s.client.send(&bytes).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.stop.take().unwrap().send(()).unwrap();
        let goaway = s.client.until(kind::GOAWAY, 0).await;
        assert_eq!(&goaway.payload[..4], 5u32.to_be_bytes());
        s.release.notify_one();
        let data = s.client.until(kind::DATA, 5).await;
        assert_eq!(data.payload, framed(b"late"));
        let _ = s.client.until(kind::HEADERS, 5).await;
        while s.client.frame().await.is_some() {}
        s.server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn protocol_violations_end_the_connection_with_goaway_not_a_crash() {
        let cases: Vec<(&str, Vec<u8>, u32)> = vec![
            (
                "DATA on stream 0",
                {
                    let mut b = Vec::new();
                    frames::put_data(&mut b, 0, b"x", false);
                    b
                },
                code::PROTOCOL_ERROR,
            ),
            (
                "a frame over the size limit",
                {
                    let mut b = Vec::new();
                    frames::put_header(&mut b, 20_000, kind::DATA, 0, 1);
                    b
                },
                code::FRAME_SIZE_ERROR,
            ),
            (
                "a broken header block",
                {
                    let mut b = Vec::new();
                    frames::put_headers(
                        &mut b,
                        1,
                        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                        true,
                        16_384,
                    );
                    b
                },
                code::COMPRESSION_ERROR,
            ),
            (
                "an even stream id",
                {
                    let mut b = Vec::new();
                    frames::put_headers(&mut b, 2, &[0x83], true, 16_384);
                    b
                },
                code::PROTOCOL_ERROR,
            ),
            (
                "padding longer than the frame",
                {
                    let mut b = Vec::new();
                    frames::put_headers(&mut b, 1, &[], false, 16_384);
                    frames::put_header(&mut b, 2, kind::DATA, flag::PADDED, 1);
                    b.extend_from_slice(&[9, 0]);
                    b
                },
                code::PROTOCOL_ERROR,
            ),
            (
                "a window overflow",
                {
                    let mut b = Vec::new();
                    frames::put_window_update(&mut b, 0, 0x7fff_ffff);
                    b
                },
                code::FLOW_CONTROL_ERROR,
            ),
        ];
        for (what, bytes, expected) in cases {
            let mut s = served(1024).await;
            s.client.send(&bytes).await;
            let goaway = s.client.until(kind::GOAWAY, 0).await;
            assert_eq!(goaway.payload[4..], expected.to_be_bytes(), "{what}");
            while s.client.frame().await.is_some() {}
            s.server.await.unwrap().unwrap();
        }

        let (mut client, server_io) = tokio::io::duplex(1 << 16);
        let router = Arc::new(TestRouter {
            slow_dropped: Arc::default(),
            release: Arc::default(),
        });
        let limits = Limits {
            max_message: 16,
            max_response: 16,
            max_buffered: 64,
        };
        let server = tokio::spawn(serve_connection(
            server_io,
            router,
            limits,
            Box::pin(std::future::pending()),
        ));
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut all = Vec::new();
        client.read_to_end(&mut all).await.unwrap();
        let goaway = all
            .windows(2)
            .position(|w| w == [kind::GOAWAY, 0])
            .expect("a GOAWAY for a client that does not speak HTTP/2");
        assert_eq!(
            all[goaway + 2 + 4 + 4..goaway + 2 + 4 + 8],
            code::PROTOCOL_ERROR.to_be_bytes()
        );
        server.await.unwrap().unwrap();
    }

    /// One frame of a generated conversation: any type, flags and stream, with a payload that
    /// is random bytes, a header block naming a method, or a gRPC message.
    #[derive(Debug, Clone)]
    struct AnyFrame {
        kind: u8,
        flags: u8,
        stream: u32,
        payload: Vec<u8>,
    }

    fn any_frame() -> impl proptest::strategy::Strategy<Value = AnyFrame> {
        use proptest::prelude::*;
        let path_block =
            prop_oneof![Just("/echo"), Just("/stream"), Just("/nope")].prop_map(|path| {
                // `:path` as a literal without indexing: no decoder state needed.
                let mut block = vec![0, 5];
                block.extend_from_slice(b":path");
                block.push(u8::try_from(path.len()).unwrap_or(0));
                block.extend_from_slice(path.as_bytes());
                block
            });
        let message = proptest::collection::vec(any::<u8>(), 0..16).prop_map(|m| framed(&m));
        let random = proptest::collection::vec(any::<u8>(), 0..48);
        let client_stream = (0u32..5).prop_map(|n| 2 * n + 1);
        // Requests as a client makes them, parts of them, and anything at all.
        let headers = (
            Just(kind::HEADERS),
            prop_oneof![
                Just(flag::END_HEADERS),
                Just(flag::END_HEADERS | flag::END_STREAM),
                Just(0)
            ],
            client_stream.clone(),
            prop_oneof![3 => path_block, 1 => random.clone()],
        );
        let data = (
            Just(kind::DATA),
            prop_oneof![
                Just(flag::END_STREAM),
                Just(0),
                Just(flag::PADDED | flag::END_STREAM)
            ],
            client_stream,
            prop_oneof![3 => message, 1 => random.clone()],
        );
        let anything = (0u8..11, any::<u8>(), 0u32..8, random);
        prop_oneof![2 => headers, 2 => data, 1 => anything].prop_map(
            |(kind, flags, stream, payload)| AnyFrame {
                kind,
                flags,
                stream,
                payload,
            },
        )
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(500))]

        /// Whatever frames a client sends, the connection answers or ends with GOAWAY and
        /// never unwinds; once the client hangs up it returns.
        #[test]
        fn any_sequence_of_frames_ends_cleanly(frames in proptest::collection::vec(any_frame(), 1..16)) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let (mut client, server_io) = tokio::io::duplex(1 << 16);
                let router = Arc::new(TestRouter {
                    slow_dropped: Arc::default(),
                    release: Arc::default(),
                });
                // A budget below two largest messages, so that generated conversations also
                // run into it (and its accounting's debug assertion watches every release).
                let limits = Limits { max_message: 64, max_response: 64, max_buffered: 96 };
                let server = tokio::spawn(serve_connection(
                    server_io,
                    router,
                    limits,
                    Box::pin(std::future::pending()),
                ));
                let mut bytes = frames::PREFACE.to_vec();
                frames::put_settings(&mut bytes, &[]);
                for f in &frames {
                    frames::put_header(&mut bytes, f.payload.len(), f.kind, f.flags, f.stream);
                    bytes.extend_from_slice(&f.payload);
                }
                // The server may close first (GOAWAY); a failed write is then fine.
                let _ = client.write_all(&bytes).await;
                let _ = client.shutdown().await;
                let mut sink = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut sink)).await;
                drop(client);
                let ended = tokio::time::timeout(Duration::from_secs(5), server)
                    .await
                    .expect("the connection ends once the client has gone");
                assert!(ended.is_ok(), "the connection task unwound: {ended:?}");
            });
        }
    }
}
