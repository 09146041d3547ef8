//! HTTP/2 frames (RFC 9113, section 4 and 6) and the few header blocks a gRPC server sends
//! (RFC 7541), written straight into the connection's output buffer.
//!
//! Responses never use HPACK's dynamic table or Huffman coding: a gRPC response carries two
//! header fields and its trailers two more, so a literal costs a handful of bytes and no state.
//! The client's header blocks are decoded by `loona_hpack`, which keeps the dynamic table they
//! need.

/// The client's connection preface (RFC 9113, section 3.4).
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Length of a frame header.
pub(crate) const HEADER_LEN: usize = 9;

/// The largest frame payload a peer may send before settings say otherwise, and the largest we
/// accept (we do not raise it).
pub(crate) const DEFAULT_MAX_FRAME: usize = 16_384;

/// The flow-control window every stream and the connection start with.
pub(crate) const DEFAULT_WINDOW: i64 = 65_535;

/// The largest flow-control window HTTP/2 allows.
pub(crate) const MAX_WINDOW: i64 = (1 << 31) - 1;

/// Frame types we act on.
pub(crate) mod kind {
    pub(crate) const DATA: u8 = 0x0;
    pub(crate) const HEADERS: u8 = 0x1;
    pub(crate) const PRIORITY: u8 = 0x2;
    pub(crate) const RST_STREAM: u8 = 0x3;
    pub(crate) const SETTINGS: u8 = 0x4;
    pub(crate) const PUSH_PROMISE: u8 = 0x5;
    pub(crate) const PING: u8 = 0x6;
    pub(crate) const GOAWAY: u8 = 0x7;
    pub(crate) const WINDOW_UPDATE: u8 = 0x8;
    pub(crate) const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub(crate) mod flag {
    pub(crate) const END_STREAM: u8 = 0x1;
    pub(crate) const ACK: u8 = 0x1;
    pub(crate) const END_HEADERS: u8 = 0x4;
    pub(crate) const PADDED: u8 = 0x8;
    pub(crate) const PRIORITY: u8 = 0x20;
}

/// Settings identifiers (RFC 9113, section 6.5.2).
pub(crate) mod setting {
    pub(crate) const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub(crate) const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub(crate) const MAX_FRAME_SIZE: u16 = 0x5;
}

/// Error codes (RFC 9113, section 7).
pub(crate) mod code {
    pub(crate) const NO_ERROR: u32 = 0x0;
    pub(crate) const PROTOCOL_ERROR: u32 = 0x1;
    pub(crate) const FLOW_CONTROL_ERROR: u32 = 0x3;
    pub(crate) const STREAM_CLOSED: u32 = 0x5;
    pub(crate) const FRAME_SIZE_ERROR: u32 = 0x6;
    pub(crate) const REFUSED_STREAM: u32 = 0x7;
    pub(crate) const COMPRESSION_ERROR: u32 = 0x9;
}

/// A frame's header, read off the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    pub(crate) len: usize,
    pub(crate) kind: u8,
    pub(crate) flags: u8,
    pub(crate) stream: u32,
}

impl FrameHeader {
    /// Reads the header at the start of `bytes`, which holds at least [`HEADER_LEN`] bytes.
    pub(crate) fn parse(bytes: &[u8; HEADER_LEN]) -> FrameHeader {
        FrameHeader {
            len: (usize::from(bytes[0]) << 16)
                | (usize::from(bytes[1]) << 8)
                | usize::from(bytes[2]),
            kind: bytes[3],
            flags: bytes[4],
            // The reserved bit is ignored on receipt.
            stream: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff,
        }
    }
}

