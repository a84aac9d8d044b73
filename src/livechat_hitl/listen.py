"""Listening sockets bound before start-up, so a busy port fails fast and by name.

uvicorn runs the app's start-up (migrations, the relay) before it binds, and reports a
busy port with a stack trace. Binding first lets `serve` and `sandbox` refuse at once
with one line naming the variable.
"""

from __future__ import annotations

import socket


class PortUnavailable(Exception):
    """The address of `variable` cannot be listened on; the message says why."""


def listening_socket(host: str, port: int, variable: str) -> socket.socket:
    """A TCP socket bound to (host, port), ready to hand to `uvicorn.Server.serve`."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortUnavailable(
            f"{variable}: cannot resolve host {host!r} ({exc.strerror})"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise PortUnavailable(
            f"{variable}: cannot listen on {host}:{port} ({exc.strerror or exc})"
        ) from None
    sock.set_inheritable(True)
    return sock
