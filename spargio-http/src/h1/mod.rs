//! A sans-IO HTTP/1.1 codec: parses and encodes byte buffers, no sockets and
//! no async.
//!
//! * Server side: [`parse_request`] reads a request head and decides its
//!   [`BodyLength`]; [`ChunkedDecoder`] decodes chunked bodies;
//!   [`response_framing`] and [`encode_response_head`], [`encode_chunk`],
//!   [`encode_last_chunk`] write the response; [`CONTINUE`] answers
//!   `Expect: 100-continue`; [`http_date`] gives the cached `Date`.
//! * Client side: [`encode_request_head`] writes a request head and
//!   [`parse_response`] reads the response head.
//!
//! Parsing is strict where leniency enables request smuggling or response
//! splitting (conflicting Content-Length, Transfer-Encoding rules, obs-fold,
//! bare LF in chunked framing, CR/LF in values) and bounded by [`Limits`].
//! Heads are parsed with `httparse` into stack slots; header values and the
//! target share one copy of the head, without per-field allocation.

mod chunked;
mod date;
mod encode;
mod error;
mod fields;
mod head;
mod head_scan;
mod limits;
mod request;
mod response_head;

#[cfg(test)]
mod tests;

pub use chunked::{ChunkedDecoder, ChunkedItem, MAX_CHUNK_SIZE_DIGITS};
pub use date::http_date;
pub(crate) use encode::encode_chunk_size;
pub use encode::{
    encode_chunk, encode_last_chunk, encode_request_head, encode_response_head, response_framing,
    ResponseFraming, CONTINUE,
};
pub use error::{ChunkedError, EncodeError, RequestError, ResponseError};
pub use fields::{connection_has_token, parse_content_length};
pub(crate) use head_scan::HeadScan;
pub use limits::Limits;
pub(crate) use request::parse_request_buf_into;
pub use request::{parse_request, parse_request_buf, BodyLength, RequestHead};
pub use response_head::{parse_response, ResponseBodyLength, ResponseHead};
