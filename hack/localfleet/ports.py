"""Free TCP ports on 127.0.0.1 for the processes the tests and the demo start."""

from __future__ import annotations

import socket

# What a Prometheus, Alertmanager, Argo CD or Redis on this machine (or the operator's
# defaults) would hold: never handed out.
DEFAULT_PORTS = frozenset({6379, 7000, 8080, 8081, 8082, 8083, 8084, 8085, 9090, 9093})


def free_port(taken: set[int] | None = None) -> int:
    """A port free on 127.0.0.1 now, none of DEFAULT_PORTS and none of `taken` (which gets
    it, so one caller's ports differ from each other)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port in DEFAULT_PORTS or (taken is not None and port in taken):
            continue
        if taken is not None:
            taken.add(port)
        return port
