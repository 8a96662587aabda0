"""Loopback ports for tests that start servers: each suite keeps to its own range so parallel sessions sharing a
host do not collide."""

from __future__ import annotations

import random
import socket


def free_port(ports: range, shuffle: bool = False) -> int:
    """A port of ``ports`` nothing listens on now (in order, or in random order with ``shuffle``, which spreads
    concurrent runs of the same test over the range)."""
    for port in random.sample(ports, len(ports)) if shuffle else ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")
