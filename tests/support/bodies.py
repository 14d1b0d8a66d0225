"""Huge request bodies sent to a real server, to see that it refuses them before reading them."""
from __future__ import annotations

import socket

MiB = 2**20


def post_huge_body(port: int, size: int, *, chunked: bool, path: str = "/hypergen_ws/publish/") -> tuple[bytes, int]:
    """POST ``size`` bytes to ``path`` (default: the publish endpoint) without a key or a login, as fast as the
    server takes them.

    Returns the start of the answer and how many bytes were sent before the server stopped reading.
    """
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {size}\r\n\r\n"
    chunk = b"x" * MiB
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        try:
            while sent < size:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                sent += len(chunk)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered and closed the connection: it stopped reading
            pass
        answer = b""
        try:
            while len(answer) < 400:
                data = sock.recv(4096)
                if not data:
                    break
                answer += data
        except OSError:
            pass
    return answer, sent
