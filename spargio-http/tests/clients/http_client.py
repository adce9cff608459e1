"""Python's stdlib http.client against a spargio-http server.

Run by tests/real_clients.rs as `python3 http_client.py PORT` against the
test's `client_service`: `/chunked` streams a chunked response, `/hash`
answers `len=N fnv=HEX` for the body, anything else echoes
`METHOD URI len=N[ trailers=N] body=BODY`.

Checks keep-alive (three GETs and more on one socket), POST bodies with
Content-Length and chunked encoding, and reading a chunked response.
Exits non-zero with a message on the first mismatch.
"""

import http.client
import sys


def fail(msg):
    print("http_client.py: " + msg, file=sys.stderr)
    sys.exit(1)


def expect(what, got, want):
    if got != want:
        fail("%s: got %r, want %r" % (what, got, want))


def fnv1a(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def main():
    port = int(sys.argv[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    # Three keep-alive GETs on one connection.
    sock = None
    for i in range(3):
        conn.request("GET", "/item/%d?x=%d" % (i, i))
        resp = conn.getresponse()
        expect("GET status", resp.status, 200)
        expect("GET version", resp.version, 11)
        expect("GET body", resp.read(), ("GET /item/%d?x=%d len=0 body=" % (i, i)).encode())
        if resp.will_close:
            fail("the server asked to close a keep-alive connection")
        if sock is None:
            sock = conn.sock
        elif conn.sock is not sock:
            fail("http.client had to reconnect: the connection was not kept alive")

    # POST with a Content-Length body.
    conn.request("POST", "/form", body=b"a=1&b=2",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    expect("POST status", resp.status, 200)
    expect("POST body", resp.read(), b"POST /form len=7 body=a=1&b=2")

    # A larger POST, checked by hash.
    data = bytes((i * 7 + 3) % 256 for i in range(300000))
    conn.request("POST", "/hash", body=data)
    resp = conn.getresponse()
    expect("POST /hash body", resp.read().decode(), "len=%d fnv=%s" % (len(data), fnv1a(data)))

    # POST with a chunked request body (an iterable with encode_chunked).
    conn.request("POST", "/chunks", body=iter([b"hello ", b"chunked ", b"world"]),
                 encode_chunked=True)
    resp = conn.getresponse()
    expect("chunked POST body", resp.read(), b"POST /chunks len=19 body=hello chunked world")

    # A chunked response.
    conn.request("GET", "/chunked")
    resp = conn.getresponse()
    expect("chunked status", resp.status, 200)
    expect("Transfer-Encoding", resp.getheader("Transfer-Encoding"), "chunked")
    if resp.getheader("Content-Length") is not None:
        fail("chunked response also has Content-Length")
    body = resp.read()
    expect("chunked body", body, b"".join(b"chunk-%d\n" % i for i in range(10)))

    # Still the same connection after all of it.
    conn.request("GET", "/last")
    resp = conn.getresponse()
    expect("last body", resp.read(), b"GET /last len=0 body=")
    if conn.sock is not sock:
        fail("the connection was not reused to the end")

    # A HEAD request: headers only, and the connection goes on.
    conn.request("HEAD", "/head")
    resp = conn.getresponse()
    expect("HEAD status", resp.status, 200)
    expect("HEAD body", resp.read(), b"")
    expect("HEAD Content-Length", resp.getheader("Content-Length"),
           str(len(b"HEAD /head len=0 body=")))
    conn.request("GET", "/after-head")
    expect("GET after HEAD", conn.getresponse().read(), b"GET /after-head len=0 body=")
    if conn.sock is not sock:
        fail("the connection was not reused after HEAD")

    conn.close()
    print("http_client.py: ok")


if __name__ == "__main__":
    main()
