"""Identifiers for runs that keep the server's indexes compact."""

import os
import time
import uuid


def new_event_id() -> str:
    """A new event_id: a UUIDv7 (RFC 9562) as a string, ready for JSON, its first 48
    bits the time in milliseconds, the rest random. Ids made later sort later, so the
    server files each new run at the end of its event_id index rather than on a random
    page of it, which keeps a large table's inserts fast (see docs/runs.md, "Choosing
    identifiers")."""
    millis = time.time_ns() // 1_000_000
    random_bits = int.from_bytes(os.urandom(10), "big")
    value = (millis & (2**48 - 1)) << 80 | random_bits & (2**80 - 1)
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # the RFC's variant
    return str(uuid.UUID(int=value))
