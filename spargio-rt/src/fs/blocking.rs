//! Running the filesystem calls that have no io_uring opcode on the
//! runtime's blocking pool, and the path conversion every op shares.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::RuntimeHandle;

/// The error for a call made outside any runtime (the same condition the
/// native ops report).
pub(crate) fn no_runtime() -> io::Error {
    io::Error::other(
        "spargio: I/O must run on a spargio runtime: await it inside a task, \
         or inside Runtime::block_on",
    )
}

/// Runs `f` on the current runtime's blocking pool and awaits its result.
/// Fails (without running `f`) outside a runtime, and with an error if the
/// pool dropped the job (runtime shutdown) or `f` panicked.
pub(crate) async fn asyncify<F, T>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let handle = RuntimeHandle::try_current().ok_or_else(no_runtime)?;
    handle.spawn_blocking(f).await?
}

/// A path as the NUL-terminated string the kernel wants. An interior NUL
/// is an `InvalidInput` error.
pub(crate) fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "path contains an interior NUL byte",
        )
    })
}
