"""The `websockets` library's client against a spargio-http WebSocket route.

Run by tests/websocket.rs as `python3 ws_client.py PORT [CA_FILE]` against
its echo app (with a CA file: over TLS, as wss://localhost): `/ws` echoes text and binary messages (and offers the subprotocols
superchat and chat), `/ws-small` does the same with a 1 KiB message limit.

Checks the handshake with a subprotocol and a permessage-deflate offer
the server declines, text and binary echoes (one of 1 MiB), a ping's pong,
a clean close with its code, and the 1009 close for a message over the
limit (4 MiB sent to the 1 KiB route). Exits non-zero with a message on the first mismatch.
"""

import ssl
import sys

from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect


def fail(msg):
    print("ws_client.py: " + msg, file=sys.stderr)
    sys.exit(1)


def expect(what, got, want):
    if got != want:
        fail("%s: got %r, want %r" % (what, got, want))


port = sys.argv[1]
if len(sys.argv) > 2:
    context = ssl.create_default_context(cafile=sys.argv[2])
    base = "wss://localhost:%s" % port
else:
    context = None
    base = "ws://127.0.0.1:%s" % port

with connect(
    base + "/ws",
    ssl=context,
    subprotocols=["chat", "superchat"],
    max_size=4 << 20,
    open_timeout=20,
    close_timeout=20,
) as ws:
    expect("subprotocol", ws.subprotocol, "superchat")
    expect("extensions", ws.protocol.extensions, [])
    ws.send("héllo")
    expect("text echo", ws.recv(timeout=20), "héllo")
    big = bytes(i % 251 for i in range(1 << 20))
    ws.send(big)
    expect("binary echo", ws.recv(timeout=20), big)
    # Two pings at once: both answered while the server only reads.
    first, second = ws.ping(b"beat1"), ws.ping(b"beat2")
    if not (first.wait(timeout=20) and second.wait(timeout=20)):
        fail("a ping got no pong within 20 s")
    ws.close(code=1000, reason="done")
    expect("close code sent back", ws.close_code, 1000)

with connect(base + "/ws-small", ssl=context, open_timeout=20) as ws:
    # Far more than one read: the server must close with 1009 and read
    # on until this side closes, not reset the connection over the unread
    # rest (which could lose the close frame).
    ws.send(b"x" * (4 << 20))
    try:
        ws.recv(timeout=20)
        fail("a message over the limit was echoed")
    except ConnectionClosedError as e:
        expect("close code for a message too big", e.rcvd.code, 1009)
