//! [`input_waiting`]: whether a peer has sent bytes nothing has read yet,
//! asked without reading them — what a server checks before it closes a
//! connection, since closing over unread input sends a reset.

use std::io;
use std::mem::MaybeUninit;

use std::os::fd::AsRawFd;

/// Whether input is waiting in `stream`'s receive queue (any connected
/// stream socket: TCP, Unix, a split half of one): a non-blocking
/// `MSG_PEEK` of one byte, which takes nothing. The end of the stream
/// with nothing before it is not input; an error other than "nothing
/// there" counts as input (so does any fd that is not a socket), so a
/// caller deciding how long to linger takes the cautious way.
///
/// ```no_run
/// # async fn demo(stream: spargio_rt::net::SocketStream) {
/// if spargio_service::input_waiting(&stream) {
///     // Drain before closing, or the close resets the connection.
/// }
/// # }
/// ```
pub fn input_waiting(stream: &impl AsRawFd) -> bool {
    let mut byte = MaybeUninit::<u8>::uninit();
    // SAFETY: the kernel writes at most one byte, into `byte`, a live
    // local of that size; whatever the fd is (closed, not a socket), the
    // call touches no other memory and fails with an error. MSG_PEEK takes
    // nothing off the socket, MSG_DONTWAIT keeps the call from blocking.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            byte.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n >= 0 {
        return n > 0;
    }
    io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock
}
