"""A strict HTTP/1.1 client built on h11, against a spargio-http server.

Run by tests/real_clients.rs as `python3 h11_client.py PORT` against the
test's `client_service` (see http_client.py). h11 validates every byte the
server sends against RFC 9112's framing rules and raises
`RemoteProtocolError` on anything malformed.

1. Pipelining: eight requests (GETs, a Content-Length POST, a chunked POST
   with trailers, a HEAD, a chunked response, a final `Connection: close`)
   are serialised by h11 and written to one socket at once; the responses
   are then read in order through one h11 connection and each is checked.
   The server must close after the last one.
2. `Expect: 100-continue`: h11 must see an informational 100 before it
   sends the body, then the final response.

Exits non-zero with a message on the first mismatch.
"""

import socket
import sys

try:
    import h11
except ImportError:
    print("h11_client.py: h11 is not installed: python3 -m pip install h11", file=sys.stderr)
    sys.exit(2)


def fail(msg):
    print("h11_client.py: " + msg, file=sys.stderr)
    sys.exit(1)


def expect(what, got, want):
    if got != want:
        fail("%s: got %r, want %r" % (what, got, want))


def request_bytes(events):
    """Serialises one request with a fresh h11 client connection (h11 does
    not let one connection send a second request before the first
    response, so pipelined bytes are produced one request at a time)."""
    c = h11.Connection(our_role=h11.CLIENT)
    return b"".join(c.send(e) or b"" for e in events)


class Reader:
    """Reads responses off `sock` with one h11 client connection, in the
    order the requests were pipelined."""

    def __init__(self, sock):
        self.sock = sock
        self.conn = h11.Connection(our_role=h11.CLIENT)

    def next_event(self):
        while True:
            ev = self.conn.next_event()
            if ev is not h11.NEED_DATA:
                return ev
            data = self.sock.recv(65536)
            self.conn.receive_data(data)

    def response(self, events):
        """Tells the h11 state machine which request this response answers
        (its bytes were already sent), then reads the whole response:
        (Response, body, trailers, informational responses)."""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        for e in events:
            self.conn.send(e)
        infos = []
        while True:
            ev = self.next_event()
            if isinstance(ev, h11.InformationalResponse):
                infos.append(ev)
                continue
            if not isinstance(ev, h11.Response):
                fail("expected a response, got %r" % (ev,))
            head = ev
            break
        body = b""
        while True:
            ev = self.next_event()
            if isinstance(ev, h11.Data):
                body += ev.data
            elif isinstance(ev, h11.EndOfMessage):
                return head, body, list(ev.headers), infos
            else:
                fail("unexpected event in a body: %r" % (ev,))


def header(resp, name):
    name = name.lower().encode()
    for n, v in resp.headers:
        if n == name:
            return v.decode()
    return None


def get(path, extra=()):
    return [
        h11.Request(method="GET", target=path, headers=[("Host", "test")] + list(extra)),
        h11.EndOfMessage(),
    ]


def pipelined(port):
    chunked_upload = [
        h11.Request(
            method="POST",
            target="/upload",
            headers=[("Host", "test"), ("Transfer-Encoding", "chunked")],
        ),
        h11.Data(data=b"first "),
        h11.Data(data=b"second "),
        h11.Data(data=b"third"),
        h11.EndOfMessage(headers=[("X-Checksum", "abc123"), ("X-Parts", "3")]),
    ]
    requests = [
        get("/one"),
        [
            h11.Request(
                method="POST",
                target="/form",
                headers=[("Host", "test"), ("Content-Length", "11")],
            ),
            h11.Data(data=b"hello world"),
            h11.EndOfMessage(),
        ],
        chunked_upload,
        [h11.Request(method="HEAD", target="/head", headers=[("Host", "test")]), h11.EndOfMessage()],
        get("/chunked"),
        get("/two?a=b"),
        get("/chunked"),
        get("/bye", [("Connection", "close")]),
    ]
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"".join(request_bytes(r) for r in requests))

    r = Reader(sock)
    chunks = b"".join(b"chunk-%d\n" % i for i in range(10))
    expected = [
        b"GET /one len=0 body=",
        b"POST /form len=11 body=hello world",
        b"POST /upload len=18 trailers=2 body=first second third",
        b"",
        chunks,
        b"GET /two?a=b len=0 body=",
        chunks,
        b"GET /bye len=0 body=",
    ]
    for i, (req, want) in enumerate(zip(requests, expected)):
        head, body, trailers, infos = r.response(req)
        expect("response %d status" % i, head.status_code, 200)
        expect("response %d version" % i, head.http_version, b"1.1")
        expect("response %d body" % i, body, want)
        if infos:
            fail("response %d: unexpected informational responses %r" % (i, infos))
        if header(head, "date") is None:
            fail("response %d has no Date" % i)
        if req[0].target == b"/chunked":
            expect("chunked framing", header(head, "transfer-encoding"), "chunked")
            expect("trailers", trailers, [(b"x-count", b"10")])
        if req[0].method == b"HEAD":
            expect("HEAD Content-Length", header(head, "content-length"),
                   str(len(b"HEAD /head len=0 body=")))
    if r.conn.their_state is not h11.MUST_CLOSE:
        fail("the server did not announce the close: state %r" % (r.conn.their_state,))
    # The server closes its side: h11 sees a clean end of stream.
    while True:
        data = sock.recv(65536)
        r.conn.receive_data(data)
        ev = r.conn.next_event()
        if isinstance(ev, h11.ConnectionClosed):
            break
        if ev is not h11.NEED_DATA:
            fail("data after the last response: %r" % (ev,))
        if not data:
            fail("EOF not reported as ConnectionClosed")
    sock.close()


def expect_continue(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    r = Reader(sock)
    body = b"x" * 4000
    req = h11.Request(
        method="POST",
        target="/continue",
        headers=[("Host", "test"), ("Content-Length", str(len(body))), ("Expect", "100-continue")],
    )
    sock.sendall(r.conn.send(req))
    ev = r.next_event()
    if not isinstance(ev, h11.InformationalResponse) or ev.status_code != 100:
        fail("expected 100 Continue before sending the body, got %r" % (ev,))
    sock.sendall(r.conn.send(h11.Data(data=body)) + r.conn.send(h11.EndOfMessage()))
    ev = r.next_event()
    if not isinstance(ev, h11.Response):
        fail("expected the final response, got %r" % (ev,))
    expect("100-continue status", ev.status_code, 200)
    got = b""
    while True:
        ev = r.next_event()
        if isinstance(ev, h11.Data):
            got += ev.data
        elif isinstance(ev, h11.EndOfMessage):
            break
        else:
            fail("unexpected event %r" % (ev,))
    expect("100-continue body", got, b"POST /continue len=4000 body=" + body)
    # Keep-alive after it: a second request on the same connection.
    r.conn.start_next_cycle()
    sock.sendall(b"".join(r.conn.send(e) for e in get("/again")))
    head = r.next_event()
    expect("second status", head.status_code, 200)
    ev = r.next_event()
    expect("second body", ev.data, b"GET /again len=0 body=")
    sock.close()


def main():
    port = int(sys.argv[1])
    try:
        pipelined(port)
        expect_continue(port)
    except h11.RemoteProtocolError as e:
        fail("the server broke HTTP/1.1 framing: %s" % (e,))
    print("h11_client.py: ok")


if __name__ == "__main__":
    main()
