//! A `101 Switching Protocols` answer (or a 2xx to `CONNECT`: a tunnel) on
//! the client: the connection, with
//! whatever the server sent right after the head, goes to the response's
//! [`OnUpgrade`](crate::upgrade::OnUpgrade).

use super::connect::{Conn, ConnReader, ConnWriter};
use crate::tls::ClientTlsStream;
use crate::transport::{RawIo, Transport};
use crate::upgrade::{Pending, Upgraded};
use spargio_rt::net::SocketStream;

/// Hands `conn` over to whoever holds the response's `OnUpgrade` (if
/// nobody does any more, the connection is closed). A connection that
/// fails on the way is dropped, and the waiting side gets its error as
/// [`UpgradeError::HandOver`](crate::upgrade::UpgradeError::HandOver).
pub(crate) async fn switch(conn: Conn, pending: Pending) {
    if !pending.is_wanted() {
        return;
    }
    let Conn {
        mut input,
        mut output,
        probe: _,
    } = conn;
    // Nothing of the request is left to write (the switch waits for it),
    // but a write may still be buffered; and a read kept armed would take
    // the next bytes from under the new owner.
    let handed = match output.flush().await {
        Ok(()) => input.release().await,
        Err(e) => Err(e),
    };
    if let Err(e) = handed {
        return pending.fail(e);
    }
    let (reader, read_ahead) = input.into_parts();
    let io = rejoin(reader, output.into_writer());
    pending.fulfill(Upgraded::new(read_ahead.freeze(), io));
}

/// The connection's halves as one stream again.
fn rejoin(reader: ConnReader, writer: ConnWriter) -> Box<dyn RawIo> {
    match (reader, writer) {
        (ConnReader::Tcp(r), ConnWriter::Tcp(w)) => SocketStream::rejoin(r, w),
        (ConnReader::Tls(r), ConnWriter::Tls(w)) => ClientTlsStream::rejoin(r, w),
        // `Conn::new` makes both halves from one stream.
        _ => unreachable!("a connection's halves are of one kind"),
    }
}
