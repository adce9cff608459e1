"""A small forward HTTP proxy, for spargio-http's client proxy support.

Run by tests/client_proxy.rs as `python3 proxy.py [USER:PASSWORD]`: listens
on 127.0.0.1 with a port of its own choosing, prints that port on its first
line, and serves until its stdin closes.

With credentials given, a request without `Proxy-Authorization: Basic
<base64 of USER:PASSWORD>` is answered `407` and the connection closed.
`CONNECT host:port` connects there, answers `200` (or `502` if it cannot),
and then copies bytes both ways until either side closes, except for two
made-up hosts: `CONNECT silent.test:<port>` is never answered (the
connection stays open until the client closes it), and `CONNECT
chatty.test:<port>` is answered `200` followed at once by bytes no server
sent, and `CONNECT interim.test:<port>` is a tunnel to 127.0.0.1:<port>
whose `200` comes after two interim answers (`100` and `103`), all three
written a byte at a time. `GET
http://proxy.stats/` is answered `connects=<tunnels opened so far>`. Any
other request (absolute form) is answered by the proxy itself, keep-alive,
with the text body
`<method> <target> host=<Host field> auth=<Proxy-Authorization or ->`,
so the test sees exactly what the client sent to the proxy.
"""

import base64
import socket
import sys
import threading

CREDENTIALS = sys.argv[1] if len(sys.argv) > 1 else None
CONNECTS = [0]


def read_head(conn, buf):
    """Reads until a whole head is in `buf`; returns (head, rest) or None."""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (dst, src):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(conn):
    buf = b""
    while True:
        got = read_head(conn, buf)
        if got is None:
            conn.close()
            return
        head, buf = got
        lines = head.split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        auth = fields.get("proxy-authorization")
        if CREDENTIALS is not None:
            wanted = "Basic " + base64.b64encode(CREDENTIALS.encode()).decode()
            if auth != wanted:
                conn.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test"\r\n'
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                conn.close()
                return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            if host == "silent.test":
                while conn.recv(65536):
                    pass
                conn.close()
                return
            if host == "chatty.test":
                conn.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\nunasked-for bytes")
                while conn.recv(65536):
                    pass
                conn.close()
                return
            interim = host == "interim.test"
            if interim:
                host = "127.0.0.1"
            try:
                upstream = socket.create_connection((host, int(port)))
            except (OSError, ValueError):
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                conn.close()
                return
            CONNECTS[0] += 1
            if interim:
                # Dripped a byte per write, so the client's reads end
                # anywhere in the three heads.
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                answer = (
                    b"HTTP/1.1 100 Continue\r\n\r\n"
                    b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                    b"HTTP/1.1 200 Connection Established\r\nVia: 1.1 test-proxy\r\n\r\n"
                )
                for i in range(len(answer)):
                    conn.sendall(answer[i : i + 1])
            else:
                conn.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            if buf:
                upstream.sendall(buf)
            threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()
            pipe(conn, upstream)
            return
        if target == "http://proxy.stats/":
            body = "connects=%d" % CONNECTS[0]
        else:
            body = "%s %s host=%s auth=%s" % (method, target, fields.get("host"), auth or "-")
        body = body.encode()
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )


def accept(listener):
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
print(listener.getsockname()[1], flush=True)
threading.Thread(target=accept, args=(listener,), daemon=True).start()
sys.stdin.read()
