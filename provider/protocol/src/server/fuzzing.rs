//! An entry point for fuzzing the gRPC server's HTTP/2 (`http2`, `frames`): the part of the
//! provider that parses what arrives on its socket before anything else does.
//!
//! [`connection`] serves one connection over an in-memory pipe, with small limits and a router
//! whose methods echo, stream or never answer, and writes the client preface, empty settings
//! and then `data` as the client. Whatever `data` holds, the connection must answer or end
//! with GOAWAY, and return once the client has hung up; an unwinding connection task is
//! re-raised, so the fuzzer sees it. The libFuzzer target is `fuzz/fuzz_targets/http2_connection.rs`
//! (`make fuzz`); [`seeds`] start its corpus, and the tests below replay them in CI.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::frames::{self, flag, kind, setting};
use super::http2::{serve_connection, Call, Limits, Router};

/// Echoes `/echo`, streams two messages on `/stream` (a client-streaming call, started on its
/// headers), and never answers `/hang` (so that resets and GOAWAY meet a call in flight).
pub(crate) struct FuzzRouter;

/// `message` with gRPC's prefix (not compressed, its length).
pub(crate) fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(message);
    out
}

impl Router for FuzzRouter {
    fn starts_on_headers(&self, path: &[u8]) -> bool {
        path == b"/stream"
    }

    fn call(&self, path: &[u8], request: Bytes) -> Option<Call> {
        match path {
            b"/echo" => {
                let answer = framed(&request);
                Some(Call::Unary(Box::pin(async move { Ok(answer) })))
            }
            b"/hang" => Some(Call::Unary(Box::pin(std::future::pending()))),
            b"/stream" => Some(Call::Streaming(Box::pin(futures_util::stream::iter([
                Ok(framed(b"one")),
                Ok(framed(b"two")),
            ])))),
            _ => None,
        }
    }
}

/// Serves one connection whose client sends the preface, empty settings and `data`, then hangs
/// up; returns what the server wrote, once the connection has ended. See the module docs.
pub fn connection(data: &[u8]) -> Vec<u8> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return Vec::new();
    };
    runtime.block_on(async {
        let (client, server_io) = tokio::io::duplex(1 << 16);
        let limits = Limits {
            max_message: 4096,
            max_response: 4096,
            max_buffered: 6144,
        };
        let never: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(std::future::pending());
        let server = tokio::spawn(serve_connection(
            server_io,
            Arc::new(FuzzRouter),
            limits,
            never,
        ));
        let mut bytes = frames::PREFACE.to_vec();
        frames::put_settings(&mut bytes, &[]);
        bytes.extend_from_slice(data);
        let (mut reader, mut writer) = tokio::io::split(client);
        // Written and read at once: the pipe holds 64 KiB each way, and the server stops
        // reading while its answers wait to be read.
        let write = async move {
            // The server may close first (GOAWAY); a failed write is then fine.
            let _ = writer.write_all(&bytes).await;
            // Hanging up ends the connection, calls and all, as it does when Terraform goes
            // away; let the server answer what it has first. On this one-thread runtime that
            // takes a few turns of the scheduler, not time.
            for _ in 0..64 {
                tokio::task::yield_now().await;
            }
            let _ = writer.shutdown().await;
            writer
        };
        let read = async move {
            let mut answer = Vec::new();
            let _ = reader.read_to_end(&mut answer).await;
            (reader, answer)
        };
        let (writer, (reader, answer)) = tokio::join!(write, read);
        drop(reader.unsplit(writer));
        if let Err(e) = server.await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        answer
    })
}

/// The starting corpus (what comes after the preface and settings): whole calls on each
/// route, a ping, a window update, a reset of a call in flight, and settings.
pub fn seeds() -> Vec<Vec<u8>> {
    // A fresh encoder per block: each seed starts a connection, whose decoder knows nothing
    // of another seed's dynamic table.
    let headers = |stream: u32, path: &str, end_stream: bool| {
        let block = loona_hpack::Encoder::new().encode([
            (&b":method"[..], &b"POST"[..]),
            (b":scheme", b"http"),
            (b":path", path.as_bytes()),
            (b":authority", b"localhost"),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
        ]);
        let mut out = Vec::new();
        let flags = flag::END_HEADERS | if end_stream { flag::END_STREAM } else { 0 };
        frames::put_header(&mut out, block.len(), kind::HEADERS, flags, stream);
        out.extend_from_slice(&block);
        out
    };
    let mut echo = headers(1, "/echo", false);
    frames::put_data(&mut echo, 1, &framed(b"hello"), true);

    let mut split = headers(1, "/echo", false);
    frames::put_data(&mut split, 1, &framed(&[7; 100])[..50], false);
    frames::put_data(&mut split, 1, &framed(&[7; 100])[50..], true);

    let stream = headers(1, "/stream", true);

    let mut reset = headers(1, "/hang", false);
    frames::put_data(&mut reset, 1, &framed(b"x"), true);
    frames::put_rst_stream(&mut reset, 1, 0x8);

    let mut control = Vec::new();
    frames::put_header(&mut control, 8, kind::PING, 0, 0);
    control.extend_from_slice(b"pingpong");
    frames::put_window_update(&mut control, 0, 1 << 20);
    frames::put_settings(&mut control, &[(setting::INITIAL_WINDOW_SIZE, 10)]);
    control.extend(headers(1, "/echo", false));
    frames::put_data(&mut control, 1, &framed(&[1; 64]), true);
    frames::put_window_update(&mut control, 1, 1000);

    let unknown = headers(1, "/nope", true);
    vec![echo, split, stream, reset, control, unknown]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn seeds_and_their_truncations_end_cleanly() {
        for seed in seeds() {
            for end in 0..=seed.len() {
                connection(&seed[..end]);
            }
        }
    }

    #[test]
    fn the_seeds_reach_the_calls() {
        let seeds = seeds();
        assert!(contains(&connection(&seeds[0]), &framed(b"hello")));
        assert!(contains(&connection(&seeds[1]), &framed(&[7; 100])));
        let streamed = connection(&seeds[2]);
        assert!(contains(&streamed, &framed(b"one")) && contains(&streamed, &framed(b"two")));
        // A 10-byte window per stream holds the 69-byte answer back until the client's
        // WINDOW_UPDATE; the PING is answered.
        let controlled = connection(&seeds[4]);
        assert!(contains(&controlled, b"pingpong") && contains(&controlled, &framed(&[1; 64])));
        let held = &seeds[4][..seeds[4].len() - 13];
        assert!(!contains(&connection(held), &framed(&[1; 64])));
        // grpc-status 12 (UNIMPLEMENTED) as a literal header value.
        assert!(contains(&connection(&seeds[5]), b"12"));
    }
}
