"""A loopback URL where nothing listens, for tests of an unreachable store."""

from __future__ import annotations

import socket


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
