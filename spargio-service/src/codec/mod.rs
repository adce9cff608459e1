//! A length-delimited request/response protocol: each request frame gets
//! exactly one response frame, in order. For RPC-style services with their
//! own message encoding, and for testing and benchmarking services before
//! reaching for HTTP.
//!
//! # Wire format
//!
//! All integers are big-endian.
//!
//! ```text
//! request:   +----------------+-------------------+
//!            | len: u32       | payload: len bytes |
//!            +----------------+-------------------+
//!
//! response:  +----------------+------------+-----------------------+
//!            | len: u32       | status: u8 | payload: len - 1 bytes |
//!            +----------------+------------+-----------------------+
//! ```
//!
//! A request's `len` counts its payload; a response's counts the status
//! byte and the payload. Payloads may be empty. [`Status`] 0 ("ok")
//! carries the service's response; any other status carries a UTF-8 error
//! message:
//!
//! | status | meaning |
//! |-------:|---------|
//! | 0 | ok: the payload is the response |
//! | 1 | the service returned an error |
//! | 2 | the handler panicked (or the protocol's `route_by` function did) |
//! | 3 | the request timed out (the server's request timeout, or a `Timeout` layer's) |
//! | 4 | the server is shutting down and cut the request, or did not process it (pipelined behind the last request it answered) |
//! | 5 | bad request: the frame was larger than the server accepts (default 8 MiB); the server then closes the connection |
//! | 6 | overloaded: a `LoadShed` layer refused the request; the service did no work for it, and it can be sent again later |
//!
//! Clients may pipeline: send several requests without waiting, then read
//! the responses, which come back in request order.
//!
//! Pipelining is bounded by the socket buffers. The server stops reading
//! while it writes a response the client has not taken (it reads ahead at
//! most one read buffer), and the [`Client`] cannot read while
//! [`feed`](Client::feed), [`send`](Client::send) or
//! [`flush`](Client::flush) write. A client that keeps writing requests
//! without reading, while their responses fill its receive buffer, ends
//! with both sides blocked in writes, until the server's send timeout
//! closes the connection. Keep the requests in flight, and their
//! responses, within what the socket buffers hold (a few hundred KiB;
//! less on a peer with small buffers), or read responses as you go: send
//! a window of requests, [`recv`](Client::recv) its responses, then send
//! the next.
//!
//! # Timeouts
//!
//! The wait for the next request is bounded only by the server's
//! [`idle_timeout`](crate::ServerBuilder::idle_timeout), which is off by
//! default: a peer that sends part of a frame (3 bytes of a header, say)
//! and stops then holds its connection until it closes it, and through a
//! graceful shutdown (which waits for a request begun) until the
//! [`shutdown_timeout`](crate::ServerBuilder::shutdown_timeout) cuts it.
//! Once a request is here, the wait for the service's readiness
//! ([`Handler::ready`](crate::Handler::ready), the service's `poll_ready`)
//! is bounded by neither the
//! [`request_timeout`](crate::ServerBuilder::request_timeout), which
//! bounds the call, nor a graceful shutdown's start: a service that can
//! stay unready long should refuse instead of waiting (a
//! [`LoadShed`](crate::layers::LoadShed) layer does). A readiness that
//! fails ends the connection: the request and every whole one pipelined
//! behind it (buffered, or waiting in the socket: read without waiting
//! for more, up to 256 KiB) are answered with that error (none reached
//! the service), then the connection closes.
//!
//! # Pieces
//!
//! - [`LengthDelimited`]: the server side, a [`Protocol`](crate::Protocol)
//!   over `Bytes` requests and responses.
//! - [`Client`]: a client on spargio-rt.
//! - The sans-IO core, usable from any runtime (a tokio benchmark client,
//!   a blocking test): [`FrameDecoder`] cuts frames out of a read buffer;
//!   [`encode_request`] and [`encode_response`] (and their `_header`
//!   variants, for writing large payloads without a copy) write them.
//!
//! # Example
//!
//! Encoding and decoding need no I/O:
//!
//! ```
//! use bytes::BytesMut;
//! use spargio_service::codec::{encode_request, encode_response, FrameDecoder, Status};
//!
//! // What a client writes ...
//! let mut wire = BytesMut::new();
//! encode_request(b"ping", &mut wire);
//! assert_eq!(&wire[..], b"\0\0\0\x04ping");
//!
//! // ... the server reads back ...
//! let decoder = FrameDecoder::new();
//! let request = decoder.decode(&mut wire).unwrap().unwrap();
//! assert_eq!(&request[..], b"ping");
//!
//! // ... and answers.
//! encode_response(Status::Ok, b"pong", &mut wire);
//! let (status, payload) = decoder.decode_response(&mut wire).unwrap().unwrap();
//! assert_eq!((status, &payload[..]), (Status::Ok, &b"pong"[..]));
//! ```
//!
//! Talking to a server with the [`Client`]:
//!
//! ```no_run
//! use bytes::Bytes;
//! use spargio_service::codec::Client;
//!
//! spargio_rt::run(|_| async {
//!     let mut client = Client::connect("127.0.0.1:7000").await?;
//!     let reply = client.call(Bytes::from_static(b"ping")).await?;
//!     println!("{reply:?}");
//!     Ok::<_, std::io::Error>(())
//! })
//! .unwrap()
//! .unwrap();
//! ```

mod client;
mod frame;
mod protocol;
mod read_buffer;
mod status;
mod write;

#[cfg(test)]
mod tests;

pub use client::{Client, Reply};
pub use frame::{
    encode_request, encode_request_header, encode_response, encode_response_header, split_response,
    FrameDecoder, FrameError, DEFAULT_MAX_FRAME_LEN, HEADER_LEN, MAX_REQUEST_PAYLOAD,
    MAX_RESPONSE_PAYLOAD,
};
pub use protocol::LengthDelimited;
pub use status::Status;
