//! Static files as tower services, on spargio-rt's io_uring files:
//! [`ServeDir`] serves a directory tree, [`ServeFile`] one file. Both
//! answer with a [`FileBody`] that streams the file in chunks with
//! `read_at`, on whichever shard polls it.
//!
//! ```no_run
//! use spargio_http::fs::{ServeDir, ServeFile};
//!
//! // `/` serves `public/index.html`, `/docs` redirects to `/docs/`, ...
//! let site = ServeDir::new("public");
//! // ... and one fixed file, e.g. as an SPA fallback or a favicon.
//! let favicon = ServeFile::new("public/favicon.ico");
//! # let _ = (site, favicon);
//! ```
//!
//! # Responses
//!
//! Every `200` and `206` has `Content-Type` (guessed from the extension,
//! `; charset=utf-8` for text), `Content-Length` (set explicitly, so a
//! `HEAD` response reports the real length though its body is empty),
//! `Accept-Ranges: bytes`, `ETag` and `Last-Modified`. The `ETag` is
//! `"<size>-<mtime ns>"` in hex (no inode, so replicas agree), with the
//! content coding after it for a precompressed sibling
//! (`"<size>-<mtime ns>-gzip"`: compressors copy the original's mtime, and
//! two codings' files of one size must not share a tag), sent once
//! the mtime is a second old and left out before that (a second write of
//! the same size within the same clock tick could leave it unchanged, and
//! a client holding it would get stale `304`s); `Last-Modified` is the
//! mtime, left out likewise (and if the filesystem has none). While they
//! are left out, `If-None-Match` (but `*`) and `If-Modified-Since` never
//! answer `304`.
//!
//! | Situation | Status |
//! |---|---|
//! | method other than `GET` / `HEAD` | `405`, `Allow: GET, HEAD` |
//! | path with `.`, `..`, `%2f`, `\`/`%5c` or NUL segments | `404` |
//! | missing file, not a regular file (a FIFO or device is not even opened), symlink escaping the root | `404` |
//! | the OS denies access (`EACCES` / `EPERM`) | `403` |
//! | directory without trailing slash (index or listing on) | `308`, `Location: ./name/` |
//! | directory with no `index.html` to serve | `404`, or with [`ServeDir::list_directories`] a `200` HTML page linking its entries |
//! | `If-Match` / `If-Unmodified-Since` fails (the latter, for a file modified within the current second, whenever its date is not after now) | `412` |
//! | `If-None-Match` matches (weak comparison, `*` too; only `*` for a file modified within the current second), or, without it, `If-Modified-Since` is not older than a strong `Last-Modified` | `304` with `ETag` / `Last-Modified`, no body |
//! | `GET` with one satisfiable `Range` (`a-b`, `a-`, `-n`), `If-Range` absent or matching | `206`, `Content-Range: bytes a-b/size` |
//! | one `Range` wholly past the end (or `-0`), `If-Range` absent or matching, whatever the other preconditions say (RFC 9110 §13.2.1) | `416`, `Content-Range: bytes */size` |
//! | malformed `Range`, another unit, several ranges, a range on an empty file, `If-Range` not matching (strong `ETag`, or the exact date when that date is strong: the file was not modified within the current second), or `HEAD` | `200` with the whole file |
//! | any other I/O error | `500` |
//!
//! Multiple ranges are answered with the whole file rather than a
//! `multipart/byteranges` body (RFC 9110 lets a server ignore `Range`).
//! Error responses have an empty body with `Content-Length: 0`.

mod body;
mod conditional;
mod confine;
mod encoding;
mod listing;
mod mime;
mod open;
mod path;
mod range;
mod respond;
mod root;
mod serve_dir;
mod serve_file;

#[cfg(test)]
mod fallback_tests;
#[cfg(test)]
mod listing_tests;
#[cfg(test)]
mod safety_tests;
#[cfg(test)]
mod tests;

pub use body::{FileBody, DEFAULT_CHUNK_SIZE};
pub use respond::ResponseFuture;
pub use serve_dir::{DefaultFallback, ServeDir};
pub use serve_file::ServeFile;