/// Appends a frame header for a payload of `len` bytes.
pub(crate) fn put_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    let len = u32::try_from(len).unwrap_or(u32::MAX).min(0x00ff_ffff);
    let [_, a, b, c] = len.to_be_bytes();
    out.extend_from_slice(&[a, b, c, kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
}

/// Appends a SETTINGS frame with `pairs`.
pub(crate) fn put_settings(out: &mut Vec<u8>, pairs: &[(u16, u32)]) {
    put_header(out, pairs.len() * 6, kind::SETTINGS, 0, 0);
    for (id, value) in pairs {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// Appends the acknowledgement of the peer's SETTINGS.
pub(crate) fn put_settings_ack(out: &mut Vec<u8>) {
    put_header(out, 0, kind::SETTINGS, flag::ACK, 0);
}

/// Appends the answer to a PING carrying `payload`.
pub(crate) fn put_ping_ack(out: &mut Vec<u8>, payload: &[u8; 8]) {
    put_header(out, 8, kind::PING, flag::ACK, 0);
    out.extend_from_slice(payload);
}

/// Appends a WINDOW_UPDATE of `increment` (1 to 2^31 - 1) for `stream` (0: the connection).
pub(crate) fn put_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    put_header(out, 4, kind::WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&(increment & 0x7fff_ffff).to_be_bytes());
}

/// Appends a RST_STREAM with `error`.
pub(crate) fn put_rst_stream(out: &mut Vec<u8>, stream: u32, error: u32) {
    put_header(out, 4, kind::RST_STREAM, 0, stream);
    out.extend_from_slice(&error.to_be_bytes());
}

/// Appends a GOAWAY naming the last stream we will process.
pub(crate) fn put_goaway(out: &mut Vec<u8>, last_stream: u32, error: u32) {
    put_header(out, 8, kind::GOAWAY, 0, 0);
    out.extend_from_slice(&(last_stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(&error.to_be_bytes());
}

/// Appends a DATA frame.
pub(crate) fn put_data(out: &mut Vec<u8>, stream: u32, payload: &[u8], end_stream: bool) {
    let flags = if end_stream { flag::END_STREAM } else { 0 };
    put_header(out, payload.len(), kind::DATA, flags, stream);
    out.extend_from_slice(payload);
}

/// Appends a HEADERS frame whose block is `block`, split into CONTINUATION frames if it is
/// longer than the peer's largest frame.
pub(crate) fn put_headers(
    out: &mut Vec<u8>,
    stream: u32,
    block: &[u8],
    end_stream: bool,
    max_frame: usize,
) {
    let max_frame = max_frame.max(1);
    let mut chunks = block.chunks(max_frame).peekable();
    let mut kind = kind::HEADERS;
    let mut flags = if end_stream { flag::END_STREAM } else { 0 };
    loop {
        let chunk = chunks.next().unwrap_or(&[]);
        let last = chunks.peek().is_none();
        if last {
            flags |= flag::END_HEADERS;
        }
        put_header(out, chunk.len(), kind, flags, stream);
        out.extend_from_slice(chunk);
        if last {
            return;
        }
        kind = kind::CONTINUATION;
        flags = 0;
    }
}

/// An HPACK integer with an `prefix_bits`-bit prefix whose other bits are `first` (RFC 7541,
/// section 5.1).
pub(crate) fn put_hpack_int(out: &mut Vec<u8>, first: u8, prefix_bits: u32, value: usize) {
    let max_prefix = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        // `value` fits the prefix, so it is below 255.
        out.push(first | value as u8);
        return;
    }
    out.push(first | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// A string literal without Huffman coding (RFC 7541, section 5.2).
fn put_hpack_str(out: &mut Vec<u8>, value: &[u8]) {
    put_hpack_int(out, 0, 7, value.len());
    out.extend_from_slice(value);
}

/// A header field as a literal without indexing, with a new name (RFC 7541, section 6.2.2).
fn put_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0);
    put_hpack_str(out, name);
    put_hpack_str(out, value);
}

/// `:status: 200` (static table entry 8) and `content-type: application/grpc` (a literal
/// without indexing whose name is static table entry 31).
pub(crate) const RESPONSE_HEADERS: &[u8] = &[
    0x88, 0x0f, 0x10, 0x10, b'a', b'p', b'p', b'l', b'i', b'c', b'a', b't', b'i', b'o', b'n', b'/',
    b'g', b'r', b'p', b'c',
];

/// Appends the trailer fields of a call that ended with gRPC status `code` and `message`.
pub(crate) fn put_status(block: &mut Vec<u8>, code: i32, message: &str) {
    put_literal(block, b"grpc-status", code.to_string().as_bytes());
    if !message.is_empty() {
        put_literal(block, b"grpc-message", percent_encode(message).as_bytes());
    }
}

/// gRPC's percent-encoding of `grpc-message`: printable ASCII other than `%` stays as it is.
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn decode(block: &[u8]) -> Vec<(String, String)> {
        let mut decoder = loona_hpack::Decoder::new();
        decoder
            .decode(block)
            .unwrap()
            .into_iter()
            .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }

    #[test]
    fn response_headers_and_status_decode_as_a_grpc_client_reads_them() {
        assert_eq!(
            decode(RESPONSE_HEADERS),
            [
                (":status".to_owned(), "200".to_owned()),
                ("content-type".to_owned(), "application/grpc".to_owned())
            ]
        );
        let mut block = Vec::new();
        put_status(&mut block, 3, "bad value: 100% \"wrong\"\nnext é");
        assert_eq!(
            decode(&block),
            [
                ("grpc-status".to_owned(), "3".to_owned()),
                (
                    "grpc-message".to_owned(),
                    "bad value: 100%25 \"wrong\"%0Anext %C3%A9".to_owned()
                )
            ]
        );
    }

    #[test]
    fn hpack_integers_use_the_prefix_then_continuation_bytes() {
        // RFC 7541, C.1.1 to C.1.3.
        let mut out = Vec::new();
        put_hpack_int(&mut out, 0, 5, 10);
        assert_eq!(out, [0b0000_1010]);
        out.clear();
        put_hpack_int(&mut out, 0, 5, 1337);
        assert_eq!(out, [0b0001_1111, 0b1001_1010, 0b0000_1010]);
        out.clear();
        put_hpack_int(&mut out, 0, 8, 42);
        assert_eq!(out, [42]);
        out.clear();
        put_hpack_int(&mut out, 0, 7, 127);
        assert_eq!(out, [127, 0]);
    }

    #[test]
    fn frame_headers_round_trip_and_long_blocks_continue() {
        let mut out = Vec::new();
        put_header(&mut out, 70_000, kind::DATA, flag::END_STREAM, 0x8000_0003);
        let header = FrameHeader::parse(out[..HEADER_LEN].try_into().unwrap());
        assert_eq!(
            header,
            FrameHeader {
                len: 70_000,
                kind: kind::DATA,
                flags: flag::END_STREAM,
                stream: 3
            }
        );

        let block: Vec<u8> = (0..25u8).collect();
        let mut out = Vec::new();
        put_headers(&mut out, 5, &block, true, 10);
        let mut frames = Vec::new();
        let mut rest = &out[..];
        while !rest.is_empty() {
            let h = FrameHeader::parse(rest[..HEADER_LEN].try_into().unwrap());
            frames.push((
                h.kind,
                h.flags,
                rest[HEADER_LEN..HEADER_LEN + h.len].to_vec(),
            ));
            rest = &rest[HEADER_LEN + h.len..];
        }
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].0, kind::HEADERS);
        assert_eq!(frames[0].1, flag::END_STREAM);
        assert_eq!(frames[1].0, kind::CONTINUATION);
        assert_eq!(frames[1].1, 0);
        assert_eq!(frames[2].1, flag::END_HEADERS);
        let joined: Vec<u8> = frames.into_iter().flat_map(|f| f.2).collect();
        assert_eq!(joined, block);

        let mut out = Vec::new();
        put_headers(&mut out, 1, &[], false, 10);
        let h = FrameHeader::parse(out[..HEADER_LEN].try_into().unwrap());
        assert_eq!((h.len, h.flags), (0, flag::END_HEADERS));
    }
}
