//! An `io::Error` that explains a kernel error in words and keeps the
//! kernel's error (with its `raw_os_error`) as its source.

use std::io;

/// `os` explained by `message`, of `os`'s kind; `os` is the
/// [`source`](std::error::Error::source), so a caller can still match on
/// the errno.
pub(crate) fn explained(message: String, os: io::Error) -> io::Error {
    io::Error::new(os.kind(), Explained { message, os })
}

#[derive(Debug)]
struct Explained {
    message: String,
    os: io::Error,
}

impl std::fmt::Display for Explained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Explained {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.os)
    }
}
