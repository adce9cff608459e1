//! Size and count limits applied while parsing.

/// Bounds on what the parsers accept, so a peer cannot make us buffer or
/// allocate without limit.
///
/// The defaults are generous for ordinary traffic and small enough that a
/// connection's read buffer stays bounded.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Maximum number of header fields in a head; also the maximum number of
    /// trailer fields after a chunked body. Default 100.
    pub max_headers: usize,
    /// Maximum size in bytes of a head (start line plus header fields plus the
    /// empty line). Default 64 KiB.
    pub max_head_bytes: usize,
    /// Maximum length in bytes of a request target. Default 8 KiB.
    pub max_uri_len: usize,
    /// Maximum total bytes of chunk extensions (`;name=value`, with any
    /// whitespace between the chunk size and them) accepted over one
    /// chunked body. Default 4 KiB.
    pub max_chunk_ext_bytes: usize,
    /// Maximum size in bytes of the trailer section of a chunked body.
    /// Default 16 KiB.
    pub max_trailer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_headers: 100,
            max_head_bytes: 64 * 1024,
            max_uri_len: 8 * 1024,
            max_chunk_ext_bytes: 4 * 1024,
            max_trailer_bytes: 16 * 1024,
        }
    }
}
