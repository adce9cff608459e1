"""The `websockets` library's server, for spargio-http's WebSocket client.

Run by tests/websocket_client.rs as `python3 ws_server.py`: listens on
127.0.0.1 with a port of its own choosing, prints that port on its first
line, and serves until its stdin closes.

Each connection: the handshake chooses a subprotocol from
["superchat", "chat"] (the first of them the client offers) and declines
extensions; the server greets with the text "welcome <subprotocol>" at
once, then echoes every text and binary message, except the text
"close please", which it answers by closing with 4000 "bye". A handshake
with an `x-refuse` header is answered 403 with the body "refused".
"""

import http
import sys
import threading

from websockets.sync.server import serve


def refuse(connection, request):
    if "x-refuse" in request.headers:
        return connection.respond(http.HTTPStatus.FORBIDDEN, "refused\n")
    return None


def handler(ws):
    ws.send("welcome %s" % ws.subprotocol)
    for message in ws:
        if message == "close please":
            ws.close(4000, "bye")
            return
        ws.send(message)


with serve(
    handler,
    "127.0.0.1",
    0,
    subprotocols=["superchat", "chat"],
    process_request=refuse,
    max_size=4 << 20,
    compression=None,
) as server:
    port = server.socket.getsockname()[1]
    print(port, flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()
