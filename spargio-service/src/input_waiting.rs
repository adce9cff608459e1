//! [`input_waiting`]: whether a peer has sent bytes nothing has read yet,
//! asked without reading them — what a server checks before it closes a
//! connection, since closing over unread input sends a reset.

use std::io;
use std::mem::MaybeUninit;

use spargio_rt::net::TcpStream;

/// Whether input is waiting in `stream`'s receive queue: a non-blocking
/// `MSG_PEEK` of one byte, which takes nothing. The end of the stream
/// with nothing before it is not input; an error other than "nothing
/// there" counts as input, so a caller deciding how long to linger takes
/// the cautious way.
///
/// ```no_run
/// # async fn demo(stream: spargio_rt::net::TcpStream) {
/// if spargio_service::input_waiting(&stream) {
///     // Drain before closing, or the close resets the connection.
/// }
/// # }
/// ```
pub fn input_waiting(stream: &TcpStream) -> bool {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    let peeked =
        stream.with_socket(|s| s.recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT));
    match peeked {
        Ok(n) => n > 0,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    }
}
