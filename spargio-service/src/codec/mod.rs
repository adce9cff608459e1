//! A length-delimited request/response protocol (filled in by the codec work).
